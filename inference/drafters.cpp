// The drafters that run a model (model_drafter) or stand in for one (oracle_drafter), and model_sequence, the
// sequence_model over a placed model. The text-copying drafters are in drafters_copy.cpp.
#include "inference/drafters.h"

#include <algorithm>

namespace spark {

model_sequence::model_sequence(placed_model& pm, int32_t n_ctx) : pm_(pm), cache_(pm.source().hparams(), n_ctx) {}

int32_t model_sequence::n_vocab() const { return pm_.source().hparams().n_vocab; }

int32_t model_sequence::n_allowed() const {
    return std::min(pm_.source().vocab().n_tokens(), pm_.source().hparams().n_vocab);
}

void model_sequence::truncate(size_t n) {
    if (n >= tokens_.size()) return;
    tokens_.resize(n);
    cache_.truncate(int32_t(n));
}

result<void> model_sequence::append(std::span<const token_id> t, std::vector<float>& logits, bool all) {
    if (auto ok = pm_.forward(cache_, t, logits, all); !ok) {
        cache_.truncate(int32_t(tokens_.size()));  // a later chunk failed (cancelled): drop the earlier ones too
        return ok;
    }
    tokens_.insert(tokens_.end(), t.begin(), t.end());
    return {};
}

result<std::unique_ptr<model_drafter>> model_drafter::create(placed_model& draft, const model& target,
                                                             int32_t n_ctx) {
    const tokenizer &dv = draft.source().vocab(), &tv = target.vocab();
    if (dv.n_tokens() != tv.n_tokens())
        return fail("draft model: its vocabulary has ", dv.n_tokens(), " tokens, the target's ", tv.n_tokens(),
                    "; speculative decoding needs the same vocabulary");
    for (token_id id = 0; id < tv.n_tokens(); ++id)
        if (dv.token_text(id) != tv.token_text(id))
            return fail("draft model: token ", id, " is '", dv.token_text(id), "' in the draft and '",
                        tv.token_text(id), "' in the target; speculative decoding needs the same vocabulary");
    if (draft.source().hparams().n_vocab < tv.n_tokens())
        return fail("draft model: ", draft.source().hparams().n_vocab, " logits for ", tv.n_tokens(), " tokens");
    return std::unique_ptr<model_drafter>(new model_drafter(draft, n_ctx));
}

result<void> model_drafter::propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp,
                                    rng_t& rng, int self, draft& out) {
    if (max_new <= 0 || sequence.empty()) return {};
    // Bring the draft's state to sequence[0, n - 1) + evaluate the last token for its next-token logits.
    const auto held = seq_.tokens();
    size_t keep = 0;
    while (keep < held.size() && keep + 1 < sequence.size() && held[keep] == sequence[keep]) ++keep;
    if (int64_t(sequence.size()) + max_new > seq_.capacity()) max_new = int(seq_.capacity() - int64_t(sequence.size()));
    if (max_new <= 0) return {};
    seq_.truncate(keep);
    if (auto ok = seq_.append(sequence.subspan(keep), logits_, false); !ok) return ok;
    const size_t nv = size_t(seq_.n_vocab());
    std::vector<float> q;
    for (int i = 0; i < max_new; ++i) {
        distribution(std::span(logits_).first(nv), seq_.n_allowed(), sp, q);
        const token_id x = sample_from(q, rng);
        out.tokens.push_back(x);
        out.q.push_back(sp.greedy() ? std::vector<float>{} : q);  // greedy drafts are certain
        out.source.push_back(self);
        if (i + 1 < max_new) {
            const token_id one[] = {x};
            if (auto ok = seq_.append(one, logits_, false); !ok) return ok;
        }
    }
    return {};
}

result<void> oracle_drafter::propose(std::span<const token_id> sequence, int max_new, const sampling_params&,
                                     rng_t&, int self, draft& out) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int i = 0; i < max_new; ++i) {
        const size_t at = sequence.size() - prompt_len_ + size_t(i);  // output index of the proposed token
        if (sequence.size() < prompt_len_ || at >= truth_.size()) break;
        token_id x = truth_[at];
        if (u(rng_) >= alpha_) x = token_id((uint64_t(x) + 1 + rng_() % uint64_t(n_vocab_ - 1)) % uint64_t(n_vocab_));
        out.tokens.push_back(x);
        out.q.emplace_back();
        out.source.push_back(self);
    }
    return {};
}

}  // namespace spark
