#include "inference/sampling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace spark {

namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

// A NaN logit (a numerical failure upstream) must neither win the argmax nor poison the softmax's sums.
float sane(float logit) { return std::isnan(logit) ? neg_inf : logit; }

// The ids that may be generated are [0, n_allowed) minus the banned ones. Banned lists are short, so the range is
// walked as the segments between sorted banned ids: no per-id lookup and no vocabulary-sized mask.
template <class Fn>
void for_each_allowed(std::span<const float> logits, int32_t n_allowed, std::span<const token_id> banned, Fn&& fn) {
    const size_t n = std::min(logits.size(), size_t(std::max(n_allowed, 0)));
    std::vector<size_t> cuts;
    cuts.reserve(banned.size() + 1);
    for (token_id b : banned)
        if (b >= 0 && size_t(b) < n) cuts.push_back(size_t(b));
    std::sort(cuts.begin(), cuts.end());
    cuts.push_back(n);
    size_t start = 0;
    for (size_t cut : cuts) {
        for (size_t i = start; i < cut; ++i) fn(token_id(i), sane(logits[i]));
        start = std::max(start, cut + 1);
    }
}

// The argmax of the allowed ids, lowest id on ties; when every allowed logit is -inf, the lowest allowed id. When
// nothing is allowed at all (a caller bug), the plain argmax, so that a distribution still has one non-zero id.
token_id allowed_argmax(std::span<const float> logits, int32_t n_allowed, std::span<const token_id> banned) {
    token_id best = -1;
    float best_logit = neg_inf;
    for_each_allowed(logits, n_allowed, banned, [&](token_id id, float logit) {
        if (best < 0 || logit > best_logit) best = id, best_logit = logit;
    });
    return best >= 0 ? best : argmax(logits);
}

// An allowed id with its logit, and after softmax_weights with its unnormalised probability. Both order the ids
// the same way (exp is monotone), so top-k can run on logits and skip the exp for everything it drops.
struct candidate {
    double value;
    token_id id;
};

// Higher first; equal values by lower id, so truncation is deterministic.
bool ranks_before(const candidate& a, const candidate& b) {
    return a.value > b.value || (a.value == b.value && a.id < b.id);
}

// Keeps the k best candidates seen so far in a heap whose front is the worst of them, so that a scan over a large
// vocabulary mostly costs one comparison per id and never materialises the ids top-k would drop.
void offer(std::vector<candidate>& heap, size_t k, candidate x) {
    if (heap.size() < k) {
        heap.push_back(x);
        std::push_heap(heap.begin(), heap.end(), ranks_before);
    } else if (ranks_before(x, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), ranks_before);
        heap.back() = x;
        std::push_heap(heap.begin(), heap.end(), ranks_before);
    }
}

// The allowed ids that can survive the chain, with their logits; top-k is applied here. Without top-p, min-p only
// compares against the maximum, so ids clearly below its threshold are skipped before paying for their exp (the
// margin keeps borderline ids for the exact test); with top-p they still count towards the nucleus' total.
void collect_candidates(std::span<const float> logits, int32_t n_allowed, const sampling_params& sp, double max_logit,
                        std::vector<candidate>& out) {
    out.clear();
    const double inv_t = 1.0 / double(sp.temperature);
    const bool prefilter = sp.top_p >= 1.0f && sp.min_p > 0.0f;
    const double floor = prefilter ? std::log(std::min(double(sp.min_p), 1.0)) - 1e-6 : -HUGE_VAL;
    const size_t k = sp.top_k > 0 ? size_t(sp.top_k) : 0;
    for_each_allowed(logits, n_allowed, sp.banned, [&](token_id id, float logit) {
        if (!(logit > neg_inf) || (double(logit) - max_logit) * inv_t < floor) return;
        if (k > 0)
            offer(out, k, {double(logit), id});
        else
            out.push_back({double(logit), id});
    });
}

// Logits to unnormalised softmax weights, dropping those that underflow. The maximum gets exactly 1, which also
// handles +inf logits (inf - inf would be NaN).
void softmax_weights(std::vector<candidate>& c, double max_logit, double temperature) {
    for (candidate& x : c) x.value = x.value == max_logit ? 1.0 : std::exp((x.value - max_logit) / temperature);
    std::erase_if(c, [](const candidate& x) { return !(x.value > 0.0); });
}

// Weights in (0, 1] bucketed by the top bits of their IEEE representation (exponent and 4 mantissa bits), which
// order like the weights themselves: a bucket never holds a weight larger than one in a higher bucket.
constexpr uint32_t n_buckets = (0x3FF0000000000000ull >> 48) + 1;  // up to the bucket of 1.0
uint32_t bucket_of(double weight) {
    return std::min(uint32_t(std::bit_cast<uint64_t>(weight) >> 48), n_buckets - 1);
}

// The nucleus is found without sorting, because with a flat distribution it can hold a large part of a 150k
// vocabulary: the bucket masses locate the bucket where the cumulative probability crosses top_p, and only that
// bucket is sorted. Ids in higher buckets rank before it and are all kept.
void keep_top_p(std::vector<candidate>& c, double top_p) {
    if (top_p >= 1.0 || c.empty()) return;
    thread_local std::vector<double> mass;
    mass.assign(n_buckets, 0.0);
    double total = 0.0;
    for (const candidate& x : c) mass[bucket_of(x.value)] += x.value, total += x.value;
    const double target = top_p * total;
    double kept = 0.0;
    uint32_t crossing = n_buckets - 1;
    for (; crossing > 0; --crossing) {
        if (mass[crossing] > 0.0 && kept + mass[crossing] >= target) break;
        kept += mass[crossing];
    }
    const auto first = std::partition(c.begin(), c.end(), [&](const candidate& x) {
        return bucket_of(x.value) > crossing;
    });
    const auto last = std::partition(first, c.end(), [&](const candidate& x) {
        return bucket_of(x.value) == crossing;
    });
    std::sort(first, last, ranks_before);
    for (auto it = first; it != last; ++it) {
        kept += it->value;
        if (kept >= target) {
            c.erase(it + 1, c.end());
            return;
        }
    }
    c.erase(last, c.end());  // rounding left the target out of reach by a hair: keep the whole crossing bucket
}

// min_p above 1 would exclude the maximum itself; clamping keeps the most probable ids instead of none.
void keep_min_p(std::vector<candidate>& c, double min_p) {
    if (min_p <= 0.0 || c.empty()) return;
    double max_weight = 0.0;
    for (const candidate& x : c) max_weight = std::max(max_weight, x.value);
    const double threshold = std::min(min_p, 1.0) * max_weight;
    std::erase_if(c, [&](const candidate& x) { return x.value < threshold; });
}

void write_normalised(const std::vector<candidate>& c, std::vector<float>& probs) {
    double total = 0.0;
    for (const candidate& x : c) total += x.value;
    for (const candidate& x : c) probs[size_t(x.id)] = float(x.value / total);
}

// Draws from weights given as a function of the id, without materialising them: the rejection path of the verifier
// would otherwise allocate a vocabulary-sized residual per rejected token. Returns -1 when the total is zero.
template <class Weight>
token_id draw(size_t n, Weight&& weight, rng_t& rng) {
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += weight(i);
    if (!(total > 0.0) || !std::isfinite(total)) return -1;
    const double u = std::uniform_real_distribution<double>(0.0, total)(rng);
    double cumulative = 0.0;
    token_id last_nonzero = -1;
    for (size_t i = 0; i < n; ++i) {
        const double w = weight(i);
        if (w <= 0.0) continue;
        cumulative += w;
        last_nonzero = token_id(i);
        if (u < cumulative) return last_nonzero;
    }
    // u can round up to the total (or the running sum fall short of it): the draw belongs to the last id.
    return last_nonzero;
}

double positive(float p) { return p > 0.0f ? double(p) : 0.0; }

}  // namespace

token_id argmax(std::span<const float> logits) {
    if (logits.empty()) return -1;
    token_id best = 0;
    float best_logit = sane(logits[0]);
    for (size_t i = 1; i < logits.size(); ++i) {
        const float logit = sane(logits[i]);
        if (logit > best_logit) best = token_id(i), best_logit = logit;
    }
    return best;
}

void distribution(std::span<const float> logits, int32_t n_allowed, const sampling_params& sp,
                  std::vector<float>& probs) {
    probs.assign(logits.size(), 0.0f);
    if (logits.empty()) return;
    const token_id top = allowed_argmax(logits, n_allowed, sp.banned);
    const float max_logit = sane(logits[size_t(top)]);
    // All allowed logits at -inf have no softmax; the one-hot keeps the "at least one non-zero id" promise.
    if (sp.greedy() || max_logit == neg_inf) {
        probs[size_t(top)] = 1.0f;
        return;
    }
    // Per thread, so that a 150k-entry candidate list is not reallocated for every token.
    thread_local std::vector<candidate> c;
    collect_candidates(logits, n_allowed, sp, double(max_logit), c);
    if (c.empty()) {  // nothing is allowed at all: top is the plain argmax
        probs[size_t(top)] = 1.0f;
        return;
    }
    softmax_weights(c, double(max_logit), double(sp.temperature));
    keep_top_p(c, double(sp.top_p));
    keep_min_p(c, double(sp.min_p));
    write_normalised(c, probs);
}

token_id sample_from(std::span<const float> probs, rng_t& rng) {
    const token_id t = draw(probs.size(), [&](size_t i) { return positive(probs[i]); }, rng);
    return t >= 0 ? t : 0;
}

acceptance accept_or_resample(std::span<const float> p, std::span<const float> q, token_id x, rng_t& rng) {
    const bool in_p = x >= 0 && size_t(x) < p.size();
    const auto q_at = [&](size_t i) -> double {
        if (q.empty()) return i == size_t(x) ? 1.0 : 0.0;
        return i < q.size() ? positive(q[i]) : 0.0;
    };
    const double px = in_p ? positive(p[size_t(x)]) : 0.0;
    const double qx = in_p ? q_at(size_t(x)) : 0.0;
    // A draft with q(x) = 0 cannot have been drawn from q; it is rejected rather than divided by zero.
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    if (qx > 0.0 && u < px / qx) return {true, x};
    const token_id r = draw(p.size(), [&](size_t i) { return std::max(0.0, positive(p[i]) - q_at(i)); }, rng);
    // p == q leaves no residual (rejection then only happens through rounding): the target's own draw is exact.
    return {false, r >= 0 ? r : sample_from(p, rng)};
}

token_id sampler::sample(std::span<const float> logits, int32_t n_allowed) {
    if (sp_.greedy()) return allowed_argmax(logits, n_allowed, sp_.banned);
    distribution(logits, n_allowed, sp_, probs_);
    return sample_from(probs_, rng_);
}

}  // namespace spark
