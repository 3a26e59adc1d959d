// The engine: the target (and optional draft) model placed on their partitions, and one owner thread that serves
// generation requests from a priority queue with the speculative decoder (DESIGN §3, §6).
//
// Requests are interactive (a keystroke's completion) or background (a prefetch after an accept); interactive ones
// always go first, FIFO within a priority. Each request has a cancel flag, checked between draft/verify steps and
// between prompt chunks; a request cancelled while queued finishes as cancelled without running. The target's KV
// state survives across requests, so a prompt that extends the previous one evaluates only the new tokens.
//
// Thread contract: submit() and the handles may be used from any thread; callbacks (on_text, stop_criterion,
// done) run on the engine thread and must not block for long.
#pragma once

#include "inference/speculative.h"
#include "support/result.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace spark {

class model;

struct engine_config {
    std::string target_path;     // GGUF; empty: the embedded default target
    std::string draft_path;      // GGUF; empty: no draft model; "default": the embedded default draft
    int target_workers = 2;
    int draft_workers = 1;
    int32_t n_ctx = 4096;        // clamped to the target's training context
    bool ngram = true;           // n-gram lookup over the prompt and the request's extra texts
    bool suffix = true;          // the FIM suffix drafter
    bool known = true;           // the caller's known continuation
    bool concurrent_draft = false;  // the draft model drafts while the target verifies (speculative.h)
    bool reuse_prefix = true;    // false: every request evaluates its whole prompt (the naive baseline benchmarks
                                 // compare against)
};

enum class request_priority { interactive = 0, background = 1 };

struct engine_request {
    std::vector<token_id> prompt, suffix, known;
    std::vector<std::vector<token_id>> extra;
    generation_params params;    // params.cancel is replaced by the handle's flag
    request_priority priority = request_priority::interactive;
};

class request_handle {
public:
    void cancel() { cancel_.store(true); }
    bool cancelled() const { return cancel_.load(); }
    bool done() const;
    // Blocks until the request has finished (served, failed or cancelled).
    result<generation_result> wait();

private:
    friend class engine;
    std::atomic<bool> cancel_{false};
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::optional<result<generation_result>> result_;
    void finish(result<generation_result> r);
};

class engine {
public:
    using progress_fn = std::function<void(std::string_view what, double fraction)>;

    // Loads the models named by cfg (reporting progress: loading, placing), places them and starts the thread.
    static result<std::unique_ptr<engine>> load(const engine_config& cfg, const progress_fn& progress = {});
    // The same with models already loaded (draft may be null). Errors: a draft whose vocabulary differs.
    static result<std::unique_ptr<engine>> create(std::shared_ptr<const model> target,
                                                  std::shared_ptr<const model> draft, const engine_config& cfg);
    ~engine();  // cancels everything queued or running and joins the thread

    // Queues a request; `done` (optional) runs on the engine thread with the result.
    std::shared_ptr<request_handle> submit(engine_request r,
                                           std::function<void(const result<generation_result>&)> done = {});

    const model& target() const;
    bool has_draft() const;
    int32_t context_size() const;

private:
    struct impl;
    explicit engine(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace spark
