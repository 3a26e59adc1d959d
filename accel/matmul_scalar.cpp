// Portable matrix kernels: the same algorithm as matmul_avx2.cpp, one (row, column) at a time. They read the packed
// layout lane by lane, form the same exact integer block sums, and apply the same float operations in the same order
// (accel/matmul_kernels.h), so their results are bitwise equal to the AVX2 kernels'.
#include "accel/matmul_kernels.h"

namespace spark::accel::detail {
namespace {

float half_at(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }

// Float weights: element c of lane r of group g.
template <ggml_type T>
float weight_at(const uint8_t* vals, int64_t c, int r) {
    if constexpr (T == ggml_type::f32) {
        float v;
        std::memcpy(&v, vals + 32 * c + 4 * r, 4);
        return v;
    } else if constexpr (T == ggml_type::f16) {
        return fp16_to_fp32(load_u16(vals + 16 * c + 2 * r));
    } else {
        return bf16_to_fp32(load_u16(vals + 16 * c + 2 * r));
    }
}

template <ggml_type T>
float lane_float(const kernel_args& a, const uint8_t* g, int r, const float* x) {
    const uint8_t* vals = g + a.layout.offset[0];
    float acc[4] = {0, 0, 0, 0};
    for (int64_t c = 0; c < a.n; ++c) acc[c & 3] = acc[c & 3] + weight_at<T>(vals, c, r) * x[c];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float lane_q8_0(const kernel_args& a, const uint8_t* g, int r, const act_q32& x) {
    const uint8_t* d = g + a.layout.offset[0];
    const uint8_t* qs = g + a.layout.offset[1];
    float acc = 0;
    for (int64_t b = 0; b < a.n_blocks; ++b) {
        int32_t isum = 0;
        for (int k = 0; k < 8; ++k)
            for (int e = 0; e < 4; ++e)
                isum += int32_t(int8_t(qs[256 * b + 32 * k + 4 * r + e])) * x.q[32 * b + 4 * k + e];
        const float s = half_at(d + 16 * b + 2 * r) * x.d[b];
        acc = acc + float(isum) * s;
    }
    return acc;
}

float lane_q4_0(const kernel_args& a, const uint8_t* g, int r, const act_q32& x) {
    const uint8_t* d = g + a.layout.offset[0];
    const uint8_t* qs = g + a.layout.offset[1];
    float acc = 0;
    for (int64_t b = 0; b < a.n_blocks; ++b) {
        int32_t isum = 0;
        for (int k = 0; k < 4; ++k)
            for (int e = 0; e < 4; ++e) {
                const uint8_t w = qs[128 * b + 32 * k + 4 * r + e];
                isum += int32_t(w & 0xF) * x.q[32 * b + 4 * k + e] + int32_t(w >> 4) * x.q[32 * b + 16 + 4 * k + e];
            }
        isum -= 8 * x.sum[b];
        const float s = half_at(d + 16 * b + 2 * r) * x.d[b];
        acc = acc + float(isum) * s;
    }
    return acc;
}

template <bool Q5>
float lane_q45_k(const kernel_args& a, const uint8_t* g, int r, const act_qk& x) {
    const uint8_t* dm = g + a.layout.offset[0];
    const uint8_t* sc = g + a.layout.offset[1];
    const uint8_t* mp = g + a.layout.offset[2];
    const uint8_t* nib = g + a.layout.offset[3];
    const uint8_t* hb = Q5 ? g + a.layout.offset[4] : nullptr;
    float acc = 0;
    for (int64_t b = 0; b < a.n_blocks; ++b) {
        const int8_t* xq = x.q + 256 * b;
        int32_t isum = 0;
        for (int c = 0; c < 32; ++c) {
            const int j = c / 8;
            const int32_t sc_lo = sc[64 * b + 8 * j + r], sc_hi = sc[64 * b + 8 * (j + 4) + r];
            for (int e = 0; e < 4; ++e) {
                const uint8_t w = nib[1024 * b + 32 * c + 4 * r + e];
                int32_t lo = w & 0xF, hi = w >> 4;
                if constexpr (Q5) {
                    const uint8_t h = hb[256 * b + 32 * (c % 8) + 4 * r + e];
                    lo |= ((h >> j) & 1) << 4;
                    hi |= ((h >> (j + 4)) & 1) << 4;
                }
                isum += sc_lo * lo * xq[4 * c + e] + sc_hi * hi * xq[128 + 4 * c + e];
            }
        }
        int32_t msum = 0;
        for (int j = 0; j < 8; ++j) msum += int32_t(mp[64 * b + 16 * (j / 2) + 2 * r + j % 2]) * x.bsum32[8 * b + j];
        const float d = half_at(dm + 32 * b + 2 * r), dmin = half_at(dm + 32 * b + 16 + 2 * r);
        acc = (acc + float(isum) * (d * x.d[b])) - float(msum) * (dmin * x.d[b]);
    }
    return acc;
}

float lane_q6_k(const kernel_args& a, const uint8_t* g, int r, const act_qk& x) {
    const uint8_t* dd = g + a.layout.offset[0];
    const uint8_t* sp = g + a.layout.offset[1];
    const uint8_t* nib = g + a.layout.offset[2];
    const uint8_t* h2 = g + a.layout.offset[3];
    float acc = 0;
    for (int64_t b = 0; b < a.n_blocks; ++b) {
        const int8_t* xq = x.q + 256 * b;
        auto scale = [&](int s) { return int32_t(int8_t(sp[128 * b + 16 * (s / 2) + 2 * r + s % 2])); };
        int32_t isum = 0;
        for (int c = 0; c < 32; ++c) {
            const int t = c / 16;
            const int32_t sc_lo = scale(c / 4), sc_hi = scale(8 + c / 4);
            for (int e = 0; e < 4; ++e) {
                const uint8_t w = nib[1024 * b + 32 * c + 4 * r + e];
                const uint8_t h = h2[512 * b + 32 * (c % 16) + 4 * r + e];
                const int32_t lo = (w & 0xF) | (((h >> (2 * t)) & 3) << 4);
                const int32_t hi = (w >> 4) | (((h >> (2 * t + 4)) & 3) << 4);
                isum += sc_lo * lo * xq[4 * c + e] + sc_hi * hi * xq[128 + 4 * c + e];
            }
        }
        int32_t msum = 0;
        for (int s = 0; s < 16; ++s) msum += scale(s) * x.bsum16[16 * b + s];
        const float d = half_at(dd + 16 * b + 2 * r);
        acc = acc + float(isum - 32 * msum) * (d * x.d[b]);
    }
    return acc;
}

// Runs lane(a, group, r, column view) for every row in [r0, r1) and every column.
template <class View, class Lane>
void run(const kernel_args& a, View (*view)(const activations&, int, int64_t), Lane lane) {
    const int64_t g0 = a.r0 / group_rows, g1 = (a.r1 + group_rows - 1) / group_rows;
    for (int j = 0; j < a.x->n_cols(); ++j) {
        const View xv = view(*a.x, j, a.n_blocks);
        for (int64_t g = g0; g < g1; ++g) {
            const uint8_t* gp = a.w + size_t(g) * a.layout.group_bytes;
            float lanes[group_rows] = {};
            for (int r = 0; r < group_rows; ++r) {
                const int64_t row = g * group_rows + r;
                if (row >= a.r0 && row < a.r1) lanes[r] = lane(a, gp, r, xv);
            }
            store_group(a, g, j, lanes);
        }
    }
}

const float* view_f(const activations& x, int j, int64_t) { return reinterpret_cast<const float*>(x.column(j)); }
act_q32 view_32(const activations& x, int j, int64_t nb) { return view_q32(x.column(j), nb); }
act_qk view_k(const activations& x, int j, int64_t nb) { return view_qk(x.column(j), nb); }

}  // namespace

void multiply_scalar(ggml_type t, const kernel_args& a) {
    switch (t) {
        case ggml_type::f32: run(a, view_f, lane_float<ggml_type::f32>); break;
        case ggml_type::f16: run(a, view_f, lane_float<ggml_type::f16>); break;
        case ggml_type::bf16: run(a, view_f, lane_float<ggml_type::bf16>); break;
        case ggml_type::q8_0: run(a, view_32, lane_q8_0); break;
        case ggml_type::q4_0: run(a, view_32, lane_q4_0); break;
        case ggml_type::q4_k: run(a, view_k, lane_q45_k<false>); break;
        case ggml_type::q5_k: run(a, view_k, lane_q45_k<true>); break;
        case ggml_type::q6_k: run(a, view_k, lane_q6_k); break;
        default: break;
    }
}

}  // namespace spark::accel::detail
