// The drafters that copy text the request already has: the known continuation, the FIM suffix and n-gram lookup.
// They cost no model pass, so they propose certain tokens (empty q) and the verifier accepts exactly the ones the
// target agrees with.
#include "inference/drafters.h"

#include <algorithm>
#include <optional>
#include <tuple>

namespace spark {

namespace {

void append_certain(std::span<const token_id> tokens, int max_new, int self, draft& out) {
    const size_t n = std::min(tokens.size(), static_cast<size_t>(std::max(max_new, 0)));
    for (size_t i = 0; i < n; ++i) {
        out.tokens.push_back(tokens[i]);
        out.q.emplace_back();
        out.source.push_back(self);
    }
}

// The output so far, or nothing when the sequence is shorter than the prompt (a caller's bug: then there is no
// output to reason about and proposing nothing is the safe answer).
std::optional<std::span<const token_id>> output_of(std::span<const token_id> sequence, size_t prompt_len) {
    if (sequence.size() < prompt_len) return std::nullopt;
    return sequence.subspan(prompt_len);
}

bool same(std::span<const token_id> a, std::span<const token_id> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

uint64_t mix(uint64_t x) {  // splitmix64's finaliser: every input bit reaches every output bit
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t gram_hash(std::span<const token_id> g) {
    uint64_t h = g.size();
    for (token_id t : g) h = mix(h ^ static_cast<uint32_t>(t));
    return h;
}

// The n-gram lengths to try, lowest first; a non-positive n_min would make every position match.
std::pair<size_t, size_t> gram_range(int n_max, int n_min) {
    const size_t lo = static_cast<size_t>(std::max(n_min, 1));
    return {lo, static_cast<size_t>(std::max(n_max, 0))};
}

}  // namespace

void known_drafter::start(const draft_context& ctx) {
    known_.assign(ctx.known.begin(), ctx.known.end());
    prompt_len_ = ctx.prompt.size();
}

result<void> known_drafter::propose(std::span<const token_id> sequence, int max_new, const sampling_params&, rng_t&,
                                    int self, draft& out) {
    const auto output = output_of(sequence, prompt_len_);
    if (max_new <= 0 || !output || output->size() >= known_.size()) return {};
    const std::span<const token_id> known(known_);
    if (!same(*output, known.first(output->size()))) return {};
    append_certain(known.subspan(output->size()), max_new, self, out);
    return {};
}

void suffix_drafter::start(const draft_context& ctx) {
    suffix_.assign(ctx.suffix.begin(), ctx.suffix.end());
    prompt_len_ = ctx.prompt.size();
}

result<void> suffix_drafter::propose(std::span<const token_id> sequence, int max_new, const sampling_params&,
                                     rng_t&, int self, draft& out) {
    const auto output = output_of(sequence, prompt_len_);
    if (max_new <= 0 || !output) return {};
    const std::span<const token_id> suffix(suffix_);
    const size_t lowest = static_cast<size_t>(std::max(min_overlap_, 0));
    // Longest first: a longer overlap is stronger evidence that the output is re-creating the suffix. Only the
    // output counts, because the prompt ends where the suffix begins only by construction, not by agreement.
    for (size_t m = std::min(suffix.size(), output->size()) + 1; m-- > lowest;) {
        if (!same(output->last(m), suffix.first(m))) continue;
        append_certain(suffix.subspan(m), max_new, self, out);
        return {};
    }
    return {};
}

void ngram_drafter::start(const draft_context& ctx) {
    extra_.assign(ctx.extra.begin(), ctx.extra.end());
    index_.clear();
    const auto [lo, hi] = gram_range(n_max_, n_min_);
    for (size_t n = lo; n <= hi; ++n) {
        std::vector<gram> grams;
        for (uint32_t t = 0; t < extra_.size(); ++t) {
            const std::span<const token_id> text(extra_[t]);
            for (uint32_t p = 0; p + n < text.size(); ++p) grams.push_back({gram_hash(text.subspan(p, n)), t, p});
        }
        // (hash, text, pos) order keeps the earliest occurrence first, so unique() keeps it. Two distinct n-grams
        // with one 64-bit hash lose one of them: a missed proposal, never a wrong one (lookups compare tokens).
        std::ranges::sort(grams, {}, [](const gram& g) { return std::tuple(g.hash, g.text, g.pos); });
        const auto dup = std::ranges::unique(grams, {}, &gram::hash);
        grams.erase(dup.begin(), dup.end());
        grams.shrink_to_fit();
        index_.push_back(std::move(grams));
    }
}

// The continuation after the most recent earlier occurrence of the sequence's last n tokens: recent text is the
// likeliest to be repeated (a loop body, the line just written). It may run into the key itself, which is how a
// repetition with a period shorter than n predicts its next tokens.
std::span<const token_id> ngram_drafter::in_sequence(std::span<const token_id> sequence, size_t n) const {
    const auto key = sequence.last(n);
    for (size_t s = sequence.size() - n; s-- > 0;) {
        if (sequence[s + n - 1] == key.back() && same(sequence.subspan(s, n), key)) return sequence.subspan(s + n);
    }
    return {};
}

// The continuation after the first occurrence of key in the extra texts, in the caller's order of texts: the
// caller lists the most relevant texts first, and a fixed choice keeps proposals reproducible.
std::span<const token_id> ngram_drafter::in_extra(std::span<const token_id> key) const {
    const size_t lo = gram_range(n_max_, n_min_).first;
    if (key.size() < lo || key.size() - lo >= index_.size()) return {};
    const auto& grams = index_[key.size() - lo];
    const uint64_t h = gram_hash(key);
    const auto it = std::ranges::lower_bound(grams, h, {}, &gram::hash);
    if (it == grams.end() || it->hash != h) return {};
    const std::span<const token_id> text(extra_[it->text]);
    if (!same(text.subspan(it->pos, key.size()), key)) return {};
    return text.subspan(it->pos + key.size());
}

result<void> ngram_drafter::propose(std::span<const token_id> sequence, int max_new, const sampling_params&, rng_t&,
                                    int self, draft& out) {
    if (max_new <= 0) return {};
    const auto [lo, hi] = gram_range(n_max_, n_min_);
    // Longest key first: a longer match is more likely to continue the same way.
    for (size_t n = std::min(hi, sequence.size()); n >= lo; --n) {
        auto continuation = in_sequence(sequence, n);
        if (continuation.empty()) continuation = in_extra(sequence.last(n));
        if (continuation.empty()) continue;
        append_certain(continuation, max_new, self, out);
        return {};
    }
    return {};
}

}  // namespace spark
