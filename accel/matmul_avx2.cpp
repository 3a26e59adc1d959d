// AVX2 matrix kernels (compiled with -mavx2 -mfma -mf16c; called only when active_isa() allows).
//
// One group of 8 interleaved rows is one vector: lane r holds row r. Each 32-byte chunk of weights is loaded once
// per pass and applied to up to max_nc columns (2..8 by type; the per-column int32 block sums and f32 accumulators
// stay in registers), so a call streams the weights from memory once; with more columns the group's weights (a few
// KB to tens of KB) are re-read from L1/L2 for the next pass. Integer dot products use _mm256_maddubs_epi16 (u8 x s8
// -> pairs summed into s16) and _mm256_madd_epi16 (-> s32); for signed Q8_0 weights |w| is the unsigned operand and
// w's sign moves to x.
//
// Two measured speed-ups on this Zen 3 host (Release, one core):
// * The chunk loops of Q8_0, Q4_0 and Q4_K are unrolled only twice (#pragma GCC unroll 2). Fully unrolled, GCC
//   reassociates the int16/int32 sums of the 8 chunks into "compute every product, spill it to the stack, add later"
//   (Q4_K with 3 columns: ~1 ymm store per maddubs), and the spill stores, not the multiplies, set the pace. In cache
//   (256 x 1024) the extra cost per column went from 3.4 to 2.7 us (Q4_K) and 3.5 to 3.1 us (Q4_0); Q8_0 is within
//   +-5% depending on the column count.
// * Long rows (a group of >= 16 KB, e.g. n = 4864 for Q8_0 or 8960 for Q4_K) run two groups (16 rows, one tile) per
//   pass for up to pair_nc columns (when that needs no more passes than one group): twice the weight streams are in
//   flight and each activation broadcast feeds both groups. From DRAM on one thread, 896 x 4864 then streams 1 column
//   at ~18-21 GB/s instead of ~14-17 and 2 columns 15-25% faster; for short rows (n = 896, 1536) the two streams
//   measured slower at 2+ columns, so those keep one group per pass.
// Either way each (row, column) goes through exactly the same operations, so the results are the same bits.
// (Tried and measured slower: software prefetch of the next group (no gain over the hardware prefetcher); Q8_0 through
// madd_epi16 on weights widened once per chunk and int16 activations (6.0 vs 4.4 us per column per 262k multiply-adds
// in cache); Q8_0 as u = w + 128 split into nibbles, two maddubs into int16 sums and a 128 * sum(x) correction (no
// sign op, but two maddubs per 32 multiply-adds: 6.5 us); replacing every other per-chunk madd_epi16 by shifts
// (6.2 us); Q8_0's sign_epi8 as a blendv of x and -x (+15%); asm barriers on the accumulators instead of the unroll
// pragma; pairing groups for every row length.)
// The float operations per (row, column) are those of matmul_scalar.cpp, in the same order (matmul_kernels.h).
#include "accel/matmul_kernels.h"

#include <immintrin.h>

#include <algorithm>

namespace spark::accel::detail {
namespace {

inline __m256i bcast4(const int8_t* p) { return _mm256_set1_epi32(int(load_u32(p))); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256 halves8(const uint8_t* p) { return _mm256_cvtph_ps(load128(p)); }

// 8 u8 scales (one per row) -> lane r = (s_r, s_r) as two int16, the multiplier madd_epi16 wants.
inline __m256i dup_scales_u8(const uint8_t* p) {
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
}

inline void store_lanes(const kernel_args& a, int64_t g, int j, __m256 v) {
    const int64_t row0 = g * group_rows;
    if (row0 >= a.r0 && row0 + group_rows <= a.r1) {
        _mm256_storeu_ps(a.y + j * a.ldy + row0, v);
    } else {
        alignas(32) float lanes[group_rows];
        _mm256_store_ps(lanes, v);
        store_group(a, g, j, lanes);
    }
}

// ---- float weights: four partial sums over c mod 4, (a0 + a1) + (a2 + a3) ----

template <ggml_type T>
inline __m256 load_w(const uint8_t* vals, int64_t c) {
    if constexpr (T == ggml_type::f32) return _mm256_loadu_ps(reinterpret_cast<const float*>(vals + 32 * c));
    else if constexpr (T == ggml_type::f16) return halves8(vals + 16 * c);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(vals + 16 * c)), 16));
}

template <ggml_type T>
struct float_kernel {
    using view = const float*;
    static constexpr int max_nc = 2;
    template <int NC>
    static void run(const kernel_args& a, const uint8_t* g, const view* x, __m256* out) {
        const uint8_t* vals = g + a.layout.offset[0];
        __m256 acc[4][NC];
        for (int u = 0; u < 4; ++u)
            for (int c = 0; c < NC; ++c) acc[u][c] = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 4 <= a.n; i += 4)
            for (int u = 0; u < 4; ++u) {
                const __m256 w = load_w<T>(vals, i + u);
                for (int c = 0; c < NC; ++c)
                    acc[u][c] = _mm256_add_ps(acc[u][c], _mm256_mul_ps(w, _mm256_set1_ps(x[c][i + u])));
            }
        for (int u = 0; i + u < a.n; ++u) {
            const __m256 w = load_w<T>(vals, i + u);
            for (int c = 0; c < NC; ++c)
                acc[u][c] = _mm256_add_ps(acc[u][c], _mm256_mul_ps(w, _mm256_set1_ps(x[c][i + u])));
        }
        for (int c = 0; c < NC; ++c)
            out[c] = _mm256_add_ps(_mm256_add_ps(acc[0][c], acc[1][c]), _mm256_add_ps(acc[2][c], acc[3][c]));
    }
};

// ---- Q8_0 ----

// run (one 8-row group) and run_pair (two groups per pass, for long rows) for kernels written once over G groups
// as K::run_groups<G, NC>: both entry points reach the same per-(row, column) operations.
template <class K>
struct grouped_kernel {
    template <int NC, class View>
    static void run(const kernel_args& a, const uint8_t* g, const View* x, __m256* out) {
        const uint8_t* gp[1] = {g};
        K::template run_groups<1, NC>(a, gp, x, out);
    }
    template <int NC, class View>
    static void run_pair(const kernel_args& a, const uint8_t* g0, const uint8_t* g1, const View* x, __m256* out) {
        const uint8_t* gp[2] = {g0, g1};
        K::template run_groups<2, NC>(a, gp, x, out);
    }
};

struct q8_0_kernel : grouped_kernel<q8_0_kernel> {
    using view = act_q32;
    static constexpr int max_nc = 8;
    static constexpr int pair_nc = 4;  // columns per pass when two groups share each activation broadcast

    // G groups (1 or 2) at gp[0..G) x NC columns; out[gi * NC + c]. Each activation broadcast serves all G groups.
    template <int G, int NC>
    static void run_groups(const kernel_args& a, const uint8_t* const* gp, const view* x, __m256* out) {
        const uint8_t *d[G], *qs[G];
        for (int gi = 0; gi < G; ++gi) d[gi] = gp[gi] + a.layout.offset[0], qs[gi] = gp[gi] + a.layout.offset[1];
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc[G][NC];
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) acc[gi][c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            __m256i isum[G][NC];
            for (int gi = 0; gi < G; ++gi)
                for (int c = 0; c < NC; ++c) isum[gi][c] = _mm256_setzero_si256();
#pragma GCC unroll 2  // see the top of the file
            for (int k = 0; k < 8; ++k) {
                __m256i w[G], aw[G];
                for (int gi = 0; gi < G; ++gi) {
                    w[gi] = load256(qs[gi] + 256 * b + 32 * k);
                    aw[gi] = _mm256_sign_epi8(w[gi], w[gi]);  // |w| as u8 (-128 -> 128)
                }
                for (int c = 0; c < NC; ++c) {
                    const __m256i xb = bcast4(x[c].q + 32 * b + 4 * k);
                    for (int gi = 0; gi < G; ++gi) {
                        const __m256i xs = _mm256_sign_epi8(xb, w[gi]);
                        isum[gi][c] =
                            _mm256_add_epi32(isum[gi][c], _mm256_madd_epi16(_mm256_maddubs_epi16(aw[gi], xs), ones));
                    }
                }
            }
            for (int gi = 0; gi < G; ++gi) {
                const __m256 dw = halves8(d[gi] + 16 * b);
                for (int c = 0; c < NC; ++c) {
                    const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(x[c].d[b]));
                    acc[gi][c] = _mm256_add_ps(acc[gi][c], _mm256_mul_ps(_mm256_cvtepi32_ps(isum[gi][c]), s));
                }
            }
        }
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) out[gi * NC + c] = acc[gi][c];
    }
};

// ---- Q4_0: sum (q - 8) x = sum q x - 8 sum x; eight maddubs results fit int16 (8 * 2 * 15 * 127 < 2^15) ----

struct q4_0_kernel : grouped_kernel<q4_0_kernel> {
    using view = act_q32;
    static constexpr int max_nc = 4;
    static constexpr int pair_nc = 4;

    template <int G, int NC>
    static void run_groups(const kernel_args& a, const uint8_t* const* gp, const view* x, __m256* out) {
        const uint8_t *d[G], *qs[G];
        for (int gi = 0; gi < G; ++gi) d[gi] = gp[gi] + a.layout.offset[0], qs[gi] = gp[gi] + a.layout.offset[1];
        const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
        __m256 acc[G][NC];
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) acc[gi][c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            __m256i s16[G][NC];
            for (int gi = 0; gi < G; ++gi)
                for (int c = 0; c < NC; ++c) s16[gi][c] = _mm256_setzero_si256();
#pragma GCC unroll 2  // see the top of the file
            for (int k = 0; k < 4; ++k) {
                __m256i lo[G], hi[G];
                for (int gi = 0; gi < G; ++gi) {
                    const __m256i w = load256(qs[gi] + 128 * b + 32 * k);
                    lo[gi] = _mm256_and_si256(w, m4);
                    hi[gi] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
                }
                for (int c = 0; c < NC; ++c) {
                    const int8_t* xq = x[c].q + 32 * b + 4 * k;
                    const __m256i xl = bcast4(xq), xh = bcast4(xq + 16);
                    for (int gi = 0; gi < G; ++gi) {
                        const __m256i p =
                            _mm256_add_epi16(_mm256_maddubs_epi16(lo[gi], xl), _mm256_maddubs_epi16(hi[gi], xh));
                        s16[gi][c] = _mm256_add_epi16(s16[gi][c], p);
                    }
                }
            }
            for (int gi = 0; gi < G; ++gi) {
                const __m256 dw = halves8(d[gi] + 16 * b);
                for (int c = 0; c < NC; ++c) {
                    const __m256i isum =
                        _mm256_sub_epi32(_mm256_madd_epi16(s16[gi][c], ones), _mm256_set1_epi32(8 * x[c].sum[b]));
                    const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(x[c].d[b]));
                    acc[gi][c] = _mm256_add_ps(acc[gi][c], _mm256_mul_ps(_mm256_cvtepi32_ps(isum), s));
                }
            }
        }
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) out[gi * NC + c] = acc[gi][c];
    }
};

// ---- Q4_K / Q5_K: isum = sum_j sc_j * (q . x)_j, msum = sum_j m_j * bsum32_j ----

template <bool Q5>
struct q45_k_kernel : grouped_kernel<q45_k_kernel<Q5>> {
    using view = act_qk;
    static constexpr int max_nc = 3;
    static constexpr int pair_nc = 2;

    // k in [k0, k1) of sub-block pair j for G groups (weights at nib[gi], hb[gi]): adds sc-weighted dot products
    // into isum[gi][c]. Each activation broadcast serves all G groups. Q5_K runs two halves of 4 chunks so the int16
    // pair sums stay below 2^15 (4 * 2 * 31 * 127); Q4_K runs all 8 (8 * 2 * 15 * 127).
    template <int G, int NC>
    static void chunks(const uint8_t* const* nib, const uint8_t* const* hb, const int8_t* const* xq, int j, int k0,
                       int k1, const __m256i* sc_lo, const __m256i* sc_hi, __m256i (*isum)[NC]) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
        const __m128i shl_lo = _mm_cvtsi32_si128(4 - j), shr_hi = _mm_cvtsi32_si128(j);
        __m256i a_lo[G][NC], a_hi[G][NC];
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) a_lo[gi][c] = a_hi[gi][c] = _mm256_setzero_si256();
        auto chunk = [&](int k) {
            __m256i lo[G], hi[G];
            for (int gi = 0; gi < G; ++gi) {
                const __m256i w = load256(nib[gi] + 32 * (8 * j + k));
                lo[gi] = _mm256_and_si256(w, m4);
                hi[gi] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
                if constexpr (Q5) {
                    const __m256i h = load256(hb[gi] + 32 * k);  // bit t of a byte: element 32t + 4k + e
                    lo[gi] = _mm256_or_si256(lo[gi], _mm256_and_si256(_mm256_sll_epi16(h, shl_lo), bit4));
                    hi[gi] = _mm256_or_si256(hi[gi], _mm256_and_si256(_mm256_srl_epi16(h, shr_hi), bit4));
                }
            }
            for (int c = 0; c < NC; ++c) {
                const __m256i xl = bcast4(xq[c] + 32 * j + 4 * k), xh = bcast4(xq[c] + 128 + 32 * j + 4 * k);
                for (int gi = 0; gi < G; ++gi) {
                    a_lo[gi][c] = _mm256_add_epi16(a_lo[gi][c], _mm256_maddubs_epi16(lo[gi], xl));
                    a_hi[gi][c] = _mm256_add_epi16(a_hi[gi][c], _mm256_maddubs_epi16(hi[gi], xh));
                }
            }
        };
        if constexpr (Q5) {
            for (int k = k0; k < k1; ++k) chunk(k);  // fully unrolled: Q5_K measured slower with unroll 2
        } else {
#pragma GCC unroll 2  // see the top of the file
            for (int k = k0; k < k1; ++k) chunk(k);
        }
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c)
                isum[gi][c] = _mm256_add_epi32(isum[gi][c], _mm256_add_epi32(_mm256_madd_epi16(a_lo[gi][c], sc_lo[gi]),
                                                                             _mm256_madd_epi16(a_hi[gi][c], sc_hi[gi])));
    }

    // G groups (1 or 2) at gp[0..G) x NC columns; out[gi * NC + c].
    template <int G, int NC>
    static void run_groups(const kernel_args& a, const uint8_t* const* gp, const view* x, __m256* out) {
        const uint8_t *dm[G], *sc[G], *mp[G], *nib[G], *hb[G];
        for (int gi = 0; gi < G; ++gi) {
            dm[gi] = gp[gi] + a.layout.offset[0];
            sc[gi] = gp[gi] + a.layout.offset[1];
            mp[gi] = gp[gi] + a.layout.offset[2];
            nib[gi] = gp[gi] + a.layout.offset[3];
            hb[gi] = Q5 ? gp[gi] + a.layout.offset[4] : nullptr;
        }
        __m256 acc[G][NC];
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) acc[gi][c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            const int8_t* xq[NC];
            __m256i isum[G][NC], msum[G][NC];
            for (int c = 0; c < NC; ++c) xq[c] = x[c].q + 256 * b;
            for (int gi = 0; gi < G; ++gi)
                for (int c = 0; c < NC; ++c) isum[gi][c] = msum[gi][c] = _mm256_setzero_si256();
            const uint8_t *nibb[G], *hbb[G];
            for (int gi = 0; gi < G; ++gi) {
                nibb[gi] = nib[gi] + 1024 * b;
                hbb[gi] = Q5 ? hb[gi] + 256 * b : nullptr;
            }
            for (int j = 0; j < 4; ++j) {
                __m256i sc_lo[G], sc_hi[G];
                for (int gi = 0; gi < G; ++gi) {
                    sc_lo[gi] = dup_scales_u8(sc[gi] + 64 * b + 8 * j);
                    sc_hi[gi] = dup_scales_u8(sc[gi] + 64 * b + 8 * (j + 4));
                }
                if constexpr (Q5) {
                    chunks<G, NC>(nibb, hbb, xq, j, 0, 4, sc_lo, sc_hi, isum);
                    chunks<G, NC>(nibb, hbb, xq, j, 4, 8, sc_lo, sc_hi, isum);
                } else {
                    chunks<G, NC>(nibb, hbb, xq, j, 0, 8, sc_lo, sc_hi, isum);
                }
            }
            for (int p = 0; p < 4; ++p)
                for (int c = 0; c < NC; ++c) {
                    const __m256i bs = _mm256_set1_epi32(int(load_u32(x[c].bsum32 + 8 * b + 2 * p)));
                    for (int gi = 0; gi < G; ++gi) {
                        const __m256i m = _mm256_cvtepu8_epi16(load128(mp[gi] + 64 * b + 16 * p));  // (m_2p, m_2p+1)
                        msum[gi][c] = _mm256_add_epi32(msum[gi][c], _mm256_madd_epi16(m, bs));
                    }
                }
            for (int gi = 0; gi < G; ++gi) {
                const __m256 d = halves8(dm[gi] + 32 * b), dmin = halves8(dm[gi] + 32 * b + 16);
                for (int c = 0; c < NC; ++c) {
                    const __m256 dx = _mm256_set1_ps(x[c].d[b]);
                    const __m256 t =
                        _mm256_add_ps(acc[gi][c], _mm256_mul_ps(_mm256_cvtepi32_ps(isum[gi][c]), _mm256_mul_ps(d, dx)));
                    acc[gi][c] = _mm256_sub_ps(t, _mm256_mul_ps(_mm256_cvtepi32_ps(msum[gi][c]), _mm256_mul_ps(dmin, dx)));
                }
            }
        }
        for (int gi = 0; gi < G; ++gi)
            for (int c = 0; c < NC; ++c) out[gi * NC + c] = acc[gi][c];
    }

};

// ---- Q6_K: q in 0..63 (value + 32), isum = sum_s sc_s (q . x)_s, result uses isum - 32 * sum_s sc_s bsum16_s ----

struct q6_k_kernel {
    using view = act_qk;
    static constexpr int max_nc = 3;

    // Scales of 16-element sub-block s: lane r = (sc_s, sc_s) as int16, from the pair vector of s / 2.
    static __m256i dup_scale(__m256i pair, int s) {
        const __m256i even = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4,
                                              5, 8, 9, 8, 9, 12, 13, 12, 13);
        const __m256i odd = _mm256_add_epi8(even, _mm256_set1_epi8(2));
        return _mm256_shuffle_epi8(pair, (s & 1) ? odd : even);
    }

    template <int NC>
    static void run(const kernel_args& a, const uint8_t* g, const view* x, __m256* out) {
        const uint8_t* dd = g + a.layout.offset[0];
        const uint8_t* sp = g + a.layout.offset[1];
        const uint8_t* nib = g + a.layout.offset[2];
        const uint8_t* h2 = g + a.layout.offset[3];
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            const uint8_t* nb_ = nib + 1024 * b;
            const uint8_t* hb_ = h2 + 512 * b;
            const int8_t* xq[NC];
            __m256i isum[NC], msum[NC];
            for (int c = 0; c < NC; ++c) {
                xq[c] = x[c].q + 256 * b;
                isum[c] = msum[c] = _mm256_setzero_si256();
            }
            for (int t = 0; t < 2; ++t) {
                for (int kk = 0; kk < 16; kk += 2) {
                    const int c0 = 16 * t + kk, s_lo = c0 / 4, s_hi = 8 + c0 / 4;
                    __m256i ql[2], qh[2];
                    for (int u = 0; u < 2; ++u) {
                        const __m256i w = load256(nb_ + 32 * (c0 + u)), h = load256(hb_ + 32 * (kk + u));
                        // bits 2t..2t+1 -> 4..5 for the low nibble's element, bits 2t+4..2t+5 -> 4..5 for the high
                        const __m256i hl = t == 0 ? _mm256_slli_epi16(h, 4) : _mm256_slli_epi16(h, 2);
                        const __m256i hh = t == 0 ? h : _mm256_srli_epi16(h, 2);
                        ql[u] = _mm256_or_si256(_mm256_and_si256(w, m4), _mm256_and_si256(hl, m30));
                        qh[u] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w, 4), m4), _mm256_and_si256(hh, m30));
                    }
                    const __m256i sc_lo = dup_scale(_mm256_cvtepi8_epi16(load128(sp + 128 * b + 16 * (s_lo / 2))), s_lo);
                    const __m256i sc_hi = dup_scale(_mm256_cvtepi8_epi16(load128(sp + 128 * b + 16 * (s_hi / 2))), s_hi);
                    for (int c = 0; c < NC; ++c) {
                        const int8_t* xl = xq[c] + 4 * c0;
                        const __m256i plo = _mm256_add_epi16(_mm256_maddubs_epi16(ql[0], bcast4(xl)),
                                                             _mm256_maddubs_epi16(ql[1], bcast4(xl + 4)));
                        const __m256i phi = _mm256_add_epi16(_mm256_maddubs_epi16(qh[0], bcast4(xl + 128)),
                                                             _mm256_maddubs_epi16(qh[1], bcast4(xl + 132)));
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(plo, sc_lo),
                                                                             _mm256_madd_epi16(phi, sc_hi)));
                    }
                }
            }
            for (int p = 0; p < 8; ++p) {
                const __m256i sc = _mm256_cvtepi8_epi16(load128(sp + 128 * b + 16 * p));  // lane r: (sc_2p, sc_2p+1)
                for (int c = 0; c < NC; ++c) {
                    const __m256i bs = _mm256_set1_epi32(int(load_u32(x[c].bsum16 + 16 * b + 2 * p)));
                    msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(sc, bs));
                }
            }
            const __m256 d = halves8(dd + 16 * b);
            for (int c = 0; c < NC; ++c) {
                const __m256i tot = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(msum[c], 5));
                const __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(x[c].d[b]));
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(_mm256_cvtepi32_ps(tot), s));
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = acc[c];
    }
};

template <class K, int NC = 1>
void dispatch_nc(int nc, const kernel_args& a, const uint8_t* g, const typename K::view* x, __m256* out) {
    if constexpr (NC <= K::max_nc) {
        if (nc == NC) return K::template run<NC>(a, g, x, out);
        dispatch_nc<K, NC + 1>(nc, a, g, x, out);
    }
}

constexpr size_t pair_min_group_bytes = 16384;

template <class K>
constexpr bool has_pairs() {
    if constexpr (requires { K::pair_nc; }) return K::pair_nc > 0;
    else return false;
}

template <class K, int NC = 1>
void dispatch_pair(int nc, const kernel_args& a, const uint8_t* g0, const uint8_t* g1, const typename K::view* x,
                   __m256* out) {
    if constexpr (NC <= K::pair_nc) {
        if (nc == NC) return K::template run_pair<NC>(a, g0, g1, x, out);
        dispatch_pair<K, NC + 1>(nc, a, g0, g1, x, out);
    }
}

// Groups covering [r0, r1), each in passes of up to K::max_nc columns; kernels with run_pair take aligned pairs of
// groups (a tile) together in passes of up to K::pair_nc columns, the results are the same bits either way.
template <class K>
void drive(const kernel_args& a, typename K::view (*make)(const activations&, int, int64_t)) {
    const int n_x = a.x->n_cols();
    typename K::view xv[max_batch];
    for (int j = 0; j < n_x; ++j) xv[j] = make(*a.x, j, a.n_blocks);
    const int64_t g0 = a.r0 / group_rows, g1 = (a.r1 + group_rows - 1) / group_rows;
    int64_t g = g0;
    if constexpr (has_pairs<K>()) {
        static_assert(K::pair_nc <= 8);
        // Two groups per pass (each activation broadcast feeds both groups' dot products, and twice the weight
        // streams are in flight), unless that would take more passes over the activations than one group does.
        // Only for long rows: with short ones (a group of a few KB) the two streams measured slower from DRAM.
        const bool pair = a.layout.group_bytes >= pair_min_group_bytes &&
                          (n_x + K::pair_nc - 1) / K::pair_nc <= (n_x + K::max_nc - 1) / K::max_nc;
        for (; pair && g + 1 < g1; g += 2) {
            const uint8_t* gp0 = a.w + size_t(g) * a.layout.group_bytes;
            const uint8_t* gp1 = gp0 + a.layout.group_bytes;
            const int n_pass = (n_x + K::pair_nc - 1) / K::pair_nc;
            for (int j = 0; j < n_x;) {
                const int nc = std::min(K::pair_nc, (n_x + n_pass - 1) / n_pass);
                const int take = std::min(nc, n_x - j);
                __m256 out[2 * 8];
                dispatch_pair<K>(take, a, gp0, gp1, xv + j, out);
                for (int c = 0; c < take; ++c) {
                    store_lanes(a, g, j + c, out[c]);
                    store_lanes(a, g + 1, j + c, out[take + c]);
                }
                j += take;
            }
        }
    }
    for (; g < g1; ++g) {
        const uint8_t* gp = a.w + size_t(g) * a.layout.group_bytes;
        // Passes of near-equal width (Q8_0, max_nc 8: 5 columns are one pass, 9 are 5 + 4).
        const int n_pass = (n_x + K::max_nc - 1) / K::max_nc;
        for (int j = 0; j < n_x;) {
            const int nc = std::min(K::max_nc, (n_x + n_pass - 1) / n_pass);
            const int take = std::min(nc, n_x - j);
            __m256 out[8];
            dispatch_nc<K>(take, a, gp, xv + j, out);
            for (int c = 0; c < take; ++c) store_lanes(a, g, j + c, out[c]);
            j += take;
        }
    }
}

const float* view_f(const activations& x, int j, int64_t) { return reinterpret_cast<const float*>(x.column(j)); }
act_q32 view_32(const activations& x, int j, int64_t nb) { return view_q32(x.column(j), nb); }
act_qk view_k(const activations& x, int j, int64_t nb) { return view_qk(x.column(j), nb); }

}  // namespace

void multiply_avx2(ggml_type t, const kernel_args& a) {
    switch (t) {
        case ggml_type::f32: drive<float_kernel<ggml_type::f32>>(a, view_f); break;
        case ggml_type::f16: drive<float_kernel<ggml_type::f16>>(a, view_f); break;
        case ggml_type::bf16: drive<float_kernel<ggml_type::bf16>>(a, view_f); break;
        case ggml_type::q8_0: drive<q8_0_kernel>(a, view_32); break;
        case ggml_type::q4_0: drive<q4_0_kernel>(a, view_32); break;
        case ggml_type::q4_k: drive<q45_k_kernel<false>>(a, view_k); break;
        case ggml_type::q5_k: drive<q45_k_kernel<true>>(a, view_k); break;
        case ggml_type::q6_k: drive<q6_k_kernel>(a, view_k); break;
        default: break;
    }
}

}  // namespace spark::accel::detail
