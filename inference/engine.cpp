#include "inference/engine.h"

#include "inference/default_models.h"
#include "inference/drafters.h"
#include "inference/forward.h"
#include "inference/model.h"

#include <algorithm>
#include <deque>
#include <thread>

namespace spark {

bool request_handle::done() const {
    std::lock_guard lock(m_);
    return result_.has_value();
}

result<generation_result> request_handle::wait() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
}

void request_handle::finish(result<generation_result> r) {
    {
        std::lock_guard lock(m_);
        result_ = std::move(r);
    }
    cv_.notify_all();
}

struct engine::impl {
    struct queued {
        engine_request req;
        std::shared_ptr<request_handle> handle;
        std::function<void(const result<generation_result>&)> done;
    };

    engine_config cfg;
    std::shared_ptr<const model> target, draft;
    accel::partition target_part, draft_part;
    std::unique_ptr<placed_model> target_placed, draft_placed;
    std::unique_ptr<model_sequence> target_seq;
    std::unique_ptr<model_drafter> model_d;
    known_drafter known_d;
    suffix_drafter suffix_d;
    ngram_drafter ngram_d;
    std::unique_ptr<speculative_decoder> decoder;

    std::mutex m;
    std::condition_variable cv;
    std::deque<queued> queues[2];  // by priority
    bool stopping = false;
    std::shared_ptr<request_handle> running;
    std::thread thread;

    impl(const engine_config& c)
        : cfg(c), target_part("target", std::max(1, c.target_workers)), draft_part("draft", std::max(1, c.draft_workers)) {}

    void serve() {
        for (;;) {
            queued q;
            {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return stopping || !queues[0].empty() || !queues[1].empty(); });
                if (stopping) return;
                auto& from = queues[0].empty() ? queues[1] : queues[0];
                q = std::move(from.front());
                from.pop_front();
                running = q.handle;
            }
            result<generation_result> r = run(q);
            if (q.done) q.done(r);
            q.handle->finish(std::move(r));
            std::lock_guard lock(m);
            running.reset();
        }
    }

    result<generation_result> run(queued& q) {
        if (q.handle->cancelled()) {  // cancelled while queued: nothing runs
            generation_result r;
            r.reason = stop_reason::cancelled;
            r.stats.prompt_tokens = int32_t(q.req.prompt.size());
            return r;
        }
        generation_params gp = q.req.params;
        gp.cancel = &q.handle->cancel_;
        const draft_context ctx{q.req.prompt, q.req.suffix, q.req.known, q.req.extra};
        if (!cfg.reuse_prefix) target_seq->truncate(0);
        return decoder->generate(ctx, gp);
    }
};

engine::engine(std::unique_ptr<impl> p) : impl_(std::move(p)) {
    impl_->thread = std::thread([this] { impl_->serve(); });
}

engine::~engine() {
    {
        std::lock_guard lock(impl_->m);
        impl_->stopping = true;
        if (impl_->running) impl_->running->cancel();
        for (auto& qu : impl_->queues)
            for (auto& q : qu) q.handle->cancel();
    }
    impl_->cv.notify_all();
    if (impl_->thread.joinable()) impl_->thread.join();
    // Whatever never ran finishes as cancelled, so no waiter hangs.
    for (auto& qu : impl_->queues)
        for (auto& q : qu) {
            generation_result r;
            r.reason = stop_reason::cancelled;
            q.handle->finish(std::move(r));
        }
}

result<std::unique_ptr<engine>> engine::create(std::shared_ptr<const model> target, std::shared_ptr<const model> draft,
                                               const engine_config& cfg) {
    if (!target) return fail("engine: no target model");
    auto p = std::make_unique<impl>(cfg);
    p->target = std::move(target);
    p->draft = std::move(draft);
    const int32_t n_ctx = std::max<int32_t>(16, std::min<int32_t>(cfg.n_ctx, p->target->hparams().n_ctx_train));
    p->cfg.n_ctx = n_ctx;
    auto tp = placed_model::place(p->target, p->target_part);
    if (!tp) return std::unexpected(tp.error());
    p->target_placed = std::move(*tp);
    p->target_seq = std::make_unique<model_sequence>(*p->target_placed, n_ctx);
    std::vector<drafter*> drafters;
    if (cfg.known) drafters.push_back(&p->known_d);
    if (cfg.suffix) drafters.push_back(&p->suffix_d);
    if (cfg.ngram) drafters.push_back(&p->ngram_d);
    if (p->draft) {
        auto dp = placed_model::place(p->draft, p->draft_part);
        if (!dp) return std::unexpected(dp.error());
        p->draft_placed = std::move(*dp);
        auto md = model_drafter::create(*p->draft_placed, *p->target, n_ctx);
        if (!md) return std::unexpected(md.error());
        p->model_d = std::move(*md);
        drafters.push_back(p->model_d.get());
    }
    p->decoder = std::make_unique<speculative_decoder>(*p->target_seq, &p->target->vocab(), drafters);
    p->decoder->set_concurrent_drafting(cfg.concurrent_draft && p->model_d);
    return std::unique_ptr<engine>(new engine(std::move(p)));
}

result<std::unique_ptr<engine>> engine::load(const engine_config& cfg, const progress_fn& progress) {
    auto report = [&](std::string_view what, double f) {
        if (progress) progress(what, f);
    };
    auto path_or_default = [](const std::string& p, const char* file) -> result<std::string> {
        if (!p.empty() && p != "default") return p;
        return find_default_model(file);
    };
    auto tpath = path_or_default(cfg.target_path, default_target_model);
    if (!tpath) return std::unexpected(tpath.error());
    report("loading the target model", 0.0);
    auto target = model::load(*tpath);
    if (!target) return std::unexpected(target.error());
    std::shared_ptr<const model> draft;
    if (!cfg.draft_path.empty()) {
        auto dpath = path_or_default(cfg.draft_path, default_draft_model);
        if (!dpath) return std::unexpected(dpath.error());
        report("loading the draft model", 0.4);
        auto d = model::load(*dpath);
        if (!d) return std::unexpected(d.error());
        draft = *d;
    }
    report("placing the weights on the accelerator", 0.6);
    auto e = create(*target, draft, cfg);
    if (e) report("ready", 1.0);
    return e;
}

std::shared_ptr<request_handle> engine::submit(engine_request r,
                                               std::function<void(const result<generation_result>&)> done) {
    auto h = std::make_shared<request_handle>();
    {
        std::lock_guard lock(impl_->m);
        impl_->queues[r.priority == request_priority::interactive ? 0 : 1].push_back(
            {std::move(r), h, std::move(done)});
    }
    impl_->cv.notify_one();
    return h;
}

const model& engine::target() const { return *impl_->target; }
bool engine::has_draft() const { return impl_->draft != nullptr; }
int32_t engine::context_size() const { return impl_->cfg.n_ctx; }

}  // namespace spark
