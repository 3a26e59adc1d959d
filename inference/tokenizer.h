// Tokenizers built from GGUF metadata: SentencePiece-style (tokenizer.ggml.model = "llama": scores, byte
// fallback) and byte-level BPE ("gpt2": merges, with the pre-tokenizer named by tokenizer.ggml.pre).
//
// Token ids are int32 in [0, n_tokens()); -1 is the "absent" sentinel for optional special ids.
// A tokenizer is immutable after load and may be used from any thread.
#pragma once

#include "inference/gguf.h"
#include "support/result.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spark {

using token_id = int32_t;

enum class token_attr : uint8_t {  // tokenizer.ggml.token_type values
    undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6,
};

struct special_tokens {
    token_id bos = -1, eos = -1, eot = -1, unk = -1, pad = -1, sep = -1, nl = -1;
    token_id fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    bool add_bos = false;  // tokenizer.ggml.add_bos_token (default: true for "llama", false for "gpt2")
    bool add_eos = false;
};

struct tokenize_options {
    bool add_bos = false;        // prepend BOS (only if the vocabulary has one)
    bool parse_special = false;  // control/user-defined token text in the input becomes those tokens
};

class tokenizer {
public:
    // Reads tokenizer.ggml.* keys. Errors name the key or the unsupported model / pre-tokenizer.
    static result<tokenizer> load(const gguf::gguf_file& file);

    tokenizer(tokenizer&&) noexcept;
    tokenizer& operator=(tokenizer&&) noexcept;
    ~tokenizer();

    std::string_view model_name() const;          // "llama" or "gpt2"
    std::string_view pre_tokenizer_name() const;  // tokenizer.ggml.pre ("default" when absent)
    int32_t n_tokens() const;
    const special_tokens& special() const;

    // Any bytes are accepted; invalid UTF-8 is tokenised byte by byte (byte tokens), never rejected.
    std::vector<token_id> tokenize(std::string_view text, tokenize_options options = {}) const;

    // The bytes this token stands for in output (SentencePiece "▁" becomes a space, byte tokens their byte,
    // byte-level BPE characters their bytes; control tokens give "" unless render_special).
    std::string token_to_piece(token_id id, bool render_special = false) const;
    // The token's text as stored in the vocabulary (for inspect / debugging).
    std::string_view token_text(token_id id) const;
    token_attr attr(token_id id) const;

    // Concatenated pieces; for SentencePiece vocabularies the space that tokenisation added in front of the text
    // (and after each special token) is removed again, so detokenize(tokenize(t)) == t. Exceptions: bytes the
    // vocabulary cannot spell are lost, and SentencePiece returns an input U+2581 ("▁") as a space.
    std::string detokenize(std::span<const token_id> ids, bool render_special = false) const;

private:
    friend class stream_decoder;  // shares detokenize's piece logic
    struct impl;
    explicit tokenizer(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// Streaming detokenisation: returns only complete UTF-8 text, holding back a partial multi-byte sequence until the
// token that completes it arrives (or flush()). The concatenation of everything returned equals detokenize() of the
// same ids; bytes that can never become valid UTF-8 are passed through as they are. One decoder per stream; it
// must not outlive its tokenizer.
class stream_decoder {
public:
    explicit stream_decoder(const tokenizer& tok) : tok_(&tok) {}
    std::string push(token_id id);
    std::string flush();  // whatever is held back, as is

private:
    const tokenizer* tok_;
    std::string pending_;
    bool strip_space_ = true;  // the next text piece may start with the space SentencePiece added (start of text,
                               // after a special token); meaningful only for vocabularies that add one
};

}  // namespace spark
