// The document model: position encodings, line breaks, edits and the document store.
//
// Hand-written cases pin the conventions (clamping past the line end, snapping inside a character, which line breaks
// count); a randomized differential test checks every edit against a model written independently on std::u32string
// (one code point per element, lines split naively); a fuzz test feeds random bytes, positions and edits and checks
// that errors stay values and the invariants hold (valid UTF-8 text, a line index that matches a fresh count).
#include "lsp/document.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace spark::lsp;

namespace Catch {
template <>
struct StringMaker<position> {
    static std::string convert(const position& p) { return spark::concat(p.line, ':', p.character); }
};
template <>
struct StringMaker<byte_edit> {
    static std::string convert(const byte_edit& e) {
        return spark::concat('[', e.start, ',', e.old_end, "->", e.new_end, " (", e.start_point.first, ',',
                             e.start_point.second, ")(", e.old_end_point.first, ',', e.old_end_point.second, ")(",
                             e.new_end_point.first, ',', e.new_end_point.second, ")]");
    }
};
}  // namespace Catch

namespace {

constexpr position_encoding all_encodings[] = {position_encoding::utf8, position_encoding::utf16,
                                               position_encoding::utf32};

// ---- an independent model on code points --------------------------------------------------------------------------

std::string encode(std::u32string_view s) {
    std::string out;
    for (char32_t c : s) {
        if (c < 0x80) {
            out += char(c);
        } else if (c < 0x800) {
            out += char(0xC0 | (c >> 6));
            out += char(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += char(0xE0 | (c >> 12));
            out += char(0x80 | ((c >> 6) & 0x3F));
            out += char(0x80 | (c & 0x3F));
        } else {
            out += char(0xF0 | (c >> 18));
            out += char(0x80 | ((c >> 12) & 0x3F));
            out += char(0x80 | ((c >> 6) & 0x3F));
            out += char(0x80 | (c & 0x3F));
        }
    }
    return out;
}

// Strict validity, decided by decoding and checking the result rather than by the lead-byte tables the
// implementation uses: the code point must need exactly as many bytes as were read, and be a scalar value.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        int len = 0;
        char32_t cp = 0;
        if (c < 0x80) len = 1, cp = c;
        else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
        else return false;
        if (i + size_t(len) > s.size()) return false;
        for (int k = 1; k < len; ++k) {
            const auto ck = static_cast<unsigned char>(s[i + size_t(k)]);
            if ((ck & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (ck & 0x3F);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        if (encode(std::u32string(1, cp)).size() != size_t(len)) return false;  // overlong
        i += size_t(len);
    }
    return true;
}

uint32_t units(char32_t c, position_encoding enc) {
    switch (enc) {
        case position_encoding::utf8: return uint32_t(encode(std::u32string(1, c)).size());
        case position_encoding::utf16: return c >= 0x10000 ? 2 : 1;
        case position_encoding::utf32: return 1;
    }
    return 1;
}

struct model_line {
    size_t begin;  // code point index of the first character
    size_t end;    // code point index of the line break (or the end of the text)
};

std::vector<model_line> split_lines(std::u32string_view t) {
    std::vector<model_line> out;
    size_t b = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == U'\n' || t[i] == U'\r') {
            out.push_back({b, i});
            if (t[i] == U'\r' && i + 1 < t.size() && t[i + 1] == U'\n') ++i;
            b = i + 1;
        }
    }
    out.push_back({b, t.size()});
    return out;
}

// The code point index a position means: every code unit of a character maps to that character's index, and
// anything past the line's units maps to its end.
std::optional<size_t> model_index(std::u32string_view t, const std::vector<model_line>& lines, position p,
                                  position_encoding enc) {
    if (p.line >= lines.size()) return std::nullopt;
    const model_line l = lines[p.line];
    std::vector<size_t> unit_owner;
    for (size_t i = l.begin; i < l.end; ++i)
        for (uint32_t u = 0; u < units(t[i], enc); ++u) unit_owner.push_back(i);
    return p.character < unit_owner.size() ? unit_owner[p.character] : l.end;
}

position model_position(std::u32string_view t, const std::vector<model_line>& lines, size_t index,
                        position_encoding enc) {
    for (uint32_t ln = 0; ln < lines.size(); ++ln) {
        const model_line l = lines[ln];
        const size_t next = ln + 1 < lines.size() ? lines[ln + 1].begin : t.size() + 1;
        if (index < next) {
            uint32_t c = 0;
            for (size_t i = l.begin; i < std::min(index, l.end); ++i) c += units(t[i], enc);
            return {ln, c};
        }
    }
    return {};
}

size_t byte_offset(std::u32string_view t, size_t index) { return encode(t.substr(0, index)).size(); }

byte_point naive_point(std::string_view s, size_t offset) {
    uint32_t row = 0, col = 0;
    for (size_t i = 0; i < offset; ++i) {
        if (s[i] == '\n') ++row, col = 0;
        else ++col;
    }
    return {row, col};
}

std::vector<size_t> naive_line_starts(std::string_view s) {
    std::vector<size_t> starts{0};
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n'))) starts.push_back(i + 1);
    }
    return starts;
}

// The line index agrees with a fresh count, and every line reads back without its break. Compares in bulk and
// asserts once, so that large documents stay cheap to check.
void check_line_index(const text_document& d) {
    const std::vector<size_t> starts = naive_line_starts(d.text());
    REQUIRE(d.line_count() == starts.size());
    std::vector<size_t> got(starts.size());
    for (uint32_t i = 0; i < d.line_count(); ++i) got[i] = d.line_start(i);
    REQUIRE(got == starts);
    for (uint32_t i = 0; i < d.line_count(); ++i) {
        const size_t next = i + 1 < starts.size() ? starts[i + 1] : d.size();
        std::string_view l = d.text().substr(starts[i], next - starts[i]);
        if (l.ends_with("\r\n")) l.remove_suffix(2);
        else if (l.ends_with('\n') || l.ends_with('\r')) l.remove_suffix(1);
        if (d.line(i) != l) FAIL("line " << i << " reads back as '" << d.line(i) << "', expected '" << l << "'");
    }
}

text_document must_open(std::string text) {
    auto d = text_document::open("file:///t.txt", "plaintext", 1, std::move(text));
    REQUIRE(d.has_value());
    return std::move(*d);
}

std::string apply(std::string text, std::optional<range> r, std::string_view ins, position_encoding enc) {
    text_document d = must_open(std::move(text));
    auto e = d.apply_change(r, ins, enc);
    INFO((e ? std::string() : e.error().message));
    REQUIRE(e.has_value());
    check_line_index(d);
    return std::string(d.text());
}

range rng(uint32_t l0, uint32_t c0, uint32_t l1, uint32_t c1) { return {{l0, c0}, {l1, c1}}; }

// Line 0: a é 中 😀 e+U+0301 x, CRLF; line 1: 中 😀, lone CR; line 2: "end", LF; line 3: empty.
const std::string sample = "a\u00e9\u4e2d\U0001F600e\u0301x\r\n\u4e2d\U0001F600\rend\n";

}  // namespace

TEST_CASE("position encodings have their protocol names", "[document]") {
    CHECK(name(position_encoding::utf8) == "utf-8");
    CHECK(name(position_encoding::utf16) == "utf-16");
    CHECK(name(position_encoding::utf32) == "utf-32");
    for (position_encoding e : all_encodings) CHECK(parse_position_encoding(name(e)) == e);
    CHECK_FALSE(parse_position_encoding("utf8").has_value());
    CHECK_FALSE(parse_position_encoding("UTF-16").has_value());
    CHECK_FALSE(parse_position_encoding("").has_value());
}

TEST_CASE("LF, CRLF and a lone CR each end a line", "[document]") {
    struct example {
        std::string text;
        std::vector<std::string> lines;
    };
    const example examples[] = {
        {"", {""}},
        {"a", {"a"}},
        {"a\n", {"a", ""}},
        {"a\r\nb\rc\n\r\n", {"a", "b", "c", "", ""}},
        {"\r\r\n\n", {"", "", "", ""}},
        {"\n\r", {"", "", ""}},
        {"x\r\r", {"x", "", ""}},
    };
    for (const example& ex : examples) {
        INFO("text " << ex.text.size() << " bytes");
        text_document d = must_open(ex.text);
        REQUIRE(d.line_count() == ex.lines.size());
        for (uint32_t i = 0; i < d.line_count(); ++i) CHECK(d.line(i) == ex.lines[i]);
        CHECK(d.line(d.line_count()).empty());
        check_line_index(d);
    }
}

TEST_CASE("positions convert in utf-8, utf-16 and utf-32", "[document]") {
    const text_document d = must_open(sample);
    REQUIRE(d.line_count() == 4);
    // Byte offsets on line 0: a@0 é@1 中@3 😀@6 e@10 U+0301@11 x@13, line end 14; "\r\n" 14-15.
    // Line 1 starts at 16: 中@16 😀@19, end 23, "\r" 23. Line 2 starts at 24: "end", "\n" at 27. Line 3 at 28.
    const size_t line0[] = {0, 1, 3, 6, 10, 11, 13, 14};
    const uint32_t col8[] = {0, 1, 3, 6, 10, 11, 13, 14};
    const uint32_t col16[] = {0, 1, 2, 3, 5, 6, 7, 8};
    const uint32_t col32[] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (size_t k = 0; k < std::size(line0); ++k) {
        INFO("boundary " << k);
        CHECK(d.offset_of({0, col8[k]}, position_encoding::utf8) == line0[k]);
        CHECK(d.offset_of({0, col16[k]}, position_encoding::utf16) == line0[k]);
        CHECK(d.offset_of({0, col32[k]}, position_encoding::utf32) == line0[k]);
        CHECK(d.position_of(line0[k], position_encoding::utf8) == position{0, col8[k]});
        CHECK(d.position_of(line0[k], position_encoding::utf16) == position{0, col16[k]});
        CHECK(d.position_of(line0[k], position_encoding::utf32) == position{0, col32[k]});
    }
    // The combining mark is a character of its own in every encoding.
    CHECK(d.offset_of({0, 5}, position_encoding::utf32) == 11);

    // Inside a character: snap to its start.
    CHECK(d.offset_of({0, 4}, position_encoding::utf16) == 6);  // between the surrogates of 😀
    CHECK(d.offset_of({0, 2}, position_encoding::utf8) == 1);   // second byte of é
    CHECK(d.offset_of({0, 9}, position_encoding::utf8) == 6);   // last byte of 😀
    CHECK(d.offset_of({0, 12}, position_encoding::utf8) == 11);  // second byte of U+0301
    CHECK(d.position_of(8, position_encoding::utf16) == position{0, 3});
    CHECK(d.position_of(4, position_encoding::utf32) == position{0, 2});
    CHECK(d.position_of(12, position_encoding::utf8) == position{0, 11});

    // Past the end of a line: the line end, before the break.
    for (position_encoding e : all_encodings) {
        CHECK(d.offset_of({0, 100}, e) == 14);
        CHECK(d.offset_of({1, 100}, e) == 23);
        CHECK(d.offset_of({2, 3}, e) == 27);
        CHECK(d.offset_of({3, 0}, e) == 28);
        CHECK(d.offset_of({3, 7}, e) == 28);
    }
    CHECK(d.offset_of({1, 1}, position_encoding::utf16) == 19);
    CHECK(d.offset_of({1, 3}, position_encoding::utf16) == 23);
    CHECK(d.offset_of({1, 2}, position_encoding::utf32) == 23);
    CHECK(d.offset_of({1, 3}, position_encoding::utf8) == 19);

    // Inside a line break: the end of that line.
    CHECK(d.position_of(15, position_encoding::utf16) == position{0, 8});
    CHECK(d.position_of(14, position_encoding::utf32) == position{0, 7});
    CHECK(d.position_of(23, position_encoding::utf16) == position{1, 3});
    CHECK(d.position_of(24, position_encoding::utf8) == position{2, 0});
    CHECK(d.position_of(27, position_encoding::utf8) == position{2, 3});
    CHECK(d.position_of(28, position_encoding::utf8) == position{3, 0});
    CHECK(d.position_of(1000, position_encoding::utf8) == position{3, 0});

    // A line past the last one is an error that says where and how many lines there are.
    for (position_encoding e : all_encodings) {
        auto r = d.offset_of({4, 0}, e);
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error().message, Catch::Contains("4:0") && Catch::Contains("4 lines"));
    }
}

TEST_CASE("tree-sitter points count rows at LF only", "[document]") {
    const text_document d = must_open(sample);
    CHECK(d.point_of(0) == byte_point{0, 0});
    CHECK(d.point_of(15) == byte_point{0, 15});  // on the "\n" of CRLF
    CHECK(d.point_of(16) == byte_point{1, 0});
    CHECK(d.point_of(24) == byte_point{1, 8});  // after a lone "\r": same row for tree-sitter
    CHECK(d.point_of(28) == byte_point{2, 0});
    CHECK(d.point_of(999) == byte_point{2, 0});
    const text_document plain = must_open("ab\r\ncd\nef");
    for (size_t o = 0; o <= plain.size(); ++o) CHECK(plain.point_of(o) == naive_point(plain.text(), o));
}

TEST_CASE("offset -> position -> offset round-trips at every character boundary", "[document]") {
    const std::u32string texts[] = {
        U"a\u00e9\u4e2d\U0001F600e\u0301x\r\n\u4e2d\U0001F600\rend\n",
        U"",
        U"\U0001F600\U0001F600\r\r\n\n\u00e9",
        U"e\u0301\u0301\r\n\r\n\U00010348\u4e2d",
    };
    for (const std::u32string& t : texts) {
        const text_document d = must_open(encode(t));
        const auto lines = split_lines(t);
        for (position_encoding e : all_encodings) {
            INFO("encoding " << name(e));
            for (size_t i = 0; i <= t.size(); ++i) {
                const size_t o = byte_offset(t, i);
                const position p = d.position_of(o, e);
                CHECK(p == model_position(t, lines, i, e));
                const bool inside_crlf = i > 0 && i < t.size() && t[i - 1] == U'\r' && t[i] == U'\n';
                if (!inside_crlf) CHECK(d.offset_of(p, e) == o);
            }
            // And every position, including those inside characters and past line ends, against the model.
            for (uint32_t ln = 0; ln <= lines.size(); ++ln) {
                for (uint32_t c = 0; c < 20; ++c) {
                    auto want = model_index(t, lines, {ln, c}, e);
                    auto got = d.offset_of({ln, c}, e);
                    REQUIRE(got.has_value() == want.has_value());
                    if (want) CHECK(*got == byte_offset(t, *want));
                }
            }
        }
    }
}

TEST_CASE("edits insert, delete and replace text", "[document]") {
    using enum position_encoding;
    SECTION("within a line and across lines") {
        CHECK(apply("hello world", rng(0, 5, 0, 5), ",", utf16) == "hello, world");
        CHECK(apply("one\ntwo\nthree", rng(0, 1, 2, 2), "", utf16) == "oree");
        CHECK(apply("one\ntwo\nthree", rng(1, 0, 1, 3), "2\n2", utf8) == "one\n2\n2\nthree");
        CHECK(apply("one\r\ntwo", rng(0, 3, 1, 0), " ", utf32) == "one two");
        CHECK(apply("one\ntwo", rng(1, 3, 1, 3), "\n", utf16) == "one\ntwo\n");
        CHECK(apply("", rng(0, 0, 0, 0), "x\ny", utf16) == "x\ny");
        CHECK(apply("a\nb", rng(0, 0, 1, 1), "", utf8).empty());
    }
    SECTION("around multi-byte characters, in each encoding") {
        const std::string t = "a\U0001F600b\u4e2dc";
        CHECK(apply(t, rng(0, 1, 0, 5), "", utf8) == "ab\u4e2dc");
        CHECK(apply(t, rng(0, 1, 0, 3), "", utf16) == "ab\u4e2dc");
        CHECK(apply(t, rng(0, 1, 0, 2), "", utf32) == "ab\u4e2dc");
        CHECK(apply(t, rng(0, 9, 0, 9), "\u00e9", utf8) == "a\U0001F600b\u4e2d\u00e9c");
        CHECK(apply(t, rng(0, 5, 0, 5), "\u00e9", utf16) == "a\U0001F600b\u4e2d\u00e9c");
        CHECK(apply(t, rng(0, 4, 0, 4), "\u00e9", utf32) == "a\U0001F600b\u4e2d\u00e9c");
        // Inside 😀 (second surrogate, third byte): the edit lands at its start.
        CHECK(apply(t, rng(0, 2, 0, 2), "X", utf16) == "aX\U0001F600b\u4e2dc");
        CHECK(apply(t, rng(0, 3, 0, 3), "X", utf8) == "aX\U0001F600b\u4e2dc");
        // A range that starts inside 😀 and ends after it covers all of it.
        CHECK(apply(t, rng(0, 2, 0, 3), "X", utf16) == "aXb\u4e2dc");
        CHECK(apply(t, rng(0, 4, 0, 5), "X", utf8) == "aXb\u4e2dc");
        // Replace the combining mark alone.
        CHECK(apply("e\u0301!", rng(0, 1, 0, 2), "\u0300", utf32) == "e\u0300!");
    }
    SECTION("at line ends and line breaks") {
        CHECK(apply("ab\ncd", rng(0, 100, 0, 100), "!", utf16) == "ab!\ncd");     // past the end clamps
        CHECK(apply("ab\r\ncd", rng(0, 2, 0, 9), "!", utf8) == "ab!\r\ncd");      // the range never eats the break
        CHECK(apply("a\rb", rng(1, 0, 1, 0), "\n", utf16) == "a\r\nb");          // lone CR + LF becomes CRLF
        CHECK(apply("a\nb", rng(0, 1, 0, 1), "\r", utf16) == "a\r\nb");          // CR before LF: one break
        CHECK(apply("a\r\nb", rng(0, 1, 1, 0), "", utf16) == "ab");
        CHECK(apply("a\r\r\nb", rng(1, 0, 2, 0), "", utf16) == "a\rb");
        text_document d = must_open("a\rb");
        REQUIRE(d.apply_change(rng(1, 0, 1, 0), "\n", utf16).has_value());
        CHECK(d.line_count() == 2);
        CHECK(d.line(0) == "a");
        CHECK(d.line(1) == "b");
    }
    SECTION("full replacement") {
        text_document d = must_open("old\ntext");
        auto e = d.apply_change(std::nullopt, "brand\nnew\ntext", utf16);
        REQUIRE(e.has_value());
        CHECK(d.text() == "brand\nnew\ntext");
        CHECK(d.line_count() == 3);
        CHECK(*e == byte_edit{0, 8, 14, {0, 0}, {1, 4}, {2, 4}});
        CHECK(d.last_edit() == *e);
    }
    SECTION("byte edits carry tree-sitter points from before and after the edit") {
        text_document d = must_open("ab\ncd\nef");
        auto e = d.apply_change(rng(0, 1, 2, 1), "XY\nZ", utf16);
        REQUIRE(e.has_value());
        CHECK(d.text() == "aXY\nZf");
        CHECK(*e == byte_edit{1, 7, 5, {0, 1}, {2, 1}, {1, 1}});
    }
    SECTION("several changes in sequence, each on the result of the previous one") {
        text_document d = must_open("fn main() {\n}\n");
        REQUIRE(d.apply_change(rng(0, 11, 0, 11), "\n    ", utf16).has_value());
        REQUIRE(d.apply_change(rng(1, 4, 1, 4), "let \u00e9 = \"\U0001F600\";", utf16).has_value());
        REQUIRE(d.apply_change(rng(1, 13, 1, 15), "\u4e2d", utf16).has_value());  // replace 😀 (2 units)
        REQUIRE(d.apply_change(rng(1, 8, 1, 9), "x", utf32).has_value());          // replace é
        CHECK(d.text() == "fn main() {\n    let x = \"\u4e2d\";\n}\n");
        check_line_index(d);
    }
}

TEST_CASE("invalid changes are errors and leave the document unchanged", "[document]") {
    using enum position_encoding;
    text_document d = must_open("one\ntwo");
    REQUIRE(d.apply_change(rng(0, 0, 0, 0), ">", utf16).has_value());
    const byte_edit before_edit = d.last_edit();
    auto unchanged = [&] {
        CHECK(d.text() == ">one\ntwo");
        CHECK(d.line_count() == 2);
        CHECK(d.version() == 1);
        CHECK(d.last_edit() == before_edit);
        check_line_index(d);
    };
    SECTION("a line past the end") {
        auto e = d.apply_change(rng(2, 0, 2, 0), "x", utf16);
        REQUIRE_FALSE(e.has_value());
        CHECK_THAT(e.error().message, Catch::Contains("2:0") && Catch::Contains("past the end"));
        unchanged();
        CHECK_FALSE(d.apply_change(rng(1, 0, 5, 0), "", utf8).has_value());
        unchanged();
    }
    SECTION("an end before the start") {
        auto e = d.apply_change(rng(1, 2, 0, 3), "x", utf16);
        REQUIRE_FALSE(e.has_value());
        CHECK_THAT(e.error().message, Catch::Contains("ends before it starts"));
        unchanged();
        CHECK_FALSE(d.apply_change(rng(0, 3, 0, 2), "", utf16).has_value());
        unchanged();
    }
    SECTION("inserted text that is not UTF-8") {
        auto e = d.apply_change(rng(0, 0, 0, 0), "ok\xC3", utf16);
        REQUIRE_FALSE(e.has_value());
        CHECK_THAT(e.error().message, Catch::Contains("not valid UTF-8") && Catch::Contains("byte offset 2"));
        unchanged();
        CHECK_FALSE(d.apply_change(std::nullopt, "\xED\xA0\x80", utf16).has_value());  // a surrogate
        unchanged();
    }
}

TEST_CASE("open accepts valid UTF-8 and names the offset of invalid bytes", "[document]") {
    struct bad {
        std::string text;
        size_t offset;
    };
    const bad bads[] = {
        {"ab\xC3", 2},                  // cut off at the end
        {"ab\xC3x", 2},                 // cut off by ASCII
        {"\xC0\x80", 0},                // overlong NUL
        {"x\xE0\x80\xAF", 1},           // overlong "/"
        {"\xED\xA0\x80", 0},            // high surrogate
        {"\xED\xBF\xBF", 0},            // low surrogate
        {"\xF4\x90\x80\x80", 0},        // above U+10FFFF
        {"123456789\x80", 9},           // stray continuation byte after the ASCII fast path
        {"\xFF", 0},
        {"\xF5\x80\x80\x80", 0},
        {"\xF0\x9F\x98", 0},            // 😀 without its last byte
    };
    for (const bad& b : bads) {
        auto d = text_document::open("file:///bad.c", "c", 1, b.text);
        REQUIRE_FALSE(d.has_value());
        CHECK_THAT(d.error().message, Catch::Contains("file:///bad.c") &&
                                          Catch::Contains("byte offset " + std::to_string(b.offset)));
        CHECK_FALSE(valid_utf8(b.text));
    }
    for (std::string ok : {std::string("\xF4\x8F\xBF\xBF"), std::string("\xEF\xBF\xBF"), std::string("a\0b", 3),
                           std::string("\xED\x9F\xBF"), std::string("\xEE\x80\x80"), sample}) {
        CHECK(text_document::open("u", "c", 1, ok).has_value());
        CHECK(valid_utf8(ok));
    }
}

TEST_CASE("the document store opens, changes and closes documents", "[document]") {
    using enum position_encoding;
    document_store store;
    REQUIRE(store.open("file:///a.py", "python", 1, "x = 1\n").has_value());
    REQUIRE(store.size() == 1);
    const text_document* a = store.find("file:///a.py");
    REQUIRE(a != nullptr);
    CHECK(a->language_id() == "python");
    CHECK(a->uri() == "file:///a.py");

    SECTION("several contentChanges apply in order and set the version") {
        const content_change changes[] = {{rng(0, 4, 0, 5), "2"}, {rng(1, 0, 1, 0), "y = x\n"}};
        auto edits = store.change("file:///a.py", 2, changes, utf16);
        REQUIRE(edits.has_value());
        REQUIRE(edits->size() == 2);
        CHECK((*edits)[1].start == 6);
        CHECK(a->text() == "x = 2\ny = x\n");
        CHECK(a->version() == 2);
    }
    SECTION("a failing change rolls back the whole didChange") {
        const content_change changes[] = {{rng(0, 0, 0, 0), "# "}, {rng(9, 0, 9, 0), "?"}};
        auto edits = store.change("file:///a.py", 2, changes, utf16);
        REQUIRE_FALSE(edits.has_value());
        CHECK_THAT(edits.error().message, Catch::Contains("change 2 of 2"));
        CHECK(a->text() == "x = 1\n");
        CHECK(a->version() == 1);
    }
    SECTION("a full-text change") {
        const content_change changes[] = {{std::nullopt, "print()"}};
        REQUIRE(store.change("file:///a.py", 5, changes, utf8).has_value());
        CHECK(a->text() == "print()");
        CHECK(a->version() == 5);
    }
    SECTION("a change for a URI never opened is an error naming it") {
        const content_change changes[] = {{std::nullopt, "x"}};
        auto edits = store.change("file:///nope.py", 2, changes, utf16);
        REQUIRE_FALSE(edits.has_value());
        CHECK_THAT(edits.error().message, Catch::Contains("file:///nope.py") && Catch::Contains("not open"));
        CHECK(store.find("file:///nope.py") == nullptr);
    }
    SECTION("re-opening replaces; invalid text leaves the store as it was") {
        REQUIRE(store.open("file:///a.py", "python", 7, "z").has_value());
        CHECK(store.find("file:///a.py")->text() == "z");
        CHECK(store.find("file:///a.py")->version() == 7);
        CHECK_FALSE(store.open("file:///a.py", "python", 8, "\xC3").has_value());
        CHECK_FALSE(store.open("file:///b.py", "python", 1, "\xC3").has_value());
        CHECK(store.find("file:///a.py")->text() == "z");
        CHECK(store.find("file:///b.py") == nullptr);
        CHECK(store.size() == 1);
    }
    SECTION("close") {
        REQUIRE(store.close("file:///a.py").has_value());
        CHECK(store.find("file:///a.py") == nullptr);
        CHECK(store.size() == 0);
        auto again = store.close("file:///a.py");
        REQUIRE_FALSE(again.has_value());
        CHECK_THAT(again.error().message, Catch::Contains("file:///a.py"));
        const content_change changes[] = {{std::nullopt, "x"}};
        CHECK_FALSE(store.change("file:///a.py", 3, changes, utf16).has_value());
    }
}

TEST_CASE("random edits agree with an independent code-point model", "[document]") {
    // Characters with 1, 2, 3 and 4 UTF-8 bytes, a combining mark, and every kind of line break.
    const std::u32string alphabet = U"ab \u00e9\u4e2d\U0001F600\u0301\n\r\n\r";
    std::mt19937_64 gen(20240611);
    auto pick = [&](size_t n) { return size_t(gen() % n); };
    auto random_text = [&](size_t max_len) {
        std::u32string s;
        const size_t n = pick(max_len + 1);
        for (size_t i = 0; i < n; ++i) s += alphabet[pick(alphabet.size())];
        return s;
    };
    int edits = 0, errors = 0;
    for (int doc = 0; doc < 250; ++doc) {
        std::u32string model = random_text(40);
        text_document d = must_open(encode(model));
        for (int step = 0; step < 16; ++step) {
            const position_encoding enc = all_encodings[pick(3)];
            const auto lines = split_lines(model);
            auto random_position = [&]() -> position {
                const auto ln = uint32_t(pick(lines.size() + (pick(20) == 0 ? 2 : 0)));
                uint32_t width = 0;
                if (ln < lines.size())
                    for (size_t i = lines[ln].begin; i < lines[ln].end; ++i) width += units(model[i], enc);
                return {ln, uint32_t(pick(width + 3))};
            };
            std::optional<range> r;
            if (pick(25) != 0) {
                position a = random_position(), b = random_position();
                if (b < a && pick(20) != 0) std::swap(a, b);  // mostly well-ordered; sometimes inside out
                r = range{a, b};
            }
            const std::u32string ins = random_text(pick(4) == 0 ? 12 : 3);
            INFO("doc " << doc << " step " << step << " encoding " << name(enc));

            // The model's answer.
            std::optional<size_t> start = 0, end = model.size();
            if (r) {
                start = model_index(model, lines, r->start, enc);
                end = model_index(model, lines, r->end, enc);
            }
            const bool ok = start && end && !(r && r->end < r->start);

            const std::string before(d.text());
            auto e = d.apply_change(r, encode(ins), enc);
            REQUIRE(e.has_value() == ok);
            if (!ok) {
                ++errors;
                REQUIRE(d.text() == before);
                continue;
            }
            ++edits;
            REQUIRE(*start <= *end);
            const byte_edit want{byte_offset(model, *start),
                                 byte_offset(model, *end),
                                 byte_offset(model, *start) + encode(ins).size(),
                                 naive_point(before, byte_offset(model, *start)),
                                 naive_point(before, byte_offset(model, *end)),
                                 {}};
            model.replace(*start, *end - *start, ins);
            const std::string now = encode(model);
            REQUIRE(d.text() == now);
            REQUIRE(e->start == want.start);
            REQUIRE(e->old_end == want.old_end);
            REQUIRE(e->new_end == want.new_end);
            REQUIRE(e->start_point == want.start_point);
            REQUIRE(e->old_end_point == want.old_end_point);
            REQUIRE(e->new_end_point == naive_point(now, want.new_end));
            check_line_index(d);

            // Conversions on the new text, in every encoding, at a few random places.
            const auto new_lines = split_lines(model);
            for (int probe = 0; probe < 4; ++probe) {
                const position_encoding pe = all_encodings[pick(3)];
                const size_t i = pick(model.size() + 1);
                REQUIRE(d.position_of(byte_offset(model, i), pe) == model_position(model, new_lines, i, pe));
                const position p{uint32_t(pick(new_lines.size())), uint32_t(pick(12))};
                auto want_index = model_index(model, new_lines, p, pe);
                REQUIRE(d.offset_of(p, pe) == byte_offset(model, *want_index));
            }
        }
    }
    CHECK(edits > 3000);
    CHECK(errors > 50);
}

TEST_CASE("fuzz: random bytes, positions and edits", "[document]") {
    // Bytes that matter to UTF-8 and line breaking, plus anything at all.
    const unsigned char interesting[] = {'a', ' ', '\n', '\r', 0x00, 0x80, 0xBF, 0xA0, 0x8F, 0x90,
                                         0xC2, 0xC3, 0xDF, 0xE0, 0xE4, 0xED, 0xEF, 0xF0, 0xF4, 0xFF};
    std::mt19937_64 gen(7);
    auto pick = [&](size_t n) { return size_t(gen() % n); };
    auto random_bytes = [&](size_t max_len) {
        std::string s;
        const size_t n = pick(max_len + 1);
        for (size_t i = 0; i < n; ++i)
            s += char(pick(3) == 0 ? unsigned(gen() & 0xFF) : unsigned(interesting[pick(std::size(interesting))]));
        return s;
    };
    // Valid text to fall back on when the random bytes were rejected, so edits always get exercised.
    auto random_valid = [&]() {
        const std::u32string alphabet = U"x\u00e9\u4e2d\U0001F600\n\r";
        std::u32string s;
        for (size_t i = pick(20); i > 0; --i) s += alphabet[pick(alphabet.size())];
        return encode(s);
    };
    int opened = 0, rejected = 0, applied = 0, failed = 0;
    for (int iter = 0; iter < 10000; ++iter) {
        std::string bytes = random_bytes(pick(8) == 0 ? 64 : 16);
        auto opened_doc = text_document::open("file:///fuzz", "c", iter, bytes);
        REQUIRE(opened_doc.has_value() == valid_utf8(bytes));
        if (opened_doc) {
            ++opened;
        } else {
            ++rejected;
            REQUIRE_FALSE(opened_doc.error().message.empty());
            opened_doc = text_document::open("file:///fuzz", "c", iter, random_valid());
            REQUIRE(opened_doc.has_value());
        }
        text_document& d = *opened_doc;

        for (int step = 0; step < 3; ++step) {
            const position_encoding enc = all_encodings[pick(3)];
            auto random_position = [&]() -> position {
                return {uint32_t(pick(d.line_count() + 2)), uint32_t(pick(4) == 0 ? gen() : pick(24))};
            };
            // Reading never fails except for a line past the end, and answers lie inside the text.
            const position p = random_position();
            auto o = d.offset_of(p, enc);
            REQUIRE(o.has_value() == (p.line < d.line_count()));
            if (o) {
                REQUIRE(*o <= d.size());
                REQUIRE(*o >= d.line_start(p.line));
                REQUIRE(*o <= d.line_start(p.line) + d.line(p.line).size());
            }
            const size_t any = pick(d.size() + 3);
            const position q = d.position_of(any, enc);
            REQUIRE(q.line < d.line_count());
            auto back = d.offset_of(q, enc);
            REQUIRE(back.has_value());
            REQUIRE(*back <= std::min(any, d.size()));
            const byte_point pt = d.point_of(any);
            REQUIRE(pt == naive_point(d.text(), std::min(any, d.size())));

            // Edits: an error leaves everything as it was; success keeps the invariants.
            std::optional<range> r;
            if (pick(10) != 0) r = range{random_position(), random_position()};
            const std::string ins = pick(2) ? random_bytes(8) : random_valid();
            const std::string before(d.text());
            const bool expect_ok = valid_utf8(ins) && (!r || (r->start.line < d.line_count() &&
                                                              r->end.line < d.line_count() && !(r->end < r->start)));
            auto e = d.apply_change(r, ins, enc);
            REQUIRE(e.has_value() == expect_ok);
            if (e) {
                ++applied;
                REQUIRE(e->start <= e->old_end);
                REQUIRE(e->old_end <= before.size());
                REQUIRE(d.text() == before.substr(0, e->start) + ins + before.substr(e->old_end));
            } else {
                ++failed;
                REQUIRE_FALSE(e.error().message.empty());
                REQUIRE(d.text() == before);
            }
            REQUIRE(valid_utf8(d.text()));
            const std::vector<size_t> starts = naive_line_starts(d.text());
            REQUIRE(d.line_count() == starts.size());
            for (uint32_t i = 0; i < d.line_count(); ++i) REQUIRE(d.line_start(i) == starts[i]);
        }
    }
    CHECK(opened > 500);
    CHECK(rejected > 1000);
    CHECK(applied > 3000);
    CHECK(failed > 3000);
}

TEST_CASE("a 1 MB document takes many small edits", "[document]") {
    // The line index is updated in place; this checks it stays exact over many edits on a large text and that
    // the byte edits describe what happened to the text.
    std::mt19937_64 gen(99);
    auto pick = [&](size_t n) { return size_t(gen() % n); };
    const std::string pieces[] = {"int x = 0;", " ", "\u00e9", "\u4e2d\u6587", "\U0001F600", "\n", "\r\n", "\t"};
    std::string text;
    while (text.size() < (1u << 20)) text += pieces[pick(std::size(pieces))];
    text_document d = must_open(text);
    std::string mirror = text;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i) {
        const position_encoding enc = all_encodings[pick(3)];
        const auto ln = uint32_t(pick(d.line_count()));
        const position a{ln, uint32_t(pick(40))};
        const position b = pick(8) == 0 ? position{ln + uint32_t(pick(3)), uint32_t(pick(40))} : a;
        const range r = b < a ? range{b, a} : range{a, b};
        if (r.end.line >= d.line_count()) continue;
        const std::string& ins = pieces[pick(std::size(pieces))];
        auto e = d.apply_change(r, ins, enc);
        REQUIRE(e.has_value());
        mirror.replace(e->start, e->old_end - e->start, ins);
        if (i % 500 == 0) {
            REQUIRE(d.text() == mirror);
            check_line_index(d);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(d.text() == mirror);
    check_line_index(d);
    INFO("2000 edits on 1 MB took " << seconds << " s");
    CHECK(seconds < 30.0);  // a generous bound that still catches an accidental quadratic rescan under sanitizers
}
