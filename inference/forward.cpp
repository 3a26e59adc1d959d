#include "inference/forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <cstring>

namespace spark {
namespace {

// Call sites of partition::run, so each replays its own shard-to-worker mapping.
enum site : int { site_qkv = 0, site_attention = 1, site_wo = 2, site_gate_up = 3, site_down = 4, site_output = 5 };

// A contiguous range of output rows of one matrix, computed by one task.
struct shard {
    const accel::packed_matrix* w;
    int64_t r0, r1;
    int output;  // which output buffer of the launch receives the rows
};

// Splits each matrix into tile-aligned row ranges: about `per_worker` shards per worker in total, so idle workers
// can take over a busy one's remaining shards, but never shards under min_rows rows.
std::vector<shard> plan(const std::vector<const accel::packed_matrix*>& ws, int n_workers) {
    int64_t total = 0;
    for (auto* w : ws) total += w->n_rows();
    constexpr int per_worker = 4;
    constexpr int64_t min_rows = 64;
    const int64_t target = std::max<int64_t>(min_rows, total / (int64_t(n_workers) * per_worker));
    std::vector<shard> out;
    for (int i = 0; i < int(ws.size()); ++i) {
        const int64_t n = ws[size_t(i)]->n_rows();
        int64_t step = (target + accel::tile_rows - 1) / accel::tile_rows * accel::tile_rows;
        for (int64_t r = 0; r < n; r += step) out.push_back({ws[size_t(i)], r, std::min(n, r + step), i});
    }
    return out;
}

struct layer_plan {
    accel::packed_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
    std::vector<shard> qkv, out, gate_up, down;
};

}  // namespace

struct placed_model::impl {
    std::vector<layer_plan> layers;
    accel::packed_matrix output;
    std::vector<shard> output_shards;

    // Scratch, sized for accel::max_batch positions.
    std::vector<float> x, xb, q, k, v, att, proj, gate, up, scores;
    accel::activations act;
};

placed_model::~placed_model() = default;

result<std::unique_ptr<placed_model>> placed_model::place(std::shared_ptr<const model> m, accel::partition& p) {
    std::unique_ptr<placed_model> pm(new placed_model());
    pm->model_ = m;
    pm->partition_ = &p;
    pm->impl_ = std::make_unique<impl>();
    auto& I = *pm->impl_;
    const auto& hp = m->hparams();
    const auto& w = m->weights();

    auto pack = [](const weight_matrix& wm) {
        return accel::packed_matrix::pack(wm.type, {wm.data, size_t(wm.row_bytes * uint64_t(wm.n_rows))}, wm.n_rows,
                                          wm.n_cols);
    };
    const int nw = p.n_workers();
    I.layers.resize(size_t(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const auto& L = w.layers[size_t(l)];
        auto& P = I.layers[size_t(l)];
        for (auto [dst, src] : {std::pair{&P.wq, &L.wq}, {&P.wk, &L.wk}, {&P.wv, &L.wv}, {&P.wo, &L.wo},
                                {&P.w_gate, &L.w_gate}, {&P.w_up, &L.w_up}, {&P.w_down, &L.w_down}}) {
            auto packed = pack(*src);
            if (!packed) return fail(m->origin(), ": ", src->info->name, ": ", packed.error().message);
            *dst = std::move(*packed);
        }
        P.qkv = plan({&P.wq, &P.wk, &P.wv}, nw);
        P.out = plan({&P.wo}, nw);
        P.gate_up = plan({&P.w_gate, &P.w_up}, nw);
        P.down = plan({&P.w_down}, nw);
    }
    auto out = pack(w.output);
    if (!out) return fail(m->origin(), ": ", w.output.info->name, ": ", out.error().message);
    I.output = std::move(*out);
    I.output_shards = plan({&I.output}, nw);

    const size_t B = accel::max_batch;
    I.x.resize(B * size_t(hp.n_embd));
    I.xb.resize(B * size_t(std::max(hp.n_embd, hp.n_embd_q())));
    I.q.resize(B * size_t(hp.n_embd_q()));
    I.k.resize(B * size_t(hp.n_embd_kv()));
    I.v.resize(B * size_t(hp.n_embd_kv()));
    I.att.resize(B * size_t(hp.n_embd_q()));
    I.proj.resize(B * size_t(hp.n_embd));
    I.gate.resize(B * size_t(hp.n_ff));
    I.up.resize(B * size_t(hp.n_ff));
    return pm;
}

uint64_t placed_model::weight_bytes() const {
    uint64_t n = impl_->output.bytes();
    for (const auto& P : impl_->layers)
        n += P.wq.bytes() + P.wk.bytes() + P.wv.bytes() + P.wo.bytes() + P.w_gate.bytes() + P.w_up.bytes() +
             P.w_down.bytes();
    return n;
}

result<void> placed_model::forward(kv_cache& cache, std::span<const token_id> tokens, std::vector<float>& logits,
                                   bool all_logits) {
    const auto& hp = model_->hparams();
    const auto& w = model_->weights();
    const int n_total = int(tokens.size());
    if (n_total == 0) return fail("forward: no tokens");
    if (int64_t(cache.size()) + n_total > cache.capacity())
        return fail("forward: ", cache.size(), " + ", n_total, " positions exceed the context of ", cache.capacity());
    for (token_id t : tokens)
        if (t < 0 || t >= hp.n_vocab) return fail("forward: token id ", t, " outside [0, ", hp.n_vocab, ")");

    auto& I = *impl_;
    auto& part = *partition_;
    auto& stats = part.stats();
    const int d = hp.n_embd, dq = hp.n_embd_q(), dkv = hp.n_embd_kv(), hd = hp.head_dim, nff = hp.n_ff;
    const int group = hp.n_head / hp.n_head_kv;
    const accel::rope_params rp{hd, hp.n_rot, hp.rope_base, hp.rope_freq_scale, hp.rope};
    const float att_scale = 1.0f / std::sqrt(float(hd));

    // One launch of matrix products: every shard multiplies the prepared activations into outs[shard.output].
    auto launch = [&](int site, const std::vector<shard>& shards, const accel::activations& act,
                      std::initializer_list<float*> outs_list) {
        const std::vector<float*> outs(outs_list);
        accel::scoped_timer t(stats[accel::kernel_class::matmul]);
        part.run(site, int(shards.size()), [&](int s) {
            const shard& sh = shards[size_t(s)];
            sh.w->multiply(act, sh.r0, sh.r1, outs[size_t(sh.output)], sh.w->n_rows());
        });
        auto& c = stats[accel::kernel_class::matmul];
        for (const auto& sh : shards) {
            const int64_t rows = sh.r1 - sh.r0;
            c.bytes += sh.w->bytes() * uint64_t(rows) / uint64_t(sh.w->n_rows());
            c.flops += 2 * uint64_t(rows) * uint64_t(sh.w->n_cols()) * uint64_t(act.n_cols());
        }
        c.bytes += act.column_bytes() * size_t(act.n_cols());
        ++c.calls;
    };
    auto count = [&](accel::kernel_class k, uint64_t bytes, uint64_t flops) {
        auto& c = stats[k];
        ++c.calls;
        c.bytes += bytes;
        c.flops += flops;
    };

    const int n_out_total = all_logits ? n_total : 1;
    logits.resize(size_t(n_out_total) * size_t(hp.n_vocab));

    for (int begin = 0; begin < n_total; begin += accel::max_batch) {
        const int n = std::min(accel::max_batch, n_total - begin);
        const int32_t pos0 = cache.size();
        ++stats.passes;
        // The governor's kind of pass: the batch size, and whether the pass ends with the output matrix.
        const bool with_logits = all_logits || begin + n == n_total;
        const int bucket = 2 * (n - 1) + (with_logits ? 1 : 0);
        struct pass_timer {
            accel::partition& part;
            int bucket, workers;
            std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
            ~pass_timer() {
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                part.governor().record(bucket, workers, s);
                part.set_active_workers(part.n_workers());
            }
        };
        std::optional<pass_timer> timer;
        if (adaptive_) {
            const int workers = part.governor().choose(bucket);
            part.set_active_workers(workers);
            timer.emplace(part, bucket, workers);
        }

        for (int j = 0; j < n; ++j)
            dequantize_row(w.token_embd.type,
                           w.token_embd.data + uint64_t(tokens[size_t(begin + j)]) * w.token_embd.row_bytes,
                           &I.x[size_t(j) * d], d);

        for (int32_t l = 0; l < hp.n_layer; ++l) {
            if (cancel_ && cancel_->load(std::memory_order_relaxed)) return fail("cancelled");
            const auto& L = w.layers[size_t(l)];
            auto& P = I.layers[size_t(l)];
            ++stats.layer_hops;
            {
                accel::scoped_timer t(stats[accel::kernel_class::norm]);
                for (int j = 0; j < n; ++j)
                    accel::rmsnorm(&I.x[size_t(j) * d], L.attn_norm.data(), d, hp.rms_eps, &I.xb[size_t(j) * d]);
                count(accel::kernel_class::norm, uint64_t(n) * d * 8, uint64_t(n) * d * 4);
            }
            I.act.prepare(P.wq.type(), I.xb.data(), n, d, d);
            launch(site_qkv, P.qkv, I.act, {I.q.data(), I.k.data(), I.v.data()});
            {
                accel::scoped_timer t(stats[accel::kernel_class::rope]);
                for (int j = 0; j < n; ++j) {
                    float* qj = &I.q[size_t(j) * dq];
                    float* kj = &I.k[size_t(j) * dkv];
                    float* vj = &I.v[size_t(j) * dkv];
                    if (!L.bq.empty()) {
                        for (int i = 0; i < dq; ++i) qj[i] += L.bq[size_t(i)];
                        for (int i = 0; i < dkv; ++i) kj[i] += L.bk[size_t(i)], vj[i] += L.bv[size_t(i)];
                    }
                    accel::rope(qj, hp.n_head, pos0 + j, rp);
                    accel::rope(kj, hp.n_head_kv, pos0 + j, rp);
                    std::memcpy(cache.k(l, pos0 + j), kj, size_t(dkv) * 4);
                    std::memcpy(cache.v(l, pos0 + j), vj, size_t(dkv) * 4);
                }
                count(accel::kernel_class::rope, uint64_t(n) * (dq + dkv) * 4, uint64_t(n) * (dq + dkv) * 6);
            }
            {
                // One task per (position, kv head): the query heads of a group share their keys and values.
                accel::scoped_timer t(stats[accel::kernel_class::attention]);
                const int n_tasks = n * hp.n_head_kv;
                I.scores.resize(size_t(n_tasks) * size_t(pos0 + n));
                part.run(site_attention, n_tasks, [&](int task) {
                    const int j = task / hp.n_head_kv, kvh = task % hp.n_head_kv;
                    const int n_kv = pos0 + j + 1;
                    accel::attention(&I.q[size_t(j) * dq + size_t(kvh) * group * hd], cache.k(l, 0) + kvh * hd,
                                     cache.v(l, 0) + kvh * hd, cache.width(), n_kv, group, 1, hd, att_scale,
                                     &I.att[size_t(j) * dq + size_t(kvh) * group * hd],
                                     &I.scores[size_t(task) * size_t(pos0 + n)]);
                });
                uint64_t kv_positions = 0;
                for (int j = 0; j < n; ++j) kv_positions += uint64_t(pos0 + j + 1);
                count(accel::kernel_class::attention, kv_positions * uint64_t(dkv) * 8,
                      kv_positions * uint64_t(hp.n_head) * hd * 4);
            }
            I.act.prepare(P.wo.type(), I.att.data(), n, dq, dq);
            launch(site_wo, P.out, I.act, {I.proj.data()});
            for (size_t i = 0; i < size_t(n) * d; ++i) I.x[i] += I.proj[i];

            {
                accel::scoped_timer t(stats[accel::kernel_class::norm]);
                for (int j = 0; j < n; ++j)
                    accel::rmsnorm(&I.x[size_t(j) * d], L.ffn_norm.data(), d, hp.rms_eps, &I.xb[size_t(j) * d]);
                count(accel::kernel_class::norm, uint64_t(n) * d * 8, uint64_t(n) * d * 4);
            }
            I.act.prepare(P.w_gate.type(), I.xb.data(), n, d, d);
            launch(site_gate_up, P.gate_up, I.act, {I.gate.data(), I.up.data()});
            {
                accel::scoped_timer t(stats[accel::kernel_class::elementwise]);
                for (int j = 0; j < n; ++j)
                    accel::swiglu(&I.gate[size_t(j) * nff], &I.up[size_t(j) * nff], nff, &I.gate[size_t(j) * nff]);
                count(accel::kernel_class::elementwise, uint64_t(n) * nff * 12, uint64_t(n) * nff * 6);
            }
            I.act.prepare(P.w_down.type(), I.gate.data(), n, nff, nff);
            launch(site_down, P.down, I.act, {I.proj.data()});
            for (size_t i = 0; i < size_t(n) * d; ++i) I.x[i] += I.proj[i];
        }
        cache.commit(n);

        // Logits: every position of the chunk, or only the very last position of the whole call.
        const bool last_chunk = begin + n == n_total;
        if (!all_logits && !last_chunk) continue;
        const int first = all_logits ? 0 : n - 1;
        const int n_out = n - first;
        for (int j = 0; j < n_out; ++j)
            accel::rmsnorm(&I.x[size_t(first + j) * d], w.output_norm.data(), d, hp.rms_eps, &I.xb[size_t(j) * d]);
        I.act.prepare(I.output.type(), I.xb.data(), n_out, d, d);
        float* dst = all_logits ? &logits[size_t(begin) * size_t(hp.n_vocab)] : logits.data();
        launch(site_output, I.output_shards, I.act, {dst});
    }
    return {};
}

}  // namespace spark
