// The CSPRNG and the noise samplers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include <fhetensor/random/csprng.hpp>
#include <fhetensor/random/noise_sampler.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using testing::seeded_rng;

TEST_CASE("a seeded stream is reproducible and seeds give distinct streams", "[random]") {
  auto a = seeded_rng(7), b = seeded_rng(7), c = seeded_rng(8);
  std::vector<std::uint64_t> xa(2000), xb(2000), xc(2000);
  a.fill(xa);
  b.fill(xb);
  c.fill(xc);
  CHECK(xa == xb);
  CHECK(xa != xc);
  // Crosses several 4 KiB refills without repeating a block.
  CHECK(std::vector<std::uint64_t>(xa.begin(), xa.begin() + 512) != std::vector<std::uint64_t>(xa.begin() + 512, xa.begin() + 1024));
}

TEST_CASE("OS-seeded generators differ", "[random]") {
  auto a = Csprng::from_os_entropy(), b = Csprng::from_os_entropy();
  CHECK(a.next_u64() != b.next_u64());
}

TEST_CASE("ChaCha20 output matches RFC 8439's keystream for the zero key", "[random]") {
  // RFC 8439 A.1 test vector #1: key = 0, nonce = 0, block counter 0.
  Csprng rng(Csprng::Seed{});
  const std::uint64_t first = rng.next_u64();
  CHECK(first == 0x903df1a0ade0b876ULL);  // bytes 76 b8 e0 ad a0 f1 3d 90, little-endian
}

TEST_CASE("bits are balanced", "[random]") {
  auto rng = seeded_rng(3);
  int ones = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) ones += static_cast<int>(rng.next_bit());
  CHECK(std::abs(ones - n / 2) < 5 * std::sqrt(n / 4.0));
}

TEST_CASE("TUniform samples have the stated support, shape and variance", "[random][noise]") {
  auto rng = seeded_rng(11);
  for (int b : {3, 10, 17, 45}) {
    const TUniform d{b};
    const double bound = std::ldexp(1.0, b);
    std::vector<double> xs(200000);
    int extremes = 0;
    for (auto& x : xs) {
      x = static_cast<double>(static_cast<std::int64_t>(sample_noise(d, rng)));
      REQUIRE(std::abs(x) <= bound);
      extremes += std::abs(x) == bound;
    }
    const auto m = testing::moments(xs);
    INFO("b = " << b);
    CHECK(std::abs(m.mean) < 5 * std::sqrt(d.variance() / xs.size()));
    CHECK(m.variance == Approx(d.variance()).epsilon(0.02));
    if (b == 3) CHECK(extremes == Approx(xs.size() / 16.0).epsilon(0.1));  // 2 * 2^-(b+2)
  }
}

TEST_CASE("TUniform(1) puts the documented mass on each value", "[random][noise]") {
  auto rng = seeded_rng(12);
  std::map<std::int64_t, int> counts;
  const int n = 80000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<std::int64_t>(sample_noise(TUniform{1}, rng))];
  CHECK(counts.size() == 5);
  for (auto [v, c] : counts) CHECK(c == Approx(n * (std::abs(v) == 2 ? 0.125 : 0.25)).epsilon(0.05));
}

TEST_CASE("Gaussian samples have the stated variance", "[random][noise]") {
  auto rng = seeded_rng(13);
  const Gaussian d{std::ldexp(1.0, 40)};
  std::vector<double> xs(200000);
  for (auto& x : xs) x = static_cast<double>(static_cast<std::int64_t>(sample_noise(d, rng)));
  const auto m = testing::moments(xs);
  CHECK(std::abs(m.mean) < 5 * d.standard_deviation / std::sqrt(xs.size()));
  CHECK(m.variance == Approx(d.variance()).epsilon(0.02));
}
