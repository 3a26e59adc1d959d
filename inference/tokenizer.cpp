// Tokenizers from GGUF metadata, reproducing llama.cpp (src/llama-vocab.cpp) token for token:
//
// - special-token partition: control / user-defined / unknown token texts are cut out of the input first, longest
//   token first; user-defined ones always, control and unknown ones only with parse_special;
// - "llama" (SentencePiece BPE): spaces become U+2581, a space is prefixed at the start and after every special
//   token, adjacent symbols merge best score first (ties: leftmost), and what is not a token falls back to <0xXX>;
// - "gpt2" (byte-level BPE): the pre-tokenizer splits words, bytes map to GPT-2's printable alphabet, adjacent
//   symbols merge lowest merge rank first (ties: leftmost).
//
// Where llama.cpp would change bytes (it replaces invalid UTF-8 with U+FFFD) we keep them, so any input round-trips
// when the vocabulary has a token for every byte.
#include "inference/tokenizer.h"

#include "inference/pretokenizer.h"
#include "inference/unicode.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

namespace spark {
namespace {

// Token attributes as a bit set, the way llama.cpp keeps them: a user-defined token recognised as a FIM token by its
// text also becomes control.
namespace attr_bit {
constexpr uint8_t unknown = 1 << 0;
constexpr uint8_t unused = 1 << 1;
constexpr uint8_t normal = 1 << 2;
constexpr uint8_t control = 1 << 3;
constexpr uint8_t user_defined = 1 << 4;
constexpr uint8_t byte = 1 << 5;
constexpr uint8_t special = control | user_defined | unknown;  // cut out of the text before the model runs
}  // namespace attr_bit

uint8_t bits_of(token_attr t) {
    switch (t) {
        case token_attr::normal: return attr_bit::normal;
        case token_attr::unknown: return attr_bit::unknown;
        case token_attr::control: return attr_bit::control;
        case token_attr::user_defined: return attr_bit::user_defined;
        case token_attr::unused: return attr_bit::unused;
        case token_attr::byte: return attr_bit::byte;
        case token_attr::undefined: return 0;
    }
    return 0;
}

constexpr std::string_view space_marker = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

constexpr std::string_view key_model = "tokenizer.ggml.model";
constexpr std::string_view key_pre = "tokenizer.ggml.pre";
constexpr std::string_view key_tokens = "tokenizer.ggml.tokens";
constexpr std::string_view key_scores = "tokenizer.ggml.scores";
constexpr std::string_view key_token_type = "tokenizer.ggml.token_type";
constexpr std::string_view key_merges = "tokenizer.ggml.merges";
constexpr std::string_view key_add_bos = "tokenizer.ggml.add_bos_token";
constexpr std::string_view key_add_eos = "tokenizer.ggml.add_eos_token";
constexpr std::string_view key_add_space_prefix = "tokenizer.ggml.add_space_prefix";

enum class vocab_kind { spm, bpe };

struct merge_entry {
    int32_t rank;     // position in tokenizer.ggml.merges: lower merges first
    token_id merged;  // the token for the joined text, -1 if the vocabulary lacks it
};

uint64_t pair_key(token_id left, token_id right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

// "<0xXX>" (upper- or lower-case hex) -> the byte; nullopt for any other text.
std::optional<uint8_t> parse_byte_token(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    const int hi = hex(text[3]), lo = hex(text[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<uint8_t>(hi * 16 + lo);
}

std::string quoted(std::string_view s) {
    constexpr size_t max_shown = 40;
    std::string out = "'";
    out.append(s.substr(0, max_shown));
    if (s.size() > max_shown) out.append("...");
    out.push_back('\'');
    return out;
}

// A run of raw text or a special token cut out of the input.
struct fragment {
    token_id id = -1;  // -1: raw text [begin, end) of the input
    size_t begin = 0;
    size_t end = 0;
};

// Texts llama.cpp recognises special tokens by when the GGUF does not name them (llama-vocab.cpp, "auto-detect").
constexpr std::string_view eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<|end_of_text|>", "<EOT>", "_<EOT>",
                                          "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
constexpr std::string_view fim_pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                              "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                                              "\xE2\x96\x81<PRE>"};
constexpr std::string_view fim_suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                              "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
                                              "\xE2\x96\x81<SUF>"};
constexpr std::string_view fim_mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                              "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                                              "\xE2\x96\x81<MID>"};
constexpr std::string_view fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"};
constexpr std::string_view fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view fim_sep_texts[] = {"<|file_sep|>"};

}  // namespace

struct tokenizer::impl {
    vocab_kind kind = vocab_kind::spm;
    std::string model;
    std::string pre_name;
    pre_tokenizer_config pre;
    bool add_space_prefix = false;  // SentencePiece: a space goes in front of the text and after special tokens
    special_tokens special;

    std::vector<std::string> text;  // per token, as stored
    std::vector<float> score;       // per token (SentencePiece merge priority); 0 when absent
    std::vector<token_attr> type;   // per token, tokenizer.ggml.token_type
    std::vector<uint8_t> bits;      // per token, attr_bit
    std::vector<std::string> piece; // per token, its output bytes when rendered (control tokens: their text)
    std::unordered_map<std::string_view, token_id> by_text;  // views into `text`, which never changes after load

    // SentencePiece: the <0xXX> token of each byte. Byte-level BPE: the token of each byte's alphabet character.
    // -1 when the vocabulary has none.
    std::array<token_id, 256> byte_token{};
    std::unordered_map<uint64_t, merge_entry> merges;  // (left id, right id) -> merge
    std::vector<token_id> special_by_length;           // attr_bit::special tokens, longest text first

    bool in_range(token_id id) const { return id >= 0 && size_t(id) < text.size(); }

    token_id find(std::string_view s) const {
        const auto it = by_text.find(s);
        return it == by_text.end() ? -1 : it->second;
    }
    // Only normal tokens come out of merging: SentencePiece and HF tokenizers never produce control, user-defined,
    // unknown, unused or byte tokens from plain text, so neither do we (a control token's text in the input stays
    // text; llama.cpp would sometimes merge it into the control token).
    token_id find_normal(std::string_view s) const {
        const token_id id = find(s);
        return id >= 0 && bits[size_t(id)] == attr_bit::normal ? id : -1;
    }

    std::vector<fragment> partition(std::string_view input, bool parse_special) const;
    void tokenize_spm(std::string_view escaped, std::vector<token_id>& out) const;
    void tokenize_bpe(std::string_view input, std::vector<token_id>& out) const;
    void push_byte_fallback(uint8_t byte, std::vector<token_id>& out) const;
    std::string render_piece(token_id id) const;
    // Appends a token's output; `strip_space` carries "the next text piece starts with a space SentencePiece added".
    void append_piece(std::string& out, token_id id, bool render_special, bool& strip_space) const;

    result<void> load_vocabulary(const gguf::gguf_file& file);
    result<void> load_merges(const gguf::gguf_file& file);
    result<void> load_special(const gguf::gguf_file& file);
    void detect_special_by_text();
    void build_caches();
};

result<tokenizer> tokenizer::load(const gguf::gguf_file& file) {
    auto p = std::make_unique<impl>();

    auto model = file.get_string(key_model);
    if (!model) return std::unexpected(model.error());
    if (!*model) return fail("missing ", key_model, ": the file has no tokenizer");
    p->model = **model;
    if (p->model == "llama") {
        p->kind = vocab_kind::spm;
    } else if (p->model == "gpt2") {
        p->kind = vocab_kind::bpe;
    } else {
        return fail("unsupported ", key_model, " ", quoted(p->model), " (supported: 'llama', 'gpt2')");
    }

    auto pre = file.get_string(key_pre);
    if (!pre) return std::unexpected(pre.error());
    p->pre_name = pre->value_or("");
    if (p->kind == vocab_kind::bpe) {
        const auto config = pre_tokenizer_from_name(p->pre_name);
        if (!config) {
            return fail("unsupported ", key_pre, " ", quoted(p->pre_name),
                        " (supported: 'default', 'gpt-2', 'llama3', 'llama-bpe', 'qwen2', 'deepseek-coder', "
                        "'starcoder' and their llama.cpp aliases)");
        }
        p->pre = *config;
    }
    if (p->pre_name.empty()) p->pre_name = "default";

    if (auto r = p->load_vocabulary(file); !r) return std::unexpected(r.error());
    if (p->kind == vocab_kind::bpe) {
        if (auto r = p->load_merges(file); !r) return std::unexpected(r.error());
    }
    if (auto r = p->load_special(file); !r) return std::unexpected(r.error());
    p->detect_special_by_text();
    p->build_caches();

    tokenizer tok(std::move(p));
    // The newline token: SentencePiece's <0x0A>, otherwise whatever "\n" tokenises to first.
    if (tok.impl_->kind == vocab_kind::spm) {
        tok.impl_->special.nl = tok.impl_->byte_token['\n'];
    } else {
        const auto ids = tok.tokenize("\n");
        tok.impl_->special.nl = ids.empty() ? -1 : ids.front();
    }
    return tok;
}

result<void> tokenizer::impl::load_vocabulary(const gguf::gguf_file& file) {
    auto tokens = file.get_array(key_tokens);
    if (!tokens) return std::unexpected(tokens.error());
    if (!*tokens) return fail("missing ", key_tokens);
    const gguf::array& toks = **tokens;
    if (toks.element_type != gguf::value_type::string) {
        return fail(key_tokens, " should be an array of strings but holds ", gguf::value_type_name(toks.element_type));
    }
    if (toks.items.empty()) return fail(key_tokens, " is empty");
    if (toks.items.size() >= size_t(std::numeric_limits<token_id>::max())) {
        return fail(key_tokens, " has ", toks.items.size(), " entries, more than token ids can address");
    }
    const size_t n = toks.items.size();

    text.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string* s = toks.items[i].as_string();
        if (!s) return fail(key_tokens, "[", i, "] is not a string");
        // llama.cpp renames empty tokens so that they can neither match nor collide.
        text[i] = s->empty() ? concat("[EMPTY_", i, "]") : *s;
    }

    score.assign(n, 0.0f);
    auto scores = file.get_array(key_scores);
    if (!scores) return std::unexpected(scores.error());
    if (*scores) {
        const gguf::array& a = **scores;
        if (a.items.size() != n) {
            return fail(key_scores, " has ", a.items.size(), " entries but ", key_tokens, " has ", n);
        }
        for (size_t i = 0; i < n; ++i) {
            const auto v = a.items[i].as_float();
            if (!v) return fail(key_scores, "[", i, "] is not a number (", gguf::value_type_name(a.items[i].type()), ")");
            if (std::isnan(*v)) return fail(key_scores, "[", i, "] is NaN");
            score[i] = static_cast<float>(*v);
        }
    }

    type.assign(n, token_attr::normal);
    auto types = file.get_array(key_token_type);
    if (!types) return std::unexpected(types.error());
    if (*types) {
        const gguf::array& a = **types;
        if (a.items.size() != n) {
            return fail(key_token_type, " has ", a.items.size(), " entries but ", key_tokens, " has ", n);
        }
        for (size_t i = 0; i < n; ++i) {
            const auto v = a.items[i].as_int();
            if (!v || *v < 0 || *v > int64_t(token_attr::byte)) {
                return fail(key_token_type, "[", i, "] is not a token type (0..6)");
            }
            type[i] = static_cast<token_attr>(*v);
        }
    }

    bits.resize(n);
    by_text.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        bits[i] = bits_of(type[i]);
        // A byte token must say which byte it is; one that does not is kept as an ordinary token.
        if (type[i] == token_attr::byte && !parse_byte_token(text[i])) bits[i] = attr_bit::normal;
        // Some published vocabularies repeat a string (usually padding or unused entries); the first id keeps it.
        by_text.emplace(std::string_view(text[i]), token_id(i));
    }
    return {};
}

result<void> tokenizer::impl::load_merges(const gguf::gguf_file& file) {
    auto arr = file.get_array(key_merges);
    if (!arr) return std::unexpected(arr.error());
    if (!*arr) return fail("missing ", key_merges, " (required by ", key_model, " 'gpt2')");
    const gguf::array& a = **arr;
    if (a.element_type != gguf::value_type::string) {
        return fail(key_merges, " should be an array of strings but holds ", gguf::value_type_name(a.element_type));
    }
    if (a.items.size() >= size_t(std::numeric_limits<int32_t>::max())) return fail(key_merges, " is too long");
    merges.reserve(a.items.size());
    std::string joined;
    for (size_t i = 0; i < a.items.size(); ++i) {
        const std::string* s = a.items[i].as_string();
        if (!s) return fail(key_merges, "[", i, "] is not a string");
        // "left right"; llama.cpp splits at the first space after the first byte, so the left part may itself
        // start with a space.
        const size_t sp = s->size() > 1 ? s->find(' ', 1) : std::string::npos;
        if (sp == std::string::npos || sp + 1 >= s->size()) {
            return fail(key_merges, "[", i, "] ", quoted(*s), " is not of the form 'left right'");
        }
        const std::string_view left = std::string_view(*s).substr(0, sp);
        const std::string_view right = std::string_view(*s).substr(sp + 1);
        const token_id l = find(left), r = find(right);
        if (l < 0 || r < 0) {
            return fail(key_merges, "[", i, "] ", quoted(*s), " refers to ", quoted(l < 0 ? left : right),
                        ", which is not in ", key_tokens);
        }
        joined.assign(left).append(right);
        merges.try_emplace(pair_key(l, r), merge_entry{int32_t(i), find_normal(joined)});  // first one wins
    }
    return {};
}

result<void> tokenizer::impl::load_special(const gguf::gguf_file& file) {
    const token_id n = token_id(text.size());
    // llama.cpp's defaults for SentencePiece vocabularies: <unk> = 0, <s> = 1, </s> = 2.
    if (kind == vocab_kind::spm) {
        special.unk = n > 0 ? 0 : -1;
        special.bos = n > 1 ? 1 : -1;
        special.eos = n > 2 ? 2 : -1;
    }
    struct id_key {
        std::string_view key;
        token_id* id;
        bool deprecated;  // used only when the current key is absent
    };
    const id_key keys[] = {
        {"tokenizer.ggml.bos_token_id", &special.bos, false},
        {"tokenizer.ggml.eos_token_id", &special.eos, false},
        {"tokenizer.ggml.eot_token_id", &special.eot, false},
        {"tokenizer.ggml.unknown_token_id", &special.unk, false},
        {"tokenizer.ggml.padding_token_id", &special.pad, false},
        {"tokenizer.ggml.seperator_token_id", &special.sep, false},
        {"tokenizer.ggml.fim_pre_token_id", &special.fim_pre, false},
        {"tokenizer.ggml.fim_suf_token_id", &special.fim_suf, false},
        {"tokenizer.ggml.fim_mid_token_id", &special.fim_mid, false},
        {"tokenizer.ggml.fim_pad_token_id", &special.fim_pad, false},
        {"tokenizer.ggml.fim_rep_token_id", &special.fim_rep, false},
        {"tokenizer.ggml.fim_sep_token_id", &special.fim_sep, false},
        {"tokenizer.ggml.prefix_token_id", &special.fim_pre, true},
        {"tokenizer.ggml.suffix_token_id", &special.fim_suf, true},
        {"tokenizer.ggml.middle_token_id", &special.fim_mid, true},
    };
    std::vector<token_id*> set_by_current_key;
    for (const id_key& k : keys) {
        auto v = file.get_int(k.key);
        if (!v) return std::unexpected(v.error());
        if (!*v) continue;
        if (**v < 0 || **v >= n) return fail(k.key, " = ", **v, " is not a token id (the vocabulary has ", n, ")");
        if (k.deprecated && std::find(set_by_current_key.begin(), set_by_current_key.end(), k.id) !=
                                set_by_current_key.end()) {
            continue;
        }
        *k.id = token_id(**v);
        set_by_current_key.push_back(k.id);
    }

    // add_bos_token: llama.cpp defaults to true for SentencePiece and the llama3 family; add_space_prefix to true
    // for SentencePiece.
    bool add_bos = kind == vocab_kind::spm || pre.add_bos;
    add_space_prefix = kind == vocab_kind::spm;
    auto bos_flag = file.get_bool(key_add_bos);
    if (!bos_flag) return std::unexpected(bos_flag.error());
    auto eos_flag = file.get_bool(key_add_eos);
    if (!eos_flag) return std::unexpected(eos_flag.error());
    auto prefix_flag = file.get_bool(key_add_space_prefix);
    if (!prefix_flag) return std::unexpected(prefix_flag.error());
    if (*bos_flag) {
        if (**bos_flag && special.bos < 0) {
            return fail(key_add_bos, " is true, but tokenizer.ggml.bos_token_id is not set");
        }
        add_bos = **bos_flag;
    }
    if (eos_flag->value_or(false) && special.eos < 0) {
        return fail(key_add_eos, " is true, but tokenizer.ggml.eos_token_id is not set");
    }
    if (*prefix_flag) add_space_prefix = **prefix_flag;
    special.add_bos = add_bos && special.bos >= 0;
    special.add_eos = eos_flag->value_or(false);
    return {};
}

void tokenizer::impl::detect_special_by_text() {
    auto detect = [this](token_id& id, std::span<const std::string_view> candidates) {
        if (id >= 0) return;
        for (const std::string_view t : candidates) {
            const token_id found = find(t);
            if (found < 0) continue;
            id = found;
            // llama.cpp then treats the token as control even if the file says otherwise.
            bits[size_t(found)] |= attr_bit::control;
            return;
        }
    };
    detect(special.eot, eot_texts);
    detect(special.fim_pre, fim_pre_texts);
    detect(special.fim_suf, fim_suf_texts);
    detect(special.fim_mid, fim_mid_texts);
    detect(special.fim_pad, fim_pad_texts);
    detect(special.fim_rep, fim_rep_texts);
    detect(special.fim_sep, fim_sep_texts);
}

void tokenizer::impl::build_caches() {
    const size_t n = text.size();
    byte_token.fill(-1);
    for (uint32_t b = 0; b < 256; ++b) {
        if (kind == vocab_kind::spm) {
            // llama.cpp's byte_to_token: <0xXX>, else a token that is the byte itself.
            static constexpr char hex[] = "0123456789ABCDEF";
            const char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
            token_id id = find(std::string_view(name, 6));
            if (id < 0) id = find_normal(std::string_view(reinterpret_cast<const char*>(&b), 1));
            byte_token[b] = id;
        } else {
            std::string ch;
            unicode::append_utf8(ch, unicode::byte_to_cpt(uint8_t(b)));
            byte_token[b] = find_normal(ch);
        }
    }

    for (size_t i = 0; i < n; ++i) {
        if (bits[i] & attr_bit::special) special_by_length.push_back(token_id(i));
    }
    std::stable_sort(special_by_length.begin(), special_by_length.end(),
                     [this](token_id a, token_id b) { return text[size_t(a)].size() > text[size_t(b)].size(); });

    piece.resize(n);
    for (size_t i = 0; i < n; ++i) piece[i] = render_piece(token_id(i));
}

std::string tokenizer::impl::render_piece(token_id id) const {
    const std::string& t = text[size_t(id)];
    const uint8_t b = bits[size_t(id)];
    if (b & attr_bit::special) return t;
    if (b & attr_bit::byte) return std::string(1, char(*parse_byte_token(t)));
    if (!(b & attr_bit::normal)) return {};  // unused / undefined tokens print nothing (as in llama.cpp)
    std::string out;
    if (kind == vocab_kind::spm) {
        out.reserve(t.size());
        for (size_t i = 0; i < t.size();) {
            if (t.compare(i, space_marker.size(), space_marker) == 0) {
                out.push_back(' ');
                i += space_marker.size();
            } else {
                out.push_back(t[i++]);
            }
        }
        return out;
    }
    // Byte-level BPE: each character of the token stands for one byte. A character outside the alphabet (a
    // hand-added token) is kept as its UTF-8 bytes.
    for (size_t pos = 0; pos < t.size();) {
        const unicode::decoded d = unicode::decode(t, pos);
        const int byte = d.valid ? unicode::cpt_to_byte(d.cpt) : -1;
        if (byte >= 0) {
            out.push_back(char(byte));
        } else {
            out.append(t, pos, d.len);
        }
        pos += d.len;
    }
    return out;
}

// Cuts special-token texts out of the input exactly as llama.cpp's tokenizer_st_partition does: for each token,
// longest first, every raw fragment is split at the token's leftmost non-overlapping occurrences. Cost: one pass
// over the fragments for each special token that occurs in the input at all.
std::vector<fragment> tokenizer::impl::partition(std::string_view input, bool parse_special) const {
    std::vector<fragment> frags;
    if (input.empty()) return frags;
    frags.push_back({-1, 0, input.size()});
    std::vector<fragment> next;
    for (const token_id id : special_by_length) {
        if (!parse_special && (bits[size_t(id)] & (attr_bit::control | attr_bit::unknown))) continue;
        const std::string_view t = text[size_t(id)];
        if (input.find(t) == std::string_view::npos) continue;
        next.clear();
        next.reserve(frags.size() + 2);
        for (const fragment& f : frags) {
            if (f.id >= 0) {
                next.push_back(f);
                continue;
            }
            const std::string_view window = input.substr(0, f.end);
            size_t pos = f.begin;
            for (size_t m; (m = window.find(t, pos)) != std::string_view::npos; pos = m + t.size()) {
                if (m > pos) next.push_back({-1, pos, m});
                next.push_back({id, m, m + t.size()});
            }
            if (pos < f.end) next.push_back({-1, pos, f.end});
        }
        frags.swap(next);
    }
    return frags;
}

// A byte the vocabulary cannot spell: SentencePiece emits <unk> for it; byte-level BPE drops it, as llama.cpp does
// (there <unk>, if any, is often the end-of-text token, which must not appear in the middle of a prompt).
void tokenizer::impl::push_byte_fallback(uint8_t byte, std::vector<token_id>& out) const {
    const token_id id = byte_token[byte];
    if (id >= 0) {
        out.push_back(id);
    } else if (kind == vocab_kind::spm && special.unk >= 0) {
        out.push_back(special.unk);
    }
}

// Merging keeps symbol and queue entries small (32-bit indices: the heap is the hot spot on long words), so a
// longer span is merged in slices of this many bytes; only absurd inputs (a single 1 GiB word) are affected.
constexpr size_t max_merge_span = size_t(1) << 30;
constexpr uint32_t none = std::numeric_limits<uint32_t>::max();

// The merge loop both BPE variants share. Symbols form a doubly linked list (fields n, prev, next; n == 0 once
// merged away); candidate(left, right) queues a pair in `heap` and returns whether it did. The best pair is popped,
// skipped when stale (a side merged since it was queued: the byte sum no longer matches), merged, and the merged
// symbol's new neighbours are queued. on_merge(left, bigram) updates what the merged symbol stands for.
template <class Symbol, class Bigram, class Less, class Candidate, class OnMerge>
void merge_pairs(std::vector<Symbol>& syms, std::vector<Bigram>& heap, Less lower_priority, Candidate&& candidate,
                 OnMerge&& on_merge) {
    for (uint32_t i = 1; i < syms.size(); ++i) candidate(i - 1, i);
    std::make_heap(heap.begin(), heap.end(), lower_priority);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), lower_priority);
        const Bigram bg = heap.back();
        heap.pop_back();
        Symbol& left = syms[bg.left];
        if (left.n == 0 || left.next == none) continue;
        Symbol& right = syms[left.next];
        if (left.n + right.n != bg.size) continue;
        left.n += right.n;
        on_merge(left, bg);
        right.n = 0;
        left.next = right.next;
        if (right.next != none) syms[right.next].prev = bg.left;
        if (candidate(left.prev, bg.left)) std::push_heap(heap.begin(), heap.end(), lower_priority);
        if (candidate(bg.left, left.next)) std::push_heap(heap.begin(), heap.end(), lower_priority);
    }
}

// SentencePiece BPE on already escaped text (spaces are U+2581): start from UTF-8 characters (an invalid byte is a
// character of its own), repeatedly merge the adjacent pair whose joined text is the token with the highest score
// (ties: leftmost), then emit each symbol as its token or as <0xXX> byte tokens.
void tokenizer::impl::tokenize_spm(std::string_view s, std::vector<token_id>& out) const {
    if (s.size() > max_merge_span) {
        size_t cut = max_merge_span;
        while (cut > 0 && (uint8_t(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
        tokenize_spm(s.substr(0, cut), out);
        tokenize_spm(s.substr(cut), out);
        return;
    }
    struct symbol {
        uint32_t begin;  // byte offset in s
        uint32_t n;      // bytes; 0 once merged into its left neighbour
        uint32_t prev, next;
    };
    struct bigram {
        float score;
        uint32_t left;  // the right symbol is left's next while the entry is current
        uint32_t size;  // bytes of both symbols when queued; a different sum later means the entry is stale
    };
    auto lower_priority = [](const bigram& a, const bigram& b) {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    };

    std::vector<symbol> syms;
    syms.reserve(s.size());
    for (size_t pos = 0; pos < s.size();) {
        const uint32_t len = unicode::decode(s, pos).len;
        const auto i = uint32_t(syms.size());
        syms.push_back({uint32_t(pos), len, i == 0 ? none : i - 1, pos + len < s.size() ? i + 1 : none});
        pos += len;
    }
    if (syms.empty()) return;

    std::vector<bigram> heap;
    auto candidate = [&](uint32_t left, uint32_t right) {
        if (left == none || right == none) return false;
        const uint32_t size = syms[left].n + syms[right].n;
        const token_id id = find_normal(s.substr(syms[left].begin, size));
        if (id < 0) return false;
        heap.push_back({score[size_t(id)], left, size});
        return true;
    };
    merge_pairs(syms, heap, lower_priority, candidate, [](symbol&, const bigram&) {});

    for (uint32_t i = 0; i != none; i = syms[i].next) {
        const std::string_view piece_text = s.substr(syms[i].begin, syms[i].n);
        const token_id id = find_normal(piece_text);
        if (id >= 0) {
            out.push_back(id);
        } else {
            for (const char c : piece_text) push_byte_fallback(uint8_t(c), out);
        }
    }
}

// Byte-level BPE: pre-tokenize into words; per word, start from one symbol per byte (its alphabet character) and
// repeatedly merge the adjacent pair with the lowest merge rank (ties: leftmost).
void tokenizer::impl::tokenize_bpe(std::string_view input, std::vector<token_id>& out) const {
    struct symbol {
        token_id id;  // -1: not a token (a byte missing from the alphabet, or a merge result missing from the vocab)
        uint32_t n;   // bytes; 0 once merged into its left neighbour. Symbol i starts at byte i of the word.
        uint32_t prev, next;
    };
    struct bigram {
        int32_t rank;
        uint32_t left;  // the right symbol is left's next while the entry is current
        uint32_t size;  // bytes of both symbols when queued; a different sum later means the entry is stale
        token_id merged;
    };
    auto lower_priority = [](const bigram& a, const bigram& b) {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    };

    std::vector<byte_range> words;
    pre_tokenize(pre.kind, input, words);

    std::vector<symbol> syms;
    std::vector<bigram> heap;  // drained by the end of each word
    std::string encoded;
    auto candidate = [&](uint32_t left, uint32_t right) {
        if (left == none || right == none || syms[left].id < 0 || syms[right].id < 0) return false;
        const auto it = merges.find(pair_key(syms[left].id, syms[right].id));
        if (it == merges.end()) return false;
        heap.push_back({it->second.rank, left, syms[left].n + syms[right].n, it->second.merged});
        return true;
    };

    for (const byte_range& w : words) {
        for (size_t slice = w.begin; slice < w.end; slice += max_merge_span) {
            const std::string_view word = input.substr(slice, std::min(w.end - slice, max_merge_span));
            if (pre.ignore_merges) {
                encoded.clear();
                for (const char c : word) unicode::append_utf8(encoded, unicode::byte_to_cpt(uint8_t(c)));
                if (const token_id id = find_normal(encoded); id >= 0) {
                    out.push_back(id);
                    continue;
                }
            }

            syms.clear();
            const auto n = uint32_t(word.size());
            for (uint32_t i = 0; i < n; ++i) {
                syms.push_back({byte_token[uint8_t(word[i])], 1, i == 0 ? none : i - 1, i + 1 < n ? i + 1 : none});
            }
            merge_pairs(syms, heap, lower_priority, candidate,
                        [](symbol& left, const bigram& bg) { left.id = bg.merged; });

            for (uint32_t i = 0; i != none; i = syms[i].next) {
                if (syms[i].id >= 0) {
                    out.push_back(syms[i].id);
                } else {
                    for (uint32_t b = i; b < i + syms[i].n; ++b) push_byte_fallback(uint8_t(word[b]), out);
                }
            }
        }
    }
}

void tokenizer::impl::append_piece(std::string& out, token_id id, bool render_special, bool& strip_space) const {
    if (!in_range(id)) return;
    const uint8_t b = bits[size_t(id)];
    if (b & attr_bit::special) {
        // Tokenisation puts a space in front of the text after a special token; take it away again.
        strip_space = true;
        if (render_special || !(b & (attr_bit::control | attr_bit::unknown))) out.append(piece[size_t(id)]);
        return;
    }
    const std::string& p = piece[size_t(id)];
    const size_t skip = strip_space && add_space_prefix && !p.empty() && p.front() == ' ' ? 1 : 0;
    out.append(p, skip);
    if (!p.empty()) strip_space = false;
}

tokenizer::tokenizer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
tokenizer::tokenizer(tokenizer&&) noexcept = default;
tokenizer& tokenizer::operator=(tokenizer&&) noexcept = default;
tokenizer::~tokenizer() = default;

std::string_view tokenizer::model_name() const { return impl_->model; }
std::string_view tokenizer::pre_tokenizer_name() const { return impl_->pre_name; }
int32_t tokenizer::n_tokens() const { return int32_t(impl_->text.size()); }
const special_tokens& tokenizer::special() const { return impl_->special; }

std::vector<token_id> tokenizer::tokenize(std::string_view text, tokenize_options options) const {
    const impl& m = *impl_;
    std::vector<token_id> out;
    if (options.add_bos && m.special.bos >= 0) out.push_back(m.special.bos);
    const std::vector<fragment> frags = m.partition(text, options.parse_special);

    if (m.kind == vocab_kind::bpe) {
        for (const fragment& f : frags) {
            if (f.id >= 0) {
                out.push_back(f.id);
            } else {
                m.tokenize_bpe(text.substr(f.begin, f.end - f.begin), out);
            }
        }
        return out;
    }

    // SentencePiece: a space in front of the text and after each special token, then every space escaped.
    bool after_special = true;
    std::string escaped;
    for (const fragment& f : frags) {
        if (f.id >= 0) {
            out.push_back(f.id);
            after_special = true;
            continue;
        }
        escaped.clear();
        if (m.add_space_prefix && after_special) escaped.append(space_marker);
        for (const char c : text.substr(f.begin, f.end - f.begin)) {
            if (c == ' ') {
                escaped.append(space_marker);
            } else {
                escaped.push_back(c);
            }
        }
        m.tokenize_spm(escaped, out);
        after_special = false;
    }
    return out;
}

std::string tokenizer::token_to_piece(token_id id, bool render_special) const {
    std::string out;
    bool strip = false;
    impl_->append_piece(out, id, render_special, strip);
    return out;
}

std::string_view tokenizer::token_text(token_id id) const {
    return impl_->in_range(id) ? std::string_view(impl_->text[size_t(id)]) : std::string_view();
}

token_attr tokenizer::attr(token_id id) const {
    if (!impl_->in_range(id)) return token_attr::undefined;
    // A token promoted to control by its text (llama.cpp's auto-detection) reports control.
    if (impl_->bits[size_t(id)] & attr_bit::control) return token_attr::control;
    return impl_->type[size_t(id)];
}

std::string tokenizer::detokenize(std::span<const token_id> ids, bool render_special) const {
    std::string out;
    bool strip = true;
    for (const token_id id : ids) impl_->append_piece(out, id, render_special, strip);
    return out;
}

std::string stream_decoder::push(token_id id) {
    tok_->impl_->append_piece(pending_, id, false, strip_space_);
    const size_t keep = unicode::incomplete_tail(pending_);
    std::string ready = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return ready;
}

std::string stream_decoder::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace spark
