#pragma once
// Helpers shared by the tests: reproducible generators and small statistics.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <random>
#include <span>
#include <vector>

#include <fhetensor/random/csprng.hpp>

namespace fhetensor::testing {

/// A reproducible CSPRNG for tests (keys in tests may be deterministic; the library's
/// default is Csprng::from_os_entropy()).
inline Csprng seeded_rng(std::uint64_t seed) {
  Csprng::Seed s{};
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seed >> (8 * i));
  s[31] = 0xF7;
  return Csprng(s);
}

/// A fresh folder, removed afterwards. Its name is random because ctest -j runs test
/// cases side by side, each in its own process.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "fhetensor_test_") {
    std::random_device entropy;
    do {
      path = std::filesystem::temp_directory_path() / (prefix + std::to_string(entropy()));
    } while (!std::filesystem::create_directory(path));
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Signed error of a torus value against its expectation.
inline double torus_error(std::uint64_t phase, std::uint64_t expected) {
  return static_cast<double>(static_cast<std::int64_t>(phase - expected));
}

struct Moments {
  double mean = 0, variance = 0;
};
inline Moments moments(std::span<const double> xs) {
  Moments m;
  for (double x : xs) m.mean += x;
  m.mean /= static_cast<double>(xs.size());
  for (double x : xs) m.variance += (x - m.mean) * (x - m.mean);
  m.variance /= static_cast<double>(xs.size() - 1);
  return m;
}

/// A random table of 2^precision outputs, each in [0, 2^output_precision).
inline std::vector<std::int64_t> random_table(int precision, int output_precision, std::mt19937_64& gen) {
  std::vector<std::int64_t> t(std::size_t{1} << precision);
  for (auto& v : t) v = static_cast<std::int64_t>(gen() % (std::uint64_t{1} << output_precision));
  return t;
}

}  // namespace fhetensor::testing
