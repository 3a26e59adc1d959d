// `spark-ls serve`: the language server over stdio or TCP (docs/LSP.md).
#include "app/serve.h"

#include "lsp/http_server.h"
#include "lsp/server.h"
#include "lsp/transport.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace spark {

namespace {

constexpr const char* serve_usage = R"(usage: spark-ls serve [--stdio] [--tcp PORT [--host ADDR]] [--model T.gguf]
                       [--draft D.gguf|default|none] [--threads N] [--log-file F] [--verbose]
       spark-ls serve --http PORT [--host ADDR] [--api-key KEY] [--max-body BYTES] [--max-queue N]
                       [--model T.gguf] [--draft D.gguf|default|none] [--threads N] [--log-file F]

Speaks LSP on stdin/stdout (the default; --stdio is accepted for clients that pass it) or, with --tcp, on
ADDR:PORT (default 127.0.0.1; PORT 0 picks a free port), one session per connection. Without --model the
embedded default models are used. Clients may override the models in their settings (docs/LSP.md).

With --http the engine is served over HTTP for a team instead (docs/remote.md): OpenAI-compatible
/v1/completions, llama.cpp's /infill and /completion, Ollama's /api/generate, /v1/models, /health, /metrics.
An API key (--api-key, or the SPARK_LS_API_KEY environment variable) is then required on every endpoint but
/health; binding an address other than loopback refuses to start without one. Bodies over --max-body bytes
(default 1048576) get 400; over --max-queue completions in flight (default 64) get 503.
  --test-double slow-engine   protocol-timing tests only: the engine pauses 20 ms per token and ignores
                              end-of-text and the stop rules
)";

bool parse_int(const char* s, long lo, long hi, long& out) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    out = v;
    return true;
}

}  // namespace

int cmd_serve(int argc, char** argv, int first) {
    lsp::server_options opts;
    std::string host = "127.0.0.1";
    long port = -1, http_port = -1;
    lsp::http_server_options http;
    if (const char* key = std::getenv("SPARK_LS_API_KEY")) http.api_key = key;
    for (int i = first; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* what) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "spark-ls serve: %s needs a value\n", what);
                std::exit(2);
            }
            return argv[++i];
        };
        long n = 0;
        if (a == "--help" || a == "-h") {
            std::fputs(serve_usage, stdout);
            return 0;
        } else if (a == "--stdio") {
        } else if (a == "--tcp") {
            if (!parse_int(value("--tcp"), 0, 65535, port)) {
                std::fprintf(stderr, "spark-ls serve: --tcp needs a port number 0-65535\n");
                return 2;
            }
        } else if (a == "--http") {
            if (!parse_int(value("--http"), 0, 65535, http_port)) {
                std::fprintf(stderr, "spark-ls serve: --http needs a port number 0-65535\n");
                return 2;
            }
        } else if (a == "--api-key") {
            http.api_key = value("--api-key");
        } else if (a == "--max-body") {
            if (!parse_int(value("--max-body"), 64, 1L << 30, n)) {
                std::fprintf(stderr, "spark-ls serve: --max-body needs a number of bytes 64-1073741824\n");
                return 2;
            }
            http.max_body = size_t(n);
        } else if (a == "--max-queue") {
            if (!parse_int(value("--max-queue"), 1, 100000, n)) {
                std::fprintf(stderr, "spark-ls serve: --max-queue needs a number 1-100000\n");
                return 2;
            }
            http.max_queue = size_t(n);
        } else if (a == "--host") {
            host = value("--host");
        } else if (a == "--model") {
            opts.model_path = value("--model");
        } else if (a == "--draft") {
            opts.draft_path = value("--draft");
        } else if (a == "--threads") {
            if (!parse_int(value("--threads"), 1, 1024, n)) {
                std::fprintf(stderr, "spark-ls serve: --threads needs a number 1-1024\n");
                return 2;
            }
            opts.threads = int(n);
        } else if (a == "--log-file") {
            const char* path = value("--log-file");
            if (std::FILE* probe = std::fopen(path, "a"))
                std::fclose(probe);
            else {
                std::fprintf(stderr, "spark-ls serve: cannot open --log-file %s\n", path);
                return 2;
            }
            if (!std::freopen(path, "a", stderr)) return 2;
            std::setvbuf(stderr, nullptr, _IOLBF, 0);  // whole lines, promptly
        } else if (a == "--verbose") {
            opts.verbose = true;
        } else if (a == "--test-double") {
            const std::string d = value("--test-double");
            if (d != "slow-engine") {
                std::fprintf(stderr, "spark-ls serve: the only test double is 'slow-engine'\n");
                return 2;
            }
            opts.slow_engine_test_double = true;
        } else if (a.starts_with("--clientProcessId") || a.starts_with("--node-ipc")) {
            // vscode-languageclient may append these; nothing to do with them.
        } else {
            std::fprintf(stderr, "spark-ls serve: unknown option '%s'\n\n%s", a.c_str(), serve_usage);
            return 2;
        }
    }
    if (http_port >= 0) {
        if (port >= 0) {
            std::fprintf(stderr, "spark-ls serve: --http and --tcp exclude each other (run two servers)\n");
            return 2;
        }
        http.host = host;
        http.port = uint16_t(http_port);
        http.engine = opts;
        return lsp::serve_http(http, [](const std::string& where) {
            std::fprintf(stderr, "spark-ls: http listening on %s\n", where.c_str());
            std::fflush(stderr);
        });
    }
    auto factory = [opts](lsp::channel& ch) { return lsp::make_server(ch, opts); };
    if (port < 0) return lsp::serve_stdio(factory);
    return lsp::serve_tcp(host, uint16_t(port), factory, [](const std::string& where) {
        std::fprintf(stderr, "spark-ls: listening on %s\n", where.c_str());
        std::fflush(stderr);
    });
}

}  // namespace spark
