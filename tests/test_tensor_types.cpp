// Tensor types: half/bfloat conversions, quantise/dequantise consistency, and dequantisation checked against
// values computed independently (tools/reference/make_golden.py --dequant) from the committed quant_types.gguf.
#include "inference/gguf.h"
#include "accel/tensor_types.h"
#include "harness/test_data.h"

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

using namespace spark;

namespace {

const ggml_type quantised_types[] = {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1,
                                     ggml_type::q8_0, ggml_type::q2_k, ggml_type::q3_k, ggml_type::q4_k,
                                     ggml_type::q5_k, ggml_type::q6_k};

// Offsets of the fp16 scale fields in a block, so random blocks can be given finite, modest scales.
std::vector<size_t> half_fields(ggml_type t) {
    switch (t) {
        case ggml_type::q4_0: case ggml_type::q5_0: case ggml_type::q8_0: return {0};
        case ggml_type::q4_1: case ggml_type::q5_1: case ggml_type::q4_k: case ggml_type::q5_k: return {0, 2};
        case ggml_type::q2_k: return {80, 82};
        case ggml_type::q3_k: return {108};
        case ggml_type::q6_k: return {208};
        default: return {};
    }
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// The fixture: for each quantised type, a tensor quantised from random normals ("<T>.quantized") and one made of
// random bytes with sane scales ("<T>.random", exercising every bit pattern of the packed fields); plus F16/BF16.
std::vector<uint8_t> make_quant_fixture() {
    gguf::gguf_writer w;
    w.set_string("general.description", "spark-ls dequantisation fixture (tests/test_tensor_types.cpp)");
    const int64_t n_cols = 512, n_rows = 2;
    const auto values = random_floats(size_t(n_cols * n_rows), 7);
    for (ggml_type t : quantised_types) {
        const std::string name(type_name(t));
        REQUIRE(w.add_tensor_f32(name + ".quantized", {uint64_t(n_cols), uint64_t(n_rows)}, t, values));
        std::mt19937 rng(uint32_t(t) * 977u);
        std::vector<uint8_t> bytes(row_bytes(t, uint64_t(n_cols)) * n_rows);
        for (auto& b : bytes) b = uint8_t(rng());
        const size_t block = traits(t).type_size;
        for (size_t at = 0; at < bytes.size(); at += block)
            for (size_t f : half_fields(t)) {
                const uint16_t h = fp32_to_fp16(std::ldexp(float(rng() % 1000 + 1) / 1000.0f, -int(rng() % 8)));
                std::memcpy(&bytes[at + f], &h, 2);
            }
        REQUIRE(w.add_tensor(name + ".random", {uint64_t(n_cols), uint64_t(n_rows)}, t, bytes));
    }
    REQUIRE(w.add_tensor_f32("F16.quantized", {uint64_t(n_cols), uint64_t(n_rows)}, ggml_type::f16, values));
    REQUIRE(w.add_tensor_f32("BF16.quantized", {uint64_t(n_cols), uint64_t(n_rows)}, ggml_type::bf16, values));
    return w.serialize();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("tensor types: fp16 round trips every half exactly", "[types]") {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_fp32(uint16_t(h));
        if (std::isnan(f)) continue;
        REQUIRE(fp32_to_fp16(f) == h);
    }
    CHECK(fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(fp16_to_fp32(0xc000) == -2.0f);
    CHECK(fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(fp32_to_fp16(65520.0f) == 0x7c00);                  // rounds to infinity
    CHECK(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie rounds to even
    CHECK(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
    CHECK(std::isnan(fp16_to_fp32(fp32_to_fp16(NAN))));
}

TEST_CASE("tensor types: bf16 rounds to nearest even", "[types]") {
    CHECK(bf16_to_fp32(fp32_to_bf16(1.0f)) == 1.0f);
    CHECK(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even stays
    CHECK(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
    CHECK(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
}

TEST_CASE("tensor types: quantise then dequantise stays within each type's error", "[types]") {
    // Normalised RMS error bounds for N(0,1) data; a wrong nibble order, scale or offset blows far past them.
    const std::pair<ggml_type, double> bounds[] = {
        {ggml_type::f16, 1e-3},  {ggml_type::bf16, 5e-3}, {ggml_type::q8_0, 0.01}, {ggml_type::q6_k, 0.03},
        {ggml_type::q5_0, 0.05}, {ggml_type::q5_1, 0.05}, {ggml_type::q5_k, 0.05}, {ggml_type::q4_0, 0.1},
        {ggml_type::q4_1, 0.1},  {ggml_type::q4_k, 0.1},  {ggml_type::q3_k, 0.25}, {ggml_type::q2_k, 0.5},
    };
    const int64_t n = 256 * 8;
    const auto x = random_floats(size_t(n), 11);
    for (auto [t, bound] : bounds) {
        INFO("type " << type_name(t));
        std::vector<uint8_t> q(row_bytes(t, uint64_t(n)));
        std::vector<float> y(size_t(n), NAN);
        quantize_row(t, x.data(), q.data(), n);
        dequantize_row(t, q.data(), y.data(), n);
        double err = 0, ref = 0;
        for (int64_t i = 0; i < n; ++i) {
            err += (y[size_t(i)] - x[size_t(i)]) * double(y[size_t(i)] - x[size_t(i)]);
            ref += double(x[size_t(i)]) * x[size_t(i)];
        }
        CHECK(std::sqrt(err / ref) < bound);
    }
}

TEST_CASE("tensor types: traits and unsupported types", "[types]") {
    CHECK(traits(ggml_type::q4_k).block_size == 256);
    CHECK(traits(ggml_type::q4_k).type_size == 144);
    CHECK(row_bytes(ggml_type::q8_0, 64) == 68);
    CHECK(find_type_traits(4) == nullptr);  // ids 4 and 5 were retired
    REQUIRE(find_type_traits(16));
    CHECK_FALSE(find_type_traits(16)->supported);  // IQ2_XXS: known, not computed
    CHECK(find_type_traits(16)->name == "IQ2_XXS");
}

TEST_CASE("tensor types: dequantisation equals the independent reference", "[types]") {
    const std::string fixture = test::data_path("quant_types.gguf");
    const auto generated = make_quant_fixture();
    if (test::regenerate()) {
        std::ofstream(fixture, std::ios::binary).write(reinterpret_cast<const char*>(generated.data()),
                                                       std::streamsize(generated.size()));
    }
    // The committed fixture is exactly what the generator makes, so it can always be rebuilt.
    REQUIRE(read_bytes(fixture) == generated);

    auto q = gguf::gguf_file::open(fixture);
    REQUIRE(q);
    auto golden = gguf::gguf_file::open(test::data_path("quant_types.golden.gguf"));
    REQUIRE(golden);
    REQUIRE(q->tensors().size() == golden->tensors().size());
    for (const auto& t : q->tensors()) {
        INFO("tensor " << t.name);
        const auto* g = golden->find_tensor(t.name);
        REQUIRE(g);
        REQUIRE(g->type == ggml_type::f32);
        REQUIRE(g->n_elements == t.n_elements);
        std::vector<float> ours(t.n_elements), ref(t.n_elements);
        dequantize_row(t.type, q->tensor_data(t).data(), ours.data(), int64_t(t.n_elements));
        std::memcpy(ref.data(), golden->tensor_data(*g).data(), ref.size() * 4);
        double max_err = 0, max_ref = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
            max_err = std::max(max_err, std::fabs(double(ours[i]) - ref[i]));
            max_ref = std::max(max_ref, std::fabs(double(ref[i])));
        }
        REQUIRE(max_ref > 0);
        CHECK(max_err <= 1e-6 * max_ref);
    }
}
