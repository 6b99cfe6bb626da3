// Tutorial 03: a small multilayer perceptron on clear weights, run on encrypted inputs.
// The compiler places one bootstrap per hidden unit (the ReLU, reading the accumulator's
// top bits), chooses the parameter set, and explain() shows the plan. The four run modes
// are compared on the same inputs: float (no rounding), clear integers, simulate (clear
// plus the errors the error probability allows) and execute (encrypted).
//
//   example_03_mlp [images]   (default 4)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <xtensor/xsort.hpp>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

namespace {
Tensor<int, 2> random_weights(std::size_t rows, std::size_t cols, int bound, std::mt19937_64& gen) {
  Tensor<int, 2> w = Tensor<int, 2>::from_shape({rows, cols});
  for (auto& v : w) v = std::uniform_int_distribution<int>(-bound, bound)(gen);
  return w;
}
std::size_t argmax(const auto& t) { return static_cast<std::size_t>(xt::argmax(t)()); }
}  // namespace

int main(int argc, char** argv) {
  const int images = argc > 1 ? std::atoi(argv[1]) : 4;
  std::mt19937_64 gen(3);
  // 4x4 images of 2-bit pixels -> 12 hidden ReLU units -> 3 classes, 3-bit signed weights.
  const Tensor<int, 2> w1 = random_weights(16, 12, 3, gen), w2 = random_weights(12, 3, 3, gen);
  const Tensor<int, 1> b1 = xt::zeros<int>({12}), b2 = {4, 0, -4};
  auto mlp = [&](auto image) {
    auto hidden = relu(dense(flatten(image), w1, b1));
    return dense(hidden, w2, b2);
  };
  // The hidden accumulators span 8 bits; the ReLU reads their top 5 (approximate rounding:
  // inputs next to a rounding boundary may round either way, which simulate reproduces).
  const CompileOptions options{.rounding_bits = 5, .error_probability = 0x1p-40, .rounding = Rounding::approximate};
  const CompiledModel model = compile(mlp, input<Tensor<int, 2>, Bits<2>>({4, 4}), options);
  std::printf("%s\n", explain(model).c_str());

  auto t0 = std::chrono::steady_clock::now();
  ClientKeys keys = ClientKeys::generate(model);
  std::printf("keys for %s generated in %.1f s\n\n", model.instance_name.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  int agree_clear = 0, agree_simulate = 0;
  double seconds = 0;
  for (int i = 0; i < images; ++i) {
    ClearTensor image = ClearTensor::from_shape({4, 4});
    for (auto& p : image) p = std::uniform_int_distribution<int>(0, 3)(gen);
    const auto real = run_float(model, {xt::xarray<double>(xt::cast<double>(image))})[0];
    const auto clear = run_clear(model, {image})[0];
    const auto simulated = simulate(model, {image}, static_cast<std::uint64_t>(i))[0];
    t0 = std::chrono::steady_clock::now();
    const auto encrypted = keys.encrypt(model, {image});  // client
    const auto result = run(model, encrypted, *keys.server_keys(), RunOptions{.progress = terminal_progress_bar()});  // server
    const auto decrypted = keys.decrypt(model, result)[0];  // client
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    agree_clear += decrypted == clear;
    agree_simulate += argmax(decrypted) == argmax(simulated);
    std::printf("image %d: class float %zu, clear %zu, simulate %zu, encrypted %zu (logits %lld %lld %lld)\n", i,
                argmax(real), argmax(clear), argmax(simulated), argmax(decrypted), static_cast<long long>(decrypted(0)),
                static_cast<long long>(decrypted(1)), static_cast<long long>(decrypted(2)));
  }
  std::printf("\n%d/%d encrypted outputs equal the clear computation, %d/%d classes equal simulate's; "
              "%zu PBS per image, %.2f s per image on %zu threads\n",
              agree_clear, images, agree_simulate, images, model.statistics.bootstraps, seconds / images,
              default_thread_count());
  return 0;
}
