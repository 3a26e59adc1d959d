// Matrix x columns: activation preparation, weight packing, ISA dispatch and the float64 reference.
// The packed and prepared layouts are described in accel/matmul_kernels.h.
#include "accel/kernels.h"
#include "accel/matmul_kernels.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>

namespace spark::accel {
namespace {

using detail::group_rows;

// Round half to even for |v| < 2^22 (ggml's trick): exact, branch-free and the same on every ISA.
inline int round_even(float v) {
    const float t = v + 12582912.0f;  // 1.5 * 2^23: the float's low mantissa bits then hold round(v)
    return int(std::bit_cast<int32_t>(t) - 0x4B400000);
}

// Quantises n floats (one block) to 8 bits with d = max|x| / 127; returns d. q is within [-127, 127].
float quantize_block(const float* x, int n, int8_t* q) {
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; ++i) q[i] = int8_t(std::clamp(round_even(x[i] * id), -127, 127));
    return d;
}

uint16_t u16_at(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// One ggml K-block decoded to unsigned quants and integer sub-block scales.
struct k_block {
    uint16_t d = 0, dmin = 0;  // raw halves
    uint8_t q[256] = {};       // Q4_K: 0..15, Q5_K: 0..31, Q6_K: 0..63 (value + 32)
    uint8_t sc[16] = {};       // Q4_K/Q5_K: 8 x 6-bit; Q6_K: 16 x int8 (stored as bytes)
    uint8_t m[8] = {};
};

k_block decode_k(ggml_type t, const uint8_t* b) {
    k_block k;
    if (t == ggml_type::q4_k || t == ggml_type::q5_k) {
        k.d = u16_at(b);
        k.dmin = u16_at(b + 2);
        for (int j = 0; j < 8; ++j) get_scale_min_k4(j, b + 4, k.sc[j], k.m[j]);
        const uint8_t* qh = b + 16;
        const uint8_t* ql = t == ggml_type::q4_k ? b + 16 : b + 48;
        for (int c = 0; c < 4; ++c)  // 64-element chunks: low nibbles then high nibbles of 32 bytes
            for (int l = 0; l < 32; ++l) {
                uint8_t lo = ql[32 * c + l] & 0xF, hi = ql[32 * c + l] >> 4;
                if (t == ggml_type::q5_k) {
                    lo = uint8_t(lo | (((qh[l] >> (2 * c)) & 1) << 4));
                    hi = uint8_t(hi | (((qh[l] >> (2 * c + 1)) & 1) << 4));
                }
                k.q[64 * c + l] = lo;
                k.q[64 * c + 32 + l] = hi;
            }
    } else {  // Q6_K: ql[128], qh[64], scales[16], d
        const uint8_t* ql = b;
        const uint8_t* qh = b + 128;
        std::memcpy(k.sc, b + 192, 16);
        k.d = u16_at(b + 208);
        for (int h = 0; h < 2; ++h)
            for (int l = 0; l < 32; ++l) {
                const uint8_t* L = ql + 64 * h;
                const uint8_t H = qh[32 * h + l];
                uint8_t* q = k.q + 128 * h;
                q[l] = uint8_t((L[l] & 0xF) | ((H & 3) << 4));
                q[l + 32] = uint8_t((L[l + 32] & 0xF) | (((H >> 2) & 3) << 4));
                q[l + 64] = uint8_t((L[l] >> 4) | (((H >> 4) & 3) << 4));
                q[l + 96] = uint8_t((L[l + 32] >> 4) | (((H >> 6) & 3) << 4));
            }
    }
    return k;
}

// Writes block b of row r (lane r of its group) into the group's streams.
void pack_block(ggml_type t, const uint8_t* src, int64_t b, int r, const detail::group_layout& l, uint8_t* g) {
    auto stream = [&](int s) { return g + l.offset[s] + size_t(b) * l.per_block[s]; };
    switch (t) {
        case ggml_type::f32: std::memcpy(stream(0) + 4 * r, src, 4); break;
        case ggml_type::f16:
        case ggml_type::bf16: std::memcpy(stream(0) + 2 * r, src, 2); break;
        case ggml_type::q8_0:
            std::memcpy(stream(0) + 2 * r, src, 2);
            for (int k = 0; k < 8; ++k) std::memcpy(stream(1) + 32 * k + 4 * r, src + 2 + 4 * k, 4);
            break;
        case ggml_type::q4_0:
            std::memcpy(stream(0) + 2 * r, src, 2);
            for (int k = 0; k < 4; ++k) std::memcpy(stream(1) + 32 * k + 4 * r, src + 2 + 4 * k, 4);
            break;
        case ggml_type::q4_k:
        case ggml_type::q5_k:
        case ggml_type::q6_k: {
            const k_block k = decode_k(t, src);
            uint8_t* nib = stream(t == ggml_type::q6_k ? 2 : 3);
            for (int c = 0; c < 32; ++c)
                for (int e = 0; e < 4; ++e)
                    nib[32 * c + 4 * r + e] = uint8_t((k.q[4 * c + e] & 0xF) | ((k.q[128 + 4 * c + e] & 0xF) << 4));
            if (t == ggml_type::q6_k) {
                put_u16(stream(0) + 2 * r, k.d);
                for (int p = 0; p < 8; ++p) {
                    stream(1)[16 * p + 2 * r] = k.sc[2 * p];
                    stream(1)[16 * p + 2 * r + 1] = k.sc[2 * p + 1];
                }
                uint8_t* h2 = stream(3);
                for (int kk = 0; kk < 16; ++kk)
                    for (int e = 0; e < 4; ++e) {
                        uint8_t v = 0;
                        for (int tt = 0; tt < 4; ++tt) v = uint8_t(v | ((k.q[64 * tt + 4 * kk + e] >> 4) << (2 * tt)));
                        h2[32 * kk + 4 * r + e] = v;
                    }
            } else {
                put_u16(stream(0) + 2 * r, k.d);
                put_u16(stream(0) + 16 + 2 * r, k.dmin);
                for (int j = 0; j < 8; ++j) stream(1)[8 * j + r] = k.sc[j];
                for (int p = 0; p < 4; ++p) {
                    stream(2)[16 * p + 2 * r] = k.m[2 * p];
                    stream(2)[16 * p + 2 * r + 1] = k.m[2 * p + 1];
                }
                if (t == ggml_type::q5_k) {
                    uint8_t* hb = stream(4);
                    for (int kk = 0; kk < 8; ++kk)
                        for (int e = 0; e < 4; ++e) {
                            uint8_t v = 0;
                            for (int tt = 0; tt < 8; ++tt) v = uint8_t(v | ((k.q[32 * tt + 4 * kk + e] >> 4) << tt));
                            hb[32 * kk + 4 * r + e] = v;
                        }
                }
            }
            break;
        }
        default: assert(!"pack_block: unsupported type");
    }
}

bool kernel_supports(ggml_type t) {
    switch (t) {
        case ggml_type::f32:
        case ggml_type::f16:
        case ggml_type::bf16:
        case ggml_type::q8_0:
        case ggml_type::q4_0:
        case ggml_type::q4_k:
        case ggml_type::q5_k:
        case ggml_type::q6_k: return true;
        default: return false;
    }
}

}  // namespace

void activations::prepare(ggml_type weight_type, const float* x, int n_cols, int64_t n, int64_t ldx) {
    assert(n_cols >= 1 && n_cols <= max_batch && ldx >= n);
    weight_type_ = weight_type;
    n_cols_ = n_cols;
    n_ = n;
    if (detail::is_float_type(weight_type)) {
        col_bytes_ = detail::align_up(size_t(n) * 4, 64);
        buf_.resize(col_bytes_ * size_t(n_cols));
        for (int j = 0; j < n_cols; ++j) std::memcpy(buf_.data() + j * col_bytes_, x + j * ldx, size_t(n) * 4);
        return;
    }
    const bool k_type = detail::is_k_type(weight_type);
    const int bs = k_type ? 256 : 32;
    assert(n % bs == 0);
    const int64_t nb = n / bs;
    col_bytes_ = detail::align_up((k_type ? detail::act_qk_q_offset(nb) : detail::act_q32_q_offset(nb)) + size_t(n), 64);
    buf_.resize(col_bytes_ * size_t(n_cols));
    for (int j = 0; j < n_cols; ++j) {
        uint8_t* col = buf_.data() + j * col_bytes_;
        const float* xj = x + j * ldx;
        auto* d = reinterpret_cast<float*>(col);
        if (!k_type) {
            auto* sum = reinterpret_cast<int32_t*>(col + 4 * nb);
            auto* q = reinterpret_cast<int8_t*>(col + detail::act_q32_q_offset(nb));
            for (int64_t b = 0; b < nb; ++b) {
                d[b] = quantize_block(xj + 32 * b, 32, q + 32 * b);
                int32_t s = 0;
                for (int i = 0; i < 32; ++i) s += q[32 * b + i];
                sum[b] = s;
            }
        } else {
            auto* bsum16 = reinterpret_cast<int16_t*>(col + 4 * nb);
            auto* bsum32 = reinterpret_cast<int16_t*>(col + 36 * nb);
            auto* q = reinterpret_cast<int8_t*>(col + detail::act_qk_q_offset(nb));
            for (int64_t b = 0; b < nb; ++b) {
                d[b] = quantize_block(xj + 256 * b, 256, q + 256 * b);
                for (int s = 0; s < 16; ++s) {
                    int v = 0;
                    for (int i = 0; i < 16; ++i) v += q[256 * b + 16 * s + i];
                    bsum16[16 * b + s] = int16_t(v);
                }
                for (int s = 0; s < 8; ++s) bsum32[8 * b + s] = int16_t(bsum16[16 * b + 2 * s] + bsum16[16 * b + 2 * s + 1]);
            }
        }
    }
}

result<packed_matrix> packed_matrix::pack(ggml_type type, std::span<const uint8_t> rows, int64_t n_rows,
                                          int64_t n_cols) {
    if (!kernel_supports(type)) return fail("packed_matrix: no kernel for weight type ", type_name(type));
    const type_traits& tr = traits(type);
    if (n_rows <= 0 || n_cols <= 0) return fail("packed_matrix: empty ", n_rows, " x ", n_cols, " matrix");
    if (n_cols % tr.block_size != 0)
        return fail("packed_matrix: ", n_cols, " columns is not a multiple of the ", type_name(type), " block size ",
                    tr.block_size);
    const uint64_t rb = row_bytes(type, uint64_t(n_cols));
    if (rows.size() != rb * uint64_t(n_rows))
        return fail("packed_matrix: ", type_name(type), " ", n_rows, " x ", n_cols, " needs ", rb * uint64_t(n_rows),
                    " bytes, got ", rows.size());
    packed_matrix m;
    m.type_ = type;
    m.n_rows_ = n_rows;
    m.n_cols_ = n_cols;
    const int64_t nb = n_cols / tr.block_size;
    const detail::group_layout l = detail::layout_for(type, nb);
    const int64_t n_groups = (n_rows + group_rows - 1) / group_rows;
    m.data_.assign(l.group_bytes * size_t(n_groups), 0);  // padding rows stay zero
    for (int64_t row = 0; row < n_rows; ++row) {
        uint8_t* g = m.data_.data() + size_t(row / group_rows) * l.group_bytes;
        const uint8_t* src = rows.data() + size_t(row) * rb;
        for (int64_t b = 0; b < nb; ++b) pack_block(type, src + size_t(b) * tr.type_size, b, int(row % group_rows), l, g);
    }
    return m;
}

void packed_matrix::multiply(const activations& x, int64_t r0, int64_t r1, float* y, int64_t ldy) const {
    assert(x.weight_type() == type_ && x.n() == n_cols_ && x.n_cols() >= 1 && x.n_cols() <= max_batch);
    assert(r0 % tile_rows == 0 && r0 <= r1 && r1 <= n_rows_ && (r1 % tile_rows == 0 || r1 == n_rows_));
    if (r0 >= r1) return;
    detail::kernel_args a;
    a.w = data_.data();
    a.n_rows = n_rows_;
    a.n = n_cols_;
    a.n_blocks = n_cols_ / traits(type_).block_size;
    a.layout = detail::layout_for(type_, a.n_blocks);
    a.x = &x;
    a.r0 = r0;
    a.r1 = r1;
    a.y = y;
    a.ldy = ldy;
    if (active_isa() >= isa_level::avx2) detail::multiply_avx2(type_, a);
    else detail::multiply_scalar(type_, a);
}

void matmul_reference(ggml_type type, const uint8_t* rows, int64_t n_rows, int64_t n_cols, const float* x, int n_x,
                      float* y) {
    const uint64_t rb = row_bytes(type, uint64_t(n_cols));
    std::vector<float> w(static_cast<size_t>(n_cols));
    for (int64_t r = 0; r < n_rows; ++r) {
        dequantize_row(type, rows + size_t(r) * rb, w.data(), n_cols);
        for (int j = 0; j < n_x; ++j) {
            const float* xj = x + size_t(j) * size_t(n_cols);
            double s = 0;
            for (int64_t c = 0; c < n_cols; ++c) s += double(w[size_t(c)]) * double(xj[c]);
            y[size_t(j) * size_t(n_rows) + size_t(r)] = float(s);
        }
    }
}

}  // namespace spark::accel
