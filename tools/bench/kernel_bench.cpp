// spark-kernel-bench: how fast the matrix kernels stream weights, and what extra columns cost.
//
// For each weight type and shape it times packed_matrix::multiply over all rows for B = 1..16 columns, on 1 thread
// and on 2 threads splitting the rows at a tile boundary (one shard each, the accelerator's static placement), and
// prints the median time per call, the weight GB/s streamed (packed bytes / time) and cost(B) / cost(1).
// Default is "cold": the matrix is replicated until the copies exceed 256 MB and calls rotate through them, so
// every call streams its weights from DRAM as a decode step does; --hot reuses one copy (cache-resident when small).
// A plain read-bandwidth measurement gives the roofline. Run pinned, e.g. `taskset -c 0,1 spark-kernel-bench`.
//
// Options: --hot, --reps N (timed calls per point, default 15), --type NAME (repeatable: F16 Q8_0 Q4_0 Q4_K Q5_K
// Q6_K ...), --max-b N (default 16), --big (also the 151936 x 896 output matrix), --threads 1|2|12 (default 12),
// --shape ROWS N (only that shape; with --hot and a small shape, e.g. 128 x 1024, it measures in-cache compute).
#include "accel/kernels.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace spark;
using namespace spark::accel;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Sum of n words with 256-bit loads where the CPU has them (a scalar loop is core-bound below DRAM speed here).
#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
    }
    alignas(32) uint64_t l[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    uint64_t s = l[0] + l[1] + l[2] + l[3];
    for (; i < n; ++i) s += p[i];
    return s;
}
#endif
uint64_t sum_range(const uint64_t* p, size_t n) {
#if defined(__x86_64__)
    if (detected_isa() >= isa_level::avx2) return sum_avx2(p, n);
#endif
    uint64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += p[i];
    return s;
}

// Read bandwidth in bytes/s with n_threads readers over a buffer far larger than the last-level cache.
double read_bandwidth(int n_threads) {
    const size_t n = (size_t(512) << 20) / 8;
    std::vector<uint64_t> buf(n);
    for (size_t i = 0; i < n; ++i) buf[i] = i;
    tbb::task_arena arena(n_threads, 1);
    std::vector<uint64_t> sink(static_cast<size_t>(n_threads));
    double best = 0;
    for (int rep = 0; rep < 4; ++rep) {
        const auto t0 = clock_type::now();
        arena.execute([&] {
            tbb::parallel_for(0, n_threads, [&](int t) {
                const size_t lo = n * size_t(t) / size_t(n_threads), hi = n * size_t(t + 1) / size_t(n_threads);
                sink[size_t(t)] += sum_range(buf.data() + lo, hi - lo);
            }, tbb::static_partitioner());
        });
        best = std::max(best, double(n * 8) / seconds_since(t0));
    }
    volatile uint64_t keep = sink[0];
    (void)keep;
    return best;
}

struct options {
    bool hot = false, big = false;
    int reps = 15, max_b = max_batch;
    std::vector<std::string> types;
    std::vector<int> threads{1, 2};
    int64_t shape_rows = 0, shape_n = 0;  // --shape R N: only this shape (e.g. a small cache-resident one with --hot)
};

void bench(ggml_type type, int64_t n_rows, int64_t n, const options& opt, tbb::task_arena& arena2) {
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const uint64_t rb = row_bytes(type, uint64_t(n));
    std::vector<uint8_t> wq(rb * uint64_t(n_rows));
    {
        std::vector<float> row(static_cast<size_t>(n));
        for (int64_t r = 0; r < n_rows; ++r) {
            for (auto& v : row) v = nd(rng);
            quantize_row(type, row.data(), wq.data() + size_t(r) * rb, n);
        }
    }
    auto packed = packed_matrix::pack(type, wq, n_rows, n);
    if (!packed) {
        std::printf("%s: %s\n", std::string(type_name(type)).c_str(), packed.error().message.c_str());
        return;
    }
    wq.clear();
    wq.shrink_to_fit();
    const uint64_t bytes = packed->bytes();
    const size_t n_copies = opt.hot ? 1 : std::max<size_t>(1, size_t((uint64_t(256) << 20) / bytes + 1));
    std::vector<packed_matrix> copies(n_copies, *packed);

    std::vector<float> x(size_t(max_batch * n));
    for (auto& v : x) v = nd(rng);
    std::vector<float> y(size_t(max_batch * n_rows));
    const int64_t mid = (n_rows / 2) / tile_rows * tile_rows;

    std::printf("\n%s %lld x %lld: %.2f MB per call, %zu copies (%s)\n", std::string(type_name(type)).c_str(),
                (long long)n_rows, (long long)n, double(bytes) / 1e6, n_copies, opt.hot ? "hot" : "cold");
    for (int threads : opt.threads) {
        std::printf("  threads %d\n  %3s %9s %9s %8s %8s %8s %8s\n", threads, "B", "us(min)", "us(med)", "GB/s", "GB/s med",
                    "cost/c1", "med/c1");
        double cost1 = 0, cost1_med = 0;
        size_t next = 0;
        for (int b = 1; b <= opt.max_b; ++b) {
            activations a;
            a.prepare(type, x.data(), b, n, n);
            auto call = [&] {
                const packed_matrix& m = copies[next];
                next = (next + 1) % n_copies;
                if (threads == 1) {
                    m.multiply(a, 0, n_rows, y.data(), n_rows);
                } else {
                    arena2.execute([&] {
                        tbb::parallel_for(0, 2, [&](int s) {
                            if (s == 0) m.multiply(a, 0, mid, y.data(), n_rows);
                            else m.multiply(a, mid, n_rows, y.data(), n_rows);
                        }, tbb::static_partitioner());
                    });
                }
            };
            for (int w = 0; w < 2; ++w) call();
            std::vector<double> t;
            for (int rep = 0; rep < opt.reps; ++rep) {
                const auto t0 = clock_type::now();
                call();
                t.push_back(seconds_since(t0));
            }
            std::sort(t.begin(), t.end());
            // The minimum is the machine's capability when nothing else ran during the call (this host is shared);
            // the median shows what the noise does.
            const double best = t.front(), med = t[t.size() / 2];
            if (b == 1) cost1 = best, cost1_med = med;
            std::printf("  %3d %9.1f %9.1f %8.2f %8.2f %8.3f %8.3f\n", b, best * 1e6, med * 1e6, double(bytes) / best / 1e9,
                        double(bytes) / med / 1e9, best / cost1, med / cost1_med);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--hot") opt.hot = true;
        else if (a == "--big") opt.big = true;
        else if (a == "--reps" && i + 1 < argc) opt.reps = std::max(1, std::atoi(argv[++i]));
        else if (a == "--max-b" && i + 1 < argc) opt.max_b = std::clamp(std::atoi(argv[++i]), 1, max_batch);
        else if (a == "--type" && i + 1 < argc) opt.types.push_back(argv[++i]);
        else if (a == "--shape" && i + 2 < argc) {
            opt.shape_rows = std::atoll(argv[++i]);
            opt.shape_n = std::atoll(argv[++i]);
        }
        else if (a == "--threads" && i + 1 < argc) {
            const std::string t = argv[++i];
            opt.threads.clear();
            for (char c : t) opt.threads.push_back(c - '0');
        } else {
            std::fprintf(stderr, "usage: spark-kernel-bench [--hot] [--big] [--reps N] [--max-b N] [--type NAME]... "
                                 "[--threads 1|2|12] [--shape ROWS N]\n");
            return 2;
        }
    }
    if (opt.types.empty()) opt.types = {"Q8_0", "Q4_0", "Q4_K"};
    std::printf("ISA: %s (detected %s)\n", std::string(isa_name(active_isa())).c_str(),
                std::string(isa_name(detected_isa())).c_str());
    std::printf("read bandwidth: 1 thread %.2f GB/s, 2 threads %.2f GB/s\n", read_bandwidth(1) / 1e9,
                read_bandwidth(2) / 1e9);
    tbb::task_arena arena2(2, 1);
    for (const std::string& name : opt.types) {
        ggml_type type = ggml_type::f32;
        bool found = false;
        for (uint32_t id = 0; id < 40; ++id)
            if (const type_traits* tr = find_type_traits(id); tr && tr->name == name) type = ggml_type(id), found = true;
        if (!found) {
            std::printf("unknown type %s\n", name.c_str());
            continue;
        }
        const int64_t bs = traits(type).block_size;
        struct shape {
            int64_t rows, n;
        };
        std::vector<shape> shapes{{4864, 896}, {896, 4864}};
        if (opt.big) shapes.push_back({151936, 896});
        if (opt.shape_rows > 0 && opt.shape_n > 0) shapes = {{opt.shape_rows, opt.shape_n}};
        for (const shape& s : shapes)
            if (s.n % bs == 0) bench(type, s.rows, s.n, opt, arena2);
            else std::printf("\n%s %lld x %lld: skipped (n not a multiple of %lld)\n", name.c_str(), (long long)s.rows,
                             (long long)s.n, (long long)bs);
    }
    return 0;
}
