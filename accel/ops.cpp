// Row operations of a transformer layer. The fast versions use AVX2 for the long reductions (rmsnorm's sum of
// squares, attention's q.k dot products and its weighted sum of values) when active_isa() allows; the ref:: twins
// are plain float64 loops used by the tests. Every row / position is computed by the same code path whatever the
// batch, so results depend only on the row's inputs and the ISA level.
#include "accel/kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define SPARK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

namespace spark::accel {
namespace {

bool use_avx2() { return active_isa() >= isa_level::avx2; }

// Sum of x[i] * y[i] in four fixed-order float lanes (the portable fallback of dot_avx2).
float dot_scalar(const float* x, const float* y, int n) {
    float acc[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; ++i) acc[i & 3] = acc[i & 3] + x[i] * y[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

#if defined(__x86_64__)
SPARK_TARGET_AVX2 float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // lanes i + (i+4)
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Two 8-lane accumulators over 16-element steps, then the tail in order; one fixed order for any call.
SPARK_TARGET_AVX2 float dot_avx2(const float* x, const float* y, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    if (i + 8 <= n) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        i += 8;
    }
    float s = hsum(_mm256_add_ps(a0, a1));
    for (; i < n; ++i) s += x[i] * y[i];
    return s;
}

// out[i] += p * v[i]
SPARK_TARGET_AVX2 void axpy_avx2(float p, const float* v, float* out, int n) {
    const __m256 pv = _mm256_set1_ps(p);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    for (; i < n; ++i) out[i] += p * v[i];
}

SPARK_TARGET_AVX2 void scale_mul_avx2(const float* x, const float* w, float s, int n, float* out) {
    const __m256 sv = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(w + i)));
    for (; i < n; ++i) out[i] = x[i] * s * w[i];
}
#endif

float dot(const float* x, const float* y, int n) {
#if defined(__x86_64__)
    if (use_avx2()) return dot_avx2(x, y, n);
#endif
    return dot_scalar(x, y, n);
}

void axpy(float p, const float* v, float* out, int n) {
#if defined(__x86_64__)
    if (use_avx2()) return axpy_avx2(p, v, out, n);
#endif
    for (int i = 0; i < n; ++i) out[i] += p * v[i];
}

}  // namespace

void rmsnorm(const float* x, const float* w, int n, float eps, float* out) {
    const float ss = dot(x, x, n);
    const float s = 1.0f / std::sqrt(ss / float(n) + eps);
#if defined(__x86_64__)
    if (use_avx2()) return scale_mul_avx2(x, w, s, n, out);
#endif
    for (int i = 0; i < n; ++i) out[i] = x[i] * s * w[i];
}

void rope(float* x, int n_heads, int32_t pos, const rope_params& p) {
    // cos/sin of theta_j = pos * freq_scale * base^(-2j / n_rot), j < n_rot / 2, computed once for all heads.
    const int half = p.n_rot / 2;
    float cs[256], sn[256];
    std::vector<float> big_c, big_s;
    float* c = cs;
    float* s = sn;
    if (half > 256) {
        big_c.resize(size_t(half)), big_s.resize(size_t(half));
        c = big_c.data(), s = big_s.data();
    }
    for (int j = 0; j < half; ++j) {
        const double theta =
            double(pos) * double(p.freq_scale) * std::pow(double(p.base), -2.0 * double(j) / double(p.n_rot));
        c[j] = float(std::cos(theta));
        s[j] = float(std::sin(theta));
    }
    for (int h = 0; h < n_heads; ++h) {
        float* v = x + size_t(h) * size_t(p.head_dim);
        for (int j = 0; j < half; ++j) {
            const int i0 = p.style == rope_style::normal ? 2 * j : j;
            const int i1 = p.style == rope_style::normal ? 2 * j + 1 : j + half;
            const float a = v[i0], b = v[i1];
            v[i0] = a * c[j] - b * s[j];
            v[i1] = a * s[j] + b * c[j];
        }
    }
}

void swiglu(const float* gate, const float* up, int n, float* out) {
    for (int i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void attention(const float* q, const float* k, const float* v, int64_t kv_stride, int n_kv, int n_head,
               int n_head_kv, int head_dim, float scale, float* out, float* scratch) {
    const int group = n_head / n_head_kv;
    for (int h = 0; h < n_head; ++h) {
        const int hk = h / group;
        const float* qh = q + size_t(h) * size_t(head_dim);
        float mx = -INFINITY;
        for (int t = 0; t < n_kv; ++t) {
            scratch[t] = scale * dot(qh, k + t * kv_stride + hk * head_dim, head_dim);
            mx = std::max(mx, scratch[t]);
        }
        float sum = 0;
        for (int t = 0; t < n_kv; ++t) {
            scratch[t] = std::exp(scratch[t] - mx);  // <= 1: no overflow whatever the scores
            sum += scratch[t];
        }
        float* oh = out + size_t(h) * size_t(head_dim);
        std::fill(oh, oh + head_dim, 0.0f);
        for (int t = 0; t < n_kv; ++t) axpy(scratch[t], v + t * kv_stride + hk * head_dim, oh, head_dim);
        const float inv = 1.0f / sum;
        for (int i = 0; i < head_dim; ++i) oh[i] *= inv;
    }
}

namespace ref {

void rmsnorm(const float* x, const float* w, int n, float eps, float* out) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const double s = 1.0 / std::sqrt(ss / n + double(eps));
    for (int i = 0; i < n; ++i) out[i] = float(double(x[i]) * s * double(w[i]));
}

void rope(float* x, int n_heads, int32_t pos, const rope_params& p) {
    const int half = p.n_rot / 2;
    for (int h = 0; h < n_heads; ++h) {
        float* v = x + size_t(h) * size_t(p.head_dim);
        for (int j = 0; j < half; ++j) {
            const double theta = double(pos) * double(p.freq_scale) * std::pow(double(p.base), -2.0 * j / p.n_rot);
            const int i0 = p.style == rope_style::normal ? 2 * j : j;
            const int i1 = p.style == rope_style::normal ? 2 * j + 1 : j + half;
            const double a = v[i0], b = v[i1];
            v[i0] = float(a * std::cos(theta) - b * std::sin(theta));
            v[i1] = float(a * std::sin(theta) + b * std::cos(theta));
        }
    }
}

void swiglu(const float* gate, const float* up, int n, float* out) {
    for (int i = 0; i < n; ++i) {
        const double g = gate[i];
        out[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
    }
}

void attention(const float* q, const float* k, const float* v, int64_t kv_stride, int n_kv, int n_head,
               int n_head_kv, int head_dim, float scale, float* out, float* /*scratch: unused, float64 own*/) {
    const int group = n_head / n_head_kv;
    std::vector<double> s(static_cast<size_t>(n_kv)), o(static_cast<size_t>(head_dim));
    for (int h = 0; h < n_head; ++h) {
        const int hk = h / group;
        double mx = -INFINITY;
        for (int t = 0; t < n_kv; ++t) {
            double d = 0;
            for (int i = 0; i < head_dim; ++i)
                d += double(q[h * head_dim + i]) * double(k[t * kv_stride + hk * head_dim + i]);
            s[size_t(t)] = d * scale;
            mx = std::max(mx, s[size_t(t)]);
        }
        double sum = 0;
        for (int t = 0; t < n_kv; ++t) sum += (s[size_t(t)] = std::exp(s[size_t(t)] - mx));
        std::fill(o.begin(), o.end(), 0.0);
        for (int t = 0; t < n_kv; ++t)
            for (int i = 0; i < head_dim; ++i) o[size_t(i)] += s[size_t(t)] * double(v[t * kv_stride + hk * head_dim + i]);
        for (int i = 0; i < head_dim; ++i) out[h * head_dim + i] = float(o[size_t(i)] / sum);
    }
}

}  // namespace ref

}  // namespace spark::accel
