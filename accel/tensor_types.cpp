// Scalar reference dequantisation and quantisation for the GGUF tensor types spark-ls supports.
// The block layouts follow ggml's definitions; every fast kernel is tested against these loops.
#include "accel/tensor_types.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>

namespace spark {
namespace {

constexpr uint32_t qk_k = 256;  // elements per K-quant super-block

// Every type id ggml has assigned, so that a file using one we do not compute with is still measured correctly and
// then refused by name rather than rejected as corrupt.
struct type_row {
    uint32_t id;
    type_traits traits;
};
constexpr std::array<type_row, 30> all_types{{
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},
    {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},
    {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", qk_k, 84, true}},
    {11, {"Q3_K", qk_k, 110, true}},
    {12, {"Q4_K", qk_k, 144, true}},
    {13, {"Q5_K", qk_k, 176, true}},
    {14, {"Q6_K", qk_k, 210, true}},
    {15, {"Q8_K", qk_k, 292, false}},
    {16, {"IQ2_XXS", qk_k, 66, false}},
    {17, {"IQ2_XS", qk_k, 74, false}},
    {18, {"IQ3_XXS", qk_k, 98, false}},
    {19, {"IQ1_S", qk_k, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},
    {21, {"IQ3_S", qk_k, 110, false}},
    {22, {"IQ2_S", qk_k, 82, false}},
    {23, {"IQ4_XS", qk_k, 136, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", qk_k, 56, false}},
    {30, {"BF16", 1, 2, true}},
    {35, {"TQ2_0", qk_k, 66, false}},
}};

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
float load_half(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
void store_half(uint8_t* p, float f) {
    const uint16_t h = fp32_to_fp16(f);
    p[0] = uint8_t(h & 0xff);
    p[1] = uint8_t(h >> 8);
}

void put_scale_min_k4(int j, uint8_t* q, uint8_t d, uint8_t m) {
    if (j < 4) {
        q[j] = uint8_t((q[j] & 0xC0) | (d & 63));
        q[j + 4] = uint8_t((q[j + 4] & 0xC0) | (m & 63));
    } else {
        q[j + 4] = uint8_t((d & 0xF) | ((m & 0xF) << 4));
        q[j - 4] = uint8_t(q[j - 4] | ((d >> 4) << 6));
        q[j - 0] = uint8_t(q[j - 0] | ((m >> 4) << 6));
    }
}

// ---- dequantisation, one block at a time; y receives block_size floats ----

void dequant_q4_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = float((qs[j] & 0xF) - 8) * d;
        y[j + 16] = float((qs[j] >> 4) - 8) * d;
    }
}
void dequant_q4_1(const uint8_t* b, float* y) {
    const float d = load_half(b), m = load_half(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        y[j] = float(qs[j] & 0xF) * d + m;
        y[j + 16] = float(qs[j] >> 4) * d + m;
    }
}
void dequant_q5_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
        const int x0 = int((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10)) - 16;
        const int x1 = int((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
        y[j] = float(x0) * d;
        y[j + 16] = float(x1) * d;
    }
}
void dequant_q5_1(const uint8_t* b, float* y) {
    const float d = load_half(b), m = load_half(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
        const int x0 = int((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10));
        const int x1 = int((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
        y[j] = float(x0) * d + m;
        y[j + 16] = float(x1) * d + m;
    }
}
void dequant_q8_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < 32; ++j) y[j] = float(qs[j]) * d;
}
// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2-bit), d, dmin.
void dequant_q2_k(const uint8_t* b, float* y) {
    const uint8_t* scales = b;
    const uint8_t* q = b + 16;
    const float d = load_half(b + 80), dmin = load_half(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            for (int half = 0; half < 2; ++half) {
                const uint8_t sc = scales[is++];
                const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half] >> shift) & 3) - ml;
            }
            shift += 2;
        }
        q += 32;
    }
}
// Q3_K: hmask[32], qs[64] (low 2 bits), scales[12] (16 x 6-bit, offset 32), d.
void dequant_q3_k(const uint8_t* b, float* y) {
    const uint8_t* hm = b;
    const uint8_t* q = b + 32;
    const float d_all = load_half(b + 108);
    uint32_t aux[4];
    std::memcpy(aux, b + 96, 12);
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            for (int half = 0; half < 2; ++half) {
                const float dl = d_all * float(scales[is++] - 32);
                for (int l = 16 * half; l < 16 * half + 16; ++l)
                    *y++ = dl * float(int((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            }
            shift += 2;
            m = uint8_t(m << 1);
        }
        q += 32;
    }
}
// Q4_K: d, dmin, scales[12] (8 x 6-bit scale and min), qs[128].
void dequant_q4_k(const uint8_t* b, float* y) {
    const float d = load_half(b), dmin = load_half(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        uint8_t sc, m;
        get_scale_min_k4(is, scales, sc, m);
        const float d1 = d * float(sc), m1 = dmin * float(m);
        get_scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * float(sc), m2 = dmin * float(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
}
// Q5_K: d, dmin, scales[12], qh[32], qs[128].
void dequant_q5_k(const uint8_t* b, float* y) {
    const float d = load_half(b), dmin = load_half(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32) {
        uint8_t sc, m;
        get_scale_min_k4(is, scales, sc, m);
        const float d1 = d * float(sc), m1 = dmin * float(m);
        get_scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * float(sc), m2 = dmin * float(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        u1 = uint8_t(u1 << 2);
        u2 = uint8_t(u2 << 2);
    }
}
// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d.
void dequant_q6_k(const uint8_t* b, float* y) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_half(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * float(sc[is + 0]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

// ---- quantisation (reference: round to nearest, scales from the block's range) ----

int nearest_int(float v) { return int(std::lrint(v)); }

// The element of largest magnitude, with its sign (ggml's Q4_0/Q5_0 choose the scale from it).
float signed_absmax(const float* x, int n) {
    float best = 0, best_abs = 0;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > best_abs) best_abs = std::fabs(x[i]), best = x[i];
    return best;
}

void quant_q8_0(const float* x, uint8_t* b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    store_half(b, d);
    for (int i = 0; i < 32; ++i) b[2 + i] = uint8_t(int8_t(nearest_int(x[i] * id)));
}
void quant_q4_0(const float* x, uint8_t* b) {
    const float max = signed_absmax(x, 32);
    const float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
    store_half(b, d);
    for (int j = 0; j < 16; ++j) {
        const int x0 = std::clamp(int(x[j] * id + 8.5f), 0, 15);
        const int x1 = std::clamp(int(x[j + 16] * id + 8.5f), 0, 15);
        b[2 + j] = uint8_t(x0 | (x1 << 4));
    }
}
void quant_q4_1(const float* x, uint8_t* b) {
    const float mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
    const float d = (mx - mn) / 15.0f, id = d ? 1.0f / d : 0.0f;
    store_half(b, d);
    store_half(b + 2, mn);
    for (int j = 0; j < 16; ++j) {
        const int x0 = std::clamp(int((x[j] - mn) * id + 0.5f), 0, 15);
        const int x1 = std::clamp(int((x[j + 16] - mn) * id + 0.5f), 0, 15);
        b[4 + j] = uint8_t(x0 | (x1 << 4));
    }
}
void quant_q5(const float* x, uint8_t* b, bool with_min) {
    float d, id, mn = 0;
    if (with_min) {
        mn = *std::min_element(x, x + 32);
        const float mx = *std::max_element(x, x + 32);
        d = (mx - mn) / 31.0f;
    } else {
        d = signed_absmax(x, 32) / -16.0f;
    }
    id = d ? 1.0f / d : 0.0f;
    store_half(b, d);
    if (with_min) store_half(b + 2, mn);
    uint8_t* qhp = b + (with_min ? 4 : 2);
    uint8_t* qs = qhp + 4;
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const float bias = with_min ? 0.5f : 16.5f;
        const int x0 = std::clamp(int((x[j] - mn) * id + bias), 0, 31);
        const int x1 = std::clamp(int((x[j + 16] - mn) * id + bias), 0, 31);
        qs[j] = uint8_t((x0 & 0xF) | ((x1 & 0xF) << 4));
        qh |= uint32_t((x0 & 0x10) >> 4) << j;
        qh |= uint32_t((x1 & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(qhp, &qh, 4);
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with (scale, min) quantised to 6 bits; levels = 15 or 31.
void quant_k_scale_min(const float* x, uint8_t* b, int levels) {
    float scale[8], minv[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        const float* v = x + 32 * j;
        const float mn = std::min(0.0f, *std::min_element(v, v + 32));
        const float mx = *std::max_element(v, v + 32);
        scale[j] = (mx - mn) / float(levels);
        minv[j] = -mn;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, minv[j]);
    }
    const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
    store_half(b, d);
    store_half(b + 2, dmin);
    const float d_h = load_half(b), dmin_h = load_half(b + 2);
    uint8_t* scales = b + 4;
    std::memset(scales, 0, 12);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(std::clamp(d_h ? nearest_int(scale[j] / d_h) : 0, 0, 63));
        lm[j] = uint8_t(std::clamp(dmin_h ? nearest_int(minv[j] / dmin_h) : 0, 0, 63));
        put_scale_min_k4(j, scales, ls[j], lm[j]);
    }
    uint8_t q[256];
    for (int j = 0; j < 8; ++j) {
        const float dl = d_h * float(ls[j]), ml = dmin_h * float(lm[j]);
        for (int l = 0; l < 32; ++l)
            q[32 * j + l] = uint8_t(dl ? std::clamp(nearest_int((x[32 * j + l] + ml) / dl), 0, levels) : 0);
    }
    if (levels == 15) {
        uint8_t* qs = b + 16;
        for (int j = 0; j < 256; j += 64)
            for (int l = 0; l < 32; ++l) *qs++ = uint8_t(q[j + l] | (q[j + l + 32] << 4));
    } else {
        uint8_t* qh = b + 16;
        uint8_t* ql = b + 48;
        std::memset(qh, 0, 32);
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t lo = q[j + l], hi = q[j + l + 32];
                if (lo > 15) qh[l] |= u1;
                if (hi > 15) qh[l] |= u2;
                ql[l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
            }
            ql += 32;
            u1 = uint8_t(u1 << 2);
            u2 = uint8_t(u2 << 2);
        }
    }
}

void quant_q2_k(const float* x, uint8_t* b) {
    float scale[16], minv[16], max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
        const float* v = x + 16 * j;
        const float mn = std::min(0.0f, *std::min_element(v, v + 16));
        const float mx = *std::max_element(v, v + 16);
        scale[j] = (mx - mn) / 3.0f;
        minv[j] = -mn;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, minv[j]);
    }
    store_half(b + 80, max_scale / 15.0f);
    store_half(b + 82, max_min / 15.0f);
    const float d = load_half(b + 80), dmin = load_half(b + 82);
    uint8_t q[256];
    for (int j = 0; j < 16; ++j) {
        const int ls = std::clamp(d ? nearest_int(scale[j] / d) : 0, 0, 15);
        const int lm = std::clamp(dmin ? nearest_int(minv[j] / dmin) : 0, 0, 15);
        b[j] = uint8_t(ls | (lm << 4));
        const float dl = d * float(ls), ml = dmin * float(lm);
        for (int l = 0; l < 16; ++l)
            q[16 * j + l] = uint8_t(dl ? std::clamp(nearest_int((x[16 * j + l] + ml) / dl), 0, 3) : 0);
    }
    uint8_t* qs = b + 16;
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; ++l)
            *qs++ = uint8_t(q[j + l] | (q[j + l + 32] << 2) | (q[j + l + 64] << 4) | (q[j + l + 96] << 6));
}

void quant_q3_k(const float* x, uint8_t* b) {
    float scale[16], max_abs = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
        scale[j] = signed_absmax(x + 16 * j, 16) / -4.0f;
        if (std::fabs(scale[j]) > max_abs) max_abs = std::fabs(scale[j]), max_scale = scale[j];
    }
    std::memset(b, 0, 110);
    const float d = max_scale / -32.0f;
    store_half(b + 108, d);
    const float d_h = load_half(b + 108);
    uint8_t* scales = b + 96;
    uint8_t q[256];
    for (int j = 0; j < 16; ++j) {
        int l = std::clamp(d_h ? nearest_int(scale[j] / d_h) : 0, -32, 31) + 32;
        const float dl = d_h * float(l - 32);
        for (int i = 0; i < 16; ++i)
            q[16 * j + i] = uint8_t(dl ? std::clamp(nearest_int(x[16 * j + i] / dl), -4, 3) + 4 : 4);
        if (j < 8) scales[j] = uint8_t(l & 0xF);
        else scales[j - 8] = uint8_t(scales[j - 8] | ((l & 0xF) << 4));
        l >>= 4;
        scales[j % 4 + 8] = uint8_t(scales[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    uint8_t* hmask = b;
    for (int j = 0; j < 256; ++j)
        if (q[j] > 3) {
            hmask[j % 32] = uint8_t(hmask[j % 32] | (1 << (j / 32)));
            q[j] = uint8_t(q[j] - 4);
        }
    uint8_t* qs = b + 32;
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; ++l)
            *qs++ = uint8_t(q[j + l] | (q[j + l + 32] << 2) | (q[j + l + 64] << 4) | (q[j + l + 96] << 6));
}

void quant_q6_k(const float* x, uint8_t* b) {
    float scale[16], max_abs = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
        scale[j] = signed_absmax(x + 16 * j, 16) / -32.0f;
        if (std::fabs(scale[j]) > max_abs) max_abs = std::fabs(scale[j]), max_scale = scale[j];
    }
    const float d = max_scale / -128.0f;
    store_half(b + 208, d);
    const float d_h = load_half(b + 208);
    int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
    uint8_t q[256];
    for (int j = 0; j < 16; ++j) {
        sc[j] = int8_t(std::clamp(d_h ? nearest_int(scale[j] / d_h) : 0, -128, 127));
        const float dl = d_h * float(sc[j]);
        for (int i = 0; i < 16; ++i)
            q[16 * j + i] = uint8_t(dl ? std::clamp(nearest_int(x[16 * j + i] / dl), -32, 31) + 32 : 32);
    }
    uint8_t* ql = b;
    uint8_t* qh = b + 128;
    for (int j = 0; j < 256; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = q[j + l], q2 = q[j + l + 32], q3 = q[j + l + 64], q4 = q[j + l + 96];
            ql[l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
            ql[l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
            qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

}  // namespace

void get_scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}
const type_traits* find_type_traits(uint32_t raw_type) {
    for (const auto& row : all_types)
        if (row.id == raw_type) return &row.traits;
    return nullptr;
}

const type_traits& traits(ggml_type t) {
    const type_traits* tr = find_type_traits(static_cast<uint32_t>(t));
    assert(tr);
    return *tr;
}

uint64_t row_bytes(ggml_type t, uint64_t n) {
    const type_traits& tr = traits(t);
    return n / tr.block_size * tr.type_size;
}

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while (!(mant & 0x400));
        bits = sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    return std::bit_cast<float>(bits);
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t abs = x & 0x7fffffff;
    if (abs > 0x7f800000) return uint16_t(sign | 0x7e00);  // NaN
    if (abs >= 0x477ff000) return uint16_t(sign | 0x7c00); // rounds to inf
    if (abs < 0x38800000) {                                 // subnormal half or zero
        if (abs < 0x33000000) return uint16_t(sign);        // < half the smallest subnormal
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // 14..24
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) ++h;
        return uint16_t(sign | h);
    }
    uint32_t h = ((abs >> 13) - (112u << 10));
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
    return uint16_t(sign | h);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

uint16_t fp32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 64);  // quiet NaN
    return uint16_t((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

void dequantize_row(ggml_type t, const void* src, float* dst, int64_t n) {
    const auto* p = static_cast<const uint8_t*>(src);
    const type_traits& tr = traits(t);
    const int64_t nb = n / tr.block_size;
    void (*block)(const uint8_t*, float*) = nullptr;
    switch (t) {
        case ggml_type::f32: std::memcpy(dst, p, size_t(n) * 4); return;
        case ggml_type::f16:
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(p + 2 * i));
            return;
        case ggml_type::bf16:
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(p + 2 * i));
            return;
        case ggml_type::q4_0: block = dequant_q4_0; break;
        case ggml_type::q4_1: block = dequant_q4_1; break;
        case ggml_type::q5_0: block = dequant_q5_0; break;
        case ggml_type::q5_1: block = dequant_q5_1; break;
        case ggml_type::q8_0: block = dequant_q8_0; break;
        case ggml_type::q2_k: block = dequant_q2_k; break;
        case ggml_type::q3_k: block = dequant_q3_k; break;
        case ggml_type::q4_k: block = dequant_q4_k; break;
        case ggml_type::q5_k: block = dequant_q5_k; break;
        case ggml_type::q6_k: block = dequant_q6_k; break;
        default: assert(!"dequantize_row: unsupported type"); return;
    }
    for (int64_t i = 0; i < nb; ++i) block(p + i * tr.type_size, dst + i * tr.block_size);
}

void quantize_row(ggml_type t, const float* src, void* dst, int64_t n) {
    auto* p = static_cast<uint8_t*>(dst);
    const type_traits& tr = traits(t);
    const int64_t nb = n / tr.block_size;
    void (*block)(const float*, uint8_t*) = nullptr;
    switch (t) {
        case ggml_type::f32: std::memcpy(p, src, size_t(n) * 4); return;
        case ggml_type::f16:
            for (int64_t i = 0; i < n; ++i) store_half(p + 2 * i, src[i]);
            return;
        case ggml_type::bf16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = fp32_to_bf16(src[i]);
                p[2 * i] = uint8_t(h & 0xff);
                p[2 * i + 1] = uint8_t(h >> 8);
            }
            return;
        case ggml_type::q4_0: block = quant_q4_0; break;
        case ggml_type::q4_1: block = quant_q4_1; break;
        case ggml_type::q5_0: block = [](const float* x, uint8_t* b) { quant_q5(x, b, false); }; break;
        case ggml_type::q5_1: block = [](const float* x, uint8_t* b) { quant_q5(x, b, true); }; break;
        case ggml_type::q8_0: block = quant_q8_0; break;
        case ggml_type::q2_k: block = quant_q2_k; break;
        case ggml_type::q3_k: block = quant_q3_k; break;
        case ggml_type::q4_k: block = [](const float* x, uint8_t* b) { quant_k_scale_min(x, b, 15); }; break;
        case ggml_type::q5_k: block = [](const float* x, uint8_t* b) { quant_k_scale_min(x, b, 31); }; break;
        case ggml_type::q6_k: block = quant_q6_k; break;
        default: assert(!"quantize_row: unsupported type"); return;
    }
    for (int64_t i = 0; i < nb; ++i) block(src + i * tr.block_size, p + i * tr.type_size);
}

}  // namespace spark
