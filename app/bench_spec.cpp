// spark-ls bench spec: speculative decoding against plain greedy decoding of the same requests, in the same run.
//
//   drafters on code  FIM completions cut out of code files; plain decoding, then each drafter configuration
//   edit replays      a function typed again right after its old copy: prompt lookup's best case, and the case the
//                     editor meets when someone writes a variant of what is on screen
//   S(alpha)          (--oracle) real shapes, random weights: an oracle drafter whose acceptance is set to alpha,
//                     alone (the verify cost only) and with a draft model's cost paid
//
// Decode times exclude prompt processing (reported apart). Every configuration runs each prompt in turn with plain
// decoding, the fastest of --reps runs counting, so that a drift in the machine's load hits all of them alike.
#include "app/bench_spec.h"

#include "inference/default_models.h"
#include "inference/drafters.h"
#include "inference/forward.h"
#include "inference/speculative.h"
#include "inference/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace spark {
namespace {

namespace fs = std::filesystem;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int report(const error& e) {
    std::fprintf(stderr, "spark-ls: %s\n", e.message.c_str());
    return 1;
}

struct tsv_writer {
    std::FILE* f = nullptr;
    void row(const std::string& metric, double x, double value) const {
        if (f) std::fprintf(f, "%s\t%g\t%.6g\n", metric.c_str(), x, value);
    }
};

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    if (!(in >> a >> b >> c)) return "unknown";
    return a + " " + b + " " + c;
}

// ---------------------------------------------------------------------------------------------------------------
// Requests cut out of code files.

struct code_case {
    std::string name;  // file:line, or file:function for a replay
    std::vector<token_id> prompt, suffix;
    int max_tokens = 0;
};

std::vector<std::string> split_lines(const std::string& text) {  // each line keeps its '\n'
    std::vector<std::string> lines;
    size_t at = 0;
    while (at < text.size()) {
        const size_t nl = text.find('\n', at);
        const size_t end = nl == std::string::npos ? text.size() : nl + 1;
        lines.push_back(text.substr(at, end - at));
        at = end;
    }
    return lines;
}

std::string join(const std::vector<std::string>& lines, size_t from, size_t to) {
    std::string s;
    for (size_t i = from; i < std::min(to, lines.size()); ++i) s += lines[i];
    return s;
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r\n") == std::string::npos; }

size_t indent_of(const std::string& line) { return std::min(line.find_first_not_of(" \t"), line.size()); }

size_t n_tokens(const tokenizer& tok, const std::string& text) { return tok.tokenize(text).size(); }

// The longest run of whole lines ending at `end` whose tokens fit in budget: a prompt starts where a line does.
std::string tail_lines(const tokenizer& tok, const std::vector<std::string>& lines, size_t end, int budget) {
    std::string text;
    for (size_t begin = end; begin > 0; --begin) {
        std::string longer = lines[begin - 1] + text;
        if (int(n_tokens(tok, longer)) > budget) break;
        text = std::move(longer);
    }
    return text;
}

// The longest run of whole lines starting at `begin` whose tokens fit in budget.
std::string head_lines(const tokenizer& tok, const std::vector<std::string>& lines, size_t begin, int budget) {
    std::string text;
    for (size_t end = begin; end < lines.size(); ++end) {
        std::string longer = text + lines[end];
        if (int(n_tokens(tok, longer)) > budget) break;
        text = std::move(longer);
    }
    return text;
}

// <s><fim_prefix>PRE<fim_suffix>SUF<fim_middle>, as `spark-ls generate --suffix` builds it.
code_case fim_case(const tokenizer& tok, std::string name, const std::string& pre, const std::string& suf,
                   int max_tokens) {
    const auto& sp = tok.special();
    code_case c;
    c.name = std::move(name);
    c.max_tokens = max_tokens;
    c.suffix = tok.tokenize(suf);
    if (sp.add_bos && sp.bos >= 0) c.prompt.push_back(sp.bos);
    c.prompt.push_back(sp.fim_pre);
    const auto p = tok.tokenize(pre);
    c.prompt.insert(c.prompt.end(), p.begin(), p.end());
    c.prompt.push_back(sp.fim_suf);
    c.prompt.insert(c.prompt.end(), c.suffix.begin(), c.suffix.end());
    c.prompt.push_back(sp.fim_mid);
    return c;
}

struct code_file {
    std::string name;  // relative to its folder
    std::vector<std::string> lines;
};

result<std::vector<code_file>> load_code(const std::string& dir) {
    // A folder the caller names is searched recursively; the default folders only at the top, because
    // tools/train/work holds the training run's corpus and checkpoints.
    std::vector<fs::path> dirs;
    const bool recursive = !dir.empty();
    if (!dir.empty()) dirs.emplace_back(dir);
    else {
#ifdef SPARK_SOURCE_DIR
        dirs.emplace_back(fs::path(SPARK_SOURCE_DIR) / "tools" / "train");
        dirs.emplace_back(fs::path(SPARK_SOURCE_DIR) / "tools" / "reference");
#endif
    }
    static const char* const exts[] = {".py", ".c", ".cc", ".cpp", ".h", ".hpp", ".js", ".ts", ".go", ".rs", ".java"};
    std::vector<fs::path> paths;
    for (const auto& d : dirs) {
        std::error_code ec;
        if (!fs::is_directory(d, ec)) return fail("bench spec: no folder ", d.string(), " (pass --code-dir)");
        auto consider = [&](const fs::directory_entry& e) {
            const auto ext = e.path().extension().string();
            if (e.is_regular_file() &&
                std::find_if(std::begin(exts), std::end(exts), [&](const char* x) { return ext == x; }) != std::end(exts))
                paths.push_back(e.path());
        };
        if (recursive)
            for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::recursive_directory_iterator();
                 it.increment(ec))
                consider(*it);
        else
            for (auto it = fs::directory_iterator(d, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
                consider(*it);
    }
    std::sort(paths.begin(), paths.end());
    std::vector<code_file> files;
    for (const auto& p : paths) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        auto lines = split_lines(ss.str());
        if (lines.size() < 20) continue;  // too short to cut a request with context out of
        files.push_back({p.parent_path().filename().string() + "/" + p.filename().string(), std::move(lines)});
    }
    if (files.empty()) return fail("bench spec: no code files of 20 lines or more found");
    return files;
}

// FIM requests: 1 to 3 lines cut out of a file (the middle the model writes), the prefix and suffix around them.
// Cursor lines are spread over each file's middle 80%, jittered so that they do not line up with its structure.
std::vector<code_case> fim_cases(const tokenizer& tok, const std::vector<code_file>& files, int n, int n_tokens_max,
                                 int n_ctx) {
    std::vector<code_case> cases;
    const size_t nf = files.size();
    const int rounds = int((size_t(n) + nf - 1) / nf);
    for (int i = 0; i < n; ++i) {
        const auto& f = files[size_t(i) % nf];
        const int round = int(size_t(i) / nf);
        const double jitter = double((uint64_t(i) * 2654435761u) % 1000) / 1000.0 - 0.5;
        const double at = 0.1 + 0.8 * (round + 0.5 + 0.5 * jitter) / rounds;
        size_t line = std::min(f.lines.size() - 1, size_t(at * double(f.lines.size())));
        while (line + 1 < f.lines.size() && blank(f.lines[line])) ++line;
        const size_t cut = 1 + size_t(i % 3);
        const std::string suf = head_lines(tok, f.lines, line + cut, 96);
        const int pre_budget = n_ctx - n_tokens_max - 1 - 4 - int(n_tokens(tok, suf));
        const std::string pre = tail_lines(tok, f.lines, line, pre_budget);
        cases.push_back(fim_case(tok, f.name + ":" + std::to_string(line + 1), pre, suf, n_tokens_max));
    }
    return cases;
}

// Edit replays: a Python function, then blank lines and its first line again under a new name, the cursor after
// it; the suffix is the rest of the file. The model should write the body again, and the n-gram drafter finds it
// in the old copy.
std::vector<code_case> replay_cases(const tokenizer& tok, const std::vector<code_file>& files, int n, int n_ctx) {
    struct block {
        size_t file, first, end, indent, body_tokens;
        std::string name;
    };
    std::vector<block> blocks;
    for (size_t fi = 0; fi < files.size(); ++fi) {
        const auto& lines = files[fi].lines;
        for (size_t i = 0; i < lines.size(); ++i) {
            const size_t ind = indent_of(lines[i]);
            if (lines[i].compare(ind, 4, "def ") != 0) continue;
            const size_t open = lines[i].find('(', ind + 4);
            std::string header = lines[i];
            while (!header.empty() && (header.back() == '\n' || header.back() == ' ' || header.back() == '\r'))
                header.pop_back();
            if (open == std::string::npos || header.empty() || header.back() != ':') continue;  // one-line headers
            size_t end = i + 1, last = i;
            for (; end < lines.size(); ++end) {
                if (blank(lines[end])) continue;
                if (indent_of(lines[end]) <= ind) break;
                last = end;
            }
            if (last == i) continue;
            const size_t body = n_tokens(tok, join(lines, i + 1, last + 1));
            if (body < 24 || body > 160) continue;
            blocks.push_back({fi, i, last + 1, ind, body, lines[i].substr(ind + 4, open - ind - 4)});
        }
    }
    std::vector<code_case> cases;
    if (blocks.empty() || n <= 0) return cases;
    const size_t take = std::min(blocks.size(), size_t(n));
    for (size_t k = 0; k < take; ++k) {
        const auto& b = blocks[k * blocks.size() / take];
        const auto& lines = files[b.file].lines;
        const std::string& head = lines[b.first];
        const std::string renamed = head.substr(0, b.indent + 4) + b.name + "_v2" + head.substr(b.indent + 4 + b.name.size());
        const std::string old_copy = join(lines, b.first, b.end);
        const std::string typed = old_copy + (b.indent == 0 ? "\n\n" : "\n") + renamed;
        const int max_tokens = int(b.body_tokens) + 16;
        const std::string suf = head_lines(tok, lines, b.end, 48);
        const int budget = n_ctx - max_tokens - 1 - 4 - int(n_tokens(tok, suf)) - int(n_tokens(tok, typed));
        const std::string context = budget > 0 ? tail_lines(tok, lines, b.first, std::min(budget, 128)) : "";
        cases.push_back(fim_case(tok, files[b.file].name + ":" + b.name, context + typed, suf, max_tokens));
    }
    return cases;
}

// ---------------------------------------------------------------------------------------------------------------
// Drafter configurations on code.

struct config {
    std::string name;
    std::vector<drafter*> drafters;
    model_drafter* draft_model = nullptr;  // its state gets the prompt before the timed run, as the target's does
    std::unique_ptr<model_sequence> target;
    std::unique_ptr<speculative_decoder> dec;
};

struct measured {
    double decode_s = 1e30;  // fastest run
    double prompt_s = 0, draft_prompt_s = 0;
    generation_stats stats;  // of the fastest run
    std::vector<token_id> tokens;
    bool identical = true;
    double request_s() const { return prompt_s + draft_prompt_s + decode_s; }
};

result<void> run_case(config& c, const code_case& k, const generation_params& base, measured& m) {
    generation_params gp = base;
    gp.max_tokens = k.max_tokens;
    // Each run starts from an empty state: prefix reuse across runs would turn prompt processing into a lookup.
    c.target->truncate(0);
    double draft_prompt = 0;
    if (c.draft_model) {
        auto& ds = c.draft_model->sequence();
        ds.truncate(0);
        std::vector<float> logits;
        const double t0 = now();
        if (auto ok = ds.append(std::span(k.prompt).first(k.prompt.size() - 1), logits, false); !ok) return ok;
        draft_prompt = now() - t0;
    }
    const draft_context ctx{k.prompt, k.suffix, {}, {}};
    auto r = c.dec->generate(ctx, gp);
    if (!r) return std::unexpected(r.error());
    const double decode = r->stats.seconds - r->stats.prompt_seconds;
    if (decode < m.decode_s) {
        m.decode_s = decode;
        m.prompt_s = r->stats.prompt_seconds;
        m.draft_prompt_s = draft_prompt;
        m.stats = r->stats;
        m.tokens = r->tokens;
    }
    return {};
}

struct summary {
    double tok_s = 0, speedup_mean = 0, speedup_min = 0, request_mean = 0, acceptance = 0, tokens_per_step = 0;
    std::string min_case;
    int counted = 0, identical = 0, total = 0;
};

constexpr int min_counted_tokens = 8;  // shorter completions are a pass or two: their ratios are noise

summary summarise(const std::vector<code_case>& cases, const std::vector<std::vector<measured>>& m, size_t ci) {
    summary s;
    double toks = 0, secs = 0, drafted = 0, accepted = 0, steps = 0;
    s.speedup_min = 1e30;
    for (size_t k = 0; k < cases.size(); ++k) {
        const auto& plain = m[k][0];
        const auto& x = m[k][ci];
        ++s.total;
        s.identical += x.identical;
        toks += x.stats.generated, secs += x.decode_s;
        drafted += double(x.stats.drafted), accepted += double(x.stats.accepted), steps += double(x.stats.steps);
        if (plain.stats.generated < min_counted_tokens) continue;
        ++s.counted;
        const double r = plain.decode_s / x.decode_s;
        s.speedup_mean += r;
        s.request_mean += plain.request_s() / x.request_s();
        if (r < s.speedup_min) s.speedup_min = r, s.min_case = cases[k].name;
    }
    s.tok_s = secs > 0 ? toks / secs : 0;
    if (s.counted) s.speedup_mean /= s.counted, s.request_mean /= s.counted;
    else s.speedup_min = 0;
    s.acceptance = drafted > 0 ? accepted / drafted : 0;
    s.tokens_per_step = steps > 0 ? toks / steps : 0;
    return s;
}

void print_table(const char* part, const std::vector<code_case>& cases, std::vector<config>& configs,
                 const std::vector<std::vector<measured>>& m, const tsv_writer& tsv,
                 std::vector<summary>& out) {
    double plain_prompt_tokens = 0, plain_prompt_s = 0, generated = 0;
    int short_cases = 0;
    for (size_t k = 0; k < cases.size(); ++k) {
        plain_prompt_tokens += double(m[k][0].stats.prompt_evaluated);
        plain_prompt_s += m[k][0].prompt_s;
        generated += m[k][0].stats.generated;
        short_cases += m[k][0].stats.generated < min_counted_tokens;
    }
    std::printf("prompt processing %.0f tok/s (mean prompt %.0f tokens); mean completion %.1f tokens; %d of %zu "
                "prompts ended within %d tokens and are left out of the ratios\n",
                plain_prompt_tokens / std::max(1e-9, plain_prompt_s), plain_prompt_tokens / double(cases.size()),
                generated / double(cases.size()), short_cases, cases.size(), min_counted_tokens);
    tsv.row(std::string(part) + ".plain.prompt_tok_s", 0, plain_prompt_tokens / std::max(1e-9, plain_prompt_s));
    std::printf("%-26s %9s %9s %9s  %-34s %8s %8s %8s %9s\n", "configuration", "tok/s", "speed-up", "min", "(slowest prompt)",
                "request", "accept", "tok/step", "identical");
    out.clear();
    for (size_t ci = 0; ci < configs.size(); ++ci) {
        const auto s = summarise(cases, m, ci);
        out.push_back(s);
        std::printf("%-26s %9.1f %8.2fx %8.2fx  %-34s %7.2fx %7.0f%% %8.2f %5d/%-3d\n", configs[ci].name.c_str(),
                    s.tok_s, s.speedup_mean, s.speedup_min, ("(" + s.min_case.substr(0, 32) + ")").c_str(), s.request_mean,
                    100 * s.acceptance, s.tokens_per_step, s.identical, s.total);
        const std::string pre = std::string(part) + "." + configs[ci].name + ".";
        tsv.row(pre + "tok_s", 0, s.tok_s);
        tsv.row(pre + "speedup_mean", 0, s.speedup_mean);
        tsv.row(pre + "speedup_min", 0, s.speedup_min);
        tsv.row(pre + "request_speedup_mean", 0, s.request_mean);
        tsv.row(pre + "acceptance", 0, s.acceptance);
        tsv.row(pre + "tokens_per_step", 0, s.tokens_per_step);
        tsv.row(pre + "identical_fraction", 0, double(s.identical) / std::max(1, s.total));
        for (size_t k = 0; k < cases.size(); ++k)
            if (m[k][0].stats.generated >= min_counted_tokens)
                tsv.row(pre + "speedup", double(k), m[k][0].decode_s / m[k][ci].decode_s);
    }
    std::printf("speed-up: plain decode time / this configuration's, same prompt, mean and min over prompts; request: "
                "the same with prompt processing (and the draft model's) included\n");
}

void print_per_prompt(const std::vector<code_case>& cases, const std::vector<config>& configs,
                      const std::vector<std::vector<measured>>& m) {
    std::printf("%-34s %6s %8s", "prompt", "tokens", "plain/s");
    for (size_t ci = 1; ci < configs.size(); ++ci) std::printf(" %*s", int(std::max<size_t>(8, configs[ci].name.size())), configs[ci].name.c_str());
    std::printf("\n");
    for (size_t k = 0; k < cases.size(); ++k) {
        std::printf("%-34s %6d %8.1f", cases[k].name.substr(0, 34).c_str(), m[k][0].stats.generated,
                    m[k][0].stats.generated / m[k][0].decode_s);
        for (size_t ci = 1; ci < configs.size(); ++ci)
            std::printf(" %*.2f%c", int(std::max<size_t>(8, configs[ci].name.size())) - 1,
                        m[k][0].decode_s / m[k][ci].decode_s, m[k][ci].identical ? 'x' : '!');
        std::printf("\n");
    }
}

// Runs every case with every configuration, `reps` times each; marks outputs that differ from plain. Plain runs
// first in the first round (its output is the reference) and the order rotates in later rounds: a configuration
// that runs right after one with a draft model finds the target's weights partly evicted from the caches.
result<int> measure(std::vector<code_case>& cases, std::vector<config>& configs, const generation_params& gp, int reps,
                    std::vector<std::vector<measured>>& m) {
    m.assign(cases.size(), std::vector<measured>(configs.size()));
    int mismatches = 0;
    for (size_t k = 0; k < cases.size(); ++k) {
        for (int r = 0; r < reps; ++r)
            for (size_t turn = 0; turn < configs.size(); ++turn) {
                const size_t ci = (turn + size_t(r)) % configs.size();
                measured one;
                if (auto ok = run_case(configs[ci], cases[k], gp, one); !ok) return std::unexpected(ok.error());
                auto& best = m[k][ci];
                const auto& reference = ci == 0 && r == 0 ? one.tokens : m[k][0].tokens;
                if (one.tokens != reference) {
                    size_t at = 0;
                    while (at < std::min(one.tokens.size(), reference.size()) && one.tokens[at] == reference[at]) ++at;
                    std::printf("MISMATCH: %s on %s differs from plain greedy decoding at output token %zu (%zu vs %zu "
                                "tokens)\n", configs[ci].name.c_str(), cases[k].name.c_str(), at, one.tokens.size(),
                                reference.size());
                    std::fflush(stdout);
                    best.identical = false;
                    ++mismatches;
                }
                if (one.decode_s < best.decode_s) {
                    const bool same = best.identical;
                    best = std::move(one);
                    best.identical = same;
                }
            }
        std::fprintf(stderr, "\r%zu/%zu", k + 1, cases.size());
    }
    std::fprintf(stderr, "\n");
    return mismatches;
}

int run_code(const spec_bench_options& o, const tsv_writer& tsv) {
    auto path_or_default = [](const std::string& p, const char* file) -> result<std::string> {
        if (!p.empty() && p != "default") return p;
        return find_default_model(file);
    };
    auto tpath = path_or_default(o.model_path, default_target_model);
    if (!tpath) return report(tpath.error());
    auto dpath = path_or_default(o.draft_path, default_draft_model);
    if (!dpath) return report(dpath.error());
    auto tm = model::load(*tpath);
    if (!tm) return report(tm.error());
    auto dm = model::load(*dpath);
    if (!dm) return report(dm.error());
    const auto& tok = (*tm)->vocab();
    const auto& sp = tok.special();
    if (sp.fim_pre < 0 || sp.fim_suf < 0 || sp.fim_mid < 0)
        return report({"bench spec: the target has no FIM tokens"});
    const int n_ctx = std::min<int>((*tm)->hparams().n_ctx_train > 0 ? (*tm)->hparams().n_ctx_train : 2048, 2048);
    const int n_tokens_max = std::min(o.n_tokens, n_ctx / 2);

    auto files = load_code(o.code_dir);
    if (!files) return report(files.error());
    auto fim = fim_cases(tok, *files, o.n_prompts, n_tokens_max, n_ctx);
    auto replays = replay_cases(tok, *files, o.n_replays, n_ctx);

    accel::partition tpart("target", std::max(1, o.threads)), dpart("draft", std::max(1, o.draft_threads));
    auto tp = placed_model::place(*tm, tpart);
    if (!tp) return report(tp.error());
    auto dp = placed_model::place(*dm, dpart);
    if (!dp) return report(dp.error());

    std::printf("== drafters on code\n");
    std::printf("load average at start: %s\n", load_average().c_str());
    std::printf("target %s (%d workers), draft model %s (%d workers, runs between target passes on the same cores)\n",
                tpath->c_str(), tpart.n_workers(), dpath->c_str(), dpart.n_workers());
    const bool fixed = o.fixed_gamma > 0;
    const std::string tag = fixed ? "-g" + std::to_string(o.fixed_gamma) : "";  // TSV names of a fixed-gamma run
    if (fixed)
        std::printf("greedy; context %d; FIXED gamma %d (adaptive rule off); ", n_ctx, o.fixed_gamma);
    else
        std::printf("greedy; context %d; gamma adaptive, up to %d; ", n_ctx, o.max_gamma);
    std::printf("best of %d runs per prompt and configuration; the draft model's prompt is evaluated before the "
                "timed decode\n", o.reps);

    // Cheapest first, as the engine orders them.
    suffix_drafter sfx[3];
    ngram_drafter ng[3];
    std::vector<std::unique_ptr<model_drafter>> mds;
    auto new_md = [&]() -> model_drafter* {
        auto md = model_drafter::create(**dp, **tm, n_ctx);
        if (!md) return nullptr;
        mds.push_back(std::move(*md));
        return mds.back().get();
    };
    std::vector<config> configs(6);
    configs[0].name = "plain";
    configs[1].name = "draft-model";
    configs[1].draft_model = new_md();
    configs[1].drafters = {configs[1].draft_model};
    configs[2].name = "ngram";
    configs[2].drafters = {&ng[0]};
    configs[3].name = "suffix";
    configs[3].drafters = {&sfx[0]};
    configs[4].name = "ngram+suffix";
    configs[4].drafters = {&sfx[1], &ng[1]};
    configs[5].name = "ngram+suffix+draft-model";
    configs[5].draft_model = new_md();
    configs[5].drafters = {&sfx[2], &ng[2], configs[5].draft_model};
    if (!configs[1].draft_model || !configs[5].draft_model) {
        auto md = model_drafter::create(**dp, **tm, n_ctx);
        return report(md ? error{"bench spec: draft model"} : md.error());
    }
    for (auto& c : configs) {
        c.target = std::make_unique<model_sequence>(**tp, n_ctx);
        c.dec = std::make_unique<speculative_decoder>(*c.target, &tok, c.drafters);
    }

    generation_params gp;
    gp.max_gamma = std::clamp(fixed ? o.fixed_gamma : o.max_gamma, 0, accel::max_batch - 1);
    gp.adaptive_gamma = !fixed;
    for (token_id t : {sp.eos, sp.eot})
        if (t >= 0) gp.stop_tokens.push_back(t);
    for (token_id t : {sp.bos, sp.fim_pre, sp.fim_suf, sp.fim_mid, sp.fim_pad, sp.fim_rep, sp.fim_sep})
        if (t >= 0) gp.sampling.banned.push_back(t);

    // One unmeasured round first: caches, the workers' governors and each decoder's verify-cost curve warm up, as
    // in an editor that has been completing for a while.
    if (!fim.empty())
        for (auto& c : configs) {
            measured warm;
            if (auto ok = run_case(c, fim[0], gp, warm); !ok) return report(ok.error());
        }

    int mismatches = 0;
    std::vector<summary> fim_s, rep_s;
    std::vector<std::vector<measured>> mf, mr;
    {
        std::printf("\n-- FIM completions: %zu prompts from %zu files, up to %d tokens each\n", fim.size(),
                    files->size(), n_tokens_max);
        std::fflush(stdout);
        auto mm = measure(fim, configs, gp, std::max(1, o.reps), mf);
        if (!mm) return report(mm.error());
        mismatches += *mm;
        print_table(("fim" + tag).c_str(), fim, configs, mf, tsv, fim_s);
        std::printf("\nper prompt: plain decode tok/s, then speed-up per configuration (x: output identical to "
                    "plain, !: differs)\n");
        print_per_prompt(fim, configs, mf);
    }
    if (!replays.empty()) {
        std::printf("\n-- edit replays: %zu functions, each typed again (renamed) after its old copy; suffix: the "
                    "rest of the file\n", replays.size());
        std::fflush(stdout);
        auto mm = measure(replays, configs, gp, std::max(1, o.reps), mr);
        if (!mm) return report(mm.error());
        mismatches += *mm;
        print_table(("replay" + tag).c_str(), replays, configs, mr, tsv, rep_s);
        std::printf("\nper replay:\n");
        print_per_prompt(replays, configs, mr);
    } else {
        std::printf("\n-- edit replays: no Python function of 24..160 body tokens found\n");
    }

    // The goals: ngram+suffix at least 2.5x on replays, and no prompt below 0.95x of plain.
    const size_t ns = 4;
    double all_min = 1e30;
    std::string all_min_case;
    for (auto* set : {&mf, &mr}) {
        const auto& cases = set == &mf ? fim : replays;
        for (size_t k = 0; k < set->size(); ++k) {
            if ((*set)[k][0].stats.generated < min_counted_tokens) continue;
            const double r = (*set)[k][0].decode_s / (*set)[k][ns].decode_s;
            if (r < all_min) all_min = r, all_min_case = cases[k].name;
        }
    }
    std::printf("\nsummary (ngram+suffix vs plain, decode time):\n");
    if (!rep_s.empty())
        std::printf("  edit replays: mean speed-up %.2fx (goal >= 2.5x: %s)\n", rep_s[ns].speedup_mean,
                    rep_s[ns].speedup_mean >= 2.5 ? "met" : "NOT met");
    if (all_min < 1e30)
        std::printf("  slowest prompt of all %zu: %.2fx of plain at %s (goal >= 0.95x: %s)\n", fim.size() + replays.size(),
                    all_min, all_min_case.c_str(), all_min >= 0.95 ? "met" : "NOT met");
    tsv.row("all" + tag + ".ngram+suffix.speedup_min", 0, all_min < 1e30 ? all_min : 0);
    if (!rep_s.empty()) tsv.row("goal.replay_speedup", 0, 2.5);
    tsv.row("goal.min_speedup", 0, 0.95);
    // The adaptive rule drafts only where expected tokens per step beat the verify pass's cost, so the learnt cost
    // curve explains most of what the table shows.
    std::printf("verify cost(B)/cost(1) learnt by the ngram+suffix decoder:");
    for (int b = 1; b <= gp.max_gamma + 1; ++b) std::printf(" %d:%.2f", b, configs[ns].dec->cost().ratio(b));
    std::printf("\n");
    if (mismatches) {
        std::printf("\nFAILED: %d speculative outputs differ from plain greedy decoding (see MISMATCH lines)\n",
                    mismatches);
        return 1;
    }
    std::printf("every speculative output is identical to plain greedy decoding\n");
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// S(alpha) with an oracle drafter.

// Lets one decoder (and so one learnt verify-cost curve) run with a different drafter per measurement.
class slot_drafter final : public drafter {
public:
    drafter* inner = nullptr;
    std::string_view name() const override { return inner ? inner->name() : "none"; }
    void start(const draft_context& ctx) override {
        if (inner) inner->start(ctx);
    }
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override {
        return inner ? inner->propose(sequence, max_new, sp, rng, self, out) : result<void>{};
    }
    bool runs_model() const override { return inner && inner->runs_model(); }
};

// The oracle's tokens at a draft model's price. The draft model evaluates what model_drafter would if it had
// proposed the oracle's tokens itself: catch up to the sequence in one pass, then one pass per further token, and
// the sampling chain over every row of logits. Calling model_drafter::propose and swapping its tokens afterwards
// would leave the draft's own tokens in its state, so each next step would re-evaluate the accepted ones in a
// batch: a cost that no draft model with that acceptance pays.
class costed_oracle final : public drafter {
public:
    costed_oracle(drafter& oracle, model_sequence& draft) : oracle_(oracle), seq_(draft) {}
    std::string_view name() const override { return "oracle+draft-model"; }
    bool runs_model() const override { return true; }  // may draft concurrently with verification
    void start(const draft_context& ctx) override { oracle_.start(ctx); }
    result<void> propose(std::span<const token_id> sequence, int max_new, const sampling_params& sp, rng_t& rng,
                         int self, draft& out) override {
        draft truth;
        if (auto ok = oracle_.propose(sequence, max_new, sp, rng, self, truth); !ok) return ok;
        if (truth.tokens.empty()) return {};
        const double t0 = now();
        const auto held = seq_.tokens();
        size_t keep = 0;
        while (keep < held.size() && keep + 1 < sequence.size() && held[keep] == sequence[keep]) ++keep;
        seq_.truncate(keep);
        if (auto ok = seq_.append(sequence.subspan(keep), logits_, false); !ok) return ok;
        const size_t nv = size_t(seq_.n_vocab());
        for (size_t i = 0; i < truth.tokens.size(); ++i) {
            distribution(std::span(logits_).first(nv), seq_.n_allowed(), sp, q_);
            out.tokens.push_back(truth.tokens[i]);
            out.q.emplace_back();  // certain, as greedy drafts are
            out.source.push_back(self);
            if (i + 1 < truth.tokens.size()) {
                const token_id one[] = {truth.tokens[i]};
                if (auto ok = seq_.append(one, logits_, false); !ok) return ok;
            }
        }
        seconds += now() - t0;
        passes += truth.tokens.size();
        return {};
    }
    double seconds = 0;
    uint64_t passes = 0;

private:
    drafter& oracle_;
    model_sequence& seq_;
    std::vector<float> logits_, q_;
};

std::vector<token_id> random_prompt(int n, int32_t limit, uint64_t seed) {
    std::vector<token_id> t(size_t(std::max(n, 1)));
    for (auto& x : t) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x = token_id(16 + (seed >> 33) % uint64_t(std::max(limit - 16, 1)));
    }
    return t;
}

int run_oracle(const spec_bench_options& o, const tsv_writer& tsv) {
    if (o.target_path.empty() || o.oracle_draft_path.empty())
        return report({"bench spec --oracle: --target T.gguf and --draft D.gguf are required"});
    auto tm = model::load(o.target_path);
    if (!tm) return report(tm.error());
    auto dm = model::load(o.oracle_draft_path);
    if (!dm) return report(dm.error());
    const auto& tok = (*tm)->vocab();
    const int n = std::max(1, o.oracle_tokens);
    const int max_gamma = std::clamp(o.max_gamma, 1, accel::max_batch - 1);
    const auto prompt = random_prompt(o.oracle_prompt, std::min<int32_t>(tok.n_tokens(), 32000), 12345);
    const int n_ctx = int(prompt.size()) + n + max_gamma + 2;

    accel::partition tpart("target", std::max(1, o.threads)), dpart("draft", std::max(1, o.draft_threads));
    auto tp = placed_model::place(*tm, tpart);
    if (!tp) return report(tp.error());
    auto dp = placed_model::place(*dm, dpart);
    if (!dp) return report(dp.error());
    auto md = model_drafter::create(**dp, **tm, n_ctx);  // refuses a draft with another vocabulary
    if (!md) return report(md.error());
    model_sequence& draft_seq = (*md)->sequence();

    const auto& thp = (*tm)->hparams();
    const auto& dhp = (*dm)->hparams();
    std::printf("== S(alpha): oracle drafter (acceptance set to alpha)\n");
    std::printf("load average at start: %s\n", load_average().c_str());
    std::printf("target %s: %d layers, n_embd %d, %s, %.0f MiB packed, %d workers\n", o.target_path.c_str(),
                thp.n_layer, thp.n_embd, std::string(type_name((*tm)->weights().layers[0].wq.type)).c_str(),
                double((*tp)->weight_bytes()) / (1 << 20), tpart.n_workers());
    std::printf("draft  %s: %d layers, n_embd %d, %s, %.0f MiB packed, its own partition of %d workers on the same "
                "cores, run between target passes (sequential)\n",
                o.oracle_draft_path.c_str(), dhp.n_layer, dhp.n_embd,
                std::string(type_name((*dm)->weights().layers[0].wq.type)).c_str(),
                double((*dp)->weight_bytes()) / (1 << 20), dpart.n_workers());
    std::printf("prompt %zu random tokens; %d greedy tokens per run; the oracle knows the target's greedy output and "
                "proposes each token correctly with probability alpha\n", prompt.size(), n);
    std::fflush(stdout);

    model_sequence target(**tp, n_ctx);
    slot_drafter slot;
    speculative_decoder dec(target, &tok, {&slot});
    generation_params gp;
    gp.max_tokens = n;  // no stop tokens: every run generates exactly n tokens
    const draft_context ctx{prompt, {}, {}, {}};
    // The prompt stays in the target's state between runs (prefix reuse): it is not part of the decode time, and
    // re-evaluating it every run would only make the benchmark slower.
    auto run = [&](drafter* d, bool adaptive, int gamma) -> result<generation_result> {
        slot.inner = d;
        gp.adaptive_gamma = adaptive;
        gp.max_gamma = gamma;
        draft_seq.truncate(prompt.size() - 1);
        if (draft_seq.tokens().size() < prompt.size() - 1) {
            std::vector<float> logits;
            draft_seq.truncate(0);
            if (auto ok = draft_seq.append(std::span(prompt).first(prompt.size() - 1), logits, false); !ok)
                return std::unexpected(ok.error());
        }
        return dec.generate(ctx, gp);
    };
    auto decode_s = [](const generation_result& r) { return r.stats.seconds - r.stats.prompt_seconds; };

    // Plain decoding: the truth, and the times S is relative to. A plain run sits between every two groups of
    // measurements and each group is compared with the faster of its two neighbours, so that a change in the
    // machine's load during the sweep moves plain and speculative times alike.
    std::vector<token_id> truth;
    double plain_before = 1e30;
    for (int r = 0; r < 2; ++r) {
        auto g = run(nullptr, false, 0);
        if (!g) return report(g.error());
        if (r == 0) truth = g->tokens;
        else if (g->tokens != truth) return report({"bench spec: plain greedy decoding is not deterministic"});
        plain_before = std::min(plain_before, decode_s(*g));
    }
    std::printf("plain decoding: %.2f tok/s\n", n / plain_before);
    std::fflush(stdout);
    std::vector<double> plain_between{plain_before};  // [group boundary]

    struct point {
        double s = 0, acceptance = 0, tokens_per_step = 0, gamma_mean = 0, seconds = 0;
    };
    const int n_alpha = int(o.alphas.size());
    // [variant][alpha][0: adaptive, g: fixed gamma g]
    constexpr int n_variants = 3;
    std::vector<std::vector<std::vector<point>>> pts(n_variants, std::vector<std::vector<point>>(size_t(n_alpha),
                                                                                         std::vector<point>(size_t(max_gamma) + 1)));
    int mismatches = 0;
    double draft_seconds = 0;
    uint64_t draft_passes = 0;
    for (int v = 0; v < n_variants; ++v)
        for (int ai = 0; ai < n_alpha; ++ai) {
            const double alpha = o.alphas[size_t(ai)];
            dec.set_concurrent_drafting(v == 2);
            // Fixed gammas first: they also teach the decoder the verify cost of every batch size the adaptive
            // rule may choose.
            for (int g = 1; g <= max_gamma + 1; ++g) {
                const bool adaptive = g == max_gamma + 1;
                oracle_drafter oracle(truth, alpha, target.n_vocab(), uint64_t(alpha * 1000) + 7);
                costed_oracle costed(oracle, draft_seq);
                drafter* d = v == 0 ? static_cast<drafter*>(&oracle) : &costed;
                auto r = run(d, adaptive, adaptive ? max_gamma : g);
                if (!r) return report(r.error());
                if (r->tokens != truth) {
                    std::printf("MISMATCH: variant %d alpha %.2f gamma %s differs from plain greedy decoding\n", v,
                                alpha, adaptive ? "adaptive" : std::to_string(g).c_str());
                    ++mismatches;
                }
                auto& p = pts[size_t(v)][size_t(ai)][adaptive ? 0 : size_t(g)];
                const auto& st = r->stats;
                p.seconds = decode_s(*r);
                p.acceptance = st.acceptance();
                p.tokens_per_step = st.steps ? double(st.generated) / double(st.steps) : 0;
                p.gamma_mean = st.steps ? double(st.drafted) / double(st.steps) : 0;
                draft_seconds += costed.seconds, draft_passes += costed.passes;
            }
            auto between = run(nullptr, false, 0);
            if (!between) return report(between.error());
            if (between->tokens != truth) return report({"bench spec: plain greedy decoding is not deterministic"});
            plain_between.push_back(decode_s(*between));
            const double ref = std::min(plain_between[plain_between.size() - 2], plain_between.back());
            for (auto& p : pts[size_t(v)][size_t(ai)]) p.s = ref / p.seconds;
            std::fprintf(stderr, "\rvariant %d alpha %.2f done", v, alpha);
        }
    dec.set_concurrent_drafting(false);
    std::fprintf(stderr, "\n");
    const auto [fastest, slowest] = std::ranges::minmax(plain_between);  // seconds
    const double plain = fastest;
    std::printf("plain decoding between the groups: %.2f .. %.2f tok/s (each group of S is relative to its two "
                "neighbours)\n", n / slowest, n / fastest);
    tsv.row("oracle.plain_tok_s", 0, n / plain);

    std::printf("verify cost(B)/cost(1) learnt by the decoder:");
    for (int b = 1; b <= max_gamma + 1; ++b) {
        std::printf(" %d:%.2f", b, dec.cost().ratio(b));
        tsv.row("oracle.verify_cost", b, dec.cost().ratio(b));
    }
    const double target_pass = plain / n;
    const double draft_pass = draft_passes ? draft_seconds / double(draft_passes) : 0;
    std::printf("\ndraft model: %.2f ms per drafted token (including catch-up passes) = %.3f of a target decode pass "
                "(%.2f ms)\n", 1e3 * draft_pass, draft_pass / target_pass, 1e3 * target_pass);
    tsv.row("oracle.draft_cost_ratio", 0, draft_pass / target_pass);

    const char* vname[n_variants] = {"oracle", "oracle+draft", "oracle+draft.concurrent"};
    const char* vlabel[n_variants] = {"oracle alone (verify cost only)", "oracle + draft model cost",
                                      "oracle + draft model cost, drafting concurrently with verification"};
    for (int v = 0; v < n_variants; ++v) {
        std::printf("\n-- %s: S(alpha) = plain time / speculative time, same %d tokens\n", vlabel[v], n);
        std::printf("%6s %10s %8s %8s %9s %12s", "alpha", "S adaptive", "gamma", "accept", "tok/step", "best fixed");
        for (int g = 1; g <= max_gamma; ++g) std::printf("   g=%d", g);
        std::printf("\n");
        for (int ai = 0; ai < n_alpha; ++ai) {
            const double alpha = o.alphas[size_t(ai)];
            auto& row = pts[size_t(v)][size_t(ai)];
            int best = 1;
            for (int g = 2; g <= max_gamma; ++g)
                if (row[size_t(g)].s > row[size_t(best)].s) best = g;
            std::printf("%6.2f %9.2fx %8.2f %7.0f%% %9.2f %7.2fx g=%d", alpha, row[0].s, row[0].gamma_mean,
                        100 * row[0].acceptance, row[0].tokens_per_step, row[size_t(best)].s, best);
            for (int g = 1; g <= max_gamma; ++g) std::printf(" %5.2f", row[size_t(g)].s);
            std::printf("\n");
            const std::string pre = std::string("oracle.") + vname[v] + ".";
            tsv.row(pre + "adaptive.S", alpha, row[0].s);
            tsv.row(pre + "adaptive.gamma_mean", alpha, row[0].gamma_mean);
            tsv.row(pre + "adaptive.acceptance", alpha, row[0].acceptance);
            tsv.row(pre + "best_fixed.S", alpha, row[size_t(best)].s);
            tsv.row(pre + "best_fixed.gamma", alpha, best);
            for (int g = 1; g <= max_gamma; ++g) tsv.row(pre + "g" + std::to_string(g) + ".S", alpha, row[size_t(g)].s);
        }
    }
    std::printf("\nS adaptive: gamma chosen per step by the decoder's rule (generation_params.adaptive_gamma), up to "
                "%d; gamma: mean drafted tokens per step; accept: accepted / drafted tokens of the run (below alpha: "
                "the tokens after a rejection count as drafted); best fixed: the fastest of gamma = 1..%d drafted "
                "every step (one run each, so the maximum of 8 noisy points leans high)\n", max_gamma, max_gamma);
    // The wafer-class preset, where draft and target sit on disjoint cores: the counters of a plain run and of an
    // alpha = 0.8 run (oracle + draft model, adaptive gamma) projected from bytes and flops. Drafting sequentially
    // costs draft + target time; drafting concurrently (pre-verify) about max(draft, target). A projection, labelled.
    {
        const auto chip = accel::wafer_preset();
        auto cores_for = [&](uint64_t bytes) {
            return int(std::min<uint64_t>(uint64_t(chip.n_cores), bytes / chip.local_memory_per_core + 1));
        };
        const uint64_t tb = (*tp)->weight_bytes(), db = (*dp)->weight_bytes();
        tpart.stats().clear(), dpart.stats().clear();
        auto plain_run = run(nullptr, false, 0);
        if (!plain_run) return report(plain_run.error());
        const double p_plain = accel::projected_seconds(tpart.stats(), chip, cores_for(tb), tb);
        tpart.stats().clear(), dpart.stats().clear();
        oracle_drafter oracle(truth, 0.8, target.n_vocab(), 808);
        costed_oracle costed(oracle, draft_seq);
        auto spec_run = run(&costed, true, max_gamma);
        if (!spec_run) return report(spec_run.error());
        const double p_t = accel::projected_seconds(tpart.stats(), chip, cores_for(tb), tb);
        const double p_d = accel::projected_seconds(dpart.stats(), chip, cores_for(db), db);
        std::printf("\n-- projection on the '%s' preset (%d + %d cores hold target + draft), alpha 0.8, adaptive "
                    "gamma: plain %.3f ms/token; speculative %.3f ms/token drafting sequentially (S = %.2fx), "
                    "%.3f ms/token drafting concurrently (S = %.2fx)\n",
                    chip.name.c_str(), cores_for(tb), cores_for(db), 1e3 * p_plain / n, 1e3 * (p_t + p_d) / n,
                    p_plain / (p_t + p_d), 1e3 * std::max(p_t, p_d) / n, p_plain / std::max(p_t, p_d));
        tsv.row("oracle.wafer.S_sequential", 0.8, p_plain / (p_t + p_d));
        tsv.row("oracle.wafer.S_concurrent", 0.8, p_plain / std::max(p_t, p_d));
    }
    if (mismatches) {
        std::printf("FAILED: %d speculative outputs differ from plain greedy decoding\n", mismatches);
        return 1;
    }
    std::printf("every speculative output is identical to plain greedy decoding\n");
    return 0;
}

}  // namespace

int run_bench_spec(const spec_bench_options& o) {
    tsv_writer tsv;
    if (!o.tsv_path.empty()) {
        tsv.f = std::fopen(o.tsv_path.c_str(), "w");
        if (!tsv.f) return report({"bench spec: cannot write " + o.tsv_path});
    }
    const int rc = o.oracle ? run_oracle(o, tsv) : run_code(o, tsv);
    if (tsv.f) std::fclose(tsv.f);
    return rc;
}

}  // namespace spark
