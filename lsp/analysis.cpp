#include "lsp/analysis.h"

#include <tree_sitter/api.h>
#include <tree_sitter_languages.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace spark::lsp {

// ---- languages ------------------------------------------------------------------------------------------------

language language_of(std::string_view id) {
    struct entry {
        std::string_view id;
        language lang;
    };
    static constexpr std::array<entry, 18> table{{
        {"python", language::python},         {"py", language::python},
        {"c", language::c},                   {"cpp", language::cpp},
        {"c++", language::cpp},               {"cuda-cpp", language::cpp},
        {"javascript", language::javascript}, {"javascriptreact", language::javascript},
        {"js", language::javascript},         {"jsx", language::javascript},
        {"typescript", language::typescript}, {"ts", language::typescript},
        {"typescriptreact", language::tsx},   {"tsx", language::tsx},
        {"rust", language::rust},             {"rs", language::rust},
        {"go", language::go},                 {"java", language::java},
    }};
    for (const entry& e : table)
        if (e.id == id) return e.lang;
    if (id == "golang") return language::go;
    return language::plain;
}

std::string_view name(language lang) {
    switch (lang) {
    case language::plain: return "plain";
    case language::python: return "python";
    case language::c: return "c";
    case language::cpp: return "cpp";
    case language::javascript: return "javascript";
    case language::typescript: return "typescript";
    case language::tsx: return "tsx";
    case language::rust: return "rust";
    case language::go: return "go";
    case language::java: return "java";
    }
    return "plain";
}

namespace {

const TSLanguage* grammar(language lang) {
    switch (lang) {
    case language::plain: return nullptr;
    case language::python: return tree_sitter_python();
    case language::c: return tree_sitter_c();
    case language::cpp: return tree_sitter_cpp();
    case language::javascript: return tree_sitter_javascript();
    case language::typescript: return tree_sitter_typescript();
    case language::tsx: return tree_sitter_tsx();
    case language::rust: return tree_sitter_rust();
    case language::go: return tree_sitter_go();
    case language::java: return tree_sitter_java();
    }
    return nullptr;
}

}  // namespace

// ---- syntax_tree ----------------------------------------------------------------------------------------------

void syntax_tree::parser_deleter::operator()(TSParser* p) const { ts_parser_delete(p); }
void syntax_tree::tree_deleter::operator()(TSTree* t) const { ts_tree_delete(t); }

syntax_tree::syntax_tree(language lang) : lang_(lang) {
    if (const TSLanguage* g = grammar(lang)) {
        parser_.reset(ts_parser_new());
        // An ABI mismatch between grammar and runtime shows only here.
        if (parser_ && !ts_parser_set_language(parser_.get(), g)) parser_.reset();
    }
}

syntax_tree::syntax_tree(syntax_tree&&) noexcept = default;
syntax_tree& syntax_tree::operator=(syntax_tree&&) noexcept = default;
syntax_tree::~syntax_tree() = default;

result<void> syntax_tree::run_parser(std::string_view text, const TSTree* old_tree) {
    if (!parser_) return fail("the tree-sitter runtime refused the ", name(lang_), " grammar");
    if (text.size() > max_document_bytes) return fail("document of ", text.size(), " bytes is too large to parse");
    const char* data = text.empty() ? "" : text.data();
    TSTree* t = ts_parser_parse_string(parser_.get(), old_tree, data, static_cast<uint32_t>(text.size()));
    if (!t) {
        ts_parser_reset(parser_.get());
        return fail("tree-sitter could not parse the ", name(lang_), " document");
    }
    tree_.reset(t);  // deletes the old tree only now that the parse which read it is done
    return {};
}

result<void> syntax_tree::parse(std::string_view text) {
    tree_.reset();
    if (lang_ == language::plain) return {};
    return run_parser(text, nullptr);
}

void syntax_tree::edit(const byte_edit& e) {
    if (!tree_) return;
    TSInputEdit in;
    in.start_byte = static_cast<uint32_t>(e.start);
    in.old_end_byte = static_cast<uint32_t>(e.old_end);
    in.new_end_byte = static_cast<uint32_t>(e.new_end);
    in.start_point = TSPoint{e.start_point.first, e.start_point.second};
    in.old_end_point = TSPoint{e.old_end_point.first, e.old_end_point.second};
    in.new_end_point = TSPoint{e.new_end_point.first, e.new_end_point.second};
    ts_tree_edit(tree_.get(), &in);
}

result<void> syntax_tree::reparse(std::string_view text) {
    if (!tree_) return parse(text);
    auto r = run_parser(text, tree_.get());
    if (!r) tree_.reset();
    return r;
}

std::string syntax_tree::sexp() const {
    if (!tree_) return {};
    char* s = ts_node_string(ts_tree_root_node(tree_.get()));
    std::string out = s ? s : "";
    std::free(s);
    return out;
}

// ---- text helpers ---------------------------------------------------------------------------------------------

namespace {

bool is_blank_char(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
bool is_space(char c) { return is_blank_char(c) || c == '\n'; }

bool is_word_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_';
}

bool is_opener(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_closer(char c) { return c == ')' || c == ']' || c == '}'; }
// What may follow the cursor on its line without making it "the middle of an expression".
bool is_trailing_closer(char c) {
    return is_closer(c) || c == '"' || c == '\'' || c == '`' || c == ';' || c == ',' || c == ':';
}

bool is_blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(), is_blank_char);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::string_view trim_right(std::string_view s) {
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

size_t line_begin(std::string_view text, size_t pos) {
    const size_t nl = pos == 0 ? std::string_view::npos : text.rfind('\n', pos - 1);
    return nl == std::string_view::npos ? 0 : nl + 1;
}

size_t line_end(std::string_view text, size_t pos) {
    const size_t nl = text.find('\n', pos);
    return nl == std::string_view::npos ? text.size() : nl;
}

// Indentation width in columns: tabs advance to the next multiple of 8 (Python's own rule).
int indent_width(std::string_view s) {
    int w = 0;
    for (char c : s) {
        if (c == ' ') ++w;
        else if (c == '\t') w = (w / 8 + 1) * 8;
        else break;
    }
    return w;
}

size_t leading_blanks(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && is_blank_char(s[i])) ++i;
    return i;
}

size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 1;
}

// ---- a small lexer: enough to skip strings and comments when counting brackets --------------------------------

bool is_c_like(language l) { return l != language::plain && l != language::python; }
bool has_js_strings(language l) {
    return l == language::javascript || l == language::typescript || l == language::tsx;
}

class lexer {
public:
    enum state : uint8_t { code, line_comment, block_comment, str_dq, str_sq, str_bt, triple_dq, triple_sq };

    explicit lexer(language lang) : lang_(lang) {}

    state current() const { return st_; }
    bool in_string() const { return st_ >= str_dq; }

    // Steps over the token at s[i] and returns where the next one starts; never steps over a '\n' other than
    // s[i] itself, so a caller walking line by line stays in step. bracket is set to s[i] when that is a bracket
    // in code, else 0.
    size_t step(std::string_view s, size_t i, char& bracket) {
        bracket = 0;
        const char c = s[i];
        const char next = i + 1 < s.size() ? s[i + 1] : '\0';
        switch (st_) {
        case code:
            if (lang_ == language::python) {
                if (c == '#') return set(line_comment, i + 1);
                if (c == '"' || c == '\'') {
                    if (next == c && i + 2 < s.size() && s[i + 2] == c) return set(c == '"' ? triple_dq : triple_sq, i + 3);
                    return set(c == '"' ? str_dq : str_sq, i + 1);
                }
            } else if (is_c_like(lang_)) {
                if (c == '/' && next == '/') return set(line_comment, i + 2);
                if (c == '/' && next == '*') return set(block_comment, i + 2);
                if (c == '"') return set(str_dq, i + 1);
                if (c == '`' && (has_js_strings(lang_) || lang_ == language::go)) return set(str_bt, i + 1);
                if (c == '\'') return has_js_strings(lang_) ? set(str_sq, i + 1) : char_literal(s, i);
            }
            if (is_opener(c) || is_closer(c)) bracket = c;
            return i + 1;
        case line_comment:
            if (c == '\n') st_ = code;
            return i + 1;
        case block_comment:
            if (c == '*' && next == '/') return set(code, i + 2);
            return i + 1;
        case str_dq:
        case str_sq:
            if (c == '\\' && next != '\n' && next != '\0') return i + 2;
            if (c == '\n' || c == (st_ == str_dq ? '"' : '\'')) st_ = code;  // a line break ends an unclosed one
            return i + 1;
        case str_bt:
            if (c == '\\' && lang_ != language::go && next != '\n' && next != '\0') return i + 2;
            if (c == '`') st_ = code;
            return i + 1;
        case triple_dq:
        case triple_sq: {
            const char q = st_ == triple_dq ? '"' : '\'';
            if (c == '\\' && next != '\n' && next != '\0') return i + 2;
            if (c == q && next == q && i + 2 < s.size() && s[i + 2] == q) return set(code, i + 3);
            return i + 1;
        }
        }
        return i + 1;
    }

private:
    size_t set(state st, size_t next) {
        st_ = st;
        return next;
    }

    // A character literal ('x', '\n', '\u{1F600}') is skipped whole; a quote that starts none (a Rust lifetime
    // 'a, a C++ digit separator) is an ordinary character. One that the text ends inside is skipped to the end,
    // so that a bracket of a half-generated '}' is not counted before its closing quote arrives.
    size_t char_literal(std::string_view s, size_t i) const {
        const size_t n = s.size();
        if (i + 1 >= n) return n;
        if (s[i + 1] == '\n') return i + 1;
        if (s[i + 1] == '\\') {
            for (size_t j = i + 2; j < n && j < i + 14; ++j) {
                if (s[j] == '\n') return i + 1;
                if (s[j] == '\'' && j > i + 2) return j + 1;
            }
            return i + 14 >= n ? n : i + 1;
        }
        const size_t close = i + 1 + utf8_length(static_cast<unsigned char>(s[i + 1]));
        if (close >= n) return n;
        return s[close] == '\'' ? close + 1 : i + 1;
    }

    language lang_;
    state st_ = code;
};

// ---- tree queries ---------------------------------------------------------------------------------------------

bool is_string_type(std::string_view t) {
    static constexpr std::array<std::string_view, 10> types{
        "string",     "string_literal",      "char_literal",    "raw_string_literal",
        "template_string", "interpreted_string_literal", "rune_literal", "character_literal",
        "system_lib_string", "text_block"};
    return std::find(types.begin(), types.end(), t) != types.end();
}

bool is_interpolation_type(std::string_view t) {
    return t == "interpolation" || t == "template_substitution" || t == "string_interpolation";
}

bool is_comment_type(std::string_view t) { return t.find("comment") != std::string_view::npos; }

// interpolation: set when the cursor is in code inside a string (`${x}`, Python's `{x}`).
cursor_context tree_context(const syntax_tree& tree, std::string_view text, size_t cursor, bool& interpolation) {
    if (!tree.has_tree() || cursor == 0 || cursor > text.size()) return cursor_context::code;
    const TSNode root = ts_tree_root_node(tree.tree());
    // The smallest node holding the byte before the cursor: start < cursor <= end.
    TSNode n = ts_node_descendant_for_byte_range(root, static_cast<uint32_t>(cursor - 1), static_cast<uint32_t>(cursor));
    for (; !ts_node_is_null(n); n = ts_node_parent(n)) {
        const std::string_view type = ts_node_type(n);
        const size_t start = ts_node_start_byte(n), end = ts_node_end_byte(n);
        if (!(start < cursor && cursor <= end)) continue;
        if (is_interpolation_type(type)) {
            interpolation = true;
            return cursor_context::code;
        }
        if (is_comment_type(type)) {
            const std::string_view body = text.substr(start, std::min(end, text.size()) - start);
            const bool line_comment = !(body.size() >= 4 && body.ends_with("*/")) && !body.starts_with("/*");
            if (cursor < end || line_comment) return cursor_context::comment;
            return cursor_context::code;
        }
        if (is_string_type(type)) {
            if (cursor < end) return cursor_context::string;
            // At the end: inside only when the closing delimiter is missing (error recovery inserted it).
            const uint32_t count = ts_node_child_count(n);
            if (count > 0 && ts_node_is_missing(ts_node_child(n, count - 1))) return cursor_context::string;
            return cursor_context::code;
        }
    }
    return cursor_context::code;
}

// Where the prefix scan for open brackets starts: the top-level node that holds or precedes the cursor (it starts
// in code, and brackets before it are balanced). 0 without a tree.
size_t enclosing_top_level_start(const syntax_tree& tree, size_t cursor) {
    if (!tree.has_tree()) return 0;
    const TSNode root = ts_tree_root_node(tree.tree());
    size_t from = 0;
    const uint32_t count = ts_node_child_count(root);
    for (uint32_t i = 0; i < count; ++i) {
        const size_t start = ts_node_start_byte(ts_node_child(root, i));
        if (start >= cursor) break;
        from = start;
    }
    return from;
}

bool python_block_keyword(std::string_view line) {
    static constexpr std::array<std::string_view, 14> keywords{"def",   "class", "if",     "elif",  "else",
                                                               "for",   "while", "try",    "except", "finally",
                                                               "with",  "async", "match",  "case"};
    line = trim(line);
    size_t n = 0;
    while (n < line.size() && is_word_byte(line[n])) ++n;
    const std::string_view word = line.substr(0, n);
    return std::find(keywords.begin(), keywords.end(), word) != keywords.end();
}

bool ends_with_block_opener(language lang, std::string_view before) {
    before = trim_right(before);
    if (before.empty()) return false;
    const char last = before.back();
    if (is_opener(last)) return true;
    if (lang == language::plain) return false;
    if (before.ends_with("=>")) return true;
    if (lang == language::python && last == ':') return python_block_keyword(before);
    return false;
}

}  // namespace

namespace {

cursor_context classify(const syntax_tree& tree, std::string_view text, size_t cursor, bool& interpolation) {
    interpolation = false;
    if (cursor > text.size()) return cursor_context::code;
    const cursor_context from_tree = tree_context(tree, text, cursor, interpolation);
    if (from_tree != cursor_context::code || interpolation || tree.lang() == language::plain) return from_tree;
    // Error recovery does not always keep an unterminated string as a string node (Python's `x = "abc|` becomes
    // an ERROR): a lexer over the cursor's line up to the cursor catches those.
    lexer lx(tree.lang());
    const size_t begin = line_begin(text, cursor);
    char bracket;
    for (size_t i = begin; i < cursor;) i = lx.step(text, i, bracket);
    if (lx.current() == lexer::str_dq || lx.current() == lexer::str_sq || lx.current() == lexer::str_bt)
        return cursor_context::string;
    if (lx.current() == lexer::line_comment) return cursor_context::comment;
    return cursor_context::code;
}

}  // namespace

cursor_context context_at(const syntax_tree& tree, std::string_view text, size_t cursor) {
    bool interpolation;
    return classify(tree, text, cursor, interpolation);
}

// ---- decide ---------------------------------------------------------------------------------------------------

completion_decision decide(const syntax_tree& tree, std::string_view text, size_t cursor) {
    auto none = [](std::string reason) { return completion_decision{false, completion_decision::single_line, std::move(reason)}; };
    auto single = [](std::string reason) { return completion_decision{true, completion_decision::single_line, std::move(reason)}; };
    auto multi = [](std::string reason) { return completion_decision{true, completion_decision::multi_line, std::move(reason)}; };

    if (cursor > text.size()) return none("cursor out of range");
    if (cursor < text.size() && (static_cast<unsigned char>(text[cursor]) & 0xC0) == 0x80)
        return none("cursor inside a UTF-8 sequence");
    if (cursor < text.size() && is_word_byte(text[cursor])) return none("mid-word");

    bool interpolation;
    switch (classify(tree, text, cursor, interpolation)) {
    case cursor_context::string: return single("inside a string literal");
    case cursor_context::comment: return single("inside a comment");
    case cursor_context::code: break;
    }
    if (interpolation) return single("inside a string interpolation");

    const std::string_view rest = text.substr(cursor, line_end(text, cursor) - cursor);
    for (char c : rest)
        if (!is_blank_char(c) && !is_trailing_closer(c)) return single("text follows the cursor");

    const std::string_view before = text.substr(line_begin(text, cursor), cursor - line_begin(text, cursor));
    if (is_blank(before)) return multi("blank line");
    if (ends_with_block_opener(tree.lang(), before)) return multi("after a block opener");
    return single("code before the cursor");
}

// ---- stop_rule ------------------------------------------------------------------------------------------------

stop_rule::stop_rule(const syntax_tree& tree, std::string_view text, size_t cursor, completion_mode mode,
                     stop_options options)
    : lang_(tree.lang()), mode_(mode), options_(options) {
    cursor = std::min(cursor, text.size());
    context_ = context_at(tree, text, cursor);

    const size_t begin = line_begin(text, cursor), end = line_end(text, cursor);
    const std::string_view before = text.substr(begin, cursor - begin);
    cursor_at_line_start_ = is_blank(before);
    rest_ = std::string(trim(text.substr(cursor, end - cursor)));
    // The first non-blank line below the cursor's line; p is always at a '\n' (or the end).
    for (size_t p = end; p < text.size();) {
        const size_t e = line_end(text, p + 1);
        const std::string_view line = trim(text.substr(p + 1, e - (p + 1)));
        if (!line.empty()) {
            below_ = std::string(line);
            break;
        }
        p = e;
    }

    if (context_ != cursor_context::code || lang_ == language::plain) return;

    if (lang_ == language::python && mode == completion_decision::multi_line) {
        if (cursor_at_line_start_) python_min_indent_ = indent_width(before);
        else if (trim_right(before).ends_with(':')) python_min_indent_ = indent_width(before) + 1;
    }

    // Brackets open before the cursor, counted from the start of the enclosing top-level declaration.
    lexer lx(lang_);
    char bracket;
    int depth = 0;
    for (size_t i = std::min(enclosing_top_level_start(tree, cursor), cursor); i < cursor;) {
        i = lx.step(text, i, bracket);
        if (is_opener(bracket)) ++depth;
        else if (is_closer(bracket) && depth > 0) --depth;
    }
    prefix_open_ = depth;

    // Does the text after the cursor close a bracket it did not open (the one enclosing the cursor)?
    lexer after(lang_);
    depth = 0;
    for (size_t i = cursor; i < text.size();) {
        i = after.step(text, i, bracket);
        if (is_opener(bracket)) ++depth;
        else if (is_closer(bracket)) {
            if (depth == 0) {
                suffix_closes_ = true;
                break;
            }
            --depth;
        }
    }
}

size_t stop_rule::trim_cut(std::string_view g, size_t cut, bool before_line_start_closer) const {
    cut = std::min(cut, g.size());
    if (before_line_start_closer) return cut;
    while (cut > 0 && is_space(g[cut - 1])) --cut;
    return cut;
}

size_t repetition_start(std::string_view g) {
    const size_t n = g.size();
    for (size_t p = 2; p <= 32 && 4 * p <= n; ++p) {
        size_t i = n - 4 * p;
        bool periodic = true;
        for (size_t k = i; k + p < n && periodic; ++k) periodic = g[k] == g[k + p];
        if (!periodic) continue;
        const std::string_view unit = g.substr(n - p);
        if (std::ranges::none_of(unit, [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }))
            continue;
        while (i > 0 && g[i - 1] == g[i - 1 + p]) --i;  // where the run began
        return i + p;                                   // after its first copy
    }
    return std::string_view::npos;
}

stop_check stop_rule::check(std::string_view generated) const {
    stop_check c = scan(generated, false);
    const size_t rep = repetition_start(generated);
    if (rep != npos && (c.keep == npos || rep < c.keep)) return {trim_cut(generated, rep, false), "repetition"};
    return c;
}

size_t stop_rule::finish(std::string_view generated) const {
    const size_t keep = scan(generated, true).keep;
    const size_t rep = repetition_start(generated);
    return rep != npos && rep < keep ? trim_cut(generated, rep, false) : keep;
}

stop_check stop_rule::scan(std::string_view g, bool final) const {
    const bool code = context_ == cursor_context::code && lang_ != language::plain;
    const bool multi = mode_ == completion_decision::multi_line;
    // Inside a string, the quote that closes it on the cursor's line.
    const char quote = context_ == cursor_context::string && !rest_.empty() &&
                               (rest_[0] == '"' || rest_[0] == '\'' || rest_[0] == '`')
                           ? rest_[0]
                           : '\0';
    auto cut = [&](size_t at, std::string_view reason, bool keep_closer_line = false) {
        return stop_check{trim_cut(g, at, keep_closer_line), reason};
    };

    lexer lx(lang_);
    int depth = 0;
    int nonblank_lines = 0;
    std::vector<bool> overlap_starts;  // cursor's line: where an overlap with the rest of the line may begin
    size_t start = 0;
    for (int line_no = 0;; ++line_no) {
        const size_t nl = g.find('\n', start);
        const bool terminated = nl != std::string_view::npos;
        const size_t end = terminated ? nl : g.size();
        const std::string_view line = g.substr(start, end - start);
        const size_t indent = leading_blanks(line);
        const bool blank = indent == line.size();
        const bool at_line_start = line_no > 0 || cursor_at_line_start_;

        // Rules that end the completion before this line.
        if (!blank) {
            if (multi && nonblank_lines >= options_.max_lines) return cut(start, "max lines");
            ++nonblank_lines;
            if (line_no > 0 && python_min_indent_ >= 0 && lx.current() == lexer::code && !is_closer(line[indent]) &&
                indent_width(line) < python_min_indent_)
                return cut(start, "end of block (dedent)");
            if (at_line_start && !below_.empty() && (!code || depth == 0)) {
                const std::string_view t = trim_right(line.substr(indent));
                const bool whole = (terminated || final) && t == below_;
                const bool long_prefix = t.size() >= options_.min_overlap && below_.starts_with(t);
                const bool final_prefix = final && !terminated && below_.starts_with(t);
                if (whole || long_prefix || final_prefix) return cut(start, "repeats the next line");
            }
        }

        bool closes_open_block = false;
        for (size_t i = start; i < end;) {
            // Outside a string a backslash is no escape; inside one, an escaped character starts nothing.
            size_t backslashes = 0;
            if (context_ == cursor_context::string)
                while (backslashes < i && g[i - 1 - backslashes] == '\\') ++backslashes;
            const bool escaped = backslashes % 2 == 1;
            // The rest of the cursor's line, repeated (or begun) from here.
            const bool overlap_may_start =
                line_no == 0 && !rest_.empty() && !escaped && !is_space(g[i]) &&
                (!code || (depth == 0 && lx.current() == lexer::code));
            if (overlap_may_start) {
                if (overlap_starts.empty()) overlap_starts.assign(end - start, false);
                overlap_starts[i - start] = true;
                const std::string_view s = g.substr(i, end - i);
                const size_t min_len = std::min(options_.min_overlap, rest_.size());
                const bool partial_ok = s.size() >= min_len || (final && !terminated);
                if (s.starts_with(rest_) || (partial_ok && std::string_view(rest_).starts_with(s)))
                    return cut(i, "repeats the rest of the line");
            }
            if (quote && g[i] == quote && !escaped) return cut(i, "end of the string");
            if (!code) {
                ++i;
                continue;
            }
            char bracket;
            const size_t next = lx.step(g, i, bracket);
            if (is_opener(bracket)) {
                ++depth;
            } else if (is_closer(bracket)) {
                if (depth > 0) {
                    --depth;
                } else if (closes_open_block) {
                    // Further closers on the line that closes the open block: kept with it.
                } else if (prefix_open_ > 0 && !suffix_closes_) {
                    closes_open_block = true;
                } else {
                    // On the cursor's line the closer usually is the one in the rest of the line: when the text
                    // before it begins that rest too (`foo(| b);` + `a, b)`), the overlap starts there.
                    if (line_no == 0)
                        for (size_t p = start; p < i; ++p)
                            if (p - start < overlap_starts.size() && overlap_starts[p - start] &&
                                std::string_view(rest_).starts_with(g.substr(p, i + 1 - p)))
                                return cut(p, "repeats the rest of the line");
                    const bool line_start_closer = line_no > 0 && is_blank(g.substr(start, i - start)) &&
                                                   !rest_.empty() && is_closer(rest_[0]);
                    return cut(i, "closes the enclosing block", line_start_closer);
                }
            }
            i = next;
        }
        if (closes_open_block && terminated) return stop_check{end, "closes the open block"};
        if (!multi && terminated) return cut(end, "end of line");
        if (!terminated) break;
        if (code) {
            char bracket;
            lx.step(g, nl, bracket);
        }
        start = nl + 1;
    }
    if (final) return cut(g.size(), "end of text");
    return {};
}

}  // namespace spark::lsp
