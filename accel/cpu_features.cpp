// Instruction-set detection for the kernels: cpuid for AVX2/FMA/F16C and xgetbv for the OS saving the YMM state.
#include "accel/kernels.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace spark::accel {
namespace {

isa_level detect() {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return isa_level::scalar;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c)) return isa_level::scalar;
    // XCR0 bits 1 (SSE) and 2 (AVX): the OS saves the YMM registers on context switches.
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6u) != 6u) return isa_level::scalar;
    if (__get_cpuid_max(0, nullptr) < 7) return isa_level::scalar;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    return avx2 ? isa_level::avx2 : isa_level::scalar;
#else
    return isa_level::scalar;
#endif
}

// The level from SPARK_ISA (only ever lowers the detected one); read once.
isa_level initial_active() {
    const isa_level detected = detected_isa();
    const char* env = std::getenv("SPARK_ISA");
    if (env && std::strcmp(env, "scalar") == 0) return isa_level::scalar;
    return detected;  // "avx2" or unset: what the CPU has
}

std::atomic<int>& active_level() {
    static std::atomic<int> level{int(initial_active())};
    return level;
}

}  // namespace

isa_level detected_isa() {
    static const isa_level level = detect();
    return level;
}

isa_level active_isa() { return isa_level(active_level().load(std::memory_order_relaxed)); }

void set_active_isa(isa_level l) {
    const isa_level clamped = int(l) > int(detected_isa()) ? detected_isa() : l;
    active_level().store(int(clamped), std::memory_order_relaxed);
}

std::string_view isa_name(isa_level l) {
    switch (l) {
        case isa_level::scalar: return "scalar";
        case isa_level::avx2: return "avx2";
    }
    return "unknown";
}

}  // namespace spark::accel
