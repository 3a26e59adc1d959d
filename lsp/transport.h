// LSP transports on Boost.Asio: standard input/output, and TCP with one session per connection. One protocol
// thread (the caller's) runs everything; sessions hand work to other threads themselves and come back through
// channel::post (lsp/channel.h).
//
// Reading: chunks of up to 64 KiB go through a frame_reader (lsp/framing.h), so malformed or oversize frames cost an
// error report to the session, never the connection. Writing: one queue per connection, one write in flight.
// SIGPIPE is ignored: a client that vanishes mid-write ends its session, not the process.
#pragma once

#include "lsp/channel.h"

#include <cstdint>
#include <functional>
#include <string>

namespace spark::lsp {

// Serves one session on stdin/stdout until the session closes (exit) or stdin ends. Returns the exit code the
// session chose (1 when stdin ended first). Standard input that cannot be polled (a regular file) is read by a
// helper thread instead; standard output that cannot be polled is written synchronously.
int serve_stdio(const session_factory& make_session);

// Listens on host:port (port 0: any free port) and serves each accepted connection with its own session, until
// SIGINT or SIGTERM. on_listening gets "host:port" once connections are accepted. Returns the process exit code;
// a bind failure is reported to stderr and returns 1.
int serve_tcp(const std::string& host, uint16_t port, const session_factory& make_session,
              const std::function<void(const std::string&)>& on_listening);

}  // namespace spark::lsp
