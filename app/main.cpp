// spark-ls command line: the language server (later), and tools for people debugging models and prompts.
#include "accel/device.h"
#include "app/bench.h"
#include "app/bench_spec.h"
#include "app/serve.h"
#include "inference/default_models.h"
#include "inference/forward.h"
#include "inference/forward_ref.h"
#include "inference/gguf.h"
#include "inference/model.h"
#include "inference/random_model.h"
#include "inference/drafters.h"
#include "inference/sampling.h"
#include "inference/speculative.h"
#include "inference/tokenizer.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace spark;

constexpr const char* usage_text = R"(usage: spark-ls <command> [options]

commands:
  serve [--tcp PORT [--host ADDR]] [--model T.gguf] [--draft D.gguf|default|none] [--threads N]
                                      the language server on stdio (or TCP): docs/LSP.md; `serve --help`
  inspect M.gguf                      architecture, hyper-parameters, tensors, tokenizer, special tokens
  generate [--model M.gguf] --prompt TEXT [--suffix TEXT] [--n N] [--temp T] [--top-k K] [--top-p P]
           [--seed S] [--ctx C] [--threads W] [--draft D.gguf|default] [--ngram] [--gamma G] [--stop S]
           [--concurrent] [--compare] [--reference]
                                      generate text (default model: the embedded spark-target.gguf); with
                                      --suffix a fill-in-the-middle prompt; --draft/--ngram decode speculatively
                                      (--compare also runs plain decoding: speed-up, identical output); prints
                                      the text, then tokens/s and acceptance on stderr
  tokenize --model M.gguf (--text TEXT | --file F) [--special] [--bos]
                                      print token ids, space-separated, on one line
  bench decode --model M.gguf [--tsv F] [--n N] [--prompt-tokens P] [--reps R]
                                      decode and prompt speed vs the memory roofline, verify cost curve,
                                      1 vs 2 workers with and without a competing process
  bench spec [--model T.gguf --draft D.gguf] [--code-dir DIR] [--prompts P] [--replays R] [--n N] [--reps R]
             [--fixed-gamma G] [--tsv F]
  bench spec --oracle --target T.gguf --draft D.gguf [--n N] [--prompt-tokens P] [--draft-threads W] [--tsv F]
                                      speculative decoding vs plain: drafters on FIM prompts and edit replays
                                      cut from code (default: the embedded pair); --oracle: S(alpha) at real shapes
  accel-report --model M.gguf [--chip host|wafer] [--n N]
                                      per kernel class: measured time on this host vs projected on a chip
  make-model --preset NAME --out M.gguf [--type T] [--seed S]
                                      write a model with random weights (presets: tiny-llama, tiny-llama-tied,
                                      tiny-qwen2, qwen2.5-0.5b, qwen2.5-1.5b; T: f32, f16, q8_0, q4_0, q4_k, ...)
)";

// --key value and --flag options after the command; positional arguments in order.
struct args {
    std::map<std::string, std::string> options;
    std::vector<std::string> positional;

    bool has(const std::string& k) const { return options.count(k) != 0; }
    std::string get(const std::string& k, const std::string& fallback = "") const {
        auto it = options.find(k);
        return it == options.end() ? fallback : it->second;
    }
};

result<args> parse_args(int argc, char** argv, int first, const std::vector<std::string>& flags) {
    args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            const std::string key = s.substr(2);
            if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
                a.options[key] = "1";
            } else if (i + 1 < argc) {
                a.options[key] = argv[++i];
            } else {
                return fail("option --", key, " needs a value");
            }
        } else {
            a.positional.push_back(std::move(s));
        }
    }
    return a;
}

template <class T>
result<T> number(const args& a, const std::string& key, T fallback) {
    if (!a.has(key)) return fallback;
    const std::string s = a.get(key);
    std::istringstream in(s);
    T v{};
    if (!(in >> v) || !in.eof()) return fail("option --", key, ": '", s, "' is not a number");
    return v;
}

int report(const error& e) {
    std::fprintf(stderr, "spark-ls: %s\n", e.message.c_str());
    return 1;
}

std::string escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += char(c);
    }
    return out;
}

int cmd_inspect(const args& a) {
    if (a.positional.size() != 1) return report({"inspect: give one model file"});
    auto m = model::load(a.positional[0]);
    if (!m) return report(m.error());
    const auto& model = **m;
    const auto& hp = model.hparams();
    const auto& f = model.file();
    std::printf("file:            %s (GGUF v%u, %llu bytes, %zu tensors, %zu metadata keys)\n", a.positional[0].c_str(),
                f.version(), (unsigned long long)f.file_size(), f.tensors().size(), f.metadata().size());
    std::printf("architecture:    %s%s%s\n", hp.arch.c_str(), hp.name.empty() ? "" : "  name: ", hp.name.c_str());
    std::printf("context:         %d\n", hp.n_ctx_train);
    std::printf("embedding:       %d   layers: %d   ffn: %d\n", hp.n_embd, hp.n_layer, hp.n_ff);
    std::printf("heads:           %d   kv heads: %d   head dim: %d   rotary dims: %d\n", hp.n_head, hp.n_head_kv,
                hp.head_dim, hp.n_rot);
    std::printf("rope:            %s, base %g, scale %g\n", hp.rope == rope_style::neox ? "neox" : "normal",
                double(hp.rope_base), double(hp.rope_freq_scale));
    std::printf("rms eps:         %g\n", double(hp.rms_eps));
    std::printf("output:          %s%s\n", hp.tied_output ? "tied to token_embd" : "separate",
                hp.has_qkv_bias ? ", q/k/v biases" : "");
    std::printf("weights:         %.1f MiB\n", double(model.weight_bytes()) / (1024.0 * 1024.0));
    const auto& tok = model.vocab();
    const auto& sp = tok.special();
    std::printf("tokenizer:       %s (pre: %s), %d tokens, vocab rows %d, add_bos %s\n",
                std::string(tok.model_name()).c_str(), std::string(tok.pre_tokenizer_name()).c_str(), tok.n_tokens(),
                hp.n_vocab, sp.add_bos ? "yes" : "no");
    auto show = [&](const char* name, token_id id) {
        if (id >= 0) std::printf("  %-8s %6d  '%s'\n", name, id, escape(tok.token_text(id)).c_str());
    };
    std::printf("special tokens:\n");
    show("bos", sp.bos);
    show("eos", sp.eos);
    show("eot", sp.eot);
    show("unk", sp.unk);
    show("pad", sp.pad);
    show("fim_pre", sp.fim_pre);
    show("fim_suf", sp.fim_suf);
    show("fim_mid", sp.fim_mid);
    show("fim_pad", sp.fim_pad);
    show("fim_rep", sp.fim_rep);
    show("fim_sep", sp.fim_sep);
    std::printf("tensors:\n");
    for (const auto& t : f.tensors()) {
        std::string dims;
        for (size_t i = 0; i < t.dims.size(); ++i) dims += (i ? " x " : "") + std::to_string(t.dims[i]);
        std::printf("  %-32s %-6s %-18s %10.3f MiB\n", t.name.c_str(), std::string(type_name(t.type)).c_str(),
                    dims.c_str(), double(t.n_bytes) / (1024.0 * 1024.0));
    }
    return 0;
}

result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(path, ": cannot open");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

int cmd_tokenize(const args& a) {
    if (!a.has("model")) return report({"tokenize: --model is required"});
    if (a.has("text") == a.has("file")) return report({"tokenize: give exactly one of --text and --file"});
    std::string text = a.get("text");
    if (a.has("file")) {
        auto t = read_file(a.get("file"));
        if (!t) return report(t.error());
        text = std::move(*t);
    }
    auto f = gguf::gguf_file::open(a.get("model"));
    if (!f) return report(f.error());
    auto tok = tokenizer::load(*f);  // the vocabulary alone is enough: vocab-only files work too
    if (!tok) return report({a.get("model") + ": " + tok.error().message});
    const auto ids = tok->tokenize(text, {.add_bos = a.has("bos"), .parse_special = a.has("special")});
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
    return 0;
}

// Plain decoding on the scalar reference path (slow; for comparisons with the accelerator path).
int generate_reference(const model& m, const std::vector<token_id>& prompt, int n, int n_ctx, const sampling_params& sp,
                       const std::string& prompt_text, double load_seconds) {
    const auto& tok = m.vocab();
    kv_cache cache(m.hparams(), n_ctx);
    sampler smp(sp);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits;
    if (auto ok = forward_reference(m, cache, prompt, logits, false); !ok) return report(ok.error());
    stream_decoder out(tok);
    std::fputs(prompt_text.c_str(), stdout);
    int generated = 0;
    while (generated < n) {
        const token_id next = smp.sample(logits, tok.n_tokens());
        ++generated;
        if (next == tok.special().eos || next == tok.special().eot) break;
        std::fputs(out.push(next).c_str(), stdout);
        std::fflush(stdout);
        if (generated == n) break;
        const token_id one[] = {next};
        if (auto ok = forward_reference(m, cache, one, logits, false); !ok) return report(ok.error());
    }
    std::fputs((out.flush() + "\n").c_str(), stdout);
    std::fflush(stdout);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "load %.2f s | generated %d tokens in %.3f s | scalar reference path\n", load_seconds,
                 generated, s);
    return 0;
}

void print_stats(const char* label, const generation_result& r) {
    const auto& st = r.stats;
    std::fprintf(stderr,
                 "%s: prompt %d tokens (%d reused, %d evaluated) in %.3f s | generated %d tokens in %.3f s "
                 "(%.2f tok/s) | %llu steps, drafted %llu, accepted %llu (%.0f%%), %.2f tokens per step | stop: %s\n",
                 label, st.prompt_tokens, st.prompt_reused, st.prompt_evaluated, st.prompt_seconds, st.generated,
                 st.seconds - st.prompt_seconds, st.tokens_per_second(), (unsigned long long)st.steps,
                 (unsigned long long)st.drafted, (unsigned long long)st.accepted, 100 * st.acceptance(),
                 st.steps ? double(st.generated) / double(st.steps) : 0.0, std::string(stop_reason_name(r.reason)).c_str());
    for (const auto& d : st.per_drafter)
        std::fprintf(stderr, "  %-12s drafted %llu, accepted %llu (%.0f%%)\n", d.name.c_str(),
                     (unsigned long long)d.drafted, (unsigned long long)d.accepted,
                     d.drafted ? 100.0 * double(d.accepted) / double(d.drafted) : 0.0);
}

int cmd_generate(const args& a) {
    if (!a.has("prompt")) return report({"generate: --prompt is required"});
    auto model_or_default = [](std::string path, const char* file) -> result<std::string> {
        if (!path.empty() && path != "default") return path;
        return find_default_model(file);  // the embedded default pair
    };
    auto model_path = model_or_default(a.get("model"), default_target_model);
    if (!model_path) return report(model_path.error());
    auto n = number<int>(a, "n", 32);
    auto temp = number<float>(a, "temp", 0.0f);
    auto seed = number<uint64_t>(a, "seed", 0);
    auto top_k = number<int>(a, "top-k", 0);
    auto top_p = number<float>(a, "top-p", 1.0f);
    auto ctx = number<int>(a, "ctx", 0);
    auto threads = number<int>(a, "threads", 2);
    auto gamma = number<int>(a, "gamma", 8);
    for (const error* e : {n ? nullptr : &n.error(), temp ? nullptr : &temp.error(), seed ? nullptr : &seed.error(),
                           top_k ? nullptr : &top_k.error(), top_p ? nullptr : &top_p.error(),
                           ctx ? nullptr : &ctx.error(), threads ? nullptr : &threads.error(),
                           gamma ? nullptr : &gamma.error()})
        if (e) return report(*e);
    if (*n < 0) return report({"generate: --n must be >= 0"});

    const auto t_load = std::chrono::steady_clock::now();
    auto loaded = model::load(*model_path);
    if (!loaded) return report(loaded.error());
    const model& m = **loaded;
    const auto& tok = m.vocab();
    const auto& sp = tok.special();
    // With --suffix the prompt is fill-in-the-middle: <s><fim_prefix>PROMPT<fim_suffix>SUFFIX<fim_middle>.
    const bool fim = a.has("suffix");
    std::vector<token_id> prompt, suffix;
    if (fim) {
        if (sp.fim_pre < 0 || sp.fim_suf < 0 || sp.fim_mid < 0)
            return report({"generate: --suffix needs a model with FIM tokens; this one has none"});
        suffix = tok.tokenize(a.get("suffix"));
        if (sp.add_bos && sp.bos >= 0) prompt.push_back(sp.bos);
        prompt.push_back(sp.fim_pre);
        const auto pre = tok.tokenize(a.get("prompt"));
        prompt.insert(prompt.end(), pre.begin(), pre.end());
        prompt.push_back(sp.fim_suf);
        prompt.insert(prompt.end(), suffix.begin(), suffix.end());
        prompt.push_back(sp.fim_mid);
    } else {
        prompt = tok.tokenize(a.get("prompt"), {.add_bos = sp.add_bos, .parse_special = true});
    }
    if (prompt.empty()) return report({"generate: the prompt is empty (and the model adds no BOS)"});
    const int n_ctx = *ctx > 0 ? *ctx : std::min<int>(m.hparams().n_ctx_train, int(prompt.size()) + *n + 1);
    if (int(prompt.size()) + *n + 1 > n_ctx)
        return report({"generate: prompt (" + std::to_string(prompt.size()) + " tokens) + --n exceeds the context " +
                       std::to_string(n_ctx)});
    sampling_params sparams;
    sparams.temperature = *temp, sparams.top_k = *top_k, sparams.top_p = *top_p, sparams.seed = uint64_t(*seed);
    // Control tokens never appear in generated code.
    for (token_id t : {sp.bos, sp.fim_pre, sp.fim_suf, sp.fim_mid, sp.fim_pad, sp.fim_rep, sp.fim_sep})
        if (t >= 0) sparams.banned.push_back(t);
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    if (a.has("reference")) return generate_reference(m, prompt, *n, n_ctx, sparams, a.get("prompt"), load_seconds);

    accel::partition part("target", std::max(1, *threads)), draft_part("draft", 1);
    auto placed = placed_model::place(*loaded, part);
    if (!placed) return report(placed.error());
    model_sequence target(**placed, n_ctx);

    // Drafters, cheapest first: suffix (with --suffix), n-gram (--ngram), a draft model (--draft M.gguf|default).
    std::vector<drafter*> drafters;
    suffix_drafter suffix_d;
    ngram_drafter ngram_d;
    std::shared_ptr<const model> draft_model;
    std::unique_ptr<placed_model> draft_placed;
    std::unique_ptr<model_drafter> model_d;
    if (fim) drafters.push_back(&suffix_d);
    if (a.has("ngram")) drafters.push_back(&ngram_d);
    if (a.has("draft")) {
        auto dpath = model_or_default(a.get("draft"), default_draft_model);
        if (!dpath) return report(dpath.error());
        auto dm = model::load(*dpath);
        if (!dm) return report(dm.error());
        draft_model = *dm;
        auto dp = placed_model::place(draft_model, draft_part);
        if (!dp) return report(dp.error());
        draft_placed = std::move(*dp);
        auto md = model_drafter::create(*draft_placed, m, n_ctx);
        if (!md) return report(md.error());
        model_d = std::move(*md);
        drafters.push_back(model_d.get());
    }

    generation_params gp;
    gp.sampling = sparams;
    gp.max_tokens = *n;
    gp.max_gamma = std::clamp(*gamma, 0, accel::max_batch - 1);
    for (token_id t : {sp.eos, sp.eot})
        if (t >= 0) gp.stop_tokens.push_back(t);
    if (a.has("stop")) gp.stop_strings.push_back(a.get("stop"));
    const draft_context dctx{prompt, suffix, {}, {}};

    // --compare: plain decoding of the same request first (on its own state), for the speed-up and the check that
    // greedy output is identical.
    std::optional<generation_result> plain_result;
    if (a.has("compare") && !drafters.empty()) {
        model_sequence plain_seq(**placed, n_ctx);
        speculative_decoder plain(plain_seq, &tok, {});
        auto r = plain.generate(dctx, gp);
        if (!r) return report(r.error());
        plain_result = std::move(*r);
    }
    speculative_decoder dec(target, &tok, drafters);
    dec.set_concurrent_drafting(a.has("concurrent"));
    std::fputs(a.get("prompt").c_str(), stdout);
    gp.on_text = [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    auto r = dec.generate(dctx, gp);
    std::fputs("\n", stdout);
    std::fflush(stdout);  // the text first, then the statistics on stderr
    if (!r) return report(r.error());
    std::fprintf(stderr, "load %.2f s | accelerator path, %d worker(s)%s\n", load_seconds, part.n_workers(),
                 drafters.empty() ? "" : ", speculative");
    if (plain_result) print_stats("plain", *plain_result);
    print_stats(drafters.empty() ? "plain" : "speculative", *r);
    if (dec.concurrent_drafting())
        std::fprintf(stderr, "concurrent drafting: %llu steps used a draft made during the previous verification\n",
                     (unsigned long long)dec.concurrent_hits());
    if (plain_result) {
        const double speedup = r->stats.tokens_per_second() / std::max(1e-9, plain_result->stats.tokens_per_second());
        std::fprintf(stderr, "speed-up %.2fx | output %s plain decoding's\n", speedup,
                     r->tokens == plain_result->tokens ? "identical to" : "differs from (sampling) ");
    }
    return 0;
}

int cmd_bench(const args& a) {
    if (a.positional.size() == 1 && a.positional[0] == "spec") {
        spec_bench_options o;
        o.oracle = a.has("oracle") || a.has("target");
        o.tsv_path = a.get("tsv");
        o.model_path = a.get("model"), o.draft_path = a.get("draft"), o.code_dir = a.get("code-dir");
        o.target_path = a.get("target"), o.oracle_draft_path = a.get("draft");
        const std::pair<const char*, int*> ints[] = {
            {"n", o.oracle ? &o.oracle_tokens : &o.n_tokens}, {"prompt-tokens", &o.oracle_prompt},
            {"prompts", &o.n_prompts}, {"replays", &o.n_replays}, {"reps", &o.reps}, {"threads", &o.threads},
            {"draft-threads", &o.draft_threads}, {"gamma", &o.max_gamma},
            {"fixed-gamma", &o.fixed_gamma}};
        for (const auto& [key, v] : ints) {
            auto x = number<int>(a, key, *v);
            if (!x) return report(x.error());
            *v = *x;
        }
        return run_bench_spec(o);
    }
    if (a.positional.size() != 1 || a.positional[0] != "decode")
        return report({"bench: the benchmarks are 'decode' and 'spec'"});
    if (!a.has("model")) return report({"bench: --model is required"});
    bench_options o;
    o.model_path = a.get("model");
    o.tsv_path = a.get("tsv");
    auto n = number<int>(a, "n", o.n_decode);
    auto p = number<int>(a, "prompt-tokens", o.n_prompt);
    auto r = number<int>(a, "reps", o.reps);
    if (!n || !p || !r) return report({"bench: --n, --prompt-tokens and --reps take numbers"});
    o.n_decode = std::max(1, *n);
    o.n_prompt = std::max(1, *p);
    o.reps = std::max(1, *r);
    return run_bench_decode(o);
}

// Runs a prompt and some decode steps on a 2-worker host partition, then compares the measured time per kernel
// class with the cost model's projection for the host and for the chosen chip.
int cmd_accel_report(const args& a) {
    if (!a.has("model")) return report({"accel-report: --model is required"});
    auto chip = accel::preset_by_name(a.get("chip", "wafer"));
    if (!chip) return report(chip.error());
    auto n = number<int>(a, "n", 16);
    if (!n) return report(n.error());
    auto loaded = model::load(a.get("model"));
    if (!loaded) return report(loaded.error());
    const auto& m = *loaded;
    accel::partition part("host", 2);
    auto placed = placed_model::place(m, part);
    if (!placed) return report(placed.error());
    kv_cache cache(m->hparams(), 8 + *n);
    std::vector<float> logits;
    std::vector<token_id> prompt(8, 1);
    if (auto ok = (*placed)->forward(cache, prompt, logits, false); !ok) return report(ok.error());
    part.stats().clear();
    for (int i = 0; i < *n; ++i) {
        const token_id t[] = {token_id(2 + i)};
        if (auto ok = (*placed)->forward(cache, t, logits, false); !ok) return report(ok.error());
    }
    const double bw = accel::measure_read_bandwidth(2);
    const auto host = accel::host_preset(bw);
    const auto& s = part.stats();
    const uint64_t wbytes = (*placed)->weight_bytes();
    const int chip_cores = int(std::min<uint64_t>(uint64_t(chip->n_cores),
                                                  std::max<uint64_t>(1, wbytes / std::max<uint64_t>(1, chip->local_memory_per_core) + 1)));
    std::printf("model %s, %d decode steps, packed weights %.1f MiB\n", a.get("model").c_str(), *n,
                double(wbytes) / (1 << 20));
    std::printf("host: %d cores, %.1f GB/s measured; chip '%s': %d cores hold the weights\n", host.n_cores, bw / 1e9,
                chip->name.c_str(), chip_cores);
    std::printf("%-12s %8s %12s %12s %12s %14s\n", "class", "calls", "MB read", "GFLOP", "host ms", "chip proj. ms");
    for (int k = 0; k < accel::n_kernel_classes; ++k) {
        accel::counters one;
        one.by_class[k] = s.by_class[k];
        const auto& c = s.by_class[k];
        std::printf("%-12s %8llu %12.1f %12.3f %12.2f %14.4f\n",
                    std::string(accel::kernel_class_name(accel::kernel_class(k))).c_str(), (unsigned long long)c.calls,
                    double(c.bytes) / 1e6, double(c.flops) / 1e9, c.seconds * 1e3,
                    accel::projected_seconds(one, *chip, chip_cores, wbytes) * 1e3);
    }
    const double measured = s.total().seconds;
    std::printf("total: measured %.2f ms/token on the host, host model %.2f ms/token, chip projection %.4f ms/token\n",
                measured * 1e3 / *n, accel::projected_seconds(s, host, host.n_cores, wbytes) * 1e3 / *n,
                accel::projected_seconds(s, *chip, chip_cores, wbytes) * 1e3 / *n);
    std::printf("host roofline: %.1f tok/s (bandwidth / packed weight bytes); measured %.1f tok/s\n",
                bw / double(wbytes), *n / measured);
    return 0;
}

result<ggml_type> parse_type(const std::string& s) {
    for (uint32_t id = 0; id < 64; ++id)
        if (const auto* tr = find_type_traits(id); tr && tr->supported) {
            std::string lower(tr->name);
            for (auto& c : lower) c = char(std::tolower(c));
            if (lower == s || tr->name == s) return static_cast<ggml_type>(id);
        }
    return fail("unknown or unsupported tensor type '", s, "'");
}

int cmd_make_model(const args& a) {
    if (!a.has("preset") || !a.has("out")) return report({"make-model: --preset and --out are required"});
    auto spec = random_model_preset(a.get("preset"));
    if (!spec) return report(spec.error());
    if (a.has("type")) {
        auto t = parse_type(a.get("type"));
        if (!t) return report(t.error());
        spec->weight_type = *t;
    }
    auto seed = number<uint64_t>(a, "seed", spec->seed);
    if (!seed) return report(seed.error());
    spec->seed = *seed;
    auto ok = write_random_model(*spec, a.get("out"), [](size_t done, size_t total) {
        std::fprintf(stderr, "\rwriting tensors %zu/%zu", done, total);
        if (done == total) std::fputc('\n', stderr);
    });
    if (!ok) return report(ok.error());
    std::fprintf(stderr, "wrote %s\n", a.get("out").c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Started with no arguments by an editor (llm.nvim runs its language server binary bare, with pipes for stdin
    // and stdout): serve on stdio. Anywhere else (a terminal, a file) the usage is printed.
    auto piped = [](int fd) {
        struct stat st{};
        return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    };
    if (argc < 2 && piped(STDIN_FILENO) && piped(STDOUT_FILENO)) return cmd_serve(argc, argv, 1);
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    // Editors start language servers as `spark-ls --stdio` (vscode-languageclient) or `spark-ls serve`.
    if (cmd == "serve") return cmd_serve(argc, argv, 2);
    if (cmd == "--stdio") return cmd_serve(argc, argv, 1);
    auto a = parse_args(argc, argv, 2, {"special", "bos", "reference", "ngram", "compare", "oracle"});
    if (!a) return report(a.error());
    if (cmd == "inspect") return cmd_inspect(*a);
    if (cmd == "tokenize") return cmd_tokenize(*a);
    if (cmd == "generate") return cmd_generate(*a);
    if (cmd == "make-model") return cmd_make_model(*a);
    if (cmd == "bench") return cmd_bench(*a);
    if (cmd == "accel-report") return cmd_accel_report(*a);
    std::fprintf(stderr, "spark-ls: unknown command '%s'\n\n%s", cmd.c_str(), usage_text);
    return 2;
}
