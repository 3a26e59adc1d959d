// Fuzzing the GGUF reader (and the model/tokenizer loaders behind it) with mutated and truncated files.
// Every input must either load or produce an error message; under AddressSanitizer any over-read fails the run.
// SPARK_FUZZ_ITERATIONS raises the count for a longer opt-in run.
#include "harness/test_data.h"
#include "inference/gguf.h"
#include "inference/model.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

using namespace spark;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

int iterations(int fallback) {
    if (const char* e = std::getenv("SPARK_FUZZ_ITERATIONS")) return std::max(1, std::atoi(e));
    return fallback;
}

// Interesting values to plant over length and count fields.
constexpr uint64_t edge_values[] = {0, 1, 2, 7, 31, 32, 33, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff,
                                    0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull};

std::vector<uint8_t> mutate(const std::vector<uint8_t>& seed, std::mt19937_64& rng, size_t header_bytes) {
    std::vector<uint8_t> b = seed;
    // Most mutations land in the header, metadata and tensor table, where parsing decisions are made.
    auto pos = [&](size_t size) {
        if (size == 0) return size_t(0);
        const size_t limit = (rng() % 4 == 0) ? size : std::min(size, header_bytes);
        return size_t(rng() % limit);
    };
    const int n_mutations = 1 + int(rng() % 4);
    for (int m = 0; m < n_mutations; ++m) {
        switch (rng() % 6) {
            case 0: if (!b.empty()) b[pos(b.size())] ^= uint8_t(1u << (rng() % 8)); break;
            case 1: if (!b.empty()) b[pos(b.size())] = uint8_t(rng()); break;
            case 2: {  // plant an edge value as a u64 or u32
                const uint64_t v = edge_values[rng() % std::size(edge_values)];
                const size_t width = rng() % 2 ? 8 : 4;
                if (b.size() >= width) std::memcpy(&b[pos(b.size() - width + 1)], &v, width);
                break;
            }
            case 3: b.resize(pos(b.size())); break;  // truncate
            case 4: if (!b.empty()) b.erase(b.begin() + ptrdiff_t(pos(b.size()))); break;
            case 5: b.insert(b.begin() + ptrdiff_t(pos(b.size() + 1)), uint8_t(rng())); break;
        }
    }
    return b;
}

}  // namespace

TEST_CASE("gguf fuzz: mutated and truncated files never crash the reader or the loaders", "[gguf][fuzz]") {
    const auto seed_file = read_bytes(test::data_path("tiny-qwen2.gguf"));
    REQUIRE(seed_file.size() > 1000);
    auto parsed = gguf::gguf_file::parse(seed_file);
    REQUIRE(parsed);
    const size_t header_bytes = size_t(parsed->data_offset());

    std::mt19937_64 rng(20261124);
    const int n = iterations(10000);
    int n_rejected = 0, n_loaded_models = 0;
    for (int i = 0; i < n; ++i) {
        const auto bytes = mutate(seed_file, rng, header_bytes);
        auto f = gguf::gguf_file::parse(bytes);
        if (!f) {
            ++n_rejected;
            if (f.error().message.empty()) FAIL("empty error message for mutation " << i);
            continue;
        }
        // Accepted: every tensor's bytes must be readable, and the model loader must cope with what it finds.
        uint64_t sum = 0;
        for (const auto& t : f->tensors())
            for (uint8_t x : f->tensor_data(t)) sum += x;
        (void)sum;
        auto m = model::from_file(std::move(*f), "<fuzz>");
        if (m) ++n_loaded_models;
        else if (m.error().message.empty()) FAIL("empty model error message for mutation " << i);
    }
    INFO(n_rejected << " of " << n << " rejected, " << n_loaded_models << " loaded as models");
    CHECK(n_rejected > n / 4);  // the mutations do reach the validation paths
}

TEST_CASE("gguf fuzz: every truncation of a valid file is rejected with a message", "[gguf][fuzz]") {
    const auto seed_file = read_bytes(test::data_path("tiny-llama.gguf"));
    REQUIRE_FALSE(seed_file.empty());
    // Every prefix up to the end of the tensor table, then a sample of the data section.
    auto parsed = gguf::gguf_file::parse(seed_file);
    REQUIRE(parsed);
    for (size_t len = 0; len < seed_file.size(); len += (len < parsed->data_offset() ? 1 : 997)) {
        auto f = gguf::gguf_file::parse(std::span(seed_file).first(len));
        REQUIRE_FALSE(f);
        REQUIRE_FALSE(f.error().message.empty());
    }
}
