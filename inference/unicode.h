// UTF-8 and code point classes for the tokenizers.
//
// Decoding is strict (no overlong forms, no surrogates, nothing above U+10FFFF) and never reads past the end of the
// input. A byte that does not start a valid sequence decodes as one "invalid" unit of length 1 whose flags are those
// of U+FFFD, which is what llama.cpp substitutes; keeping the length at 1 lets callers work on byte ranges of the
// original text, so tokenisation stays byte-exact even for invalid input.
//
// Flags follow llama.cpp's unicode tables: exactly one general-category bit per code point plus a White_Space bit.
// All functions are pure and may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spark::unicode {

inline constexpr uint32_t replacement_char = 0xFFFD;
inline constexpr uint32_t max_code_point = 0x10FFFF;

// Code point flags (one category bit + whitespace). Values are shared with tools/gen_unicode_data.py.
namespace cpt_flag {
inline constexpr uint16_t undefined = 0x0001;    // Cn: unassigned
inline constexpr uint16_t number = 0x0002;       // \p{N}
inline constexpr uint16_t letter = 0x0004;       // \p{L}
inline constexpr uint16_t separator = 0x0008;    // \p{Z}
inline constexpr uint16_t mark = 0x0010;         // \p{M}
inline constexpr uint16_t punctuation = 0x0020;  // \p{P}
inline constexpr uint16_t symbol = 0x0040;       // \p{S}
inline constexpr uint16_t control = 0x0080;      // \p{C} except Cn
inline constexpr uint16_t categories = 0x00FF;
inline constexpr uint16_t whitespace = 0x0100;   // White_Space: what llama.cpp's \s means
}  // namespace cpt_flag

// Flags of a code point; values above U+10FFFF are "undefined".
uint16_t flags(uint32_t cpt);

// The Unicode version the flag table was generated from (e.g. "14.0.0").
std::string_view data_version();

struct decoded {
    uint32_t cpt;  // the code point, or replacement_char when !valid
    uint8_t len;   // bytes consumed: 1..4 (1 for an invalid byte); 0 only at the end of the input
    bool valid;
};

// Decodes the sequence starting at s[pos] (pos <= s.size()).
decoded decode(std::string_view s, size_t pos);

// Appends the UTF-8 form of cpt (cpt <= max_code_point and not a surrogate; otherwise U+FFFD is appended).
void append_utf8(std::string& out, uint32_t cpt);

// The length a sequence starting with this lead byte would have (1..4), or 0 if the byte cannot start one.
size_t sequence_length(uint8_t lead);

// Bytes at the end of s that form a valid but unfinished sequence (0..3): what a streaming decoder must hold back
// because a later byte may complete it. A tail that can no longer become valid is not counted.
size_t incomplete_tail(std::string_view s);

bool is_valid_utf8(std::string_view s);

// GPT-2's byte-level alphabet (bytes_to_unicode): each byte maps to one printable code point (< U+0144).
uint32_t byte_to_cpt(uint8_t byte);
// The inverse: the byte a code point stands for, or -1 if the code point is not in the alphabet.
int cpt_to_byte(uint32_t cpt);

namespace detail {
struct flag_range {
    uint32_t first;  // first code point of the range; it ends where the next one starts
    uint16_t flags;
};
extern const flag_range k_flag_ranges[];  // sorted by first; generated into unicode_data.cpp
extern const size_t k_n_flag_ranges;
extern const char k_unicode_version[];
}  // namespace detail

}  // namespace spark::unicode
