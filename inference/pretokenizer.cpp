// Hand-written scanners for the pre-tokenizer regexes of llama.cpp (see pretokenizer.h for the patterns).
//
// The text is decoded once into code points and flags; each stage turns a list of piece ends (code point indices)
// into a finer one. Every scanner only moves forward, and a whitespace run is scanned at most three times, so each
// stage is linear in the text length.
#include "inference/pretokenizer.h"

#include "inference/unicode.h"

#include <array>
#include <cstdint>

namespace spark {
namespace {

namespace cf = unicode::cpt_flag;

struct decoded_text {
    std::vector<uint32_t> cpts;   // code points; invalid bytes are U+FFFD
    std::vector<uint16_t> flags;  // unicode::flags of each code point
    std::vector<size_t> offsets;  // byte offset of each code point, plus the text size at the end
};

void decode_text(std::string_view text, decoded_text& d) {
    d.cpts.clear();
    d.flags.clear();
    d.offsets.clear();
    d.cpts.reserve(text.size());
    d.flags.reserve(text.size());
    d.offsets.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
        const unicode::decoded c = unicode::decode(text, pos);
        d.cpts.push_back(c.cpt);
        d.flags.push_back(unicode::flags(c.cpt));
        d.offsets.push_back(pos);
        pos += c.len;
    }
    d.offsets.push_back(text.size());
}

// Appends piece ends for one input piece, skipping empty pieces (the `_add_token` of llama.cpp's splitters).
class emitter {
public:
    emitter(std::vector<size_t>& out, size_t begin) : out_(out), prev_(begin) {}
    void to(size_t end) {
        if (end > prev_) {
            out_.push_back(end);
            prev_ = end;
        }
    }

private:
    std::vector<size_t>& out_;
    size_t prev_;
};

// One piece [begin, end) of the decoded text as a splitter sees it: positions outside read as "nothing" (flags 0,
// code point out_of_range), which is how llama.cpp's custom splitters treat piece boundaries.
class piece_view {
public:
    static constexpr uint32_t out_of_range = 0xFFFFFFFF;

    piece_view(const decoded_text& d, size_t begin, size_t end) : d_(d), begin_(begin), end_(end) {}
    size_t begin() const { return begin_; }
    size_t end() const { return end_; }
    uint32_t cpt(size_t i) const { return i < end_ ? d_.cpts[i] : out_of_range; }
    uint16_t flags(size_t i) const { return i < end_ ? d_.flags[i] : uint16_t(0); }

private:
    const decoded_text& d_;
    size_t begin_, end_;
};

bool has(uint16_t flags, uint16_t bits) { return (flags & bits) != 0; }
// [^\s\p{L}\p{N}] for a position inside the piece (flags 0 means past its end).
bool is_other(uint16_t flags) { return flags != 0 && !has(flags, cf::whitespace | cf::letter | cf::number); }
bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }
uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Length of an English contraction ('s 't 'm 'd 're 've 'll) starting at pos, or 0. With case_insensitive the
// letters may be upper case ((?i:...) of llama3; the only case folds onto these letters are ASCII ones).
size_t contraction_length(const piece_view& p, size_t pos, bool case_insensitive) {
    if (p.cpt(pos) != '\'' || pos + 1 >= p.end()) return 0;
    auto letter = [&](size_t i) { return case_insensitive ? ascii_lower(p.cpt(i)) : p.cpt(i); };
    const uint32_t c1 = letter(pos + 1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= p.end()) return 0;
    const uint32_t c2 = letter(pos + 2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)   (llama.cpp: unicode_regex_split_custom_gpt2)
void split_gpt2(const piece_view& p, std::vector<size_t>& out) {
    emitter em(out, p.begin());
    size_t pos = p.begin();
    while (pos < p.end()) {
        if (const size_t n = contraction_length(p, pos, false)) {
            pos += n;
            em.to(pos);
            continue;
        }
        const bool space = p.cpt(pos) == ' ';
        const uint16_t f = space ? p.flags(pos + 1) : p.flags(pos);  // what follows an optional leading space
        if (has(f, cf::letter) || has(f, cf::number)) {
            const uint16_t cls = has(f, cf::letter) ? cf::letter : cf::number;
            pos += space;
            while (has(p.flags(pos), cls)) ++pos;
            em.to(pos);
            continue;
        }
        if (is_other(f)) {
            pos += space;
            while (is_other(p.flags(pos))) ++pos;
            em.to(pos);
            continue;
        }
        size_t n_ws = 0;
        while (has(p.flags(pos + n_ws), cf::whitespace)) ++n_ws;
        if (n_ws > 1 && pos + n_ws < p.end()) {
            pos += n_ws - 1;  // \s+(?!\S): leave the last space to prefix the next word
        } else if (n_ws > 0) {
            pos += n_ws;
        } else {
            ++pos;  // unreachable for in-range positions; kept so the loop always advances
        }
        em.to(pos);
    }
    em.to(p.end());
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
// \s+(?!\S)|\s+   (llama.cpp: unicode_regex_split_custom_llama3; qwen2's \p{N} is max_digits = 1)
void split_llama3(const piece_view& p, size_t max_digits, std::vector<size_t>& out) {
    emitter em(out, p.begin());
    size_t pos = p.begin();
    while (pos < p.end()) {
        if (const size_t n = contraction_length(p, pos, true)) {
            pos += n;
            em.to(pos);
            continue;
        }
        const uint32_t c = p.cpt(pos);
        const uint16_t f = p.flags(pos);
        if (!is_crlf(c) && !has(f, cf::number) && (has(f, cf::letter) || has(p.flags(pos + 1), cf::letter))) {
            ++pos;  // the optional non-letter prefix, or the first letter
            while (has(p.flags(pos), cf::letter)) ++pos;
            em.to(pos);
            continue;
        }
        if (has(f, cf::number)) {
            size_t group_begin = pos;
            while (has(p.flags(pos), cf::number)) {
                if (++pos - group_begin >= max_digits) {
                    em.to(pos);
                    group_begin = pos;
                }
            }
            em.to(pos);
            continue;
        }
        const uint16_t f2 = c == ' ' ? p.flags(pos + 1) : f;
        if (!has(f2, cf::whitespace | cf::letter | cf::number)) {
            pos += (c == ' ');
            while (is_other(p.flags(pos))) ++pos;
            while (is_crlf(p.cpt(pos))) ++pos;
            em.to(pos);
            continue;
        }
        size_t n_ws = 0;
        size_t end_of_last_crlf = 0;  // 0: the run holds no \r or \n
        while (has(p.flags(pos + n_ws), cf::whitespace)) {
            if (is_crlf(p.cpt(pos + n_ws))) end_of_last_crlf = pos + n_ws + 1;
            ++n_ws;
        }
        if (end_of_last_crlf > 0) {
            pos = end_of_last_crlf;  // \s*[\r\n]+
        } else if (n_ws > 1 && pos + n_ws < p.end()) {
            pos += n_ws - 1;  // \s+(?!\S)
        } else if (n_ws > 0) {
            pos += n_ws;  // \s+
        } else {
            ++pos;
        }
        em.to(pos);
    }
    em.to(p.end());
}

// C : every code point of the class is a piece of its own; the text between them is kept as pieces.
template <class Pred>
void split_each(const piece_view& p, Pred in_class, std::vector<size_t>& out) {
    emitter em(out, p.begin());
    for (size_t i = p.begin(); i < p.end(); ++i) {
        if (in_class(i)) {
            em.to(i);
            em.to(i + 1);
        }
    }
    em.to(p.end());
}

// C+ : maximal runs of the class are pieces.
template <class Pred>
void split_runs(const piece_view& p, Pred in_class, std::vector<size_t>& out) {
    emitter em(out, p.begin());
    for (size_t i = p.begin(); i < p.end();) {
        if (!in_class(i)) {
            ++i;
            continue;
        }
        em.to(i);
        while (i < p.end() && in_class(i)) ++i;
        em.to(i);
    }
    em.to(p.end());
}

// \s?C+ : runs of the class, each taking one whitespace code point in front of it when there is one.
template <class Pred>
void split_ws_prefixed_runs(const piece_view& p, Pred in_class, std::vector<size_t>& out) {
    emitter em(out, p.begin());
    for (size_t i = p.begin(); i < p.end();) {
        size_t run = i;  // where the class run starts
        if (!in_class(i)) {
            if (!(has(p.flags(i), cf::whitespace) && i + 1 < p.end() && in_class(i + 1))) {
                ++i;
                continue;
            }
            run = i + 1;
        }
        em.to(i);
        i = run;
        while (i < p.end() && in_class(i)) ++i;
        em.to(i);
    }
    em.to(p.end());
}

// [0-9][0-9][0-9] : leftmost non-overlapping triples of ASCII digits.
void split_digit_triples(const piece_view& p, std::vector<size_t>& out) {
    auto digit = [&](size_t i) { return p.cpt(i) >= '0' && p.cpt(i) <= '9'; };
    emitter em(out, p.begin());
    for (size_t i = p.begin(); i < p.end();) {
        if (i + 2 < p.end() && digit(i) && digit(i + 1) && digit(i + 2)) {
            em.to(i);
            em.to(i + 3);
            i += 3;
        } else {
            ++i;
        }
    }
    em.to(p.end());
}

// Applies one stage to every piece: `ends` (increasing, last = text length in code points) becomes finer.
template <class Splitter>
void run_stage(const decoded_text& d, std::vector<size_t>& ends, std::vector<size_t>& scratch, Splitter split) {
    scratch.clear();
    scratch.reserve(ends.size() * 2);
    size_t begin = 0;
    for (const size_t end : ends) {
        split(piece_view(d, begin, end), scratch);
        begin = end;
    }
    ends.swap(scratch);
}

}  // namespace

std::optional<pre_tokenizer_config> pre_tokenizer_from_name(std::string_view name) {
    using k = pre_tokenizer_kind;
    // Spellings llama.cpp maps to exactly the same splitting and merge behaviour.
    if (name.empty() || name == "default") return pre_tokenizer_config{k::default_bpe, false, false};
    if (name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo") {
        return pre_tokenizer_config{k::gpt2, false, false};
    }
    if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3") {
        return pre_tokenizer_config{k::llama3, true, true};
    }
    if (name == "dbrx" || name == "smaug-bpe") return pre_tokenizer_config{k::llama3, false, false};
    if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "megrez" || name == "stablelm2") {
        return pre_tokenizer_config{k::qwen2, false, false};
    }
    if (name == "deepseek-coder") return pre_tokenizer_config{k::deepseek_coder, false, false};
    if (name == "starcoder" || name == "refact" || name == "command-r" || name == "smollm" || name == "codeshell" ||
        name == "exaone" || name == "minerva-7b") {
        return pre_tokenizer_config{k::starcoder, false, false};
    }
    return std::nullopt;
}

void pre_tokenize(pre_tokenizer_kind kind, std::string_view text, std::vector<byte_range>& words) {
    words.clear();
    if (text.empty()) return;

    decoded_text d;
    decode_text(text, d);
    std::vector<size_t> ends{d.cpts.size()};
    std::vector<size_t> scratch;

    auto flag_is = [&d](uint16_t bits) { return [&d, bits](size_t i) { return has(d.flags[i], bits); }; };
    auto gpt2 = [](const piece_view& p, std::vector<size_t>& out) { split_gpt2(p, out); };

    switch (kind) {
        case pre_tokenizer_kind::gpt2:
            run_stage(d, ends, scratch, gpt2);
            break;
        case pre_tokenizer_kind::llama3:
        case pre_tokenizer_kind::qwen2: {
            const size_t max_digits = kind == pre_tokenizer_kind::llama3 ? 3 : 1;
            run_stage(d, ends, scratch,
                      [max_digits](const piece_view& p, std::vector<size_t>& out) { split_llama3(p, max_digits, out); });
            break;
        }
        case pre_tokenizer_kind::deepseek_coder: {
            auto crlf = [&d](size_t i) { return is_crlf(d.cpts[i]); };
            // [一-龥ࠀ-一가-퟿]: llama.cpp matches it on code points where non-ASCII whitespace was replaced by \v, so
            // the spaces inside these ranges (U+3000, U+2000.., ...) are not part of it.
            auto cjk = [&d](size_t i) {
                const uint32_t c = d.cpts[i];
                return ((c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF)) && !has(d.flags[i], cf::whitespace);
            };
            run_stage(d, ends, scratch, [&](const piece_view& p, std::vector<size_t>& out) { split_each(p, crlf, out); });
            run_stage(d, ends, scratch, [&](const piece_view& p, std::vector<size_t>& out) {
                split_ws_prefixed_runs(p, flag_is(cf::letter), out);
            });
            run_stage(d, ends, scratch, [&](const piece_view& p, std::vector<size_t>& out) {
                split_ws_prefixed_runs(p, flag_is(cf::punctuation), out);
            });
            run_stage(d, ends, scratch, [&](const piece_view& p, std::vector<size_t>& out) { split_runs(p, cjk, out); });
            run_stage(d, ends, scratch,
                      [&](const piece_view& p, std::vector<size_t>& out) { split_each(p, flag_is(cf::number), out); });
            break;
        }
        case pre_tokenizer_kind::starcoder:
            run_stage(d, ends, scratch,
                      [&](const piece_view& p, std::vector<size_t>& out) { split_each(p, flag_is(cf::number), out); });
            run_stage(d, ends, scratch, gpt2);
            break;
        case pre_tokenizer_kind::default_bpe: {
            auto punct_or_math = [&d](size_t i) {
                const uint32_t c = d.cpts[i];
                return has(d.flags[i], cf::punctuation) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
                       c == '^' || c == '~' || c == '|';
            };
            run_stage(d, ends, scratch,
                      [&](const piece_view& p, std::vector<size_t>& out) { split_runs(p, punct_or_math, out); });
            run_stage(d, ends, scratch, gpt2);
            run_stage(d, ends, scratch,
                      [&](const piece_view& p, std::vector<size_t>& out) { split_runs(p, flag_is(cf::number), out); });
            run_stage(d, ends, scratch,
                      [](const piece_view& p, std::vector<size_t>& out) { split_digit_triples(p, out); });
            break;
        }
    }

    words.reserve(ends.size());
    size_t begin = 0;
    for (const size_t end : ends) {
        words.push_back({d.offsets[begin], d.offsets[end]});
        begin = end;
    }
}

}  // namespace spark
