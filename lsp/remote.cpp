// Remote backends: request bodies, the stream decoder, and the HTTP client on Boost.Beast (one I/O thread per
// backend). The field names follow each backend's public API documentation; docs/remote.md cites them.
#include "lsp/remote.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

namespace spark::lsp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

std::optional<remote_kind> parse_remote_kind(std::string_view n) {
    if (n == "openai") return remote_kind::openai;
    if (n == "llama.cpp" || n == "llamacpp" || n == "infill") return remote_kind::llama_cpp;
    if (n == "ollama") return remote_kind::ollama;
    return std::nullopt;
}

std::string_view name(remote_kind k) {
    switch (k) {
        case remote_kind::openai: return "openai";
        case remote_kind::llama_cpp: return "llama.cpp";
        case remote_kind::ollama: return "ollama";
    }
    return "?";
}

const std::vector<std::pair<std::string_view, std::string_view>>& fim_presets() {
    // Prefix-suffix-middle, as each family was trained (the models' tokenizer configs name these tokens).
    static const std::vector<std::pair<std::string_view, std::string_view>> presets = {
        {"qwen", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"},
        {"deepseek", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>{prefix}<\xEF\xBD\x9C" "fim\xE2\x96\x81"
                     "hole\xEF\xBD\x9C>{suffix}<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>"},
        {"codellama", "<PRE> {prefix} <SUF>{suffix} <MID>"},
        {"starcoder", "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"},
        {"spark", "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"},
    };
    return presets;
}

result<std::string> resolve_fim_template(std::string_view setting) {
    for (const auto& [n, t] : fim_presets())
        if (setting == n) return std::string(t);
    if (setting.find("{prefix}") != std::string_view::npos && setting.find("{suffix}") != std::string_view::npos)
        return std::string(setting);
    std::string names;
    for (const auto& [n, t] : fim_presets()) names.append(names.empty() ? "" : ", ").append(n);
    return fail("fimTemplate '", setting, "' is neither a preset (", names,
                ") nor a template holding {prefix} and {suffix}");
}

std::string apply_fim_template(std::string_view templ, std::string_view prefix, std::string_view suffix) {
    std::string out;
    out.reserve(templ.size() + prefix.size() + suffix.size());
    bool did_prefix = false, did_suffix = false;
    size_t i = 0;
    while (i < templ.size()) {
        if (!did_prefix && templ.substr(i).starts_with("{prefix}")) {
            out.append(prefix), i += 8, did_prefix = true;
        } else if (!did_suffix && templ.substr(i).starts_with("{suffix}")) {
            out.append(suffix), i += 8, did_suffix = true;
        } else {
            out.push_back(templ[i++]);
        }
    }
    return out;
}

result<parsed_url> parse_http_url(std::string_view url) {
    if (url.starts_with("https://"))
        return fail("backend URL ", url, ": https is not supported; use http:// on a trusted network, or a local ",
                    "TLS-terminating proxy (docs/remote.md)");
    if (!url.starts_with("http://")) return fail("backend URL '", url, "' must start with http://");
    std::string_view rest = url.substr(7);
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos)
        return fail("backend URL ", url, ": credentials in the URL are not supported; use the apiKey setting");
    parsed_url out;
    if (authority.starts_with("[")) {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("backend URL ", url, ": unclosed '[' in the host");
        out.host = std::string(authority.substr(1, close - 1));
        authority = authority.substr(close + 1);
        if (!authority.empty() && !authority.starts_with(":")) return fail("backend URL ", url, ": bad host");
        out.port = authority.empty() ? "80" : std::string(authority.substr(1));
    } else {
        const size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        out.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    }
    if (out.host.empty()) return fail("backend URL ", url, " has no host");
    if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(out.port) == 0 || std::stoul(out.port) > 65535)
        return fail("backend URL ", url, ": bad port '", out.port, "'");
    const size_t q = path.find_first_of("?#");
    if (q != std::string_view::npos) path = path.substr(0, q);
    while (path.ends_with("/")) path.remove_suffix(1);
    out.prefix = std::string(path);
    return out;
}

std::string endpoint_path(remote_kind kind, std::string_view prefix) {
    std::string p(prefix);
    switch (kind) {
        case remote_kind::openai:
            if (p.ends_with("/v1/completions")) return p;
            if (p.ends_with("/v1")) return p + "/completions";
            return p + "/v1/completions";
        case remote_kind::llama_cpp: return p.ends_with("/infill") ? p : p + "/infill";
        case remote_kind::ollama: return p.ends_with("/api/generate") ? p : p + "/api/generate";
    }
    return p;
}

std::string remote_body(const remote_config& cfg, const std::string& fim_template, const remote_request& r) {
    json j;
    const bool templated = !fim_template.empty();
    const std::string prompt = templated ? apply_fim_template(fim_template, r.prefix, r.suffix) : r.prefix;
    switch (cfg.kind) {
        case remote_kind::openai:
            // OpenAI legacy completions: prompt, suffix, max_tokens, temperature, stream.
            if (!cfg.model.empty()) j["model"] = cfg.model;
            j["prompt"] = prompt;
            if (!templated) j["suffix"] = r.suffix;
            j["max_tokens"] = r.max_tokens;
            j["temperature"] = cfg.temperature;
            j["stream"] = true;
            break;
        case remote_kind::llama_cpp:
            // llama.cpp server /infill: input_prefix, input_suffix, input_extra [{filename, text}], n_predict,
            // cache_prompt (reuse the KV cache of the previous request), stream. With a template the whole FIM
            // prompt goes in `prompt` (what /completion reads) with empty input_prefix/input_suffix.
            j["input_prefix"] = templated ? "" : r.prefix;
            j["input_suffix"] = templated ? "" : r.suffix;
            if (templated) j["prompt"] = prompt;
            j["input_extra"] = json::array();
            for (const remote_file& f : r.extra) j["input_extra"].push_back({{"filename", f.name}, {"text", f.text}});
            j["n_predict"] = r.max_tokens;
            j["temperature"] = cfg.temperature;
            j["cache_prompt"] = true;
            j["stream"] = true;
            break;
        case remote_kind::ollama:
            // Ollama /api/generate: model, prompt, suffix (the model's template does FIM), or raw with a prompt
            // built here; options.num_predict, options.temperature; newline-delimited JSON when streaming.
            j["model"] = cfg.model;
            j["prompt"] = prompt;
            if (templated)
                j["raw"] = true;
            else
                j["suffix"] = r.suffix;
            j["stream"] = true;
            j["options"] = {{"num_predict", r.max_tokens}, {"temperature", cfg.temperature}};
            break;
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- stream decoder ----------------------------------------------------------------------------------------

stream_decoder::format stream_decoder::for_content_type(std::string_view ct) {
    if (ct.find("event-stream") != std::string_view::npos) return format::sse;
    if (ct.find("ndjson") != std::string_view::npos || ct.find("jsonl") != std::string_view::npos) return format::ndjson;
    return format::json;
}

bool stream_decoder::feed(std::string_view bytes, std::string& text) {
    if (!error_.empty()) return false;
    total_ += bytes.size();
    if (total_ > max_bytes_) {
        error_ = "the response is larger than " + std::to_string(max_bytes_) + " bytes";
        return false;
    }
    pending_.append(bytes);
    if (format_ == format::json) return true;
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view l(pending_.data() + start, nl - start);
        if (l.ends_with('\r')) l.remove_suffix(1);
        if (!line(l, text)) {
            pending_.clear();
            return false;
        }
    }
    pending_.erase(0, start);
    return true;
}

bool stream_decoder::finish(std::string& text) {
    if (!error_.empty()) return false;
    std::string rest = std::move(pending_);
    pending_.clear();
    if (format_ == format::json) {
        if (rest.find_first_not_of(" \t\r\n") == std::string::npos) {
            error_ = "the response body is empty";
            return false;
        }
        return object(rest, text);
    }
    if (std::string_view r(rest); !r.empty()) {
        if (r.ends_with('\r')) r.remove_suffix(1);
        return line(r, text);
    }
    return true;
}

bool stream_decoder::line(std::string_view l, std::string& text) {
    if (format_ == format::ndjson) {
        if (l.find_first_not_of(" \t") == std::string_view::npos) return true;
        return object(l, text);
    }
    // Server-sent events: only data lines carry anything; comments (":"), event:, id:, retry: are skipped.
    if (!l.starts_with("data:")) return true;
    std::string_view d = l.substr(5);
    if (d.starts_with(' ')) d.remove_prefix(1);
    if (d == "[DONE]") {
        done_ = true;
        return true;
    }
    if (d.empty()) return true;
    return object(d, text);
}

bool stream_decoder::object(std::string_view s, std::string& text) {
    json j = json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error_ = "the response holds malformed JSON: " + std::string(s.substr(0, 120));
        return false;
    }
    // Errors: OpenAI and llama.cpp {"error": {"message"}}, Ollama and TGI {"error": "..."}.
    if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
        if (e->is_string())
            error_ = e->get<std::string>();
        else if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
            error_ = (*e)["message"].get<std::string>();
        else
            error_ = e->dump();
        if (error_.empty()) error_ = "the server reported an error";
        return false;
    }
    auto take = [&](const json& v) {
        if (v.is_string() && !v.get_ref<const std::string&>().empty()) {
            text.append(v.get_ref<const std::string&>());
            ++events_;
        }
    };
    auto reason = [&](const json& v) {
        if (v.is_string()) finish_reason_ = v.get<std::string>();
    };
    if (auto c = j.find("choices"); c != j.end()) {  // OpenAI
        if (!c->is_array()) {
            error_ = "'choices' is not an array";
            return false;
        }
        for (const json& ch : *c) {
            if (!ch.is_object()) continue;
            if (ch.contains("index") && ch["index"].is_number_integer() && ch["index"].get<int64_t>() != 0) continue;
            if (ch.contains("text")) take(ch["text"]);
            if (ch.contains("finish_reason") && !ch["finish_reason"].is_null()) reason(ch["finish_reason"]);
        }
        if (format_ == format::json) done_ = true;
        return true;
    }
    if (j.contains("content")) {  // llama.cpp
        take(j["content"]);
        if (j.value("stop", false) == true || format_ == format::json) {
            done_ = true;
            if (j.contains("stop_type")) reason(j["stop_type"]);
        }
        return true;
    }
    if (j.contains("response") || j.contains("done")) {  // Ollama
        if (j.contains("response")) take(j["response"]);
        if (j.value("done", false) == true || format_ == format::json) {
            done_ = true;
            if (j.contains("done_reason")) reason(j["done_reason"]);
        }
        return true;
    }
    if (j.contains("generated_text")) {  // TGI's /generate shape, from a server that ignored stream
        take(j["generated_text"]);
        done_ = true;
        return true;
    }
    error_ = "the response has none of choices, content or response: " + std::string(s.substr(0, 120));
    return false;
}

// ---- the HTTP client -----------------------------------------------------------------------------------------

namespace {

using clock_type = std::chrono::steady_clock;

class http_request;

// What a backend's requests share; kept alive by the backend and by every request (a request handle may outlive
// the backend, and its socket must not outlive the io_context).
struct backend_core {
    asio::io_context io;
    remote_config cfg;
    parsed_url url;
    std::string fim_template;
    std::vector<std::weak_ptr<http_request>> live;  // I/O thread only
};

class http_request final : public generation_job, public std::enable_shared_from_this<http_request> {
public:
    using done_fn = std::function<void(const result<generation_result>&)>;

    http_request(std::shared_ptr<backend_core> core, std::string body, remote_request r, done_fn done)
        : core_(std::move(core)), io_(core_->io), cfg_(core_->cfg), url_(core_->url), resolver_(io_), stream_(io_),
          deadline_(io_), body_(std::move(body)), r_(std::move(r)), done_(std::move(done)),
          decoder_(stream_decoder::format::json) {}

    void start() {
        started_ = clock_type::now();
        deadline_.expires_after(cfg_.timeout);
        deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->timed_out();
        });
        resolver_.async_resolve(url_.host, url_.port,
                                [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type rs) {
                                    self->resolved(ec, rs);
                                });
    }

    // Any thread. A finished request posts nothing (its backend may be gone, and with it the I/O thread).
    void cancel() override {
        if (finished_) return;
        asio::post(io_, [self = shared_from_this()] { self->abort(); });
    }

    // I/O thread: ends the request as cancelled and closes its connection.
    void abort() {
        if (finished_) return;
        generation_result g = partial();
        g.reason = stop_reason::cancelled;
        complete(std::move(g));
    }

private:
    std::string where() const { return std::string(name(cfg_.kind)) + " backend at " + cfg_.url; }

    void resolved(beast::error_code ec, const tcp::resolver::results_type& rs) {
        if (finished_) return;
        if (ec) return failed("cannot resolve " + url_.host + ": " + ec.message());
        stream_.async_connect(rs, [self = shared_from_this()](beast::error_code e, const tcp::endpoint&) {
            self->connected(e);
        });
    }

    void connected(beast::error_code ec) {
        if (finished_) return;
        if (ec) return failed("cannot connect: " + ec.message());
        req_.method(http::verb::post);
        req_.target(endpoint_path(cfg_.kind, url_.prefix));
        req_.version(11);
        const bool v6 = url_.host.find(':') != std::string::npos;
        req_.set(http::field::host, (v6 ? "[" + url_.host + "]" : url_.host) + ":" + url_.port);
        req_.set(http::field::user_agent, "spark-ls/0.1.0");
        req_.set(http::field::content_type, "application/json");
        req_.set(http::field::accept, "text/event-stream, application/x-ndjson, application/json");
        if (!cfg_.api_key.empty()) req_.set(http::field::authorization, "Bearer " + cfg_.api_key);
        req_.keep_alive(false);
        req_.body() = std::move(body_);
        req_.prepare_payload();
        http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code e, size_t) {
            self->written(e);
        });
    }

    void written(beast::error_code ec) {
        if (finished_) return;
        if (ec) return failed("cannot send the request: " + ec.message());
        parser_.body_limit(boost::none);
        http::async_read_header(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code e, size_t) {
            self->header(e);
        });
    }

    void header(beast::error_code ec) {
        if (finished_) return;
        if (ec) return failed("no response: " + ec.message());
        const auto& res = parser_.get();
        status_ = res.result_int();
        decoder_ = stream_decoder(stream_decoder::for_content_type(std::string(res[http::field::content_type])));
        read_more();
    }

    void read_more() {
        parser_.get().body().data = chunk_;
        parser_.get().body().size = sizeof chunk_;
        http::async_read_some(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code e, size_t) {
            self->body_read(e);
        });
    }

    void body_read(beast::error_code ec) {
        if (finished_) return;
        if (ec == http::error::need_buffer) ec = {};
        const size_t n = sizeof chunk_ - parser_.get().body().size;
        const std::string_view bytes(chunk_, n);
        if (status_ != 200) {
            if (error_body_.size() < 4096) error_body_.append(bytes.substr(0, 4096 - error_body_.size()));
        } else if (n > 0) {
            if (!decoder_.feed(bytes, text_)) return failed("bad response: " + decoder_.error());
            if (check_stop()) return;
        }
        const bool end = parser_.is_done() || ec == http::error::end_of_stream || ec == asio::error::eof;
        if (ec && !end) return failed("the connection broke: " + ec.message());
        if (!end && !decoder_.done()) return read_more();
        if (status_ != 200) return failed(status_message());
        if (!decoder_.done() && !decoder_.finish(text_)) return failed("bad response: " + decoder_.error());
        if (check_stop()) return;
        generation_result g = partial();
        const std::string& why = decoder_.finish_reason();
        g.reason = why == "length" || why == "limit" ? stop_reason::max_tokens : stop_reason::eos;
        complete(std::move(g));
    }

    std::string status_message() const {
        std::string detail;
        json j = json::parse(error_body_, nullptr, false);
        if (j.is_object() && j.contains("error")) {
            const json& e = j["error"];
            if (e.is_string()) detail = e.get<std::string>();
            else if (e.is_object() && e.contains("message") && e["message"].is_string()) detail = e["message"].get<std::string>();
        }
        if (detail.empty()) detail = error_body_.substr(0, 200);
        while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
        std::string m = "HTTP " + std::to_string(status_);
        if (status_ == 401 || status_ == 403) m += " (check the apiKey setting)";
        if (status_ == 404) m += " (check the URL and the backend kind)";
        if ((status_ == 400 || status_ == 422) && detail.find("uffix") != std::string::npos)
            m += " (this server takes no suffix field: set fimTemplate to the model's template, docs/remote.md)";
        return detail.empty() ? m : m + ": " + detail;
    }

    // The stop rule on the text so far; true when it ended the request.
    bool check_stop() {
        if (!r_.stop_criterion || text_.empty()) return false;
        const size_t keep = r_.stop_criterion(text_);
        if (keep == std::string_view::npos) return false;
        generation_result g = partial();
        g.text.resize(std::min(keep, g.text.size()));
        g.reason = stop_reason::criterion;
        complete(std::move(g));
        return true;
    }

    void timed_out() {
        if (finished_) return;
        if (!text_.empty()) {  // a slow stream: what arrived is the suggestion, as with the engine's time budget
            generation_result g = partial();
            g.reason = stop_reason::time_budget;
            return complete(std::move(g));
        }
        failed("no answer within " + std::to_string(cfg_.timeout.count()) + " ms");
    }

    generation_result partial() const {
        generation_result g;
        g.text = text_;
        g.stats.generated = decoder_.events();
        g.stats.seconds = std::chrono::duration<double>(clock_type::now() - started_).count();
        return g;
    }

    void failed(const std::string& why) {
        if (finished_) return;
        finish(fail(where(), ": ", why));
    }

    void complete(generation_result g) { finish(std::move(g)); }

    void finish(result<generation_result> r) {
        finished_ = true;
        deadline_.cancel();
        resolver_.cancel();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
        auto done = std::move(done_);
        done_ = nullptr;
        if (done) done(r);
    }

    std::shared_ptr<backend_core> core_;
    asio::io_context& io_;
    const remote_config& cfg_;
    const parsed_url& url_;
    tcp::resolver resolver_;
    beast::tcp_stream stream_;
    asio::steady_timer deadline_;
    std::string body_;
    remote_request r_;
    done_fn done_;
    http::request<http::string_body> req_;
    beast::flat_buffer buffer_;
    http::response_parser<http::buffer_body> parser_;
    char chunk_[8192];
    unsigned status_ = 0;
    std::string error_body_, text_;
    stream_decoder decoder_;
    std::atomic<bool> finished_{false};
    clock_type::time_point started_ = clock_type::now();
};

class http_backend final : public remote_backend {
public:
    explicit http_backend(std::shared_ptr<backend_core> core)
        : core_(std::move(core)), work_(core_->io.get_executor()), thread_([c = core_.get()] { c->io.run(); }) {}

    // Cancels what is in flight (each request's `done` runs with "cancelled"), then lets the I/O thread run dry.
    ~http_backend() override {
        asio::post(core_->io, [c = core_] {
            auto live = std::move(c->live);
            for (auto& w : live)
                if (auto r = w.lock()) r->abort();
        });
        work_.reset();
        thread_.join();
    }

    std::shared_ptr<generation_job> submit(remote_request r,
                                       std::function<void(const result<generation_result>&)> done) override {
        std::string body = remote_body(core_->cfg, core_->fim_template, r);
        auto req = std::make_shared<http_request>(core_, std::move(body), std::move(r), std::move(done));
        asio::post(core_->io, [req, c = core_] {
            std::erase_if(c->live, [](auto& w) { return w.expired(); });
            c->live.push_back(req);
            req->start();
        });
        return req;
    }

    const remote_config& config() const override { return core_->cfg; }

private:
    std::shared_ptr<backend_core> core_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread thread_;
};

}  // namespace

result<std::unique_ptr<remote_backend>> make_remote_backend(const remote_config& cfg) {
    auto url = parse_http_url(cfg.url);
    if (!url) return std::unexpected(url.error());
    std::string templ;
    if (!cfg.fim_template.empty()) {
        auto t = resolve_fim_template(cfg.fim_template);
        if (!t) return std::unexpected(t.error());
        templ = std::move(*t);
    }
    if (cfg.kind == remote_kind::ollama && cfg.model.empty())
        return fail("the ollama backend needs a model name (the backendModel setting)");
    auto core = std::make_shared<backend_core>();
    core->cfg = cfg, core->url = std::move(*url), core->fim_template = std::move(templ);
    return std::unique_ptr<remote_backend>(std::make_unique<http_backend>(std::move(core)));
}

}  // namespace spark::lsp
