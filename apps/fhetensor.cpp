// fhetensor: the command-line tool of a deployment. The client generates keys, encrypts
// and decrypts; the server runs a compiled model on ciphertexts with the evaluation keys
// only. Every file is checked on load (serialization/files.hpp); outputs are written
// atomically. Exit status: 0 success, 1 an error (message on stderr), 2 a usage error.
//
//   fhetensor keygen  model.fhe -c client.keys -s server.keys
//   fhetensor encrypt model.fhe -k client.keys image.png -o inputs.ct
//   fhetensor run     model.fhe -s server.keys inputs.ct -o outputs.ct
//   fhetensor decrypt model.fhe -k client.keys outputs.ct
//   fhetensor inspect FILE...
//   fhetensor explain model.fhe
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>
#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/idx.hpp>
#include <fhetensor/io/image.hpp>
#include <fhetensor/io/npy.hpp>
#include <fhetensor/serialization/files.hpp>

using namespace fhetensor;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string bytes_text(std::uint64_t bytes) {
  char buffer[32];
  if (bytes < 10'000) std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
  else if (bytes < 10'000'000) std::snprintf(buffer, sizeof buffer, "%.1f KB", static_cast<double>(bytes) / 1e3);
  else std::snprintf(buffer, sizeof buffer, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buffer;
}

bool has_extension(const fs::path& p, std::initializer_list<const char*> extensions) {
  std::string name = p.filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(extensions.begin(), extensions.end(), [&](const char* e) { return name.ends_with(e); });
}

/// `values` in the shape of model input `index`, when only the shape's ones differ
/// (an image [1, 28, 28] for an input [1, 1, 28, 28]).
ClearTensor fit_to_input(ClearTensor values, const CompiledModel& model, std::size_t index) {
  const Shape& shape = model.graph[model.inputs[index]].shape;
  if (values.size() != element_count(shape))
    throw std::invalid_argument("fhetensor: input " + std::to_string(index) + " has " + std::to_string(values.size()) +
                                " values; the model expects " + to_string(shape));
  values.reshape(shape);
  return values;
}

/// The channel count of an image input of this shape (C of [..., C, H, W]), 0 if unknown.
std::size_t image_channels(const Shape& shape) { return shape.size() >= 3 ? shape[shape.size() - 3] : 0; }

/// Model input `index` from a file: .npy (integers as they are; reals quantized with the
/// model's recipe), PNG or JPEG (pixels through the recipe's normalization and quantizer,
/// else as they are), or an idx image file (image `idx_index`).
ClearTensor read_input(const fs::path& path, const ModelPackage& package, std::size_t index, std::size_t idx_index,
                       bool raw) {
  const CompiledModel& model = package.model;
  const ClientRecipe* recipe = raw || !package.recipe ? nullptr : &*package.recipe;
  if (has_extension(path, {".npy"})) {
    if (!recipe) return fit_to_input(io::read_npy_integers(path), model, index);
    return fit_to_input(recipe->quantize(io::read_npy(path)), model, index);
  }
  ClearTensor pixels;
  if (has_extension(path, {".png", ".jpg", ".jpeg"})) {
    const std::size_t channels = image_channels(model.graph[model.inputs[index]].shape);
    io::ImageOptions options;
    options.channels = channels == 1 ? io::ImageChannels::gray : channels == 3 ? io::ImageChannels::rgb : io::ImageChannels::keep;
    pixels = io::read_image(path, options);
  } else if (has_extension(path, {"idx3-ubyte", "idx3-ubyte.gz"})) {
    const io::IdxImages images = io::read_idx_images(path, idx_index + 1);
    if (idx_index >= images.count)
      throw std::out_of_range("fhetensor: " + path.string() + " holds " + std::to_string(images.count) + " images");
    pixels = ClearTensor::from_shape({1, images.rows, images.cols});
    std::copy(images.image(idx_index), images.image(idx_index) + images.image_size(), pixels.begin());
  } else {
    throw std::invalid_argument("fhetensor: " + path.string() + ": expected a .npy, .png, .jpg or idx3-ubyte(.gz) file");
  }
  if (!recipe) return fit_to_input(std::move(pixels), model, index);
  return fit_to_input(recipe->quantize(recipe->real_from_pixels(pixels)), model, index);
}

std::string values_text(const ClearTensor& t, std::size_t limit = 32) {
  std::string out = "[";
  for (std::size_t i = 0; i < std::min(t.size(), limit); ++i) {
    if (i) out += ' ';
    out += std::to_string(t.flat(i));
  }
  return out + (t.size() > limit ? " ...]" : "]");
}

/// The k largest scores of a vector, with their labels when the recipe has them.
void print_top(const xt::xarray<double>& scores, const ClientRecipe& recipe, std::size_t k) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::size_t a, std::size_t b) { return scores.flat(a) > scores.flat(b); });
  for (std::size_t r = 0; r < k; ++r) {
    const std::size_t c = order[r];
    const std::string label = c < recipe.labels.size() ? " \"" + recipe.labels[c] + "\"" : "";
    std::printf("  %zu. class %zu%s: %.4f\n", r + 1, c, label.c_str(), scores.flat(c));
  }
}

// ---- Commands ----------------------------------------------------------------------

void keygen(const fs::path& model_path, const fs::path& client_path, const fs::path& server_path) {
  const CompiledModel model = load_model(model_path);
  const auto start = std::chrono::steady_clock::now();
  ClientKeys keys = ClientKeys::generate(model);
  const CompressedServerKeys server = keys.compressed_server_keys();
  export_client_keys(client_path, keys);
  save_server_keys(server_path, server);
  std::printf("keys for %s generated in %.1f s\n  %s: secret, keep it (readable by you only)\n  %s: %s, for the server\n",
              model.instance_name.c_str(), seconds_since(start), client_path.c_str(), server_path.c_str(),
              bytes_text(fs::file_size(server_path)).c_str());
}

void encrypt(const fs::path& model_path, const fs::path& keys_path, const std::vector<fs::path>& inputs, const fs::path& out,
             std::size_t idx_index, bool raw) {
  const ModelPackage package = load_model_package(model_path);
  if (inputs.size() != package.model.inputs.size())
    throw std::invalid_argument("fhetensor: the model takes " + std::to_string(package.model.inputs.size()) + " inputs, " +
                                std::to_string(inputs.size()) + " files given");
  ClientKeys keys = import_client_keys(keys_path);
  std::vector<SeededCiphertextTensor> encrypted;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    encrypted.push_back(keys.encrypt_seeded(package.model, k, read_input(inputs[k], package, k, idx_index, raw)));
  save_ciphertexts(out, encrypted);
  std::printf("%s: %zu encrypted input(s), %s\n", out.c_str(), encrypted.size(), bytes_text(fs::file_size(out)).c_str());
}

void run_model(const fs::path& model_path, const fs::path& keys_path, const fs::path& inputs_path, const fs::path& out,
               std::size_t threads, bool progress) {
  const CompiledModel model = load_model(model_path);
  const auto inputs = deserialize_inputs(io::read_file_bounded(inputs_path, LoadLimits{}.max_ciphertext_bytes + 4096), model);
  auto start = std::chrono::steady_clock::now();
  const ServerKeys keys(load_server_keys(keys_path));
  std::fprintf(stderr, "server keys loaded and expanded in %.1f s\n", seconds_since(start));
  start = std::chrono::steady_clock::now();
  RunOptions options{.threads = threads};
  if (progress) options.progress = terminal_progress_bar(std::cerr);
  const auto outputs = run(model, inputs, keys, options);
  save_ciphertexts(out, outputs);
  std::printf("%s: %zu encrypted output(s), %zu PBS in %.1f s\n", out.c_str(), outputs.size(), model.statistics.bootstraps,
              seconds_since(start));
}

void decrypt(const fs::path& model_path, const fs::path& keys_path, const fs::path& outputs_path, const fs::path& npy,
             std::size_t top) {
  const ModelPackage package = load_model_package(model_path);
  const ClientKeys keys = import_client_keys(keys_path);
  const auto values = keys.decrypt(package.model, load_ciphertexts(outputs_path));
  for (std::size_t k = 0; k < values.size(); ++k) {
    std::printf("output %zu %s: %s\n", k, to_string(package.model.graph[package.model.outputs[k]].shape).c_str(),
                values_text(values[k]).c_str());
    if (package.recipe && top > 0) print_top(package.recipe->dequantize(values[k]), *package.recipe, top);
  }
  if (!npy.empty()) {
    if (values.size() != 1) throw std::invalid_argument("fhetensor: --npy needs a model with one output");
    io::write_npy(npy, values[0]);
  }
}

void inspect(const fs::path& path) {
  const auto head = io::read_file_bounded(path, std::uint64_t{8} << 30);
  const EnvelopeHeader h = fhetensor::inspect(head);
  std::printf("%s: %s, format version %u, parameter set %s, %s\n", path.c_str(), std::string(to_string(h.kind)).c_str(),
              h.format_version, std::string(instance_name(h.instance)).c_str(), bytes_text(head.size()).c_str());
  with_menu_instance(h.instance, [&]<class I>(std::type_identity<I>) {
    std::printf("  n = %zu, k = %zu, N = %zu; security %.1f bits (LWE), %.1f bits (GLWE)\n", I::lwe_dimension,
                I::glwe_dimension, I::polynomial_size, I::lwe_security.bits, I::glwe_security.bits);
    if (h.kind == ObjectKind::server_keys)
      std::printf("  compressed (seeded masks); expanded on the server: %s\n",
                  bytes_text(CompressedEvaluationKeys<I>::expanded_size_bytes()).c_str());
  });
  switch (h.kind) {
    case ObjectKind::model: {
      const ModelPackage p = deserialize_model_package(head);
      const CompiledModel& m = p.model;
      std::printf("  %zu nodes, %zu PBS, max table precision %d bits, estimated %.2f s on one core\n", m.graph.size(),
                  m.statistics.bootstraps, m.statistics.max_precision, m.statistics.estimated_seconds);
      for (std::size_t k = 0; k < m.inputs.size(); ++k)
        std::printf("  input %zu: %s in %s\n", k, to_string(m.graph[m.inputs[k]].shape).c_str(),
                    m.nodes[m.inputs[k]].range.to_string().c_str());
      for (std::size_t k = 0; k < m.outputs.size(); ++k)
        std::printf("  output %zu: %s in %s\n", k, to_string(m.graph[m.outputs[k]].shape).c_str(),
                    m.nodes[m.outputs[k]].range.to_string().c_str());
      if (p.recipe)
        std::printf("  client recipe: %d-bit input quantizer, %zu labels%s\n", p.recipe->input.bits, p.recipe->labels.size(),
                    p.recipe->softmax_axis ? ", softmax" : "");
      break;
    }
    case ObjectKind::ciphertexts: {
      const auto list = detail::load_object<detail::CiphertextList>(head, ObjectKind::ciphertexts, {});
      for (std::size_t k = 0; k < list.tensors.size(); ++k)
        std::visit([&]<class T>(const T& t) {
          std::printf("  %zu: %s, %s\n", k, to_string(t.shape).c_str(),
                      std::is_same_v<T, SeededCiphertextTensor> ? "seeded (masks regenerated from a seed)" : "full");
        }, list.tensors[k]);
      break;
    }
    case ObjectKind::server_keys: deserialize_server_keys(head); break;
    case ObjectKind::client_keys: std::printf("  SECRET: whoever holds this file can decrypt\n"); break;
    case ObjectKind::run_state: std::printf("  resumed by run() with the same model and inputs\n"); break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fhetensor: machine learning on encrypted data (TFHE)", "fhetensor"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::to_string(FHETENSOR_VERSION_MAJOR) + "." + std::to_string(FHETENSOR_VERSION_MINOR) +
                                        "." + std::to_string(FHETENSOR_VERSION_PATCH));
  fs::path model, client_keys = "client.keys", server_keys = "server.keys", in_file, out_file, npy;
  std::vector<fs::path> files;
  std::size_t threads = default_thread_count(), idx_index = 0, top = 5;
  bool raw = false, no_progress = false;

  auto* keygen_cmd = app.add_subcommand("keygen", "client: generate secret keys and the server's evaluation keys");
  keygen_cmd->add_option("model", model, "compiled model file")->required()->check(CLI::ExistingFile);
  keygen_cmd->add_option("-c,--client-keys", client_keys, "secret keys to write")->capture_default_str();
  keygen_cmd->add_option("-s,--server-keys", server_keys, "evaluation keys to write")->capture_default_str();

  auto* encrypt_cmd = app.add_subcommand("encrypt", "client: encrypt inputs (.npy, PNG, JPEG, idx3-ubyte), one file per model input");
  encrypt_cmd->add_option("model", model, "compiled model file")->required()->check(CLI::ExistingFile);
  encrypt_cmd->add_option("inputs", files, "input files")->required()->check(CLI::ExistingFile);
  encrypt_cmd->add_option("-k,--keys", client_keys, "secret keys")->capture_default_str()->check(CLI::ExistingFile);
  encrypt_cmd->add_option("-o,--output", out_file, "encrypted inputs to write")->required();
  encrypt_cmd->add_option("--index", idx_index, "which image of an idx file")->capture_default_str();
  encrypt_cmd->add_flag("--raw", raw, "values are the model's integers: no normalization or quantization");

  auto* run_cmd = app.add_subcommand("run", "server: run the model on encrypted inputs");
  run_cmd->add_option("model", model, "compiled model file")->required()->check(CLI::ExistingFile);
  run_cmd->add_option("inputs", in_file, "encrypted inputs")->required()->check(CLI::ExistingFile);
  run_cmd->add_option("-s,--server-keys", server_keys, "evaluation keys")->capture_default_str()->check(CLI::ExistingFile);
  run_cmd->add_option("-o,--output", out_file, "encrypted outputs to write")->required();
  run_cmd->add_option("-t,--threads", threads, "threads")->capture_default_str()->check(CLI::Range(1, 1024));
  run_cmd->add_flag("--no-progress", no_progress, "no progress bar");

  auto* decrypt_cmd = app.add_subcommand("decrypt", "client: decrypt a model's outputs");
  decrypt_cmd->add_option("model", model, "compiled model file")->required()->check(CLI::ExistingFile);
  decrypt_cmd->add_option("outputs", in_file, "encrypted outputs")->required()->check(CLI::ExistingFile);
  decrypt_cmd->add_option("-k,--keys", client_keys, "secret keys")->capture_default_str()->check(CLI::ExistingFile);
  decrypt_cmd->add_option("--npy", npy, "also write the (single) output's integers to this .npy file");
  decrypt_cmd->add_option("--top", top, "classes to list, for models with a recipe (0: none)")->capture_default_str();

  auto* inspect_cmd = app.add_subcommand("inspect", "what a file holds: kind, format, parameter set, sizes, shapes");
  inspect_cmd->add_option("files", files, "fhetensor files")->required()->check(CLI::ExistingFile);

  auto* explain_cmd = app.add_subcommand("explain", "the model's plan: PBS per node, parameter set, estimated time");
  explain_cmd->add_option("model", model, "compiled model file")->required()->check(CLI::ExistingFile);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*keygen_cmd) keygen(model, client_keys, server_keys);
    else if (*encrypt_cmd) encrypt(model, client_keys, files, out_file, idx_index, raw);
    else if (*run_cmd) run_model(model, server_keys, in_file, out_file, threads, !no_progress);
    else if (*decrypt_cmd) decrypt(model, client_keys, in_file, npy, top);
    else if (*inspect_cmd) for (const auto& f : files) inspect(f);
    else if (*explain_cmd) std::cout << explain(load_model(model));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
