// The spark-ls command line, run as a user would: inspect, tokenize and generate, on tiny models and on a
// model with the shape of Qwen2.5-Coder-0.5B (random Q8_0 weights written at test time, never committed).
#include "harness/test_data.h"

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct run_result {
    int status = -1;
    std::string out;  // stdout and stderr together
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

run_result run(const std::vector<std::string>& args) {
    std::string cmd = quote(SPARK_BINARY);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " 2>&1";
    run_result r;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cli: inspect shows hyper-parameters, tensors and special tokens", "[cli]") {
    auto r = run({"inspect", spark::test::data_path("tiny-qwen2.gguf")});
    INFO(r.out);
    REQUIRE(r.status == 0);
    CHECK(contains(r.out, "architecture:    qwen2"));
    CHECK(contains(r.out, "kv heads: 2"));
    CHECK(contains(r.out, "blk.1.attn_q.bias"));
    CHECK(contains(r.out, "fim_pre"));
    CHECK(contains(r.out, "neox"));
}

TEST_CASE("cli: errors are one clear line and a non-zero exit", "[cli]") {
    auto r = run({"inspect", "/nonexistent/model.gguf"});
    CHECK(r.status != 0);
    CHECK(contains(r.out, "/nonexistent/model.gguf"));
    r = run({"generate", "--model", spark::test::data_path("tiny-llama.gguf")});
    CHECK(r.status != 0);
    CHECK(contains(r.out, "--prompt"));
    r = run({"generate", "--model", spark::test::data_path("tiny-llama.gguf"), "--prompt", "x", "--n", "abc"});
    CHECK(r.status != 0);
    CHECK(contains(r.out, "not a number"));
    r = run({"frobnicate"});
    CHECK(r.status != 0);
    CHECK(contains(r.out, "unknown command"));
}

TEST_CASE("cli: tokenize prints the ids of a real vocabulary", "[cli]") {
    const auto vocab = spark::test::shared_testdata_dir() + "/tokenizers/ggml-vocab-llama-spm.gguf";
    REQUIRE(fs::exists(vocab));
    auto r = run({"tokenize", "--model", vocab, "--text", "Hello world"});
    INFO(r.out);
    REQUIRE(r.status == 0);
    CHECK(r.out == "15043 3186\n");  // ggml-vocab-llama-spm.gguf.out, entry "Hello world"
    r = run({"tokenize", "--model", vocab, "--text", "Hello world", "--bos"});
    CHECK(r.out == "1 15043 3186\n");
}

TEST_CASE("cli: generate on the tiny models is deterministic", "[cli]") {
    for (const char* m : {"tiny-llama.gguf", "tiny-qwen2.gguf"}) {
        INFO(m);
        const auto path = spark::test::data_path(m);
        auto a = run({"generate", "--model", path, "--prompt", "def fibonacci(n):", "--n", "12"});
        auto b = run({"generate", "--model", path, "--prompt", "def fibonacci(n):", "--n", "12"});
        INFO(a.out);
        REQUIRE(a.status == 0);
        CHECK(contains(a.out, "def fibonacci(n):"));
        CHECK(contains(a.out, "tok/s"));
        const auto text = [](const std::string& s) { return s.substr(0, s.find("load ")); };
        CHECK(text(a.out) == text(b.out));
        auto c = run({"generate", "--model", path, "--prompt", "x = ", "--n", "8", "--temp", "0.8", "--seed", "3"});
        CHECK(c.status == 0);
    }
}

TEST_CASE("large: generate runs at the shape of Qwen2.5-Coder-0.5B with Q8_0 weights", "[cli][large]") {
    const auto path = (fs::temp_directory_path() / "spark-qwen2.5-0.5b-q8_0.gguf").string();
    auto made = run({"make-model", "--preset", "qwen2.5-0.5b", "--type", "q8_0", "--out", path});
    INFO(made.out);
    REQUIRE(made.status == 0);
    auto info = run({"inspect", path});
    REQUIRE(info.status == 0);
    CHECK(contains(info.out, "embedding:       896   layers: 24   ffn: 4864"));
    CHECK(contains(info.out, "heads:           14   kv heads: 2"));
    CHECK(contains(info.out, "vocab rows 151936"));
    CHECK(contains(info.out, "Q8_0"));
    auto gen = run({"generate", "--model", path, "--prompt", "def add(a, b):", "--n", "4"});
    INFO(gen.out);
    CHECK(gen.status == 0);
    CHECK(contains(gen.out, "generated 4 tokens"));
    fs::remove(path);
}

TEST_CASE("cli: the accelerator path generates what the scalar reference generates", "[cli]") {
    for (const char* m : {"tiny-llama.gguf", "tiny-llama-tied.gguf", "tiny-qwen2.gguf"}) {
        INFO(m);
        const auto path = spark::test::data_path(m);
        auto fast = run({"generate", "--model", path, "--prompt", "for (int i = 0; i < n; ", "--n", "24"});
        auto ref = run({"generate", "--model", path, "--prompt", "for (int i = 0; i < n; ", "--n", "24", "--reference"});
        REQUIRE(fast.status == 0);
        REQUIRE(ref.status == 0);
        CHECK(contains(fast.out, "accelerator path"));
        CHECK(contains(ref.out, "scalar reference path"));
        const auto text = [](const std::string& s) { return s.substr(0, s.find("load ")); };
        CHECK(text(fast.out) == text(ref.out));
    }
}

TEST_CASE("cli: accel-report and bench decode run and report every section", "[cli]") {
    const auto path = spark::test::data_path("tiny-qwen2.gguf");
    auto rep = run({"accel-report", "--model", path, "--chip", "wafer", "--n", "4"});
    INFO(rep.out);
    REQUIRE(rep.status == 0);
    for (const char* part : {"matmul", "attention", "norm", "rope", "elementwise", "chip projection", "host roofline"})
        CHECK(contains(rep.out, part));
    CHECK(run({"accel-report", "--model", path, "--chip", "abacus"}).status != 0);

    const auto tsv = (fs::temp_directory_path() / "spark-bench.tsv").string();
    auto bench = run({"bench", "decode", "--model", path, "--n", "4", "--reps", "1", "--prompt-tokens", "20",
                      "--tsv", tsv});
    INFO(bench.out);
    REQUIRE(bench.status == 0);
    for (const char* part : {"memory read bandwidth", "roofline", "decode:", "prompt:", "verify cost(B)/cost(1):",
                             "with a competing process"})
        CHECK(contains(bench.out, part));
    std::ifstream in(tsv);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    CHECK(contains(all, "verify_cost_ratio\t16\t"));
    fs::remove(tsv);
}
