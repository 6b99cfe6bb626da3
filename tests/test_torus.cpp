// Torus helpers, encoding and gadget decomposition.
#include <catch2/catch.hpp>

#include <random>

#include <fhetensor/algorithms/decomposition.hpp>
#include <fhetensor/core/torus.hpp>
#include <fhetensor/crypto/encoding.hpp>

using namespace fhetensor;

TEST_CASE("encode/decode round trips every message at every precision", "[torus]") {
  for (int p = 1; p <= 8; ++p) {
    const Encoding e{p};
    for (std::int64_t m = 0; m < (1 << p); ++m) {
      CHECK(e.decode(e.encode(m)) == static_cast<std::uint64_t>(m));
      // Errors below half a step decode to the same message, both ways.
      const Torus margin = e.delta() / 2 - 1;
      CHECK(e.decode(e.encode(m) + margin) == static_cast<std::uint64_t>(m));
      CHECK(e.decode(e.encode(m) - margin) == static_cast<std::uint64_t>(m));
    }
    CHECK(e.encode(-1) == e.encode((1 << p) - 1));  // messages are taken mod 2^p
  }
}

TEST_CASE("torus_from_real reduces modulo 2^64 and rounds", "[torus]") {
  CHECK(torus_from_real(3.4) == 3u);
  CHECK(torus_from_real(-1.0) == ~Torus{0});
  CHECK(torus_from_real(18446744073709551616.0 + 4096.0) == 4096u);
  CHECK(torus_from_real(-9223372036854775808.0) == Torus{1} << 63);
  CHECK(torus_from_real(9223372036854775808.0) == Torus{1} << 63);
}

template <Decomposition D>
void check_decomposition(std::mt19937_64& gen) {
  INFO("base 2^" << D.base_log << ", " << D.level_count << " levels");
  std::int64_t digits[64];
  for (int trial = 0; trial < 2000; ++trial) {
    const Torus x = gen();
    decompose<D>(x, digits);
    Torus recomposed = 0;
    for (int j = 0; j < D.level_count; ++j) {
      CHECK(digits[j] >= -(std::int64_t{1} << (D.base_log - 1)));
      CHECK(digits[j] < (std::int64_t{1} << (D.base_log - 1)));
      recomposed += static_cast<Torus>(digits[j]) * gadget_value(D, j);
    }
    // The rounding error is at most half the last gadget step.
    const auto error = static_cast<std::int64_t>(x - recomposed);
    const std::int64_t half_step = std::int64_t{1} << (64 - D.precision_bits() - 1);
    REQUIRE(error >= -half_step);
    REQUIRE(error <= half_step);
  }
}

TEST_CASE("balanced decomposition recomposes to the rounded value", "[torus][decomposition]") {
  std::mt19937_64 gen(1);
  check_decomposition<Decomposition{23, 1}>(gen);
  check_decomposition<Decomposition{15, 2}>(gen);
  check_decomposition<Decomposition{4, 4}>(gen);
  check_decomposition<Decomposition{2, 10}>(gen);
  check_decomposition<Decomposition{1, 20}>(gen);
  check_decomposition<Decomposition{3, 7}>(gen);
}
