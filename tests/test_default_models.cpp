// The embedded default models (models/spark-draft.gguf, models/spark-target.gguf): spark-ls loads both, reproduces
// the golden logits PyTorch computed at export (tools/train/export.py) on the reference and the accelerator paths,
// and the fill-in-the-middle format works: the middle depends on the suffix.
#include "harness/default_models.h"
#include "harness/golden.h"
#include "inference/default_models.h"
#include "inference/forward.h"
#include "inference/forward_ref.h"
#include "inference/sampling.h"

#include <catch2/catch.hpp>

using namespace spark;
using spark::test::load_default;

namespace {

std::string golden_path(const char* file) {
    auto path = find_default_model(file);
    REQUIRE(path);
    return path->substr(0, path->size() - 5) + ".golden.gguf";  // X.gguf -> X.golden.gguf
}

// Greedy continuation of a token prompt on the accelerator path.
std::vector<token_id> greedy(const std::shared_ptr<const model>& m, std::vector<token_id> prompt, int n) {
    accel::partition part("default-models", 2);
    auto placed = placed_model::place(m, part);
    REQUIRE(placed);
    kv_cache cache(m->hparams(), int32_t(prompt.size()) + n + 1);
    std::vector<float> logits;
    REQUIRE((*placed)->forward(cache, prompt, logits, false));
    std::vector<token_id> out;
    for (int i = 0; i < n; ++i) {
        const token_id t = argmax(std::span(logits).first(size_t(m->vocab().n_tokens())));
        out.push_back(t);
        if (t == m->vocab().special().eos) break;
        const token_id one[] = {t};
        REQUIRE((*placed)->forward(cache, one, logits, false));
    }
    return out;
}

}  // namespace

TEST_CASE("default models: both load and share one tokenizer with FIM tokens", "[default-models]") {
    auto draft = load_default(default_draft_model);
    auto target = load_default(default_target_model);
    CHECK(draft->hparams().arch == "llama");
    CHECK(target->hparams().arch == "llama");
    CHECK(draft->vocab().n_tokens() == target->vocab().n_tokens());
    for (token_id t = 0; t < target->vocab().n_tokens(); ++t) REQUIRE(draft->vocab().token_text(t) == target->vocab().token_text(t));
    const auto& sp = target->vocab().special();
    CHECK(sp.fim_pre >= 0);
    CHECK(sp.fim_suf >= 0);
    CHECK(sp.fim_mid >= 0);
    CHECK(sp.eos >= 0);
    CHECK(target->weight_bytes() > 2 * draft->weight_bytes());  // the target is the bigger model
}

TEST_CASE("default models: spark-ls reproduces the exporter's golden logits", "[default-models]") {
    for (const char* file : {default_draft_model, default_target_model}) {
        INFO(file);
        auto m = load_default(file);
        const int32_t n_vocab = m->hparams().n_vocab;
        accel::partition part("golden", 2);
        auto placed = placed_model::place(m, part);
        REQUIRE(placed);
        for (const auto& gc : test::load_golden(golden_path(file), n_vocab)) {
            INFO("case " << gc.name);
            kv_cache c_ref(m->hparams(), int32_t(gc.tokens.size())), c_fast(m->hparams(), int32_t(gc.tokens.size()));
            std::vector<float> ref, fast;
            REQUIRE(forward_reference(*m, c_ref, gc.tokens, ref, true));
            REQUIRE((*placed)->forward(c_fast, gc.tokens, fast, true));
            for (size_t j = 0; j < gc.tokens.size(); ++j) {
                CHECK(test::row_relative_error(&ref[j * size_t(n_vocab)], &gc.logits[j * size_t(n_vocab)], n_vocab) <
                      1e-4);
                CHECK(test::row_relative_error(&fast[j * size_t(n_vocab)], &gc.logits[j * size_t(n_vocab)], n_vocab) <
                      1e-4);
            }
        }
    }
}

TEST_CASE("default models: the middle of a FIM prompt depends on the suffix", "[default-models]") {
    auto m = load_default(default_target_model);
    const auto& tok = m->vocab();
    const auto& sp = tok.special();
    auto fim = [&](const std::string& prefix, const std::string& suffix) {
        std::vector<token_id> p;
        if (sp.bos >= 0) p.push_back(sp.bos);
        p.push_back(sp.fim_pre);
        for (token_id t : tok.tokenize(prefix)) p.push_back(t);
        p.push_back(sp.fim_suf);
        for (token_id t : tok.tokenize(suffix)) p.push_back(t);
        p.push_back(sp.fim_mid);
        return p;
    };
    const std::string prefix = "def area(width, height):\n    ";
    const auto a = greedy(m, fim(prefix, "\n    return result\n"), 12);
    const auto b = greedy(m, fim(prefix, " * height\n\nprint(area(3, 4))\n"), 12);
    INFO("middle a: " << tok.detokenize(a) << "\nmiddle b: " << tok.detokenize(b));
    CHECK(a != b);
}
