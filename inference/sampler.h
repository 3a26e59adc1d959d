// Token samplers for generation: greedy, or temperature with optional top-k / top-p, seeded and reproducible.
// (The speculative engine extends this with the distribution-exposing chain it needs for verification.)
#pragma once

#include "inference/tokenizer.h"

#include <cstdint>
#include <random>
#include <span>

namespace spark {

struct sampler_config {
    float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
    int32_t top_k = 0;         // 0: off
    float top_p = 1.0f;        // 1: off
    uint64_t seed = 0;
};

class sampler {
public:
    explicit sampler(sampler_config cfg) : cfg_(cfg), rng_(cfg.seed) {}
    // Picks a token from logits[0 .. n_allowed) (ids at or above n_allowed, e.g. embedding padding, never win).
    token_id sample(std::span<const float> logits, int32_t n_allowed);

private:
    sampler_config cfg_;
    std::mt19937_64 rng_;
};

token_id argmax(std::span<const float> logits);

}  // namespace spark
