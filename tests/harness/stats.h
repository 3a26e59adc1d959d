// Goodness-of-fit for the sampling tests: Pearson's chi-squared test with its p-value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

namespace spark::test {

// Q(a, x), the regularised upper incomplete gamma function: a series below a + 1 (where it converges fast) and
// Lentz's continued fraction above (Numerical Recipes §6.2).
inline double upper_gamma_q(double a, double x) {
    if (x <= 0.0) return 1.0;
    const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
    if (x < a + 1.0) {
        double term = 1.0 / a, sum = term;
        for (int n = 1; n < 10000 && std::abs(term) > std::abs(sum) * 1e-16; ++n) {
            term *= x / (a + n);
            sum += term;
        }
        return std::max(0.0, 1.0 - sum * std::exp(log_prefix));
    }
    constexpr double tiny = 1e-300;
    double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; ++i) {
        const double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (std::abs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double delta = d * c;
        h *= delta;
        if (std::abs(delta - 1.0) < 1e-16) break;
    }
    return std::exp(log_prefix) * h;
}

inline double chi_squared_survival(double statistic, double degrees) { return upper_gamma_q(degrees / 2.0, statistic / 2.0); }

// p-value of "observed counts were drawn from `expected` (need not be normalised)". Bins expecting fewer than 5 are
// pooled, since the chi-squared approximation breaks down there; a count in a bin of probability 0 is impossible
// under the hypothesis and gives p-value 0.
template <class E, class O>
inline double goodness_of_fit_of(std::span<const E> expected, std::span<const O> observed) {
    const double total_p = std::accumulate(expected.begin(), expected.end(), 0.0);
    const double n = double(std::accumulate(observed.begin(), observed.end(), O(0)));
    std::vector<std::pair<double, double>> bins;  // (expected, observed)
    double pool_e = 0.0, pool_o = 0.0;
    for (size_t i = 0; i < expected.size(); ++i) {
        const double e = n * double(expected[i]) / total_p;
        if (e <= 0.0) {
            if (observed[i] > 0) return 0.0;
            continue;
        }
        pool_e += e;
        pool_o += double(observed[i]);
        if (pool_e >= 5.0) bins.push_back({pool_e, pool_o}), pool_e = pool_o = 0.0;
    }
    if (pool_e > 0.0) {
        if (bins.empty()) return 1.0;
        bins.back().first += pool_e;
        bins.back().second += pool_o;
    }
    if (bins.size() < 2) return 1.0;
    double statistic = 0.0;
    for (auto [e, o] : bins) statistic += (o - e) * (o - e) / e;
    return chi_squared_survival(statistic, double(bins.size() - 1));
}

inline double goodness_of_fit(std::span<const float> expected, std::span<const uint64_t> observed) {
    return goodness_of_fit_of(expected, observed);
}
inline double goodness_of_fit(std::span<const double> expected, std::span<const double> observed) {
    return goodness_of_fit_of(expected, observed);
}

}  // namespace spark::test
