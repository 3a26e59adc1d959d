#include "lsp/framing.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace spark::lsp {

namespace {

constexpr std::string_view content_length_name = "content-length";
constexpr std::size_t max_name_bytes = 128;
constexpr std::size_t max_length_digits = 20;  // 2^64-1 has 20 digits
constexpr std::size_t max_reserve = 64 * 1024;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

// RFC 9110 token characters: the only bytes allowed in a header name.
bool is_token(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 'a' && u <= 'z') return true;
    if (u >= 'A' && u <= 'Z') return true;
    if (u >= '0' && u <= '9') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_value_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A short, printable rendering of untrusted bytes for a log line.
std::string quote(std::string_view s, std::size_t max = 40) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u == '\r') {
            out += "\\r";
        } else if (u == '\n') {
            out += "\\n";
        } else if (u == '"' || u == '\\') {
            out += '\\';
            out += char(u);
        } else if (u < 0x20 || u >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += char(u);
        }
    }
    if (s.size() > max) out += "...";
    out += '"';
    return out;
}

}  // namespace

std::string_view to_string(frame_error_kind kind) {
    switch (kind) {
        case frame_error_kind::malformed_header: return "malformed header";
        case frame_error_kind::header_too_long: return "header too long";
        case frame_error_kind::missing_content_length: return "missing Content-Length";
        case frame_error_kind::invalid_content_length: return "invalid Content-Length";
        case frame_error_kind::duplicate_content_length: return "duplicate Content-Length";
        case frame_error_kind::body_too_large: return "body too large";
    }
    return "framing error";
}

frame_reader::frame_reader(frame_limits limits) : limits_(limits) {
    limits_.max_header_bytes = std::max<std::size_t>(limits_.max_header_bytes, 32);
    limits_.max_skip_bytes = std::max(limits_.max_skip_bytes, limits_.max_body_bytes);
}

void frame_reader::feed(std::string_view in) {
    for (;;) {
        // Bytes handed back by a header error are rescanned before any new input. An error while rescanning
        // hands back a strictly shorter tail (the block minus its first byte, plus the unread rest), so this ends.
        while (!replay_.empty()) {
            std::string again = std::move(replay_);
            replay_.clear();
            std::string_view rest = again;
            while (!rest.empty()) {
                rest.remove_prefix(step(rest));
                if (!replay_.empty()) {
                    replay_.append(rest);
                    break;
                }
            }
        }
        if (in.empty()) return;
        in.remove_prefix(step(in));
    }
}

std::optional<frame> frame_reader::next() {
    if (ready_.empty()) return std::nullopt;
    frame f = std::move(ready_.front());
    ready_.pop_front();
    return f;
}

std::size_t frame_reader::pending_body_bytes() const {
    return (state_ == state::body || state_ == state::skip) ? std::size_t(remaining_) : 0;
}

bool frame_reader::idle() const {
    return (state_ == state::line_start && header_.empty()) || state_ == state::resync;
}

std::size_t frame_reader::buffered_bytes() const { return header_.size() + body_.size() + replay_.size(); }

std::size_t frame_reader::step(std::string_view in) {
    switch (state_) {
        case state::body: {
            const std::size_t n = std::size_t(std::min<std::uint64_t>(remaining_, in.size()));
            body_.append(in.substr(0, n));
            remaining_ -= n;
            if (remaining_ == 0) {
                ready_.emplace_back(std::move(body_));
                body_ = {};
                state_ = state::line_start;
            }
            return n;
        }
        case state::skip: {
            const std::size_t n = std::size_t(std::min<std::uint64_t>(remaining_, in.size()));
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::line_start;
            return n;
        }
        case state::resync:
            return step_resync(in);
        default:
            return step_header(in);
    }
}

// Looks for the next case-insensitive "content-length" and restarts header parsing at it. The pattern has no
// proper prefix that is also a suffix ('c' occurs once), so a mismatch restarts the match at 0 or 1.
std::size_t frame_reader::step_resync(std::string_view in) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = lower(in[i]);
        if (c == content_length_name[match_]) {
            if (++match_ == content_length_name.size()) {
                match_ = 0;
                reset_header();
                state_ = state::line_start;
                // Case does not matter to the header parser, so the matched name is re-fed in canonical form.
                for (char n : content_length_name) header_byte(n);
                return i + 1;
            }
        } else {
            match_ = (c == content_length_name[0]) ? 1 : 0;
        }
    }
    return in.size();
}

std::size_t frame_reader::step_header(std::string_view in) {
    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i++];
        if (!header_byte(c)) break;
    }
    return i;
}

// Feeds one byte of a header block. Returns false when the block ended (a body, skip or resync follows) or an
// error was reported; the byte counts as consumed either way.
bool frame_reader::header_byte(char c) {
    if (state_ == state::line_start && header_.empty() && (c == '\r' || c == '\n')) return true;  // between frames
    header_.push_back(c);
    switch (state_) {
        case state::line_start:
            if (c == '\r') {
                state_ = state::blank_cr;
            } else if (c == '\n') {
                finish_block();
                return false;
            } else if (is_token(c)) {
                line_begin_ = header_.size() - 1;
                state_ = state::name;
            } else {
                header_error(frame_error_kind::malformed_header,
                             "header line starts with " + quote(std::string_view(&c, 1)));
                return false;
            }
            break;
        case state::name:
            if (c == ':') {
                colon_ = header_.size() - 1;
                state_ = state::value;
            } else if (!is_token(c)) {
                header_error(frame_error_kind::malformed_header,
                             "header line " + quote(std::string_view(header_).substr(line_begin_)) +
                                 " is not 'Name: value'");
                return false;
            } else if (header_.size() - line_begin_ > max_name_bytes) {
                header_error(frame_error_kind::malformed_header,
                             "header name " + quote(std::string_view(header_).substr(line_begin_)) + " is longer than " +
                                 std::to_string(max_name_bytes) + " bytes");
                return false;
            }
            break;
        case state::value:
            if (c == '\r') {
                state_ = state::value_cr;
            } else if (c == '\n') {
                if (!finish_line()) return false;
                state_ = state::line_start;
            } else if (!is_value_byte(c)) {
                header_error(frame_error_kind::malformed_header,
                             "control byte in header line " + quote(std::string_view(header_).substr(line_begin_)));
                return false;
            }
            break;
        case state::value_cr:
            if (c != '\n') {
                header_error(frame_error_kind::malformed_header,
                             "'\\r' not followed by '\\n' in header line " +
                                 quote(std::string_view(header_).substr(line_begin_)));
                return false;
            }
            if (!finish_line()) return false;
            state_ = state::line_start;
            break;
        case state::blank_cr:
            if (c != '\n') {
                header_error(frame_error_kind::malformed_header, "'\\r' not followed by '\\n' after the headers");
                return false;
            }
            finish_block();
            return false;
        default:
            break;
    }
    if (header_.size() >= limits_.max_header_bytes) {
        header_error(frame_error_kind::header_too_long,
                     "no end of headers within " + std::to_string(limits_.max_header_bytes) + " bytes");
        return false;
    }
    return true;
}

// A complete `Name: value` line is in header_[line_begin_, end). Returns false when it was an error.
bool frame_reader::finish_line() {
    const std::string_view line = std::string_view(header_).substr(line_begin_);
    const std::string_view name = line.substr(0, colon_ - line_begin_);
    if (!iequals(name, content_length_name)) return true;  // Content-Type and unknown headers: ignored
    length_line_ = line_begin_;

    std::string_view value = line.substr(colon_ - line_begin_ + 1);
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
    value = trim(value);
    if (content_length_) {
        header_error(frame_error_kind::duplicate_content_length,
                     "second Content-Length " + quote(value) + " after " + std::to_string(*content_length_));
        return false;
    }
    std::uint64_t n = 0;
    const bool digits = !value.empty() && value.size() <= max_length_digits &&
                        std::all_of(value.begin(), value.end(), [](char d) { return d >= '0' && d <= '9'; });
    const auto parsed = digits ? std::from_chars(value.data(), value.data() + value.size(), n)
                               : std::from_chars_result{value.data(), std::errc::invalid_argument};
    if (parsed.ec != std::errc{} || parsed.ptr != value.data() + value.size()) {
        header_error(frame_error_kind::invalid_content_length,
                     "Content-Length " + quote(value) + " is not a decimal byte count");
        return false;
    }
    if (n > limits_.max_skip_bytes) {
        header_error(frame_error_kind::invalid_content_length,
                     "Content-Length " + std::to_string(n) + " is implausibly large (limit " +
                         std::to_string(limits_.max_skip_bytes) + ")");
        return false;
    }
    content_length_ = n;
    return true;
}

void frame_reader::finish_block() {
    if (!content_length_) {
        header_error(frame_error_kind::missing_content_length, "header block without Content-Length");
        return;
    }
    const std::uint64_t n = *content_length_;
    reset_header();
    if (n > limits_.max_body_bytes) {
        ready_.emplace_back(std::unexpected(frame_error{
            frame_error_kind::body_too_large, "body of " + std::to_string(n) + " bytes is over the limit of " +
                                                  std::to_string(limits_.max_body_bytes) + "; skipped"}));
        remaining_ = n;
        state_ = state::skip;
    } else if (n == 0) {
        ready_.emplace_back(std::string());
        state_ = state::line_start;
    } else {
        body_.clear();
        body_.reserve(std::size_t(std::min<std::uint64_t>(n, max_reserve)));
        remaining_ = n;
        state_ = state::body;
    }
}

void frame_reader::header_error(frame_error_kind kind, std::string message) {
    ready_.emplace_back(std::unexpected(frame_error{kind, std::move(message)}));
    if (header_.size() > length_line_ + 1) replay_.assign(header_, length_line_ + 1);
    reset_header();
    match_ = 0;
    state_ = state::resync;
}

void frame_reader::reset_header() {
    header_.clear();
    line_begin_ = 0;
    colon_ = 0;
    length_line_ = 0;
    content_length_.reset();
}

std::string frame_message(std::string_view body) {
    std::string out = "Content-Length: ";
    out += std::to_string(body.size());
    out += "\r\n\r\n";
    out += body;
    return out;
}

}  // namespace spark::lsp
