// Negacyclic FFT: exactness against the schoolbook product, the worst-case error bound,
// agreement with FFTW, round trips, accumulation and the error-variance model. Built three
// times (AVX-512, AVX2, portable); every check below runs on each ISA.
#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <fhetensor/fft/fftw_negacyclic_fft.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>

namespace {

using fhetensor::Torus;
using fhetensor::fft::FftwNegacyclicFft;
using fhetensor::fft::FourierPolynomial;
using fhetensor::fft::NegacyclicFft;
using fhetensor::fft::fourier_multiply_add;
using fhetensor::fft::product_error_bound;
using fhetensor::fft::product_error_variance;

__extension__ typedef __int128 Int128;  // exact sums of up to 2^16 products of 2^94
using IntPoly = std::vector<std::int64_t>;
using TorusPoly = std::vector<Torus>;

IntPoly random_ints(std::size_t n, std::int64_t bound, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> dist(-bound, bound);
  IntPoly v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TorusPoly random_torus(std::size_t n, std::mt19937_64& rng) {
  TorusPoly v(n);
  for (auto& x : v) x = rng();
  return v;
}

// Exact negacyclic product mod 2^64 (unsigned arithmetic wraps).
TorusPoly naive_product(const IntPoly& a, const TorusPoly& b) {
  const std::size_t n = a.size();
  TorusPoly c(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const Torus ai = static_cast<Torus>(a[i]);
    for (std::size_t j = 0; j < n - i; ++j) c[i + j] += ai * b[j];
    for (std::size_t j = n - i; j < n; ++j) c[i + j - n] -= ai * b[j];
  }
  return c;
}

// Coefficient `j` of the exact product over the integers (no reduction).
Int128 exact_coefficient(const IntPoly& a, const TorusPoly& b, std::size_t j) {
  const std::size_t n = a.size();
  Int128 sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Int128 term = static_cast<Int128>(a[i]) * static_cast<std::int64_t>(b[(j + n - i) % n]);
    sum += i <= j ? term : -term;
  }
  return sum;
}

// backward(forward(a) * forward_torus(b)) with a zeroed accumulator.
template <class Fft>
TorusPoly fft_product(const Fft& fft, const IntPoly& a, const TorusPoly& b) {
  const std::size_t n = a.size();
  FourierPolynomial fa(n), fb(n), acc(n);
  fft.forward(a, fa.view());
  fft.forward_torus(b, fb.view());
  fourier_multiply_add(acc.view(), fa.view(), fb.view());
  TorusPoly out(n);
  fft.backward_torus(acc.view(), out);
  return out;
}

// Largest |x_j - y_j| with the difference read as a signed 64-bit integer.
double max_wrapped_difference(const TorusPoly& x, const TorusPoly& y) {
  double m = 0;
  for (std::size_t j = 0; j < x.size(); ++j)
    m = std::max(m, std::fabs(static_cast<double>(static_cast<std::int64_t>(x[j] - y[j]))));
  return m;
}

constexpr std::int64_t digit_bound = std::int64_t{1} << 22;
constexpr double torus_bound = 0x1p63;

}  // namespace

TEST_CASE("negacyclic product matches the exact product within the error bound", "[fft]") {
  std::mt19937_64 rng(1);
  for (std::size_t n = 16; n <= 2048; n *= 2) {
    const NegacyclicFft ours(n);
    const FftwNegacyclicFft fftw(n, FFTW_ESTIMATE);
    const double bound = product_error_bound(n, static_cast<double>(digit_bound), torus_bound);
    for (int trial = 0; trial < 4; ++trial) {
      const auto a = random_ints(n, digit_bound, rng);
      const auto b = random_torus(n, rng);
      const auto exact = naive_product(a, b);
      INFO("N = " << n << ", bound = 2^" << std::log2(bound));
      const double err = max_wrapped_difference(fft_product(ours, a, b), exact);
      CHECK(err <= bound);
      CHECK(max_wrapped_difference(fft_product(fftw, a, b), exact) <= bound);
      // The bound is meaningful: far below the 2^63 a wrong result would show.
      CHECK(bound < 0x1p55);
    }
  }
}

TEST_CASE("worst-case magnitudes stay within the error bound", "[fft]") {
  // Torus coefficients near +-2^63 and digits of maximal size whose signs line up with them
  // so that output coefficient j0 is N * D * ~2^63, the largest possible.
  std::mt19937_64 rng(2);
  for (const std::int64_t digit : {std::int64_t{1} << 22, std::int64_t{1} << 31}) {
    for (const std::size_t n : {std::size_t{64}, std::size_t{1024}, std::size_t{2048}}) {
      const NegacyclicFft ours(n);
      TorusPoly b(n);
      for (auto& x : b) {
        const Torus magnitude = (Torus{1} << 63) - 1 - (rng() & 0xffff);
        x = (rng() & 1) ? magnitude : Torus{0} - magnitude;
      }
      const std::size_t j0 = rng() % n;
      IntPoly a(n);
      for (std::size_t i = 0; i < n; ++i) {
        const bool negative_b = static_cast<std::int64_t>(b[(j0 + n - i) % n]) < 0;
        const bool wraps = i > j0;  // X^N = -1
        a[i] = (negative_b != wraps) ? -digit : digit;
      }
      const Int128 peak = exact_coefficient(a, b, j0);
      REQUIRE(static_cast<double>(peak) > 0.99 * static_cast<double>(n) * static_cast<double>(digit) * 0x1p63);
      const double bound = product_error_bound(n, static_cast<double>(digit), torus_bound);
      const double err = max_wrapped_difference(fft_product(ours, a, b), naive_product(a, b));
      INFO("N = " << n << ", digits 2^" << std::log2(static_cast<double>(digit)) << ": error 2^"
                  << std::log2(err) << ", bound 2^" << std::log2(bound));
      CHECK(err <= bound);
      CHECK(bound < 0x1p62);
    }
  }
  // The figure quoted in docs/fft.md: N = 2048, 2^22 digits, far below 2^58 (half a
  // plaintext step of a 4-bit message with padding bit).
  CHECK(product_error_bound(2048, 0x1p22, 0x1p63) < 0x1p53);
}

TEST_CASE("ours agrees with FFTW", "[fft]") {
  std::mt19937_64 rng(3);
  std::vector<std::size_t> sizes;
  for (std::size_t n = 512; n <= 16384; n *= 2) sizes.push_back(n);
  sizes.push_back(65536);
  for (const std::size_t n : sizes) {
    const NegacyclicFft ours(n);
    const FftwNegacyclicFft fftw(n, FFTW_ESTIMATE);
    const auto a = random_ints(n, digit_bound, rng);
    const auto b = random_torus(n, rng);
    const double bound = product_error_bound(n, static_cast<double>(digit_bound), torus_bound);
    const double diff = max_wrapped_difference(fft_product(ours, a, b), fft_product(fftw, a, b));
    INFO("N = " << n << ": difference 2^" << std::log2(diff) << ", bound 2^" << std::log2(bound));
    CHECK(diff <= bound);
    CHECK(diff > 0);  // they are two different roundings of the same product
  }
}

TEST_CASE("round trip of an integer polynomial is exact below 2^40", "[fft]") {
  std::mt19937_64 rng(4);
  for (std::size_t n = 16; n <= 16384; n *= 2) {
    const NegacyclicFft ours(n);
    const FftwNegacyclicFft fftw(n, FFTW_ESTIMATE);
    auto a = random_ints(n, (std::int64_t{1} << 40) - 1, rng);
    a[0] = (std::int64_t{1} << 40) - 1;
    a[n - 1] = -a[0];
    TorusPoly expected(n);
    std::transform(a.begin(), a.end(), expected.begin(), [](std::int64_t x) { return static_cast<Torus>(x); });
    FourierPolynomial f(n);
    TorusPoly out(n);
    INFO("N = " << n);
    ours.forward(a, f.view());
    ours.backward_torus(f.view(), out);
    CHECK(out == expected);
    fftw.forward(a, f.view());
    fftw.backward_torus(f.view(), out);
    CHECK(out == expected);
    // Torus polynomials with small signed coefficients too.
    ours.forward_torus(expected, f.view());
    ours.backward_torus(f.view(), out);
    CHECK(out == expected);
  }
}

TEST_CASE("backward_torus_add adds modulo 2^64", "[fft]") {
  std::mt19937_64 rng(5);
  for (const std::size_t n : {std::size_t{16}, std::size_t{128}, std::size_t{512}, std::size_t{1024}, std::size_t{2048}, std::size_t{4096}}) {
    const NegacyclicFft ours(n);
    const FftwNegacyclicFft fftw(n, FFTW_ESTIMATE);
    const auto a = random_ints(n, std::int64_t{1} << 30, rng);
    const auto start = random_torus(n, rng);  // wraps around often
    TorusPoly expected(n);
    for (std::size_t j = 0; j < n; ++j) expected[j] = start[j] + static_cast<Torus>(a[j]);
    FourierPolynomial f(n);
    INFO("N = " << n);
    auto out = start;
    ours.forward(a, f.view());
    ours.backward_torus_add(f.view(), out);
    CHECK(out == expected);
    out = start;
    fftw.forward(a, f.view());
    fftw.backward_torus_add(f.view(), out);
    CHECK(out == expected);
  }
}

TEST_CASE("the transform is linear", "[fft]") {
  std::mt19937_64 rng(6);
  for (const std::size_t n : {std::size_t{32}, std::size_t{512}, std::size_t{2048}}) {
    const NegacyclicFft ours(n);
    const auto a = random_ints(n, std::int64_t{1} << 30, rng);
    const auto b = random_ints(n, std::int64_t{1} << 30, rng);
    IntPoly sum(n);
    for (std::size_t j = 0; j < n; ++j) sum[j] = a[j] + b[j];
    FourierPolynomial fa(n), fb(n), fsum(n);
    ours.forward(a, fa.view());
    ours.forward(b, fb.view());
    ours.forward(sum, fsum.view());
    const auto va = fa.view(), vb = fb.view(), vs = fsum.view();
    double scale = 0, worst = 0;
    for (std::size_t k = 0; k < n / 2; ++k) {
      scale = std::max(scale, std::abs(std::complex<double>(vs.re[k], vs.im[k])));
      worst = std::max(worst, std::abs(std::complex<double>(va.re[k] + vb.re[k] - vs.re[k],
                                                            va.im[k] + vb.im[k] - vs.im[k])));
    }
    INFO("N = " << n);
    CHECK(worst <= 1e-13 * scale);
    // Adding spectra and transforming back gives a + b exactly.
    for (std::size_t k = 0; k < n / 2; ++k) va.re[k] += vb.re[k], va.im[k] += vb.im[k];
    TorusPoly out(n);
    ours.backward_torus(fa.view(), out);
    for (std::size_t j = 0; j < n; ++j) CHECK(out[j] == static_cast<Torus>(sum[j]));
  }
}

TEST_CASE("fourier_multiply_add accumulates", "[fft]") {
  std::mt19937_64 rng(7);
  SECTION("pointwise values") {
    std::uniform_real_distribution<double> real(-1e6, 1e6);
    for (const std::size_t n : {std::size_t{2}, std::size_t{4}, std::size_t{16}, std::size_t{64}, std::size_t{1024}}) {
      FourierPolynomial a(n), b(n), acc(n);
      std::vector<std::complex<double>> expected(n / 2);
      for (std::size_t k = 0; k < n / 2; ++k) {
        a.view().re[k] = real(rng), a.view().im[k] = real(rng);
        b.view().re[k] = real(rng), b.view().im[k] = real(rng);
        acc.view().re[k] = real(rng), acc.view().im[k] = real(rng);
        expected[k] = std::complex<double>(acc.view().re[k], acc.view().im[k]) +
                      std::complex<double>(a.view().re[k], a.view().im[k]) *
                          std::complex<double>(b.view().re[k], b.view().im[k]);
      }
      fourier_multiply_add(acc.view(), a.view(), b.view());
      for (std::size_t k = 0; k < n / 2; ++k) {
        INFO("N = " << n << ", k = " << k);
        CHECK(std::abs(std::complex<double>(acc.view().re[k], acc.view().im[k]) - expected[k]) <=
              1e-15 * (std::abs(expected[k]) + 1e12));
      }
    }
  }
  SECTION("sum of two products") {
    for (const std::size_t n : {std::size_t{64}, std::size_t{1024}}) {
      const NegacyclicFft ours(n);
      const auto a1 = random_ints(n, digit_bound, rng), a2 = random_ints(n, digit_bound, rng);
      const auto b1 = random_torus(n, rng), b2 = random_torus(n, rng);
      FourierPolynomial fa(n), fb(n), acc(n);
      ours.forward(a1, fa.view());
      ours.forward_torus(b1, fb.view());
      fourier_multiply_add(acc.view(), fa.view(), fb.view());
      ours.forward(a2, fa.view());
      ours.forward_torus(b2, fb.view());
      fourier_multiply_add(acc.view(), fa.view(), fb.view());
      TorusPoly out(n);
      ours.backward_torus(acc.view(), out);
      auto expected = naive_product(a1, b1);
      const auto second = naive_product(a2, b2);
      for (std::size_t j = 0; j < n; ++j) expected[j] += second[j];
      const double bound = 2 * product_error_bound(n, static_cast<double>(digit_bound), torus_bound);
      INFO("N = " << n);
      CHECK(max_wrapped_difference(out, expected) <= bound);
      // ... and it really is the sum: one product alone is far off.
      CHECK(max_wrapped_difference(out, naive_product(a1, b1)) > 64 * bound);
    }
  }
}

TEST_CASE("product_error_variance models the measured error variance", "[fft]") {
  // Uniform digits in [-2^22, 2^22] and uniform torus coefficients; the model must not be
  // below the measurement and at most twice it.
  std::mt19937_64 rng(8);
  const double mean_square_int = (0x1p44 + 0x1p22) / 3.0;  // E[d^2], d uniform in [-D, D]
  const double mean_square_torus = 0x1p126 / 3.0;
  for (const std::size_t n : {std::size_t{1024}, std::size_t{2048}, std::size_t{4096}}) {
    const NegacyclicFft ours(n);
    double sum = 0;
    std::size_t count = 0;
    const int trials = static_cast<int>(65536 / n);
    for (int t = 0; t < trials; ++t) {
      const auto a = random_ints(n, digit_bound, rng);
      const auto b = random_torus(n, rng);
      const auto out = fft_product(ours, a, b);
      const auto exact = naive_product(a, b);
      for (std::size_t j = 0; j < n; ++j) {
        const double e = static_cast<double>(static_cast<std::int64_t>(out[j] - exact[j]));
        sum += e * e;
        ++count;
      }
    }
    const double measured = sum / static_cast<double>(count);
    const double model = product_error_variance(n, mean_square_int, mean_square_torus);
    INFO("N = " << n << ": measured 2^" << std::log2(measured) << ", model 2^" << std::log2(model)
                << ", ratio " << model / measured);
    CHECK(model >= measured);
    CHECK(model <= 2 * measured);
  }
}

TEST_CASE("int64 and torus conversions are exact at the edges", "[fft]") {
  using Isa = fhetensor::fft::detail::NativeIsa;
  constexpr std::size_t w = Isa::width;
  const std::int64_t extremes[] = {std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max(),
                                   (std::int64_t{1} << 53) + 1,
                                   -(std::int64_t{1} << 53) - 3,
                                   (std::int64_t{1} << 62) + 12345,
                                   -1,
                                   0,
                                   (std::int64_t{1} << 32) - 1,
                                   -(std::int64_t{1} << 32),
                                   std::int64_t{0x7fffffff},
                                   -std::int64_t{0x80000000},
                                   123456789012345};
  for (std::size_t base = 0; base + w <= std::size(extremes); base += w) {
    alignas(64) double d[w];
    Isa::store(d, Isa::load_int(extremes + base));
    for (std::size_t k = 0; k < w; ++k) CHECK(d[k] == static_cast<double>(extremes[base + k]));
  }
  // round(z 2^64) mod 2^64 for values pre-scaled by 2^-64.
  const std::pair<double, Torus> cases[] = {
      {0.5, Torus{1} << 63},                   // 2^63: the out-of-range corner
      {-0.5, Torus{1} << 63},                  // -2^63
      {0.75, Torus{0xc000000000000000}},       // -2^62
      {3.25, Torus{1} << 62},                  // reduction of a large value
      {-1e30, 0},                              // a multiple of 2^64
      {3.4 * 0x1p-64, 3},                      // rounding of a small value
      {-2.6 * 0x1p-64, static_cast<Torus>(-3)},
      {0x1p40 + 0.125, Torus{1} << 61},        // 2^104 + 2^61
      {(0x1p52 + 1) * 0x1p-64, (Torus{1} << 52) + 1},
      {-0.25 - 0x1p-50, static_cast<Torus>(-(std::int64_t{1} << 62) - 16384)},
  };
  std::vector<double> z;
  std::vector<Torus> expected;
  for (const auto& [value, result] : cases) z.push_back(value), expected.push_back(result);
  while (z.size() % w) z.push_back(0.0), expected.push_back(0);
  std::vector<Torus> out(z.size()), added(z.size(), 5);
  for (std::size_t j = 0; j < z.size(); j += w) {
    Isa::store_torus(out.data() + j, Isa::load(z.data() + j));
    Isa::add_torus(added.data() + j, Isa::load(z.data() + j));
  }
  for (std::size_t j = 0; j < z.size(); ++j) {
    INFO("z = " << z[j]);
    CHECK(out[j] == expected[j]);
    CHECK(added[j] == expected[j] + 5);
    CHECK(fhetensor::fft::detail::torus_from_scaled(z[j]) == expected[j]);
  }
}

TEST_CASE("FourierPolynomial storage", "[fft]") {
  FourierPolynomial p(1024);
  CHECK(p.polynomial_size() == 1024);
  const auto v = p.view();
  CHECK(v.size == 512);
  CHECK(reinterpret_cast<std::uintptr_t>(v.re) % 64 == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(v.im) % 64 == 0);
  for (std::size_t k = 0; k < v.size; ++k) CHECK((v.re[k] == 0 && v.im[k] == 0));
  v.re[3] = 1.5;
  v.im[511] = -2.5;
  FourierPolynomial copy = p;
  CHECK(copy.view().re != v.re);
  CHECK(copy.view().re[3] == 1.5);
  CHECK(copy.view().im[511] == -2.5);
  FourierPolynomial moved = std::move(copy);
  CHECK(moved.view().re[3] == 1.5);
  CHECK(copy.polynomial_size() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty
  moved.fill_zero();
  CHECK(moved.view().re[3] == 0);
  const fhetensor::fft::FourierConstView cv = p.view();  // implicit conversion
  CHECK(cv.re[3] == 1.5);
  CHECK_THROWS_AS(FourierPolynomial(1000), std::invalid_argument);
  CHECK_THROWS_AS(NegacyclicFft(3), std::invalid_argument);
  const NegacyclicFft fft(64);
  FourierPolynomial wrong(128);
  IntPoly a(64);
  CHECK_THROWS_AS(fft.forward(a, wrong.view()), std::length_error);
}

TEST_CASE("one transform object serves several threads", "[fft]") {
  const std::size_t n = 2048;
  const NegacyclicFft ours(n);
  const FftwNegacyclicFft fftw(n, FFTW_ESTIMATE);
  std::mt19937_64 rng(9);
  const auto a = random_ints(n, digit_bound, rng);
  const auto b = random_torus(n, rng);
  const auto reference = fft_product(ours, a, b);
  const auto reference_fftw = fft_product(fftw, a, b);
  std::array<bool, 2> same{};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < same.size(); ++t)
    threads.emplace_back([&, t] {
      bool ok = true;
      for (int i = 0; i < 200; ++i)
        ok = ok && fft_product(ours, a, b) == reference && fft_product(fftw, a, b) == reference_fftw;
      same[t] = ok;
    });
  for (auto& th : threads) th.join();
  CHECK(same[0]);
  CHECK(same[1]);
}
