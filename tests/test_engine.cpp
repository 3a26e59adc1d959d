// The engine: one owner thread, a priority queue, cancellation and time budgets, on the embedded default models.
#include "harness/default_models.h"
#include "inference/default_models.h"
#include "inference/engine.h"
#include "inference/model.h"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>

using namespace spark;
using spark::test::load_default;

namespace {

// An engine on the default target (and draft, if given) with a context of n_ctx.
std::unique_ptr<engine> start_engine(std::shared_ptr<const model> target, std::shared_ptr<const model> draft,
                                     int32_t n_ctx) {
    engine_config cfg;
    cfg.n_ctx = n_ctx;
    auto e = engine::create(std::move(target), std::move(draft), cfg);
    REQUIRE(e);
    return std::move(*e);
}

engine_request code_request(const tokenizer& tok, const std::string& prefix, int max_tokens) {
    engine_request r;
    r.prompt = tok.tokenize(prefix, {.add_bos = true});
    r.params.max_tokens = max_tokens;
    r.params.stop_tokens = {tok.special().eos};
    return r;
}

// A gate the engine thread waits on inside a callback, so the test controls what is queued meanwhile.
struct gate {
    std::mutex m;
    std::condition_variable cv;
    bool entered = false, open = false;
    void enter_and_wait() {
        std::unique_lock lock(m);
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return open; });
    }
    void wait_entered() {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return entered; });
    }
    void release() {
        std::lock_guard lock(m);
        open = true;
        cv.notify_all();
    }
};

}  // namespace

TEST_CASE("engine: serves requests with the same output as a fresh decoder, reusing the prompt prefix", "[engine]") {
    auto target = load_default(default_target_model);
    auto draft = load_default(default_draft_model);
    auto e = start_engine(target, draft, 512);
    CHECK(e->has_draft());
    const auto& tok = target->vocab();
    engine_config plain_cfg;
    plain_cfg.n_ctx = 512;
    plain_cfg.ngram = plain_cfg.suffix = plain_cfg.known = false;
    auto plain = engine::create(target, nullptr, plain_cfg);
    REQUIRE(plain);

    const std::string code = "import os\n\ndef read_lines(path):\n    with open(path) as f:\n";
    auto a = e->submit(code_request(tok, code, 24))->wait();
    auto b = (*plain)->submit(code_request(tok, code, 24))->wait();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->tokens == b->tokens);
    CHECK(a->text == b->text);
    CHECK(a->stats.steps <= b->stats.steps);
    // The user typed on: only the new tokens are evaluated.
    auto c = e->submit(code_request(tok, code + "        return", 24))->wait();
    REQUIRE(c);
    CHECK(c->stats.prompt_reused > 10);
    CHECK(c->stats.prompt_evaluated < c->stats.prompt_tokens - 10);

    // The naive baseline (reuse_prefix off) evaluates every prompt whole, with the same output.
    engine_config naive_cfg = plain_cfg;
    naive_cfg.reuse_prefix = false;
    auto naive = engine::create(target, nullptr, naive_cfg);
    REQUIRE(naive);
    auto n1 = (*naive)->submit(code_request(tok, code, 24))->wait();
    auto n2 = (*naive)->submit(code_request(tok, code + "        return", 24))->wait();
    REQUIRE(n1);
    REQUIRE(n2);
    CHECK(n1->tokens == b->tokens);
    CHECK(n2->tokens == c->tokens);
    CHECK(n2->stats.prompt_reused == 0);
    CHECK(n2->stats.prompt_evaluated == n2->stats.prompt_tokens);
}

TEST_CASE("engine: interactive requests go before background ones and cancelled queued requests never run",
          "[engine]") {
    auto target = load_default(default_target_model);
    auto e = start_engine(target, nullptr, 256);
    const auto& tok = target->vocab();
    gate g;
    auto first = code_request(tok, "def first():\n", 4);
    bool held = false;
    first.params.on_text = [&](std::string_view) {
        if (!held) held = true, g.enter_and_wait();
    };
    std::vector<std::string> order;
    std::mutex om;
    auto record = [&](std::string name) {
        return [&, name](const result<generation_result>&) {
            std::lock_guard lock(om);
            order.push_back(name);
        };
    };
    auto h0 = e->submit(std::move(first), record("first"));
    g.wait_entered();  // the engine thread is inside the first request now
    auto bg = code_request(tok, "def background():\n", 4);
    bg.priority = request_priority::background;
    auto h1 = e->submit(bg, record("background"));
    auto h2 = e->submit(code_request(tok, "def interactive():\n", 4), record("interactive"));
    auto h3 = e->submit(code_request(tok, "def dropped():\n", 4), record("dropped"));
    h3->cancel();
    g.release();
    REQUIRE(h1->wait());
    auto r3 = h3->wait();
    REQUIRE(r3);
    CHECK(r3->reason == stop_reason::cancelled);
    CHECK(r3->stats.steps == 0);
    std::lock_guard lock(om);
    CHECK(order == std::vector<std::string>{"first", "interactive", "dropped", "background"});
}

TEST_CASE("engine: a running request is cancelled within one step and the budget ends a request", "[engine]") {
    auto target = load_default(default_target_model);
    auto e = start_engine(target, nullptr, 512);
    const auto& tok = target->vocab();
    auto req = code_request(tok, "class Parser:\n    def __init__(self):\n", 200);
    req.params.stop_tokens.clear();
    std::shared_ptr<request_handle> h;
    std::mutex hm;
    int pieces = 0;
    std::string streamed;
    req.params.on_text = [&](std::string_view piece) {
        streamed += piece;
        if (++pieces == 2) {
            std::lock_guard lock(hm);
            h->cancel();  // as the LSP layer does when the user types on
        }
    };
    {
        std::lock_guard lock(hm);
        h = e->submit(req);
    }
    auto r = h->wait();
    REQUIRE(r);
    CHECK(r->reason == stop_reason::cancelled);
    CHECK(pieces == 2);
    CHECK(r->text == streamed);
    // The next request is served in full.
    auto next = code_request(tok, "def parse(text):\n", 8);
    next.params.stop_tokens.clear();
    auto n = e->submit(next)->wait();
    REQUIRE(n);
    CHECK(n->reason == stop_reason::max_tokens);
    CHECK(n->stats.generated == 8);
    // A budget that is over before the first step: the request ends by its budget, not by its length.
    auto late = code_request(tok, "def late():\n", 200);
    late.params.stop_tokens.clear();
    late.params.time_budget = std::chrono::duration<double>(1e-9);
    auto l = e->submit(late)->wait();
    REQUIRE(l);
    CHECK(l->reason == stop_reason::time_budget);
    CHECK(l->stats.generated < 200);
}

TEST_CASE("engine: a draft model with another vocabulary is refused with a clear error", "[engine]") {
    auto target = load_default(default_target_model);
    auto path = find_default_model(default_target_model);
    REQUIRE(path);
    // tiny-llama's vocabulary differs from the default models'.
    auto other = model::load(std::string(SPARK_TEST_DATA) + "/tiny-llama.gguf");
    REQUIRE(other);
    auto e = engine::create(target, *other, engine_config{});
    REQUIRE_FALSE(e);
    CHECK(e.error().message.find("vocabulary") != std::string::npos);
}
