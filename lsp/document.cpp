#include "lsp/document.h"

#include <algorithm>
#include <cstring>

namespace spark::lsp {

namespace {

struct utf8_problem {
    size_t offset;     // where the offending sequence starts
    const char* what;  // why it is not UTF-8
};

// Strict UTF-8 validation (Unicode 15, table 3-7): the first offending sequence, or nullopt.
std::optional<utf8_problem> find_invalid_utf8(std::string_view s) {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        // Source files are mostly ASCII: skip eight ASCII bytes at a time.
        if (n - i >= 8) {
            uint64_t w;
            std::memcpy(&w, b + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        const unsigned char c = b[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;       // overlong
            else if (c == 0xED) hi = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;       // overlong
            else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else if (c < 0xC0) {
            return utf8_problem{i, "continuation byte without a lead byte"};
        } else {
            return utf8_problem{i, "byte that never occurs in UTF-8"};
        }
        for (size_t k = 1; k < len; ++k) {
            if (i + k >= n) return utf8_problem{i, "sequence cut off by the end of the text"};
            const unsigned char ck = b[i + k];
            const unsigned char klo = k == 1 ? lo : 0x80, khi = k == 1 ? hi : 0xBF;
            if (ck < klo || ck > khi) {
                return utf8_problem{i, k == 1 && ck >= 0x80 && ck <= 0xBF
                                           ? "overlong, surrogate or out-of-range sequence"
                                           : "sequence cut off by a byte that is not a continuation byte"};
            }
        }
        i += len;
    }
    return std::nullopt;
}

std::string hex_byte(unsigned char c) {
    constexpr char digits[] = "0123456789ABCDEF";
    return {'0', 'x', digits[c >> 4], digits[c & 15]};
}

// "<what> is not valid UTF-8: <why> at byte offset N (0xNN)", or nothing when s is valid.
result<void> check_utf8(std::string_view s, std::string_view what) {
    if (auto p = find_invalid_utf8(s)) {
        return fail(what, " is not valid UTF-8: ", p->what, " at byte offset ", p->offset, " (",
                    hex_byte(static_cast<unsigned char>(s[p->offset])), ")");
    }
    return {};
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Length of the (valid) sequence that starts with lead byte c.
size_t sequence_length(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x80 ? 1 : u < 0xE0 ? 2 : u < 0xF0 ? 3 : 4;
}

// Code units of enc taken by a character whose UTF-8 form has len bytes.
uint32_t units_of(size_t len, position_encoding enc) {
    switch (enc) {
        case position_encoding::utf8: return uint32_t(len);
        case position_encoding::utf16: return len == 4 ? 2 : 1;
        case position_encoding::utf32: return 1;
    }
    return 1;
}

std::string to_string(position p) { return concat(p.line, ':', p.character); }

}  // namespace

std::string_view name(position_encoding enc) {
    switch (enc) {
        case position_encoding::utf8: return "utf-8";
        case position_encoding::utf16: return "utf-16";
        case position_encoding::utf32: return "utf-32";
    }
    return "utf-16";
}

std::optional<position_encoding> parse_position_encoding(std::string_view s) {
    if (s == "utf-8") return position_encoding::utf8;
    if (s == "utf-16") return position_encoding::utf16;
    if (s == "utf-32") return position_encoding::utf32;
    return std::nullopt;
}

// ---- text_document ------------------------------------------------------------------------------------------------

result<text_document> text_document::open(std::string uri, std::string language_id, int32_t version,
                                          std::string text) {
    if (text.size() > max_document_bytes) {
        return fail("document ", uri, " is ", text.size(), " bytes; the limit is ", max_document_bytes);
    }
    if (auto ok = check_utf8(text, concat("the text of ", uri)); !ok) return std::unexpected(ok.error());
    text_document d;
    d.uri_ = std::move(uri);
    d.language_id_ = std::move(language_id);
    d.version_ = version;
    d.replace_bytes(0, 0, text);
    return d;
}

bool text_document::starts_line(size_t p) const {
    const char before = text_[p - 1];
    return before == '\n' || (before == '\r' && (p == text_.size() || text_[p] != '\n'));
}

size_t text_document::content_end(uint32_t i) const {
    if (size_t(i) + 1 >= line_starts_.size()) return text_.size();
    const size_t next = line_starts_[i + 1];
    // A "\r\n" break is two bytes; the "\r" belongs to this line only if the line has a byte before the "\n".
    if (text_[next - 1] == '\n' && next >= line_starts_[i] + 2 && text_[next - 2] == '\r') return next - 2;
    return next - 1;
}

uint32_t text_document::line_of(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    return uint32_t(it - line_starts_.begin() - 1);
}

std::string_view text_document::line(uint32_t i) const {
    if (i >= line_count()) return {};
    const size_t b = line_starts_[i];
    return std::string_view(text_).substr(b, content_end(i) - b);
}

size_t text_document::line_start(uint32_t i) const { return i < line_count() ? line_starts_[i] : text_.size(); }

result<size_t> text_document::offset_of(position p, position_encoding enc) const {
    if (p.line >= line_count()) {
        return fail("position ", to_string(p), " is past the end of ", uri_, ", which has ", line_count(),
                    line_count() == 1 ? " line" : " lines");
    }
    const size_t begin = line_starts_[p.line];
    const size_t end = content_end(p.line);
    if (enc == position_encoding::utf8) {
        size_t off = begin + std::min<size_t>(p.character, end - begin);
        // Inside a multi-byte character: back to its lead byte (line starts are never continuation bytes).
        if (off < end)
            while (is_continuation(text_[off])) --off;
        return off;
    }
    size_t off = begin;
    uint32_t units = 0;
    while (off < end) {
        const size_t len = sequence_length(text_[off]);
        const uint32_t u = units_of(len, enc);
        // Stops at the character that reaches past p.character: at its start if p is on it or inside it.
        if (u > p.character - units) break;
        units += u;
        off += len;
    }
    return off;
}

position text_document::position_of(size_t offset, position_encoding enc) const {
    offset = std::min(offset, text_.size());
    const uint32_t ln = line_of(offset);
    const size_t begin = line_starts_[ln];
    const size_t end = content_end(ln);
    if (offset >= end) {
        offset = end;  // on or inside the line break
    } else {
        while (is_continuation(text_[offset])) --offset;
    }
    if (enc == position_encoding::utf8) return {ln, uint32_t(offset - begin)};
    uint32_t units = 0;
    for (size_t off = begin; off < offset;) {
        const size_t len = sequence_length(text_[off]);
        units += units_of(len, enc);
        off += len;
    }
    return {ln, units};
}

byte_point text_document::point_of(size_t offset) const {
    offset = std::min(offset, text_.size());
    if (lone_cr_breaks_ == 0) {
        const uint32_t ln = line_of(offset);
        return {ln, uint32_t(offset - line_starts_[ln])};
    }
    const std::string_view before = std::string_view(text_).substr(0, offset);
    const auto rows = uint32_t(std::count(before.begin(), before.end(), '\n'));
    const size_t last_nl = before.rfind('\n');
    const size_t row_start = last_nl == std::string_view::npos ? 0 : last_nl + 1;
    return {rows, uint32_t(offset - row_start)};
}

result<byte_edit> text_document::apply_change(std::optional<range> r, std::string_view text, position_encoding enc) {
    if (auto ok = check_utf8(text, concat("the text of a change to ", uri_)); !ok) return std::unexpected(ok.error());
    size_t start = 0, end = text_.size();
    if (r) {
        if (r->end < r->start) {
            return fail("the range ", to_string(r->start), "-", to_string(r->end), " of a change to ", uri_,
                        " ends before it starts");
        }
        auto s = offset_of(r->start, enc);
        if (!s) return fail("the start of a change: ", s.error().message);
        auto e = offset_of(r->end, enc);
        if (!e) return fail("the end of a change: ", e.error().message);
        start = *s;
        end = *e;  // >= start: offset_of is monotonic in the position
    }
    const size_t new_size = text_.size() - (end - start) + text.size();
    if (text.size() > max_document_bytes || new_size > max_document_bytes) {
        return fail("a change would make ", uri_, " ", new_size, " bytes; the limit is ", max_document_bytes);
    }
    byte_edit edit;
    edit.start = start;
    edit.old_end = end;
    edit.new_end = start + text.size();
    edit.start_point = point_of(start);
    edit.old_end_point = point_of(end);
    replace_bytes(start, end, text);
    edit.new_end_point = point_of(edit.new_end);
    last_edit_ = edit;
    return edit;
}

void text_document::replace_bytes(size_t start, size_t end, std::string_view ins) {
    // Whether a line starts at p depends only on the bytes at p - 1 and p (and on p being the end). So line starts
    // below start are unaffected, those above end only move, and only p in [start, new_end] needs a fresh look.
    // line_starts_[0] == 0 is never touched.
    const auto first = std::lower_bound(line_starts_.begin() + 1, line_starts_.end(), start);
    const auto last = std::upper_bound(first, line_starts_.end(), end);
    for (auto it = first; it != last; ++it)
        if (text_[*it - 1] == '\r') --lone_cr_breaks_;  // a line start after "\r" follows a lone "\r"
    const size_t new_end = start + ins.size();
    for (auto it = last; it != line_starts_.end(); ++it) *it = *it - end + new_end;

    text_.replace(start, end - start, ins);

    std::vector<size_t> fresh;
    for (size_t p = std::max<size_t>(start, 1); p <= new_end; ++p) {
        if (starts_line(p)) {
            fresh.push_back(p);
            if (text_[p - 1] == '\r') ++lone_cr_breaks_;
        }
    }
    // Splice fresh over [first, last) with as little moving as possible.
    const auto i_first = first - line_starts_.begin();
    const auto n_old = last - first;
    const auto n_new = ptrdiff_t(fresh.size());
    const auto n_common = std::min(n_old, n_new);
    std::copy_n(fresh.begin(), n_common, line_starts_.begin() + i_first);
    if (n_old > n_new) {
        line_starts_.erase(line_starts_.begin() + i_first + n_common, line_starts_.begin() + i_first + n_old);
    } else if (n_new > n_old) {
        line_starts_.insert(line_starts_.begin() + i_first + n_common, fresh.begin() + n_common, fresh.end());
    }
}

// ---- document_store -----------------------------------------------------------------------------------------------

result<void> document_store::open(std::string uri, std::string language_id, int32_t version, std::string text) {
    auto doc = text_document::open(uri, std::move(language_id), version, std::move(text));
    if (!doc) return std::unexpected(doc.error());
    docs_.insert_or_assign(std::move(uri), std::move(*doc));
    return {};
}

result<std::vector<byte_edit>> document_store::change(std::string_view uri, int32_t version,
                                                      std::span<const content_change> changes,
                                                      position_encoding enc) {
    const auto it = docs_.find(uri);
    if (it == docs_.end()) return fail("didChange for ", uri, ", which is not open (no didOpen, or already closed)");
    std::vector<byte_edit> edits;
    edits.reserve(changes.size());
    auto apply_all = [&](text_document& d) -> result<void> {
        for (size_t i = 0; i < changes.size(); ++i) {
            auto e = d.apply_change(changes[i].range, changes[i].text, enc);
            if (!e) return fail("change ", i + 1, " of ", changes.size(), ": ", e.error().message);
            edits.push_back(*e);
        }
        return {};
    };
    if (changes.size() <= 1) {
        // apply_change is all-or-nothing by itself; no copy needed.
        if (auto ok = apply_all(it->second); !ok) return std::unexpected(ok.error());
    } else {
        // A later change may fail after earlier ones applied: work on a copy so the document stays as it was.
        text_document copy = it->second;
        if (auto ok = apply_all(copy); !ok) return std::unexpected(ok.error());
        it->second = std::move(copy);
    }
    it->second.set_version(version);
    return edits;
}

result<void> document_store::close(std::string_view uri) {
    const auto it = docs_.find(uri);
    if (it == docs_.end()) return fail("didClose for ", uri, ", which is not open");
    docs_.erase(it);
    return {};
}

const text_document* document_store::find(std::string_view uri) const {
    const auto it = docs_.find(uri);
    return it == docs_.end() ? nullptr : &it->second;
}

}  // namespace spark::lsp
