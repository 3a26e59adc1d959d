#include "accel/device.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <thread>

namespace spark::accel {
namespace {

uint64_t read_cache_bytes(int index) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    std::string s;
    if (!(in >> s) || s.empty()) return 0;
    uint64_t mult = 1;
    if (s.back() == 'K') mult = 1024, s.pop_back();
    else if (s.back() == 'M') mult = 1024 * 1024, s.pop_back();
    return std::strtoull(s.c_str(), nullptr, 10) * mult;
}

}  // namespace

device_config host_preset(double measured_bandwidth) {
    device_config c;
    c.name = "host";
    c.n_cores = int(std::max(1u, std::thread::hardware_concurrency()));
    const uint64_t l2 = read_cache_bytes(2), l3 = read_cache_bytes(3);
    c.local_memory_per_core = l2 + (l3 ? l3 / uint64_t(c.n_cores) : 0);
    c.memory_bandwidth = measured_bandwidth > 0 ? measured_bandwidth : 20e9;
    c.local_bandwidth_per_core = 100e9;  // L2 streaming, order of magnitude
    c.fabric_bandwidth = 50e9;
    c.clock_hz = 3.0e9;
    c.flops_per_core = c.clock_hz * 32;  // AVX2: two 8-wide FMAs per cycle
    c.hop_latency = 0;                   // shared memory: no hop
    return c;
}

device_config wafer_preset() {
    device_config c;
    c.name = "wafer";
    c.n_cores = 900000;
    c.local_memory_per_core = 48 * 1024;
    c.local_bandwidth_per_core = 23e9;
    c.memory_bandwidth = 1.2e12;  // off-wafer weight streaming (only used when a model does not fit)
    c.fabric_bandwidth = 27e9;
    c.clock_hz = 1.1e9;
    c.flops_per_core = 2 * 1.1e9 * 8;  // 8 fp16 FMAs per cycle per core (order of magnitude)
    c.hop_latency = 1e-6;              // activations crossing to the next layer's region of the wafer
    return c;
}

result<device_config> preset_by_name(std::string_view name) {
    if (name == "host") return host_preset();
    if (name == "wafer") return wafer_preset();
    return fail("unknown chip preset '", name, "' (host, wafer)");
}

std::string_view kernel_class_name(kernel_class k) {
    static constexpr std::array<std::string_view, n_kernel_classes> names{"matmul", "attention", "norm", "rope",
                                                                          "elementwise"};
    return names[size_t(k)];
}

kernel_counter counters::total() const {
    kernel_counter t;
    for (const auto& k : by_class) {
        t.calls += k.calls;
        t.bytes += k.bytes;
        t.flops += k.flops;
        t.seconds += k.seconds;
    }
    return t;
}

double projected_seconds(const counters& c, const device_config& cfg, int n_cores_used, uint64_t weight_bytes) {
    n_cores_used = std::max(1, std::min(n_cores_used, cfg.n_cores));
    const bool resident = weight_bytes <= uint64_t(n_cores_used) * cfg.local_memory_per_core;
    const double bandwidth = resident ? cfg.local_bandwidth_per_core * n_cores_used : cfg.memory_bandwidth;
    const double compute = cfg.flops_per_core * n_cores_used;
    double s = 0;
    for (const auto& k : c.by_class) s += std::max(double(k.bytes) / bandwidth, double(k.flops) / compute);
    return s + double(c.layer_hops) * cfg.hop_latency;
}

struct partition::impl {
    tbb::task_arena arena;
    std::array<tbb::affinity_partitioner, 64> sites;
    explicit impl(int n) : arena(n, 1) {}
};

worker_governor::worker_governor(int n_workers, int explore_every)
    : n_workers_(std::max(1, n_workers)),
      explore_every_(std::max(2, explore_every)),
      stats_(size_t(n_buckets) * size_t(n_workers_)),
      chosen_(size_t(n_buckets)),
      with_workers_(size_t(n_workers_)) {}

int worker_governor::choose(int bucket) {
    // The candidates are all workers and one (a partition runs its arena whole, or inline on the driving thread).
    if (n_workers_ == 1) return 1;
    bucket = std::clamp(bucket, 0, n_buckets - 1);
    const uint64_t k = chosen_[size_t(bucket)]++;
    const stat &all = at(bucket, n_workers_), &one = at(bucket, 1);
    if (all.n == 0) return n_workers_;
    if (one.n == 0) return 1;
    const int best = one.ema < all.ema ? 1 : n_workers_, other = best == 1 ? n_workers_ : 1;
    return k % uint64_t(explore_every_) == uint64_t(explore_every_ - 1) ? other : best;
}

void worker_governor::record(int bucket, int workers, double seconds) {
    bucket = std::clamp(bucket, 0, n_buckets - 1);
    workers = std::clamp(workers, 1, n_workers_);
    stat& s = at(bucket, workers);
    // A short memory (about 4 passes) so a change in the competition shows within a few tokens.
    s.ema = s.n == 0 ? seconds : 0.75 * s.ema + 0.25 * seconds;
    ++s.n;
    ++with_workers_[size_t(workers - 1)];
}

double worker_governor::average(int bucket, int workers) const {
    bucket = std::clamp(bucket, 0, n_buckets - 1);
    if (workers < 1 || workers > n_workers_) return 0;
    return at(bucket, workers).ema;
}

uint64_t worker_governor::passes_with(int workers) const {
    if (workers < 1 || workers > n_workers_) return 0;
    return with_workers_[size_t(workers - 1)];
}

partition::partition(std::string name, int n_workers)
    : name_(std::move(name)),
      n_workers_(std::max(1, n_workers)),
      impl_(std::make_unique<impl>(n_workers_)),
      active_(n_workers_),
      governor_(n_workers_) {}

void partition::set_active_workers(int n) { active_ = n <= 1 ? 1 : n_workers_; }

partition::~partition() = default;

void partition::run(int site, int n_shards, const std::function<void(int)>& f) {
    if (n_shards <= 0) return;
    if (active_ == 1 || n_shards == 1) {  // no hand-off needed: run inline on the driving thread
        for (int s = 0; s < n_shards; ++s) f(s);
        return;
    }
    auto& ap = impl_->sites[size_t(site) % impl_->sites.size()];
    impl_->arena.execute([&] {
        tbb::parallel_for(tbb::blocked_range<int>(0, n_shards, 1),
                          [&](const tbb::blocked_range<int>& r) {
                              for (int s = r.begin(); s < r.end(); ++s) f(s);
                          },
                          ap);
    });
}

double measure_read_bandwidth(int n_threads, size_t bytes) {
    n_threads = std::max(1, n_threads);
    const size_t n = bytes / sizeof(uint64_t);
    std::vector<uint64_t> buf(n);
    tbb::task_arena arena(n_threads, 1);
    auto pass = [&] {
        std::vector<uint64_t> partial(size_t(n_threads), 0);
        arena.execute([&] {
            tbb::parallel_for(0, n_threads, [&](int t) {
                const size_t lo = n * size_t(t) / size_t(n_threads), hi = n * size_t(t + 1) / size_t(n_threads);
                uint64_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
                size_t i = lo;
                for (; i + 4 <= hi; i += 4) acc0 += buf[i], acc1 += buf[i + 1], acc2 += buf[i + 2], acc3 += buf[i + 3];
                for (; i < hi; ++i) acc0 += buf[i];
                partial[size_t(t)] = acc0 + acc1 + acc2 + acc3;
            }, tbb::static_partitioner());
        });
        return std::accumulate(partial.begin(), partial.end(), uint64_t(0));
    };
    // First touch in parallel so pages are spread the way the readers will see them.
    arena.execute([&] {
        tbb::parallel_for(size_t(0), n, size_t(1) << 16, [&](size_t i) {
            for (size_t j = i; j < std::min(n, i + (size_t(1) << 16)); ++j) buf[j] = j;
        });
    });
    volatile uint64_t sink = pass();  // warm-up
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        sink = sink + pass();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(n * sizeof(uint64_t)) / s);
    }
    (void)sink;
    return best;
}

}  // namespace spark::accel
