// The seam between the transport (Boost.Asio, lsp/transport.cpp) and a protocol session (lsp/server.cpp), so that
// neither Asio nor JSON leaks into the other's headers.
//
// Thread contract: the transport runs one protocol thread per process (its io_context). Every session callback
// runs there, and every channel member runs there too except post(), which any thread may call (the engine thread
// uses it to hand results back, DESIGN §4).
#pragma once

#include "lsp/framing.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace spark::lsp {

// A pending timer; cancel() stops it from firing (no-op once it fired). Protocol thread only.
class timer_handle {
public:
    virtual ~timer_handle() = default;
    virtual void cancel() = 0;
};

// What a session may ask of its connection.
class channel {
public:
    virtual ~channel() = default;
    // Frames one body and queues it for writing; bodies go out in the order sent, one writer per connection.
    virtual void send(std::string body) = 0;
    // Any thread: runs f on the protocol thread later. Dropped silently once the connection is closed.
    virtual void post(std::function<void()> f) = 0;
    // Runs f on the protocol thread after delay, unless the handle is cancelled or the connection closed first.
    virtual std::shared_ptr<timer_handle> after(std::chrono::milliseconds delay, std::function<void()> f) = 0;
    // Ends the session once everything sent so far is written: stdio ends the process with exit_code, TCP closes
    // this connection only. Nothing more is read after this call.
    virtual void close(int exit_code) = 0;
};

// One LSP session: what the transport delivers to it.
class session {
public:
    virtual ~session() = default;
    // One complete body (not validated: may be anything).
    virtual void on_message(std::string body) = 0;
    // A framing error the reader recovered from (nothing to answer: there is no id).
    virtual void on_frame_error(const frame_error& error) = 0;
    // The peer closed its side (end of stdin, socket closed). The session is destroyed right after.
    virtual void on_disconnect() {}
};

using session_factory = std::function<std::unique_ptr<session>(channel&)>;

}  // namespace spark::lsp
