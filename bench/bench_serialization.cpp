// What a deployment moves and how long loading takes, per parameter set of the menu:
//   server_keys/<set>: deserializing the compressed evaluation keys a client uploads and
//     expanding them (masks regenerated, bootstrapping key to the Fourier domain); counters
//     give the upload's size and the expanded keys' size in MB.
//   upload/<set>: serializing 784 seeded encrypted values (an MNIST image) and loading them
//     back expanded; counters give bytes per element seeded and full.
#include <benchmark/benchmark.h>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/serialization/files.hpp>

using namespace fhetensor;

namespace {

template <TfheInstance I>
void register_set() {
  const std::string name = std::string(I::name);
  benchmark::RegisterBenchmark(("server_keys/" + name).c_str(), [](benchmark::State& state) {
    Csprng rng = Csprng::from_os_entropy();
    const SecretKeys<I> secret = generate_secret_keys<I>(rng);
    const auto bytes = serialize(CompressedServerKeys(generate_compressed_evaluation_keys(secret, rng)));
    for (auto _ : state) benchmark::DoNotOptimize(ServerKeys(deserialize_server_keys(bytes)));
    state.counters["upload_MB"] = static_cast<double>(bytes.size()) / 1e6;
    state.counters["expanded_MB"] = static_cast<double>(CompressedEvaluationKeys<I>::expanded_size_bytes()) / 1e6;
  })->Unit(benchmark::kMillisecond)->Iterations(I::polynomial_size >= 8192 ? 1 : 3)->UseRealTime();

  benchmark::RegisterBenchmark(("upload/" + name).c_str(), [](benchmark::State& state) {
    Csprng rng = Csprng::from_os_entropy();
    const SecretKeys<I> secret = generate_secret_keys<I>(rng);
    const std::size_t row = I::glwe_dimension * I::polynomial_size + 1, count = 784;
    SeededCiphertextTensor t{{1, 1, 28, 28}, menu_index<I>(), row, rng.next_seed(), std::vector<Torus>(count)};
    std::vector<Torus> ct(row);
    for (std::size_t i = 0; i < count; ++i) {
      Csprng masks = t.masks(i);
      encrypt_lwe_into(std::span<Torus>(ct), secret.big().bits(), Torus{i} << 55, I::glwe_noise, masks, rng);
      t.bodies[i] = ct.back();
    }
    std::size_t seeded = 0;
    for (auto _ : state) {
      const auto bytes = serialize(std::vector{t});
      seeded = bytes.size();
      benchmark::DoNotOptimize(deserialize_ciphertexts(bytes));
    }
    state.counters["seeded_B_per_element"] = static_cast<double>(seeded) / static_cast<double>(count);
    state.counters["full_B_per_element"] = static_cast<double>(8 * row);
  })->Unit(benchmark::kMillisecond);
}

const bool registered = [] {
  register_set<TfheN1024>();
  register_set<TfheN2048>();
  register_set<TfheN2048Quiet>();
  register_set<TfheN4096>();
  register_set<TfheN4096Quiet>();
  register_set<TfheN8192>();
  return true;
}();

}  // namespace
