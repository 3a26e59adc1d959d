#include "inference/drafters.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

using namespace spark;

namespace {

using tokens = std::vector<token_id>;

tokens concat_tokens(const tokens& a, const tokens& b) {
    tokens r = a;
    r.insert(r.end(), b.begin(), b.end());
    return r;
}

// Runs one propose and checks the invariants every copying drafter keeps: parallel vectors, certain tokens.
tokens propose(drafter& d, const tokens& sequence, int max_new, draft& out, int self = 0) {
    const size_t before = out.size();
    sampling_params sp;
    rng_t rng(1);
    REQUIRE(d.propose(sequence, max_new, sp, rng, self, out).has_value());
    REQUIRE(out.q.size() == out.size());
    REQUIRE(out.source.size() == out.size());
    REQUIRE(out.size() - before <= static_cast<size_t>(std::max(max_new, 0)));
    for (size_t i = before; i < out.size(); ++i) {
        CHECK(out.q[i].empty());
        CHECK(out.source[i] == self);
    }
    return tokens(out.tokens.begin() + static_cast<ptrdiff_t>(before), out.tokens.end());
}

tokens propose(drafter& d, const tokens& sequence, int max_new) {
    draft out;
    return propose(d, sequence, max_new, out);
}

struct context {
    tokens prompt = {}, suffix = {}, known = {};
    std::vector<tokens> extra = {};
    draft_context view() const { return {prompt, suffix, known, extra}; }
};

}  // namespace

TEST_CASE("known drafter proposes the rest of the known continuation", "[drafters]") {
    context c{.prompt = {100, 101, 102}, .known = {1, 2, 3, 4, 5}};
    known_drafter d;
    d.start(c.view());

    CHECK(propose(d, c.prompt, 8) == tokens{1, 2, 3, 4, 5});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2}), 8) == tokens{3, 4, 5});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2}), 2) == tokens{3, 4});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2}), 0).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2}), -3).empty());
}

TEST_CASE("known drafter stops once the output leaves the known continuation", "[drafters]") {
    context c{.prompt = {100, 101, 102}, .known = {1, 2, 3, 4, 5}};
    known_drafter d;
    d.start(c.view());

    CHECK(propose(d, concat_tokens(c.prompt, {1, 9}), 8).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {9}), 8).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2, 3, 4, 5}), 8).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2, 3, 4, 5, 6}), 8).empty());
    // The prompt is not output: a prompt that happens to end like the known text does not shift it.
    context shifted{.prompt = {100, 1, 2}, .known = {1, 2, 3}};
    d.start(shifted.view());
    CHECK(propose(d, shifted.prompt, 8) == tokens{1, 2, 3});
}

TEST_CASE("known drafter with nothing known proposes nothing", "[drafters]") {
    context c{.prompt = {100, 101}};
    known_drafter d;
    d.start(c.view());
    CHECK(propose(d, c.prompt, 8).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {1}), 8).empty());
}

TEST_CASE("suffix drafter continues the suffix the output re-creates", "[drafters]") {
    context c{.prompt = {100, 101}, .suffix = {7, 8, 9, 10, 11}};
    suffix_drafter d(1);
    d.start(c.view());

    CHECK(propose(d, concat_tokens(c.prompt, {1, 2, 7}), 8) == tokens{8, 9, 10, 11});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 7, 8}), 8) == tokens{9, 10, 11});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 7, 8}), 2) == tokens{9, 10});
    CHECK(propose(d, concat_tokens(c.prompt, {1, 7, 8}), 0).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {1, 2, 3}), 8).empty());
    CHECK(propose(d, concat_tokens(c.prompt, {7, 8, 9, 10, 11}), 8).empty());  // nothing left to propose
}

TEST_CASE("suffix drafter needs min_overlap tokens of agreement", "[drafters]") {
    context c{.prompt = {100}, .suffix = {7, 8, 9, 10}};
    suffix_drafter strict(2);
    strict.start(c.view());
    CHECK(propose(strict, concat_tokens(c.prompt, {1, 7}), 8).empty());
    CHECK(propose(strict, concat_tokens(c.prompt, {1, 7, 8}), 8) == tokens{9, 10});

    suffix_drafter eager(0);
    eager.start(c.view());
    CHECK(propose(eager, concat_tokens(c.prompt, {1, 2}), 8) == tokens{7, 8, 9, 10});
}

TEST_CASE("suffix drafter prefers the longest overlap", "[drafters]") {
    context c{.prompt = {100}, .suffix = {1, 2, 1, 2, 3, 4}};
    suffix_drafter d(1);
    d.start(c.view());
    // Overlaps of 2 ({1, 2}) and 4 ({1, 2, 1, 2}) both hold; the longer one knows the output is further along.
    CHECK(propose(d, concat_tokens(c.prompt, {5, 1, 2, 1, 2}), 8) == tokens{3, 4});
    CHECK(propose(d, concat_tokens(c.prompt, {5, 5, 1, 2}), 8) == tokens{1, 2, 3, 4});
}

TEST_CASE("suffix drafter counts only the output, not the prompt", "[drafters]") {
    context c{.prompt = {100, 7, 8}, .suffix = {7, 8, 9, 10}};
    suffix_drafter d(2);
    d.start(c.view());
    CHECK(propose(d, c.prompt, 8).empty());
    // The prompt's 7 and the output's 8 would overlap by two, but only one of those tokens is output.
    context split{.prompt = {100, 7}, .suffix = {7, 8, 9, 10}};
    d.start(split.view());
    CHECK(propose(d, concat_tokens(split.prompt, {8}), 8).empty());
    CHECK(propose(d, concat_tokens(split.prompt, {8, 7, 8}), 8) == tokens{9, 10});
}

TEST_CASE("ngram drafter predicts repetition within the sequence", "[drafters]") {
    ngram_drafter d(3, 1);
    d.start({});
    CHECK(propose(d, {1, 2, 3, 4, 5, 6, 1, 2, 3}, 2) == tokens{4, 5});
    CHECK(propose(d, {1, 2, 3, 4, 5, 6, 1, 2, 3}, 10) == tokens{4, 5, 6, 1, 2, 3});
    // The continuation runs into the key itself: a period shorter than the key.
    CHECK(propose(d, {9, 1, 2, 1, 2}, 8) == tokens{1, 2});
    CHECK(propose(d, {5, 5, 5, 5}, 8) == tokens{5});
    CHECK(propose(d, {1, 2, 3, 4, 5, 6, 1, 2, 3}, 0).empty());
}

TEST_CASE("ngram drafter picks the most recent match in the sequence", "[drafters]") {
    ngram_drafter d(2, 2);
    d.start({});
    CHECK(propose(d, {1, 2, 7, 0, 1, 2, 8, 0, 1, 2}, 1) == tokens{8});
    CHECK(propose(d, {1, 2, 7, 0, 1, 2, 8, 0, 1, 2}, 4) == tokens{8, 0, 1, 2});
}

TEST_CASE("ngram drafter falls back from n_max to n_min", "[drafters]") {
    // Only the last two tokens ({3, 4}) occur earlier; {2, 3, 4} and {1, 2, 3, 4} do not.
    const tokens seq{3, 4, 9, 9, 1, 2, 3, 4};
    ngram_drafter d(4, 2);
    d.start({});
    CHECK(propose(d, seq, 8) == tokens{9, 9, 1, 2, 3, 4});
    // A longer key wins over a more recent shorter one.
    ngram_drafter longer(3, 1);
    longer.start({});
    CHECK(propose(longer, {5, 6, 7, 1, 6, 2, 5, 6}, 1) == tokens{7});
    // Only a one-token key matches, and n_min forbids it.
    ngram_drafter strict(4, 2);
    strict.start({});
    CHECK(propose(strict, {4, 8, 1, 2, 3, 4}, 8).empty());
    ngram_drafter loose(4, 1);
    loose.start({});
    CHECK(propose(loose, {4, 8, 1, 2, 3, 4}, 8) == tokens{8, 1, 2, 3, 4});
}

TEST_CASE("ngram drafter without a match proposes nothing", "[drafters]") {
    ngram_drafter d(4, 1);
    d.start({});
    CHECK(propose(d, {}, 8).empty());
    CHECK(propose(d, {1}, 8).empty());
    CHECK(propose(d, {1, 2, 3, 4, 5}, 8).empty());
}

TEST_CASE("ngram drafter looks up the extra texts", "[drafters]") {
    context c{.extra = {{50, 51, 52}, {5, 10, 11, 12, 13, 14}, {10, 11, 12, 99}}};
    ngram_drafter d(3, 2);
    d.start(c.view());
    CHECK(propose(d, {1, 10, 11, 12}, 8) == tokens{13, 14});  // the first text holding the key, in order
    CHECK(propose(d, {1, 10, 11, 12}, 1) == tokens{13});
    CHECK(propose(d, {7, 50, 51}, 8) == tokens{52});
    CHECK(propose(d, {7, 51, 52}, 8).empty());  // at the end of its text: nothing follows
    // The sequence's own match wins over the extra texts' at the same length...
    CHECK(propose(d, {10, 11, 12, 77, 10, 11, 12}, 8) == tokens{77, 10, 11, 12});
    // ...but a longer key in the extra texts wins over a shorter one ({11, 12}) in the sequence.
    CHECK(propose(d, {11, 12, 77, 10, 11, 12}, 8) == tokens{13, 14});

    // A new request's texts replace the old ones.
    context other{.extra = {{10, 11, 12, 40}}};
    d.start(other.view());
    CHECK(propose(d, {1, 10, 11, 12}, 8) == tokens{40});
    d.start({});
    CHECK(propose(d, {1, 10, 11, 12}, 8).empty());
}

TEST_CASE("ngram drafter picks the earliest match within an extra text", "[drafters]") {
    context c{.extra = {{3, 4, 1, 0, 3, 4, 2}}};
    ngram_drafter d(2, 2);
    d.start(c.view());
    CHECK(propose(d, {9, 3, 4}, 1) == tokens{1});
}

TEST_CASE("ngram drafter continues after another drafter's tokens", "[drafters]") {
    ngram_drafter d(2, 2);
    d.start({});
    draft out;
    out.tokens = {3, 4};
    out.q.resize(2);
    out.source = {0, 0};
    // sequence = prompt and output {1, 2, 3, 4, 5, 1, 2} plus out's {3, 4}: the key is {3, 4}.
    const tokens proposed = propose(d, {1, 2, 3, 4, 5, 1, 2, 3, 4}, 3, out, 1);
    CHECK(proposed == tokens{5, 1, 2});
    CHECK(out.tokens == tokens{3, 4, 5, 1, 2});
    CHECK(out.source == std::vector<int>{0, 0, 1, 1, 1});
}

namespace {

// What the ngram drafter should propose, by brute force.
tokens reference_ngram(const tokens& seq, const std::vector<tokens>& extra, int n_max, int n_min, int max_new) {
    const auto take = [&](const tokens& src, size_t from) {
        const size_t end = std::min(src.size(), from + static_cast<size_t>(max_new));
        return tokens(src.begin() + static_cast<ptrdiff_t>(from), src.begin() + static_cast<ptrdiff_t>(end));
    };
    const auto at = [](const tokens& src, size_t s, const tokens& seq, size_t n) {
        return std::equal(seq.end() - static_cast<ptrdiff_t>(n), seq.end(), src.begin() + static_cast<ptrdiff_t>(s));
    };
    for (int n = std::min<int>(n_max, static_cast<int>(seq.size())); n >= std::max(n_min, 1); --n) {
        const size_t k = static_cast<size_t>(n);
        for (size_t s = seq.size() - k; s-- > 0;)
            if (at(seq, s, seq, k)) return take(seq, s + k);
        for (const tokens& text : extra)
            for (size_t s = 0; s + k < text.size(); ++s)
                if (at(text, s, seq, k)) return take(text, s + k);
    }
    return {};
}

// Whether `proposed` follows some occurrence of the sequence's last n tokens, n in [n_min, n_max], in src.
bool follows_key(const tokens& src, const tokens& seq, const tokens& proposed, int n_max, int n_min, bool self) {
    for (int n = std::max(n_min, 1); n <= std::min<int>(n_max, static_cast<int>(seq.size())); ++n) {
        const size_t k = static_cast<size_t>(n);
        const size_t last_start = self ? seq.size() - k : src.size();  // the key's own position has no continuation
        for (size_t s = 0; s < last_start && s + k + proposed.size() <= src.size(); ++s) {
            const bool key = std::equal(seq.end() - static_cast<ptrdiff_t>(k), seq.end(),
                                        src.begin() + static_cast<ptrdiff_t>(s));
            const auto cont = src.begin() + static_cast<ptrdiff_t>(s + k);
            if (key && std::equal(proposed.begin(), proposed.end(), cont)) return true;
        }
    }
    return false;
}

}  // namespace

TEST_CASE("ngram drafter proposals really follow a key occurrence (randomized)", "[drafters]") {
    std::mt19937 gen(12345);
    const auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
    int proposals = 0;
    for (int round = 0; round < 1500; ++round) {
        const int vocab = uniform(2, 6);
        const auto random_tokens = [&](int n) {
            tokens t(static_cast<size_t>(n));
            for (token_id& x : t) x = uniform(0, vocab - 1);
            return t;
        };
        context c;
        for (int i = uniform(0, 3); i > 0; --i) c.extra.push_back(random_tokens(uniform(0, 30)));
        const tokens seq = random_tokens(uniform(0, 40));
        const int n_min = uniform(1, 4), n_max = uniform(n_min, 6), max_new = uniform(1, 8);
        ngram_drafter d(n_max, n_min);
        d.start(c.view());
        const tokens proposed = propose(d, seq, max_new);
        INFO("round " << round);
        REQUIRE(proposed == reference_ngram(seq, c.extra, n_max, n_min, max_new));
        if (proposed.empty()) continue;
        ++proposals;
        bool found = follows_key(seq, seq, proposed, n_max, n_min, true);
        for (const tokens& text : c.extra) found = found || follows_key(text, seq, proposed, n_max, n_min, false);
        REQUIRE(found);
    }
    CHECK(proposals > 500);  // the check above ran on many proposals, not a vacuous few
}

TEST_CASE("ngram drafter finds a match in large extra texts", "[drafters]") {
    std::mt19937 gen(7);
    std::uniform_int_distribution<token_id> token(0, 49999);
    context c;
    for (int t = 0; t < 10; ++t) {
        c.extra.emplace_back(10000);
        for (token_id& x : c.extra.back()) x = token(gen);
    }
    tokens seq(8000);
    for (token_id& x : seq) x = token(gen);
    // The sequence ends with four tokens from the middle of the seventh text.
    const tokens& source = c.extra[6];
    seq.insert(seq.end(), source.begin() + 5000, source.begin() + 5004);
    ngram_drafter d(4, 2);
    d.start(c.view());
    for (int step = 0; step < 200; ++step) {
        const tokens proposed = propose(d, seq, 8);
        REQUIRE(proposed == tokens(source.begin() + 5004, source.begin() + 5012));
    }
}
