// Private to accel/: the packed weight layout and the prepared-activation layout that the scalar and AVX2 matrix
// kernels share, and the kernel entry points matmul.cpp dispatches to.
//
// Packed weights. Rows are interleaved in groups of 8 (one AVX2 vector of int32/f32 lanes, lane r = row r of the
// group); a tile (tile_rows = 16) is two groups, and the last group is padded with zero rows. A group is a few
// "streams", each holding one field of every block of the group's rows, each 32-byte aligned:
//   F32        vals   per element c: 8 x f32 (lane r = W[r][c])                                  32 B
//   F16, BF16  vals   per element c: 8 x u16                                                     16 B
//   Q8_0       d      per block: 8 x f16                                                        16 B
//              qs     per block: 8 chunks k of 32 B; chunk k, lane r = q[4k .. 4k+3] of row r    256 B
//   Q4_0       d      as Q8_0                                                                   16 B
//              qs     per block: 4 chunks of 32 B; lane r = ggml bytes [4k, 4k+4) of row r:       128 B
//                     low nibbles = elements 4k.., high nibbles = elements 16+4k..
//   Q4_K/Q5_K  dm     per block: 8 x f16 d, then 8 x f16 dmin                                    32 B
//              sc     per block: [sub j][row r] u8 6-bit scales                                  64 B
//              mp     per block: [pair p][row r][2] u8 mins (m_2p, m_2p+1) of row r               64 B
//              nib    per block: 32 chunks c of 32 B; lane r, byte e: low nibble = q[4c+e],      1024 B
//                     high nibble = q[128+4c+e] (q = the 4-bit or low 4 of the 5-bit value)
//   Q5_K       hb     per block: 8 chunks k; lane r, byte e, bit t = bit 4 of q[32t+4k+e]         256 B
//   Q6_K       d      per block: 8 x f16                                                        16 B
//              sp     per block: [pair p][row r][2] i8 scales (sc_2p, sc_2p+1) (16-element subs) 128 B
//              nib    as Q4_K (low 4 bits of the unsigned 6-bit q)                              1024 B
//              h2     per block: 16 chunks k; lane r, byte e, bits 2t..2t+1 = q[64t+4k+e] >> 4   512 B
// This is the same number of bytes as ggml's rows (+3% for the K-types' unpacked scales), so a multiply streams
// about row_bytes x n_rows.
//
// Prepared activations (one column, n elements; offsets in bytes from the column start):
//   float types   f32[n]
//   Q8_0, Q4_0    f32 d[nb] | i32 sum[nb] (sum of the block's q) | i8 q[n] at a 32-aligned offset
//   K-types       f32 d[nb] | i16 bsum16[nb][16] | i16 bsum32[nb][8] | i8 q[n] at a 32-aligned offset
// q = round_half_even(x / d) with d = max|x| / 127 per block, so |q| <= 127: the int16 pair sums of
// _mm256_maddubs_epi16 never saturate.
//
// Summation order (the contract that makes the scalar and AVX2 twins bitwise equal and every kernel batch- and
// split-invariant): each output (row, column) is computed alone by the same sequence of float operations.
//   quantised types: per block b in increasing order, an exact int32 dot product isum_b (and msum_b for the mins),
//                    then   acc = acc + float(isum_b) * (d_w * d_x)                         (Q8_0, Q4_0, Q6_K)
//                           acc = (acc + float(isum_b) * (d_w * d_x)) - float(msum_b) * (dmin_w * d_x)   (Q4_K, Q5_K)
//   float types:     four partial sums a_k over elements c = k mod 4 in increasing c, a_k = a_k + w*x (no FMA),
//                    result (a_0 + a_1) + (a_2 + a_3).
// All kernel sources are compiled with -ffp-contract=off so that no mul+add is fused behind our back.
#pragma once

#include "accel/kernels.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace spark::accel::detail {

constexpr int group_rows = 8;
constexpr int max_streams = 5;

inline size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Where each stream of a group lives; per_block[s] = bytes of stream s per block (per element for float types).
struct group_layout {
    int n_streams = 0;
    size_t per_block[max_streams] = {};
    size_t offset[max_streams] = {};
    size_t group_bytes = 0;
};

inline group_layout layout_for(ggml_type t, int64_t n_blocks) {
    group_layout l;
    auto add = [&](size_t per_block) { l.per_block[l.n_streams++] = per_block; };
    switch (t) {
        case ggml_type::f32: add(32); break;
        case ggml_type::f16:
        case ggml_type::bf16: add(16); break;
        case ggml_type::q8_0: add(16), add(256); break;
        case ggml_type::q4_0: add(16), add(128); break;
        case ggml_type::q4_k: add(32), add(64), add(64), add(1024); break;
        case ggml_type::q5_k: add(32), add(64), add(64), add(1024), add(256); break;
        case ggml_type::q6_k: add(16), add(128), add(1024), add(512); break;
        default: break;
    }
    size_t off = 0;
    for (int s = 0; s < l.n_streams; ++s) {
        l.offset[s] = off;
        off = align_up(off + l.per_block[s] * size_t(n_blocks), 32);
    }
    l.group_bytes = align_up(off, 64);
    return l;
}

inline bool is_k_type(ggml_type t) { return t == ggml_type::q4_k || t == ggml_type::q5_k || t == ggml_type::q6_k; }
inline bool is_float_type(ggml_type t) { return t == ggml_type::f32 || t == ggml_type::f16 || t == ggml_type::bf16; }

// Views of one prepared activation column.
struct act_q32 {
    const float* d;
    const int32_t* sum;
    const int8_t* q;
};
struct act_qk {
    const float* d;
    const int16_t* bsum16;  // [nb][16]
    const int16_t* bsum32;  // [nb][8]
    const int8_t* q;
};
inline size_t act_q32_q_offset(int64_t nb) { return align_up(size_t(nb) * 8, 32); }
inline size_t act_qk_q_offset(int64_t nb) { return align_up(size_t(nb) * (4 + 32 + 16), 32); }
inline act_q32 view_q32(const uint8_t* col, int64_t nb) {
    return {reinterpret_cast<const float*>(col), reinterpret_cast<const int32_t*>(col + 4 * nb),
            reinterpret_cast<const int8_t*>(col + act_q32_q_offset(nb))};
}
inline act_qk view_qk(const uint8_t* col, int64_t nb) {
    return {reinterpret_cast<const float*>(col), reinterpret_cast<const int16_t*>(col + 4 * nb),
            reinterpret_cast<const int16_t*>(col + 36 * nb), reinterpret_cast<const int8_t*>(col + act_qk_q_offset(nb))};
}

// Everything one kernel call needs. Rows [r0, r1) are written to y[j * ldy + r] for columns j < x->n_cols().
struct kernel_args {
    const uint8_t* w = nullptr;  // packed groups, group g at w + g * layout.group_bytes
    group_layout layout;
    int64_t n_rows = 0, n = 0, n_blocks = 0;
    const activations* x = nullptr;
    int64_t r0 = 0, r1 = 0;
    float* y = nullptr;
    int64_t ldy = 0;
};

void multiply_scalar(ggml_type t, const kernel_args& a);
// Only call when active_isa() >= isa_level::avx2 (the file is compiled with -mavx2 -mfma -mf16c).
void multiply_avx2(ggml_type t, const kernel_args& a);

// Writes the 8 lanes of a group's results for column j, only rows inside [r0, r1) and < n_rows.
inline void store_group(const kernel_args& a, int64_t g, int j, const float* lanes) {
    const int64_t row0 = g * group_rows;
    float* yj = a.y + j * a.ldy;
    for (int r = 0; r < group_rows; ++r) {
        const int64_t row = row0 + r;
        if (row >= a.r0 && row < a.r1) yj[row] = lanes[r];
    }
}

inline uint32_t load_u32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline uint16_t load_u16(const void* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

}  // namespace spark::accel::detail
