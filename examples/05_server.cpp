// Tutorial 05: an encrypted-inference server. It loads a model file and serves it over
// HTTP (server/inference_service.hpp documents the protocol): clients upload their
// evaluation keys once per session, then encrypted inputs, and get encrypted outputs
// back. The server never sees a secret key or a clear value. Stops on Ctrl-C / SIGTERM.
//
//   example_05_server --write-demo-model demo.fhet      a small classifier to serve
//   example_05_server demo.fhet [--port 8080] [--address 127.0.0.1] [--max-sessions 8]
//
// Then, from another terminal: example_06_client 127.0.0.1 8080
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <iostream>
#include <mutex>
#include <random>
#include <string>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/serialization/files.hpp>
#include <fhetensor/server/http.hpp>
#include <fhetensor/server/inference_service.hpp>

using namespace fhetensor;

namespace {

// 8 binary features -> 6 hidden ReLU units -> 3 class scores, on the cheapest parameter
// set (6 bootstraps a run), with a recipe naming the classes.
ModelPackage demo_model() {
  std::mt19937_64 gen(3);
  Tensor<int, 2> w1 = Tensor<int, 2>::from_shape({8, 6}), w2 = Tensor<int, 2>::from_shape({6, 3});
  for (auto& v : w1) v = std::uniform_int_distribution<int>(-1, 1)(gen);
  for (auto& v : w2) v = std::uniform_int_distribution<int>(-2, 2)(gen);
  const Tensor<int, 1> b1 = xt::zeros<int>({6}), b2 = {1, 0, -1};
  const CompiledModel model = compile([&](auto x) { return dense(relu(dense(x, w1, b1)), w2, b2); },
                                      input<Tensor<int, 1>, Bits<1>>({8}), CompileOptions{.rounding_bits = 3});
  ClientRecipe recipe;
  recipe.input = nn::Quantizer{1.0, 0, 1};    // features are 0 or 1 already
  recipe.output = nn::Quantizer{0.5, 0, 8};   // half a unit per score step
  recipe.softmax_axis = 0;
  recipe.labels = {"left", "middle", "right"};
  return {model, recipe};
}

std::mutex log_mutex;
void log_line(const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::lock_guard lock(log_mutex);
  std::cout << "[" << stamp << "] " << line << std::endl;
}

int usage() {
  std::cerr << "usage: example_05_server <model file> [--port P] [--address A] [--max-sessions N]\n"
               "       example_05_server --write-demo-model PATH\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc == 3 && std::string(argv[1]) == "--write-demo-model") {
    const ModelPackage demo = demo_model();
    save_model(argv[2], demo.model, demo.recipe);
    std::cout << "wrote " << argv[2] << ": " << demo.model.statistics.bootstraps << " PBS a run under "
              << demo.model.instance_name << "\n";
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-') return usage();
  const std::string model_path = argv[1];
  server::HttpServerOptions http_options;
  http_options.address = "127.0.0.1";
  http_options.port = 8080;
  server::InferenceServiceOptions service_options;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    if (arg == "--port") http_options.port = static_cast<unsigned short>(std::stoul(value));
    else if (arg == "--address") http_options.address = value;
    else if (arg == "--max-sessions") service_options.max_sessions = std::stoul(value);
    else return usage();
  }

  auto start = std::chrono::steady_clock::now();
  ModelPackage package = load_model_package(model_path);
  log_line("loaded " + model_path + ": " + std::to_string(package.model.statistics.bootstraps) + " PBS a run under " +
           package.model.instance_name + (package.recipe ? ", with a client recipe" : "") + " (" +
           std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) + " s)");

  // SIGINT and SIGTERM are blocked in every thread (the server's threads inherit the mask)
  // and taken by sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  service_options.log = log_line;
  server::InferenceService service(std::move(package), service_options);
  service.configure(http_options);
  http_options.error_log = [](const std::string& line) { log_line("error: " + line); };
  server::HttpServer http(http_options, service.handler());
  http.start();
  log_line("serving on http://" + http_options.address + ":" + std::to_string(http.port()) + " (up to " +
           std::to_string(service_options.max_sessions) + " sessions, request bodies up to " +
           std::to_string(service.max_request_bytes() >> 20) + " MiB, runs on " +
           std::to_string(service_options.run_threads) + " threads); Ctrl-C stops");

  int signal = 0;
  sigwait(&signals, &signal);
  log_line(std::string("caught ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ": finishing the run in progress");
  service.shutdown();
  http.stop();
  log_line("stopped");
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_05_server: " << e.what() << "\n";
  return 1;
}
