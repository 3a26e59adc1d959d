// Speculative decoding: drafters propose, the target verifies a whole block in one batched pass, and the output is
// exactly what the target alone would produce (DESIGN §6).
//
// One step, with `last` the newest token (not yet in the target's state) and the target holding everything before:
//   1. the drafters propose d1..dg (cheapest first; each continues after the others' tokens), g <= gamma;
//   2. the target evaluates [last, d1..dg] in one pass: g + 1 next-token distributions p1..p(g+1);
//   3. d_i is accepted with probability min(1, p_i(d_i) / q_i(d_i)) in order; the first rejection draws its
//      replacement from normalise(max(0, p_i - q_i)) and ends the step; if all are accepted a bonus token is drawn
//      from p(g+1) (greedy: the longest prefix matching the target's argmaxes, then the target's own token);
//   4. the target's state is rolled back to the accepted tokens; the drawn token becomes `last`.
// With g = 0 a step is plain decoding. Because the forward pass is batch-invariant (bitwise), greedy speculative
// output equals greedy plain output token for token, and sampled output has exactly the target's distribution.
//
// gamma adapts per request: expected tokens per step (1 - a^(g+1)) / (1 - a) for the running acceptance rate a,
// divided by the measured cost of the step (a (g+1)-position pass plus g drafted tokens, relative to one position),
// maximised over g in [0, max]; g = 0 wins whenever drafting does not pay, so a bad drafter never makes a request
// much slower than plain decoding. The first step of a decoder runs plain, to measure the one-position cost, and
// after 32 plain steps in a row one step drafts 2 tokens anyway, so estimates that turned drafting off are
// re-measured (worst case ~3% of a compute-bound target's time). The acceptance estimate carries across requests.
#pragma once

#include "inference/sampling.h"
#include "support/result.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spark {

class tokenizer;

// The target (or a draft model's) sequence state: a KV cache and the tokens in it.
class sequence_model {
public:
    virtual ~sequence_model() = default;
    virtual int32_t n_vocab() const = 0;      // rows of logits
    virtual int32_t n_allowed() const = 0;    // ids below this may be generated (the tokenizer's size)
    virtual int32_t capacity() const = 0;     // positions the state can hold
    virtual std::span<const token_id> tokens() const = 0;  // what the state holds, position by position
    virtual void truncate(size_t n) = 0;      // keep the first n positions
    // Appends tokens to the state; logits gets one row of n_vocab per appended token (all) or only the last row.
    virtual result<void> append(std::span<const token_id> t, std::vector<float>& logits, bool all) = 0;
    // A flag append() may check inside a long evaluation (between layers); when it fires append fails and the
    // state is unchanged. Null: none.
    virtual void set_cancel(const std::atomic<bool>* flag) {}
};

// A token block proposed for verification. q[i] is the drafter's final distribution for tokens[i] (same sampling
// chain as the target) or empty when the drafter was certain (one-hot at tokens[i]).
struct draft {
    std::vector<token_id> tokens;
    std::vector<std::vector<float>> q;
    std::vector<int> source;  // index of the drafter that proposed each token
    void clear() { tokens.clear(), q.clear(), source.clear(); }
    size_t size() const { return tokens.size(); }
};

// What a request knows around the cursor, for drafters that copy text instead of running a model.
struct draft_context {
    std::span<const token_id> prompt;                 // the whole prompt as the target sees it
    std::span<const token_id> suffix;                 // the FIM suffix's tokens (the text after the cursor)
    std::span<const token_id> known;                  // the caller's expected continuation (typed-ahead, previous)
    std::span<const std::vector<token_id>> extra;     // other texts (open files), tokenised
};

class drafter {
public:
    virtual ~drafter() = default;
    virtual std::string_view name() const = 0;
    // A new request starts (called before its first propose).
    virtual void start(const draft_context& ctx) {}
    // Appends up to max_new tokens to `out`, continuing `sequence` (prompt + output so far + out.tokens).
    // `self` is this drafter's index, for out.source. Drafters that copy text append certain tokens (empty q).
    virtual result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp,
                                 rng_t& rng, int self, draft& out) = 0;
    // True for drafters that run a model on their own partition: those may draft concurrently with verification.
    virtual bool runs_model() const { return false; }
};

// Why a generation ended.
enum class stop_reason { eos, stop_string, max_tokens, criterion, cancelled, time_budget, context_full };
std::string_view stop_reason_name(stop_reason r);

struct drafter_stats {
    std::string name;
    uint64_t drafted = 0, accepted = 0;
};

struct generation_stats {
    int32_t prompt_tokens = 0;
    int32_t prompt_reused = 0;      // positions kept from the target's previous state (longest common prefix)
    int32_t prompt_evaluated = 0;   // positions the target evaluated for the prompt
    uint64_t steps = 0;             // draft/verify steps (a plain decoding step counts too)
    uint64_t target_positions = 0;  // positions the target evaluated while generating
    uint64_t drafted = 0, accepted = 0;
    std::vector<drafter_stats> per_drafter;
    double prompt_seconds = 0, seconds = 0;  // seconds: whole request
    int32_t generated = 0;
    double mean_accepted() const { return steps ? double(accepted) / double(steps) : 0; }
    double acceptance() const { return drafted ? double(accepted) / double(drafted) : 0; }
    double tokens_per_second() const {
        const double s = seconds - prompt_seconds;
        return s > 0 ? double(generated) / s : 0;
    }
};

struct generation_params {
    sampling_params sampling;
    int32_t max_tokens = 128;
    std::vector<token_id> stop_tokens;       // end of generation (EOS/EOT); never part of the output
    std::vector<std::string> stop_strings;   // output ends before the first occurrence (needs a tokenizer)
    // Called after each accepted token with the output text so far; returns how many bytes of it to keep when the
    // output should end there, or npos to go on. (The LSP layer stops at the end of a block or where the output
    // joins the suffix.)
    std::function<size_t(std::string_view text)> stop_criterion;
    std::function<void(std::string_view piece)> on_text;  // streamed output text, in order
    // Upper bound on drafted tokens per step, at most 31. Above accel::max_batch - 1 a verify runs as two chunks
    // (still batch-invariant, so still lossless) and costs more; callers normally stay below.
    int max_gamma = 8;
    bool adaptive_gamma = true;              // false: always draft max_gamma tokens (tests)
    std::chrono::duration<double> time_budget{0};  // 0: none
    const std::atomic<bool>* cancel = nullptr;     // checked between steps and inside long prompt evaluations
};

struct generation_result {
    std::vector<token_id> tokens;
    std::string text;
    stop_reason reason = stop_reason::max_tokens;
    generation_stats stats;
};

// Cost curve of a step, learnt from the passes it sees: seconds of a target pass of B positions relative to one
// position (unmeasured B: the mean measured slope per extra position, or 0.08 before any), and seconds of drafting
// one token relative to one target position (0 until measured: copying drafters are free).
class verify_cost {
public:
    double ratio(int b) const;
    double draft_ratio() const;
    bool knows_single() const { return n_[1] > 0; }
    void record(int b, double seconds);
    void record_draft(int tokens, double seconds);

    static constexpr int max_positions = 32;  // a verify pass of [last, d1..d31] at most

private:
    double ema_[max_positions + 1] = {};
    uint32_t n_[max_positions + 1] = {};
    double draft_ema_ = 0;
    uint32_t draft_n_ = 0;
};

class speculative_decoder {
public:
    // target: the sequence to generate in (its state is reused across requests: prefix reuse). tok may be null
    // (then there is no text: stop strings and stop criteria are not available). drafters: cheapest first.
    speculative_decoder(sequence_model& target, const tokenizer* tok, std::vector<drafter*> drafters);

    // Generates after prompt. The target's state is rolled back to the longest common prefix with the prompt and
    // only the rest is evaluated. Errors: empty prompt, prompt longer than the context, model errors.
    result<generation_result> generate(const draft_context& ctx, const generation_params& gp);

    // Concurrent drafting (PEARL-style pre-verify): while the target verifies [last, d1..dg], the model drafters
    // draft on their own partition from the optimistic continuation d1..dg (their first token is their guess of the
    // target's next token); when every draft is accepted and the guess was right, the rest is the next step's draft
    // at no waiting time. Needs a model drafter; output is unchanged (greedy: identical; sampling: the same
    // distribution). Pays only when the cores are not already saturated by the target: a setting chosen by
    // measurement (bench spec).
    void set_concurrent_drafting(bool on) { concurrent_ = on; }
    bool concurrent_drafting() const { return concurrent_; }
    uint64_t concurrent_hits() const { return concurrent_hits_; }

    // The expected-tokens-per-cost optimum for acceptance rate a (exposed for tests and the benchmark).
    int choose_gamma(double a, int max_gamma) const;
    verify_cost& cost() { return cost_; }

private:
    sequence_model& target_;
    const tokenizer* tok_;
    std::vector<drafter*> drafters_;
    verify_cost cost_;
    bool concurrent_ = false;
    uint64_t concurrent_hits_ = 0;
    // Acceptance model for gamma: decayed counts of accepted drafted tokens and of rejections (a geometric model),
    // prior a = 2/3.
    double accepted_ema_ = 2.0, rejected_ema_ = 1.0;
    static constexpr int probe_every = 32;
    int plain_streak_ = 0;
};

}  // namespace spark
