// The sampling chain as distributions: what the speculative verifier needs (Leviathan et al. 2023, Chen et al. 2023).
//
// A sampler is a transform from logits to a final probability distribution followed by one draw from it. The
// verifier must apply the same transform to the draft's and the target's logits and then compare the two
// distributions, so the transform is exposed on its own:
//   logits -> banned ids get -inf -> ids >= n_allowed get -inf -> greedy: one-hot at the argmax (lowest id on ties)
//          -> else softmax(logits / temperature) -> top-k -> top-p -> min-p -> renormalised
// and the draw is separate (sample_from). Everything is seeded and reproducible (std::mt19937_64).
#pragma once

#include "inference/tokenizer.h"

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace spark {

using rng_t = std::mt19937_64;

struct sampling_params {
    float temperature = 0.0f;  // <= 0: greedy
    int32_t top_k = 0;         // 0: off
    float top_p = 1.0f;        // >= 1: off
    float min_p = 0.0f;        // <= 0: off; keeps ids with p >= min_p * max p
    uint64_t seed = 0;
    std::vector<token_id> banned;  // never generated (e.g. FIM control tokens, BOS)

    bool greedy() const { return temperature <= 0.0f; }
};

// Writes the final distribution for `logits` into probs (resized to logits.size(); ids at or above n_allowed and
// banned ids get 0). At least one id keeps a non-zero probability (the argmax of the allowed ids).
void distribution(std::span<const float> logits, int32_t n_allowed, const sampling_params& sp,
                  std::vector<float>& probs);

// One draw from a distribution (need not be normalised; all zero is a precondition violation -> id 0).
token_id sample_from(std::span<const float> probs, rng_t& rng);

// The speculative acceptance rule for one drafted token x.
//   p: the target's final distribution at this position; q: the draft's final distribution, or empty when the draft
//   was certain (q = one-hot at x: n-gram, suffix, known continuation, and every greedy drafter).
// Accepts x with probability min(1, p(x) / q(x)); on rejection draws the replacement from the residual
// normalise(max(0, p - q)). Greedy (p one-hot) reduces to "accept iff x is the target's argmax".
struct acceptance {
    bool accepted = false;
    token_id token = -1;  // x when accepted, else the replacement
};
acceptance accept_or_resample(std::span<const float> p, std::span<const float> q, token_id x, rng_t& rng);

// Picks a token from logits with the chain above (plain decoding; the CLI's generate uses it).
class sampler {
public:
    explicit sampler(sampling_params sp) : sp_(std::move(sp)), rng_(sp_.seed) {}
    token_id sample(std::span<const float> logits, int32_t n_allowed);
    const sampling_params& params() const { return sp_; }

private:
    sampling_params sp_;
    rng_t rng_;
    std::vector<float> probs_;
};

token_id argmax(std::span<const float> logits);

}  // namespace spark
