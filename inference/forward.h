// The production forward pass: a model's weights placed on an accelerator partition (packed for the fast kernels,
// split by output rows into per-worker shards) and the transformer evaluated with a handful of launches per layer.
//
// Same contract as forward_reference (positions cache.size() .., keys/values appended, logits out), and two extra
// guarantees the speculative decoder relies on: the logits of a position are bitwise identical whether it is
// evaluated alone or inside a batch of up to accel::max_batch positions, and for any worker count.
// Thread contract: one thread drives a placed_model at a time (the partition's owner).
#pragma once

#include "accel/device.h"
#include "accel/kernels.h"
#include "inference/kv_cache.h"
#include "inference/model.h"

#include <atomic>
#include <memory>
#include <span>
#include <vector>

namespace spark {

class placed_model {
public:
    // Packs every weight matrix for the partition's kernels. Errors: a weight type the kernels lack.
    static result<std::unique_ptr<placed_model>> place(std::shared_ptr<const model> m, accel::partition& p);
    ~placed_model();

    const model& source() const { return *model_; }
    accel::partition& where() const { return *partition_; }
    uint64_t weight_bytes() const;  // packed bytes one decode step streams

    // Evaluates tokens (any count; batches of more than accel::max_batch run as consecutive chunks) and writes the
    // logits of every position (all_logits) or of the last one. Errors as forward_reference.
    result<void> forward(kv_cache& cache, std::span<const token_id> tokens, std::vector<float>& logits,
                         bool all_logits = true);

    // On (the default), each pass asks the partition's worker_governor whether to use all workers or one, and
    // reports its time; off, every pass uses all workers (tests that must exercise the parallel path).
    void set_adaptive_workers(bool on) { adaptive_ = on; }
    // A flag checked between layers: when it is set, forward stops and returns the error "cancelled" with the
    // cache unchanged (positions are committed only when a chunk completes). Null: never.
    void set_cancel(const std::atomic<bool>* flag) { cancel_ = flag; }

private:
    struct impl;
    placed_model() = default;
    std::shared_ptr<const model> model_;
    accel::partition* partition_ = nullptr;
    std::unique_ptr<impl> impl_;
    bool adaptive_ = true;
    const std::atomic<bool>* cancel_ = nullptr;
};

}  // namespace spark
