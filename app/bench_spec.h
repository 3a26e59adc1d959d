// spark-ls bench spec: what speculative decoding buys, as ratios measured in one run (see bench_spec.cpp).
#pragma once

#include <string>
#include <vector>

namespace spark {

struct spec_bench_options {
    std::string tsv_path;     // metric \t x \t value rows, for plots; empty: none
    int threads = 2;          // workers of the target's partition
    int draft_threads = 2;    // workers of the draft model's partition (it runs between target passes, not beside)
    int max_gamma = 8;

    // Drafters on code: FIM completions and edit replays (empty paths: the embedded default pair).
    std::string model_path, draft_path;
    std::string code_dir;     // empty: the source tree's tools/train and tools/reference
    int n_prompts = 24;       // FIM prompts
    int n_tokens = 64;        // tokens per FIM completion (at most; a completion may end earlier)
    int n_replays = 8;        // edit replays
    int reps = 3;             // runs per prompt and configuration; the fastest counts
    int fixed_gamma = 0;      // > 0: draft this many tokens whenever a drafter can (adaptive gamma off)

    // S(alpha) with an oracle drafter at real shapes.
    bool oracle = false;
    std::string target_path, oracle_draft_path;
    int oracle_prompt = 64;   // random prompt tokens
    int oracle_tokens = 64;   // greedy tokens generated per run
    std::vector<double> alphas{0.6, 0.7, 0.8, 0.9};
};

// Runs the oracle part when o.oracle, else the drafters on code. Returns 1 when a speculative output differs from
// plain greedy decoding's (or on an error), else 0.
int run_bench_spec(const spec_bench_options& o);

}  // namespace spark
