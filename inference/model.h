// A decoder-only transformer loaded from GGUF: architectures "llama" and "qwen2".
//
// Loading validates every hyper-parameter and every tensor's presence, shape and type against the metadata, so the
// forward pass can index without checks. Weights stay in the file mapping in their stored type; small vectors
// (norms, biases) are decoded to f32 at load. A model is immutable after load and may be shared across threads.
#pragma once

#include "accel/kernels.h"
#include "inference/gguf.h"
#include "inference/tokenizer.h"
#include "support/result.h"

#include <memory>
#include <string>
#include <vector>

namespace spark {

using accel::rope_style;  // normal: llama, adjacent pairs; neox: qwen2, (x[j], x[j + n_rot/2])

struct model_hparams {
    std::string arch;        // "llama" | "qwen2"
    std::string name;        // general.name, may be empty
    int32_t n_vocab = 0;     // rows of the embedding = width of the logits (may exceed the tokenizer's count)
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;   // < n_head means grouped-query attention
    int32_t head_dim = 0;
    int32_t n_ff = 0;
    int32_t n_rot = 0;       // rotated dimensions per head (<= head_dim, even)
    float rope_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // linear RoPE scaling: positions are multiplied by this
    float rms_eps = 1e-5f;
    rope_style rope = rope_style::normal;
    bool has_qkv_bias = false;
    bool tied_output = false;  // output projection shares token_embd.weight

    int32_t n_embd_q() const { return n_head * head_dim; }
    int32_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// A matrix in the file mapping: n_rows rows of n_cols elements of `type`, row r at data + r * row_bytes.
struct weight_matrix {
    const gguf::tensor_info* info = nullptr;
    const uint8_t* data = nullptr;
    ggml_type type = ggml_type::f32;
    int64_t n_cols = 0;  // input width (GGUF dims[0])
    int64_t n_rows = 0;  // output width (GGUF dims[1])
    uint64_t row_bytes = 0;
};

struct layer_weights {
    std::vector<float> attn_norm;           // [n_embd]
    weight_matrix wq, wk, wv, wo;           // q: n_embd -> n_embd_q; k, v: n_embd -> n_embd_kv; o: n_embd_q -> n_embd
    std::vector<float> bq, bk, bv;          // qwen2 only: [n_embd_q], [n_embd_kv], [n_embd_kv]
    std::vector<float> ffn_norm;            // [n_embd]
    weight_matrix w_gate, w_up, w_down;     // gate, up: n_embd -> n_ff; down: n_ff -> n_embd
};

struct model_weights {
    weight_matrix token_embd;   // n_vocab rows of n_embd
    std::vector<float> output_norm;
    weight_matrix output;       // n_embd -> n_vocab (== token_embd when tied)
    std::vector<layer_weights> layers;
};

class model {
public:
    // Opens, validates and binds a GGUF model and its tokenizer. Errors name the file and the tensor or key.
    static result<std::shared_ptr<const model>> load(const std::string& path);
    // Same, from an already opened file (takes ownership).
    static result<std::shared_ptr<const model>> from_file(gguf::gguf_file file, std::string origin);

    const model_hparams& hparams() const { return hparams_; }
    const model_weights& weights() const { return weights_; }
    const tokenizer& vocab() const { return *tokenizer_; }
    const gguf::gguf_file& file() const { return file_; }
    const std::string& origin() const { return origin_; }
    uint64_t weight_bytes() const;  // bytes of all weight tensors (what one decode step must read)

private:
    model(gguf::gguf_file file, std::string origin) : file_(std::move(file)), origin_(std::move(origin)) {}
    result<void> bind();

    gguf::gguf_file file_;
    std::string origin_;
    model_hparams hparams_;
    model_weights weights_;
    std::unique_ptr<tokenizer> tokenizer_;
};

}  // namespace spark
