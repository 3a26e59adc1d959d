// Golden logits written by tools/reference/make_golden.py (and tools/train/export.py): for each case, the token
// ids and the logits of every position, computed independently of the C++ code.
#pragma once

#include "inference/gguf.h"
#include "inference/tokenizer.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace spark::test {

struct golden_case {
    std::string name;
    std::vector<token_id> tokens;
    std::vector<float> logits;  // [n_tokens][n_vocab]
};

inline std::vector<golden_case> load_golden(const std::string& path, int32_t n_vocab) {
    auto g = gguf::gguf_file::open(path);
    REQUIRE(g);
    auto cases = g->get_array("golden.cases");
    REQUIRE(cases);
    REQUIRE(*cases);
    std::vector<golden_case> out;
    for (const auto& c : (*cases)->items) {
        golden_case gc;
        gc.name = *c.as_string();
        auto toks = g->get_array("golden.case." + gc.name + ".tokens");
        REQUIRE(toks);
        REQUIRE(*toks);
        for (const auto& t : (*toks)->items) gc.tokens.push_back(token_id(*t.as_int()));
        const auto* t = g->find_tensor("logits." + gc.name);
        REQUIRE(t);
        REQUIRE(t->type == ggml_type::f32);
        REQUIRE(t->dims == std::vector<uint64_t>{uint64_t(n_vocab), gc.tokens.size()});
        gc.logits.resize(t->n_elements);
        std::memcpy(gc.logits.data(), g->tensor_data(*t).data(), t->n_bytes);
        out.push_back(std::move(gc));
    }
    REQUIRE_FALSE(out.empty());
    return out;
}

// max_i |ours_i - ref_i| / max_i |ref_i| over one row of logits.
inline double row_relative_error(const float* ours, const float* ref, int64_t n) {
    double max_err = 0, max_ref = 0;
    for (int64_t i = 0; i < n; ++i) {
        max_err = std::max(max_err, std::fabs(double(ours[i]) - double(ref[i])));
        max_ref = std::max(max_ref, std::fabs(double(ref[i])));
    }
    return max_ref > 0 ? max_err / max_ref : max_err;
}

}  // namespace spark::test
