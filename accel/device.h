// The emulated compact accelerator: a device of cores grouped into partitions, each partition backed by its own
// tbb::task_arena with a fixed worker count, plus counters of what the kernels did.
//
// The chip this emulates keeps every weight in the SRAM next to the core that uses it. We keep that discipline on
// the CPU: a weight matrix is split by output rows into per-core shards at load time, and a partition launches one
// task per shard with an affinity that replays the same shard-to-worker mapping every time, so a shard stays hot
// in its worker's cache. Joins are TBB's blocking, work-stealing joins, never spinning barriers: when another
// process takes a core, the remaining workers steal the waiting shards instead of the whole step stalling.
//
// Thread contract: a partition is driven by one thread at a time (the engine thread that owns the model placed on
// it); different partitions may run concurrently from different threads. Counters are updated by that driving
// thread only.
#pragma once

#include "support/result.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spark::accel {

struct device_config {
    std::string name;
    int n_cores = 1;
    uint64_t local_memory_per_core = 0;  // bytes of SRAM (host: share of the last-level cache)
    double memory_bandwidth = 0;         // bytes/s the weights stream at when they do not fit local memory (DRAM)
    double local_bandwidth_per_core = 0; // bytes/s one core reads its local memory at
    double fabric_bandwidth = 0;         // bytes/s between neighbouring cores (activations hop)
    double flops_per_core = 0;           // sustained flop/s of one core on these kernels
    double clock_hz = 0;
    double hop_latency = 0;              // seconds for activations to cross from one layer's cores to the next
};

// The machine we run on: cores from the OS, caches from sysfs, bandwidth from `measured_bandwidth` when given
// (else a conservative constant), flops from the clock.
device_config host_preset(double measured_bandwidth = 0);
// A wafer-class chip in the style of Cerebras' WSE-3 (public figures: ~900k cores, 44 GB SRAM, ~21 PB/s SRAM
// bandwidth, ~214 Pb/s fabric): ~48 KB SRAM and ~23 GB/s per core.
device_config wafer_preset();
result<device_config> preset_by_name(std::string_view name);  // "host" | "wafer"

// Kernel classes the counters and the cost model distinguish.
enum class kernel_class { matmul = 0, attention = 1, norm = 2, rope = 3, elementwise = 4 };
constexpr int n_kernel_classes = 5;
std::string_view kernel_class_name(kernel_class k);

struct kernel_counter {
    uint64_t calls = 0;
    uint64_t bytes = 0;   // bytes read (weights, activations, KV cache)
    uint64_t flops = 0;   // multiply-adds count as 2
    double seconds = 0;   // wall time measured around the launches
};

struct counters {
    kernel_counter by_class[n_kernel_classes];
    uint64_t passes = 0;  // forward passes (a verify batch is one pass)
    uint64_t layer_hops = 0;

    kernel_counter& operator[](kernel_class k) { return by_class[int(k)]; }
    const kernel_counter& operator[](kernel_class k) const { return by_class[int(k)]; }
    kernel_counter total() const;
    void clear() { *this = counters{}; }
};

// Projected seconds for the work in `c` on chip `cfg` when the weights are spread over `n_cores_used` cores:
// per class, max(bytes / bandwidth, flops / compute) — bandwidth is DRAM when the weights exceed the cores' local
// memory, else local bandwidth x cores — plus layer hops x hop latency.
double projected_seconds(const counters& c, const device_config& cfg, int n_cores_used, uint64_t weight_bytes);

// Chooses how many of a partition's workers a pass uses, from the pass times it is told about. Alone on the
// machine every worker helps (decode streams weights at the bandwidth of two cores, not one); when another process
// takes a core, a worker that is preempted while it holds a shard stalls every join until the OS runs it again, and
// fewer workers can be faster. The governor keeps, per kind of pass (the caller's bucket, e.g. the batch size), a
// moving average of the seconds per pass with all workers and with one, uses the faster, and re-measures the other
// every `explore_every` passes of that bucket so that it notices when the competition starts or stops. Deterministic: it decides
// from the recorded times only. Used by one thread at a time.
class worker_governor {
public:
    static constexpr int n_buckets = 32;
    explicit worker_governor(int n_workers, int explore_every = 32);

    int n_workers() const { return n_workers_; }
    // Worker count for the next pass of `bucket` (clamped to [0, n_buckets)): n_workers() or 1.
    int choose(int bucket);
    // The pass of `bucket` ran on `workers` workers and took `seconds`.
    void record(int bucket, int workers, double seconds);
    // The average seconds per pass of `bucket` at `workers` workers, 0 when never measured.
    double average(int bucket, int workers) const;
    uint64_t passes_with(int workers) const;  // how many recorded passes used that many workers

private:
    struct stat {
        double ema = 0;
        uint64_t n = 0;
    };
    int n_workers_;
    int explore_every_;
    std::vector<stat> stats_;             // [bucket][workers - 1]
    std::vector<uint64_t> chosen_;        // per bucket: passes chosen so far
    std::vector<uint64_t> with_workers_;  // [workers - 1]
    stat& at(int bucket, int workers) { return stats_[size_t(bucket) * size_t(n_workers_) + size_t(workers - 1)]; }
    const stat& at(int bucket, int workers) const {
        return stats_[size_t(bucket) * size_t(n_workers_) + size_t(workers - 1)];
    }
};

class partition {
public:
    partition(std::string name, int n_workers);
    ~partition();
    partition(const partition&) = delete;
    partition& operator=(const partition&) = delete;

    const std::string& name() const { return name_; }
    int n_workers() const { return n_workers_; }

    // Runs f(shard) for every shard in [0, n_shards) on this partition's workers and returns when all are done.
    // The mapping of shards to workers is replayed from the previous launch with the same `site` (an index the
    // caller chooses per call site, < 64), so a shard keeps running on the same worker; idle workers steal.
    void run(int site, int n_shards, const std::function<void(int)>& f);

    // How many workers run() uses: all, or 1 (every shard inline on the driving thread; any other value means all).
    // The results of the kernels do not depend on it (they are split-invariant); only the speed does.
    int active_workers() const { return active_; }
    void set_active_workers(int n);
    // The partition's governor, for drivers that time their passes (placed_model does, per batch size).
    worker_governor& governor() { return governor_; }

    counters& stats() { return stats_; }
    const counters& stats() const { return stats_; }

private:
    struct impl;
    std::string name_;
    int n_workers_;
    std::unique_ptr<impl> impl_;
    counters stats_;
    int active_;
    worker_governor governor_;
};

// Measures the memory read bandwidth (bytes/s) with n_threads streaming a buffer far larger than the caches.
double measure_read_bandwidth(int n_threads, size_t bytes = size_t(1) << 30);

// Times a scope and adds it to a counter: `{ scoped_timer t(stats[kernel_class::matmul]); ... }`.
class scoped_timer {
public:
    explicit scoped_timer(kernel_counter& c) : c_(c), t0_(std::chrono::steady_clock::now()) {}
    ~scoped_timer() { c_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

private:
    kernel_counter& c_;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace spark::accel
