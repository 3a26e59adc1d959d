#include "inference/forward_ref.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

namespace spark {
namespace {

// y[j][r] = sum_c W[r][c] * x[j][c] for j < n.   x: [n][n_cols], y: [n][n_rows].
void matmul(const weight_matrix& w, const float* x, int n, float* y) {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, w.n_rows, 16), [&](const tbb::blocked_range<int64_t>& range) {
        std::vector<float> row(static_cast<size_t>(w.n_cols));  // one dequantised weight row
        for (int64_t r = range.begin(); r < range.end(); ++r) {
            dequantize_row(w.type, w.data + uint64_t(r) * w.row_bytes, row.data(), w.n_cols);
            for (int j = 0; j < n; ++j) {
                const float* xj = x + int64_t(j) * w.n_cols;
                double acc = 0;
                for (int64_t c = 0; c < w.n_cols; ++c) acc += double(row[size_t(c)]) * double(xj[c]);
                y[int64_t(j) * w.n_rows + r] = float(acc);
            }
        }
    });
}

// out = x / sqrt(mean(x^2) + eps) * weight, over n values.
void rmsnorm(const float* x, const std::vector<float>& weight, float eps, int n, float* out) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const double scale = 1.0 / std::sqrt(ss / n + double(eps));
    for (int i = 0; i < n; ++i) out[i] = float(double(x[i]) * scale * double(weight[size_t(i)]));
}

// Rotates the first n_rot dimensions of each of n_heads vectors of head_dim at position pos.
void rope(float* v, int n_heads, const model_hparams& hp, int32_t pos) {
    const int half = hp.n_rot / 2;
    for (int h = 0; h < n_heads; ++h) {
        float* x = v + h * hp.head_dim;
        for (int j = 0; j < half; ++j) {
            const double theta =
                double(pos) * double(hp.rope_freq_scale) * std::pow(double(hp.rope_base), -2.0 * j / hp.n_rot);
            const double c = std::cos(theta), s = std::sin(theta);
            const int i0 = hp.rope == rope_style::normal ? 2 * j : j;
            const int i1 = hp.rope == rope_style::normal ? 2 * j + 1 : j + half;
            const double a = x[i0], b = x[i1];
            x[i0] = float(a * c - b * s);
            x[i1] = float(a * s + b * c);
        }
    }
}

void add_bias(float* v, const std::vector<float>& bias, int n_rows, int width) {
    if (bias.empty()) return;
    for (int j = 0; j < n_rows; ++j)
        for (int i = 0; i < width; ++i) v[j * width + i] += bias[size_t(i)];
}

}  // namespace

result<void> forward_reference(const model& m, kv_cache& cache, std::span<const token_id> tokens,
                               std::vector<float>& logits, bool all_logits) {
    const auto& hp = m.hparams();
    const auto& w = m.weights();
    const int n = int(tokens.size());
    if (n == 0) return fail("forward: no tokens");
    if (int64_t(cache.size()) + n > cache.capacity())
        return fail("forward: ", cache.size(), " + ", n, " positions exceed the context of ", cache.capacity());
    for (token_id t : tokens)
        if (t < 0 || t >= hp.n_vocab) return fail("forward: token id ", t, " outside [0, ", hp.n_vocab, ")");

    const int d = hp.n_embd, dq = hp.n_embd_q(), dkv = hp.n_embd_kv(), hd = hp.head_dim;
    const int group = hp.n_head / hp.n_head_kv;  // query heads per kv head
    const int32_t pos0 = cache.size();

    std::vector<float> x(size_t(n) * d);          // residual stream [n][n_embd]
    std::vector<float> xb(size_t(n) * d);         // normalised input of a sub-layer [n][n_embd]
    std::vector<float> q(size_t(n) * dq);         // queries [n][n_head * head_dim]
    std::vector<float> k(size_t(n) * dkv);        // new keys [n][n_head_kv * head_dim]
    std::vector<float> v(size_t(n) * dkv);        // new values [n][n_head_kv * head_dim]
    std::vector<float> att(size_t(n) * dq);       // attention output [n][n_head * head_dim]
    std::vector<float> proj(size_t(n) * d);       // sub-layer output [n][n_embd]
    std::vector<float> gate(size_t(n) * hp.n_ff); // [n][n_ff]
    std::vector<float> up(size_t(n) * hp.n_ff);   // [n][n_ff]
    std::vector<double> scores(size_t(pos0 + n)); // attention weights of one head over positions [0, pos]

    for (int j = 0; j < n; ++j)
        dequantize_row(w.token_embd.type, w.token_embd.data + uint64_t(tokens[size_t(j)]) * w.token_embd.row_bytes,
                       x.data() + size_t(j) * d, d);

    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const auto& L = w.layers[size_t(l)];
        // Attention.
        for (int j = 0; j < n; ++j) rmsnorm(&x[size_t(j) * d], L.attn_norm, hp.rms_eps, d, &xb[size_t(j) * d]);
        matmul(L.wq, xb.data(), n, q.data());
        matmul(L.wk, xb.data(), n, k.data());
        matmul(L.wv, xb.data(), n, v.data());
        add_bias(q.data(), L.bq, n, dq);
        add_bias(k.data(), L.bk, n, dkv);
        add_bias(v.data(), L.bv, n, dkv);
        for (int j = 0; j < n; ++j) {
            rope(&q[size_t(j) * dq], hp.n_head, hp, pos0 + j);
            rope(&k[size_t(j) * dkv], hp.n_head_kv, hp, pos0 + j);
            std::copy_n(&k[size_t(j) * dkv], dkv, cache.k(l, pos0 + j));
            std::copy_n(&v[size_t(j) * dkv], dkv, cache.v(l, pos0 + j));
        }
        const double scale = 1.0 / std::sqrt(double(hd));
        for (int j = 0; j < n; ++j) {
            const int32_t pos = pos0 + j;  // attends to [0, pos]
            for (int h = 0; h < hp.n_head; ++h) {
                const float* qh = &q[size_t(j) * dq + size_t(h) * hd];
                const int kvh = h / group;
                double max_score = -INFINITY;
                for (int32_t t = 0; t <= pos; ++t) {
                    const float* kt = cache.k(l, t) + kvh * hd;
                    double s = 0;
                    for (int i = 0; i < hd; ++i) s += double(qh[i]) * double(kt[i]);
                    scores[size_t(t)] = s * scale;
                    max_score = std::max(max_score, scores[size_t(t)]);
                }
                double sum = 0;
                for (int32_t t = 0; t <= pos; ++t) sum += (scores[size_t(t)] = std::exp(scores[size_t(t)] - max_score));
                float* out = &att[size_t(j) * dq + size_t(h) * hd];
                for (int i = 0; i < hd; ++i) {
                    double acc = 0;
                    for (int32_t t = 0; t <= pos; ++t) acc += scores[size_t(t)] * double(cache.v(l, t)[kvh * hd + i]);
                    out[i] = float(acc / sum);
                }
            }
        }
        matmul(L.wo, att.data(), n, proj.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

        // Feed-forward (SwiGLU).
        for (int j = 0; j < n; ++j) rmsnorm(&x[size_t(j) * d], L.ffn_norm, hp.rms_eps, d, &xb[size_t(j) * d]);
        matmul(L.w_gate, xb.data(), n, gate.data());
        matmul(L.w_up, xb.data(), n, up.data());
        for (size_t i = 0; i < gate.size(); ++i) {
            const double g = gate[i];
            gate[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
        }
        matmul(L.w_down, gate.data(), n, proj.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
    }
    cache.commit(n);

    const int first = all_logits ? 0 : n - 1;
    const int n_out = n - first;
    for (int j = 0; j < n_out; ++j)
        rmsnorm(&x[size_t(first + j) * d], w.output_norm, hp.rms_eps, d, &xb[size_t(j) * d]);
    logits.resize(size_t(n_out) * size_t(hp.n_vocab));
    matmul(w.output, xb.data(), n_out, logits.data());
    return {};
}

}  // namespace spark
