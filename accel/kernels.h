// Compute kernels of the emulated accelerator: matrix x (1..16 columns) for every weight type spark-ls computes
// with, and the row operations of a transformer layer. Each fast kernel has a scalar twin that runs the same
// algorithm (same activation quantisation, same summation order per output element), and every kernel is tested
// against an independent float64 reference by normalised error.
//
// Batch invariance (the property that makes speculative decoding exactly lossless): the value written for column j
// of a product depends only on column j's input and the weights, never on how many columns are computed together or
// on which thread computes which rows. Every kernel here keeps that property for a given ISA level.
//
// Thread contract: all functions are pure (no shared mutable state); call them from any thread. packed_matrix is
// immutable after pack().
#pragma once

#include "accel/tensor_types.h"
#include "support/result.h"

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <vector>

namespace spark::accel {

constexpr int max_batch = 16;  // columns one multiply() call accepts (the verify batch)
constexpr int tile_rows = 16;  // packed rows are interleaved in tiles of this many; row shards start on a tile

// ---- instruction-set levels ----

enum class isa_level { scalar = 0, avx2 = 1 };  // avx2 means AVX2 + FMA + F16C
isa_level detected_isa();            // what this CPU supports
isa_level active_isa();              // what kernels use now (default: detected; SPARK_ISA=scalar|avx2 lowers it)
void set_active_isa(isa_level l);    // tests: clamps to detected_isa()
std::string_view isa_name(isa_level l);

namespace detail {
// Storage for packed weights: 64-byte aligned so that the kernels' 32-byte loads never split a cache line.
template <class T>
struct aligned64_allocator {
    using value_type = T;
    aligned64_allocator() = default;
    template <class U>
    aligned64_allocator(const aligned64_allocator<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
    friend bool operator==(const aligned64_allocator&, const aligned64_allocator&) { return true; }
};
}  // namespace detail

// ---- activations ----

// B columns of n floats, prepared for the dot products of one weight type:
//   F32/F16/BF16 weights: kept as f32;
//   Q8_0, Q4_0 (and other 32-blocks): quantised to 8 bits per 32-block with an f32 scale (d = max|x| / 127);
//   Q4_K, Q5_K, Q6_K (256-blocks): quantised to 8 bits per 256-block with an f32 scale and 16 block sums.
// Quantising column j depends only on column j.
class activations {
public:
    // x: n_cols columns, column j at x + j * ldx (ldx >= n). n must be a multiple of the weight type's block size.
    void prepare(ggml_type weight_type, const float* x, int n_cols, int64_t n, int64_t ldx);
    int n_cols() const { return n_cols_; }
    int64_t n() const { return n_; }
    ggml_type weight_type() const { return weight_type_; }

    // Storage, laid out as the kernels want it (kernel-private format).
    const uint8_t* column(int j) const { return buf_.data() + size_t(j) * col_bytes_; }
    size_t column_bytes() const { return col_bytes_; }

private:
    ggml_type weight_type_ = ggml_type::f32;
    int n_cols_ = 0;
    int64_t n_ = 0;
    size_t col_bytes_ = 0;
    std::vector<uint8_t> buf_;
};

// A weight matrix (n_rows rows of n_cols, ggml row-major layout in) repacked for the fast kernels:
// rows interleaved in tiles of tile_rows so that one pass over a tile's weight blocks serves all columns.
class packed_matrix {
public:
    // Errors: unsupported type, n_cols not a multiple of the block size, span of the wrong size.
    static result<packed_matrix> pack(ggml_type type, std::span<const uint8_t> rows, int64_t n_rows, int64_t n_cols);

    ggml_type type() const { return type_; }
    int64_t n_rows() const { return n_rows_; }
    int64_t n_cols() const { return n_cols_; }
    uint64_t bytes() const { return data_.size(); }  // what one full multiply streams from memory

    // y[j * ldy + r] = sum_c W[r][c] * x_j[c] for rows r in [r0, r1) and columns j < x.n_cols() (1..max_batch).
    // r0 is a multiple of tile_rows; r1 is a multiple of tile_rows or n_rows. x must be prepared for type().
    void multiply(const activations& x, int64_t r0, int64_t r1, float* y, int64_t ldy) const;

private:
    ggml_type type_ = ggml_type::f32;
    int64_t n_rows_ = 0, n_cols_ = 0;
    // Groups of 8 interleaved rows, layout in accel/matmul_kernels.h; 64-byte aligned.
    std::vector<uint8_t, detail::aligned64_allocator<uint8_t>> data_;
};

// Float64 reference: y[j * n_rows + r] = sum_c dequant(W)[r][c] * x[j * n_cols + c] with float activations.
void matmul_reference(ggml_type type, const uint8_t* rows, int64_t n_rows, int64_t n_cols, const float* x, int n_x,
                      float* y);

// ---- row operations (each has a scalar twin in namespace ref, used by the tests) ----

enum class rope_style {
    normal,  // llama: rotate adjacent pairs (x[2i], x[2i+1])
    neox,    // qwen2: rotate (x[i], x[i + n_rot/2])
};

struct rope_params {
    int head_dim = 0;
    int n_rot = 0;            // rotated dimensions per head (even, <= head_dim)
    float base = 10000.0f;
    float freq_scale = 1.0f;  // linear scaling: angle uses pos * freq_scale
    rope_style style = rope_style::normal;
};

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], i < n.
void rmsnorm(const float* x, const float* w, int n, float eps, float* out);
// Rotates the first n_rot dims of each of n_heads vectors (stride head_dim) in place for position pos.
void rope(float* x, int n_heads, int32_t pos, const rope_params& p);
// out[i] = silu(gate[i]) * up[i].
void swiglu(const float* gate, const float* up, int n, float* out);
// Attention of one query position over keys/values [0, n_kv) (the caller passes n_kv = pos + 1: causal mask).
// q: [n_head * head_dim]; key t of kv head h at k + t * kv_stride + h * head_dim (likewise v);
// query head h uses kv head h / (n_head / n_head_kv); scores scaled by `scale`; out: [n_head * head_dim].
// scratch: at least n_kv floats.
void attention(const float* q, const float* k, const float* v, int64_t kv_stride, int n_kv, int n_head,
               int n_head_kv, int head_dim, float scale, float* out, float* scratch);

namespace ref {
void rmsnorm(const float* x, const float* w, int n, float eps, float* out);
void rope(float* x, int n_heads, int32_t pos, const rope_params& p);
void swiglu(const float* gate, const float* up, int n, float* out);
void attention(const float* q, const float* k, const float* v, int64_t kv_stride, int n_kv, int n_head,
               int n_head_kv, int head_dim, float scale, float* out, float* scratch);
}  // namespace ref

}  // namespace spark::accel
