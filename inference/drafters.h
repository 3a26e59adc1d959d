// The drafters: where speculative tokens come from (see speculative.h for the interface).
//
//   known_drafter   the caller's expected continuation (typed-ahead characters, the previous suggestion): while the
//                   output so far is a prefix of it, propose the rest. Certain tokens.
//   suffix_drafter  completions often end by re-creating the first tokens of the text after the cursor: when the
//                   output's tail equals a prefix of the suffix, propose the suffix's continuation. Certain tokens.
//   ngram_drafter   prompt lookup: find the output's last n tokens (n from n_max down to n_min) earlier in the
//                   prompt, the output or the extra texts, and propose what followed (the most recent match).
//   model_drafter   a small model with the target's vocabulary, on its own partition; samples with the request's
//                   chain and reports its distributions (greedy: certain tokens).
//   oracle_drafter  benchmark only: knows the target's greedy continuation and proposes each token correctly with a
//                   set probability (a wrong token otherwise), to measure the speed-up curve S(alpha).
#pragma once

#include "inference/forward.h"
#include "inference/speculative.h"

#include <memory>

namespace spark {

class known_drafter final : public drafter {
public:
    std::string_view name() const override { return "known"; }
    void start(const draft_context& ctx) override;
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override;

private:
    std::vector<token_id> known_;
    size_t prompt_len_ = 0;
};

class suffix_drafter final : public drafter {
public:
    // min_overlap: tokens of the suffix the output must already repeat before the rest is proposed.
    explicit suffix_drafter(int min_overlap = 1) : min_overlap_(min_overlap) {}
    std::string_view name() const override { return "suffix"; }
    void start(const draft_context& ctx) override;
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override;

private:
    int min_overlap_;
    std::vector<token_id> suffix_;
    size_t prompt_len_ = 0;
};

class ngram_drafter final : public drafter {
public:
    explicit ngram_drafter(int n_max = 4, int n_min = 2) : n_max_(n_max), n_min_(n_min) {}
    std::string_view name() const override { return "ngram"; }
    void start(const draft_context& ctx) override;
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override;

private:
    // One distinct n-gram of the extra texts: where it first occurs with at least one token after it.
    struct gram {
        uint64_t hash;
        uint32_t text, pos;
    };
    std::span<const token_id> in_sequence(std::span<const token_id> sequence, size_t n) const;
    std::span<const token_id> in_extra(std::span<const token_id> key) const;

    int n_max_, n_min_;
    std::vector<std::vector<token_id>> extra_;
    std::vector<std::vector<gram>> index_;  // [n - lowest n]: sorted by hash, one entry per hash
};

// A sequence_model over a placed model and its own KV cache.
class model_sequence final : public sequence_model {
public:
    model_sequence(placed_model& pm, int32_t n_ctx);
    int32_t n_vocab() const override;
    int32_t n_allowed() const override;
    int32_t capacity() const override { return cache_.capacity(); }
    std::span<const token_id> tokens() const override { return tokens_; }
    void truncate(size_t n) override;
    result<void> append(std::span<const token_id> t, std::vector<float>& logits, bool all) override;
    void set_cancel(const std::atomic<bool>* flag) override { pm_.set_cancel(flag); }
    placed_model& placed() { return pm_; }

private:
    placed_model& pm_;
    kv_cache cache_;
    std::vector<token_id> tokens_;
};

class model_drafter final : public drafter {
public:
    // Refuses (error naming the difference) a draft model whose vocabulary differs from the target's.
    static result<std::unique_ptr<model_drafter>> create(placed_model& draft, const model& target, int32_t n_ctx);
    std::string_view name() const override { return "draft-model"; }
    bool runs_model() const override { return true; }
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override;
    model_sequence& sequence() { return seq_; }

private:
    explicit model_drafter(placed_model& draft, int32_t n_ctx) : seq_(draft, n_ctx) {}
    model_sequence seq_;
    std::vector<float> logits_;
};

class oracle_drafter final : public drafter {
public:
    // truth: the target's greedy output after the prompt; alpha: the probability each proposed token is right.
    oracle_drafter(std::vector<token_id> truth, double alpha, int32_t n_vocab, uint64_t seed)
        : truth_(std::move(truth)), alpha_(alpha), n_vocab_(n_vocab), rng_(seed) {}
    std::string_view name() const override { return "oracle"; }
    void start(const draft_context& ctx) override { prompt_len_ = ctx.prompt.size(); }
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override;

private:
    std::vector<token_id> truth_;
    double alpha_;
    int32_t n_vocab_;
    rng_t rng_;
    size_t prompt_len_ = 0;
};

}  // namespace spark
