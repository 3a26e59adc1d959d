// Key/value cache of one sequence: for every layer, the keys and values of positions [0, size()).
//
// Layout: k(layer, pos) points at n_embd_kv floats (n_head_kv heads of head_dim, head-major); v likewise.
// truncate(n) rolls the sequence back to its first n positions (speculative rollback, prefix reuse).
// Not thread-safe: owned by one engine thread.
#pragma once

#include "inference/model.h"

#include <cstdint>
#include <vector>

namespace spark {

class kv_cache {
public:
    kv_cache(const model_hparams& hp, int32_t n_ctx)
        : n_layer_(hp.n_layer), n_ctx_(n_ctx), width_(hp.n_embd_kv()),
          k_(size_t(hp.n_layer) * size_t(n_ctx) * size_t(width_)),
          v_(k_.size()) {}

    int32_t capacity() const { return n_ctx_; }
    int32_t size() const { return size_; }
    int32_t width() const { return width_; }
    void truncate(int32_t n) { size_ = n < size_ ? (n < 0 ? 0 : n) : size_; }
    void clear() { size_ = 0; }
    // Called by the forward pass after writing positions [size(), size() + n).
    void commit(int32_t n) { size_ += n; }

    float* k(int32_t layer, int32_t pos) { return k_.data() + offset(layer, pos); }
    float* v(int32_t layer, int32_t pos) { return v_.data() + offset(layer, pos); }
    const float* k(int32_t layer, int32_t pos) const { return k_.data() + offset(layer, pos); }
    const float* v(int32_t layer, int32_t pos) const { return v_.data() + offset(layer, pos); }

private:
    size_t offset(int32_t layer, int32_t pos) const {
        return (size_t(layer) * size_t(n_ctx_) + size_t(pos)) * size_t(width_);
    }
    int32_t n_layer_, n_ctx_, width_;
    int32_t size_ = 0;
    std::vector<float> k_, v_;
};

}  // namespace spark
