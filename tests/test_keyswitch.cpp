// Key switching keeps the message, for every message, over several keys.
#include <catch2/catch.hpp>

#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/keyswitch.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/crypto/encoding.hpp>

#include "insecure_toy_parameters.hpp"
#include "test_support.hpp"

using namespace fhetensor;
using testing::seeded_rng;

TEMPLATE_TEST_CASE("key switching from the big key to the small key keeps every message", "[keyswitch]",
                   (ParameterSet<testing::InsecureToyN512, 4>), params_for<3>, params_for<4>, params_for<5>,
                   params_for<6>) {
  using P = TestType;
  const Encoding e{P::precision};
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    auto rng = seeded_rng(seed);
    const auto keys = generate_secret_keys<P>(rng);
    const auto ksk = generate_keyswitch_key(keys, rng);
    const auto big = keys.big();
    for (std::int64_t m = 0; m < static_cast<std::int64_t>(e.message_modulus()); ++m) {
      const auto in = encrypt_lwe(big, e.encode(m), rng);
      const auto out = keyswitch(in, ksk);
      REQUIRE(e.decode(decrypt_phase(keys.small, out)) == static_cast<std::uint64_t>(m));
    }
  }
}

// The batch walks the key once for up to 8 ciphertexts at a time; 11 crosses that boundary.
TEST_CASE("a batch of key switches equals the formula, bit for bit, for any batch size", "[keyswitch]") {
  using P = ParameterSet<testing::InsecureToyN512, 4>;
  constexpr Decomposition d = P::keyswitch_decomposition;
  auto rng = seeded_rng(31);
  const auto keys = generate_secret_keys<P>(rng);
  const auto ksk = generate_keyswitch_key(keys, rng);
  const Encoding e{P::precision};
  for (std::size_t n : {1, 3, 8, 11}) {
    std::vector<LweCiphertext<P, BigKey>> in;
    for (std::size_t b = 0; b < n; ++b) in.push_back(encrypt_lwe(keys.big(), e.encode(static_cast<std::int64_t>(b % 16)), rng));
    std::vector<LweCiphertext<P, SmallKey>> out(n);
    keyswitch_batch_into<P>(out, in, ksk);
    for (std::size_t b = 0; b < n; ++b) {
      // (0, body) - sum_i sum_j d_ij KSK_ij, written out with no batching and no skipped digits.
      std::vector<Torus> expected(KeySwitchKey<P>::output_size, 0);
      expected.back() = in[b].body();
      for (std::size_t i = 0; i < KeySwitchKey<P>::input_dimension; ++i) {
        std::int64_t digits[64];
        decompose<d>(in[b].mask()[i], digits);
        for (int j = 0; j < d.level_count; ++j) {
          const auto row = ksk.ciphertext(i, static_cast<std::size_t>(j));
          for (std::size_t t = 0; t < expected.size(); ++t) expected[t] -= static_cast<Torus>(digits[j]) * row[t];
        }
      }
      INFO("batch of " << n << ", element " << b);
      CHECK(std::equal(expected.begin(), expected.end(), out[b].data().begin()));
      CHECK(e.decode(decrypt_phase(keys.small, out[b])) == b % 16);
    }
  }
  std::vector<LweCiphertext<P, SmallKey>> too_few(2);
  std::vector<LweCiphertext<P, BigKey>> three(3);
  CHECK_THROWS_WITH(keyswitch_batch_into<P>(too_few, three, ksk), Catch::Contains("as many outputs as inputs"));
}
