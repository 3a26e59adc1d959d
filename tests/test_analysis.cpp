// lsp/analysis: the per-document tree (full and incremental parses), the completion decision at a cursor and the
// stop rule, data-driven with fixtures where a single '^' marks the cursor.
#include "lsp/analysis.h"

#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace spark::lsp;

namespace {

struct fixture {
    std::string text;
    size_t cursor = 0;
};

// Source text with exactly one '^' for the cursor; the marker is removed.
fixture marked(std::string_view source) {
    const size_t at = source.find('^');
    REQUIRE(at != std::string_view::npos);
    REQUIRE(source.find('^', at + 1) == std::string_view::npos);
    fixture f;
    f.text.assign(source.substr(0, at));
    f.text.append(source.substr(at + 1));
    f.cursor = at;
    return f;
}

syntax_tree parsed(std::string_view language_id, std::string_view text) {
    syntax_tree t = syntax_tree::for_language_id(language_id);
    REQUIRE(t.parse(text));
    return t;
}

constexpr auto none = std::nullopt;
constexpr auto single = completion_decision::single_line;
constexpr auto multi = completion_decision::multi_line;

struct decide_case {
    const char* language_id;
    const char* source;
    std::optional<completion_mode> expected;  // nullopt: no completion
    const char* reason;                       // the decision's reason
};

const decide_case kDecideCases[] = {
    // python
    {"python", "def f(x):^", multi, "after a block opener"},
    {"python", "class A:\n    def f(self, x):^\n", multi, "after a block opener"},
    {"python", "x = ^", single, "code before the cursor"},
    {"python", "def f(x):\n    re^turn x\n", none, "mid-word"},
    {"python", "def f(x):\n    ^return x\n", none, "mid-word"},
    {"python", "def f(x):\n    y = x\n    ^\n    return y\n", multi, "blank line"},
    {"python", "x = \"hello ^\"\n", single, "inside a string literal"},
    {"python", "x = \"hello ^\ny = 1\n", single, "inside a string literal"},
    {"python", "x = f\"a {y} ^\"\n", single, "inside a string literal"},
    {"python", "x = f\"a {^}\"\n", single, "inside a string interpolation"},
    {"typescript", "const s = `a ${^}`;\n", single, "inside a string interpolation"},
    {"python", "# compute the ^\nx = 1\n", single, "inside a comment"},
    {"python", "x = 1  # note^\n", single, "inside a comment"},
    {"python", "print(^)\n", multi, "after a block opener"},
    {"python", "foo(^, b)\n", single, "text follows the cursor"},
    {"python", "d = {'a':^\n", single, "code before the cursor"},
    {"python", "if x > 0:^\n    pass\n", multi, "after a block opener"},
    {"python", "x = 1^\n", single, "code before the cursor"},
    {"python", "x = \"abc\"^\n", single, "code before the cursor"},
    // c
    {"c", "int main(void) {^}\n", multi, "after a block opener"},
    {"c", "int main(void) {\n    int x = ^;\n}\n", single, "code before the cursor"},
    {"c", "int main(void) {\n    retu^rn 0;\n}\n", none, "mid-word"},
    {"c", "int main(void) {\n    printf(\"hello ^\");\n}\n", single, "inside a string literal"},
    {"c", "// TODO: ^\nint x;\n", single, "inside a comment"},
    {"c", "/* a ^ b */\nint x;\n", single, "inside a comment"},
    {"c", "/* a b */^\nint x;\n", single, "code before the cursor"},
    {"c", "int main(void) {\n    x = foo(^a, b);\n}\n", none, "mid-word"},
    {"c", "int main(void) {\n    x = foo(^ a, b);\n}\n", single, "text follows the cursor"},
    {"c", "int main(void) {\n    ^\n}\n", multi, "blank line"},
    // cpp
    {"cpp", "void f(const std::vector<int>& v) {\n    for (auto& x : v) {\n        ^\n    }\n}\n", multi, "blank line"},
    {"cpp", "std::vector<int> v = {^};\n", multi, "after a block opener"},
    {"cpp", "auto s = R\"(raw ^)\";\n", single, "inside a string literal"},
    // typescript / tsx / javascript
    {"typescript", "const f = (x: number) =>^\n", multi, "after a block opener"},
    {"typescript", "let x = foo.ba^r();\n", none, "mid-word"},
    {"typescript", "/* block ^ */\n", single, "inside a comment"},
    {"typescript", "const a = [^];\n", multi, "after a block opener"},
    {"typescript", "const s = `a ^ b`;\n", single, "inside a string literal"},
    {"typescriptreact", "const App = () => {\n  return ^;\n};\n", single, "code before the cursor"},
    {"javascriptreact", "function f() {\n  ^\n}\n", multi, "blank line"},
    // rust
    {"rust", "fn main() {\n    let x = ^;\n}\n", single, "code before the cursor"},
    {"rust", "fn main() {\n    match x {\n        1 =>^\n    }\n}\n", multi, "after a block opener"},
    {"rust", "fn main() {\n    let c = '^';\n}\n", single, "inside a string literal"},
    {"rust", "/// doc ^\nfn main() {}\n", single, "inside a comment"},
    {"rust", "fn f<'a>(x: &'a str) -> &'a str {\n    ^\n}\n", multi, "blank line"},
    // go
    {"go", "package main\n\nfunc main() {\n\t^\n}\n", multi, "blank line"},
    {"go", "package main\n\nfunc main() {\n\tfmt.Println(\"x ^\")\n}\n", single, "inside a string literal"},
    {"go", "package main\n\nfunc main() {\n\tx := ^\n}\n", single, "code before the cursor"},
    // java
    {"java", "class A {\n  void f() {^}\n}\n", multi, "after a block opener"},
    {"java", "class A {\n  String s = \"^\";\n}\n", single, "inside a string literal"},
    {"java", "class A {\n  int x = y.le^ngth();\n}\n", none, "mid-word"},
    // plain text (unknown languageId)
    {"markdown", "hello wor^ld", none, "mid-word"},
    {"markdown", "some text ^", single, "code before the cursor"},
    {"markdown", "^", multi, "blank line"},
    {"plaintext", "notes {^", multi, "after a block opener"},
    // cursor edge cases
    {"python", "x = \"\xC3\xA9^\xC3\xA9\"\n", none, "mid-word"},
};

}  // namespace

TEST_CASE("language_of maps LSP languageIds to grammars", "[analysis]") {
    CHECK(language_of("python") == language::python);
    CHECK(language_of("c") == language::c);
    CHECK(language_of("cpp") == language::cpp);
    CHECK(language_of("javascript") == language::javascript);
    CHECK(language_of("javascriptreact") == language::javascript);
    CHECK(language_of("typescript") == language::typescript);
    CHECK(language_of("typescriptreact") == language::tsx);
    CHECK(language_of("rust") == language::rust);
    CHECK(language_of("go") == language::go);
    CHECK(language_of("java") == language::java);
    CHECK(language_of("markdown") == language::plain);
    CHECK(language_of("") == language::plain);
    CHECK(name(language::tsx) == "tsx");

    for (std::string_view id : {"python", "c", "cpp", "javascript", "typescript", "typescriptreact", "rust", "go", "java"}) {
        INFO(id);
        syntax_tree t = syntax_tree::for_language_id(id);
        REQUIRE(t.parse("x"));
        CHECK(t.has_tree());
        CHECK_FALSE(t.sexp().empty());
    }
}

TEST_CASE("decide: whether and how much to complete", "[analysis]") {
    for (const decide_case& c : kDecideCases) {
        const fixture f = marked(c.source);
        INFO(c.language_id << ": " << c.source);
        const syntax_tree t = parsed(c.language_id, f.text);
        const completion_decision d = decide(t, f.text, f.cursor);
        CHECK(d.reason == c.reason);
        CHECK(d.complete == c.expected.has_value());
        if (c.expected && d.complete) CHECK(d.mode == *c.expected);
    }
}

TEST_CASE("decide: cursor out of range or inside a UTF-8 sequence", "[analysis]") {
    const std::string text = "x = \"\xC3\xA9\"\n";
    const syntax_tree t = parsed("python", text);
    CHECK_FALSE(decide(t, text, text.size() + 1).complete);
    CHECK(decide(t, text, 6).reason == "cursor inside a UTF-8 sequence");
    CHECK(decide(t, text, text.size()).complete);
}

namespace {

struct stop_case {
    const char* name;
    const char* language_id;
    const char* source;
    completion_mode mode;
    const char* generated;
    std::optional<std::string> kept;  // nullopt: the rule lets generation go on
    stop_options options = {};
};

const stop_case kStopCases[] = {
    // single-line: the first newline ends it
    {"newline cut", "python", "x = ^\n", single, "compute(1)\ny = 2", "compute(1)"},
    {"newline cut drops trailing blanks", "python", "x = ^\n", single, "compute(1)   \n", "compute(1)"},
    {"single-line goes on before a newline", "python", "x = ^\n", single, "compute(1", none},
    {"single-line that starts with a newline is empty", "c", "int x = ^\n", single, "\n5;", ""},
    // python: the block ends at a dedent
    {"python dedent after def", "python", "def f(x):^\n", multi,
     "\n    y = x * 2\n    return y\n\ndef g():\n    pass", "\n    y = x * 2\n    return y"},
    {"python dedent waits for the line", "python", "def f(x):^\n", multi, "\n    y = x * 2\n", none},
    {"python dedent in a method", "python", "class A:\n    def f(self):^\n", multi,
     "\n        return 1\n\n    def g(self):", "\n        return 1"},
    {"python blank line in a body", "python", "def f(x):\n    ^\n", multi, "y = 1\n    z = 2\nprint(z)",
     "y = 1\n    z = 2"},
    {"python docstring lines do not dedent", "python", "def f(x):^\n", multi,
     "\n    \"\"\"Doc\nmore.\n    \"\"\"\n    return x\nz = 1", "\n    \"\"\"Doc\nmore.\n    \"\"\"\n    return x"},
    {"python closing bracket line is not a dedent", "python", "x = foo(^)\n", multi, "\n    a,\n    b,\n)",
     "\n    a,\n    b,\n"},
    // brace languages: an unbalanced closer ends the block
    {"c unbalanced brace", "c", "int f(int x) {\n    ^\n}\n", multi,
     "int y = x * 2;\n    return y;\n}\n\nint g() {", "int y = x * 2;\n    return y;"},
    {"c auto-paired braces keep the closer's line", "c", "int f(int x) {^}\n", multi, "\n    return x;\n}",
     "\n    return x;\n"},
    {"c nested balanced braces", "c", "int f(int x) {\n    ^\n}\n", multi,
     "if (x) {\n        y();\n    }\n    return x;\n}", "if (x) {\n        y();\n    }\n    return x;"},
    {"c brace in a string", "c", "int f(int x) {\n    ^\n}\n", multi, "printf(\"}\");\n    return 0;\n}",
     "printf(\"}\");\n    return 0;"},
    {"c brace in a char literal", "c", "int f(int c) {\n    ^\n}\n", multi, "if (c == '}') return;\n}",
     "if (c == '}') return;"},
    {"c half-generated char literal waits", "c", "int f(int c) {\n    ^\n}\n", multi, "if (c == '}", none},
    {"c brace in a comment", "c", "int f(int c) {\n    ^\n}\n", multi, "// }\n    return c;\n}",
     "// }\n    return c;"},
    {"c open block closed by the completion", "c", "int f(int x) {\n    ^", multi,
     "return x;\n}\n\nint g() {", "return x;\n}"},
    {"c top level closer", "c", "int x;\n^\n", multi, "int y;\n}", "int y;"},
    {"java method end", "java", "class A {\n  int f() {\n    ^\n  }\n}\n", multi, "return 1;\n  }\n  int g() {",
     "return 1;"},
    {"rust lifetimes are not quotes", "rust", "fn f<'a>(x: &'a str) -> &'a str {\n    ^\n}\n", multi,
     "let y: &'a str = x;\n    y\n}", "let y: &'a str = x;\n    y"},
    {"go raw string", "go", "package main\n\nfunc main() {\n\t^\n}\n", multi, "fmt.Println(`}`)\n}",
     "fmt.Println(`}`)"},
    {"typescript template string", "typescript", "function f() {\n  ^\n}\n", multi,
     "const s = `${a} }`;\n  return s;\n}", "const s = `${a} }`;\n  return s;"},
    // the suffix: never repeat what is already below or after the cursor
    {"repeats the next line", "python", "def f(x):\n    ^\n    return y\n", multi, "y = x + 1\n    return y\n",
     "y = x + 1"},
    {"repeats the next line at once", "python", "def f(x):\n    ^\n    return y\n", multi, "return y\n", ""},
    {"short repeat waits for its line end", "python", "def f(x):\n    ^\n    return y\n", multi,
     "y = x + 1\n    return y", none},
    {"long repeat cuts before the line ends", "python", "def f(x):\n    ^\n    result = compute_total(items)\n",
     multi, "x = 1\n    result = compute_to", "x = 1"},
    {"different line with a short common prefix goes on", "python", "def f(x):\n    ^\n    return y\n", multi,
     "y = x + 1\n    return x", none},
    {"repeats the rest of the line", "c", "void f() {\n    foo(^);\n}\n", single, "a, b);", "a, b"},
    {"repeats the rest of the line then more", "c", "void f() {\n    foo(^);\n}\n", single, "a, b); x();\n",
     "a, b"},
    {"balanced call before the rest of the line", "c", "void f() {\n    foo(^);\n}\n", single, "bar()", none},
    {"balanced call then the rest of the line", "c", "void f() {\n    foo(^);\n}\n", single, "bar(), c);",
     "bar(), c"},
    {"rest of the line after a space", "c", "void f() {\n    foo(^ b);\n}\n", single, "a, b);", "a,"},
    {"multi-line call closes before the existing paren", "c", "void f() {\n    foo(^);\n}\n", multi,
     "\n        a,\n        b\n    );", "\n        a,\n        b\n    "},
    {"string ends at its closing quote", "python", "x = \"^\"\n", single, "hello\" + y", "hello"},
    {"escaped quote stays in the string", "python", "x = \"^\"\n", single, "a\\\"b\" + y", "a\\\"b"},
    {"comment line", "c", "// a ^\nint x;\n", single, "note here\nint x;", "note here"},
    // max lines
    {"max lines", "python", "^", multi, "a = 1\nb = 2\nc = 3\nd = 4", "a = 1\nb = 2", stop_options{.max_lines = 2}},
    {"blank lines do not count", "python", "^", multi, "a = 1\n\n\nb = 2\n", none, stop_options{.max_lines = 2}},
    // plain text: no structure, only lines and the suffix
    {"plain newline", "markdown", "Some ^", single, "words here\nmore", "words here"},
    {"plain brackets are text", "markdown", "Some\n^", multi, "a } b\n}", none},
    {"plain repeats the next line", "markdown", "Intro\n^\nThe end of it all.\n", multi,
     "Middle part.\nThe end of it all.\n", "Middle part."},
};

}  // namespace

TEST_CASE("stop_rule: where a completion ends", "[analysis]") {
    for (const stop_case& c : kStopCases) {
        INFO(c.name << " [" << c.language_id << "]: " << c.source << " + " << c.generated);
        const fixture f = marked(c.source);
        const syntax_tree t = parsed(c.language_id, f.text);
        const stop_rule rule(t, f.text, f.cursor, c.mode, c.options);
        const std::string_view g = c.generated;
        const stop_check r = rule.check(g);
        INFO("reason: " << r.reason);
        if (!c.kept) {
            CHECK(r.keep == stop_rule::npos);
            CHECK(r.reason.empty());
        } else {
            REQUIRE(r.keep != stop_rule::npos);
            REQUIRE(r.keep <= g.size());
            CHECK(std::string(g.substr(0, r.keep)) == *c.kept);
            CHECK_FALSE(r.reason.empty());
        }
    }
}

TEST_CASE("stop_rule: token by token, as the engine calls it", "[analysis]") {
    // Feed the generated text one byte at a time; the first cut must equal the cut on the whole text.
    for (const stop_case& c : kStopCases) {
        if (!c.kept) continue;
        INFO(c.name);
        const fixture f = marked(c.source);
        const syntax_tree t = parsed(c.language_id, f.text);
        const std::function<size_t(std::string_view)> criterion = stop_rule(t, f.text, f.cursor, c.mode, c.options);
        const std::string_view g = c.generated;
        size_t keep = stop_rule::npos;
        for (size_t n = 1; n <= g.size() && keep == stop_rule::npos; ++n) keep = criterion(g.substr(0, n));
        REQUIRE(keep != stop_rule::npos);
        CHECK(std::string(g.substr(0, keep)) == *c.kept);
    }
}

TEST_CASE("stop_rule: finish trims a generation that ended by itself", "[analysis]") {
    auto finish = [](const char* language_id, const char* source, completion_mode mode, std::string_view g) {
        const fixture f = marked(source);
        const syntax_tree t = parsed(language_id, f.text);
        return std::string(g.substr(0, stop_rule(t, f.text, f.cursor, mode).finish(g)));
    };
    // A short repeat of the next line at the very end.
    CHECK(finish("python", "def f(x):\n    ^\n    return y\n", multi, "y = x + 1\n    return y") == "y = x + 1");
    CHECK(finish("python", "def f(x):\n    ^\n    return y\n", multi, "y = x + 1\n    ret") == "y = x + 1");
    // A partial repeat of the rest of the line.
    CHECK(finish("c", "void f() {\n    foo(^, other);\n}\n", single, "a, oth") == "a");
    // Trailing whitespace.
    CHECK(finish("python", "def f(x):^\n", multi, "\n    return x\n\n") == "\n    return x");
    // Nothing to trim.
    CHECK(finish("python", "x = ^\n", single, "1 + 2") == "1 + 2");
}

TEST_CASE("stop_rule outlives the tree and the text it was built from", "[analysis]") {
    std::function<size_t(std::string_view)> criterion;
    {
        const fixture f = marked("int f(int x) {\n    ^\n}\n");
        const syntax_tree t = parsed("c", f.text);
        criterion = stop_rule(t, f.text, f.cursor, multi);
    }
    const std::string_view g = "return x;\n}";
    CHECK(g.substr(0, criterion(g)) == "return x;");
}

TEST_CASE("plain-text fallback for an unknown languageId", "[analysis]") {
    syntax_tree t = syntax_tree::for_language_id("fortran77");
    CHECK(t.lang() == language::plain);
    std::string text = "Dear diary,\n\ntoday I ";
    REQUIRE(t.parse(text));
    CHECK_FALSE(t.has_tree());
    CHECK(t.tree() == nullptr);
    CHECK(t.sexp().empty());
    t.edit(byte_edit{});  // no tree: nothing to do
    REQUIRE(t.reparse(text));
    CHECK_FALSE(t.has_tree());

    CHECK(context_at(t, text, text.size()) == cursor_context::code);
    const completion_decision d = decide(t, text, text.size());
    CHECK(d.complete);
    CHECK(d.mode == single);
    CHECK(decide(t, text, 12).mode == multi);  // the blank line
    CHECK_FALSE(decide(t, text, 2).complete);  // "De|ar"

    const stop_rule rule(t, text, text.size(), single);
    const std::string_view g = "went out.\nThen";
    CHECK(g.substr(0, rule(g)) == "went out.");
}

namespace {

// Tree-sitter's (row, byte column) of an offset: rows end at '\n'.
byte_point point_of(std::string_view text, size_t offset) {
    uint32_t row = 0;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i)
        if (text[i] == '\n') {
            ++row;
            line_start = i + 1;
        }
    return {row, static_cast<uint32_t>(offset - line_start)};
}

// Replaces [start, end) of text by ins, returning the edit in tree-sitter's terms.
byte_edit apply(std::string& text, size_t start, size_t end, std::string_view ins) {
    byte_edit e;
    e.start = start;
    e.old_end = end;
    e.new_end = start + ins.size();
    e.start_point = point_of(text, start);
    e.old_end_point = point_of(text, end);
    text.replace(start, end - start, ins);
    e.new_end_point = point_of(text, e.new_end);
    return e;
}

size_t snap_to_char(std::string_view text, size_t at) {
    while (at > 0 && at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
    return at;
}

struct edit_snippet {
    const char* language_id;
    const char* text;
    std::vector<std::string_view> pieces;  // inserted at random (besides pieces of the snippet itself)
    int edits;
};

const char kCSnippet[] = R"(#include <stdio.h>
#include <stdlib.h>

/* A small stack of integers. Größe: ✓ */
typedef struct {
    int *items;
    size_t size, capacity;
} stack;

static int push(stack *s, int value) {
    if (s->size == s->capacity) {
        size_t n = s->capacity ? s->capacity * 2 : 8;
        int *p = realloc(s->items, n * sizeof *p);
        if (!p) return -1;
        s->items = p;
        s->capacity = n;
    }
    s->items[s->size++] = value;
    return 0;
}

int main(void) {
    stack s = {0};
    for (int i = 0; i < 10; ++i) push(&s, i * i);
    printf("%zu items, last %d\n", s.size, s.items[s.size - 1]);  // "done"
    free(s.items);
    return 0;
}
)";

const char kPythonSnippet[] = R"(import sys


class Stack:
    """A stack of things."""

    def __init__(self):
        self.items = []

    def push(self, value):
        self.items.append(value)
        return len(self.items)

    def pop(self):
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()


def main(argv):
    s = Stack()
    for i in range(10):
        s.push(i * i)  # squares
    print(f"{len(s.items)} items, last {s.items[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
)";

const char kTsSnippet[] = R"(interface Point { x: number; y: number }

export function length(p: Point): number {
  return Math.hypot(p.x, p.y);
}

const points: Point[] = [{ x: 1, y: 2 }, { x: 3, y: 4 }];
const total = points.map((p) => length(p)).reduce((a, b) => a + b, 0);
console.log(`total ${total.toFixed(2)}`);
)";

const char kRustSnippet[] = R"(use std::collections::HashMap;

fn count<'a>(words: &[&'a str]) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for w in words {
        *m.entry(*w).or_insert(0) += 1;
    }
    m
}

fn main() {
    let c = count(&["a", "b", "a"]);
    println!("{:?} {}", c, '}');
}
)";

}  // namespace

TEST_CASE("incremental reparse gives the tree of a fresh parse", "[analysis]") {
    const edit_snippet snippets[] = {
        {"c", kCSnippet, {"{", "}", "(", ")", ";", "\n", "    ", "\"", "'", "/*", "*/", "//", "if (x) ", "return 1;"}, 200},
        {"python", kPythonSnippet, {":", "\n", "    ", "(", ")", "\"", "'", "#", "\"\"\"", "def g(x):\n    ", "pass"}, 150},
        {"typescript", kTsSnippet, {"{", "}", "(", ")", "=>", "`", "${", "<T>", ": number", "\n", ";"}, 100},
        {"rust", kRustSnippet, {"{", "}", "'a", "&", "<", ">", "::", "fn f() {}", "\n", "\""}, 100},
    };
    std::mt19937 rng(20240601);
    auto uniform = [&](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng); };

    for (const edit_snippet& sn : snippets) {
        INFO("language: " << sn.language_id);
        const std::string original = sn.text;
        std::string text = original;
        syntax_tree inc = parsed(sn.language_id, text);
        syntax_tree fresh = syntax_tree::for_language_id(sn.language_id);
        for (int n = 0; n < sn.edits; ++n) {
            // One to three edits before each reparse, as a batched didChange delivers them.
            const size_t batch = uniform(1, 3);
            for (size_t b = 0; b < batch; ++b) {
                std::string ins;
                const size_t kind = uniform(0, 9);
                if (kind < 4) {
                    ins = sn.pieces[uniform(0, sn.pieces.size() - 1)];
                } else if (kind < 7) {
                    const size_t from = snap_to_char(original, uniform(0, original.size() - 1));
                    const size_t to = snap_to_char(original, std::min(original.size(), from + uniform(1, 40)));
                    ins = original.substr(from, to - from);
                }
                if (n % 12 == 11 && b == 0) {  // now and then back to the whole original, as a full-text change
                    inc.edit(apply(text, 0, text.size(), original));
                    continue;
                }
                const size_t start = snap_to_char(text, uniform(0, text.size()));
                const size_t end = kind >= 7 || uniform(0, 1) ? snap_to_char(text, std::min(text.size(), start + uniform(0, 12)))
                                                              : start;
                inc.edit(apply(text, start, std::max(start, end), ins));
            }
            REQUIRE(inc.reparse(text));
            REQUIRE(fresh.parse(text));
            INFO("edit " << n << ", text:\n" << text);
            REQUIRE(inc.sexp() == fresh.sexp());
        }
    }
}

TEST_CASE("every cursor position of real snippets: decisions and stop rules stay in bounds", "[analysis]") {
    const std::pair<const char*, const char*> snippets[] = {
        {"c", kCSnippet}, {"python", kPythonSnippet}, {"typescript", kTsSnippet}, {"rust", kRustSnippet}};
    const std::string_view generated[] = {"x", "a, b);\n", "\n    return x;\n}\n", "'}' \"}\" `}` // }\n)", "\\\"\n"};
    for (const auto& [language_id, text] : snippets) {
        INFO(language_id);
        const std::string_view s = text;
        const syntax_tree t = parsed(language_id, s);
        for (size_t cursor = 0; cursor <= s.size() + 1; ++cursor) {
            const completion_decision d = decide(t, s, cursor);
            CHECK_FALSE(d.reason.empty());
            if (cursor > s.size()) {
                CHECK_FALSE(d.complete);
                continue;
            }
            for (completion_mode mode : {single, multi}) {
                const stop_rule rule(t, s, cursor, mode);
                for (std::string_view g : generated) {
                    const size_t keep = rule(g);
                    CHECK((keep == stop_rule::npos || keep <= g.size()));
                    CHECK(rule.finish(g) <= g.size());
                }
            }
        }
    }
}

TEST_CASE("syntax_tree moves keep the parsed tree", "[analysis]") {
    syntax_tree a = parsed("go", "package main\n\nfunc main() {}\n");
    const std::string before = a.sexp();
    syntax_tree b(std::move(a));
    CHECK(b.has_tree());
    CHECK(b.sexp() == before);
    syntax_tree c(language::python);
    c = std::move(b);
    CHECK(c.lang() == language::go);
    CHECK(c.sexp() == before);
    REQUIRE(c.parse("package main\n"));
    CHECK(c.sexp() != before);
}

TEST_CASE("analysis: degenerate repetition is cut after its first copy", "[lsp][analysis]") {
    using spark::lsp::repetition_start;
    constexpr size_t npos = std::string_view::npos;
    CHECK(repetition_start("x = a.b.b.b.b") == 7);
    // The run starts where its period starts: the '.' before the first "random" already belongs to it.
    CHECK(repetition_start("nd = self.random.random.random.random.") == std::string_view("nd = self.random").size());
    CHECK(repetition_start("x = 1\nx = 1\nx = 1\nx = 1\n") == 6);
    CHECK(repetition_start("x.b.b.b") == npos);         // three copies are not yet a loop
    CHECK(repetition_start("# ----------------") == npos);  // punctuation
    CHECK(repetition_start("return [0, 0, 0, 0, 0, ") == npos);  // no letter in "0, "
}
