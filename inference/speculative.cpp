#include "inference/speculative.h"

#include "inference/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <optional>

namespace spark {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

size_t common_prefix(std::span<const token_id> a, std::span<const token_id> b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}

// The output text as it grows token by token, with stop strings, the caller's criterion and streaming. Streaming
// holds back the bytes that could still be the start of a stop string, so on_text never sees text that is cut later.
class output_text {
public:
    output_text(const tokenizer* tok, const generation_params& gp) : gp_(gp) {
        if (tok) decoder_.emplace(*tok);
        for (const auto& s : gp.stop_strings) hold_ = std::max(hold_, s.empty() ? size_t(0) : s.size() - 1);
    }

    // Adds a token's text; true when the output ends here (reason set, text cut).
    bool push(token_id t, stop_reason& reason) {
        if (!decoder_) return false;
        const size_t before = text_.size();
        text_ += decoder_->push(t);
        if (cut_at_stop_string(before)) {
            reason = stop_reason::stop_string;
            return true;
        }
        if (gp_.stop_criterion) {
            const size_t keep = gp_.stop_criterion(text_);
            if (keep != std::string::npos) {
                text_.resize(std::clamp(keep, emitted_, text_.size()));
                reason = stop_reason::criterion;
                return true;
            }
        }
        emit(text_.size() > hold_ ? text_.size() - hold_ : 0);
        return false;
    }

    // The end: whatever the decoder still holds (an incomplete UTF-8 sequence stays as is) and everything held back.
    std::string finish(bool cut) {
        if (decoder_ && !cut) {
            const size_t before = text_.size();
            text_ += decoder_->flush();
            cut_at_stop_string(before);
        }
        emit(text_.size());
        return std::move(text_);
    }

private:
    bool cut_at_stop_string(size_t before) {
        size_t best = std::string::npos;
        for (const auto& s : gp_.stop_strings) {
            if (s.empty()) continue;
            const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
            const size_t at = text_.find(s, from);
            if (at != std::string::npos) best = std::min(best, at);
        }
        if (best == std::string::npos) return false;
        text_.resize(std::max(best, emitted_));
        return true;
    }
    void emit(size_t upto) {
        if (upto <= emitted_) return;
        if (gp_.on_text) gp_.on_text(std::string_view(text_).substr(emitted_, upto - emitted_));
        emitted_ = upto;
    }

    const generation_params& gp_;
    std::optional<stream_decoder> decoder_;
    std::string text_;
    size_t emitted_ = 0, hold_ = 0;
};

}  // namespace

std::string_view stop_reason_name(stop_reason r) {
    switch (r) {
        case stop_reason::eos: return "eos";
        case stop_reason::stop_string: return "stop-string";
        case stop_reason::max_tokens: return "max-tokens";
        case stop_reason::criterion: return "criterion";
        case stop_reason::cancelled: return "cancelled";
        case stop_reason::time_budget: return "time-budget";
        case stop_reason::context_full: return "context-full";
    }
    return "?";
}

double verify_cost::ratio(int b) const {
    b = std::clamp(b, 1, max_positions);
    if (b == 1) return 1.0;
    if (n_[b] && n_[1]) return ema_[b] / ema_[1];
    double slope = 0;
    int measured = 0;
    for (int i = 2; i <= max_positions; ++i)
        if (n_[i] && n_[1]) slope += (ema_[i] / ema_[1] - 1.0) / (i - 1), ++measured;
    return 1.0 + (measured ? slope / measured : 0.08) * (b - 1);
}

double verify_cost::draft_ratio() const { return draft_n_ && n_[1] ? draft_ema_ / ema_[1] : 0.0; }

void verify_cost::record_draft(int tokens, double seconds) {
    if (tokens <= 0) return;
    const double per = seconds / tokens;
    draft_ema_ = draft_n_ ? 0.8 * draft_ema_ + 0.2 * per : per;
    ++draft_n_;
}

void verify_cost::record(int b, double seconds) {
    b = std::clamp(b, 1, max_positions);
    ema_[b] = n_[b] ? 0.8 * ema_[b] + 0.2 * seconds : seconds;
    ++n_[b];
}

speculative_decoder::speculative_decoder(sequence_model& target, const tokenizer* tok, std::vector<drafter*> drafters)
    : target_(target), tok_(tok), drafters_(std::move(drafters)) {}

int speculative_decoder::choose_gamma(double a, int max_gamma) const {
    a = std::clamp(a, 0.0, 0.999);
    int best = 0;
    double best_rate = 1.0;  // g = 0: one token per one-position pass
    for (int g = 1; g <= max_gamma; ++g) {
        const double tokens = (1.0 - std::pow(a, g + 1)) / (1.0 - a);
        const double rate = tokens / (cost_.ratio(g + 1) + g * cost_.draft_ratio());
        if (rate > best_rate * 1.0001) best = g, best_rate = rate;
    }
    return best;
}

result<generation_result> speculative_decoder::generate(const draft_context& ctx, const generation_params& gp) {
    const auto t0 = clock_type::now();
    const auto prompt = ctx.prompt;
    if (prompt.empty()) return fail("generate: empty prompt");
    if (int64_t(prompt.size()) + 1 > target_.capacity())
        return fail("generate: prompt of ", prompt.size(), " tokens leaves no room in a context of ",
                    target_.capacity());
    for (token_id t : prompt)
        if (t < 0 || t >= target_.n_vocab()) return fail("generate: token id ", t, " outside the vocabulary");

    generation_result res;
    auto& st = res.stats;
    st.prompt_tokens = int32_t(prompt.size());
    for (auto* d : drafters_) st.per_drafter.push_back({std::string(d->name()), 0, 0});
    auto cancelled = [&] { return gp.cancel && gp.cancel->load(std::memory_order_relaxed); };
    auto finish = [&](stop_reason r, bool cut, output_text& out) {
        res.reason = r;
        res.text = out.finish(cut);
        st.seconds = seconds_since(t0);
        return res;
    };
    output_text out(tok_, gp);
    // The target checks the flag between layers too, so even a long prompt chunk stops within a layer.
    struct cancel_scope {
        sequence_model& m;
        ~cancel_scope() { m.set_cancel(nullptr); }
    } scope{target_};
    target_.set_cancel(gp.cancel);

    // Prefix reuse: keep the longest common prefix of the state with prompt[0, n - 1); the last prompt token is
    // evaluated by the first step, together with the first draft.
    const auto head = prompt.first(prompt.size() - 1);
    const size_t reuse = common_prefix(target_.tokens(), head);
    target_.truncate(reuse);
    st.prompt_reused = int32_t(reuse);
    st.prompt_evaluated = int32_t(prompt.size() - reuse);
    std::vector<float> logits;
    constexpr size_t prompt_chunk = 64;  // cancellation is checked between chunks of a long prompt
    for (size_t at = reuse; at < head.size(); at += prompt_chunk) {
        if (cancelled()) return finish(stop_reason::cancelled, true, out);
        const auto part = head.subspan(at, std::min(prompt_chunk, head.size() - at));
        if (auto ok = target_.append(part, logits, false); !ok) {
            if (cancelled()) return finish(stop_reason::cancelled, true, out);
            return std::unexpected(ok.error());
        }
    }
    st.prompt_seconds = seconds_since(t0);

    for (auto* d : drafters_) d->start(ctx);
    std::vector<token_id> seq(prompt.begin(), prompt.end());
    rng_t rng(gp.sampling.seed);
    draft dr, ready;
    std::vector<float> p;
    int model_drafter_index = -1;  // the last drafter that runs a model: the one that may draft concurrently
    for (size_t i = 0; i < drafters_.size(); ++i)
        if (drafters_[i]->runs_model()) model_drafter_index = int(i);
    std::vector<token_id> batch;
    const int max_gamma = std::clamp(gp.max_gamma, 0, verify_cost::max_positions - 1);
    // Acceptance model for gamma: decayed counts of accepted drafted tokens and of rejections (a geometric model).
    double& acc_n = accepted_ema_;  // kept across requests: the next keystroke's drafts are much like this one's
    double& rej_n = rejected_ema_;

    for (;;) {
        if (cancelled()) return finish(stop_reason::cancelled, true, out);
        if (gp.time_budget.count() > 0 && seconds_since(t0) >= gp.time_budget.count())
            return finish(stop_reason::time_budget, false, out);
        if (st.generated >= gp.max_tokens) return finish(stop_reason::max_tokens, false, out);
        const int64_t room = int64_t(target_.capacity()) - int64_t(target_.tokens().size()) - 1;
        if (room < 0) return finish(stop_reason::context_full, false, out);

        int g = !gp.adaptive_gamma       ? max_gamma
                : !cost_.knows_single() ? 0
                                        : choose_gamma(acc_n / (acc_n + rej_n), max_gamma);
        // A probe: after probe_every plain steps, draft once anyway (2 tokens), so that a cost or acceptance
        // estimate that turned drafting off is measured again instead of holding for the decoder's lifetime.
        if (gp.adaptive_gamma && max_gamma > 0 && !drafters_.empty()) {
            if (g == 0 && ++plain_streak_ >= probe_every) g = std::min(2, max_gamma), plain_streak_ = 0;
            else if (g > 0) plain_streak_ = 0;
        }
        g = int(std::min<int64_t>({int64_t(g), room, int64_t(gp.max_tokens - st.generated - 1)}));
        dr.clear();
        const auto td = clock_type::now();
        if (g > 0 && !ready.tokens.empty()) {
            dr = std::move(ready);  // drafted concurrently with the previous verification
            ++concurrent_hits_;
        } else {
            for (size_t i = 0; i < drafters_.size() && int(dr.size()) < g; ++i) {
                std::vector<token_id> ext(seq);
                ext.insert(ext.end(), dr.tokens.begin(), dr.tokens.end());
                if (auto ok = drafters_[i]->propose(ext, g - int(dr.size()), gp.sampling, rng, int(i), dr); !ok)
                    return std::unexpected(ok.error());
            }
            if (!dr.tokens.empty()) cost_.record_draft(int(dr.size()), seconds_since(td));
        }
        ready.clear();
        if (int(dr.size()) > g) {  // a drafter overshot, or gamma shrank since the concurrent draft: keep the budget
            dr.tokens.resize(size_t(g)), dr.q.resize(size_t(g)), dr.source.resize(size_t(g));
        }
        const int n_draft = int(dr.size());

        // Concurrent drafting: the model drafters continue from the optimistic continuation while the target
        // verifies. They use their own random stream; the acceptance test below uses the request's.
        std::future<result<void>> pre;
        draft spec;
        std::vector<token_id> optimistic;
        if (concurrent_ && n_draft > 0 && model_drafter_index >= 0) {
            optimistic = seq;
            optimistic.insert(optimistic.end(), dr.tokens.begin(), dr.tokens.end());
            const uint64_t pre_seed = gp.sampling.seed ^ (0x9E3779B97F4A7C15ull * (st.steps + 1));
            pre = std::async(std::launch::async, [&, g, pre_seed] {
                rng_t pre_rng(pre_seed);
                return drafters_[size_t(model_drafter_index)]->propose(optimistic, g + 1, gp.sampling, pre_rng,
                                                                       model_drafter_index, spec);
            });
        }

        // Verify [last, d1 .. dg] in one pass.
        batch.assign(1, seq.back());
        batch.insert(batch.end(), dr.tokens.begin(), dr.tokens.end());
        const size_t before = target_.tokens().size();
        const auto tv = clock_type::now();
        auto verified = target_.append(batch, logits, true);
        const double verify_seconds = seconds_since(tv);
        if (pre.valid()) {
            // Only the time spent waiting for the concurrent draft costs anything.
            const auto tw = clock_type::now();
            auto drafted = pre.get();
            if (!drafted) return std::unexpected(drafted.error());
            if (!spec.tokens.empty()) cost_.record_draft(int(spec.size()), seconds_since(tw));
        }
        if (!verified) {
            if (cancelled()) return finish(stop_reason::cancelled, true, out);
            return std::unexpected(verified.error());
        }
        cost_.record(int(batch.size()), verify_seconds);
        ++st.steps;
        st.target_positions += batch.size();

        const size_t nv = size_t(target_.n_vocab());
        int k = 0;
        token_id next = -1;
        for (; k < n_draft; ++k) {
            distribution(std::span(logits).subspan(size_t(k) * nv, nv), target_.n_allowed(), gp.sampling, p);
            const auto r = accept_or_resample(p, dr.q[size_t(k)], dr.tokens[size_t(k)], rng);
            if (!r.accepted) {
                next = r.token;
                break;
            }
        }
        if (k == n_draft) {
            distribution(std::span(logits).subspan(size_t(k) * nv, nv), target_.n_allowed(), gp.sampling, p);
            next = sample_from(p, rng);
        }
        target_.truncate(before + 1 + size_t(k));
        // The concurrent draft is usable when the block was accepted whole and its first token guessed `next`.
        if (k == n_draft && spec.size() > 1 && spec.tokens[0] == next) {
            ready.tokens.assign(spec.tokens.begin() + 1, spec.tokens.end());
            ready.q.assign(spec.q.begin() + 1, spec.q.end());
            ready.source.assign(spec.source.begin() + 1, spec.source.end());
        }

        st.drafted += uint64_t(n_draft);
        st.accepted += uint64_t(k);
        for (int i = 0; i < n_draft; ++i) {
            auto& ds = st.per_drafter[size_t(dr.source[size_t(i)])];
            ++ds.drafted;
            if (i < k) ++ds.accepted;
        }
        if (n_draft > 0) {
            acc_n = 0.9 * acc_n + k;
            rej_n = 0.9 * rej_n + (k < n_draft ? 1 : 0);
        }

        // Emit the accepted tokens and the target's own token, checking every stop condition after each.
        for (int i = 0; i <= k; ++i) {
            const token_id t = i < k ? dr.tokens[size_t(i)] : next;
            if (std::find(gp.stop_tokens.begin(), gp.stop_tokens.end(), t) != gp.stop_tokens.end())
                return finish(stop_reason::eos, false, out);
            seq.push_back(t);
            res.tokens.push_back(t);
            ++st.generated;
            stop_reason why{};
            if (out.push(t, why)) return finish(why, true, out);
            if (st.generated >= gp.max_tokens) return finish(stop_reason::max_tokens, false, out);
            if (cancelled()) return finish(stop_reason::cancelled, true, out);
        }
    }
}

}  // namespace spark
