// The FIM prompt builder on the default models' tokenizer: layout, windows within the budget, a stable prefix
// window across keystrokes (what lets the engine reuse its KV cache), and other documents as context.
#include "lsp/prompt.h"

#include "harness/default_models.h"
#include "inference/gguf.h"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace spark;
using namespace spark::lsp;

namespace {

const tokenizer& default_tokenizer() {
    static const auto m = test::load_default(default_target_model);
    return m->vocab();
}

std::string numbered_lines(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ")\n";
    return s;
}

}  // namespace

TEST_CASE("prompt: fill-in-the-middle layout with the model's FIM tokens", "[lsp][prompt]") {
    const tokenizer& tok = default_tokenizer();
    const special_tokens& sp = tok.special();
    const std::string text = "def area(r):\n    return 3.14 * r * r\n\nprint(area(2))\n";
    const size_t cursor = text.find("3.14");
    const built_prompt p = build_prompt(tok, text, cursor, "python", {}, {});
    REQUIRE(p.fim);
    const auto& t = p.tokens;
    REQUIRE(t.size() > 4);
    size_t i = 0;
    if (sp.add_bos) CHECK(t[i++] == sp.bos);
    CHECK(t[i++] == sp.fim_pre);
    CHECK(t.back() == sp.fim_mid);
    const auto suf = std::find(t.begin(), t.end(), sp.fim_suf);
    REQUIRE(suf != t.end());
    CHECK(tok.detokenize(std::span(t.begin() + long(i), suf)) == text.substr(0, cursor));
    CHECK(tok.detokenize(std::span(suf + 1, t.end() - 1)) == text.substr(cursor));
    CHECK(std::vector<token_id>(suf + 1, t.end() - 1) == p.suffix);
    CHECK(p.prefix_start == 0);
    CHECK(p.suffix_end == text.size());
}

TEST_CASE("prompt: windows fit the budget and cut at line boundaries", "[lsp][prompt]") {
    const tokenizer& tok = default_tokenizer();
    const std::string text = numbered_lines(400);
    const size_t cursor = text.find("value_200 ");
    prompt_options o;
    o.budget = 200;
    o.fim_ratio = 0.75;
    const built_prompt p = build_prompt(tok, text, cursor, "python", o, {});
    CHECK(int32_t(p.tokens.size()) <= o.budget);
    CHECK(int32_t(p.suffix.size()) <= o.budget / 4);
    CHECK(p.prefix_start > 0);
    CHECK(text[p.prefix_start - 1] == '\n');
    CHECK(text[p.suffix_end - 1] == '\n');
    CHECK(p.suffix_end > cursor);
    // The prefix window is not tiny: it keeps most of its share.
    CHECK(int32_t(p.tokens.size() - p.suffix.size()) > o.budget / 3);
}

TEST_CASE("prompt: the prefix window keeps its start while the user types", "[lsp][prompt]") {
    const tokenizer& tok = default_tokenizer();
    std::string text = numbered_lines(300);
    size_t cursor = text.find("value_150 ");
    prompt_options o;
    o.budget = 240;
    const built_prompt first = build_prompt(tok, text, cursor, "python", o, {});
    REQUIRE(first.prefix_start > 0);
    // Type a few characters: same anchor, and the prompts share everything up to the typing point.
    text.insert(cursor, "x = 1");
    cursor += 5;
    const built_prompt second = build_prompt(tok, text, cursor, "python", o, {}, first.prefix_start);
    CHECK(second.prefix_start == first.prefix_start);
    size_t common = 0;
    while (common < first.tokens.size() && common < second.tokens.size() &&
           first.tokens[common] == second.tokens[common])
        ++common;
    const size_t first_suffix_pos = size_t(std::find(first.tokens.begin(), first.tokens.end(),
                                                     tok.special().fim_suf) - first.tokens.begin());
    CHECK(common + 3 >= first_suffix_pos);  // at most the last tokens before the cursor differ
    // Without the anchor the window starts elsewhere (it is chosen afresh with room to grow).
    const built_prompt fresh = build_prompt(tok, text, cursor + 2000, "python", o, {}, first.prefix_start);
    CHECK(fresh.prefix_start != first.prefix_start);
}

TEST_CASE("prompt: other documents fill the room that is left", "[lsp][prompt]") {
    const tokenizer& tok = default_tokenizer();
    const std::string text = "import helpers\n\nresult = helpers.\n";
    const size_t cursor = text.find("helpers.") + 8;
    const std::string other = "def scale(v, k):\n    return [x * k for x in v]\n";
    const context_document docs[] = {{"helpers.py", "python", other}};
    prompt_options o;
    o.budget = 400;
    const built_prompt with = build_prompt(tok, text, cursor, "python", o, docs);
    CHECK(with.context_chunks == 1);
    const std::string all = tok.detokenize(with.tokens);
    CHECK(all.find("# helpers.py\n" + other) != std::string::npos);
    CHECK(all.find(other) < all.find("import helpers"));

    o.context_files = false;
    CHECK(build_prompt(tok, text, cursor, "python", o, docs).context_chunks == 0);
    o.context_files = true;
    o.budget = 40;  // no room
    CHECK(build_prompt(tok, text, cursor, "python", o, docs).context_chunks == 0);
}

TEST_CASE("prompt: a model without FIM tokens gets the prefix alone", "[lsp][prompt]") {
    // The default tokenizer with its FIM tokens removed: no FIM ids in the metadata, and the tokens renamed so that
    // nothing recognises them by their text either.
    auto path = find_default_model(default_target_model);
    REQUIRE(path);
    auto file = gguf::gguf_file::open(*path);
    REQUIRE(file);
    gguf::gguf_writer w;
    for (const auto& kv : file->metadata()) {
        if (kv.key.find("fim") != std::string::npos) continue;
        gguf::value v = kv.val;
        if (kv.key == "tokenizer.ggml.tokens")
            for (gguf::value& t : std::get<gguf::array>(v.data).items)
                if (auto* s = std::get_if<std::string>(&t.data); s && s->find("fim_") != std::string::npos)
                    *s = "<unused_" + *s + ">";
        w.set(kv.key, std::move(v));
    }
    const auto bytes = w.serialize();
    auto stripped = gguf::gguf_file::parse(bytes);
    REQUIRE(stripped);
    auto tok = tokenizer::load(*stripped);
    REQUIRE(tok);
    REQUIRE(tok->special().fim_pre < 0);

    const std::string text = "def area(r):\n    return 3.14 * r * r\n";
    const size_t cursor = text.find("3.14");
    const built_prompt p = build_prompt(*tok, text, cursor, "python", {}, {});
    CHECK_FALSE(p.fim);
    CHECK(p.suffix.empty());
    CHECK(tok->detokenize(p.tokens) == text.substr(0, cursor));
}
