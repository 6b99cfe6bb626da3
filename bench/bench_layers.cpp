// Benchmarks of single DSL layers in encrypted (execute) mode, named layer/<kind>/<shape>:
//   layer/dense/784x128          dense 784 -> 128 on 4-bit inputs, 4-bit signed weights (linear only)
//   layer/conv2d/16x14x14_k3_16  conv2d 3x3, 16 -> 16 channels on 14x14, padding 1 (linear only)
//   layer/depthwise/32x14x14_k3  depthwise conv2d 3x3 (groups = 32) on 32x14x14, padding 1 (linear only)
//   layer/relu/128               relu on 128 signed 4-bit values: 128 PBS of a 4-bit table
//   layer/avg_pool/16x14x14_k2   avg_pool2d 2x2 stride 2 on 16x14x14: window sums + a division table
// Each times run() only, on 2 threads (layer/relu/128/threads:1 on one): the model is
// compiled, keys generated (once per parameter set, shared by every layer on that set)
// and the inputs encrypted before the timed loop. The label is the parameter set, the
// PBS counter the model's bootstrap count (items_per_second is then PBS/s). The first
// iteration's output is decrypted after the loop and checked against run_clear.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

namespace {

/// A clear tensor of the given shape with values drawn uniformly from [lo, hi]
/// (fixed seed: every run benchmarks the same weights and inputs).
ClearTensor random_tensor(const Shape& shape, std::int64_t lo, std::int64_t hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> value(lo, hi);
  ClearTensor t = ClearTensor::from_shape(shape);
  for (auto& v : t) v = value(rng);
  return t;
}

/// Keys are generated once per parameter set (keygen takes seconds) and shared by every
/// layer whose model compiles to that set.
ClientKeys& keys_for(const CompiledModel& model) {
  static std::mutex mutex;
  static std::map<std::size_t, ClientKeys> keys;
  std::lock_guard lock(mutex);
  auto it = keys.find(model.instance);
  if (it == keys.end()) {
    Csprng rng = Csprng::from_os_entropy();
    it = keys.emplace(model.instance, ClientKeys::generate(model, rng)).first;
  }
  return it->second;
}

/// One layer, compiled, with its clear and encrypted inputs and the expected output.
struct Layer {
  CompiledModel model;
  std::vector<ClearTensor> inputs;
  std::vector<ClearTensor> expected;  // run_clear on the inputs
  std::vector<CiphertextTensor> encrypted;
};

struct LayerSpec {
  std::function<CompiledModel()> compile;
  std::function<std::vector<ClearTensor>()> inputs;
};

/// Built on first use and kept for the repetitions (and the threads:1 variant).
Layer& layer(const std::string& key, const LayerSpec& spec) {
  static std::map<std::string, std::unique_ptr<Layer>> layers;
  auto& slot = layers[key];
  if (!slot) {
    auto l = std::make_unique<Layer>(Layer{spec.compile(), spec.inputs(), {}, {}});
    l->expected = run_clear(l->model, l->inputs);
    l->encrypted = keys_for(l->model).encrypt(l->model, l->inputs);
    slot = std::move(l);
  }
  return *slot;
}

void run_layer(benchmark::State& state, const std::string& key, const LayerSpec& spec, std::size_t threads) {
  Layer& l = layer(key, spec);
  const ClientKeys& keys = keys_for(l.model);
  const ServerKeys& server = *keys.server_keys();
  RunOptions options;
  options.threads = threads;
  std::optional<std::vector<CiphertextTensor>> first;
  for (auto _ : state) {
    auto out = run(l.model, l.encrypted, server, options);
    benchmark::DoNotOptimize(out.data());
    if (!first) first = std::move(out);
  }
  const std::size_t bootstraps = l.model.statistics.bootstraps;
  state.SetLabel(l.model.instance_name);
  state.counters["PBS"] = static_cast<double>(bootstraps);
  if (bootstraps) state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(bootstraps));

  // Outside the timed loop: the encrypted result must equal the clear computation.
  if (first) {
    const auto got = keys.decrypt(l.model, *first);
    std::size_t wrong = 0, total = 0;
    for (std::size_t k = 0; k < got.size(); ++k) {
      if (got[k].shape() != l.expected[k].shape()) {
        state.SkipWithError("decrypted output has the wrong shape");
        return;
      }
      for (std::size_t i = 0; i < got[k].size(); ++i) wrong += got[k].flat(i) != l.expected[k].flat(i);
      total += got[k].size();
    }
    if (wrong) {
      static std::string message;  // SkipWithError keeps the pointer (benchmark 1.7)
      message = "decrypt(run(...)) != run_clear(...) in " + std::to_string(wrong) + " of " + std::to_string(total) +
                " elements";
      state.SkipWithError(message.c_str());
    }
  }
}

void register_layer(const std::string& name, const LayerSpec& spec, std::size_t threads = 2) {
  const std::string key = name;
  const std::string full = threads == 2 ? name : name + "/threads:" + std::to_string(threads);
  benchmark::RegisterBenchmark(full.c_str(), [key, spec, threads](benchmark::State& state) {
    run_layer(state, key, spec, threads);
  })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1)
      ->Repetitions(3);
}

const Conv2dOptions same_3x3{.padding = {1, 1, 1, 1}};

const bool registered = [] {
  register_layer("layer/dense/784x128",
                 {[] {
                    const ClearTensor w = random_tensor({784, 128}, -8, 7, 1);
                    const ClearTensor b = random_tensor({128}, -8, 7, 2);
                    return compile([&](auto x) { return dense(x, w, b); }, input<Tensor<int, 1>, Bits<4>>({784}),
                                   CompileOptions{});
                  },
                  [] { return std::vector<ClearTensor>{random_tensor({784}, 0, 15, 3)}; }});

  register_layer("layer/conv2d/16x14x14_k3_16",
                 {[] {
                    const ClearTensor w = random_tensor({16, 16, 3, 3}, -8, 7, 11);
                    const ClearTensor b = random_tensor({16}, -8, 7, 12);
                    return compile([&](auto x) { return conv2d(x, w, b, same_3x3); },
                                   input<Tensor<int, 3>, Bits<4>>({16, 14, 14}), CompileOptions{});
                  },
                  [] { return std::vector<ClearTensor>{random_tensor({16, 14, 14}, 0, 15, 13)}; }});

  register_layer("layer/depthwise/32x14x14_k3",
                 {[] {
                    const ClearTensor w = random_tensor({32, 1, 3, 3}, -8, 7, 21);
                    const ClearTensor b = random_tensor({32}, -8, 7, 22);
                    Conv2dOptions o = same_3x3;
                    o.groups = 32;
                    return compile([&](auto x) { return conv2d(x, w, b, o); },
                                   input<Tensor<int, 3>, Bits<4>>({32, 14, 14}), CompileOptions{});
                  },
                  [] { return std::vector<ClearTensor>{random_tensor({32, 14, 14}, 0, 15, 23)}; }});

  const LayerSpec relu_spec{
      [] { return compile([](auto x) { return relu(x); }, input<Tensor<int, 1>, SignedBits<4>>({128}), CompileOptions{}); },
      [] { return std::vector<ClearTensor>{random_tensor({128}, -8, 7, 31)}; }};
  register_layer("layer/relu/128", relu_spec);
  register_layer("layer/relu/128", relu_spec, 1);

  register_layer("layer/avg_pool/16x14x14_k2",
                 {[] {
                    const Window2d window{.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
                    return compile([&](auto x) { return avg_pool2d(x, window); },
                                   input<Tensor<int, 3>, Bits<4>>({16, 14, 14}), CompileOptions{});
                  },
                  [] { return std::vector<ClearTensor>{random_tensor({16, 14, 14}, 0, 15, 41)}; }});
  return true;
}();

}  // namespace
