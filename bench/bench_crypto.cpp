// Benchmarks of the TFHE operators for every precision of the menu (2^-64 sets):
// external_product/P, blind_rotate/P, keyswitch/P, pbs/P (bootstrap: mod switch, blind
// rotation, sample extraction), ks_pbs/P (key switch + bootstrap), keygen/P, and
// pbs_throughput/P on 1 and 2 threads; ks_pbs_batch/<set>/B, keyswitch_batch/<set>/B. Key sizes are reported as counters of keygen/P.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <typeindex>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

namespace {

template <TfheInstance I>
struct Fixture {
  Csprng rng = Csprng::from_os_entropy();
  SecretKeys<I> secret = generate_secret_keys<I>(rng);
  EvaluationKeys<I> eval = generate_evaluation_keys<I>(secret, rng);
  LweCiphertext<I> input = encrypt_lwe(secret.big(), Encoding{4}.encode(3), rng);
  LweCiphertext<I, SmallKey> small_input = keyswitch(input, eval.keyswitch);
  LookupTable<I> table{[](std::int64_t m) { return (m * m) % 2; }, Encoding{1}, Encoding{1}};
};

/// Keys are generated once per instance and shared by the precisions that use it.
template <TfheInstance I>
Fixture<I>& fixture() {
  static std::mutex mutex;
  static std::unique_ptr<Fixture<I>> instance;
  std::lock_guard lock(mutex);
  if (!instance) instance = std::make_unique<Fixture<I>>();
  return *instance;
}

template <int P>
void register_precision() {
  using I = typename params_for<P>::instance;
  const std::string p = std::to_string(P);
  // Slow sets get fewer iterations so the whole run stays within minutes.
  const int iterations = I::polynomial_size >= 16384 ? 3 : 0;
  auto limit = [&](benchmark::internal::Benchmark* b) {
    b->Unit(benchmark::kMillisecond);
    if (iterations) b->Iterations(iterations);
    return b;
  };

  limit(benchmark::RegisterBenchmark(("external_product/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    BlindRotationWorkspace<I> ws;
    multiply_by_monomial(f.table.polynomial(), 0, ws.accumulator.body());
    for (auto _ : state) cmux_rotate_assign(ws, f.eval.bootstrap, 0, 17);
  }))->Unit(benchmark::kMicrosecond);

  limit(benchmark::RegisterBenchmark(("blind_rotate/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    BlindRotationWorkspace<I> ws;
    for (auto _ : state) blind_rotate(ws, f.small_input, f.table.polynomial(), f.eval.bootstrap);
  }));

  limit(benchmark::RegisterBenchmark(("keyswitch/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    LweCiphertext<I, SmallKey> out;
    for (auto _ : state) {
      keyswitch_into(out, f.input, f.eval.keyswitch);
      benchmark::DoNotOptimize(out.body());
    }
  }));

  limit(benchmark::RegisterBenchmark(("pbs/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    BlindRotationWorkspace<I> ws;
    LweCiphertext<I> out;
    for (auto _ : state) bootstrap_into(out, f.small_input, f.table, f.eval.bootstrap, ws);
  }));

  limit(benchmark::RegisterBenchmark(("ks_pbs/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    PbsWorkspace<I> ws;
    LweCiphertext<I> out;
    for (auto _ : state) apply_lookup_table_into(out, f.input, f.table, f.eval, ws);
  }));

  // Independent bootstraps on 1 or 2 threads: items_per_second is the throughput.
  limit(benchmark::RegisterBenchmark(("pbs_throughput/" + p).c_str(), [](benchmark::State& state) {
    auto& f = fixture<I>();
    BlindRotationWorkspace<I> ws;
    LweCiphertext<I> out;
    for (auto _ : state) bootstrap_into(out, f.small_input, f.table, f.eval.bootstrap, ws);
    state.SetItemsProcessed(state.iterations());
  }))->Threads(1)->Threads(2)->UseRealTime();

  limit(benchmark::RegisterBenchmark(("keygen/" + p).c_str(), [](benchmark::State& state) {
    auto rng = Csprng::from_os_entropy();
    for (auto _ : state) {
      auto secret = generate_secret_keys<I>(rng);
      auto eval = generate_evaluation_keys<I>(secret, rng);
      benchmark::DoNotOptimize(eval.keyswitch.data().data());
      state.counters["bootstrap_key_MiB"] = static_cast<double>(eval.bootstrap.size_bytes()) / (1 << 20);
      state.counters["keyswitch_key_MiB"] = static_cast<double>(eval.keyswitch.data().size_bytes()) / (1 << 20);
    }
  }))->Iterations(1);
}

// ks_pbs on every instance of the menu, by name: the costs compiler/cost_model.hpp uses.
void register_menu() {
  for (std::size_t i = 0; i < menu_size; ++i)
    with_menu_instance(i, []<class I>(std::type_identity<I>) {
      auto* b = benchmark::RegisterBenchmark(("ks_pbs_set/" + std::string(I::name)).c_str(), [](benchmark::State& state) {
        auto& f = fixture<I>();
        PbsWorkspace<I> ws;
        LweCiphertext<I> out;
        for (auto _ : state) apply_lookup_table_into(out, f.input, f.table, f.eval, ws);
      });
      b->Unit(benchmark::kMillisecond);
      if (I::polynomial_size >= 16384) b->Iterations(3);
    });
}

// Seconds per item when each iteration handles `items`; with several threads their rates
// add up, so this is the wall time per item of all threads together.
benchmark::Counter time_per_item(const benchmark::State& state, std::size_t items) {
  return benchmark::Counter(static_cast<double>(state.iterations() * items),
                            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// ks_pbs_batch/<set>/B: B key switches + bootstraps with one pass over each key
// (apply_lookup_tables_into); per_PBS is the time of one. keyswitch_batch/<set>/B: the
// key switches alone (keyswitch_batch_into), per_KS the time of one. Encrypted execution runs
// batches of 4: compiler/cost_model.hpp takes its costs from ks_pbs_batch/<set>/4.
template <TfheInstance I>
void register_batches(std::initializer_list<std::size_t> sizes) {
  for (std::size_t batch : sizes) {
    auto* b = benchmark::RegisterBenchmark(
        ("ks_pbs_batch/" + std::string(I::name) + "/" + std::to_string(batch)).c_str(), [batch](benchmark::State& state) {
          auto& f = fixture<I>();
          PbsBatchWorkspace<I> ws(batch);
          std::vector<LweCiphertext<I>> in(batch, f.input), out(batch);
          std::vector<const LookupTable<I>*> tables(batch, &f.table);
          for (auto _ : state) apply_lookup_tables_into<I>(out, in, tables, f.eval, ws);
          state.counters["per_PBS"] = time_per_item(state, batch);
        });
    b->Unit(benchmark::kMillisecond);
    if (I::polynomial_size >= 16384) b->Iterations(2);
    // Both cores, each on its own batches, as encrypted execution runs them.
    if (batch == 4) b->Threads(1)->Threads(2)->UseRealTime();
    benchmark::RegisterBenchmark(
        ("keyswitch_batch/" + std::string(I::name) + "/" + std::to_string(batch)).c_str(), [batch](benchmark::State& state) {
          auto& f = fixture<I>();
          std::vector<LweCiphertext<I>> in(batch, f.input);
          std::vector<LweCiphertext<I, SmallKey>> out(batch);
          for (auto _ : state) {
            keyswitch_batch_into<I>(out, in, f.eval.keyswitch);
            benchmark::DoNotOptimize(out[0].body());
          }
          state.counters["per_KS"] = time_per_item(state, batch);
        })->Unit(benchmark::kMillisecond);
  }
}

const bool registered = [] {
  [&]<int... I>(std::integer_sequence<int, I...>) { (register_precision<I + 1>(), ...); }(std::make_integer_sequence<int, 8>{});
  register_menu();
  for (std::size_t i = 0; i < menu_size; ++i)
    with_menu_instance(i, []<class I>(std::type_identity<I>) {
      if constexpr (std::is_same_v<I, TfheN2048> || std::is_same_v<I, TfheN2048Quiet> || std::is_same_v<I, TfheN4096> ||
                    std::is_same_v<I, TfheN4096Quiet>)
        register_batches<I>({1, 2, 4, 8});
      else
        register_batches<I>({4});
    });
  return true;
}();

}  // namespace
