// Goodness-of-fit for the sampling tests: Pearson's chi-squared statistic and its p-value.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace spark::test {

// Regularised upper incomplete gamma Q(a, x) (Numerical Recipes' series / continued fraction split at x = a + 1).
inline double gamma_q(double a, double x) {
    if (x <= 0) return 1.0;
    const double gln = std::lgamma(a);
    if (x < a + 1) {
        double sum = 1.0 / a, del = sum, ap = a;
        for (int n = 0; n < 10000; ++n) {
            del *= x / ++ap;
            sum += del;
            if (std::fabs(del) < std::fabs(sum) * 1e-15) break;
        }
        return 1.0 - sum * std::exp(-x + a * std::log(x) - gln);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 10000; ++i) {
        const double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (std::fabs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::fabs(del - 1) < 1e-15) break;
    }
    return std::exp(-x + a * std::log(x) - gln) * h;
}

// p-value of observed counts against expected counts. Cells with expected < 5 are pooled into one cell (an observed
// count in a cell of expectation 0 gives p = 0: an impossible outcome happened).
inline double chi_squared_p_value(std::span<const double> observed, std::span<const double> expected) {
    double stat = 0, pool_o = 0, pool_e = 0;
    int cells = 0;
    for (size_t i = 0; i < observed.size(); ++i) {
        if (expected[i] <= 0) {
            if (observed[i] > 0) return 0.0;
            continue;
        }
        if (expected[i] < 5) {
            pool_o += observed[i], pool_e += expected[i];
            continue;
        }
        stat += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
        ++cells;
    }
    if (pool_e > 0) stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, ++cells;
    if (cells < 2) return 1.0;
    return gamma_q(0.5 * (cells - 1), 0.5 * stat);
}

}  // namespace spark::test
