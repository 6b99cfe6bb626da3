// Tutorial 07: an ImageNet classifier on encrypted images (docs/imagenet.md).
// A model imported at build time from ONNX (examples/CMakeLists.txt, FHETENSOR_IMAGENET_MODELS)
// is calibrated on the calibration images, quantized and compiled; explain() shows where
// the bootstraps go. Top-1 and top-5 over the validation images in float, clear integers
// and simulate, side by side; then real encrypted inference on the first images, with a
// progress bar, a checkpoint after every level of bootstraps and the per-level times.
//
//   example_07_imagenet [--model NAME] [--val N] [--calibration N] [--encrypted N]
//                       [--rounding-bits R] [--activation-bits A] [--weight-bits W]
//                       [--error-probability P] [--refine K] [--margin M]
//                       [--window Q] [--window-multiplier K] [--two-step B]
//                       [--layer NAME=R[/A[/W]]] [--checkpoint DIR] [--data DIR]
// --checkpoint DIR: the encrypted run saves its ciphertexts there after each level and,
// started again with the same options, resumes from the last saved level.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/image.hpp>
#include <fhetensor/nn/quantize.hpp>
#include <fhetensor/serialization/checkpoint.hpp>

using namespace fhetensor;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string model;  // default: the first model this build imported
  fs::path data = FHETENSOR_IMAGENET_DATA;
  std::size_t val = 650, calibration = 500, encrypted = 1;
  int rounding_bits = 6, activation_bits = 6, weight_bits = 6;
  int refine = 8;
  int window_multiplier = 4;     // QuantizationOptions::max_window_multiplier
  double margin = 0.1;
  double error_probability = 0x1p-6;
  std::optional<double> window;  // QuantizationOptions::saturating_window
  int two_step = 0;              // first_read_bits of two-step reads; 0: one read
  std::map<std::string, nn::LayerBits> layers;  // --layer NAME=R/A/W: reads, activation and weight bits
  fs::path checkpoint;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") o.model = next();
    else if (a == "--data") o.data = next();
    else if (a == "--val") o.val = std::stoul(next());
    else if (a == "--calibration") o.calibration = std::stoul(next());
    else if (a == "--encrypted") o.encrypted = std::stoul(next());
    else if (a == "--rounding-bits") o.rounding_bits = std::stoi(next());
    else if (a == "--activation-bits") o.activation_bits = std::stoi(next());
    else if (a == "--weight-bits") o.weight_bits = std::stoi(next());
    else if (a == "--error-probability") o.error_probability = std::stod(next());
    else if (a == "--refine") o.refine = std::stoi(next());
    else if (a == "--window-multiplier") o.window_multiplier = std::stoi(next());
    else if (a == "--margin") o.margin = std::stod(next());
    else if (a == "--window") o.window = std::stod(next());
    else if (a == "--two-step") o.two_step = std::stoi(next());
    else if (a == "--layer") {
      const std::string spec = next();
      const auto eq = spec.find('=');
      int r = 0, act = 0, w = 0;
      if (eq == std::string::npos || std::sscanf(spec.c_str() + eq + 1, "%d/%d/%d", &r, &act, &w) < 1)
        throw std::invalid_argument("--layer takes NAME=READS[/ACTIVATIONS[/WEIGHTS]]");
      nn::LayerBits& bits = o.layers[spec.substr(0, eq)];
      if (r) bits.reads = r;
      if (act) bits.activations = act;
      if (w) bits.weights = w;
    }
    else if (a == "--checkpoint") o.checkpoint = next();
    else throw std::invalid_argument("unknown argument " + a);
  }
  return o;
}

// ---- images -----------------------------------------------------------------------------

struct LabelledImage {
  fs::path file;
  std::size_t label;
};

/// The first `limit` lines "FILE LABEL" of <dir>/labels.txt.
std::vector<LabelledImage> read_labelled(const fs::path& dir, std::size_t limit) {
  std::ifstream in(dir / "labels.txt");
  if (!in) throw std::runtime_error("cannot read " + (dir / "labels.txt").string());
  std::vector<LabelledImage> images;
  std::string file;
  std::size_t label;
  while (images.size() < limit && in >> file >> label) images.push_back({dir / file, label});
  return images;
}

/// Class names by label: the lines "wnid name, synonyms" of synset_words.txt, name kept.
std::vector<std::string> read_class_names(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    const std::size_t space = line.find(' '), comma = line.find(',');
    names.push_back(line.substr(space + 1, comma == std::string::npos ? std::string::npos : comma - space - 1));
  }
  return names;
}

/// MobileNet's preprocessing (TF-slim): RGB, the shorter side resized to round(S / 0.875),
/// the centre S x S, pixels to x / 127.5 - 1, NCHW.
xt::xarray<float> preprocess(const fs::path& file, std::size_t size) {
  const xt::xarray<float> pixels = xt::cast<float>(io::read_image(file, {.channels = io::ImageChannels::rgb}));
  const std::size_t h = pixels.shape(1), w = pixels.shape(2), shorter = std::min(h, w);
  const auto resized_shorter = static_cast<std::size_t>(std::lround(static_cast<double>(size) / 0.875));
  const std::size_t rh = h * resized_shorter / shorter, rw = w * resized_shorter / shorter;
  xt::xarray<float> x = io::center_crop(io::resize_bilinear(pixels, rh, rw), size, size) / 127.5f - 1.0f;
  x.reshape({1, 3, size, size});
  return x;
}

std::vector<xt::xarray<float>> preprocess_all(const std::vector<LabelledImage>& images, std::size_t size) {
  std::vector<xt::xarray<float>> out(images.size());
  parallel_for(images.size(), [&](std::size_t i, std::size_t) { out[i] = preprocess(images[i].file, size); });
  return out;
}

// ---- scores -----------------------------------------------------------------------------

/// The k classes of highest score, best first.
std::vector<std::size_t> top_k(const auto& scores, std::size_t k) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::size_t a, std::size_t b) { return scores.flat(a) > scores.flat(b); });
  order.resize(k);
  return order;
}

/// Top-1 and top-5 accuracy (%) of each image's five best classes.
struct Accuracy {
  double top1 = 0, top5 = 0;
};
Accuracy accuracy(const std::vector<std::vector<std::size_t>>& top5, const std::vector<LabelledImage>& images, std::size_t count) {
  Accuracy a;
  for (std::size_t i = 0; i < count; ++i) {
    a.top1 += top5[i][0] == images[i].label;
    a.top5 += std::find(top5[i].begin(), top5[i].end(), images[i].label) != top5[i].end();
  }
  const double n = static_cast<double>(std::max<std::size_t>(count, 1));
  return {100 * a.top1 / n, 100 * a.top5 / n};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The client and server of the encrypted runs. With a checkpoint folder, what a resumed
/// run needs is kept there: the client keys (exported: they are secret), each image's
/// ciphertexts, the run's checkpoint, and a log of every level's time.
class EncryptedSession {
 public:
  EncryptedSession(fs::path dir, const CompiledModel& model) : dir_(std::move(dir)), model_(model) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!dir_.empty()) fs::create_directories(dir_);
    if (!dir_.empty() && fs::exists(dir_ / "client.keys")) {
      keys_.emplace(import_client_keys(dir_ / "client.keys"));
      std::printf("\nclient keys read from %s\n", (dir_ / "client.keys").c_str());
    } else {
      keys_.emplace(ClientKeys::generate(model_));
      if (!dir_.empty()) export_client_keys(dir_ / "client.keys", *keys_);
      std::printf("\nkeys for %s generated in %.1f s\n", model_.instance_name.c_str(), seconds_since(t0));
    }
  }
  ClientKeys& keys() { return *keys_; }
  const ServerKeys& server_keys() { return *keys_->server_keys(); }

  /// Image i encrypted (seeded: 8 bytes per element), or its ciphertexts of an earlier start.
  std::vector<CiphertextTensor> inputs(std::size_t i, const ClearTensor& x) {
    const fs::path file = dir_ / ("image" + std::to_string(i) + ".input.fhet");
    if (!dir_.empty() && fs::exists(file)) return load_ciphertexts(file);
    const auto seeded = keys_->encrypt_seeded(model_, {x});
    if (!dir_.empty()) save_ciphertexts(file, seeded);
    std::vector<CiphertextTensor> full;
    for (const auto& t : seeded) full.push_back(t.expand());
    return full;
  }
  std::shared_ptr<RunCheckpoint> checkpoint(std::size_t i, const std::vector<CiphertextTensor>& inputs) {
    if (dir_.empty()) return nullptr;
    auto c = std::make_shared<FileCheckpoint>(dir_ / ("image" + std::to_string(i) + ".run.fhet"), model_, inputs);
    if (fs::exists(c->file())) std::printf("resuming from %s\n", c->file().c_str());
    return c;
  }
  /// Prints a level's time (below the progress bar) and appends it to levels.log.
  void log(std::size_t image, const LevelReport& r) {
    char line[512];
    std::snprintf(line, sizeof line, "image %zu level %zu/%zu: %zu PBS in %.1f s (%.2f ms per PBS) %s", image, r.level, r.levels,
                  r.bootstraps, r.seconds, 1000 * r.seconds / static_cast<double>(std::max<std::size_t>(r.bootstraps, 1)),
                  r.stage.c_str());
    std::fprintf(stderr, "\n%s\n", line);
    if (!dir_.empty()) std::ofstream(dir_ / "levels.log", std::ios::app) << line << "\n";
  }

 private:
  fs::path dir_;
  const CompiledModel& model_;
  std::optional<ClientKeys> keys_;
};

}  // namespace

// What the build imported (examples/CMakeLists.txt generates imagenet_models.hpp).
struct ImportedImagenetModel {
  const char* name;
  const char* weights;
  int (*run)(const Options&, const std::string& weights);
};
struct Deviation {
  std::size_t differing = 0;
  double mean_abs = 0;
};
/// How far a run's outputs lie from the reference's, element by element.
inline Deviation deviation(const ClearTensor& a, const ClearTensor& reference) {
  Deviation d;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const auto diff = std::abs(a.flat(k) - reference.flat(k));
    d.differing += diff != 0;
    d.mean_abs += static_cast<double>(diff);
  }
  d.mean_abs /= static_cast<double>(std::max<std::size_t>(a.size(), 1));
  return d;
}

template <class Model>
int run_model(const Options& o, const std::string& weights_path);
#include "imagenet_models.hpp"

template <class Model>
int run_model(const Options& o, const std::string& weights_path) {
  const std::size_t size = Model::input_shape[2];
  const nn::WeightFile weights = nn::WeightFile::load(weights_path);
  const std::vector<std::string> class_names = read_class_names(o.data / "synset_words.txt");
  const auto val = read_labelled(o.data / "val", o.val);
  const auto calib = read_labelled(o.data / "calib", o.calibration);
  const std::size_t n = val.size();

  // 1. float: calibration on the calibration images, top-5 on the validation images
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<xt::xarray<float>> val_inputs = preprocess_all(val, size);
  const nn::Calibration calibration = nn::calibrate<Model>(weights, preprocess_all(calib, size));
  std::vector<std::vector<std::size_t>> float_top5(n);
  parallel_for(n, [&](std::size_t i, std::size_t) {
    nn::FloatNet net(weights, {}, 1);
    float_top5[i] = top_k(Model::forward(net, nn::FloatNet::Value<4>(val_inputs[i])), 5);
  });
  std::printf("%s at %zu x %zu: calibrated on %zu images, float model over %zu validation images (%.1f s)\n", Model::name,
              size, size, calibration.samples, n, seconds_since(t0));

  // 2. quantize and compile
  nn::QuantizationOptions q{.weight_bits = o.weight_bits, .activation_bits = o.activation_bits,
                            .range_margin = o.margin, .max_channel_refinement = o.refine, .saturating_window = o.window,
                            .max_window_multiplier = o.window_multiplier};
  q.layers = o.layers;
  q.two_step_reads = o.two_step > 0;
  if (o.two_step > 0) q.first_read_bits = o.two_step;
  const CompileOptions compile_options{.rounding_bits = o.rounding_bits, .error_probability = o.error_probability,
                                       .rounding = Rounding::approximate};
  t0 = std::chrono::steady_clock::now();
  const nn::QuantizedModel model = nn::quantize<Model>(weights, calibration, q, compile_options);
  std::printf("quantized (weights %d bits, activations %d bits, input %d bits, tables read %d bits) and compiled in %.1f s\n\n%s\n",
              q.weight_bits, q.activation_bits, q.input_bits, o.rounding_bits, seconds_since(t0), explain(model.compiled).c_str());

  // 3. clear integers and simulate, side by side with float
  t0 = std::chrono::steady_clock::now();
  std::vector<ClearTensor> quantized(n), clear(n), simulated(n);
  std::vector<std::vector<std::size_t>> clear_top5(n), simulated_top5(n);
  parallel_for(n, [&](std::size_t i, std::size_t) {
    quantized[i] = model.quantize_input(val_inputs[i]);
    clear[i] = run_clear(model.compiled, {quantized[i]}, RunOptions{.threads = 1})[0];
    simulated[i] = simulate(model.compiled, {quantized[i]}, i, RunOptions{.threads = 1})[0];
    clear_top5[i] = top_k(model.dequantize_output(clear[i]), 5);
    simulated_top5[i] = top_k(model.dequantize_output(simulated[i]), 5);
  });
  const Accuracy f = accuracy(float_top5, val, n), c = accuracy(clear_top5, val, n), s = accuracy(simulated_top5, val, n);
  std::printf("over %zu validation images (%.1f s): top-1 / top-5\n  float     %6.2f%% / %6.2f%%\n  clear     %6.2f%% / %6.2f%%\n"
              "  simulate  %6.2f%% / %6.2f%%   (%.1f%% of float's top-1)\n",
              n, seconds_since(t0), f.top1, f.top5, c.top1, c.top5, s.top1, s.top5, f.top1 > 0 ? 100 * s.top1 / f.top1 : 0.0);

  // 4. encrypted, on the first images
  const std::size_t e = std::min(o.encrypted, n);
  if (e == 0) return 0;
  EncryptedSession session(o.checkpoint, model.compiled);
  std::size_t agree = 0;
  for (std::size_t i = 0; i < e; ++i) {
    t0 = std::chrono::steady_clock::now();
    const auto ciphertexts = session.inputs(i, quantized[i]);  // client
    RunOptions run_options{.progress = terminal_progress_bar(), .on_level = [&](const LevelReport& r) { session.log(i, r); }};
    run_options.checkpoint = session.checkpoint(i, ciphertexts);
    const auto result = run(model.compiled, ciphertexts, session.server_keys(), run_options);  // server
    const ClearTensor decrypted = session.keys().decrypt(model.compiled, result)[0];            // client
    const double seconds = seconds_since(t0);
    const auto top5 = top_k(model.dequantize_output(decrypted), 5);
    agree += top5[0] == simulated_top5[i][0];
    std::printf("\nimage %zu/%zu %s: label %zu (%s)\n  encrypted top-5:", i + 1, e, val[i].file.filename().c_str(),
                val[i].label, class_names.at(val[i].label).c_str());
    for (std::size_t k : top5) std::printf(" %s (%zu);", class_names.at(k).c_str(), k);
    std::printf("\n  top-1 %s simulate's, output %s clear's; %zu PBS in %.1f s on %zu threads%s\n",
                top5[0] == simulated_top5[i][0] ? "equal to" : "differs from", decrypted == clear[i] ? "equal to" : "differs from",
                model.compiled.statistics.bootstraps, seconds, default_thread_count(),
                run_options.checkpoint ? " (this session's part, if it resumed)" : "");
    // Bootstrap errors are random: encrypted and simulate should stray from clear alike.
    const Deviation de = deviation(decrypted, clear[i]), ds = deviation(simulated[i], clear[i]);
    std::printf("  outputs off clear's: encrypted %zu of %zu (mean |difference| %.2f levels), simulate %zu (%.2f)\n",
                de.differing, clear[i].size(), de.mean_abs, ds.differing, ds.mean_abs);
  }
  std::printf("\nencrypted: top-1 equal to simulate's on %zu/%zu images\n", agree, e);
  return 0;
}

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  for (const ImportedImagenetModel& m : imagenet_models)
    if (o.model.empty() || o.model == m.name) return m.run(o, m.weights);
  std::string known;
  for (const ImportedImagenetModel& m : imagenet_models) known += std::string(" ") + m.name;
  throw std::invalid_argument("this build has no model " + o.model + "; it has:" + known);
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_07_imagenet: %s\n", e.what());
  return 1;
}
