// The language server session: lifecycle, settings, documents and their syntax trees, request dispatch, the
// cancel map, and the completion service on top of the engine (DESIGN §2, §4, §7; the protocol is docs/LSP.md).
//
// Thread contract: a session lives on the protocol thread (lsp/channel.h). It owns an engine, loaded on a helper
// thread after `initialize`; engine results come back through channel::post. Nothing here blocks on inference.
#pragma once

#include "lsp/channel.h"

#include <memory>
#include <string>

namespace spark::lsp {

// Defaults from the command line; a client's settings (initializationOptions, didChangeConfiguration) override
// the model paths and threads.
struct server_options {
    std::string model_path;             // target GGUF; empty: the embedded default
    // Draft GGUF, "default" (the embedded draft) or "none". None by default: on small hosts the embedded target is
    // compute-bound and drafting with a model costs more than it saves (docs/PERFORMANCE.md, replay benchmark);
    // the copying drafters (n-gram, suffix, known continuation) always run.
    std::string draft_path = "none";
    int threads = 0;                    // target partition workers; 0: all cores
    bool verbose = false;               // log every message's method and timing to stderr
    // Test double for protocol-timing tests (docs/LSP.md): the real engine at 20 ms per token, ignoring
    // end-of-text and the stop rules, so a completion runs for maxTokens tokens (or timeBudgetMs) unless it is
    // cancelled.
    bool slow_engine_test_double = false;
};

std::unique_ptr<session> make_server(channel& ch, const server_options& options);

}  // namespace spark::lsp
