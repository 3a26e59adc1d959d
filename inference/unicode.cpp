// UTF-8 decoding, code point flags (table in the generated unicode_data.cpp) and GPT-2's byte-level alphabet.
#include "inference/unicode.h"

#include <algorithm>
#include <array>

namespace spark::unicode {
namespace {

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Allowed range of the second byte for a lead byte (Unicode Table 3-7, well-formed UTF-8): excludes overlong
// forms, UTF-16 surrogates and code points above U+10FFFF.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
    switch (lead) {
        case 0xE0: return {0xA0, 0xBF};
        case 0xED: return {0x80, 0x9F};
        case 0xF0: return {0x90, 0xBF};
        case 0xF4: return {0x80, 0x8F};
        default: return {0x80, 0xBF};
    }
}

// Flags of U+0000..U+00FF, the hot path for source code.
struct latin1_table {
    std::array<uint16_t, 256> flags{};
};

uint16_t lookup_ranges(uint32_t cpt) {
    const detail::flag_range* begin = detail::k_flag_ranges;
    const detail::flag_range* end = detail::k_flag_ranges + detail::k_n_flag_ranges;
    // Last range whose first <= cpt; the table starts at 0, so there always is one.
    const detail::flag_range* it =
        std::upper_bound(begin, end, cpt, [](uint32_t c, const detail::flag_range& r) { return c < r.first; });
    return it == begin ? cpt_flag::undefined : (it - 1)->flags;
}

const latin1_table& latin1() {
    static const latin1_table table = [] {
        latin1_table t;
        for (uint32_t c = 0; c < 256; ++c) t.flags[c] = lookup_ranges(c);
        return t;
    }();
    return table;
}

struct byte_alphabet {
    std::array<uint32_t, 256> to_cpt{};
    std::array<int16_t, 0x144> to_byte{};  // every mapped code point is below U+0144
};

const byte_alphabet& alphabet() {
    static const byte_alphabet table = [] {
        byte_alphabet a;
        a.to_byte.fill(-1);
        // Printable Latin-1 bytes stand for themselves; the others (controls, space, DEL, NBSP, soft hyphen) are
        // moved, in byte order, to U+0100 and up so that every byte has a visible, non-space character.
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            a.to_cpt[b] = printable ? b : next++;
            a.to_byte[a.to_cpt[b]] = static_cast<int16_t>(b);
        }
        return a;
    }();
    return table;
}

}  // namespace

uint16_t flags(uint32_t cpt) {
    if (cpt < 256) return latin1().flags[cpt];
    if (cpt > max_code_point) return cpt_flag::undefined;
    return lookup_ranges(cpt);
}

std::string_view data_version() { return detail::k_unicode_version; }

size_t sequence_length(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;  // continuation byte, overlong lead (C0, C1) or beyond U+10FFFF (F5..FF)
}

decoded decode(std::string_view s, size_t pos) {
    if (pos >= s.size()) return {replacement_char, 0, false};
    const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
    const size_t avail = s.size() - pos;
    const uint8_t b0 = p[0];
    if (b0 < 0x80) return {b0, 1, true};
    const size_t len = sequence_length(b0);
    if (len == 0 || len > avail) return {replacement_char, 1, false};
    const auto [lo, hi] = second_byte_range(b0);
    if (p[1] < lo || p[1] > hi) return {replacement_char, 1, false};
    if (len == 2) return {(uint32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F), 2, true};
    if (!is_continuation(p[2])) return {replacement_char, 1, false};
    if (len == 3) return {(uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F), 3, true};
    if (!is_continuation(p[3])) return {replacement_char, 1, false};
    return {(uint32_t(b0 & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
                (p[3] & 0x3F),
            4, true};
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt > max_code_point || (cpt >= 0xD800 && cpt <= 0xDFFF)) cpt = replacement_char;
    if (cpt < 0x80) {
        out.push_back(static_cast<char>(cpt));
    } else if (cpt < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    }
}

size_t incomplete_tail(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    // The lead byte of an unfinished sequence is at most 3 bytes from the end.
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const uint8_t b = p[n - back];
        if (is_continuation(b)) continue;
        const size_t len = sequence_length(b);
        if (len <= back) return 0;  // ASCII, invalid lead, or a sequence that is already complete
        if (back >= 2) {
            const auto [lo, hi] = second_byte_range(b);
            if (p[n - back + 1] < lo || p[n - back + 1] > hi) return 0;
        }
        return back;  // the bytes after the lead are continuation bytes (checked by the loop)
    }
    return 0;
}

bool is_valid_utf8(std::string_view s) {
    for (size_t pos = 0; pos < s.size();) {
        const decoded d = decode(s, pos);
        if (!d.valid) return false;
        pos += d.len;
    }
    return true;
}

uint32_t byte_to_cpt(uint8_t byte) { return alphabet().to_cpt[byte]; }

int cpt_to_byte(uint32_t cpt) { return cpt < alphabet().to_byte.size() ? alphabet().to_byte[cpt] : -1; }

}  // namespace spark::unicode
