// LSP base protocol framing: `Content-Length: N\r\n[Content-Type: …\r\n]\r\n` followed by N bytes of body.
//
// frame_reader is a push parser with no I/O: the transport feeds it whatever bytes arrived, in any split, and pulls
// complete bodies (or framing errors) out. It never throws, never stores more than one header block
// (limits.max_header_bytes) plus one body (limits.max_body_bytes) plus the frames already completed and not yet
// pulled, and always makes progress: every error is followed by a resynchronisation, so one bad frame costs one
// error, not the connection.
//
// What it accepts (deliberately a little wider than the spec, never narrower):
// - Header names are case-insensitive (`content-length`, `CONTENT-LENGTH`). Values may be surrounded by spaces and
//   tabs. Only Content-Length is interpreted; Content-Type and any other well-formed header are accepted and
//   ignored (the spec allows only utf-8 bodies, so there is nothing to act on).
// - Header lines end with `\r\n` or a bare `\n`, so the block may end with `\r\n\r\n`, `\n\n` or a mix. VS Code,
//   Neovim and LSP4IJ always send `\r\n`; hand-written test clients and `printf` pipelines often send `\n`, and
//   accepting it costs nothing because the body length comes from Content-Length, not from a terminator.
// - Blank lines (`\r`, `\n`) between frames are skipped silently.
//
// What it reports (frame_error_kind), and how it recovers:
// - malformed_header: a line that is not `token ":" value`, a header name over 128 bytes, a control byte in a
//   value, a `\r` not followed by `\n`. Detected eagerly, as soon as the offending byte arrives.
// - header_too_long: no blank line within limits.max_header_bytes.
// - missing_content_length, duplicate_content_length (even with equal values).
// - invalid_content_length: empty, signed (`-5`, `+5`), non-decimal, more than 20 digits, above 2^64-1, or above
//   limits.max_skip_bytes (a length no client means; skipping it would swallow the rest of the session).
//   After each of the errors above the reader resynchronises: it rescans the bad block for the next
//   case-insensitive `Content-Length` (anywhere, not only at a line start: after a frame whose length was lost,
//   the next header follows the body without a newline) and discards everything before it. The rescan starts one
//   byte into the block, or one byte into the block's last Content-Length line when it has one, so that a header
//   already rejected (a duplicate, an invalid value) is not read again.
// - body_too_large: a well-formed length above limits.max_body_bytes (and within max_skip_bytes). The error is
//   reported as soon as the header block is complete; the next N bytes are then skipped exactly, never stored, and
//   the frame after them is read normally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace spark::lsp {

struct frame_limits {
    std::size_t max_header_bytes = 8 * 1024;                  // one header block, terminator included
    std::size_t max_body_bytes = 64ull * 1024 * 1024;         // larger bodies are skipped and reported
    std::size_t max_skip_bytes = 4ull * 1024 * 1024 * 1024;   // larger lengths are invalid and resynchronised
};

enum class frame_error_kind {
    malformed_header,
    header_too_long,
    missing_content_length,
    invalid_content_length,
    duplicate_content_length,
    body_too_large,
};

std::string_view to_string(frame_error_kind kind);

struct frame_error {
    frame_error_kind kind;
    std::string message;  // one line for the log, names the offending value where there is one

    bool operator==(const frame_error&) const = default;
};

// One pulled item: a complete body (not validated: may be empty, not JSON, not UTF-8) or a framing error.
using frame = std::expected<std::string, frame_error>;

// Not thread-safe: one reader per connection, fed and drained by the connection's reader coroutine.
class frame_reader {
public:
    explicit frame_reader(frame_limits limits = {});

    // Processes `bytes` at once (headers parsed, bodies collected, oversize bodies skipped, garbage discarded) and
    // queues every frame it completes; the bytes need not outlive the call.
    void feed(std::string_view bytes);

    // The oldest completed frame or error, or nullopt when more bytes are needed.
    std::optional<frame> next();

    // True when no frame is partly read: between frames, or discarding bytes while resynchronising. The next
    // complete frame fed is then read as it is.
    bool idle() const;
    // Bytes still expected for the body being collected or skipped; 0 between frames.
    std::size_t pending_body_bytes() const;
    // Bytes held for the current header block and body, not counting queued frames. Bounded by
    // max_header_bytes + max_body_bytes.
    std::size_t buffered_bytes() const;
    // Frames and errors completed and not yet pulled.
    std::size_t queued() const { return ready_.size(); }

    const frame_limits& limits() const { return limits_; }

private:
    enum class state {
        line_start,   // at the start of a header line (or before the first one)
        name,         // inside a header name
        value,        // inside a header value
        value_cr,     // saw '\r' at the end of a value
        blank_cr,     // saw '\r' at the start of a line inside a block
        body,         // collecting body_
        skip,         // discarding an oversize body
        resync,       // discarding until the next "content-length"
    };

    std::size_t step(std::string_view in);         // consumes a prefix of `in`, returns its length
    std::size_t step_header(std::string_view in);
    std::size_t step_resync(std::string_view in);
    bool header_byte(char c);                      // false when the block ended or an error was reported
    bool finish_line();
    void finish_block();
    void header_error(frame_error_kind kind, std::string message);
    void reset_header();

    frame_limits limits_;
    state state_ = state::line_start;
    std::string header_;          // the current header block as received, for resynchronisation
    std::size_t line_begin_ = 0;  // offset of the current line in header_
    std::size_t colon_ = 0;       // offset of the current line's ':' in header_
    std::size_t length_line_ = 0;  // offset of the block's last Content-Length line in header_ (0 when none)
    std::optional<std::uint64_t> content_length_;
    std::size_t match_ = 0;        // resync: bytes of "content-length" matched so far
    std::string body_;
    std::uint64_t remaining_ = 0;  // body or skip bytes still expected
    std::string replay_;           // bytes to rescan before new input, after a header error
    std::deque<frame> ready_;
};

// `Content-Length: N\r\n\r\n` + body.
std::string frame_message(std::string_view body);

}  // namespace spark::lsp
