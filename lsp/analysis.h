// Syntax analysis for completions: one tree-sitter tree per document, the decision whether and how much to
// complete at a cursor, and the stop rule that ends a generated completion at the right place.
//
// Plain C++ on UTF-8 text and byte offsets: no JSON, no Asio, no LSP positions (lsp/document.h converts those).
// Every rule below is textual or uses the tree only where it is reliable (is the cursor in a comment or a string;
// where the enclosing top-level declaration starts); a document of an unknown language gets no tree and the same
// text rules.
//
// Thread contract: a syntax_tree and decide() belong to the protocol thread. A stop_rule is built there and copies
// everything it needs, so it can then be moved into generation_params::stop_criterion and called on the engine
// thread; it keeps no reference to the tree or the text.
#pragma once

#include "lsp/document.h"  // byte_edit
#include "support/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct TSParser;
struct TSTree;

namespace spark::lsp {

// The grammars compiled into spark_treesitter, plus plain text (no tree).
enum class language { plain, python, c, cpp, javascript, typescript, tsx, rust, go, java };

// From an LSP languageId: python, c, cpp, javascript, javascriptreact (the javascript grammar parses JSX),
// typescript, typescriptreact (tsx), rust, go, java, and a few common aliases (py, c++, js, jsx, ts, golang, rs).
// Anything else is language::plain.
language language_of(std::string_view language_id);

// "plain", "python", "c", ... (the grammar's name).
std::string_view name(language lang);

// The tree of one document. Owns its TSParser and TSTree. Move-only.
// Thread contract: one thread (the protocol thread); not synchronised.
class syntax_tree {
public:
    // A parser for lang. language::plain, or a grammar the runtime refuses (ABI mismatch), gives a tree that
    // never has a tree: has_tree() stays false and parse() reports the refusal.
    explicit syntax_tree(language lang = language::plain);
    static syntax_tree for_language_id(std::string_view language_id) { return syntax_tree(language_of(language_id)); }

    syntax_tree(syntax_tree&&) noexcept;
    syntax_tree& operator=(syntax_tree&&) noexcept;
    syntax_tree(const syntax_tree&) = delete;
    syntax_tree& operator=(const syntax_tree&) = delete;
    ~syntax_tree();

    language lang() const { return lang_; }

    // Whether a tree for the last parsed text exists (false for plain text, before the first parse and after a
    // failed one). Without a tree every analysis falls back to text rules.
    bool has_tree() const { return tree_ != nullptr; }

    // Parses text from scratch, dropping any previous tree. Plain text: succeeds and keeps no tree. Fails (and
    // keeps no tree) when the grammar was refused or the text exceeds max_document_bytes.
    result<void> parse(std::string_view text);

    // Records one edit on the current tree (ts_tree_edit): [e.start, e.old_end) of the old text became
    // [e.start, e.new_end) of the new text; the points are tree-sitter's (row, byte column). Several edits may be
    // recorded, in the order they were applied to the text, before one reparse(). No-op without a tree.
    void edit(const byte_edit& e);

    // Reparses incrementally after edit(): text must be the document after all recorded edits. Without a tree
    // this is parse(text). Fails like parse(); on failure no tree is kept.
    result<void> reparse(std::string_view text);

    // The current tree (nullptr without one), for callers that walk it with the tree-sitter API.
    const TSTree* tree() const { return tree_.get(); }

    // The root node as an S-expression (ts_node_string), "" without a tree. For tests and logs.
    std::string sexp() const;

private:
    struct parser_deleter {
        void operator()(TSParser* p) const;
    };
    struct tree_deleter {
        void operator()(TSTree* t) const;
    };

    result<void> run_parser(std::string_view text, const TSTree* old_tree);

    language lang_ = language::plain;
    std::unique_ptr<TSParser, parser_deleter> parser_;  // null for plain text or a refused grammar
    std::unique_ptr<TSTree, tree_deleter> tree_;
};

// What surrounds the cursor.
enum class cursor_context { code, comment, string };

// From the tree: inside a comment (a line comment includes the position right after its last character) or a
// string/character literal (strictly between its delimiters; an interpolation such as `${x}` or Python's `{x}` is
// code again). Where the tree says code, a lexer over the cursor's line still finds an unterminated string or a
// line comment that error recovery lost. Always code for plain text. cursor is a byte offset into the text the
// tree was parsed from.
cursor_context context_at(const syntax_tree& tree, std::string_view text, size_t cursor);

// Whether to complete at a cursor, and how much.
struct completion_decision {
    bool complete = false;
    enum mode { single_line, multi_line } mode = single_line;
    std::string reason;  // one short phrase for logs and tests ("mid-word", "after a block opener", ...)
};
using completion_mode = decltype(completion_decision::mode);

// Decides at byte offset cursor of text (the text the tree was last parsed from). The rules, first match wins:
//  1. cursor past the end of text, or inside a UTF-8 sequence              -> no completion
//  2. a word character directly right of the cursor (ASCII letter, digit, '_', or any non-ASCII byte: the user
//     is inside or in front of a word, a completion would split it)       -> no completion ("mid-word")
//  3. inside a string literal                                              -> single-line
//  4. inside a comment (completing prose in comments is useful)            -> single-line
//     inside a string's interpolation (`${x}`, Python's f"{x}")            -> single-line
//  5. the rest of the line after the cursor holds anything but whitespace and closers ) ] } " ' ` ; , :
//     (typing in the middle of an expression)                              -> single-line
//  6. the line before the cursor is blank (whitespace only)                -> multi-line
//  7. the line before the cursor ends (ignoring trailing whitespace) with a block opener: '{', '(', '[', "=>";
//     in Python ':' when the line starts with a compound-statement keyword (def, class, if, elif, else, for,
//     while, try, except, finally, with, async, match, case); plain text: '{', '(', '['  -> multi-line
//  8. anything else (end of a statement, after `x = `)                     -> single-line
// Lines end at "\n"; a "\r" before it belongs to the break.
completion_decision decide(const syntax_tree& tree, std::string_view text, size_t cursor);

struct stop_options {
    // Multi-line mode: at most this many non-blank lines are kept; the completion ends before the next one.
    int max_lines = 12;
    // Suffix overlap: a generated line that is a prefix of at least this many bytes of the first non-blank line
    // below the cursor (or of the rest of the cursor's line) counts as repeating it before the line is complete.
    // Shorter lines must be repeated whole. Larger values mean fewer false alarms and a few more tokens decoded.
    size_t min_overlap = 12;
};

// Where a run of at least four copies of one unit (2-32 bytes, holding a letter) that ends the text
// begins its second copy, or npos: "x = a.b.b.b.b" -> 7 (keep "x = a.b"). Units without a letter ("----",
// "    ", "0, ") are legitimate code and never count.
size_t repetition_start(std::string_view generated);

// Why a stop_rule ended the text; the reason is a static string.
struct stop_check {
    size_t keep = std::string_view::npos;  // bytes of the generated text to keep; npos: go on
    std::string_view reason;               // empty when keep is npos
};

// The stop criterion of one completion: called with the generated text so far (after each token), it says how
// many bytes to keep when the completion should end, or npos to go on. Plugs into
// generation_params::stop_criterion. Rules (the earliest position at which one fires wins):
//  - single-line: the first "\n" ends the completion.
//  - multi-line: the (max_lines + 1)-th non-blank line ends it before that line.
//  - multi-line Python, when the cursor opens a block (after `def f():`) or sits on a blank line: a line
//    indented less than the block (at most as much as the header line; less than the cursor's column on a blank
//    line) ends it before that line. A line that starts with a closing bracket is left to the bracket rule.
//  - code in a language with a grammar: a closing bracket that closes more than the generated text opened ends
//    the completion before that bracket when the text after the cursor already closes the enclosing bracket (or
//    when nothing before the cursor is open). When the document before the cursor leaves a bracket open that
//    nothing after the cursor closes, the completion may close it and ends at the end of that line instead.
//    Brackets in the generated text's strings and comments are skipped (a small per-language lexer).
//  - suffix overlap, so a completion never repeats what is already there:
//    * a generated line that starts where a line starts (always after a "\n"; on the cursor's line when only
//      whitespace precedes the cursor), at bracket depth 0, and equals the first non-blank line of the document
//      below the cursor's line (both trimmed; equality needs the line's "\n"), or is a prefix of it of at least
//      min_overlap bytes, is cut with its line;
//    * on the cursor's line, where the generated text (at bracket depth 0, outside its own strings) continues
//      with the rest of the cursor's line R (trimmed), or ends with a prefix of R of at least
//      min(min_overlap, |R|) bytes, it is cut where that overlap begins (`foo(|);` + `a, b);` -> `a, b`); when
//      the bracket rule fires on the cursor's line, an overlap with R that ends with that bracket moves the cut
//      to where the overlap begins (`foo(| b);` + `a, b)` -> `a,`);
//    * inside a string, the first unescaped quote that closes the string (the quote that starts R) ends it.
//  - degenerate repetition (small models loop): when the text ends with four copies of a unit of 2-32 bytes that
//    holds a letter, it is cut after the run's first copy (repetition_start()).
// After a cut, trailing whitespace is dropped, except when the cut is before a closing bracket at the start of
// a generated line and the rest of the cursor's line starts with a closer (`{|}`): then the line break and
// indentation before the bracket stay, so the existing closer lands on its own line.
// The engine never shortens text it already streamed through on_text, so a caller that streams should show the
// final text only (or hold back the current line).
// Cost: one pass over the generated text per call (no state kept between calls), plus at construction one pass
// over the enclosing top-level declaration and the text below the cursor up to the first unmatched closer.
class stop_rule {
public:
    static constexpr size_t npos = std::string_view::npos;

    stop_rule(const syntax_tree& tree, std::string_view text, size_t cursor, completion_mode mode,
              stop_options options = {});

    size_t operator()(std::string_view generated) const { return check(generated).keep; }
    stop_check check(std::string_view generated) const;

    // For text whose generation ended for another reason (end of text token, token limit, time budget): check(),
    // and when that goes on, also drops a trailing partial repeat of the suffix (any length) and trailing
    // whitespace. Returns the bytes to keep.
    size_t finish(std::string_view generated) const;

private:
    stop_check scan(std::string_view g, bool final) const;
    size_t trim_cut(std::string_view g, size_t cut, bool before_line_start_closer) const;

    language lang_ = language::plain;
    cursor_context context_ = cursor_context::code;
    completion_mode mode_ = completion_decision::single_line;
    stop_options options_;
    bool cursor_at_line_start_ = false;  // only whitespace before the cursor on its line
    std::string rest_;                   // rest of the cursor's line, trimmed
    std::string below_;                  // first non-blank line below the cursor's line, trimmed
    int python_min_indent_ = -1;         // multi-line Python: lines indented less end the block; -1: no rule
    int prefix_open_ = 0;                // brackets left open before the cursor (in the enclosing declaration)
    bool suffix_closes_ = false;         // the text after the cursor has an unmatched closing bracket
};

}  // namespace spark::lsp
