// Measured noise variances against the formulas of <fhetensor/algorithms/noise_formulas.hpp>:
// within 10%, over thousands of samples, using the keys' actual Hamming weights.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include <fhetensor/algorithms/noise_formulas.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/algorithms/pbs.hpp>
#include <fhetensor/core/parallel.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using testing::seeded_rng;
using testing::torus_error;

namespace {

template <TfheInstance I>
void check_fresh_noise() {
  auto rng = seeded_rng(100);
  const auto keys = generate_secret_keys<I>(rng);
  const auto big = keys.big();
  std::vector<double> big_errors(20000), small_errors(20000);
  for (auto& e : big_errors) e = torus_error(decrypt_phase(big, encrypt_lwe(big, 12345, rng)), 12345);
  for (auto& e : small_errors) e = torus_error(decrypt_phase(keys.small, encrypt_lwe(keys.small, 0, rng)), 0);
  INFO(I::name);
  CHECK(testing::moments(big_errors).variance == Approx(noise::fresh_variance<I>()).epsilon(0.10));
  CHECK(testing::moments(small_errors).variance == Approx(I::lwe_noise.variance()).epsilon(0.10));
}

/// Key switching and modulus switching, measured on the same 4000 key-switched samples.
template <TfheInstance I>
void check_keyswitch_and_modulus_switch_noise() {
  constexpr std::size_t N = I::polynomial_size;
  auto rng = seeded_rng(101);
  const auto keys = generate_secret_keys<I>(rng);
  const auto ksk = generate_keyswitch_key(keys, rng);
  const auto big = keys.big();
  const std::size_t samples = 4000;
  std::vector<LweCiphertext<I>> inputs;
  for (std::size_t i = 0; i < samples; ++i) inputs.push_back(encrypt_lwe(big, 0, rng));
  std::vector<double> ks_errors(samples), ms_errors(samples);
  parallel_for(samples, [&](std::size_t i, std::size_t) {
    const auto out = keyswitch(inputs[i], ksk);
    const Torus phase = decrypt_phase(keys.small, out);
    ks_errors[i] = torus_error(phase, 0);
    // The mod-switched phase, scaled back to the torus, against the exact phase.
    std::size_t switched = modulus_switch<N>(out.body());
    const auto mask = out.mask();
    for (std::size_t j = 0; j < mask.size(); ++j) switched += (2 * N - modulus_switch<N>(mask[j])) * keys.small.bits()[j];
    const Torus rescaled = static_cast<Torus>(switched % (2 * N)) << (64 - std::countr_zero(2 * N));
    ms_errors[i] = torus_error(rescaled, phase);
  });
  INFO(I::name);
  const double ks_expected = noise::fresh_variance<I>() + noise::keyswitch_variance<I>(big.weight());
  CHECK(testing::moments(ks_errors).variance == Approx(ks_expected).epsilon(0.10));
  CHECK(testing::moments(ms_errors).variance ==
        Approx(noise::modulus_switch_variance<I>(keys.small.weight())).epsilon(0.10));
}

/// Bootstrap output noise over independent bootstraps. Coefficients of one accumulator
/// are correlated (the binary key has mean 1/2), so each bootstrap gives one sample: the
/// extracted coefficient 0.
template <TfheInstance I>
void check_bootstrap_noise(std::size_t bootstraps) {
  auto rng = seeded_rng(102);
  const auto keys = generate_secret_keys<I>(rng);
  const auto eval = generate_evaluation_keys<I>(keys, rng);
  const auto big = keys.big();
  std::mt19937_64 gen(5);
  const Encoding e{3};
  const auto values = testing::random_table(3, 3, gen);
  const LookupTable<I> table(values, e, e);

  std::vector<LweCiphertext<I, SmallKey>> inputs;
  for (std::size_t b = 0; b < bootstraps; ++b) inputs.push_back(encrypt_lwe(keys.small, e.encode(static_cast<std::int64_t>(b % 8)), rng));
  std::vector<double> errors(bootstraps);
  std::vector<BlindRotationWorkspace<I>> workspaces(default_thread_count());
  parallel_for(bootstraps, [&](std::size_t b, std::size_t worker) {
    LweCiphertext<I> out;
    bootstrap_into(out, inputs[b], table, eval.bootstrap, workspaces[worker]);
    errors[b] = torus_error(decrypt_phase(big, out), e.encode(values[b % 8]));
  });
  const auto m = testing::moments(errors);
  const double expected = noise::bootstrap_variance<I>(keys.small.weight(), big.weight());
  INFO(I::name << ", " << bootstraps << " bootstraps, log2 variance measured " << std::log2(m.variance) << ", formula "
               << std::log2(expected));
  CHECK(m.variance == Approx(expected).epsilon(0.10));
  CHECK(std::abs(m.mean) < 5.0 * std::sqrt(expected / static_cast<double>(bootstraps)));
}

}  // namespace

TEST_CASE("fresh encryption noise matches the distribution's variance", "[noise]") {
  check_fresh_noise<TfheN2048>();
  check_fresh_noise<TfheN8192>();
}

TEST_CASE("key-switching and modulus-switching noise match the formulas", "[noise]") {
  check_keyswitch_and_modulus_switch_noise<TfheN1024>();
  check_keyswitch_and_modulus_switch_noise<TfheN2048>();
  check_keyswitch_and_modulus_switch_noise<TfheN4096>();
}

TEST_CASE("bootstrap noise matches the formula", "[noise]") {
  check_bootstrap_noise<TfheN1024>(3000);
  check_bootstrap_noise<TfheN2048>(3000);
  check_bootstrap_noise<TfheN4096>(1500);
}

TEST_CASE("bootstrap noise of the quiet variants matches the formula", "[noise]") {
  check_bootstrap_noise<TfheN2048Quiet>(1000);
}
