// The scalar reference forward pass, in the style of llama2.c: readable loops, every buffer's shape commented.
// It is the oracle every faster path is tested against; its arithmetic favours accuracy (double accumulators)
// over speed. Output rows of each matrix product are computed in parallel, each by one fixed sequential loop,
// so results do not depend on the number of threads.
#pragma once

#include "inference/kv_cache.h"
#include "inference/model.h"

#include <span>
#include <vector>

namespace spark {

// Evaluates `tokens` at positions cache.size() .. cache.size() + n - 1, appends their keys and values to the cache
// and writes logits: n rows of hparams().n_vocab floats when all_logits, else only the last position's row.
// Errors (nothing is appended): a token id outside [0, n_vocab), or the cache capacity would be exceeded.
// Call from one thread per cache.
result<void> forward_reference(const model& m, kv_cache& cache, std::span<const token_id> tokens,
                               std::vector<float>& logits, bool all_logits = true);

}  // namespace spark
