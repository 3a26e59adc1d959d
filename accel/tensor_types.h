// Tensor element types as GGUF stores them (ggml's numbering), and their scalar reference dequantisation.
//
// Block formats (all little-endian; "d" and "m" are IEEE half floats unless noted):
//   F32, F16, BF16      one value per element
//   Q4_0   32 elems, 18 B: d, 16 B of 4-bit q (low nibbles = elems 0..15, high = 16..31); x = d*(q-8)
//   Q4_1   32 elems, 20 B: d, m, 16 B of nibbles;                                         x = d*q + m
//   Q5_0   32 elems, 22 B: d, 4 B high bits, 16 B nibbles;                                x = d*(q-16)
//   Q5_1   32 elems, 24 B: d, m, 4 B high bits, 16 B nibbles;                             x = d*q + m
//   Q8_0   32 elems, 34 B: d, 32 signed bytes;                                            x = d*q
//   Q2_K .. Q6_K  256-element super-blocks with 6- or 8-bit sub-block scales (see tensor_types.cpp)
// A type that GGUF knows but spark-ls does not compute with (Q8_1, Q8_K, the IQ types, ...) is "unsupported":
// loading a model that uses one fails with an error naming the tensor and the type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spark {

enum class ggml_type : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    bf16 = 30,
};

struct type_traits {
    std::string_view name;   // "F32", "Q4_K", ... as llama.cpp prints them
    uint32_t block_size;     // elements per block
    uint32_t type_size;      // bytes per block
    bool supported;          // spark-ls can dequantise (and compute with) it
};

// Traits for a raw type id from a file; nullptr when the id is not a known ggml type.
const type_traits* find_type_traits(uint32_t raw_type);
// Traits for a known type (never nullptr).
const type_traits& traits(ggml_type t);
inline std::string_view type_name(ggml_type t) { return traits(t).name; }

// Bytes taken by a row of n elements; n must be a multiple of the block size.
uint64_t row_bytes(ggml_type t, uint64_t n);

// Half and bfloat16 conversions (round to nearest even; NaN stays NaN).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// Q4_K / Q5_K pack eight 6-bit (scale, min) pairs into 12 bytes; j in [0, 8).
void get_scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m);

// Scalar reference: decode n elements (a multiple of the block size) starting at a block boundary.
// Thread-safe; touches only src[0 .. row_bytes(t, n)) and dst[0 .. n).
void dequantize_row(ggml_type t, const void* src, float* dst, int64_t n);

// Reference quantisation of n floats (a multiple of the block size) into dst (row_bytes(t, n) bytes).
// Round-to-nearest with per-block scales from the block's absolute maximum (K-types: per sub-block scales and
// mins, quantised to 6 bits). Good enough for test models and exports; not an accuracy-optimised quantiser.
void quantize_row(ggml_type t, const float* src, void* dst, int64_t n);

}  // namespace spark
