#include "lsp/transport.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <csignal>
#include <cstdio>
#include <deque>
#include <thread>
#include <unistd.h>

namespace spark::lsp {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

struct asio_timer final : timer_handle {
    explicit asio_timer(asio::io_context& io) : timer(io) {}
    void cancel() override { timer.cancel(); }
    asio::steady_timer timer;
};

// One session's connection: the frame reader, the write queue and the session itself. Subclasses supply the byte
// streams. Owned by shared_ptrs held in its pending operations; the session dies with it.
class connection : public channel, public std::enable_shared_from_this<connection> {
public:
    explicit connection(asio::io_context& io) : io_(io) {}
    ~connection() override { session_.reset(); }  // before the streams: the session may still post or send

    void start(const session_factory& make_session) {
        session_ = make_session(*this);
        read_more();
    }

    void send(std::string body) override {
        if (finished_) return;
        out_.push_back(frame_message(body));
        if (!writing_) write_next();
    }

    void post(std::function<void()> f) override {
        asio::post(io_, [w = weak_from_this(), f = std::move(f)] {
            if (auto c = w.lock(); c && !c->closing_) f();
        });
    }

    std::shared_ptr<timer_handle> after(std::chrono::milliseconds delay, std::function<void()> f) override {
        auto t = std::make_shared<asio_timer>(io_);
        t->timer.expires_after(delay);
        t->timer.async_wait([w = weak_from_this(), t, f = std::move(f)](const error_code& ec) {
            if (ec) return;
            if (auto c = w.lock(); c && !c->closing_) f();
        });
        return t;
    }

    void close(int exit_code) override {
        if (closing_) return;
        closing_ = true;
        exit_code_ = exit_code;
        if (!writing_) finish();
    }

    int exit_code() const { return exit_code_; }

protected:
    using io_handler = std::function<void(const error_code&, std::size_t)>;
    virtual void async_read(asio::mutable_buffer buf, io_handler h) = 0;
    virtual void async_write(asio::const_buffer buf, io_handler h) = 0;
    // Closes the streams; called once, when the session is over and everything was written.
    virtual void shutdown_streams() = 0;
    // The session is over (exit, or the peer went away).
    virtual void on_finished() {}

    asio::io_context& io_;

    void read_more() {
        if (closing_) return;
        async_read(asio::buffer(buf_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
            self->on_read(ec, n);
        });
    }

private:
    void on_read(const error_code& ec, std::size_t n) {
        if (closing_) return;
        if (ec) {  // end of input or a broken stream: the client is gone
            if (session_) session_->on_disconnect();
            close(1);
            return;
        }
        reader_.feed(std::string_view(buf_.data(), n));
        while (!closing_) {
            auto f = reader_.next();
            if (!f) break;
            if (*f)
                session_->on_message(std::move(**f));
            else
                session_->on_frame_error(f->error());
        }
        read_more();
    }

    void write_next() {
        if (out_.empty()) {
            writing_ = false;
            if (closing_) finish();
            return;
        }
        writing_ = true;
        async_write(asio::buffer(out_.front()), [self = shared_from_this()](const error_code& ec, std::size_t) {
            self->out_.pop_front();
            if (ec) {  // the client stopped reading: drop what is queued and end the session
                self->out_.clear();
                self->writing_ = false;
                self->closing_ = true;
                self->finish();
                return;
            }
            self->write_next();
        });
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        shutdown_streams();
        // The session may be on the stack (close() from inside on_message): destroy it from a fresh handler.
        asio::post(io_, [self = shared_from_this()] {
            self->session_.reset();
            self->on_finished();
        });
    }

    std::unique_ptr<session> session_;
    frame_reader reader_;
    std::array<char, 64 * 1024> buf_{};
    std::deque<std::string> out_;
    bool writing_ = false;
    bool closing_ = false;
    bool finished_ = false;
    int exit_code_ = 1;
};

// stdin/stdout. Descriptors that epoll refuses (regular files, /dev/null) fall back to a reader thread and to
// blocking writes.
class stdio_connection final : public connection {
public:
    explicit stdio_connection(asio::io_context& io) : connection(io), in_(io), out_(io) {
        error_code ec;
        in_.assign(::dup(STDIN_FILENO), ec);
        in_async_ = !ec;
        if (ec) in_.release();
        out_.assign(::dup(STDOUT_FILENO), ec);
        out_async_ = !ec;
        if (ec) out_.release();
    }
    ~stdio_connection() override {
        if (reader_.joinable()) reader_.detach();  // blocked in read(); the process is ending
    }

protected:
    void async_read(asio::mutable_buffer buf, io_handler h) override {
        if (in_async_) {
            in_.async_read_some(buf, std::move(h));
            return;
        }
        // A blocking read on a helper thread, its result posted back. One read in flight at a time.
        if (reader_.joinable()) reader_.join();
        reader_ = std::thread([this, buf, h = std::move(h), self = shared_from_this()]() mutable {
            const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
            asio::post(io_, [h = std::move(h), n, self] {
                if (n > 0)
                    h(error_code{}, std::size_t(n));
                else
                    h(asio::error::eof, 0);
            });
        });
    }

    void async_write(asio::const_buffer buf, io_handler h) override {
        if (out_async_) {
            asio::async_write(out_, buf, std::move(h));
            return;
        }
        const char* p = static_cast<const char*>(buf.data());
        std::size_t left = buf.size();
        error_code ec;
        while (left > 0) {
            const ssize_t n = ::write(STDOUT_FILENO, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ec = asio::error::broken_pipe;
                break;
            }
            p += n, left -= std::size_t(n);
        }
        asio::post(io_, [h = std::move(h), ec, n = buf.size() - left] { h(ec, n); });
    }

    void shutdown_streams() override {
        error_code ec;
        if (in_async_) in_.close(ec);
        if (out_async_) out_.close(ec);
    }

    void on_finished() override { io_.stop(); }

private:
    asio::posix::stream_descriptor in_, out_;
    bool in_async_ = false, out_async_ = false;
    std::thread reader_;
};

class tcp_connection final : public connection {
public:
    tcp_connection(asio::io_context& io, asio::ip::tcp::socket s) : connection(io), socket_(std::move(s)) {
        error_code ec;
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);  // small replies must not wait for Nagle
    }

protected:
    void async_read(asio::mutable_buffer buf, io_handler h) override { socket_.async_read_some(buf, std::move(h)); }
    void async_write(asio::const_buffer buf, io_handler h) override { asio::async_write(socket_, buf, std::move(h)); }
    void shutdown_streams() override {
        error_code ec;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

private:
    asio::ip::tcp::socket socket_;
};

}  // namespace

int serve_stdio(const session_factory& make_session) {
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context io;
    auto c = std::make_shared<stdio_connection>(io);
    c->start(make_session);
    io.run();
    const int code = c->exit_code();
    c.reset();
    return code;
}

namespace {

void accept_next(asio::ip::tcp::acceptor& acceptor, asio::io_context& io, const session_factory& make_session) {
    acceptor.async_accept([&acceptor, &io, &make_session](const error_code& ec, asio::ip::tcp::socket s) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            auto c = std::make_shared<tcp_connection>(io, std::move(s));
            c->start(make_session);
        }
        accept_next(acceptor, io, make_session);
    });
}

}  // namespace

int serve_tcp(const std::string& host, uint16_t port, const session_factory& make_session,
              const std::function<void(const std::string&)>& on_listening) {
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context io;
    error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        std::fprintf(stderr, "spark-ls: --host %s is not an IP address: %s\n", host.c_str(), ec.message().c_str());
        return 1;
    }
    asio::ip::tcp::acceptor acceptor(io);
    const asio::ip::tcp::endpoint ep(address, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::fprintf(stderr, "spark-ls: cannot listen on %s:%u: %s\n", host.c_str(), unsigned(port),
                     ec.message().c_str());
        return 1;
    }
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const error_code&, int) {
        error_code ignored;
        acceptor.close(ignored);
        io.stop();
    });
    accept_next(acceptor, io, make_session);
    const auto bound = acceptor.local_endpoint(ec);
    if (on_listening) on_listening(bound.address().to_string() + ":" + std::to_string(bound.port()));
    io.run();
    return 0;
}

}  // namespace spark::lsp
