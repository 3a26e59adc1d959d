#include "lsp/server.h"

#include "inference/engine.h"
#include "inference/model.h"
#include "lsp/analysis.h"
#include "lsp/completion_cache.h"
#include "lsp/document.h"
#include "lsp/jsonrpc.h"
#include "lsp/prompt.h"
#include "lsp/remote.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>

namespace spark::lsp {
namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

constexpr const char* server_version = "0.1.0";
constexpr const char* accept_command = "spark-ls.accept";
constexpr const char* reject_command = "spark-ls.reject";

// A handler's way of saying "answer this request with an error".
struct rpc_failure {
    error_code code;
    std::string message;
};

[[noreturn]] void invalid_params(std::string message) { throw rpc_failure{error_code::invalid_params, std::move(message)}; }

const json& member(const json& j, const char* key) {
    if (!j.is_object()) invalid_params(std::string("expected an object holding '") + key + "'");
    auto it = j.find(key);
    if (it == j.end()) invalid_params(std::string("missing '") + key + "'");
    return *it;
}

std::string string_member(const json& j, const char* key) {
    const json& v = member(j, key);
    if (!v.is_string()) invalid_params(std::string("'") + key + "' must be a string");
    return v.get<std::string>();
}

uint32_t uint_member(const json& j, const char* key) {
    const json& v = member(j, key);
    if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > 0xFFFFFFFFull : v.get<int64_t>() < 0) ||
        (!v.is_number_unsigned() && v.get<int64_t>() > 0xFFFFFFFFll))
        invalid_params(std::string("'") + key + "' must be an unsigned 32-bit integer");
    return uint32_t(v.get<uint64_t>());
}

int32_t int_member_or(const json& j, const char* key, int32_t fallback) {
    if (!j.is_object()) return fallback;
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return fallback;
    return int32_t(std::clamp<int64_t>(it->get<int64_t>(), INT32_MIN, INT32_MAX));
}

position position_member(const json& j, const char* key) {
    const json& p = member(j, key);
    return position{uint_member(p, "line"), uint_member(p, "character")};
}

json to_json(const position& p) { return {{"line", p.line}, {"character", p.character}}; }
json to_json(const range& r) { return {{"start", to_json(r.start)}, {"end", to_json(r.end)}}; }

std::string uuid4() {
    static std::mt19937_64 rng{std::random_device{}()};
    const uint64_t a = rng(), b = rng();
    char s[40];
    std::snprintf(s, sizeof s, "%08x-%04x-4%03x-%04x-%012llx", unsigned(a >> 32), unsigned(a >> 16 & 0xFFFF),
                  unsigned(a & 0xFFF), unsigned((b >> 48 & 0x3FFF) | 0x8000),
                  static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
    return s;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Settings a client may change (docs/LSP.md).
struct settings {
    std::string model;
    std::string draft_model = "none";
    int threads = 0;
    int max_tokens = 64;
    int time_budget_ms = 2000;
    int debounce_ms = 0;
    double fim_ratio = 0.75;
    bool multiline = true;
    bool context_files = true;
    // Benchmarks only: the naive loop other setups run (whole prompt evaluated per request, no drafting, no
    // forwarding cache, no prefetch), on the same model and the same protocol path.
    bool naive = false;
    // A remote backend instead of the in-process engine (docs/remote.md): "local", "openai", "llama.cpp", "ollama".
    std::string backend = "local";
    std::string backend_url, backend_model, api_key, api_key_env, fim_template;
    int backend_timeout_ms = 5000;
    int remote_context_chars = 8192;  // prefix + suffix window sent to a remote backend

    bool same_engine(const settings& o) const {
        return model == o.model && draft_model == o.draft_model && threads == o.threads && naive == o.naive &&
               backend == o.backend && backend_url == o.backend_url && backend_model == o.backend_model &&
               api_key == o.api_key && api_key_env == o.api_key_env && fim_template == o.fim_template &&
               backend_timeout_ms == o.backend_timeout_ms;
    }
    bool remote() const { return backend != "local"; }
};

// An engine request behind the interface remote requests have.
class engine_job final : public generation_job {
public:
    explicit engine_job(std::shared_ptr<request_handle> h) : h_(std::move(h)) {}
    void cancel() override { h_->cancel(); }

private:
    std::shared_ptr<request_handle> h_;
};

enum class request_kind { inline_completion, completion, llm_ls };

// One completion request between its arrival and its answer.
struct pending {
    request_id id;
    request_kind kind = request_kind::inline_completion;
    std::string uri;
    position pos;
    size_t cursor = 0;
    clock_type::time_point arrived;
    bool live = true;
    bool invoked = false;                        // triggerKind 1
    std::shared_ptr<generation_job> handle;       // engine or remote work, once submitted
    std::shared_ptr<timer_handle> timer;          // server-side debounce
};

// Engine work not tied to one request: a prefetch after an accept, or a refresh that extends a cached suggestion.
// Requests for exactly its text and cursor wait for it instead of starting their own run.
struct background_job {
    std::string uri, text;
    size_t cursor = 0;
    std::shared_ptr<generation_job> handle;
    std::vector<std::shared_ptr<pending>> waiters;
    bool live = true;
};

struct latency_log {
    std::vector<double> ms;
    void add(double v) {
        if (ms.size() >= 20000) ms.erase(ms.begin(), ms.begin() + 10000);
        ms.push_back(v);
    }
    json summary() const {
        json j = {{"count", ms.size()}, {"p50", 0.0}, {"p90", 0.0}, {"p99", 0.0}, {"mean", 0.0}};
        if (ms.empty()) return j;
        std::vector<double> s = ms;
        std::sort(s.begin(), s.end());
        auto pct = [&](double p) { return s[std::min(s.size() - 1, size_t(p * double(s.size() - 1) + 0.5))]; };
        double sum = 0;
        for (double v : s) sum += v;
        j["p50"] = pct(0.5), j["p90"] = pct(0.9), j["p99"] = pct(0.99), j["mean"] = sum / double(s.size());
        return j;
    }
};

struct counters {
    uint64_t requests = 0, engine_runs = 0, cache_hits = 0, prefetch_hits = 0, cancelled = 0, superseded = 0,
             content_modified = 0, empty = 0, errors = 0, shown = 0, accepted = 0, rejected = 0,
             partially_accepted = 0, prefetches = 0;
    uint64_t engine_completed = 0, engine_cancelled = 0, engine_failed = 0, generated = 0, drafted = 0, accepted_tokens = 0,
             prompt_tokens = 0, prompt_reused = 0;
    double generation_seconds = 0;
    latency_log latency;
};

class server final : public session {
public:
    server(channel& ch, const server_options& options) : ch_(ch), options_(options) {
        settings_.model = options.model_path;
        settings_.draft_model = options.draft_path;
        settings_.threads = options.threads;
    }

    ~server() override {
        for (auto& [id, p] : pending_) cancel_work(*p);
        if (loader_.joinable()) loader_.join();
        engine_.reset();  // joins the engine thread; its late results are dropped by the channel
        remote_.reset();  // the same for the backend's I/O thread
    }

    void on_message(std::string body) override {
        const auto t0 = clock_type::now();
        auto m = parse_message(body);
        if (!m) {
            log(2, "bad message: " + m.error().message);
            if (m.error().reply) ch_.send(make_error(m.error()));
            return;
        }
        switch (m->kind) {
            case message_kind::request: on_request(*m); break;
            case message_kind::notification: on_notification(*m); break;
            case message_kind::response: on_response(*m); break;
        }
        if (options_.verbose)
            std::fprintf(stderr, "spark-ls: %s (%.2f ms)\n",
                         m->kind == message_kind::response ? "response" : m->method.c_str(),
                         std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
    }

    void on_frame_error(const frame_error& e) override { log(2, "framing: " + e.message); }

private:
    // ---- messages ------------------------------------------------------------------------------------------

    void on_request(const incoming& m) {
        const request_id& id = *m.id;
        const json empty_params = json::object();
        const json& params = m.params ? *m.params : empty_params;
        try {
            if (state_ == state::uninitialized && m.method != "initialize") {
                ch_.send(make_error(id, error_code::server_not_initialized, "the server is not initialized yet"));
                return;
            }
            if (state_ == state::shut_down) {
                ch_.send(make_error(id, error_code::invalid_request, "the server is shutting down"));
                return;
            }
            if (m.method == "initialize") return initialize(id, params);
            if (m.method == "shutdown") return shutdown(id);
            if (m.method == "textDocument/inlineCompletion") return completion_request(id, params, request_kind::inline_completion);
            if (m.method == "textDocument/completion") return completion_request(id, params, request_kind::completion);
            if (m.method == "llm-ls/getCompletions") return completion_request(id, params, request_kind::llm_ls);
            if (m.method == "llm-ls/acceptCompletion") return llm_feedback(id, params, true);
            if (m.method == "llm-ls/rejectCompletion") return llm_feedback(id, params, false);
            if (m.method == "workspace/executeCommand") return execute_command(id, params);
            if (m.method == "spark/stats") return ch_.send(make_response(id, stats_json()));
            if (m.method == "spark/document") return document_request(id, params);
            ch_.send(make_error(id, error_code::method_not_found, "unknown method: " + m.method));
        } catch (const rpc_failure& f) {
            ch_.send(make_error(id, f.code, f.message));
        } catch (const json::exception& e) {
            ch_.send(make_error(id, error_code::invalid_params, std::string("invalid params: ") + e.what()));
        } catch (const std::exception& e) {
            ++stats_.errors;
            ch_.send(make_error(id, error_code::internal_error, std::string("internal error: ") + e.what()));
        }
    }

    void on_notification(const incoming& m) {
        const json empty_params = json::object();
        const json& params = m.params ? *m.params : empty_params;
        if (m.method == "exit") {
            ch_.close(state_ == state::shut_down ? 0 : 1);
            return;
        }
        if (state_ == state::uninitialized) return;  // dropped, as the specification says
        try {
            if (m.method == "initialized") return;
            if (m.method == "textDocument/didOpen") return did_open(params);
            if (m.method == "textDocument/didChange") return did_change(params);
            if (m.method == "textDocument/didClose") return did_close(params);
            if (m.method == "textDocument/didSave") return;
            if (m.method == "$/cancelRequest") return cancel_request(params);
            if (m.method == "workspace/didChangeConfiguration") return did_change_configuration(params);
            if (m.method == "textDocument/didShowCompletion") return void(++stats_.shown);
            if (m.method == "textDocument/didPartiallyAcceptCompletion") return void(++stats_.partially_accepted);
            if (m.method == "window/workDoneProgress/cancel") return;  // loading cannot be stopped halfway
            if (m.method.starts_with("$/")) return;
            log(3, "ignored notification " + m.method);
        } catch (const rpc_failure& f) {
            log(2, m.method + ": " + f.message);
        } catch (const std::exception& e) {
            log(2, m.method + ": " + e.what());
        }
    }

    void on_response(const incoming& m) {
        if (!m.id) return;
        const std::string key = to_string(*m.id);
        if (progress_ && key == to_string(progress_->create_id)) {
            progress_->created = true;
            for (auto& v : progress_->backlog) send_progress(std::move(v));
            progress_->backlog.clear();
        }
    }

    // ---- lifecycle -----------------------------------------------------------------------------------------

    void initialize(const request_id& id, const json& params) {
        if (state_ != state::uninitialized) {
            ch_.send(make_error(id, error_code::invalid_request, "initialize was already received"));
            return;
        }
        if (!params.is_object()) invalid_params("initialize params must be an object");
        const json caps = params.value("capabilities", json::object());
        enc_ = position_encoding::utf16;
        if (caps.is_object()) {
            const json general = caps.value("general", json::object());
            std::vector<position_encoding> offered;
            if (general.is_object() && general.contains("positionEncodings") &&
                general["positionEncodings"].is_array())
                for (const json& e : general["positionEncodings"])
                    if (e.is_string())
                        if (auto pe = parse_position_encoding(e.get<std::string>())) offered.push_back(*pe);
            auto has = [&](position_encoding e) { return std::ranges::find(offered, e) != offered.end(); };
            if (has(position_encoding::utf8))
                enc_ = position_encoding::utf8;
            else if (offered.empty() || has(position_encoding::utf16))
                enc_ = position_encoding::utf16;
            else if (has(position_encoding::utf32))
                enc_ = position_encoding::utf32;
            const json window = caps.value("window", json::object());
            work_done_progress_ = window.is_object() && window.value("workDoneProgress", false) == true;
        }
        if (params.contains("initializationOptions")) apply_settings(params["initializationOptions"], false);
        state_ = state::running;
        json result = {
            {"capabilities",
             {{"positionEncoding", std::string(name(enc_))},
              {"textDocumentSync", {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
              {"inlineCompletionProvider", json::object()},
              {"completionProvider", {{"resolveProvider", false}}},
              {"executeCommandProvider", {{"commands", {accept_command, reject_command}}}}}},
            {"serverInfo", {{"name", "spark-ls"}, {"version", server_version}}}};
        ch_.send(make_response(id, result));
        start_loading();
    }

    void shutdown(const request_id& id) {
        state_ = state::shut_down;
        for (auto& [pid, p] : std::map(pending_.begin(), pending_.end()))
            finish_error(*p, error_code::request_cancelled, "the server is shutting down");
        ch_.send(make_response(id, nullptr));
    }

    // ---- settings and the engine ---------------------------------------------------------------------------

    void apply_settings(const json& j, bool reload) {
        const json& s = j.is_object() && j.contains("spark-ls") ? j["spark-ls"] : j;
        if (!s.is_object()) return;
        settings next = settings_;
        auto read = [&](const char* key, auto& field, auto check) {
            auto it = s.find(key);
            if (it == s.end() || it->is_null()) return;
            using T = std::decay_t<decltype(field)>;
            bool ok = false;
            if constexpr (std::is_same_v<T, std::string>) ok = it->is_string();
            else if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean();
            else if constexpr (std::is_same_v<T, int>) ok = it->is_number_integer();
            else ok = it->is_number();
            if (ok) {
                T v = it->template get<T>();
                if (check(v)) {
                    field = v;
                    return;
                }
            }
            log(2, std::string("setting '") + key + "' has an invalid value " + it->dump() + "; ignored");
        };
        auto any = [](const auto&) { return true; };
        read("model", next.model, any);
        read("draftModel", next.draft_model, any);
        read("threads", next.threads, [](int v) { return v >= 0 && v <= 1024; });
        read("maxTokens", next.max_tokens, [](int v) { return v >= 1 && v <= 4096; });
        read("timeBudgetMs", next.time_budget_ms, [](int v) { return v >= 0; });
        read("debounceMs", next.debounce_ms, [](int v) { return v >= 0 && v <= 10000; });
        read("fimRatio", next.fim_ratio, [](double v) { return v >= 0 && v <= 1; });
        read("multiline", next.multiline, any);
        read("contextFiles", next.context_files, any);
        read("naiveBaseline", next.naive, any);
        read("backend", next.backend, [](const std::string& v) { return v == "local" || parse_remote_kind(v).has_value(); });
        read("backendUrl", next.backend_url, any);
        read("backendModel", next.backend_model, any);
        read("apiKeyEnv", next.api_key_env, any);
        read("fimTemplate", next.fim_template, [](const std::string& v) { return v.empty() || resolve_fim_template(v).has_value(); });
        read("backendTimeoutMs", next.backend_timeout_ms, [](int v) { return v >= 50 && v <= 600000; });
        read("remoteContextChars", next.remote_context_chars, [](int v) { return v >= 256 && v <= (1 << 22); });
        if (auto it = s.find("apiKey"); it != s.end()) {  // read apart: its value is never logged
            if (it->is_string())
                next.api_key = it->get<std::string>();
            else if (!it->is_null())
                log(2, "setting 'apiKey' must be a string; ignored");
        }
        const bool engine_changed = !next.same_engine(settings_);
        settings_ = next;
        if (reload && engine_changed) {
            for (auto& [pid, p] : std::map(pending_.begin(), pending_.end()))
                finish_error(*p, error_code::request_cancelled, "the models are being reloaded");
            cancel_background();
            start_loading();
        }
    }

    void did_change_configuration(const json& params) {
        if (params.is_object() && params.contains("settings")) apply_settings(params["settings"], true);
    }

    engine_config engine_cfg() const {
        engine_config c;
        c.target_path = settings_.model;
        c.draft_path = settings_.draft_model == "none" ? "" : settings_.draft_model;
        // The embedded draft only fits the embedded target's vocabulary.
        if (!settings_.model.empty() && settings_.draft_model == "default") c.draft_path.clear();
        const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
        c.target_workers = settings_.threads > 0 ? settings_.threads : cores;
        c.draft_workers = 1;
        if (settings_.naive) {
            c.draft_path.clear();
            c.ngram = c.suffix = c.known = false;
            c.reuse_prefix = false;
        }
        return c;
    }

    struct progress_state {
        request_id create_id;
        std::string token;
        bool created = false;
        std::vector<json> backlog;
    };

    void start_loading() {
        if (loader_.joinable()) loader_.join();
        engine_.reset();
        remote_.reset();
        ++load_generation_;
        load_error_.clear();
        remote_failing_ = false;
        if (settings_.remote()) return connect_remote();
        loading_ = true;
        if (work_done_progress_) {
            progress_ = progress_state{};
            progress_->create_id = "spark-ls/" + std::to_string(++server_request_id_);
            progress_->token = "spark-ls/load/" + std::to_string(load_generation_);
            ch_.send(make_request(progress_->create_id, "window/workDoneProgress/create",
                                  {{"token", progress_->token}}));
            progress({{"kind", "begin"}, {"title", "spark-ls: loading models"}, {"percentage", 0}});
        }
        const engine_config cfg = engine_cfg();
        const uint64_t generation = load_generation_;
        channel* ch = &ch_;
        loader_ = std::thread([this, cfg, generation, ch] {
            auto r = engine::load(cfg, [this, generation, ch](std::string_view what, double f) {
                ch->post([this, generation, w = std::string(what), f] {
                    if (generation != load_generation_) return;
                    progress({{"kind", "report"}, {"message", w}, {"percentage", int(f * 100)}});
                });
            });
            std::shared_ptr<engine> e;
            std::string error;
            if (r)
                e = std::shared_ptr<engine>(std::move(*r));
            else
                error = r.error().message;
            ch->post([this, generation, e, error] { loaded(generation, e, error); });
        });
    }

    // A remote backend instead of the engine: nothing to load, only the settings to check.
    void connect_remote() {
        loading_ = false;
        remote_config rc;
        rc.kind = *parse_remote_kind(settings_.backend);
        rc.url = settings_.backend_url;
        rc.model = settings_.backend_model;
        rc.api_key = settings_.api_key;
        if (rc.api_key.empty() && !settings_.api_key_env.empty())
            if (const char* k = std::getenv(settings_.api_key_env.c_str())) rc.api_key = k;
        rc.timeout = std::chrono::milliseconds(settings_.backend_timeout_ms);
        rc.fim_template = settings_.fim_template;
        auto b = make_remote_backend(rc);
        if (!b) {
            load_error_ = b.error().message;
            ch_.send(make_notification("window/showMessage",
                                       {{"type", 1}, {"message", "spark-ls: the remote backend is misconfigured: " + load_error_}}));
            log(1, "remote backend: " + load_error_);
        } else {
            remote_ = std::move(*b);
            log(3, "completions go to the " + std::string(name(rc.kind)) + " backend at " + rc.url);
        }
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& p : waiting)
            if (p->live) run(p);
    }

    void loaded(uint64_t generation, std::shared_ptr<engine> e, const std::string& error) {
        if (generation != load_generation_) return;
        loading_ = false;
        engine_ = std::move(e);
        if (!engine_) {
            load_error_ = error;
            progress({{"kind", "end"}, {"message", "failed: " + error}});
            ch_.send(make_notification("window/showMessage",
                                       {{"type", 1}, {"message", "spark-ls could not load its models: " + error}}));
            log(1, "model load failed: " + error);
        } else {
            const model& t = engine_->target();
            log(3, "models loaded: target " + t.hparams().arch + " with " + std::to_string(t.vocab().n_tokens()) +
                       " tokens, context " + std::to_string(engine_->context_size()) +
                       (engine_->has_draft() ? ", with a draft model" : ", no draft model"));
            progress({{"kind", "end"}, {"message", "ready"}});
        }
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& p : waiting)
            if (p->live) run(p);
    }

    void progress(json value) {
        if (!progress_) return;
        json msg = {{"token", progress_->token}, {"value", std::move(value)}};
        if (progress_->created)
            send_progress(std::move(msg));
        else
            progress_->backlog.push_back(std::move(msg));
    }
    void send_progress(json msg) { ch_.send(make_notification("$/progress", msg)); }

    // ---- documents -----------------------------------------------------------------------------------------

    void did_open(const json& params) {
        const json& td = member(params, "textDocument");
        const std::string uri = string_member(td, "uri");
        const std::string lang = td.contains("languageId") && td["languageId"].is_string() ? td["languageId"].get<std::string>() : "";
        std::string text = string_member(td, "text");
        const int32_t version = int_member_or(td, "version", 0);
        if (auto r = docs_.open(uri, lang, version, std::move(text)); !r) {
            log(1, "didOpen " + uri + ": " + r.error().message);
            return;
        }
        auto tree = syntax_tree::for_language_id(lang);
        const text_document* doc = docs_.find(uri);
        if (auto r = tree.parse(doc->text()); !r) log(2, "parse " + uri + ": " + r.error().message);
        trees_.insert_or_assign(uri, std::move(tree));
        touched(uri);
        document_changed(uri);
    }

    void did_change(const json& params) {
        const json& td = member(params, "textDocument");
        const std::string uri = string_member(td, "uri");
        const int32_t version = int_member_or(td, "version", 0);
        const json& changes = member(params, "contentChanges");
        if (!changes.is_array()) invalid_params("'contentChanges' must be an array");
        std::vector<std::string> texts;
        std::vector<content_change> cc;
        texts.reserve(changes.size());
        for (const json& c : changes) {
            texts.push_back(string_member(c, "text"));
            content_change change;
            if (c.contains("range") && !c["range"].is_null())
                change.range = range{position_member(c["range"], "start"), position_member(c["range"], "end")};
            cc.push_back(change);
        }
        for (size_t i = 0; i < cc.size(); ++i) cc[i].text = texts[i];
        auto edits = docs_.change(uri, version, cc, enc_);
        if (!edits) {
            log(1, "didChange " + uri + ": " + edits.error().message + " (document unchanged)");
            return;
        }
        auto t = trees_.find(uri);
        if (t != trees_.end()) {
            for (const byte_edit& e : *edits) t->second.edit(e);
            if (auto r = t->second.reparse(docs_.find(uri)->text()); !r) log(2, "reparse " + uri + ": " + r.error().message);
        }
        touched(uri);
        document_changed(uri);
    }

    void did_close(const json& params) {
        const std::string uri = string_member(member(params, "textDocument"), "uri");
        document_changed(uri);
        if (auto r = docs_.close(uri); !r) log(3, "didClose: " + r.error().message);
        trees_.erase(uri);
        anchors_.erase(uri);
        extra_tokens_.erase(uri);
        cache_.erase_document(uri);
        std::erase(recent_, uri);
    }

    // Every edit ends the document's pending requests (ContentModified) and the background work whose text is
    // no longer where the document is heading.
    void document_changed(const std::string& uri) {
        std::vector<std::shared_ptr<pending>> hit;
        for (auto& [id, p] : pending_)
            if (p->uri == uri) hit.push_back(p);
        for (auto& p : hit) {
            ++stats_.content_modified;
            finish_error(*p, error_code::content_modified, "the document changed");
        }
    }

    void touched(const std::string& uri) {
        std::erase(recent_, uri);
        recent_.insert(recent_.begin(), uri);
    }

    void document_request(const request_id& id, const json& params) {
        const std::string uri = string_member(member(params, "textDocument"), "uri");
        const text_document* doc = docs_.find(uri);
        if (!doc) invalid_params("document not open: " + uri);
        ch_.send(make_response(id, {{"uri", doc->uri()},
                                    {"languageId", doc->language_id()},
                                    {"version", doc->version()},
                                    {"text", std::string(doc->text())}}));
    }

    // ---- completions ---------------------------------------------------------------------------------------

    void completion_request(const request_id& id, const json& params, request_kind kind) {
        const auto arrived = clock_type::now();
        const std::string uri = string_member(member(params, "textDocument"), "uri");
        const position pos = position_member(params, "position");
        ++stats_.requests;
        const text_document* doc = docs_.find(uri);
        if (!doc) {
            ++stats_.empty;
            return ch_.send(make_response(id, empty_result(kind)));
        }
        auto off = doc->offset_of(pos, enc_);
        if (!off) invalid_params(off.error().message);

        // A newer request for a document supersedes the older ones.
        std::vector<std::shared_ptr<pending>> older;
        for (auto& [pid, p] : pending_)
            if (p->uri == uri) older.push_back(p);
        for (auto& p : older) {
            ++stats_.superseded;
            finish_error(*p, error_code::request_cancelled, "superseded by a newer request");
        }

        auto p = std::make_shared<pending>();
        p->id = id, p->kind = kind, p->uri = uri, p->cursor = *off, p->arrived = arrived;
        p->pos = doc->position_of(*off, enc_);
        if (kind == request_kind::inline_completion && params.contains("context") && params["context"].is_object())
            p->invoked = params["context"].value("triggerKind", 2) == 1;

        if (auto hit = settings_.naive ? std::nullopt : cache_.find(uri, doc->text(), p->cursor)) {
            ++stats_.cache_hits;
            pending_[id] = p;
            answer(*p, *hit->entry, hit->typed);
            maybe_refresh(*hit, doc->text(), p->cursor);
            return;
        }
        const syntax_tree& tree = trees_.at(uri);
        const completion_decision d = decide(tree, doc->text(), p->cursor);
        if (!d.complete) {
            ++stats_.empty;
            return ch_.send(make_response(id, empty_result(kind)));
        }
        pending_[id] = p;
        // Background work for this very text and cursor (a prefetch after an accept) answers it when done.
        for (auto& job : background_)
            if (job->live && job->uri == uri && job->cursor == p->cursor && job->text == doc->text()) {
                job->waiters.push_back(p);
                return;
            }
        cancel_background(uri);
        if (settings_.debounce_ms > 0 && kind == request_kind::inline_completion && !p->invoked) {
            p->timer = ch_.after(std::chrono::milliseconds(settings_.debounce_ms), [this, p] {
                p->timer.reset();
                if (p->live) run(p);
            });
            return;
        }
        run(p);
    }

    // Sends the request to the engine (or parks it while the models load).
    void run(const std::shared_ptr<pending>& p) {
        if (loading_) {
            waiting_.push_back(p);
            return;
        }
        if (!engine_ && !remote_) {
            ++stats_.errors;
            return finish_error(*p, error_code::request_failed,
                                (settings_.remote() ? "no remote backend: " : "no model is loaded: ") + load_error_);
        }
        const text_document* doc = docs_.find(p->uri);
        if (!doc) return finish_error(*p, error_code::content_modified, "the document was closed");
        auto job = submit(p->uri, std::string(doc->text()), p->cursor, {}, request_priority::interactive,
                          [this, p](const generation_outcome& out) { engine_answer(p, out); });
        if (!job) {
            ++stats_.empty;
            return finish(*p, empty_result(p->kind));
        }
        ++stats_.engine_runs;
        p->handle = std::move(job);
    }

    struct generation_outcome {
        spark::result<generation_result> res;
        std::string uri, text;
        size_t cursor = 0;
        std::string completion;  // after the stop rule's finish()
    };

    // Builds the prompt and stop rule for (text, cursor) and queues it; `done` runs on the protocol thread.
    // Returns null when there is nothing to ask (the syntax says no completion here).
    std::shared_ptr<generation_job> submit(const std::string& uri, std::string text, size_t cursor,
                                           std::string_view known, request_priority priority,
                                           std::function<void(const generation_outcome&)> done) {
        const text_document* doc = docs_.find(uri);
        const std::string lang = doc ? doc->language_id() : "";
        // The document's own tree when the text is the document's; a fresh one for a predicted text.
        std::optional<syntax_tree> own;
        const syntax_tree* tree = nullptr;
        if (doc && doc->text() == text && trees_.contains(uri)) {
            tree = &trees_.at(uri);
        } else {
            own.emplace(syntax_tree::for_language_id(lang));
            (void)own->parse(text);
            tree = &*own;
        }
        completion_decision d = decide(*tree, text, cursor);
        if (!d.complete) return nullptr;
        if (!settings_.multiline) d.mode = completion_decision::single_line;
        auto rule = std::make_shared<stop_rule>(*tree, text, cursor, d.mode);
        if (remote_) return submit_remote(uri, std::move(text), cursor, rule, std::move(done));

        const tokenizer& tok = engine_->target().vocab();
        const special_tokens& sp = tok.special();
        const int32_t n_ctx = engine_->context_size();
        const int max_tokens = std::min(settings_.max_tokens, std::max(8, n_ctx / 4));
        prompt_options po;
        po.budget = n_ctx - max_tokens - 1;
        po.fim_ratio = settings_.fim_ratio;
        po.context_files = settings_.context_files;
        std::vector<context_document> others;
        for (const std::string& u : recent_)
            if (u != uri)
                if (const text_document* o = docs_.find(u)) others.push_back({o->uri(), o->language_id(), o->text()});
        auto a = anchors_.find(uri);
        built_prompt bp = build_prompt(tok, text, cursor, lang, po, others,
                                       a == anchors_.end() ? std::string_view::npos : a->second);
        anchors_[uri] = bp.prefix_start;

        engine_request r;
        r.prompt = std::move(bp.tokens);
        r.suffix = std::move(bp.suffix);
        if (!known.empty()) r.known = tok.tokenize(known);
        for (const std::string& u : recent_)
            if (u != uri && r.extra.size() < 8) r.extra.push_back(extra_tokens(u, tok));
        r.priority = priority;
        generation_params& gp = r.params;
        gp.max_tokens = max_tokens;
        gp.time_budget = std::chrono::milliseconds(settings_.time_budget_ms);
        for (token_id t : {sp.bos, sp.fim_pre, sp.fim_suf, sp.fim_mid, sp.fim_pad, sp.fim_rep, sp.fim_sep})
            if (t >= 0) gp.sampling.banned.push_back(t);
        for (token_id t : {sp.eos, sp.eot})
            if (t >= 0) gp.stop_tokens.push_back(t);
        gp.stop_criterion = [rule](std::string_view g) { return (*rule)(g); };
        if (options_.slow_engine_test_double) {
            gp.stop_tokens.clear();
            gp.stop_criterion = nullptr;
            gp.max_tokens = settings_.max_tokens;
            gp.on_text = [](std::string_view) { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
        }
        return std::make_shared<engine_job>(
            engine_->submit(std::move(r), on_generated(uri, std::move(text), cursor, rule, std::move(done))));
    }

    // The callback of an engine or remote run (on its thread): the stop rule's finish() on the text, then `done`
    // on the protocol thread.
    std::function<void(const result<generation_result>&)> on_generated(
        const std::string& uri, std::string text, size_t cursor, std::shared_ptr<stop_rule> rule,
        std::function<void(const generation_outcome&)> done) {
        channel* ch = &ch_;
        auto shared_text = std::make_shared<std::string>(std::move(text));
        return [this, ch, rule, uri, shared_text, cursor, done = std::move(done)](const result<generation_result>& res) {
            generation_outcome out{res, uri, *shared_text, cursor, {}};
            if (res) out.completion = res->text.substr(0, rule->finish(res->text));
            ch->post([this, out = std::move(out), done] {
                record_engine(out);
                done(out);
            });
        };
    }

    // The remote path: windows of text around the cursor (the prefix window keeps its start while it fits, so a
    // server that caches prompts reuses its KV state), other open files as context, the stop rule on the stream.
    std::shared_ptr<generation_job> submit_remote(const std::string& uri, std::string text, size_t cursor,
                                                  std::shared_ptr<stop_rule> rule,
                                                  std::function<void(const generation_outcome&)> done) {
        const size_t total = size_t(settings_.remote_context_chars);
        const size_t prefix_chars = std::max<size_t>(64, size_t(double(total) * settings_.fim_ratio));
        const size_t suffix_chars = total > prefix_chars ? total - prefix_chars : 0;
        auto line_start = [&](size_t p) {
            const size_t nl = p == 0 ? std::string::npos : text.rfind('\n', p - 1);
            return nl == std::string::npos ? size_t(0) : nl + 1;
        };
        size_t start = 0;
        auto a = anchors_.find(uri);
        const bool anchor_ok = a != anchors_.end() && a->second <= cursor && line_start(a->second) == a->second &&
                               cursor - a->second <= prefix_chars;
        if (anchor_ok)
            start = a->second;
        else if (cursor > prefix_chars * 3 / 4)
            start = line_start(cursor - prefix_chars * 3 / 4);  // room to grow before the window must move
        anchors_[uri] = start;
        size_t end = std::min(text.size(), cursor + suffix_chars);
        if (end < text.size()) end = std::max(cursor, line_start(end));
        remote_request r;
        r.prefix = text.substr(start, cursor - start);
        r.suffix = text.substr(cursor, end - cursor);
        r.max_tokens = settings_.max_tokens;
        if (settings_.context_files)
            for (const std::string& u : recent_)
                if (u != uri && r.extra.size() < 3)
                    if (const text_document* o = docs_.find(u))
                        r.extra.push_back({o->uri(), std::string(o->text().substr(0, std::min<size_t>(o->size(), 4096)))});
        r.stop_criterion = [rule](std::string_view g) { return (*rule)(g); };
        return remote_->submit(std::move(r), on_generated(uri, std::move(text), cursor, rule, std::move(done)));
    }

    // A remote failure is shown to the user once (window/showMessage), logged every time, and answered with an
    // empty result so the editor never waits on it; the next success re-arms the message.
    void remote_failed(const std::string& why) {
        log(1, why);
        if (remote_failing_) return;
        remote_failing_ = true;
        ch_.send(make_notification("window/showMessage", {{"type", 2}, {"message", "spark-ls: " + why}}));
    }

    void record_engine(const generation_outcome& out) {
        if (!out.res) {
            if (remote_) ++stats_.engine_failed;
            return;
        }
        const generation_result& g = *out.res;
        if (g.reason == stop_reason::cancelled) {
            ++stats_.engine_cancelled;
            return;
        }
        ++stats_.engine_completed;
        stats_.generated += uint64_t(g.stats.generated);
        stats_.drafted += g.stats.drafted;
        stats_.accepted_tokens += g.stats.accepted;
        stats_.prompt_tokens += uint64_t(g.stats.prompt_tokens);
        stats_.prompt_reused += uint64_t(g.stats.prompt_reused);
        stats_.generation_seconds += std::max(0.0, g.stats.seconds - g.stats.prompt_seconds);
    }

    // A finished engine run for a request.
    void engine_answer(const std::shared_ptr<pending>& p, const generation_outcome& out) {
        if (!p->live) return;
        if (!out.res) {
            ++stats_.errors;
            if (remote_) {
                remote_failed(out.res.error().message);
                ++stats_.empty;
                return finish(*p, empty_result(p->kind));
            }
            return finish_error(*p, error_code::request_failed, out.res.error().message);
        }
        if (remote_) remote_failing_ = false;
        if (out.res->reason == stop_reason::cancelled)
            return finish_error(*p, error_code::request_cancelled, "cancelled");
        const cached_completion* e = remember(out);
        if (!e) {
            ++stats_.empty;
            return finish(*p, empty_result(p->kind));
        }
        answer(*p, *e, 0);
    }

    // Puts a finished suggestion into the forwarding cache; null when it is blank.
    const cached_completion* remember(const generation_outcome& out) {
        if (blank(out.completion)) return nullptr;
        cached_completion c;
        c.id = "cmpl-" + std::to_string(++completion_id_);
        c.uri = out.uri, c.text = out.text, c.cursor = out.cursor, c.completion = out.completion;
        const stop_reason why = out.res->reason;
        c.truncated = why == stop_reason::max_tokens || why == stop_reason::time_budget;
        cache_.put(std::move(c));
        return cache_.by_id("cmpl-" + std::to_string(completion_id_));
    }

    // The answer for a suggestion of which the user already typed `typed` bytes.
    void answer(pending& p, const cached_completion& e, size_t typed) {
        const text_document* doc = docs_.find(p.uri);
        const std::string_view c(e.completion), rest = c.substr(typed);
        const json command = {{"title", "Accept completion"}, {"command", accept_command}, {"arguments", {e.id}}};
        json result;
        switch (p.kind) {
            case request_kind::inline_completion: {
                json item;
                if (c.substr(0, typed).find('\n') == std::string_view::npos) {
                    item["insertText"] = e.completion;
                    item["range"] = to_json(range{doc->position_of(p.cursor - typed, enc_), p.pos});
                } else {
                    item["insertText"] = std::string(rest);
                    item["range"] = to_json(range{p.pos, p.pos});
                }
                item["command"] = command;
                result = {{"items", json::array({item})}};
                break;
            }
            case request_kind::completion: {
                // Replace the word before the cursor with itself plus the suggestion, so popups filter by it.
                const std::string_view text = doc->text();
                const size_t line0 = doc->line_start(p.pos.line);
                size_t w = p.cursor;
                while (w > line0) {
                    const unsigned char ch = static_cast<unsigned char>(text[w - 1]);
                    if (!(std::isalnum(ch) || ch == '_' || ch >= 0x80)) break;
                    --w;
                }
                const std::string word(text.substr(w, p.cursor - w));
                const std::string insert = word + std::string(rest);
                std::string label = insert.substr(0, insert.find('\n'));
                while (!label.empty() && (label.back() == ' ' || label.back() == '\t' || label.back() == '\r')) label.pop_back();
                json item = {{"label", label.empty() ? insert : label},
                             {"kind", 1},
                             {"detail", "spark-ls"},
                             {"filterText", insert},
                             {"insertTextFormat", 1},
                             {"textEdit", {{"range", to_json(range{doc->position_of(w, enc_), p.pos})}, {"newText", insert}}},
                             {"command", command}};
                result = {{"isIncomplete", true}, {"items", json::array({item})}};
                break;
            }
            case request_kind::llm_ls: {
                const std::string rid = uuid4();
                if (llm_ids_.size() >= 4096) llm_ids_.clear();  // clients that never accept nor reject
                llm_ids_[rid] = e.id;
                result = {{"request_id", rid}, {"completions", json::array({{{"generated_text", std::string(rest)}}})}};
                break;
            }
        }
        finish(p, std::move(result));
    }

    json empty_result(request_kind kind) const {
        switch (kind) {
            case request_kind::inline_completion: return {{"items", json::array()}};
            case request_kind::completion: return {{"isIncomplete", true}, {"items", json::array()}};
            case request_kind::llm_ls: return {{"request_id", uuid4()}, {"completions", json::array()}};
        }
        return nullptr;
    }

    void finish(pending& p, json result) {
        if (!p.live) return;
        p.live = false;
        if (p.timer) p.timer->cancel();
        stats_.latency.add(std::chrono::duration<double, std::milli>(clock_type::now() - p.arrived).count());
        ch_.send(make_response(p.id, result));
        pending_.erase(p.id);
    }

    void finish_error(pending& p, error_code code, const std::string& message) {
        if (!p.live) return;
        p.live = false;
        cancel_work(p);
        if (code == error_code::request_cancelled) ++stats_.cancelled;
        ch_.send(make_error(p.id, code, message));
        pending_.erase(p.id);
    }

    void cancel_work(pending& p) {
        if (p.timer) p.timer->cancel();
        if (p.handle) p.handle->cancel();
    }

    void cancel_request(const json& params) {
        auto id = id_from_json(member(params, "id"));
        if (!id) return;
        auto it = pending_.find(*id);
        if (it == pending_.end()) return;  // already answered
        auto p = it->second;
        finish_error(*p, error_code::request_cancelled, "cancelled");
    }

    // ---- background work: prefetch after an accept, refresh of a truncated suggestion ------------------------

    void start_background(const std::string& uri, std::string text, size_t cursor, std::string_view known) {
        if (loading_ || (!engine_ && !remote_) || settings_.naive) return;
        for (auto& j : background_)
            if (j->live && j->uri == uri && j->cursor == cursor && j->text == text) return;  // already on it
        cancel_background(uri);
        auto job = std::make_shared<background_job>();
        job->uri = uri, job->text = text, job->cursor = cursor;
        job->handle = submit(uri, std::move(text), cursor, known, request_priority::background,
                             [this, job](const generation_outcome& out) { background_done(job, out); });
        if (!job->handle) return;
        ++stats_.prefetches;
        background_.push_back(job);
    }

    void background_done(const std::shared_ptr<background_job>& job, const generation_outcome& out) {
        std::erase(background_, job);
        if (!out.res && remote_ && job->live) remote_failed(out.res.error().message);
        const bool ok = out.res && out.res->reason != stop_reason::cancelled;
        const cached_completion* e = ok && job->live ? remember(out) : nullptr;
        for (auto& p : job->waiters) {
            if (!p->live) continue;
            if (e) {
                ++stats_.prefetch_hits;
                answer(*p, *e, 0);
            } else if (!ok || !job->live) {
                run(p);  // the job was cancelled under it: run the request on its own
            } else {
                ++stats_.empty;
                finish(*p, empty_result(p->kind));
            }
        }
        job->live = false;
    }

    // Cancels background work (for one document, or all), except jobs that requests are waiting for.
    void cancel_background(std::string_view uri = {}) {
        for (auto& j : background_)
            if (j->live && (uri.empty() || j->uri == uri) &&
                std::ranges::none_of(j->waiters, [](auto& p) { return p->live; })) {
                j->live = false;
                if (j->handle) j->handle->cancel();
            }
    }

    // After a cache hit on a suggestion the engine cut short, extend it in the background with the rest of it as
    // known tokens (verified in one pass), so the suggestion grows while the user types along.
    void maybe_refresh(const cache_match& m, std::string_view text, size_t cursor) {
        if (!m.entry->truncated) return;
        start_background(m.entry->uri, std::string(text), cursor, m.remainder());
    }

    // An accept (command or llm-ls) is counted even when its suggestion has left the cache (e null); one still
    // there also prefetches the suggestion after the accepted text, for the text the editor is about to send.
    void accepted(const cached_completion* e) {
        ++stats_.accepted;
        if (!e) return;
        std::string next = e->text.substr(0, e->cursor) + e->completion + e->text.substr(e->cursor);
        start_background(e->uri, std::move(next), e->cursor + e->completion.size(), {});
    }

    void execute_command(const request_id& id, const json& params) {
        const std::string cmd = string_member(params, "command");
        if (cmd != accept_command && cmd != reject_command) invalid_params("unknown command: " + cmd);
        std::string cid;
        if (params.contains("arguments") && params["arguments"].is_array() && !params["arguments"].empty() &&
            params["arguments"][0].is_string())
            cid = params["arguments"][0].get<std::string>();
        if (cmd == accept_command)
            accepted(cache_.by_id(cid));
        else
            ++stats_.rejected;
        ch_.send(make_response(id, nullptr));
    }

    void llm_feedback(const request_id& id, const json& params, bool accept) {
        std::string rid;
        if (params.is_object() && params.contains("requestId") && params["requestId"].is_string())
            rid = params["requestId"].get<std::string>();
        auto it = llm_ids_.find(rid);
        const cached_completion* e = it == llm_ids_.end() ? nullptr : cache_.by_id(it->second);
        if (accept)
            accepted(e);
        else
            ++stats_.rejected;
        if (it != llm_ids_.end()) llm_ids_.erase(it);
        ch_.send(make_response(id, nullptr));
    }

    // Token ids of another open document, cached per version (the n-gram drafter's extra texts).
    const std::vector<token_id>& extra_tokens(const std::string& uri, const tokenizer& tok) {
        const text_document* d = docs_.find(uri);
        auto& slot = extra_tokens_[uri];
        if (d && slot.first != int64_t(d->version()) + 1) {  // + 1: a fresh slot (0) never matches
            slot.first = int64_t(d->version()) + 1;
            slot.second = tok.tokenize(d->text().substr(0, std::min<size_t>(d->size(), 32 * 1024)));
        }
        return slot.second;
    }

    json stats_json() const {
        const counters& s = stats_;
        return {{"requests", s.requests},
                {"engineRuns", s.engine_runs},
                {"cacheHits", s.cache_hits},
                {"prefetchHits", s.prefetch_hits},
                {"cancelled", s.cancelled},
                {"superseded", s.superseded},
                {"contentModified", s.content_modified},
                {"empty", s.empty},
                {"errors", s.errors},
                {"shown", s.shown},
                {"accepted", s.accepted},
                {"rejected", s.rejected},
                {"partiallyAccepted", s.partially_accepted},
                {"prefetches", s.prefetches},
                {"latencyMs", s.latency.summary()},
                {"engine",
                 {{"loaded", engine_ != nullptr || remote_ != nullptr},
                  {"completed", s.engine_completed},
                  {"cancelled", s.engine_cancelled},
                  {"generatedTokens", s.generated},
                  {"tokensPerSecond", s.generation_seconds > 0 ? double(s.generated) / s.generation_seconds : 0.0},
                  {"acceptance", s.drafted ? double(s.accepted_tokens) / double(s.drafted) : 0.0},
                  {"draftedTokens", s.drafted},
                  {"acceptedTokens", s.accepted_tokens},
                  {"promptTokens", s.prompt_tokens},
                  {"promptReused", s.prompt_reused}}}};
    }

    // type: 1 error, 2 warning, 3 info, 4 log. Errors and warnings also go to stderr.
    void log(int type, const std::string& message) {
        if (type <= 2 || options_.verbose) std::fprintf(stderr, "spark-ls: %s\n", message.c_str());
        if (state_ != state::uninitialized)
            ch_.send(make_notification("window/logMessage", {{"type", type}, {"message", message}}));
    }

    enum class state { uninitialized, running, shut_down };

    channel& ch_;
    server_options options_;
    settings settings_;
    state state_ = state::uninitialized;
    position_encoding enc_ = position_encoding::utf16;
    bool work_done_progress_ = false;

    document_store docs_;
    std::unordered_map<std::string, syntax_tree> trees_;
    std::unordered_map<std::string, size_t> anchors_;  // prompt prefix window starts, per document
    std::unordered_map<std::string, std::pair<int64_t, std::vector<token_id>>> extra_tokens_;
    std::vector<std::string> recent_;  // URIs, most recently edited first

    std::shared_ptr<engine> engine_;
    std::unique_ptr<remote_backend> remote_;  // instead of engine_ when settings_.backend names one
    bool remote_failing_ = false;             // the user was told; quiet until a request succeeds
    std::thread loader_;
    bool loading_ = false;
    uint64_t load_generation_ = 0;
    std::string load_error_;
    std::optional<progress_state> progress_;
    int64_t server_request_id_ = 0;

    std::map<request_id, std::shared_ptr<pending>> pending_;
    std::vector<std::shared_ptr<pending>> waiting_;  // until the models are loaded
    std::vector<std::shared_ptr<background_job>> background_;
    completion_cache cache_;
    std::unordered_map<std::string, std::string> llm_ids_;  // llm-ls request_id -> completion id
    uint64_t completion_id_ = 0;
    counters stats_;
};

}  // namespace

std::unique_ptr<session> make_server(channel& ch, const server_options& options) {
    return std::make_unique<server>(ch, options);
}

}  // namespace spark::lsp
