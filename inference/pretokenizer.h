// Pre-tokenizers for byte-level BPE: split text into the words that BPE merges never cross.
//
// Each kind reproduces the regex list llama.cpp applies for a tokenizer.ggml.pre value (src/llama-vocab.cpp), with
// the semantics of its splitter (src/unicode.cpp): every regex in the list re-splits each piece the previous one
// produced, keeping both the matches and the text between them. No regex engine is involved: each pattern has a
// hand-written scanner over code point flags, linear in the input length.
//
// Invalid UTF-8 bytes take part as single units with the flags of U+FFFD (what llama.cpp substitutes), but words are
// byte ranges of the original text, so no byte is ever changed or lost.
// All functions are pure and may be called from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace spark {

enum class pre_tokenizer_kind {
    gpt2,            // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
    llama3,          // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
                     // \s*[\r\n]+|\s+(?!\S)|\s+
    qwen2,           // as llama3 but \p{N} one digit at a time
    deepseek_coder,  // [\r\n] ; \s?\p{L}+ ; \s?\p{P}+ ; [一-龥ࠀ-一가-퟿]+ ; \p{N}
    starcoder,       // \p{N} ; gpt2
    default_bpe,     // [\p{P}\$\+<=>\^~\|]+ ; gpt2 ; \p{N}+ ; [0-9][0-9][0-9]   (llama.cpp's "default")
};

struct pre_tokenizer_config {
    pre_tokenizer_kind kind = pre_tokenizer_kind::default_bpe;
    bool ignore_merges = false;  // a word that is itself a token is emitted whole (llama3 family)
    bool add_bos = false;        // llama.cpp's default for add_bos_token with this pre-tokenizer
};

// The configuration llama.cpp uses for a tokenizer.ggml.pre value ("" = key absent = "default"); nullopt when the
// name is not one we support.
std::optional<pre_tokenizer_config> pre_tokenizer_from_name(std::string_view name);

struct byte_range {
    size_t begin = 0;  // byte offsets into the text, begin < end
    size_t end = 0;
};

// Splits text into words: non-empty, contiguous, in order, covering all of text. Clears `words` first.
void pre_tokenize(pre_tokenizer_kind kind, std::string_view text, std::vector<byte_range>& words);

}  // namespace spark
