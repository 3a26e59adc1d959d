// `spark-ls serve --http PORT`: the in-process engine behind HTTP for a team (docs/remote.md): an OpenAI-compatible
// `/v1/completions` (with `suffix`), llama.cpp's `/infill` and `/completion`, Ollama's `/api/generate`, `/v1/models`,
// `/health` and Prometheus `/metrics`.
//
// Threads: one protocol thread (the caller's) runs Asio: accepting, parsing, writing. Requests go to the engine's
// own thread through its priority queue and come back with asio::post (DESIGN §4); the models load on a helper
// thread while /health answers 503.
#pragma once

#include "lsp/server.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace spark::lsp {

struct http_server_options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;            // 0: any free port
    std::string api_key;          // required ("Authorization: Bearer KEY") on every endpoint but /health when set;
                                  // a host other than a loopback address refuses to start without one
    size_t max_body = 1 << 20;    // request bodies above this get 400
    size_t max_queue = 64;        // completions queued or running; more get 503
    server_options engine;        // models, threads, the slow-engine test double
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

// Serves until SIGINT or SIGTERM. on_listening gets "host:port" once connections are accepted. Returns the exit
// code: 0 after a signal, 1 when the port cannot be bound or the models cannot be loaded, 2 for a non-loopback host
// without an API key.
int serve_http(const http_server_options& options, const std::function<void(const std::string&)>& on_listening);

}  // namespace spark::lsp
