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
