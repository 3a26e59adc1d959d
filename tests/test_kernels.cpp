// The accelerator's kernels against their references: every weight type on every ISA level this CPU has.
//   (a) kernel vs matmul_reference by normalised error max|y - ref| / max|ref|, two ways: with the float
//       activations (tolerance from 8-bit activation quantisation) and with the activations the kernel actually
//       used (dequantised back: only float rounding remains, so a wrong index or scale cannot hide);
//   (b) AVX2 vs the scalar twin: bitwise equal (same algorithm, same float order);
//   (c) batch and split invariance: column j bitwise equal alone, in batches of 2..16 and under row splits;
//   (d) outputs are poisoned with NaN before every run, and the gaps between columns (ldy > n_rows) must stay so.
#include "accel/kernels.h"
#include "accel/matmul_kernels.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace spark;
using namespace spark::accel;

namespace {

std::vector<isa_level> isa_levels() {
    std::vector<isa_level> v{isa_level::scalar};
    if (detected_isa() >= isa_level::avx2) v.push_back(isa_level::avx2);
    return v;
}

struct isa_guard {
    isa_level saved = active_isa();
    ~isa_guard() { set_active_isa(saved); }
};

// Weights with rows of varied magnitude and a few outliers, so that block scales differ.
std::vector<float> random_weights(std::mt19937& rng, int64_t n_rows, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> mag(0.2f, 3.0f);
    std::vector<float> w(size_t(n_rows * n));
    for (int64_t r = 0; r < n_rows; ++r) {
        const float m = mag(rng);
        for (int64_t c = 0; c < n; ++c) w[size_t(r * n + c)] = nd(rng) * m * (c % 37 == 5 ? 4.0f : 1.0f);
    }
    return w;
}

std::vector<float> random_x(std::mt19937& rng, int n_cols, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(n_cols * n));
    for (auto& v : x) v = nd(rng);
    return x;
}

// The activations a kernel really multiplies with: the prepared column dequantised back to floats.
std::vector<float> effective_x(const activations& a, int j) {
    const int64_t n = a.n();
    std::vector<float> x(static_cast<size_t>(n));
    const ggml_type t = a.weight_type();
    if (detail::is_float_type(t)) {
        std::memcpy(x.data(), a.column(j), size_t(n) * 4);
    } else if (detail::is_k_type(t)) {
        const auto v = detail::view_qk(a.column(j), n / 256);
        for (int64_t i = 0; i < n; ++i) x[size_t(i)] = v.d[i / 256] * float(v.q[i]);
    } else {
        const auto v = detail::view_q32(a.column(j), n / 32);
        for (int64_t i = 0; i < n; ++i) x[size_t(i)] = v.d[i / 32] * float(v.q[i]);
    }
    return x;
}

// max|y - ref| / max|ref| over rows [0, n_rows) of one column; NaN anywhere gives infinity.
double norm_err(const float* y, const float* ref, int64_t n_rows) {
    double num = 0, den = 0;
    for (int64_t r = 0; r < n_rows; ++r) {
        if (!std::isfinite(y[r])) return std::numeric_limits<double>::infinity();
        num = std::max(num, std::fabs(double(y[r]) - double(ref[r])));
        den = std::max(den, std::fabs(double(ref[r])));
    }
    return den > 0 ? num / den : num;
}

// Tolerance vs the float-activation reference: 8-bit activations (d = max|x|/127 per block) give about
// 0.3-0.6 % noise relative to the largest output on random data; K-types' 256-blocks somewhat more.
double tolerance_float_x(ggml_type t) {
    switch (t) {
        case ggml_type::f32:
        case ggml_type::f16:
        case ggml_type::bf16: return 1e-5;
        case ggml_type::q8_0:
        case ggml_type::q4_0: return 2e-2;
        default: return 3e-2;
    }
}
// Tolerance vs the reference run on the kernel's own (dequantised) activations: float summation only.
constexpr double tolerance_same_x = 2e-5;

double& worst_error(ggml_type t) {
    static double worst[64] = {};
    return worst[int(t) % 64];
}

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

struct run_out {
    std::vector<float> y;  // n_x columns of ldy
    int64_t ldy;
};

run_out run_multiply(const packed_matrix& m, const activations& a, const std::vector<std::pair<int64_t, int64_t>>& splits) {
    run_out o;
    o.ldy = m.n_rows() + 3;  // gaps between columns must stay untouched
    o.y.assign(size_t(o.ldy * a.n_cols()), nan_f);
    for (auto [r0, r1] : splits) m.multiply(a, r0, r1, o.y.data(), o.ldy);
    return o;
}

bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, size_t(n) * 4) == 0; }

void check_type(ggml_type type, std::mt19937& rng, int64_t n_rows, int64_t n) {
    const std::string what = std::string(type_name(type)) + " " + std::to_string(n_rows) + "x" + std::to_string(n);
    INFO(what);
    const std::vector<float> wf = random_weights(rng, n_rows, n);
    std::vector<uint8_t> wq(row_bytes(type, uint64_t(n)) * uint64_t(n_rows));
    for (int64_t r = 0; r < n_rows; ++r)
        quantize_row(type, wf.data() + r * n, wq.data() + size_t(r) * row_bytes(type, uint64_t(n)), n);
    auto packed = packed_matrix::pack(type, wq, n_rows, n);
    REQUIRE(packed.has_value());
    const packed_matrix& m = *packed;

    const int max_b = max_batch;
    const std::vector<float> x = random_x(rng, max_b, n);
    std::vector<float> ref(size_t(max_b * n_rows));
    matmul_reference(type, wq.data(), n_rows, n, x.data(), max_b, ref.data());
    std::vector<float> wd(size_t(n_rows * n));
    for (int64_t r = 0; r < n_rows; ++r)
        dequantize_row(type, wq.data() + size_t(r) * row_bytes(type, uint64_t(n)), wd.data() + r * n, n);
    // Per column, the largest |x| of each activation block (float types: zero, no quantisation).
    const int64_t act_block = detail::is_k_type(type) ? 256 : 32;
    std::vector<std::vector<double>> amax(size_t(max_b), std::vector<double>(size_t(n / act_block + 1), 0.0));
    if (!detail::is_float_type(type))
        for (int j = 0; j < max_b; ++j)
            for (int64_t c = 0; c < n; ++c)
                amax[size_t(j)][size_t(c / act_block)] =
                    std::max(amax[size_t(j)][size_t(c / act_block)], std::fabs(double(x[size_t(j * n + c)])));

    // Row splits at tile boundaries: whole, two parts, and one shard per tile.
    std::vector<std::vector<std::pair<int64_t, int64_t>>> split_sets{{{0, n_rows}}};
    if (n_rows > tile_rows) {
        const int64_t mid = (n_rows / 2) / tile_rows * tile_rows;
        split_sets.push_back({{mid, n_rows}, {0, mid}});
        std::vector<std::pair<int64_t, int64_t>> tiles;
        for (int64_t r0 = 0; r0 < n_rows; r0 += tile_rows) tiles.push_back({r0, std::min(n_rows, r0 + tile_rows)});
        split_sets.push_back(tiles);
    }

    isa_guard guard;
    std::vector<std::vector<float>> per_isa_alone;  // [isa] column j alone, n_rows each
    for (isa_level isa : isa_levels()) {
        set_active_isa(isa);
        REQUIRE(active_isa() == isa);
        INFO("isa " << isa_name(isa));
        // Every column alone: the baseline for invariance; (a) against both references.
        std::vector<float> alone(size_t(max_b * n_rows));
        for (int j = 0; j < max_b; ++j) {
            activations a;
            a.prepare(type, x.data() + j * n, 1, n, n);
            const run_out o = run_multiply(m, a, split_sets[0]);
            for (int64_t r = n_rows; r < o.ldy; ++r) REQUIRE(std::isnan(o.y[size_t(r)]));
            std::memcpy(alone.data() + j * n_rows, o.y.data(), size_t(n_rows) * 4);

            // Rigorous per-output bound for the activation quantisation: |dx_c| <= amax(block of c) / 254.
            for (int64_t r = 0; r < n_rows; ++r) {
                double bound = 0, mag = 0;
                for (int64_t c = 0; c < n; ++c) {
                    const double w = std::fabs(double(wd[size_t(r * n + c)]));
                    bound += w * amax[size_t(j)][size_t(c / act_block)] / 254.0;
                    mag += w * std::fabs(double(x[size_t(j * n + c)]));
                }
                const double err = std::fabs(double(o.y[size_t(r)]) - double(ref[size_t(j * n_rows + r)]));
                if (!(err <= bound * 1.001 + 1e-5 * mag + 1e-30)) {
                    FAIL_CHECK("row " << r << " column " << j << ": |y - ref| = " << err << " exceeds the bound "
                                      << bound);
                    break;
                }
            }

            const std::vector<float> xe = effective_x(a, 0);
            std::vector<float> ref_e(static_cast<size_t>(n_rows));
            matmul_reference(type, wq.data(), n_rows, n, xe.data(), 1, ref_e.data());
            const double e_same = norm_err(o.y.data(), ref_e.data(), n_rows);
            INFO("column " << j << " error vs same-x reference " << e_same);
            CHECK(e_same <= tolerance_same_x);
        }
        // (c) batches and splits reproduce the lone columns bit for bit.
        // (the AVX2 driver switches between one- and two-group passes and pass widths across these sizes)
        for (int b : {2, 3, 4, 5, 6, 7, 8, 9, 13, 16}) {
            activations a;
            a.prepare(type, x.data(), b, n, n);
            for (size_t s = 0; s < split_sets.size(); ++s) {
                const run_out o = run_multiply(m, a, split_sets[s]);
                for (int j = 0; j < b; ++j) {
                    INFO("batch " << b << " split set " << s << " column " << j);
                    CHECK(same_bits(o.y.data() + j * o.ldy, alone.data() + j * n_rows, n_rows));
                    for (int64_t r = n_rows; r < o.ldy; ++r) REQUIRE(std::isnan(o.y[size_t(j * o.ldy + r)]));
                }
            }
        }
        // (a) normalised error over the whole batch, against the stated tolerance.
        const double e_float = norm_err(alone.data(), ref.data(), max_b * n_rows);
        INFO("normalised error vs float-x reference " << e_float);
        CHECK(e_float <= tolerance_float_x(type));
        worst_error(type) = std::max(worst_error(type), e_float);
        per_isa_alone.push_back(std::move(alone));
    }
    // (b) the AVX2 kernel and its scalar twin agree bit for bit.
    for (size_t i = 1; i < per_isa_alone.size(); ++i) {
        INFO("isa " << isa_name(isa_levels()[i]) << " vs scalar");
        for (int j = 0; j < max_b; ++j) {
            if (!same_bits(per_isa_alone[i].data() + j * n_rows, per_isa_alone[0].data() + j * n_rows, n_rows)) {
                const double e = norm_err(per_isa_alone[i].data() + j * n_rows, per_isa_alone[0].data() + j * n_rows,
                                          n_rows);
                FAIL_CHECK("column " << j << " differs from the scalar twin, normalised error " << e);
            }
        }
    }
}

}  // namespace

TEST_CASE("isa levels are reported and settable", "[kernels]") {
    isa_guard guard;
    WARN("detected ISA: " << isa_name(detected_isa()) << "; kernel tests run on: scalar"
                          << (detected_isa() >= isa_level::avx2 ? " + avx2" : " only (no AVX2 on this CPU)"));
    set_active_isa(isa_level::scalar);
    CHECK(active_isa() == isa_level::scalar);
    set_active_isa(isa_level::avx2);
    CHECK(active_isa() == detected_isa());  // clamped
    CHECK(isa_name(isa_level::scalar) == "scalar");
    CHECK(isa_name(isa_level::avx2) == "avx2");
}

TEST_CASE("matrix kernels match the references on every type and ISA level", "[kernels]") {
    std::mt19937 rng(1234);
    struct shape {
        int64_t rows, n;
    };
    std::vector<shape> float_shapes{{1, 1}, {7, 5}, {37, 33}, {48, 100}, {19, 64}, {130, 896}};
    // (the long-row shapes make AVX2 groups >= 16 KB, where the driver takes two groups per pass)
    std::vector<shape> q32_shapes{{1, 32}, {9, 64}, {37, 96}, {64, 320}, {23, 32}, {145, 896}, {37, 4096}};
    std::vector<shape> k_shapes{{1, 256}, {13, 256}, {40, 512}, {17, 768}, {129, 1024}, {37, 3584}};
    // Plus random shapes: any row count (mostly not a multiple of 16), 1..12 blocks.
    std::uniform_int_distribution<int> rows_d(1, 90), blocks_d(1, 12);
    for (int i = 0; i < 3; ++i) {
        const int rows = rows_d(rng), blocks = blocks_d(rng);
        float_shapes.push_back({rows, blocks * 7 + i});
        q32_shapes.push_back({rows_d(rng), 32 * blocks});
        k_shapes.push_back({rows_d(rng), 256 * (1 + blocks % 4)});
    }
    for (ggml_type t : {ggml_type::f32, ggml_type::f16, ggml_type::bf16})
        for (const shape& s : float_shapes) check_type(t, rng, s.rows, s.n);
    for (ggml_type t : {ggml_type::q8_0, ggml_type::q4_0})
        for (const shape& s : q32_shapes) check_type(t, rng, s.rows, s.n);
    for (ggml_type t : {ggml_type::q4_k, ggml_type::q5_k, ggml_type::q6_k})
        for (const shape& s : k_shapes) check_type(t, rng, s.rows, s.n);
    for (ggml_type t : {ggml_type::f32, ggml_type::f16, ggml_type::bf16, ggml_type::q8_0, ggml_type::q4_0,
                        ggml_type::q4_k, ggml_type::q5_k, ggml_type::q6_k})
        WARN(type_name(t) << ": worst normalised error vs float reference " << worst_error(t) << " (tolerance "
                          << tolerance_float_x(t) << ")");
}

TEST_CASE("matrix kernels handle extreme blocks", "[kernels]") {
    // Q8_0 weights of -128 (the one value maddubs' sign trick must treat as +128) and all-zero activation blocks.
    isa_guard guard;
    const int64_t n_rows = 21, n = 64;
    std::vector<uint8_t> wq(row_bytes(ggml_type::q8_0, n) * n_rows);
    std::mt19937 rng(7);
    for (int64_t r = 0; r < n_rows; ++r)
        for (int b = 0; b < 2; ++b) {
            uint8_t* blk = wq.data() + r * 68 + b * 34;
            const uint16_t d = fp32_to_fp16(0.01f * float(r + 1));
            std::memcpy(blk, &d, 2);
            for (int i = 0; i < 32; ++i) blk[2 + i] = uint8_t(int8_t(i % 3 == 0 ? -128 : int(rng() % 255) - 127));
        }
    std::vector<float> x(size_t(3 * n));
    for (int64_t i = 0; i < n; ++i) {
        x[size_t(i)] = i < 32 ? 0.0f : float(int(i % 5) - 2);  // column 0: a zero block
        x[size_t(n + i)] = i % 2 ? 1.0f : -1.0f;                 // column 1: exactly representable
        x[size_t(2 * n + i)] = 1e-30f * float(i - 30);           // column 2: tiny
    }
    std::vector<float> ref(size_t(3 * n_rows));
    matmul_reference(ggml_type::q8_0, wq.data(), n_rows, n, x.data(), 3, ref.data());
    auto m = packed_matrix::pack(ggml_type::q8_0, wq, n_rows, n);
    REQUIRE(m);
    for (isa_level isa : isa_levels()) {
        set_active_isa(isa);
        INFO("isa " << isa_name(isa));
        activations a;
        a.prepare(ggml_type::q8_0, x.data(), 3, n, n);
        std::vector<float> y(size_t(3 * n_rows), nan_f);
        m->multiply(a, 0, n_rows, y.data(), n_rows);
        for (int j = 0; j < 3; ++j) CHECK(norm_err(y.data() + j * n_rows, ref.data() + j * n_rows, n_rows) <= 2e-2);
        // Column 1 is exact in 8 bits: the result is exact up to float rounding of the scales.
        CHECK(norm_err(y.data() + n_rows, ref.data() + n_rows, n_rows) <= 1e-6);
    }
}

TEST_CASE("pack rejects what it cannot compute", "[kernels]") {
    std::vector<uint8_t> bytes(34 * 2);
    CHECK_FALSE(packed_matrix::pack(ggml_type::q8_1, bytes, 1, 64));      // no kernel for the type
    CHECK_FALSE(packed_matrix::pack(ggml_type::q8_0, bytes, 1, 48));      // not a multiple of 32
    CHECK_FALSE(packed_matrix::pack(ggml_type::q8_0, bytes, 2, 64));      // wrong span size
    CHECK(packed_matrix::pack(ggml_type::q8_0, bytes, 1, 64).has_value());
    const auto m = packed_matrix::pack(ggml_type::q8_0, bytes, 1, 64);
    CHECK(m->bytes() >= bytes.size());
}

namespace {
double max_rel(const std::vector<float>& y, const std::vector<float>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < y.size(); ++i) {
        if (!std::isfinite(y[i])) return std::numeric_limits<double>::infinity();
        num = std::max(num, std::fabs(double(y[i]) - double(ref[i])));
        den = std::max(den, std::fabs(double(ref[i])));
    }
    return den > 0 ? num / den : num;
}
}  // namespace

TEST_CASE("row operations match their references", "[kernels]") {
    isa_guard guard;
    std::mt19937 rng(99);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto randv = [&](size_t n, float scale = 1.0f) {
        std::vector<float> v(n);
        for (auto& e : v) e = nd(rng) * scale;
        return v;
    };
    for (isa_level isa : isa_levels()) {
        set_active_isa(isa);
        INFO("isa " << isa_name(isa));
        for (int n : {1, 7, 64, 896, 1001}) {
            INFO("n " << n);
            const auto x = randv(size_t(n), 3.0f), w = randv(size_t(n));
            std::vector<float> y(size_t(n), nan_f), r(static_cast<size_t>(n));
            rmsnorm(x.data(), w.data(), n, 1e-6f, y.data());
            ref::rmsnorm(x.data(), w.data(), n, 1e-6f, r.data());
            CHECK(max_rel(y, r) <= 1e-5);
            // The same row in another buffer, at another alignment: bit for bit the same.
            std::vector<float> x2(size_t(n) + 3), y2(size_t(n) + 3, nan_f);
            std::copy(x.begin(), x.end(), x2.begin() + 3);
            rmsnorm(x2.data() + 3, w.data(), n, 1e-6f, y2.data() + 3);
            CHECK(std::memcmp(y.data(), y2.data() + 3, size_t(n) * 4) == 0);

            const auto g = randv(size_t(n), 4.0f), u = randv(size_t(n));
            swiglu(g.data(), u.data(), n, y.data());
            ref::swiglu(g.data(), u.data(), n, r.data());
            CHECK(max_rel(y, r) <= 1e-5);
        }
        for (rope_style style : {rope_style::normal, rope_style::neox})
            for (int n_rot : {64, 32, 2})
                for (int32_t pos : {0, 1, 17, 4095, 30000}) {
                    rope_params p;
                    p.head_dim = 64;
                    p.n_rot = n_rot;
                    p.base = 1000000.0f;
                    p.freq_scale = pos == 17 ? 0.25f : 1.0f;
                    p.style = style;
                    INFO("rope style " << int(style) << " n_rot " << n_rot << " pos " << pos);
                    const auto x = randv(size_t(3 * 64));
                    std::vector<float> y = x, r = x;
                    rope(y.data(), 3, pos, p);
                    ref::rope(r.data(), 3, pos, p);
                    CHECK(max_rel(y, r) <= 1e-5);
                    // Dimensions beyond n_rot are untouched.
                    for (int h = 0; h < 3; ++h)
                        for (int i = n_rot; i < 64; ++i) CHECK(y[size_t(h * 64 + i)] == x[size_t(h * 64 + i)]);
                    if (pos == 0) CHECK(std::memcmp(y.data(), x.data(), y.size() * 4) == 0);
                }
        // Hand-checked rotation: normal style, pos 1, n_rot 2 rotates (x0, x1) by exactly 1 radian.
        {
            rope_params p;
            p.head_dim = 4;
            p.n_rot = 2;
            std::vector<float> v{1.0f, 0.0f, 5.0f, 6.0f};
            rope(v.data(), 1, 1, p);
            CHECK(v[0] == Approx(std::cos(1.0)).epsilon(1e-6));
            CHECK(v[1] == Approx(std::sin(1.0)).epsilon(1e-6));
            CHECK(v[2] == 5.0f);
        }
        struct att {
            int n_head, n_head_kv, head_dim, n_kv;
        };
        for (const att& c : {att{4, 2, 64, 1}, att{4, 2, 64, 37}, att{14, 2, 64, 70}, att{3, 3, 40, 9}, att{2, 1, 7, 5}}) {
            INFO("attention " << c.n_head << "/" << c.n_head_kv << " x " << c.head_dim << " over " << c.n_kv);
            const int64_t kv_stride = int64_t(c.n_head_kv) * c.head_dim + 5;  // padded rows
            const auto q = randv(size_t(c.n_head * c.head_dim), 2.0f);
            const auto k = randv(size_t(c.n_kv * kv_stride), 2.0f), v = randv(size_t(c.n_kv * kv_stride));
            std::vector<float> y(size_t(c.n_head * c.head_dim), nan_f), r(y.size()), scratch(size_t(c.n_kv), nan_f);
            const float scale = 1.0f / std::sqrt(float(c.head_dim));
            attention(q.data(), k.data(), v.data(), kv_stride, c.n_kv, c.n_head, c.n_head_kv, c.head_dim, scale, y.data(),
                      scratch.data());
            ref::attention(q.data(), k.data(), v.data(), kv_stride, c.n_kv, c.n_head, c.n_head_kv, c.head_dim, scale,
                           r.data(), scratch.data());
            CHECK(max_rel(y, r) <= 1e-5);
            // Large scores: the softmax must stay finite (max subtraction).
            std::vector<float> y2(y.size(), nan_f);
            attention(q.data(), k.data(), v.data(), kv_stride, c.n_kv, c.n_head, c.n_head_kv, c.head_dim, 500.0f,
                      y2.data(), scratch.data());
            ref::attention(q.data(), k.data(), v.data(), kv_stride, c.n_kv, c.n_head, c.n_head_kv, c.head_dim, 500.0f,
                           r.data(), scratch.data());
            CHECK(max_rel(y2, r) <= 1e-4);
        }
    }
}
