// Deterministic random models: GGUF files with real structure and random weights, for tests and benchmarks at
// toy and real shapes (e.g. Qwen2.5-Coder-0.5B's) without shipping or downloading weights.
//
// The same spec and seed give byte-identical files on any machine: weights come from a counter-based generator
// keyed by (seed, tensor name, element index), never from std:: distributions whose output may vary.
#pragma once

#include "accel/tensor_types.h"
#include "support/result.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace spark {

struct random_model_spec {
    std::string arch = "llama";   // "llama" (SentencePiece vocabulary) | "qwen2" (byte-level BPE, biases)
    std::string name = "random";
    int32_t n_vocab = 0;          // 0: exactly the built-in vocabulary's size; else padded with unused tokens
    int32_t n_embd = 64;
    int32_t n_layer = 2;
    int32_t n_head = 4;
    int32_t n_head_kv = 2;
    int32_t head_dim = 0;         // 0: n_embd / n_head
    int32_t n_ff = 128;
    int32_t n_ctx = 2048;
    float rope_base = 10000.0f;
    float rms_eps = 1e-5f;
    bool tied_output = false;
    ggml_type weight_type = ggml_type::f32;  // matrices (embedding and output included)
    ggml_type norm_type = ggml_type::f32;    // norms and biases
    uint64_t seed = 1;
};

// Named shapes: "tiny-llama", "tiny-llama-tied", "tiny-qwen2", "qwen2.5-0.5b", "qwen2.5-1.5b".
result<random_model_spec> random_model_preset(const std::string& name);
std::vector<std::string> random_model_preset_names();

// Writes the model; progress(done, total) is called per tensor.
result<void> write_random_model(const random_model_spec& spec, const std::string& path,
                                const std::function<void(size_t, size_t)>& progress = {});

}  // namespace spark
