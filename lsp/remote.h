// Remote inference backends: the language server keeps its documents, tree-sitter decisions, prompt windows,
// cancellation, forwarding cache and stats, and sends the generation itself to a serving engine over HTTP
// (docs/remote.md): an OpenAI-compatible `/v1/completions` (vLLM, TGI, llama.cpp's server, `spark-ls serve --http`),
// llama.cpp's `/infill`, or Ollama's `/api/generate`.
//
// The request/response shapes and the stream decoder are plain functions here so they can be tested and fuzzed
// without a network; the HTTP client (Boost.Beast) lives in lsp/remote.cpp only.
//
// Thread contract: make_remote_backend() and submit() run on the protocol thread; each backend owns one I/O thread
// where its requests run and where `done` is called (exactly once per request). cancel() may be called from any
// thread: it closes the connection, which is how the serving side learns to stop generating.
#pragma once

#include "inference/speculative.h"
#include "support/result.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spark::lsp {

enum class remote_kind { openai, llama_cpp, ollama };

// "openai", "llama.cpp" (also "llamacpp", "infill"), "ollama"; nullopt for anything else.
std::optional<remote_kind> parse_remote_kind(std::string_view name);
std::string_view name(remote_kind kind);

struct remote_config {
    remote_kind kind = remote_kind::openai;
    std::string url;       // http://HOST[:PORT][/PREFIX]; the endpoint's path is appended to PREFIX
    std::string model;     // the served model's name (OpenAI and Ollama need one; llama.cpp ignores it)
    std::string api_key;   // sent as "Authorization: Bearer KEY" when not empty; never logged
    std::chrono::milliseconds timeout{5000};  // the whole request, connect to last byte
    // How the text around the cursor reaches the model. Empty: the backend's own fill-in-the-middle fields
    // (OpenAI `suffix`, llama.cpp `input_suffix`, Ollama `suffix`). Otherwise a prompt template built here with
    // the model's FIM tokens, sent as a plain prompt: a preset name (fim_presets()) or a string holding
    // "{prefix}" and "{suffix}".
    std::string fim_template;
    double temperature = 0.0;
};

// The preset FIM templates by name: qwen, deepseek, codellama, starcoder, spark.
const std::vector<std::pair<std::string_view, std::string_view>>& fim_presets();

// The template for a fim_template setting (a preset's text, or the setting itself when it holds both
// placeholders); an error names the presets.
result<std::string> resolve_fim_template(std::string_view setting);

// "{prefix}" and "{suffix}" of a template replaced once each (the texts themselves are not searched).
std::string apply_fim_template(std::string_view templ, std::string_view prefix, std::string_view suffix);

struct remote_file {
    std::string name;  // a path, as the backend shows it to the model
    std::string text;
};

struct remote_request {
    std::string prefix, suffix;         // the windows around the cursor
    std::vector<remote_file> extra;     // other files for context (llama.cpp's input_extra)
    int max_tokens = 64;
    // Called with the output so far; returns how many bytes to keep when it should end there, or npos to go on
    // (the tree-sitter stop rule). When it fires the connection is closed, so the server stops generating.
    std::function<size_t(std::string_view text)> stop_criterion;
};

struct parsed_url {
    std::string host, port, prefix;  // prefix: the path without a trailing '/', maybe empty
};

// Accepts http://HOST[:PORT][/PATH] (HOST may be [IPv6]); https is refused with a message saying why.
result<parsed_url> parse_http_url(std::string_view url);

// The endpoint's path for a backend ("/v1/completions", "/infill", "/api/generate") after the URL's prefix (a
// prefix that already ends with that path, or with "/v1" for OpenAI, is not repeated).
std::string endpoint_path(remote_kind kind, std::string_view prefix);

// The JSON request body for a backend (streaming always requested).
std::string remote_body(const remote_config& cfg, const std::string& fim_template, const remote_request& r);

// Decodes a response body as it arrives: server-sent events ("data: {...}" lines, OpenAI and llama.cpp), newline-
// delimited JSON (Ollama), or one JSON document (a server that did not stream). Any chunking of the bytes gives
// the same events. Malformed lines become an error, never an exception.
class stream_decoder {
public:
    enum class format { sse, ndjson, json };
    explicit stream_decoder(format f, size_t max_bytes = 8 << 20) : format_(f), max_bytes_(max_bytes) {}

    // The format for a response's Content-Type (event-stream: sse; ndjson: ndjson; otherwise json).
    static format for_content_type(std::string_view content_type);

    // Feeds bytes; text deltas are appended to `text`. Returns false once an error was seen (error() says it).
    bool feed(std::string_view bytes, std::string& text);
    // The body ended: decodes what is left (the whole document in json format). Returns false on error.
    bool finish(std::string& text);

    bool done() const { return done_; }                 // the server said the generation ended
    const std::string& error() const { return error_; }  // empty when none
    const std::string& finish_reason() const { return finish_reason_; }  // "stop", "length", ... when said
    int events() const { return events_; }              // text-carrying events (about one per token)

private:
    bool line(std::string_view l, std::string& text);
    bool object(std::string_view json_text, std::string& text);

    format format_;
    size_t max_bytes_;
    size_t total_ = 0;
    std::string pending_;
    bool done_ = false;
    std::string error_, finish_reason_;
    int events_ = 0;
};

// Generation work in flight: a remote request, or (in lsp/server.cpp) an engine request.
class generation_job {
public:
    virtual ~generation_job() = default;
    virtual void cancel() = 0;
};

// Why a remote request failed, for the message a user sees.
struct remote_failure {
    std::string message;
};

class remote_backend {
public:
    virtual ~remote_backend() = default;
    // Sends r. `done` runs once on the backend's thread: the generated text (reason max_tokens, criterion, eos or
    // cancelled) or an error whose message names the URL and what went wrong (refused, timed out, HTTP status).
    virtual std::shared_ptr<generation_job> submit(remote_request r,
                                               std::function<void(const result<generation_result>&)> done) = 0;
    virtual const remote_config& config() const = 0;
};

// Validates cfg (URL, template) and starts the backend's I/O thread.
result<std::unique_ptr<remote_backend>> make_remote_backend(const remote_config& cfg);

}  // namespace spark::lsp
