// Benchmarks run by `spark-ls bench ...`. They print ratios measured within one run and optionally a TSV.
#pragma once

#include <string>

namespace spark {

struct bench_options {
    std::string model_path;
    std::string tsv_path;  // metric \t x \t value rows, for plots; empty: none
    int n_decode = 32;     // decode steps per repetition
    int n_prompt = 512;    // prompt length for prompt processing
    int reps = 3;          // repetitions; the best is reported
};

int run_bench_decode(const bench_options& o);

}  // namespace spark
