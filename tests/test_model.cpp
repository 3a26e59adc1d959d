// The model and its scalar reference forward pass against an independent numpy implementation
// (tools/reference/llama_ref.py) that computed golden logits from the same committed GGUF files.
#include "harness/golden.h"
#include "harness/test_data.h"
#include "inference/forward_ref.h"
#include "inference/gguf.h"
#include "inference/model.h"
#include "inference/random_model.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace spark;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

std::string temp_path(const std::string& name) { return (fs::temp_directory_path() / name).string(); }

const char* tiny_presets[] = {"tiny-llama", "tiny-llama-tied", "tiny-qwen2"};

}  // namespace

TEST_CASE("model: committed tiny models are exactly what the generator writes", "[model]") {
    for (const char* preset : tiny_presets) {
        INFO(preset);
        auto spec = random_model_preset(preset);
        REQUIRE(spec);
        const std::string committed = test::data_path(std::string(preset) + ".gguf");
        const std::string fresh = temp_path(std::string("spark-") + preset + ".gguf");
        REQUIRE(write_random_model(*spec, test::regenerate() ? committed : fresh));
        if (!test::regenerate()) {
            CHECK(read_bytes(fresh) == read_bytes(committed));
            fs::remove(fresh);
        }
    }
}

TEST_CASE("model: tiny models load with the expected hyper-parameters", "[model]") {
    auto llama = model::load(test::data_path("tiny-llama.gguf"));
    REQUIRE(llama);
    const auto& hp = (*llama)->hparams();
    CHECK(hp.arch == "llama");
    CHECK(hp.rope == rope_style::normal);
    CHECK(hp.n_head_kv < hp.n_head);  // grouped-query attention
    CHECK_FALSE(hp.tied_output);
    CHECK_FALSE(hp.has_qkv_bias);

    auto tied = model::load(test::data_path("tiny-llama-tied.gguf"));
    REQUIRE(tied);
    CHECK((*tied)->hparams().tied_output);
    CHECK((*tied)->weights().output.data == (*tied)->weights().token_embd.data);

    auto qwen = model::load(test::data_path("tiny-qwen2.gguf"));
    REQUIRE(qwen);
    CHECK((*qwen)->hparams().rope == rope_style::neox);
    CHECK((*qwen)->hparams().has_qkv_bias);
    CHECK((*qwen)->hparams().n_head / (*qwen)->hparams().n_head_kv == 4);
}

TEST_CASE("model: reference logits equal the independent numpy reference", "[model]") {
    for (const char* preset : tiny_presets) {
        INFO(preset);
        auto m = model::load(test::data_path(std::string(preset) + ".gguf"));
        REQUIRE(m);
        const auto& model = **m;
        const int32_t n_vocab = model.hparams().n_vocab;
        for (const auto& gc : test::load_golden(test::data_path(std::string(preset) + ".golden.gguf"), n_vocab)) {
            INFO("case " << gc.name);
            const int n = int(gc.tokens.size());

            // All positions in one batch.
            kv_cache cache(model.hparams(), 64);
            std::vector<float> logits;
            REQUIRE(forward_reference(model, cache, gc.tokens, logits, true));
            REQUIRE(logits.size() == gc.logits.size());
            for (int j = 0; j < n; ++j)
                CHECK(test::row_relative_error(&logits[size_t(j) * n_vocab], &gc.logits[size_t(j) * n_vocab], n_vocab) <
                      1e-4);

            // The same sequence in chunks through the KV cache: 3 tokens, then 1, then the rest (last logits only).
            kv_cache chunked(model.hparams(), 64);
            std::vector<float> part;
            const std::span<const token_id> all(gc.tokens);
            REQUIRE(forward_reference(model, chunked, all.first(3), part, true));
            CHECK(test::row_relative_error(&part[2 * size_t(n_vocab)], &gc.logits[2 * size_t(n_vocab)], n_vocab) < 1e-4);
            REQUIRE(forward_reference(model, chunked, all.subspan(3, 1), part, true));
            CHECK(test::row_relative_error(part.data(), &gc.logits[3 * size_t(n_vocab)], n_vocab) < 1e-4);
            REQUIRE(forward_reference(model, chunked, all.subspan(4), part, false));
            REQUIRE(part.size() == size_t(n_vocab));
            CHECK(test::row_relative_error(part.data(), &gc.logits[size_t(n - 1) * n_vocab], n_vocab) < 1e-4);
            CHECK(chunked.size() == n);

            // Rolling back and recomputing the tail gives the same logits bit for bit.
            chunked.truncate(n - 2);
            std::vector<float> again;
            REQUIRE(forward_reference(model, chunked, all.subspan(size_t(n - 2)), again, false));
            CHECK(std::memcmp(again.data(), part.data(), part.size() * 4) == 0);
        }
    }
}

TEST_CASE("model: forward pass rejects bad tokens and context overflow without side effects", "[model]") {
    auto m = model::load(test::data_path("tiny-llama.gguf"));
    REQUIRE(m);
    kv_cache cache((*m)->hparams(), 4);
    std::vector<float> logits;
    const token_id bad[] = {1, (*m)->hparams().n_vocab};
    auto r = forward_reference(**m, cache, bad, logits);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("token id") != std::string::npos);
    CHECK(cache.size() == 0);
    const token_id five[] = {1, 2, 3, 4, 5};
    r = forward_reference(**m, cache, five, logits);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("context") != std::string::npos);
    CHECK(cache.size() == 0);
}

namespace {

// Writes tiny-llama with one tensor replaced (or removed when data is empty) and returns the load error.
std::string load_error_with(const std::string& replace, std::vector<uint64_t> dims, ggml_type type,
                            const std::string& arch = "llama") {
    auto src = gguf::gguf_file::open(test::data_path("tiny-llama.gguf"));
    REQUIRE(src);
    gguf::gguf_writer w;
    for (const auto& kv : src->metadata())
        w.set(kv.key, kv.key == "general.architecture" ? gguf::value{arch} : kv.val);
    for (const auto& t : src->tensors()) {
        if (t.name == replace) {
            if (dims.empty()) continue;
            uint64_t rows = 1;
            for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
            std::vector<uint8_t> bytes(row_bytes(type, dims[0]) * rows, 0);
            REQUIRE(w.add_tensor(t.name, dims, type, bytes));
        } else {
            auto d = src->tensor_data(t);
            REQUIRE(w.add_tensor(t.name, t.dims, t.type, {d.data(), d.size()}));
        }
    }
    const std::string path = temp_path("spark-bad-model.gguf");
    REQUIRE(w.write(path));
    auto m = model::load(path);
    fs::remove(path);
    REQUIRE_FALSE(m);
    return m.error().message;
}

}  // namespace

TEST_CASE("model: load errors name the tensor, the shape or the type", "[model]") {
    const auto missing = load_error_with("blk.1.ffn_up.weight", {}, ggml_type::f32);
    CHECK(missing.find("blk.1.ffn_up.weight") != std::string::npos);
    CHECK(missing.find("missing") != std::string::npos);

    const auto shape = load_error_with("blk.0.attn_q.weight", {64, 32}, ggml_type::f32);
    CHECK(shape.find("blk.0.attn_q.weight") != std::string::npos);
    CHECK(shape.find("[64, 32]") != std::string::npos);

    const auto unsupported = load_error_with("blk.0.ffn_gate.weight", {256, 128}, static_cast<ggml_type>(16));
    CHECK(unsupported.find("blk.0.ffn_gate.weight") != std::string::npos);
    CHECK(unsupported.find("IQ2_XXS") != std::string::npos);
    CHECK(unsupported.find("not support") != std::string::npos);

    const auto arch = load_error_with("", {}, ggml_type::f32, "mamba");
    CHECK(arch.find("mamba") != std::string::npos);
}
