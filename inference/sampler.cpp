#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace spark {

token_id argmax(std::span<const float> logits) {
    token_id best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[size_t(best)]) best = token_id(i);
    return best;
}

token_id sampler::sample(std::span<const float> logits, int32_t n_allowed) {
    const auto allowed = logits.first(std::min(logits.size(), size_t(std::max(n_allowed, 1))));
    if (cfg_.temperature <= 0) return argmax(allowed);

    std::vector<token_id> ids(allowed.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](token_id a, token_id b) { return allowed[a] > allowed[b]; });
    if (cfg_.top_k > 0 && size_t(cfg_.top_k) < ids.size()) ids.resize(size_t(cfg_.top_k));

    std::vector<double> p(ids.size());
    const double max_logit = allowed[size_t(ids[0])];
    double sum = 0;
    for (size_t i = 0; i < ids.size(); ++i)
        sum += (p[i] = std::exp((double(allowed[size_t(ids[i])]) - max_logit) / cfg_.temperature));
    size_t keep = ids.size();
    if (cfg_.top_p < 1.0f) {
        double cum = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            cum += p[i] / sum;
            if (cum >= cfg_.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    const double total = std::accumulate(p.begin(), p.begin() + ptrdiff_t(keep), 0.0);
    double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
    for (size_t i = 0; i < keep; ++i) {
        if (u < p[i]) return ids[i];
        u -= p[i];
    }
    return ids[keep - 1];
}

}  // namespace spark
