// Text documents as the language server holds them: the UTF-8 text of each open file, a line index, and the
// conversion between LSP positions (line, character counted in the negotiated encoding) and byte offsets.
//
// Plain C++ on purpose: no JSON and no Asio, so the model can be tested and fuzzed alone; the protocol layer turns
// JSON into the structs below.
//
// Conventions, all from the LSP specification:
// - Lines end at "\n", "\r\n" or "\r". A document always has at least one line; "a\n" has two (the second empty).
// - `character` counts code units of the position encoding within the line: bytes (utf-8), UTF-16 code units
//   (utf-16: 2 for code points above U+FFFF, 1 otherwise) or code points (utf-32).
// - A character past the end of its line means the end of the line (the spec: "it defaults back to the line
//   length"). A line past the last line is an error.
// - A position that falls inside a character (between the two units of a surrogate pair in utf-16, or on a
//   continuation byte in utf-8) snaps to the START of that character. Snapping backwards never moves a position
//   across a line break and keeps the conversion monotonic, so a range can shrink but never turn inside out; the
//   client meant some position near that character and the start is the only place an edit can land without
//   splitting it.
// - The text is always valid UTF-8 (strict: no overlong forms, no surrogates, nothing above U+10FFFF); open and
//   apply_change reject anything else, naming the byte offset.
#pragma once

#include "support/result.h"

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spark::lsp {

enum class position_encoding { utf8, utf16, utf32 };

// The protocol's name: "utf-8", "utf-16", "utf-32".
std::string_view name(position_encoding enc);

// The inverse of name(); nullopt for any other string (clients may offer encodings we do not know).
std::optional<position_encoding> parse_position_encoding(std::string_view s);

struct position {
    uint32_t line = 0;
    uint32_t character = 0;
    friend auto operator<=>(const position&, const position&) = default;
};

struct range {
    position start;
    position end;
    friend bool operator==(const range&, const range&) = default;
};

// Tree-sitter's TSPoint: (row, column in bytes). Tree-sitter starts a new row after "\n" only, so a lone "\r" does
// not start a row here even though it ends an LSP line; with "\n" and "\r\n" rows and LSP lines coincide.
using byte_point = std::pair<uint32_t, uint32_t>;

// One edit in byte terms: what ts_tree_edit needs (TSInputEdit). [start, old_end) of the old text was replaced by
// [start, new_end) of the new text. old_end_point is measured in the old text, the other two in the new one.
struct byte_edit {
    size_t start = 0;
    size_t old_end = 0;
    size_t new_end = 0;
    byte_point start_point{0, 0};
    byte_point old_end_point{0, 0};
    byte_point new_end_point{0, 0};
    friend bool operator==(const byte_edit&, const byte_edit&) = default;
};

// Positions, line counts and byte columns are 32-bit in LSP and tree-sitter, so a document is at most this large
// (one byte less than 4 GiB keeps even a document of nothing but line breaks countable).
inline constexpr size_t max_document_bytes = 0xFFFFFFFEu;

// One open document. A value type: copyable and movable. Not synchronised: const members may run concurrently
// with each other, but nothing may run concurrently with a mutation (apply_change, set_version, assignment).
// Whoever needs the text on another thread takes a copy of text() there.
class text_document {
public:
    // Fails, naming the byte offset, when text is not valid UTF-8 or is larger than max_document_bytes.
    static result<text_document> open(std::string uri, std::string language_id, int32_t version, std::string text);

    // The byte offset of p. Fails when p.line >= line_count(). A character past the end of the line gives the end
    // of the line (before its line break); one inside a character gives that character's start (see above).
    result<size_t> offset_of(position p, position_encoding enc) const;

    // The position of a byte offset. Offsets past the end clamp to the end; an offset inside a character counts as
    // that character's start; an offset inside a line break ("\r|\n" or on the break itself) is the end of its line.
    // For every offset o at a character boundary outside a line break, offset_of(position_of(o, e), e) == o.
    position position_of(size_t offset, position_encoding enc) const;

    // Tree-sitter's (row, byte column) of a byte offset (clamped to the end); rows end at "\n" only.
    byte_point point_of(size_t offset) const;

    // Applies one contentChange: replaces range r (positions in enc) by text, or the whole document when r is
    // nullopt. Fails, leaving the document unchanged, when text is not valid UTF-8, r.end is before r.start, a line
    // of r is past the last line, or the result would exceed max_document_bytes. Returns the edit in byte terms
    // for ts_tree_edit (last_edit() keeps a copy). Several changes of one didChange apply in order, each to the
    // result of the previous one.
    result<byte_edit> apply_change(std::optional<range> r, std::string_view text, position_encoding enc);

    // The edit made by the last successful apply_change (all zero before the first).
    const byte_edit& last_edit() const { return last_edit_; }

    const std::string& uri() const { return uri_; }
    const std::string& language_id() const { return language_id_; }
    int32_t version() const { return version_; }
    void set_version(int32_t v) { version_ = v; }

    std::string_view text() const { return text_; }
    size_t size() const { return text_.size(); }

    // Number of lines: 1 + the number of line breaks.
    uint32_t line_count() const { return uint32_t(line_starts_.size()); }

    // Line i without its line break; empty for i >= line_count().
    std::string_view line(uint32_t i) const;

    // Byte offset where line i starts; size() for i >= line_count().
    size_t line_start(uint32_t i) const;

private:
    text_document() = default;

    // Byte offset of the end of line i's text (where its line break starts, or the end of the document).
    size_t content_end(uint32_t i) const;
    // The line containing offset (offset <= size()).
    uint32_t line_of(size_t offset) const;
    // Whether a line starts at p (0 < p <= size()) in the current text.
    bool starts_line(size_t p) const;
    // Replaces [start, end) by ins (already validated) and updates the line index in place: line starts before
    // start keep their value, those after end shift by the change in length, and only [start, start + ins.size()]
    // is rescanned, so a small edit costs a memmove rather than a rescan of the whole document.
    void replace_bytes(size_t start, size_t end, std::string_view ins);

    std::string uri_;
    std::string language_id_;
    int32_t version_ = 0;
    std::string text_;
    // Byte offset of the first byte of every line; line_starts_[0] == 0, strictly increasing.
    std::vector<size_t> line_starts_{0};
    // Line breaks that are a lone "\r". While there are none, tree-sitter rows equal LSP lines and point_of uses
    // the line index; otherwise it counts "\n" bytes (old Mac files are rare enough for that to be fine).
    size_t lone_cr_breaks_ = 0;
    byte_edit last_edit_;
};

// One contentChange of a didChange: a range (nullopt: the whole document) and the new text. text is read during
// the call only, so it may view the caller's parsed JSON.
struct content_change {
    std::optional<spark::lsp::range> range;
    std::string_view text;
};

// The open documents by URI. Owned by the protocol thread, which applies didOpen/didChange/didClose in the order
// they arrive; not thread-safe. Requests that run elsewhere take copies (a text_document is a value) rather than
// pointers, because the next didChange or didClose invalidates what find() returned.
class document_store {
public:
    // didOpen. Opening a URI that is already open replaces it (the client re-sent it; its text is the truth).
    // Fails on invalid UTF-8, leaving the store unchanged.
    result<void> open(std::string uri, std::string language_id, int32_t version, std::string text);

    // didChange: applies the changes in order and then sets the version. All or nothing: if any change fails the
    // document stays as it was (version included) and the error names the change. Fails for a URI that is not
    // open. Returns the byte edits in the order they were applied.
    result<std::vector<byte_edit>> change(std::string_view uri, int32_t version, std::span<const content_change> changes,
                                          position_encoding enc);

    // didClose. Fails (harmlessly; the caller may just log it) for a URI that is not open.
    result<void> close(std::string_view uri);

    // The document, or nullptr when the URI is not open. Valid until the next open/change/close of any document.
    const text_document* find(std::string_view uri) const;

    size_t size() const { return docs_.size(); }

private:
    struct uri_hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, text_document, uri_hash, std::equal_to<>> docs_;
};

}  // namespace spark::lsp
