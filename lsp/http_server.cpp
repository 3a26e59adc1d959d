#include "lsp/http_server.h"

#include "inference/engine.h"
#include "inference/model.h"
#include "lsp/prompt.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <optional>
#include <thread>

namespace spark::lsp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

bool is_loopback_host(std::string_view host) {
    if (host == "localhost" || host == "::1" || host == "[::1]") return true;
    boost::system::error_code ec;
    const auto a = asio::ip::make_address(std::string(host), ec);
    return !ec && a.is_loopback();
}

namespace {

// A client error: the status and a message for {"error": {...}}.
struct http_failure {
    unsigned status;
    std::string message;
};

[[noreturn]] void bad_request(std::string m) { throw http_failure{400, std::move(m)}; }

std::string_view reason_phrase(unsigned status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
    }
    return "Error";
}

std::string_view error_type(unsigned status) {
    switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 404: return "not_found_error";
        case 405: return "invalid_request_error";
        case 503: return "unavailable_error";
    }
    return "server_error";
}

// Latency histogram buckets (seconds) for /metrics.
constexpr std::array<double, 12> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

enum class api { openai, infill, completion, ollama };

// One completion request, parsed and validated at the edge.
struct completion_call {
    api kind = api::openai;
    std::string prompt;                  // plain prompt (no FIM) ...
    std::optional<std::string> prefix;   // ... or FIM: prefix and suffix
    std::string suffix;
    std::vector<std::pair<std::string, std::string>> extra;  // llama.cpp input_extra
    int max_tokens = 16;
    bool stream = false;
    sampling_params sampling;
    std::vector<std::string> stop;
    std::string model;                   // echoed back
};

struct shared_state {
    http_server_options options;
    std::shared_ptr<engine> eng;
    bool loading = true;
    std::string model_name;
    size_t in_flight = 0;

    // Counters for /metrics.
    std::map<std::string, uint64_t> requests_by_endpoint;
    std::map<unsigned, uint64_t> responses_by_status;
    uint64_t completed = 0, cancelled = 0, failed = 0, rejected_busy = 0;
    uint64_t prompt_tokens = 0, prompt_reused = 0, generated = 0, drafted = 0, accepted = 0;
    double generation_seconds = 0;
    std::array<uint64_t, buckets.size()> latency_buckets{};
    uint64_t latency_count = 0;
    double latency_sum = 0;

    void observe(double seconds) {
        for (size_t i = 0; i < buckets.size(); ++i)
            if (seconds <= buckets[i]) ++latency_buckets[i];
        ++latency_count;
        latency_sum += seconds;
    }
};

std::string metrics_text(const shared_state& s) {
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help) {
        out += "# HELP ", out += name, out += ' ', out += help, out += "\n# TYPE ", out += name, out += ' ', out += type,
            out += '\n';
    };
    auto line = [&](const std::string& series, double v) {
        char b[64];
        std::snprintf(b, sizeof b, " %.17g\n", v);
        out += series, out += b;
    };
    metric("spark_http_requests_total", "counter", "HTTP requests received, by endpoint.");
    for (const auto& [e, n] : s.requests_by_endpoint) line("spark_http_requests_total{endpoint=\"" + e + "\"}", double(n));
    metric("spark_http_responses_total", "counter", "HTTP responses sent, by status code.");
    for (const auto& [c, n] : s.responses_by_status) line("spark_http_responses_total{code=\"" + std::to_string(c) + "\"}", double(n));
    metric("spark_completions_total", "counter", "Completion requests that reached the engine, by outcome.");
    line("spark_completions_total{result=\"completed\"}", double(s.completed));
    line("spark_completions_total{result=\"cancelled\"}", double(s.cancelled));
    line("spark_completions_total{result=\"failed\"}", double(s.failed));
    metric("spark_completions_rejected_busy_total", "counter", "Completion requests refused with 503 because the queue was full.");
    line("spark_completions_rejected_busy_total", double(s.rejected_busy));
    metric("spark_completions_in_flight", "gauge", "Completion requests queued or running in the engine.");
    line("spark_completions_in_flight", double(s.in_flight));
    metric("spark_prompt_tokens_total", "counter", "Prompt tokens of completed requests.");
    line("spark_prompt_tokens_total", double(s.prompt_tokens));
    metric("spark_prompt_tokens_reused_total", "counter", "Prompt tokens served from the KV cache instead of evaluated.");
    line("spark_prompt_tokens_reused_total", double(s.prompt_reused));
    metric("spark_generated_tokens_total", "counter", "Tokens generated.");
    line("spark_generated_tokens_total", double(s.generated));
    metric("spark_draft_tokens_total", "counter", "Tokens proposed by the drafters.");
    line("spark_draft_tokens_total", double(s.drafted));
    metric("spark_draft_accepted_tokens_total", "counter", "Drafted tokens the target accepted.");
    line("spark_draft_accepted_tokens_total", double(s.accepted));
    metric("spark_draft_acceptance_ratio", "gauge", "Accepted over drafted tokens since start.");
    line("spark_draft_acceptance_ratio", s.drafted ? double(s.accepted) / double(s.drafted) : 0.0);
    metric("spark_generation_tokens_per_second", "gauge", "Generated tokens over generation time since start.");
    line("spark_generation_tokens_per_second", s.generation_seconds > 0 ? double(s.generated) / s.generation_seconds : 0.0);
    metric("spark_request_duration_seconds", "histogram", "Completion request latency, arrival to last byte queued.");
    for (size_t i = 0; i < buckets.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%g", buckets[i]);
        line(std::string("spark_request_duration_seconds_bucket{le=\"") + le + "\"}", double(s.latency_buckets[i]));
    }
    line("spark_request_duration_seconds_bucket{le=\"+Inf\"}", double(s.latency_count));
    line("spark_request_duration_seconds_sum", s.latency_sum);
    line("spark_request_duration_seconds_count", double(s.latency_count));
    return out;
}

// ---- request parsing ------------------------------------------------------------------------------------------

const json* find(const json& j, const char* key) {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& j, const char* key, bool required) {
    const json* v = find(j, key);
    if (!v) {
        if (required) bad_request(std::string("'") + key + "' is required");
        return {};
    }
    if (!v->is_string()) bad_request(std::string("'") + key + "' must be a string");
    return v->get<std::string>();
}

std::optional<double> get_number(const json& j, const char* key, double lo, double hi) {
    const json* v = find(j, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad_request(std::string("'") + key + "' must be a number");
    const double d = v->get<double>();
    if (!(d >= lo && d <= hi))
        bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return d;
}

std::optional<int64_t> get_int(const json& j, const char* key, int64_t lo, int64_t hi) {
    const json* v = find(j, key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) bad_request(std::string("'") + key + "' must be an integer");
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) bad_request(std::string("'") + key + "' is out of range");
    const int64_t i = v->get<int64_t>();
    if (i < lo || i > hi)
        bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return i;
}

bool get_bool(const json& j, const char* key, bool fallback) {
    const json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad_request(std::string("'") + key + "' must be true or false");
    return v->get<bool>();
}

std::vector<std::string> get_stop(const json& j, const char* key) {
    const json* v = find(j, key);
    if (!v) return {};
    std::vector<std::string> out;
    if (v->is_string()) {
        out.push_back(v->get<std::string>());
    } else if (v->is_array()) {
        if (v->size() > 16) bad_request(std::string("'") + key + "' holds more than 16 strings");
        for (const json& s : *v) {
            if (!s.is_string()) bad_request(std::string("'") + key + "' must be a string or an array of strings");
            out.push_back(s.get<std::string>());
        }
    } else {
        bad_request(std::string("'") + key + "' must be a string or an array of strings");
    }
    std::erase_if(out, [](const std::string& s) { return s.empty(); });
    return out;
}

void sampling_fields(const json& j, completion_call& c, double default_temperature) {
    c.sampling.temperature = float(get_number(j, "temperature", 0, 2).value_or(default_temperature));
    c.sampling.top_p = float(get_number(j, "top_p", 0, 1).value_or(1.0));
    c.sampling.top_k = int32_t(get_int(j, "top_k", 0, 1 << 20).value_or(0));
    c.sampling.min_p = float(get_number(j, "min_p", 0, 1).value_or(0.0));
    if (auto s = get_int(j, "seed", INT64_MIN, INT64_MAX)) c.sampling.seed = uint64_t(*s);
}

// The OpenAI legacy completions request.
completion_call parse_openai(const json& j) {
    completion_call c;
    c.kind = api::openai;
    c.model = get_string(j, "model", false);
    const json* p = find(j, "prompt");
    if (!p) bad_request("'prompt' is required");
    if (p->is_string()) {
        c.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        c.prompt = (*p)[0].get<std::string>();
    } else {
        bad_request("'prompt' must be a string (or an array of one string); token arrays and batches are not supported");
    }
    if (const json* s = find(j, "suffix")) {
        if (!s->is_string()) bad_request("'suffix' must be a string");
        c.prefix = c.prompt;
        c.suffix = s->get<std::string>();
    }
    c.max_tokens = int(get_int(j, "max_tokens", 1, 1 << 20).value_or(16));
    c.stream = get_bool(j, "stream", false);
    c.stop = get_stop(j, "stop");
    sampling_fields(j, c, 1.0);
    if (get_int(j, "n", 1, 1 << 20).value_or(1) != 1) bad_request("'n' must be 1: one completion per request");
    if (get_int(j, "best_of", 1, 1 << 20).value_or(1) != 1) bad_request("'best_of' must be 1");
    if (get_bool(j, "echo", false)) bad_request("'echo' is not supported");
    if (find(j, "logprobs")) bad_request("'logprobs' is not supported");
    return c;
}

// llama.cpp's /infill (FIM) and /completion (plain prompt).
completion_call parse_llama(const json& j, bool infill) {
    completion_call c;
    c.kind = infill ? api::infill : api::completion;
    if (infill) {
        c.prefix = get_string(j, "input_prefix", false);
        c.suffix = get_string(j, "input_suffix", false);
        *c.prefix += get_string(j, "prompt", false);  // llama.cpp: text after the prefix, the middle's beginning
        if (const json* e = find(j, "input_extra")) {
            if (!e->is_array()) bad_request("'input_extra' must be an array of {filename, text}");
            for (const json& f : *e) {
                if (!f.is_object()) bad_request("'input_extra' must be an array of {filename, text}");
                c.extra.emplace_back(get_string(f, "filename", false), get_string(f, "text", true));
            }
        }
    } else {
        const json* p = find(j, "prompt");
        if (!p || !p->is_string()) bad_request("'prompt' must be a string");
        c.prompt = p->get<std::string>();
    }
    const int64_t n = get_int(j, "n_predict", -1, 1 << 20).value_or(-1);
    c.max_tokens = n < 0 ? 1 << 20 : int(n);
    c.stream = get_bool(j, "stream", false);
    c.stop = get_stop(j, "stop");
    sampling_fields(j, c, 0.8);
    (void)get_bool(j, "cache_prompt", true);  // always on: the engine keeps its KV state across requests
    return c;
}

// Ollama's /api/generate.
completion_call parse_ollama(const json& j) {
    completion_call c;
    c.kind = api::ollama;
    c.model = get_string(j, "model", true);
    c.prompt = get_string(j, "prompt", false);
    const bool raw = get_bool(j, "raw", false);
    if (const json* s = find(j, "suffix")) {
        if (!s->is_string()) bad_request("'suffix' must be a string");
        if (!raw) {  // as Ollama: the suffix goes through the template, which raw mode skips
            c.prefix = c.prompt;
            c.suffix = s->get<std::string>();
        }
    }
    c.stream = get_bool(j, "stream", true);
    c.max_tokens = 1 << 20;
    c.sampling.temperature = 0.8f;
    if (const json* o = find(j, "options")) {
        if (!o->is_object()) bad_request("'options' must be an object");
        const int64_t n = get_int(*o, "num_predict", -2, 1 << 20).value_or(-1);
        if (n >= 0) c.max_tokens = int(n);
        c.stop = get_stop(*o, "stop");
        sampling_fields(*o, c, 0.8);
    }
    return c;
}

std::string iso_time() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char b[32];
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- connections ------------------------------------------------------------------------------------------------

class connection : public std::enable_shared_from_this<connection> {
public:
    connection(tcp::socket s, shared_state& st) : stream_(std::move(s)), st_(st) {}

    void start() { read_request(); }

private:
    // ---- reading ----
    void read_request() {
        parser_.emplace();
        parser_->body_limit(st_.options.max_body);
        parser_->header_limit(16 * 1024);
        stream_.expires_after(std::chrono::seconds(120));  // an idle keep-alive connection is closed after this
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->on_read(ec);
        });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
            return close();
        keep_alive_ = false;  // after a framing error the stream cannot be trusted
        if (ec == http::error::body_limit)
            return send_error(400, "the request body exceeds " + std::to_string(st_.options.max_body) + " bytes");
        if (ec == http::error::header_limit) return send_error(400, "the request header exceeds 16384 bytes");
        if (ec) return send_error(400, "malformed HTTP request: " + ec.message());
        stream_.expires_never();
        auto req = parser_->release();
        keep_alive_ = req.keep_alive();
        try {
            handle(req);
        } catch (const http_failure& f) {
            send_error(f.status, f.message);
        } catch (const std::exception& e) {
            send_error(500, std::string("internal error: ") + e.what());
        }
    }

    // ---- routing ----
    void handle(const http::request<http::string_body>& req) {
        std::string path(req.target());
        if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
        const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
        static const std::vector<std::pair<std::string_view, bool>> routes = {  // path, POST (else GET)
            {"/health", false}, {"/v1/health", false}, {"/metrics", false}, {"/v1/models", false},
            {"/v1/completions", true}, {"/completions", true}, {"/infill", true}, {"/completion", true},
            {"/api/generate", true}};
        auto route = std::ranges::find_if(routes, [&](auto& r) { return r.first == path; });
        st_.requests_by_endpoint[route == routes.end() ? "other" : std::string(path)]++;
        if (route == routes.end()) throw http_failure{404, "no endpoint " + path};
        if (path == "/health" || path == "/v1/health") {
            if (!get) throw http_failure{405, "use GET for " + path};
            if (st_.loading) throw http_failure{503, "Loading model"};
            if (!st_.eng) throw http_failure{503, "the model failed to load"};
            return send(200, "application/json", R"({"status":"ok"})");
        }
        if (!authorized(req)) throw http_failure{401, "Invalid API Key"};
        if (route->second ? !post : !get) throw http_failure{405, std::string("use ") + (route->second ? "POST" : "GET") + " for " + path};
        if (path == "/metrics") return send(200, "text/plain; version=0.0.4", metrics_text(st_));
        if (path == "/v1/models")
            return send(200, "application/json",
                        dump({{"object", "list"},
                              {"data", json::array({{{"id", st_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "spark-ls"}}})}}));
        json body = json::parse(req.body(), nullptr, false);
        if (body.is_discarded()) bad_request("the body is not valid JSON");
        if (!body.is_object()) bad_request("the body must be a JSON object");
        completion_call call = path == "/api/generate" ? parse_ollama(body)
                               : path == "/infill"     ? parse_llama(body, true)
                               : path == "/completion" ? parse_llama(body, false)
                                                       : parse_openai(body);
        if (st_.loading) throw http_failure{503, "Loading model"};
        if (!st_.eng) throw http_failure{503, "the model failed to load"};
        if (st_.in_flight >= st_.options.max_queue) {
            ++st_.rejected_busy;
            throw http_failure{503, "the server is busy: " + std::to_string(st_.in_flight) + " requests in flight"};
        }
        run(std::move(call));
    }

    bool authorized(const http::request<http::string_body>& req) const {
        const std::string& key = st_.options.api_key;
        if (key.empty()) return true;
        std::string_view given = req[http::field::authorization];
        if (given.empty()) given = req["X-Api-Key"];
        if (given.starts_with("Bearer ")) given.remove_prefix(7);
        // Constant time in the key's length.
        unsigned diff = given.size() != key.size();
        for (size_t i = 0; i < key.size(); ++i) diff |= unsigned(uint8_t(key[i]) ^ uint8_t(i < given.size() ? given[i] : 0));
        return diff == 0;
    }

    // ---- generation ----
    void run(completion_call call) {
        engine& e = *st_.eng;
        const tokenizer& tok = e.target().vocab();
        const special_tokens& sp = tok.special();
        const int32_t n_ctx = e.context_size();
        call.max_tokens = std::clamp(call.max_tokens, 1, std::max(1, n_ctx / 2));
        engine_request r;
        const int32_t budget = n_ctx - call.max_tokens - 1;
        if (call.prefix) {
            prompt_options po;
            po.budget = budget;
            std::vector<context_document> others;
            for (const auto& [name, text] : call.extra) others.push_back({name, "", text});
            const std::string text = *call.prefix + call.suffix;
            built_prompt bp = build_prompt(tok, text, call.prefix->size(), "", po, others);
            r.prompt = std::move(bp.tokens);
            r.suffix = std::move(bp.suffix);
        } else {
            tokenize_options to;
            to.add_bos = sp.add_bos;
            to.parse_special = true;  // a FIM prompt built by the client names the model's FIM tokens
            r.prompt = tok.tokenize(call.prompt, to);
            if (int32_t(r.prompt.size()) > budget) r.prompt.erase(r.prompt.begin(), r.prompt.end() - std::max(1, budget));
        }
        if (r.prompt.empty()) bad_request("the prompt is empty");
        prompt_tokens_ = int32_t(r.prompt.size());
        generation_params& gp = r.params;
        gp.max_tokens = call.max_tokens;
        gp.sampling = call.sampling;
        gp.stop_strings = call.stop;
        for (token_id t : {sp.bos, sp.fim_pre, sp.fim_suf, sp.fim_mid, sp.fim_pad, sp.fim_rep, sp.fim_sep})
            if (t >= 0) gp.sampling.banned.push_back(t);
        for (token_id t : {sp.eos, sp.eot})
            if (t >= 0) gp.stop_tokens.push_back(t);
        auto self = shared_from_this();
        if (call.stream)
            gp.on_text = [self](std::string_view piece) {
                asio::post(self->stream_.get_executor(), [self, p = std::string(piece)] { self->stream_piece(p); });
            };
        if (st_.options.engine.slow_engine_test_double) {
            gp.stop_tokens.clear();
            auto inner = std::move(gp.on_text);
            gp.on_text = [inner](std::string_view piece) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                if (inner) inner(piece);
            };
        }
        call_ = std::move(call);
        id_ = "cmpl-" + std::to_string(++next_id_);
        created_ = std::time(nullptr);
        arrived_ = clock_type::now();
        ++st_.in_flight;
        running_ = true;
        if (call_.stream) start_stream();
        job_ = e.submit(std::move(r), [self](const result<generation_result>& res) {
            asio::post(self->stream_.get_executor(), [self, res] { self->generated(res); });
        });
        watch();
    }

    // While the engine works, a read on the socket notices a client that goes away (or its next pipelined request).
    void watch() {
        watching_ = true;
        stream_.socket().async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
            self->watching_ = false;
            if (!ec) {
                self->buffer_.commit(n);
                return self->maybe_next();
            }
            if (ec == asio::error::operation_aborted && self->stop_watching_) {
                self->stop_watching_ = false;
                return self->maybe_next();
            }
            self->client_gone();
        });
    }

    void client_gone() {
        gone_ = true;
        if (running_ && job_) job_->cancel();  // counted when the engine reports it
        if (!running_) close();
    }

    std::string openai_chunk(std::string_view text, const char* finish) const {
        json choice = {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
        if (finish) choice["finish_reason"] = finish;
        return dump({{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_name()},
                     {"choices", json::array({choice})}});
    }

    std::string model_name() const { return call_.model.empty() ? st_.model_name : call_.model; }

    void start_stream() {
        const bool nd = call_.kind == api::ollama;
        std::string h = "HTTP/1.1 200 OK\r\nContent-Type: ";
        h += nd ? "application/x-ndjson" : "text/event-stream";
        h += "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: ";
        h += keep_alive_ ? "keep-alive" : "close";
        h += "\r\n\r\n";
        ++st_.responses_by_status[200];
        write(std::move(h));
    }

    void stream_piece(const std::string& piece) {
        if (gone_ || !running_) return;
        switch (call_.kind) {
            case api::openai: return chunk("data: " + openai_chunk(piece, nullptr) + "\n\n");
            case api::infill:
            case api::completion: return chunk("data: " + dump({{"content", piece}, {"stop", false}, {"index", 0}}) + "\n\n");
            case api::ollama:
                return chunk(dump({{"model", model_name()}, {"created_at", iso_time()}, {"response", piece}, {"done", false}}) + "\n");
        }
    }

    void chunk(const std::string& data) {
        if (data.empty()) return;
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        write(size + data + "\r\n");
    }

    void generated(const result<generation_result>& res) {
        running_ = false;
        --st_.in_flight;
        const double seconds = std::chrono::duration<double>(clock_type::now() - arrived_).count();
        if (res && res->reason == stop_reason::cancelled) {
            ++st_.cancelled;
            if (gone_) return close();
        } else if (!res) {
            ++st_.failed;
        } else {
            ++st_.completed;
            const generation_stats& g = res->stats;
            st_.prompt_tokens += uint64_t(g.prompt_tokens);
            st_.prompt_reused += uint64_t(g.prompt_reused);
            st_.generated += uint64_t(g.generated);
            st_.drafted += g.drafted;
            st_.accepted += g.accepted;
            st_.generation_seconds += std::max(0.0, g.seconds - g.prompt_seconds);
            st_.observe(seconds);
        }
        if (gone_) return close();
        if (!res) {
            if (call_.stream) return end_stream_error(res.error().message);
            return send_error(500, res.error().message);
        }
        const generation_result& g = *res;
        const bool length = g.reason == stop_reason::max_tokens || g.reason == stop_reason::time_budget ||
                            g.reason == stop_reason::context_full;
        const char* finish = length ? "length" : "stop";
        const char* stop_type = length ? "limit" : g.reason == stop_reason::stop_string ? "word" : "eos";
        json timings = {{"prompt_n", g.stats.prompt_evaluated},
                        {"prompt_ms", g.stats.prompt_seconds * 1000},
                        {"predicted_n", g.stats.generated},
                        {"predicted_ms", (g.stats.seconds - g.stats.prompt_seconds) * 1000},
                        {"predicted_per_second", g.stats.tokens_per_second()}};
        auto llama_final = [&](std::string content) {
            return json{{"content", std::move(content)}, {"stop", true}, {"index", 0}, {"model", model_name()},
                        {"stop_type", stop_type}, {"tokens_predicted", g.stats.generated},
                        {"tokens_evaluated", g.stats.prompt_tokens}, {"tokens_cached", g.stats.prompt_reused},
                        {"truncated", false}, {"timings", timings}};
        };
        const auto ns = [](double s) { return int64_t(s * 1e9); };
        auto ollama_final = [&](std::string response) {
            return json{{"model", model_name()}, {"created_at", iso_time()}, {"response", std::move(response)},
                        {"done", true}, {"done_reason", length ? "length" : "stop"},
                        {"total_duration", ns(seconds)}, {"prompt_eval_count", g.stats.prompt_evaluated},
                        {"prompt_eval_duration", ns(g.stats.prompt_seconds)}, {"eval_count", g.stats.generated},
                        {"eval_duration", ns(g.stats.seconds - g.stats.prompt_seconds)}};
        };
        if (call_.stream) {
            switch (call_.kind) {
                case api::openai:
                    chunk("data: " + openai_chunk("", finish) + "\n\ndata: [DONE]\n\n");
                    break;
                case api::infill:
                case api::completion: chunk("data: " + dump(llama_final("")) + "\n\n"); break;
                case api::ollama: chunk(dump(ollama_final("")) + "\n"); break;
            }
            write("0\r\n\r\n");
            return maybe_next();
        }
        json body;
        switch (call_.kind) {
            case api::openai: {
                const int completion = g.stats.generated;
                body = json::parse(openai_chunk(g.text, finish));
                body["usage"] = {{"prompt_tokens", prompt_tokens_},
                                 {"completion_tokens", completion},
                                 {"total_tokens", prompt_tokens_ + completion}};
                break;
            }
            case api::infill:
            case api::completion: body = llama_final(g.text); break;
            case api::ollama: body = ollama_final(g.text); break;
        }
        send(200, "application/json", dump(body));
    }

    void end_stream_error(const std::string& message) {
        const json e = {{"error", {{"code", 500}, {"message", message}, {"type", "server_error"}}}};
        if (call_.kind == api::ollama)
            chunk(dump({{"error", message}}) + "\n");
        else
            chunk("data: " + dump(e) + "\n\n");
        write("0\r\n\r\n");
        maybe_next();
    }

    // ---- writing ----
    void send(unsigned status, std::string_view content_type, const std::string& body) {
        ++st_.responses_by_status[status];
        std::string m = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
        m += "Content-Type: ", m += content_type, m += "\r\nContent-Length: " + std::to_string(body.size());
        m += keep_alive_ ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
        m += body;
        write(std::move(m));
        maybe_next();
    }

    void send_error(unsigned status, const std::string& message) {
        send(status, "application/json",
             dump({{"error", {{"code", status}, {"message", message}, {"type", error_type(status)}}}}));
    }

    void write(std::string data) {
        out_.push_back(std::move(data));
        if (!writing_) write_next();
    }

    void write_next() {
        if (out_.empty()) {
            writing_ = false;
            return maybe_next();
        }
        writing_ = true;
        asio::async_write(stream_.socket(), asio::buffer(out_.front()),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->out_.pop_front();
                              if (ec) {
                                  self->out_.clear();
                                  self->writing_ = false;
                                  return self->client_gone();
                              }
                              self->write_next();
                          });
    }

    // After a response: once everything is written and no watch read is pending, read the next request (or close).
    void maybe_next() {
        if (running_ || writing_ || !out_.empty() || closed_ || gone_) return;
        if (watching_) {
            stop_watching_ = true;
            beast::error_code ignored;
            stream_.socket().cancel(ignored);
            return;  // the watch's handler comes back here
        }
        if (!keep_alive_) return close();
        read_request();
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    shared_state& st_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    bool keep_alive_ = true;

    completion_call call_;
    std::shared_ptr<request_handle> job_;
    std::string id_;
    std::time_t created_ = 0;
    clock_type::time_point arrived_;
    int32_t prompt_tokens_ = 0;
    bool running_ = false, watching_ = false, stop_watching_ = false, gone_ = false, closed_ = false;

    std::deque<std::string> out_;
    bool writing_ = false;

    static inline uint64_t next_id_ = 0;
};

class listener {
public:
    listener(asio::io_context& io, tcp::acceptor& acceptor, shared_state& st) : io_(io), acceptor_(acceptor), st_(st) {}
    void accept() {
        acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted) return;
            if (!ec) std::make_shared<connection>(std::move(s), st_)->start();
            accept();
        });
    }

private:
    asio::io_context& io_;
    tcp::acceptor& acceptor_;
    shared_state& st_;
};

}  // namespace

int serve_http(const http_server_options& options, const std::function<void(const std::string&)>& on_listening) {
    if (!is_loopback_host(options.host) && options.api_key.empty()) {
        std::fprintf(stderr,
                     "spark-ls serve: --host %s is not a loopback address; serving other machines needs an API key "
                     "(--api-key KEY or SPARK_LS_API_KEY)\n",
                     options.host.c_str());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context io(1);
    shared_state st;
    st.options = options;

    tcp::acceptor acceptor(io);
    beast::error_code ec;
    const auto address = asio::ip::make_address(options.host == "localhost" ? "127.0.0.1" : options.host, ec);
    if (ec) {
        std::fprintf(stderr, "spark-ls serve: bad --host '%s': %s\n", options.host.c_str(), ec.message().c_str());
        return 1;
    }
    const tcp::endpoint ep(address, options.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::fprintf(stderr, "spark-ls serve: cannot listen on %s:%u: %s\n", options.host.c_str(), unsigned(options.port),
                     ec.message().c_str());
        return 1;
    }

    // The models load on a helper thread; /health says 503 until they are placed.
    engine_config cfg;
    cfg.target_path = options.engine.model_path;
    cfg.draft_path = options.engine.draft_path == "none" ? "" : options.engine.draft_path;
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    cfg.target_workers = options.engine.threads > 0 ? options.engine.threads : cores;
    int exit_code = 0;
    std::thread loader([&] {
        auto r = engine::load(cfg, [](std::string_view what, double f) {
            std::fprintf(stderr, "spark-ls: loading: %.*s %d%%\n", int(what.size()), what.data(), int(f * 100));
        });
        std::shared_ptr<engine> e;
        std::string error;
        if (r)
            e = std::shared_ptr<engine>(std::move(*r));
        else
            error = r.error().message;
        asio::post(io, [&, e, error] {
            st.loading = false;
            st.eng = e;
            if (!e) {
                std::fprintf(stderr, "spark-ls serve: cannot load the models: %s\n", error.c_str());
                exit_code = 1;
                io.stop();
                return;
            }
            st.model_name = options.engine.model_path.empty() ? "spark-target" : options.engine.model_path;
            if (auto slash = st.model_name.rfind('/'); slash != std::string::npos) st.model_name.erase(0, slash + 1);
            std::fprintf(stderr, "spark-ls: models loaded (%s)\n", st.model_name.c_str());
        });
    });

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) {
        acceptor.close();
        io.stop();
    });
    listener l(io, acceptor, st);
    l.accept();
    const tcp::endpoint bound = acceptor.local_endpoint();
    const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    on_listening(host + ":" + std::to_string(bound.port()));
    io.run();
    loader.join();
    st.eng.reset();
    return exit_code;
}

}  // namespace spark::lsp
