// LWE encryption, decryption and linear operations, under both keys of real parameter sets.
#include <catch2/catch.hpp>

#include <random>

#include <fhetensor/algorithms/lwe_encryption.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/crypto/encoding.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using testing::seeded_rng;

TEMPLATE_TEST_CASE("LWE round trips and linear operations decrypt to the clear result", "[lwe]", params_for<1>,
                   params_for<3>, params_for<4>, params_for<6>, params_for<8>) {
  using P = TestType;
  const Encoding e{P::precision};
  const std::int64_t modulus = static_cast<std::int64_t>(e.message_modulus());
  std::mt19937_64 gen(42);
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    auto rng = seeded_rng(seed);
    const auto big = generate_lwe_secret_key<P, BigKey>(rng);
    const auto small = generate_lwe_secret_key<P, SmallKey>(rng);
    auto check_key = [&](const auto& key) {
      for (int trial = 0; trial < 50; ++trial) {
        const std::int64_t a = static_cast<std::int64_t>(gen() % modulus);
        const std::int64_t b = static_cast<std::int64_t>(gen() % modulus);
        const std::int64_t s = static_cast<std::int64_t>(gen() % 7) - 3;
        const auto ca = encrypt_lwe(key, e.encode(a), rng);
        const auto cb = encrypt_lwe(key, e.encode(b), rng);
        auto dec = [&](const auto& ct) { return static_cast<std::int64_t>(e.decode(decrypt_phase(key, ct))); };
        auto mod = [&](std::int64_t v) { return ((v % modulus) + modulus) % modulus; };
        REQUIRE(dec(ca) == a);
        REQUIRE(dec(ca + cb) == mod(a + b));
        REQUIRE(dec(ca - cb) == mod(a - b));
        REQUIRE(dec(-ca) == mod(-a));
        REQUIRE(dec(ca * s) == mod(a * s));
        REQUIRE(dec(s * ca + cb) == mod(s * a + b));
        auto shifted = ca;
        add_plaintext_assign(shifted, e.encode(b));
        REQUIRE(dec(shifted) == mod(a + b));
        REQUIRE(dec(trivial_lwe<P, typename std::remove_cvref_t<decltype(key)>::key_kind>(e.encode(b))) == b);
      }
    };
    check_key(big);
    check_key(small);
  }
}

TEST_CASE("encryption masks are fresh: equal plaintexts give different ciphertexts", "[lwe]") {
  using P = params_for<4>;
  auto rng = seeded_rng(9);
  const auto key = generate_lwe_secret_key<P, BigKey>(rng);
  const auto x = encrypt_lwe(key, 0, rng), y = encrypt_lwe(key, 0, rng);
  CHECK(!(x == y));
}

TEST_CASE("generated binary keys have about half their bits set", "[lwe]") {
  auto rng = seeded_rng(10);
  const auto key = generate_lwe_secret_key<params_for<4>, BigKey>(rng);
  for (Torus b : key.bits()) REQUIRE(b <= 1);
  CHECK(key.weight() == Approx(0.5).margin(0.05));
}
