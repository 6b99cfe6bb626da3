// Tutorial 06: the client of example_05_server. It fetches the model, makes its keys,
// uploads the evaluation keys (a session), encrypts the inputs, has the server run the
// model while polling its progress, and decrypts the outputs. The secret keys and the
// clear values never leave this process.
//
//   example_06_client <host> <port> [input.npy ...]
//
// One integer .npy file per model input (shape and range of the model's input), or none
// for random valid inputs.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <xtensor/xsort.hpp>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/npy.hpp>
#include <fhetensor/serialization/files.hpp>
#include <fhetensor/server/inference_client.hpp>

using namespace fhetensor;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <class T>
std::string values(const T& tensor) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < tensor.size() && i < 32; ++i) out << (i ? " " : "") << tensor.flat(i);
  if (tensor.size() > 32) out << " ... (" << tensor.size() << " values)";
  out << "]";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: example_06_client <host> <port> [input.npy ...]\n";
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<unsigned short>(std::stoul(argv[2]));

  auto start = Clock::now();
  server::InferenceClient client(host, port);
  const ModelPackage package = client.fetch_model();
  const CompiledModel& model = package.model;
  std::printf("model: %zu inputs, %zu outputs, %zu PBS a run under %s (fetched in %.2f s)\n", model.inputs.size(),
              model.outputs.size(), model.statistics.bootstraps, model.instance_name.c_str(), since(start));

  // The inputs: from .npy files, or random values of each input's range.
  std::vector<ClearTensor> inputs;
  if (argc > 3) {
    if (static_cast<std::size_t>(argc - 3) != model.inputs.size()) {
      std::cerr << "the model takes " << model.inputs.size() << " inputs; " << argc - 3 << " .npy files given\n";
      return 2;
    }
    for (int i = 3; i < argc; ++i) inputs.push_back(io::read_npy_integers(argv[i]));
  } else {
    std::mt19937_64 gen(std::random_device{}());
    for (NodeId id : model.inputs) {
      ClearTensor x = ClearTensor::from_shape(model.graph[id].shape);
      const ValueRange r = model.nodes[id].range;
      for (auto& v : x) v = std::uniform_int_distribution<std::int64_t>(r.lo, r.hi)(gen);
      inputs.push_back(std::move(x));
    }
  }
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const NodeId id = model.inputs[k];
    const Shape shape(inputs[k].shape().begin(), inputs[k].shape().end());
    if (shape != model.graph[id].shape) {
      std::cerr << "input " << k << " has shape " << to_string(shape) << "; the model expects " << to_string(model.graph[id].shape) << "\n";
      return 2;
    }
    for (const std::int64_t v : inputs[k])
      if (!model.nodes[id].range.contains(v)) {
        std::cerr << "input " << k << " holds " << v << ", outside its range " << model.nodes[id].range.to_string() << "\n";
        return 2;
      }
    std::printf("input %zu: %s\n", k, values(inputs[k]).c_str());
  }

  start = Clock::now();
  ClientKeys keys = ClientKeys::generate(model);
  std::printf("keys generated in %.2f s\n", since(start));
  start = Clock::now();
  const CompressedServerKeys server_keys = keys.compressed_server_keys();
  const std::string session = client.open_session(server_keys);
  std::printf("session %.8s... opened: %.1f MB of evaluation keys uploaded and expanded in %.2f s\n", session.c_str(),
              static_cast<double>(serialize(server_keys).size()) / 1e6, since(start));

  const auto encrypted = keys.encrypt_seeded(model, inputs);  // throws on a wrong shape or range
  start = Clock::now();
  // The run on a connection of its own; this one polls the progress meanwhile.
  auto result = std::async(std::launch::async, [&] {
    server::InferenceClient runner(host, port);
    return runner.run(session, encrypted);
  });
  std::string last;
  while (result.wait_for(std::chrono::milliseconds(250)) != std::future_status::ready) {
    const server::RunProgress p = client.progress(session);
    char line[160];
    if (p.state == "queued") std::snprintf(line, sizeof line, "queued, %zu runs ahead", p.queue_position);
    else if (p.state == "running" && p.remaining_seconds >= 0)
      std::snprintf(line, sizeof line, "running: %zu/%zu PBS, %.1f s elapsed, about %.1f s left", p.pbs_done,
                    p.pbs_total, p.elapsed_seconds, p.remaining_seconds);
    else std::snprintf(line, sizeof line, "%s: %zu/%zu PBS", p.state.c_str(), p.pbs_done, p.pbs_total);
    if (line != last) std::printf("  %s\n", line);
    last = line;
  }
  const std::vector<CiphertextTensor> outputs = result.get();
  std::printf("ran in %.2f s (upload, queue, run and download)\n", since(start));

  const std::vector<ClearTensor> decrypted = keys.decrypt(model, outputs);
  const std::vector<ClearTensor> clear = run_clear(model, inputs);  // the client has the model: a check
  for (std::size_t k = 0; k < decrypted.size(); ++k) {
    std::printf("output %zu: %s%s\n", k, values(decrypted[k]).c_str(),
                decrypted[k] == clear[k] ? "  (equals the clear computation)" : "  (differs from the clear computation)");
    if (package.recipe) {
      // The recipe's output quantizer gives the real outputs; a model ending with a softmax
      // leaves it to the client, computed here for vectors.
      const ClientRecipe& recipe = *package.recipe;
      xt::xarray<double> real = xt::zeros<double>(decrypted[k].shape());
      for (std::size_t i = 0; i < real.size(); ++i) real.flat(i) = recipe.output.dequantize(decrypted[k].flat(i));
      std::printf("  dequantized: %s\n", values(real).c_str());
      if (real.dimension() == 1 && real.size() > 1) {
        const auto best = static_cast<std::size_t>(xt::argmax(real)());
        if (recipe.softmax_axis) {
          std::vector<double> p(real.size());
          double total = 0;
          for (std::size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(real(i) - real(best));
          std::printf("  softmax: [");
          for (std::size_t i = 0; i < p.size(); ++i) std::printf("%s%.3f", i ? " " : "", p[i] / total);
          std::printf("]\n");
        }
        const std::string label = best < recipe.labels.size() ? " (" + recipe.labels[best] + ")" : "";
        std::printf("  argmax: %zu%s\n", best, label.c_str());
      }
    }
  }
  client.close_session(session);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_06_client: " << e.what() << "\n";
  return 1;
}
