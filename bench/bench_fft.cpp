// Negacyclic FFT benchmarks: ours (NegacyclicFft) against FFTW3 (FftwNegacyclicFft,
// FFTW_MEASURE plans), single thread. docs/fft.md records the figures.
//
//   polymul/<backend>/N      forward(int digits) + forward_torus + fill_zero +
//                            fourier_multiply_add + backward_torus: one negacyclic product
//   fft_forward/<backend>/N  forward() of an integer (digit) polynomial
//   fft_backward/<backend>/N backward_torus()
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <fhetensor/fft/fftw_negacyclic_fft.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>

namespace {

using fhetensor::Torus;
using fhetensor::fft::FftwNegacyclicFft;
using fhetensor::fft::FourierPolynomial;
using fhetensor::fft::NegacyclicFft;

std::vector<std::int64_t> random_digits(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> digit(-(std::int64_t{1} << 22), std::int64_t{1} << 22);
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = digit(rng);
  return v;
}

std::vector<Torus> random_torus(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Torus> v(n);
  for (auto& x : v) x = rng();
  return v;
}

template <class Fft>
void bench_polymul(benchmark::State& state, const Fft& fft) {
  const std::size_t n = fft.polynomial_size();
  const auto digits = random_digits(n, 1);
  const auto torus = random_torus(n, 2);
  std::vector<Torus> out(n);
  FourierPolynomial a(n), b(n), acc(n);
  for (auto _ : state) {
    fft.forward(digits, a.view());
    fft.forward_torus(torus, b.view());
    acc.fill_zero();
    fhetensor::fft::fourier_multiply_add(acc.view(), a.view(), b.view());
    fft.backward_torus(acc.view(), out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}

template <class Fft>
void bench_forward(benchmark::State& state, const Fft& fft) {
  const std::size_t n = fft.polynomial_size();
  const auto digits = random_digits(n, 3);
  FourierPolynomial a(n);
  for (auto _ : state) {
    fft.forward(digits, a.view());
    benchmark::DoNotOptimize(a.view().re);
    benchmark::ClobberMemory();
  }
}

// backward_torus destroys its input. An all-zero spectrum is a fixed point (zeros stay zero),
// so it can be reused without re-copying; on x86 the arithmetic's timing does not depend on
// the values (no subnormals or NaNs occur), so this times the transform alone.
template <class Fft>
void bench_backward(benchmark::State& state, const Fft& fft) {
  const std::size_t n = fft.polynomial_size();
  FourierPolynomial a(n);
  std::vector<Torus> out(n);
  for (auto _ : state) {
    fft.backward_torus(a.view(), out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}

// Plans are built on first use (FFTW_MEASURE takes a while), once per backend and size.
template <class Fft>
const Fft& get(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<const Fft>> cache;
  auto& slot = cache[n];
  if (!slot) slot = std::make_unique<const Fft>(n);
  return *slot;
}

const bool registered = [] {
  for (std::size_t n = 1024; n <= 8192; n *= 2) {
    const std::string size = std::to_string(n);
    benchmark::RegisterBenchmark(("polymul/ours/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_polymul(s, get<NegacyclicFft>(n)); });
    benchmark::RegisterBenchmark(("polymul/fftw/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_polymul(s, get<FftwNegacyclicFft>(n)); });
  }
  for (std::size_t n = 512; n <= 16384; n *= 2) {
    const std::string size = std::to_string(n);
    benchmark::RegisterBenchmark(("fft_forward/ours/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_forward(s, get<NegacyclicFft>(n)); });
    benchmark::RegisterBenchmark(("fft_forward/fftw/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_forward(s, get<FftwNegacyclicFft>(n)); });
    benchmark::RegisterBenchmark(("fft_backward/ours/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_backward(s, get<NegacyclicFft>(n)); });
    benchmark::RegisterBenchmark(("fft_backward/fftw/" + size).c_str(),
                                 [n](benchmark::State& s) { bench_backward(s, get<FftwNegacyclicFft>(n)); });
  }
  return true;
}();

}  // namespace
