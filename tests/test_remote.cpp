// Remote backends without a network: URLs, request bodies, FIM templates, and the stream decoder (every chunking
// of a body decodes the same; random and truncated bodies give errors, never exceptions or crashes).
#include "lsp/remote.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>

using namespace spark::lsp;
using json = nlohmann::json;

TEST_CASE("remote: backend URLs", "[lsp][remote]") {
    auto u = parse_http_url("http://127.0.0.1:8080");
    REQUIRE(u);
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == "8080");
    CHECK(u->prefix.empty());
    u = parse_http_url("http://gpu-box/llm/v1/");
    REQUIRE(u);
    CHECK(u->port == "80");
    CHECK(u->prefix == "/llm/v1");
    CHECK(endpoint_path(remote_kind::openai, u->prefix) == "/llm/v1/completions");
    CHECK(endpoint_path(remote_kind::llama_cpp, "") == "/infill");
    CHECK(endpoint_path(remote_kind::ollama, "/x") == "/x/api/generate");
    u = parse_http_url("http://[::1]:11434");
    REQUIRE(u);
    CHECK(u->host == "::1");
    CHECK(u->port == "11434");
    for (const char* bad : {"https://a", "ftp://a", "http://", "http://a:0", "http://a:99999", "http://a:x", "http://u:p@a",
                            "http://[::1", "a:80"}) {
        INFO(bad);
        auto r = parse_http_url(bad);
        REQUIRE_FALSE(r);
        CHECK_FALSE(r.error().message.empty());
    }
}

TEST_CASE("remote: FIM templates and request bodies", "[lsp][remote]") {
    auto q = resolve_fim_template("qwen");
    REQUIRE(q);
    CHECK(apply_fim_template(*q, "a{suffix}", "b") == "<|fim_prefix|>a{suffix}<|fim_suffix|>b<|fim_middle|>");
    CHECK(resolve_fim_template("[{prefix}|{suffix}]").value() == "[{prefix}|{suffix}]");
    CHECK_FALSE(resolve_fim_template("nonsense"));

    remote_request r;
    r.prefix = "def f(x):\n    ";
    r.suffix = "\n";
    r.max_tokens = 12;
    r.extra.push_back({"file:///b.py", "import os\n"});
    remote_config c;
    c.model = "m";
    c.kind = remote_kind::openai;
    json j = json::parse(remote_body(c, "", r));
    CHECK(j == json{{"model", "m"}, {"prompt", r.prefix}, {"suffix", "\n"}, {"max_tokens", 12}, {"temperature", 0.0}, {"stream", true}});
    j = json::parse(remote_body(c, *q, r));
    CHECK_FALSE(j.contains("suffix"));
    CHECK(j["prompt"] == "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n<|fim_middle|>");
    c.kind = remote_kind::llama_cpp;
    j = json::parse(remote_body(c, "", r));
    CHECK(j["input_prefix"] == r.prefix);
    CHECK(j["input_suffix"] == "\n");
    CHECK(j["input_extra"] == json::array({{{"filename", "file:///b.py"}, {"text", "import os\n"}}}));
    CHECK(j["n_predict"] == 12);
    CHECK(j["cache_prompt"] == true);
    c.kind = remote_kind::ollama;
    j = json::parse(remote_body(c, "", r));
    CHECK(j["suffix"] == "\n");
    CHECK_FALSE(j.contains("raw"));
    CHECK(j["options"]["num_predict"] == 12);
    j = json::parse(remote_body(c, *q, r));
    CHECK(j["raw"] == true);
    CHECK_FALSE(j.contains("suffix"));
}

namespace {

struct decoded {
    std::string text;
    bool ok = true, done = false;
    std::string reason;
};

decoded decode(stream_decoder::format f, std::string_view body, std::mt19937& rng, bool random_chunks) {
    stream_decoder d(f);
    decoded out;
    size_t i = 0;
    while (i < body.size() && out.ok) {
        const size_t n = random_chunks ? std::uniform_int_distribution<size_t>(1, 9)(rng) : body.size();
        out.ok = d.feed(body.substr(i, n), out.text);
        i += n;
    }
    if (out.ok) out.ok = d.finish(out.text);
    out.done = d.done();
    out.reason = d.finish_reason();
    return out;
}

}  // namespace

TEST_CASE("remote: the stream decoder reads each backend's stream, in any chunking", "[lsp][remote]") {
    std::mt19937 rng(7);
    const std::string openai =
        "data: {\"choices\":[{\"text\":\"ret\",\"index\":0,\"finish_reason\":null}]}\n\n"
        ": keep-alive comment\r\n"
        "data: {\"choices\":[{\"text\":\"urn é😀\",\"index\":0,\"finish_reason\":null}]}\r\n\r\n"
        "data: {\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";
    const std::string llama =
        "data: {\"content\":\"ret\",\"stop\":false}\n\ndata: {\"content\":\"urn é😀\",\"stop\":false}\n\n"
        "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\"}\n\n";
    const std::string ollama =
        "{\"model\":\"m\",\"response\":\"ret\",\"done\":false}\n{\"model\":\"m\",\"response\":\"urn é😀\",\"done\":false}\n"
        "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\"}\n";
    const std::string plain = "{\"choices\":[{\"text\":\"return é😀\",\"index\":0,\"finish_reason\":\"stop\"}]}";
    for (int round = 0; round < 200; ++round) {
        const bool chunks = round > 0;
        auto a = decode(stream_decoder::format::sse, openai, rng, chunks);
        CHECK(a.ok);
        CHECK(a.done);
        CHECK(a.text == "return é😀");
        CHECK(a.reason == "length");
        auto b = decode(stream_decoder::format::sse, llama, rng, chunks);
        CHECK((b.ok && b.done && b.text == "return é😀" && b.reason == "eos"));
        auto c = decode(stream_decoder::format::ndjson, ollama, rng, chunks);
        CHECK((c.ok && c.done && c.text == "return é😀" && c.reason == "stop"));
        auto d = decode(stream_decoder::format::json, plain, rng, chunks);
        CHECK((d.ok && d.done && d.text == "return é😀" && d.reason == "stop"));
    }
    CHECK(stream_decoder::for_content_type("text/event-stream; charset=utf-8") == stream_decoder::format::sse);
    CHECK(stream_decoder::for_content_type("application/x-ndjson") == stream_decoder::format::ndjson);
    CHECK(stream_decoder::for_content_type("application/json") == stream_decoder::format::json);
}

TEST_CASE("remote: errors in a stream, and random bytes, end in an error message", "[lsp][remote]") {
    std::mt19937 rng(11);
    auto e = decode(stream_decoder::format::sse, "data: {\"error\":{\"code\":500,\"message\":\"out of memory\"}}\n\n", rng, false);
    CHECK_FALSE(e.ok);
    e = decode(stream_decoder::format::ndjson, "{\"error\":\"model 'x' not found\"}\n", rng, false);
    CHECK_FALSE(e.ok);
    e = decode(stream_decoder::format::sse, "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {trunc", rng, false);
    CHECK_FALSE(e.ok);
    e = decode(stream_decoder::format::json, "", rng, false);
    CHECK_FALSE(e.ok);
    stream_decoder big(stream_decoder::format::sse, 100);
    std::string sink;
    CHECK_FALSE(big.feed(std::string(101, 'x'), sink));
    CHECK(big.error().find("larger than 100") != std::string::npos);

    // Fuzz: random mixes of stream fragments and bytes never throw; a failed decode always says why.
    const std::vector<std::string> pieces = {"data: ", "{", "}", "\"choices\"", ":", "[", "]", "\"text\"", "\"x\"", ",",
                                             "\n", "\r\n", "[DONE]", "\"content\"", "\"done\"", "true", "null", "\xff",
                                             "\"error\"", "\"response\"", "1e999", "\"\\ud800\""};
    for (int i = 0; i < 20000; ++i) {
        std::string body;
        const int n = std::uniform_int_distribution<int>(0, 24)(rng);
        for (int k = 0; k < n; ++k) body += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
        for (auto f : {stream_decoder::format::sse, stream_decoder::format::ndjson, stream_decoder::format::json}) {
            stream_decoder d(f);
            std::string text;
            const bool ok = d.feed(body, text) && d.finish(text);
            if (!ok) REQUIRE_FALSE(d.error().empty());
        }
    }
}
