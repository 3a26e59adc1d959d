// The production forward pass on accelerator partitions: equal to the scalar reference within the kernels'
// tolerance, and bitwise batch-invariant across batch sizes 1-16 and worker counts 1-2.
#include "harness/test_data.h"
#include "inference/forward.h"
#include "inference/forward_ref.h"
#include "inference/random_model.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>

using namespace spark;
namespace fs = std::filesystem;

namespace {

double max_row_error(const std::vector<float>& a, const std::vector<float>& ref, int32_t n_vocab) {
    double worst = 0;
    for (size_t row = 0; row * size_t(n_vocab) < ref.size(); ++row) {
        double max_err = 0, max_ref = 0;
        for (int32_t i = 0; i < n_vocab; ++i) {
            const size_t k = row * size_t(n_vocab) + size_t(i);
            max_err = std::max(max_err, std::fabs(double(a[k]) - ref[k]));
            max_ref = std::max(max_ref, std::fabs(double(ref[k])));
        }
        worst = std::max(worst, max_err / max_ref);
    }
    return worst;
}

std::vector<token_id> sequence(int n, int32_t n_vocab, uint32_t seed) {
    std::vector<token_id> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[size_t(i)] = token_id((uint64_t(i) * 2654435761u + seed) % uint32_t(n_vocab));
    return t;
}

// A small model in a quantised type, written once per test run.
std::shared_ptr<const model> quantised_model(const char* preset, ggml_type type) {
    auto spec = random_model_preset(preset);
    REQUIRE(spec);
    spec->weight_type = type;
    spec->n_embd = 256;  // K-quants need rows of 256
    spec->n_head = 4;
    spec->n_head_kv = 2;
    spec->n_ff = 512;
    const auto path = (fs::temp_directory_path() / (std::string("spark-fwd-") + preset + "-" +
                                                     std::string(type_name(type)) + ".gguf")).string();
    REQUIRE(write_random_model(*spec, path));
    auto m = model::load(path);
    fs::remove(path);  // the mapping stays valid
    REQUIRE(m);
    return *m;
}

}  // namespace

TEST_CASE("forward: equals the scalar reference on every tiny model and weight type", "[forward]") {
    struct item {
        std::shared_ptr<const model> m;
        double tolerance;  // F32 weights keep f32 activations; quantised types quantise activations to 8 bits
    };
    std::vector<item> items;
    for (const char* p : {"tiny-llama", "tiny-llama-tied", "tiny-qwen2"}) {
        auto m = model::load(test::data_path(std::string(p) + ".gguf"));
        REQUIRE(m);
        items.push_back({*m, 1e-5});
    }
    items.push_back({quantised_model("tiny-qwen2", ggml_type::q8_0), 3e-2});
    items.push_back({quantised_model("tiny-llama", ggml_type::q4_0), 3e-2});
    items.push_back({quantised_model("tiny-qwen2", ggml_type::q4_k), 3e-2});
    items.push_back({quantised_model("tiny-llama", ggml_type::q6_k), 3e-2});
    items.push_back({quantised_model("tiny-qwen2", ggml_type::f16), 1e-3});

    accel::partition part("test", 2);
    for (const auto& it : items) {
        INFO(it.m->hparams().name << " " << type_name(it.m->weights().layers[0].wq.type));
        auto placed = placed_model::place(it.m, part);
        REQUIRE(placed);
        (*placed)->set_adaptive_workers(false);
        const auto tokens = sequence(21, it.m->hparams().n_vocab, 5);  // > max_batch: two chunks
        kv_cache c_ref(it.m->hparams(), 64), c_fast(it.m->hparams(), 64);
        std::vector<float> ref, fast;
        REQUIRE(forward_reference(*it.m, c_ref, tokens, ref, true));
        REQUIRE((*placed)->forward(c_fast, tokens, fast, true));
        REQUIRE(fast.size() == ref.size());
        CHECK(max_row_error(fast, ref, it.m->hparams().n_vocab) < it.tolerance);
        CHECK(c_fast.size() == 21);
        // Last-position logits only.
        kv_cache c_last(it.m->hparams(), 64);
        std::vector<float> last;
        REQUIRE((*placed)->forward(c_last, tokens, last, false));
        REQUIRE(last.size() == size_t(it.m->hparams().n_vocab));
        CHECK(std::memcmp(last.data(), &fast[20 * size_t(it.m->hparams().n_vocab)], last.size() * 4) == 0);
    }
}

TEST_CASE("forward: logits are bitwise identical across batch sizes 1-16 and worker counts 1-2", "[forward]") {
    for (ggml_type type : {ggml_type::q8_0, ggml_type::q4_k, ggml_type::f32}) {
        INFO(type_name(type));
        auto m = quantised_model("tiny-qwen2", type);
        const int32_t n_vocab = m->hparams().n_vocab;
        const int prefix = 5, n = 16;
        const auto tokens = sequence(prefix + n, n_vocab, 9);
        const std::span<const token_id> all(tokens);

        // Baseline: one position at a time, one worker.
        accel::partition one("one", 1);
        auto p1 = placed_model::place(m, one);
        REQUIRE(p1);
        kv_cache base_cache(m->hparams(), 64);
        std::vector<float> base, step;
        REQUIRE((*p1)->forward(base_cache, all.first(prefix), step, false));
        for (int i = 0; i < n; ++i) {
            REQUIRE((*p1)->forward(base_cache, all.subspan(size_t(prefix + i), 1), step, true));
            base.insert(base.end(), step.begin(), step.end());
        }

        for (int workers : {1, 2}) {
            accel::partition part("p", workers);
            auto p = placed_model::place(m, part);
            REQUIRE(p);
            (*p)->set_adaptive_workers(false);  // every pass on all the partition's workers
            for (int batch = 1; batch <= n; ++batch) {
                INFO("workers " << workers << " batch " << batch);
                kv_cache cache(m->hparams(), 64);
                std::vector<float> got, chunk;
                REQUIRE((*p)->forward(cache, all.first(prefix), chunk, false));
                for (int i = 0; i < n; i += batch) {
                    const int len = std::min(batch, n - i);
                    REQUIRE((*p)->forward(cache, all.subspan(size_t(prefix + i), size_t(len)), chunk, true));
                    got.insert(got.end(), chunk.begin(), chunk.end());
                }
                REQUIRE(got.size() == base.size());
                CHECK(std::memcmp(got.data(), base.data(), got.size() * 4) == 0);
            }
        }
    }
}

TEST_CASE("forward: counters record every pass", "[forward]") {
    auto m = model::load(test::data_path("tiny-llama.gguf"));
    REQUIRE(m);
    accel::partition part("count", 2);
    auto p = placed_model::place(*m, part);
    REQUIRE(p);
    kv_cache cache((*m)->hparams(), 64);
    std::vector<float> logits;
    const token_id toks[] = {1, 5, 9};
    REQUIRE((*p)->forward(cache, toks, logits, false));
    const auto& s = part.stats();
    CHECK(s.passes == 1);
    CHECK(s.layer_hops == uint64_t((*m)->hparams().n_layer));
    CHECK(s[accel::kernel_class::matmul].bytes >= (*p)->weight_bytes());
    CHECK(s[accel::kernel_class::matmul].flops > 0);
    CHECK(s[accel::kernel_class::attention].calls == uint64_t((*m)->hparams().n_layer));
}

TEST_CASE("worker_governor: uses the faster worker count, re-measures the other, follows a change", "[accel]") {
    accel::worker_governor g(2, 8);
    // First passes measure both candidates, all workers first.
    CHECK(g.choose(0) == 2);
    g.record(0, 2, 1.0);
    CHECK(g.choose(0) == 1);
    g.record(0, 1, 1.6);
    // Quiet machine: two workers are faster; one pass in 8 re-measures one worker.
    int ones = 0;
    for (int i = 0; i < 64; ++i) {
        const int w = g.choose(0);
        ones += w == 1;
        g.record(0, w, w == 2 ? 1.0 : 1.6);
    }
    CHECK(ones == 8);
    // Buckets are separate: bucket 1 starts by measuring again.
    CHECK(g.choose(1) == 2);
    // Competition: two workers now take 2.0 per pass. Within a few passes the governor moves to one worker.
    int last = 2;
    for (int i = 0; i < 16; ++i) {
        last = g.choose(0);
        g.record(0, last, last == 2 ? 2.0 : 1.6);
    }
    CHECK(last == 1);
    CHECK(g.average(0, 2) > g.average(0, 1));
    // The competition stops: the re-measured two-worker passes bring it back.
    for (int i = 0; i < 64; ++i) {
        last = g.choose(0);
        g.record(0, last, last == 2 ? 1.0 : 1.6);
    }
    CHECK(last == 2);
    CHECK(g.passes_with(1) + g.passes_with(2) == 2 + 64 + 16 + 64);
    // One worker: nothing to choose.
    accel::worker_governor single(1);
    CHECK(single.choose(0) == 1);
}

TEST_CASE("forward: the adaptive pass gives the same logits as all workers", "[forward]") {
    auto m = quantised_model("tiny-qwen2", ggml_type::q8_0);
    const auto tokens = sequence(12, m->hparams().n_vocab, 3);
    accel::partition part("adaptive", 2);
    auto p = placed_model::place(m, part);
    REQUIRE(p);
    std::vector<float> fixed, adaptive, step;
    kv_cache c1(m->hparams(), 64), c2(m->hparams(), 64);
    (*p)->set_adaptive_workers(false);
    REQUIRE((*p)->forward(c1, tokens, fixed, true));
    (*p)->set_adaptive_workers(true);
    // One position at a time: the governor measures both worker counts on the way.
    for (size_t i = 0; i < tokens.size(); ++i) {
        REQUIRE((*p)->forward(c2, std::span(tokens).subspan(i, 1), step, true));
        adaptive.insert(adaptive.end(), step.begin(), step.end());
    }
    CHECK(part.governor().passes_with(1) >= 1);
    CHECK(part.governor().passes_with(2) >= 1);
    REQUIRE(adaptive.size() == fixed.size());
    CHECK(std::memcmp(adaptive.data(), fixed.data(), fixed.size() * 4) == 0);
}
