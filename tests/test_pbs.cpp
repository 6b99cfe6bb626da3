// Programmable bootstrapping applies any lookup table: every input of random tables, at
// every precision of the menu (both failure targets), over several fresh keys.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/algorithms/pbs.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/fft/fftw_negacyclic_fft.hpp>

#include "insecure_toy_parameters.hpp"
#include "test_support.hpp"

using namespace fhetensor;
using testing::seeded_rng;

namespace {

/// Runs a random table over every input of each precision, with `key_count` fresh keys;
/// returns the number of wrong outputs (each is also reported).
template <TfheInstance I, class Fft = fft::NegacyclicFft>
void check_every_input(std::initializer_list<int> precisions, int key_count, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  for (int key_index = 0; key_index < key_count; ++key_index) {
    auto rng = seeded_rng(seed * 1000 + static_cast<std::uint64_t>(key_index));
    const auto keys = generate_secret_keys<I>(rng);
    const auto eval = generate_evaluation_keys<I, Fft>(keys, rng, std::make_shared<Fft>(I::polynomial_size));
    const auto big = keys.big();
    for (int precision : precisions) {
      // Output precision differs from the input's in half the cases.
      const int out_precision = (gen() & 1) ? precision : 1 + static_cast<int>(gen() % 8);
      const Encoding in{precision}, out{out_precision};
      const auto values = testing::random_table(precision, out_precision, gen);
      const LookupTable<I> table(values, in, out);
      const std::size_t count = in.message_modulus();
      std::vector<LweCiphertext<I>> inputs;
      for (std::size_t m = 0; m < count; ++m) inputs.push_back(encrypt_lwe(big, in.encode(static_cast<std::int64_t>(m)), rng));
      std::vector<LweCiphertext<I>> outputs(count);
      std::vector<PbsWorkspace<I>> workspaces(default_thread_count());
      parallel_for(count, [&](std::size_t m, std::size_t worker) {
        apply_lookup_table_into(outputs[m], inputs[m], table, eval, workspaces[worker]);
      });
      for (std::size_t m = 0; m < count; ++m) {
        INFO(I::name << " key " << key_index << ": " << precision << "-bit table -> " << out_precision
                     << " bits, input " << m);
        REQUIRE(out.decode(decrypt_phase(big, outputs[m])) == static_cast<std::uint64_t>(values[m]));
      }
    }
  }
}

}  // namespace

// Each instance serves the precisions the menu gives it at 2^-64 or 2^-128
// (tests/test_params.cpp pins that mapping).
TEST_CASE("PBS on toy instances (insecure; logic only)", "[pbs]") {
  check_every_input<testing::InsecureToyN512>({1, 2, 3, 4}, 4, 1);
  check_every_input<testing::InsecureToyK2N256>({1, 2, 3}, 4, 2);
}
TEST_CASE("PBS n918-k2-N1024: precisions 1-3", "[pbs]") { check_every_input<TfheN1024>({1, 2, 3}, 3, 3); }
TEST_CASE("PBS n918-k1-N2048: precisions 3-4", "[pbs]") { check_every_input<TfheN2048>({3, 4}, 3, 4); }
TEST_CASE("PBS n918-k1-N2048-quiet: precisions 3-4", "[pbs]") { check_every_input<TfheN2048Quiet>({3, 4}, 2, 10); }
TEST_CASE("PBS n954-k1-N4096-quiet: precision 5", "[pbs]") { check_every_input<TfheN4096Quiet>({5}, 2, 11); }
TEST_CASE("PBS n954-k1-N4096: precisions 4-5", "[pbs]") { check_every_input<TfheN4096>({4, 5}, 3, 5); }
TEST_CASE("PBS n1036-k1-N8192: precisions 5-6", "[pbs]") { check_every_input<TfheN8192>({5, 6}, 2, 6); }
TEST_CASE("PBS n1089-k1-N16384: precisions 6-7", "[pbs][slow]") { check_every_input<TfheN16384>({6, 7}, 2, 7); }
// One key and the menu's 8 bits only (7 bits take this set at 2^-128 only): a bootstrap
// at N = 65536 takes seconds and the keys 8.4 GB; this is CI's longest test.
TEST_CASE("PBS n1121-k1-N65536: precision 8", "[pbs][slow]") { check_every_input<TfheN65536>({8}, 1, 8); }

TEST_CASE("PBS with the FFTW backend gives the same results", "[pbs][fftw]") {
  check_every_input<TfheN2048, fft::FftwNegacyclicFft>({4}, 2, 9);
}

TEST_CASE("a lookup table can be a C++ function", "[pbs]") {
  using I = TfheN2048;
  auto rng = seeded_rng(77);
  const auto keys = generate_secret_keys<I>(rng);
  const auto eval = generate_evaluation_keys<I>(keys, rng);
  const Encoding e{4};
  const LookupTable<I> relu_minus_8([](std::int64_t m) { return m >= 8 ? m - 8 : 0; }, e, e);
  PbsWorkspace<I> ws;
  for (std::int64_t m = 0; m < 16; ++m) {
    const auto out = apply_lookup_table(encrypt_lwe(keys.big(), e.encode(m), rng), relu_minus_8, eval, ws);
    REQUIRE(e.decode(decrypt_phase(keys.big(), out)) == static_cast<std::uint64_t>(m >= 8 ? m - 8 : 0));
  }
}

TEST_CASE("a batch of bootstraps equals one bootstrap at a time, bit for bit", "[pbs]") {
  using I = testing::InsecureToyN512;
  auto rng = seeded_rng(78);
  std::mt19937_64 gen(78);
  const auto keys = generate_secret_keys<I>(rng);
  const auto eval = generate_evaluation_keys<I>(keys, rng);
  const Encoding e{3};
  std::vector<LookupTable<I>> tables;
  for (int t = 0; t < 3; ++t) tables.emplace_back(testing::random_table(3, 3, gen), e, e);
  PbsWorkspace<I> single;
  PbsBatchWorkspace<I> batch(5);
  for (std::size_t n : {1, 2, 5}) {
    std::vector<LweCiphertext<I>> in, out(n);
    std::vector<const LookupTable<I>*> chosen;
    for (std::size_t b = 0; b < n; ++b) {
      in.push_back(encrypt_lwe(keys.big(), e.encode(static_cast<std::int64_t>(gen() % 8)), rng));
      chosen.push_back(&tables[gen() % tables.size()]);
    }
    apply_lookup_tables_into<I>(out, in, chosen, eval, batch);
    for (std::size_t b = 0; b < n; ++b) {
      const auto alone = apply_lookup_table(in[b], *chosen[b], eval, single);
      INFO("batch of " << n << ", element " << b);
      CHECK(std::equal(alone.data().begin(), alone.data().end(), out[b].data().begin()));
    }
  }
  std::vector<LweCiphertext<I>> six(6);
  std::vector<const LookupTable<I>*> six_tables(6, &tables[0]);
  CHECK_THROWS_WITH(apply_lookup_tables_into<I>(six, six, six_tables, eval, batch), Catch::Contains("workspace of 5"));
}

TEST_CASE("a table of the wrong size is a clear error", "[pbs]") {
  const std::vector<std::int64_t> three(3, 0);
  CHECK_THROWS_WITH((LookupTable<TfheN2048>(three, Encoding{2}, Encoding{2})),
                    Catch::Contains("needs 4 values, got 3"));
  CHECK_THROWS_WITH(([] { return LookupTable<testing::InsecureToyK2N256>([](auto m) { return m; }, Encoding{8}, Encoding{8}); }()),
                    Catch::Contains("needs N >= 512"));
}
