// LSP base-protocol framing and JSON-RPC 2.0 classification: every split of the byte stream, every framing error
// and the recovery after it, every message shape, and a fuzz run over random and mutated streams.
// SPARK_FUZZ_ITERATIONS raises the fuzz count for a longer opt-in run.
#include "lsp/framing.h"
#include "lsp/jsonrpc.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <random>
#include <unordered_map>
#include <vector>

using namespace spark::lsp;
using json = nlohmann::json;

namespace {

std::vector<frame> drain(frame_reader& r) {
    std::vector<frame> out;
    while (auto f = r.next()) out.push_back(std::move(*f));
    return out;
}

std::vector<frame> read_all(std::string_view stream, frame_limits limits = {}) {
    frame_reader r(limits);
    r.feed(stream);
    return drain(r);
}

// Errors as "!kind" (appended, not `"!" + s`: GCC 12 warns falsely about that at -O2).
std::string err(frame_error_kind kind) {
    std::string out(1, '!');
    out.append(to_string(kind));
    return out;
}

// Bodies as strings and errors as "!kind", for whole-sequence comparisons.
std::vector<std::string> describe(const std::vector<frame>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames) out.push_back(f ? *f : err(f.error().kind));
    return out;
}

const std::string body_a = R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})";
const std::string body_b = R"({"jsonrpc":"2.0","method":"initialized","params":{}})";

rpc_error parse_failure(std::string_view body) {
    auto m = parse_message(body);
    REQUIRE_FALSE(m);
    return m.error();
}

int fuzz_iterations(int fallback) {
    if (const char* e = std::getenv("SPARK_FUZZ_ITERATIONS")) return std::max(1, std::atoi(e));
    return fallback;
}

}  // namespace

TEST_CASE("framing: one and several messages", "[jsonrpc]") {
    CHECK(describe(read_all(frame_message(body_a))) == std::vector<std::string>{body_a});
    CHECK(describe(read_all(frame_message(body_a) + frame_message(body_b) + frame_message(body_a))) ==
          std::vector<std::string>{body_a, body_b, body_a});
    CHECK(frame_message("{}") == "Content-Length: 2\r\n\r\n{}");
    CHECK(describe(read_all("Content-Length: 0\r\n\r\n")) == std::vector<std::string>{""});

    frame_reader r;
    CHECK(r.idle());
    CHECK_FALSE(r.next());
    r.feed("Content-Length: 5\r\n\r\nhel");
    CHECK_FALSE(r.next());
    CHECK_FALSE(r.idle());
    CHECK(r.pending_body_bytes() == 2);
    r.feed("lo");
    CHECK(describe(drain(r)) == std::vector<std::string>{"hello"});
    CHECK(r.idle());
}

TEST_CASE("framing: every split point gives the same messages", "[jsonrpc]") {
    const std::string stream = frame_message(body_a) + "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" +
                               "Content-Length: " + std::to_string(body_b.size()) + "\r\n\r\n" + body_b +
                               frame_message("") + frame_message("é");
    const auto whole = describe(read_all(stream));
    REQUIRE(whole == std::vector<std::string>{body_a, body_b, "", "é"});

    for (std::size_t split = 0; split <= stream.size(); ++split) {
        frame_reader r;
        r.feed(std::string_view(stream).substr(0, split));
        r.feed(std::string_view(stream).substr(split));
        CHECK(describe(drain(r)) == whole);
    }
    frame_reader bytewise;
    std::vector<frame> got;
    for (char c : stream) {
        bytewise.feed(std::string_view(&c, 1));
        for (auto& f : drain(bytewise)) got.push_back(std::move(f));
    }
    CHECK(describe(got) == whole);
}

TEST_CASE("framing: header variants", "[jsonrpc]") {
    const std::vector<std::string> hello{"hello"};
    CHECK(describe(read_all("content-length: 5\r\n\r\nhello")) == hello);
    CHECK(describe(read_all("CONTENT-LENGTH: 5\r\n\r\nhello")) == hello);
    CHECK(describe(read_all("Content-Length:5\r\n\r\nhello")) == hello);
    CHECK(describe(read_all("Content-Length: \t 5 \t\r\n\r\nhello")) == hello);
    CHECK(describe(read_all("Content-Length: 005\r\n\r\nhello")) == hello);
    CHECK(describe(read_all("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
                            "hello")) == hello);
    CHECK(describe(read_all("Content-Length: 5\r\ncontent-type: application/vscode-jsonrpc; charset=utf8\r\n\r\n"
                            "hello")) == hello);
    CHECK(describe(read_all("Content-Length: 5\r\nX-Unknown: whatever\r\n\r\nhello")) == hello);
    // Bare \n line ends are accepted, alone or mixed with \r\n.
    CHECK(describe(read_all("Content-Length: 5\n\nhello")) == hello);
    CHECK(describe(read_all("Content-Length: 5\r\n\nhello")) == hello);
    CHECK(describe(read_all("Content-Length: 5\n\r\nhello")) == hello);
    // Blank lines between frames are skipped.
    CHECK(describe(read_all("\r\n\r\nContent-Length: 5\r\n\r\nhello\r\n\nContent-Length: 2\r\n\r\nok")) ==
          std::vector<std::string>{"hello", "ok"});
    // The body is taken by length, whatever it contains.
    CHECK(describe(read_all("Content-Length: 22\r\n\r\nContent-Length: 1\r\n\r\nx")) ==
          std::vector<std::string>{"Content-Length: 1\r\n\r\nx"});
}

TEST_CASE("framing: each error is reported and the next message still arrives", "[jsonrpc]") {
    using k = frame_error_kind;
    const std::string good = frame_message(body_a);
    struct bad_case {
        std::string stream;
        k kind;
    };
    const std::vector<bad_case> cases = {
        {"Content-Type: text/plain\r\n\r\n{\"x\":1}", k::missing_content_length},
        {"\r\nX-Foo: bar\r\n\r\n", k::missing_content_length},
        {"Content-Length: -5\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: +5\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: abc\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: \r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: 5x\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: 0x10\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: 5 5\r\n\r\nhello", k::invalid_content_length},
        {"Content-Length: 18446744073709551616\r\n\r\n", k::invalid_content_length},     // 2^64
        {"Content-Length: 000000000000000000001\r\n\r\nx", k::invalid_content_length},   // 21 digits
        {"Content-Length: 99999999999999\r\n\r\n", k::invalid_content_length},           // above max_skip_bytes
        {"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", k::duplicate_content_length},
        {"Content-Length: 5\r\ncontent-length: 6\r\n\r\n", k::duplicate_content_length},
        {"hello world\r\n\r\n", k::malformed_header},
        {"{\"jsonrpc\":\"2.0\"}", k::malformed_header},
        {"Content Length: 5\r\n\r\nhello", k::malformed_header},
        {": 5\r\n\r\nhello", k::malformed_header},
        {"Content-Length: 5\rX\r\n\r\nhello", k::malformed_header},
        {"Content-Length: 5\r\n\rX", k::malformed_header},
        {std::string("Content-Length: 5\x01\r\n\r\nhello"), k::malformed_header},
        {std::string("Content-Length: 5\r\n\0\r\n", 22), k::malformed_header},
        {std::string(200, 'A') + ": x\r\n\r\n", k::malformed_header},
        {"X-Long: " + std::string(9000, 'a') + "\r\n\r\n", k::header_too_long},
    };
    for (const auto& c : cases) {
        INFO(c.stream.substr(0, 60));
        // The error comes first; the good frame after it is always read, whole or split at any byte.
        const auto got = describe(read_all(c.stream + good));
        REQUIRE(got.size() >= 2);
        CHECK(got.front() == err(c.kind));
        CHECK(got.back() == body_a);

        const std::string stream = c.stream + good;
        frame_reader r;
        std::vector<frame> bytewise;
        for (char ch : stream) {
            r.feed(std::string_view(&ch, 1));
            for (auto& f : drain(r)) bytewise.push_back(std::move(f));
            CHECK(r.buffered_bytes() <= 2 * r.limits().max_header_bytes + r.limits().max_body_bytes);
        }
        CHECK(describe(bytewise) == got);
    }
}

TEST_CASE("framing: error messages name the problem", "[jsonrpc]") {
    auto first_error = [](std::string_view stream) {
        auto frames = read_all(stream);
        REQUIRE_FALSE(frames.empty());
        REQUIRE_FALSE(frames.front());
        return frames.front().error().message;
    };
    CHECK_THAT(first_error("Content-Length: abc\r\n\r\n"), Catch::Contains("\"abc\""));
    CHECK_THAT(first_error("Content-Length: 1\r\nContent-Length: 2\r\n\r\n"), Catch::Contains("second"));
    CHECK_THAT(first_error("hello\x01\r\n"), Catch::Contains("hello"));
    CHECK_THAT(first_error("Content-Length: 99999999999999\r\n\r\n"), Catch::Contains("99999999999999"));
}

TEST_CASE("framing: recovery after garbage", "[jsonrpc]") {
    const std::string good = frame_message(body_a);
    const std::vector<std::string> garbage = {
        "xyz",                                           // no newline: the header follows directly
        "hello world\n",
        "xyzContent-Length: 5",                          // a header name with junk before it
        body_b,                                          // a body without a header
        "Content-Length: 12\r\n\r\n",                    // the frame's length swallows part of the next frame
        std::string(20000, 'z'),                         // longer than the header limit
        "\xff\xfe\x00\x01garbage",
        "Content-Length: 5\r\n\r\nhelloGARBAGE",        // a good frame, then junk
    };
    for (const auto& g : garbage) {
        INFO(g.substr(0, 40));
        // Whatever the garbage did, a second good frame after the first is read.
        const auto got = describe(read_all(g + good + good));
        REQUIRE_FALSE(got.empty());
        CHECK(got.back() == body_a);
    }
    // A stray log line before the first frame costs one error and nothing else.
    CHECK(describe(read_all("starting server...\n" + good)) ==
          std::vector<std::string>{err(frame_error_kind::malformed_header), body_a});
    CHECK(describe(read_all("xyz" + good)) == std::vector<std::string>{err(frame_error_kind::missing_content_length),
                                                                        body_a});
}

TEST_CASE("framing: an oversize body is skipped exactly, never stored", "[jsonrpc]") {
    frame_limits limits;
    limits.max_body_bytes = 16;
    const std::string inner = "Content-Length: 1\r\n\r\nx";  // inside the skipped body: must not be read
    const std::string oversize = "Content-Length: " + std::to_string(inner.size() + 10) + "\r\n\r\n" + inner +
                                 std::string(10, '#');
    const std::string good = frame_message(R"({"a":1})");

    CHECK(describe(read_all(oversize + good, limits)) ==
          std::vector<std::string>{err(frame_error_kind::body_too_large), R"({"a":1})"});

    frame_reader r(limits);
    r.feed("Content-Length: 1000000\r\n\r\n");
    auto frames = drain(r);
    REQUIRE(frames.size() == 1);  // reported at once, before the body arrives
    CHECK(frames[0].error().kind == frame_error_kind::body_too_large);
    CHECK_THAT(frames[0].error().message, Catch::Contains("1000000"));
    const std::string chunk(4096, 'q');
    for (std::size_t sent = 0; sent < 1000000; sent += chunk.size()) {
        r.feed(std::string_view(chunk).substr(0, std::min<std::size_t>(chunk.size(), 1000000 - sent)));
        CHECK(r.buffered_bytes() == 0);
    }
    CHECK(r.pending_body_bytes() == 0);
    CHECK(r.idle());
    r.feed(good);
    CHECK(describe(drain(r)) == std::vector<std::string>{R"({"a":1})"});

    // The default limits take a large body whole.
    const std::string big(3 * 1024 * 1024, 'b');
    CHECK(describe(read_all(frame_message(big))) == std::vector<std::string>{big});
}

TEST_CASE("jsonrpc: requests, notifications and responses", "[jsonrpc]") {
    SECTION("request with integer id") {
        auto m = parse_message(R"({"jsonrpc":"2.0","id":7,"method":"initialize","params":{"x":[1,2]}})");
        REQUIRE(m);
        CHECK(m->kind == message_kind::request);
        CHECK(m->id == request_id(std::int64_t(7)));
        CHECK(m->method == "initialize");
        REQUIRE(m->params);
        CHECK((*m->params)["x"] == json::array({1, 2}));
    }
    SECTION("request with string id, array params, negative and large ids") {
        auto m = parse_message(R"({"method":"m","params":[1],"id":"abc-1","jsonrpc":"2.0"})");
        REQUIRE(m);
        CHECK(m->kind == message_kind::request);
        CHECK(m->id == request_id(std::string("abc-1")));
        CHECK(m->params->is_array());
        CHECK(parse_message(R"({"jsonrpc":"2.0","id":-3,"method":"m"})")->id == request_id(std::int64_t(-3)));
        CHECK(parse_message(R"({"jsonrpc":"2.0","id":9223372036854775807,"method":"m"})")->id ==
              request_id(std::int64_t(9223372036854775807)));
        CHECK(parse_message(R"({"jsonrpc":"2.0","id":"","method":"m"})")->id == request_id(std::string()));
    }
    SECTION("notification; absent and null params") {
        auto m = parse_message(R"({"jsonrpc":"2.0","method":"exit"})");
        REQUIRE(m);
        CHECK(m->kind == message_kind::notification);
        CHECK_FALSE(m->id);
        CHECK_FALSE(m->params);
        auto n = parse_message(R"({"jsonrpc":"2.0","method":"shutdown","id":2,"params":null})");
        REQUIRE(n);
        CHECK(n->kind == message_kind::request);
        CHECK_FALSE(n->params);
    }
    SECTION("responses") {
        auto ok = parse_message(R"({"jsonrpc":"2.0","id":1,"result":{"a":1}})");
        REQUIRE(ok);
        CHECK(ok->kind == message_kind::response);
        CHECK(ok->id == request_id(std::int64_t(1)));
        REQUIRE(ok->result);
        CHECK((*ok->result)["a"] == 1);
        CHECK_FALSE(ok->error);

        auto null_result = parse_message(R"({"jsonrpc":"2.0","id":"w","result":null})");
        REQUIRE(null_result);
        REQUIRE(null_result->result);
        CHECK(null_result->result->is_null());

        auto error = parse_message(
            R"({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no such method","data":{"m":"x"}}})");
        REQUIRE(error);
        CHECK(error->kind == message_kind::response);
        CHECK_FALSE(error->result);
        REQUIRE(error->error);
        CHECK(error->error->code == -32601);
        CHECK(error->error->message == "no such method");
        REQUIRE(error->error->data);
        CHECK((*error->error->data)["m"] == "x");

        auto null_id = parse_message(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}})");
        REQUIRE(null_id);
        CHECK_FALSE(null_id->id);
        CHECK(null_id->error->code == -32700);
    }
}

TEST_CASE("jsonrpc: invalid requests carry the code and, when valid, the id", "[jsonrpc]") {
    struct bad_case {
        std::string body;
        error_code code;
        std::optional<request_id> id;
        bool reply;
    };
    const auto none = std::optional<request_id>();
    const auto id5 = std::optional<request_id>(std::int64_t(5));
    const auto ids = std::optional<request_id>(std::string("s"));
    const std::vector<bad_case> cases = {
        // Not JSON at all.
        {"", error_code::parse_error, none, true},
        {"  \r\n", error_code::parse_error, none, true},
        {"{", error_code::parse_error, none, true},
        {R"({"jsonrpc":"2.0","id":5,"method":"m"} x)", error_code::parse_error, none, true},
        {R"({"jsonrpc":"2.0","id":5,"method":"m",})", error_code::parse_error, none, true},
        {R"({"jsonrpc":"2.0","method":"m","params":{"s":"\ud800"}})", error_code::parse_error, none, true},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"s\":\"a\tb\"}}", error_code::parse_error, none, true},
        {R"({"jsonrpc":"2.0","id":5,"method":"m","params":[1e400]})", error_code::parse_error, none, true},
        // Batches, empty or not.
        {"[]", error_code::invalid_request, none, true},
        {R"([{"jsonrpc":"2.0","id":5,"method":"m"}])", error_code::invalid_request, none, true},
        // Not an object.
        {"42", error_code::invalid_request, none, true},
        {R"("text")", error_code::invalid_request, none, true},
        {"null", error_code::invalid_request, none, true},
        // Version.
        {R"({"id":5,"method":"m"})", error_code::invalid_request, id5, true},
        {R"({"jsonrpc":"1.0","id":5,"method":"m"})", error_code::invalid_request, id5, true},
        {R"({"jsonrpc":2.0,"id":"s","method":"m"})", error_code::invalid_request, ids, true},
        {R"({"jsonrpc":"2.0 ","method":"m"})", error_code::invalid_request, none, true},
        // Method.
        {R"({"jsonrpc":"2.0","id":5,"method":1})", error_code::invalid_request, id5, true},
        {R"({"jsonrpc":"2.0","method":null})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":5})", error_code::invalid_request, id5, true},
        {R"({"jsonrpc":"2.0"})", error_code::invalid_request, none, true},
        // Ids: null, fractional, boolean, object, out of int64 range.
        {R"({"jsonrpc":"2.0","id":null,"method":"m"})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":1.5,"method":"m"})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":1.0,"method":"m"})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":true,"method":"m"})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":{"a":1},"method":"m"})", error_code::invalid_request, none, true},
        {R"({"jsonrpc":"2.0","id":9223372036854775808,"method":"m"})", error_code::invalid_request, none, true},
        // Params neither object nor array.
        {R"({"jsonrpc":"2.0","id":5,"method":"m","params":"x"})", error_code::invalid_request, id5, true},
        {R"({"jsonrpc":"2.0","id":"s","method":"m","params":3})", error_code::invalid_request, ids, true},
        {R"({"jsonrpc":"2.0","method":"m","params":true})", error_code::invalid_request, none, true},
        // Broken responses: reported, never answered.
        {R"({"jsonrpc":"2.0","id":5,"result":1,"error":{"code":1,"message":"m"}})", error_code::invalid_request, id5,
         false},
        {R"({"jsonrpc":"2.0","result":1})", error_code::invalid_request, none, false},
        {R"({"jsonrpc":"2.0","id":null,"result":1})", error_code::invalid_request, none, false},
        {R"({"jsonrpc":"2.0","id":[1],"result":1})", error_code::invalid_request, none, false},
        {R"({"jsonrpc":"2.0","id":5,"error":"bad"})", error_code::invalid_request, id5, false},
        {R"({"jsonrpc":"2.0","id":5,"error":{"message":"m"}})", error_code::invalid_request, id5, false},
        {R"({"jsonrpc":"2.0","id":5,"error":{"code":1.5,"message":"m"}})", error_code::invalid_request, id5, false},
        {R"({"jsonrpc":"2.0","id":5,"error":{"code":1}})", error_code::invalid_request, id5, false},
        {R"({"id":5,"result":1})", error_code::invalid_request, id5, false},
    };
    for (const auto& c : cases) {
        INFO(c.body);
        const rpc_error e = parse_failure(c.body);
        CHECK(e.code == c.code);
        CHECK(e.id == c.id);
        CHECK(e.reply == c.reply);
        CHECK_FALSE(e.message.empty());
    }
}

TEST_CASE("jsonrpc: invalid UTF-8 and deep nesting are parse errors, not crashes", "[jsonrpc]") {
    for (std::string bad : {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                            std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82"), std::string("\x80")}) {
        const std::string prefix = R"({"jsonrpc":"2.0","method":"m","params":{"text":"ab)";
        const rpc_error e = parse_failure(prefix + bad + R"("}})");
        CHECK(e.code == error_code::parse_error);
        CHECK_THAT(e.message, Catch::Contains("UTF-8") && Catch::Contains("byte " + std::to_string(prefix.size())));
    }
    // Valid multi-byte text passes.
    auto ok = parse_message(R"({"jsonrpc":"2.0","method":"m","params":{"text":"é世😀"}})");
    REQUIRE(ok);
    CHECK((*ok->params)["text"] == "é世😀");

    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK(parse_failure(deep).code == error_code::parse_error);
    const std::string deep_params =
        R"({"jsonrpc":"2.0","method":"m","params":)" + std::string(600, '[') + std::string(600, ']') + "}";
    CHECK_THAT(parse_failure(deep_params).message, Catch::Contains("nested"));
    // Brackets inside strings do not count.
    const std::string in_string = R"({"jsonrpc":"2.0","method":"m","params":{"s":")" + std::string(1000, '[') +
                                  R"(\"\\"}})";
    CHECK(parse_message(in_string));
}

TEST_CASE("jsonrpc: builders round-trip", "[jsonrpc]") {
    const json params = {{"textDocument", {{"uri", "file:///a.py"}}}, {"position", {{"line", 1}, {"character", 2}}}};

    const std::string req = make_request(request_id(std::int64_t(42)), "textDocument/inlineCompletion", params);
    CHECK(req.starts_with(R"({"jsonrpc":"2.0",)"));
    auto r = parse_message(req);
    REQUIRE(r);
    CHECK(r->kind == message_kind::request);
    CHECK(r->id == request_id(std::int64_t(42)));
    CHECK(r->method == "textDocument/inlineCompletion");
    CHECK(*r->params == params);

    auto rs = parse_message(make_request(request_id(std::string("x\"y")), "m", json::array({1, "two"})));
    REQUIRE(rs);
    CHECK(rs->id == request_id(std::string("x\"y")));
    CHECK(*rs->params == json::array({1, "two"}));

    auto n = parse_message(make_notification("$/progress", {{"token", "t"}, {"value", {{"kind", "end"}}}}));
    REQUIRE(n);
    CHECK(n->kind == message_kind::notification);
    CHECK(n->method == "$/progress");
    CHECK((*n->params)["value"]["kind"] == "end");

    auto bare = parse_message(make_notification("exit"));
    REQUIRE(bare);
    CHECK(bare->kind == message_kind::notification);
    CHECK_FALSE(bare->params);

    auto resp = parse_message(make_response(request_id(std::string("r1")), {{"items", json::array()}}));
    REQUIRE(resp);
    CHECK(resp->kind == message_kind::response);
    CHECK(resp->id == request_id(std::string("r1")));
    CHECK((*resp->result)["items"].empty());
    auto null_resp = parse_message(make_response(request_id(std::int64_t(1)), nullptr));
    REQUIRE(null_resp);
    CHECK(null_resp->result->is_null());

    auto e = parse_message(make_error(request_id(std::int64_t(9)), error_code::request_cancelled, "cancelled"));
    REQUIRE(e);
    CHECK(e->id == request_id(std::int64_t(9)));
    CHECK(e->error->code == -32800);
    CHECK(e->error->message == "cancelled");
    CHECK_FALSE(e->error->data);

    auto ed = parse_message(
        make_error(std::nullopt, error_code::content_modified, "changed", json{{"uri", "file:///a"}}));
    REQUIRE(ed);
    CHECK_FALSE(ed->id);
    CHECK(ed->error->code == -32801);
    CHECK((*ed->error->data)["uri"] == "file:///a");

    // The reply to a failed parse is itself a well-formed error response with the right id.
    const rpc_error failure = parse_failure(R"({"jsonrpc":"2.0","id":5,"method":"m","params":1})");
    auto reply = parse_message(make_error(failure));
    REQUIRE(reply);
    CHECK(reply->id == request_id(std::int64_t(5)));
    CHECK(reply->error->code == -32600);
    auto null_reply = parse_message(make_error(parse_failure("{")));
    REQUIRE(null_reply);
    CHECK_FALSE(null_reply->id);
    CHECK(null_reply->error->code == -32700);

    // Strings that are not UTF-8 are repaired, not thrown on.
    auto repaired = parse_message(make_response(request_id(std::int64_t(1)), {{"text", std::string("ab\xff")}}));
    REQUIRE(repaired);
    CHECK((*repaired->result)["text"] == "ab\xEF\xBF\xBD");
    CHECK(parse_message(make_error(std::nullopt, error_code::internal_error, std::string("\xc3"))));

    CHECK(static_cast<int>(error_code::parse_error) == -32700);
    CHECK(static_cast<int>(error_code::invalid_request) == -32600);
    CHECK(static_cast<int>(error_code::method_not_found) == -32601);
    CHECK(static_cast<int>(error_code::invalid_params) == -32602);
    CHECK(static_cast<int>(error_code::internal_error) == -32603);
    CHECK(static_cast<int>(error_code::server_not_initialized) == -32002);
}

TEST_CASE("jsonrpc: request ids compare by type and value", "[jsonrpc]") {
    std::unordered_map<request_id, int> pending;
    pending[request_id(std::int64_t(1))] = 1;
    pending[request_id(std::string("1"))] = 2;
    CHECK(pending.size() == 2);
    CHECK(pending.at(request_id(std::int64_t(1))) == 1);
    CHECK(pending.at(request_id(std::string("1"))) == 2);
    CHECK(to_string(request_id(std::int64_t(-4))) == "-4");
    CHECK(to_string(request_id(std::string("a\"b"))) == R"("a\"b")");
    CHECK(id_to_json(request_id(std::string("z"))) == json("z"));
    CHECK(id_from_json(json(3)) == request_id(std::int64_t(3)));
    CHECK(id_from_json(json("3")) == request_id(std::string("3")));
    CHECK_FALSE(id_from_json(json(3.5)));
    CHECK_FALSE(id_from_json(json(nullptr)));
    CHECK_FALSE(id_from_json(json(std::uint64_t(1) << 63)));
}

// Random bytes, mutated valid streams, huge and hostile lengths, truncated frames and invalid UTF-8 bodies, fed to
// one long-lived reader in random chunks. Every body is classified, every error answer must itself parse, memory
// stays within the limits, and after each input the reader is brought back to a frame boundary (padding out any
// body it is waiting for) and must read the next valid frame.
TEST_CASE("framing and jsonrpc: fuzz", "[jsonrpc]") {
    const int iterations = fuzz_iterations(12000);
    std::mt19937_64 rng(20240611);
    auto pick = [&](std::size_t n) { return std::size_t(rng() % n); };

    frame_limits limits;
    limits.max_header_bytes = 512;
    limits.max_body_bytes = 2048;
    limits.max_skip_bytes = 16384;
    frame_reader reader(limits);
    const std::size_t memory_bound = 2 * limits.max_header_bytes + limits.max_body_bytes;

    const std::vector<std::string> seeds = {
        R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"general":{}}}})",
        R"({"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///a.py","version":2},"contentChanges":[{"text":"héllo 世界 😀\n"}]}})",
        R"({"jsonrpc":"2.0","id":"abc","result":null})",
        R"({"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope","data":[1,2,{"x":null}]}})",
        R"([{"jsonrpc":"2.0","method":"x"}])",
        R"({"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":3}})",
    };
    const std::vector<std::string> tokens = {
        "Content-Length: ", "content-length:", "Content-Type: x\r\n", "\r\n", "\n", "\r", "\r\n\r\n", ":", " ",
        "0", "-1", "+7", "18446744073709551615", "99999999999999999999999", "4096", "16385", "\"", "\\", "{", "}",
        "[", "]", std::string(1, '\0'), "null", "\"id\":", ",",
    };
    const std::vector<std::string> bad_utf8 = {"\xff", "\xc3", "\xed\xa0\x80", "\xf0\x9f\x98", "\xc0\x80"};
    auto mutate = [&](std::string s) {
        const int n = 1 + int(pick(8));
        for (int m = 0; m < n; ++m) {
            const std::size_t at = s.empty() ? 0 : pick(s.size() + 1);
            switch (pick(6)) {
                case 0: if (at < s.size()) s[at] = char(rng()); break;
                case 1: s.insert(at, 1, char(rng())); break;
                case 2: if (at < s.size()) s.erase(at, 1 + pick(8)); break;
                case 3: s.insert(at, tokens[pick(tokens.size())]); break;
                case 4: if (at < s.size()) s.insert(at, s.substr(at, 1 + pick(32))); break;
                default: if (!s.empty()) s.resize(pick(s.size())); break;
            }
        }
        return s;
    };
    auto random_bytes = [&] {
        std::string s(pick(300), '\0');
        const std::string_view alphabet = "Content-Length: 0123456789\r\n{}[]\":,";
        for (char& c : s) c = pick(2) ? alphabet[pick(alphabet.size())] : char(rng());
        return s;
    };

    std::size_t bodies = 0, errors = 0, recovered = 0, memory_violations = 0, bad_replies = 0, missed = 0;
    std::optional<incoming> last;  // the last body that classified
    auto consume = [&] {
        while (auto f = reader.next()) {
            if (!*f) {
                ++errors;
                continue;
            }
            ++bodies;
            auto m = parse_message(**f);
            if (m) last = std::move(*m);
            if (!m) {
                // Whatever we would answer must be a well-formed response.
                auto reply = parse_message(make_error(m.error()));
                if (!reply || reply->kind != message_kind::response) ++bad_replies;
            }
        }
    };
    auto feed_chunked = [&](std::string_view s) {
        while (!s.empty()) {
            const std::size_t n = std::min(s.size(), pick(4) == 0 ? std::size_t(1) : 1 + pick(200));
            reader.feed(s.substr(0, n));
            s.remove_prefix(n);
            if (reader.buffered_bytes() > memory_bound) ++memory_violations;
            consume();
        }
    };

    for (int it = 0; it < iterations; ++it) {
        std::string input;
        const std::string& seed = seeds[pick(seeds.size())];
        switch (it % 5) {
            case 0: input = random_bytes(); break;
            case 1: input = mutate(frame_message(seed) + frame_message(seeds[pick(seeds.size())])); break;
            case 2: {  // hostile lengths, with or without the bytes to back them
                static const char* lengths[] = {"0", "1", "2048", "2049", "16384", "16385", "4294967296",
                                                "9223372036854775807", "18446744073709551615",
                                                "18446744073709551616", "-1", "1e3", " 12 "};
                input = std::string("Content-Length: ") + lengths[pick(std::size(lengths))] + "\r\n\r\n" +
                        std::string(pick(3000), 'x');
                break;
            }
            case 3: {  // truncated frames
                const std::string f = frame_message(seed);
                input = f.substr(0, pick(f.size()));
                break;
            }
            default: {  // valid framing around mutated or non-UTF-8 bodies
                std::string body = mutate(seed);
                if (pick(2)) body.insert(pick(body.size() + 1), bad_utf8[pick(bad_utf8.size())]);
                input = frame_message(body);
                break;
            }
        }
        feed_chunked(input);

        // Back to a frame boundary: "\n\n" ends any partial header block; pad out any body being read or skipped.
        for (int round = 0; round < 16 && !reader.idle(); ++round) {
            if (const std::size_t p = reader.pending_body_bytes()) feed_chunked(std::string(p, ' '));
            if (!reader.idle()) feed_chunked("\n\n");
        }
        if (!reader.idle()) {
            ++missed;
            continue;
        }
        last.reset();
        const std::size_t errors_before = errors;
        feed_chunked(frame_message(make_request(request_id(std::int64_t(it)), "probe", json::object())));
        if (errors == errors_before && last && last->method == "probe" && last->id == request_id(std::int64_t(it)) &&
            reader.idle()) {
            ++recovered;
        }
    }
    INFO("bodies " << bodies << ", errors " << errors);
    CHECK(memory_violations == 0);
    CHECK(bad_replies == 0);
    CHECK(missed == 0);
    CHECK(recovered == std::size_t(iterations));
    CHECK(bodies > std::size_t(iterations));
    CHECK(errors > std::size_t(iterations) / 10);
}
