// Tutorial 04: a classifier trained in PyTorch (tools/train_classifier.py), imported from
// ONNX (tools/onnx_import.py -> models/<dataset>/*.hpp and *.weights), quantized after
// training with calibration images, and run on encrypted images. Reports accuracy over the
// test set in float, clear integers and simulate, then encrypted on the first images:
// accuracy, agreement with simulate, PBS per image and seconds per image. With --qat, the
// model fine-tuned by tools/qat.py and its recipe (ranges and bit widths) instead.
//
//   example_04_mnist [mnist|fashion] [--qat | --choose-bits] [--encrypted N] [--test N]
//                    [--bits B] [--rounding-bits R] [--error-probability P] [--csv FILE]
//                    [--save-model FILE]
// --save-model: writes the compiled model with its client recipe (pixels / 255, the
// quantizers, class labels) for deployment with the fhetensor tool (docs/deployment.md).
// --choose-bits: the library picks the widths (nn::choose_bits) on 2,000 training images
// beyond the calibration ones.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <xtensor/xsort.hpp>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/idx.hpp>
#include <fhetensor/nn/choose_bits.hpp>
#include <fhetensor/nn/quantize.hpp>
#include <fhetensor/serialization/files.hpp>

#include "fashion/fashion_cnn.hpp"
#include "mnist/mnist_cnn.hpp"

using namespace fhetensor;

namespace {

struct Options {
  std::string dataset = "mnist";
  bool qat = false;  // tools/qat.py's model and recipe
  bool choose_bits = false;
  std::size_t encrypted = 100, test = 10000, calibration = 1000;
  int bits = 0;  // weights and activations; 0: the library's defaults
  int weight_bits = 0;  // 0: --bits, else 5
  int rounding_bits = 0;  // 0: 6 for MNIST, 7 for Fashion-MNIST (docs/tutorial.md)
  int refine = 1;
  double margin = 0.1;
  std::optional<double> error_probability;  // default: the QAT recipe's, else 2^-6
  std::string csv;
  std::string save_model;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "mnist" || a == "fashion") o.dataset = a;
    else if (a == "--qat") o.qat = true;
    else if (a == "--choose-bits") o.choose_bits = true;
    else if (a == "--encrypted") o.encrypted = std::stoul(next());
    else if (a == "--test") o.test = std::stoul(next());
    else if (a == "--bits") o.bits = std::stoi(next());
    else if (a == "--weight-bits") o.weight_bits = std::stoi(next());
    else if (a == "--rounding-bits") o.rounding_bits = std::stoi(next());
    else if (a == "--error-probability") o.error_probability = std::stod(next());
    else if (a == "--csv") o.csv = next();
    else if (a == "--save-model") o.save_model = next();
    else if (a == "--refine") o.refine = std::stoi(next());
    else if (a == "--margin") o.margin = std::stod(next());
    else throw std::invalid_argument("unknown argument " + a);
  }
  if ((o.qat || o.choose_bits) && (o.bits || o.weight_bits || o.rounding_bits))
    throw std::invalid_argument("--qat and --choose-bits set the bit widths: drop --bits, --weight-bits, --rounding-bits");
  if (o.qat && (o.choose_bits || o.refine != 1 || o.margin != 0.1))
    throw std::invalid_argument("--qat takes its widths and ranges from tools/qat.py's recipe: retrain to change them");
  if (o.rounding_bits == 0) o.rounding_bits = o.dataset == "mnist" ? 6 : 7;
  return o;
}

struct Split {
  std::vector<xt::xarray<float>> images;
  std::vector<std::uint8_t> labels;
};

Split load(io::Dataset dataset, io::Split split, std::size_t limit) {
  const auto files = io::find_dataset(dataset, split);
  if (!files) throw std::runtime_error("dataset not found: set FHETENSOR_DATA, or install dataset-fashion-mnist");
  const io::IdxImages raw = io::read_idx_images(files->images, limit);
  Split s{{}, io::read_idx_labels(files->labels, limit)};
  for (std::size_t i = 0; i < raw.count; ++i) {
    xt::xarray<float> image = xt::xarray<float>::from_shape({1, 1, raw.rows, raw.cols});
    for (std::size_t p = 0; p < raw.image_size(); ++p) image.flat(p) = static_cast<float>(raw.image(i)[p]) / 255.0f;
    s.images.push_back(std::move(image));
  }
  return s;
}

std::size_t argmax(const auto& t) { return static_cast<std::size_t>(xt::argmax(t)()); }
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Model>
int run(const Options& o) {
  const io::Dataset dataset = o.dataset == "mnist" ? io::Dataset::mnist : io::Dataset::fashion_mnist;
  // QAT fine-tunes the weights and keeps the graph: the same Model, other files.
  const std::string files = std::string(FHETENSOR_MODELS_DIR) + "/" + o.dataset + "/" + (o.qat ? o.dataset + "_qat" : Model::name);
  const nn::WeightFile weights = nn::WeightFile::load(files + ".weights");
  const std::size_t held_out = 2000;  // for --choose-bits
  Split train = load(dataset, io::Split::train, o.qat ? 0 : o.calibration + (o.choose_bits ? held_out : 0));
  std::vector<xt::xarray<float>> search_samples(train.images.begin() + static_cast<std::ptrdiff_t>(std::min(o.calibration, train.images.size())),
                                               train.images.end());
  train.images.resize(std::min(o.calibration, train.images.size()));
  const Split test = load(dataset, io::Split::test, o.test);
  const std::size_t n = test.images.size();

  // 1. float, and calibration on training images (or the QAT recipe's)
  auto t0 = std::chrono::steady_clock::now();
  nn::QuantizationOptions q;
  double error_probability = o.error_probability.value_or(0x1p-6);
  int rounding_bits = o.rounding_bits;
  nn::Calibration calibration;
  if (o.qat) {
    auto recipe = nn::QuantizationRecipe::load(files + ".quantization");
    calibration = std::move(recipe.calibration), q = recipe.options, rounding_bits = recipe.rounding_bits;
    if (!o.error_probability && recipe.error_probability) error_probability = *recipe.error_probability;
  } else {
    calibration = nn::calibrate<Model>(weights, train.images);
    if (o.bits) q.activation_bits = o.bits;
    q.weight_bits = o.weight_bits ? o.weight_bits : o.bits ? o.bits : 5;
    q.max_channel_refinement = o.refine;
    q.range_margin = o.margin;
    if (o.choose_bits) {
      const auto t1 = std::chrono::steady_clock::now();
      const nn::BitChoice choice = nn::choose_bits<Model>(
          weights, calibration, search_samples, {.base = q, .compile = {.error_probability = error_probability, .rounding = Rounding::approximate}});
      std::printf("bit widths searched on %zu training images (%.1f s): rounding/weights/activations, agreement with float, "
                  "estimated s per image (1 core), set\n", search_samples.size(), seconds_since(t1));
      for (const auto& c : choice.candidates)
        std::printf("  %d/%d/%d  %6.2f%%  %6.1f  %s\n", c.compile.rounding_bits, c.options.weight_bits, c.options.activation_bits,
                    100 * c.agreement, c.estimated_seconds, c.instance.c_str());
      q = choice.chosen.options, rounding_bits = choice.chosen.compile.rounding_bits;
      std::printf("chosen: %d rounding bits, %d-bit weights, %d-bit activations\n", rounding_bits, q.weight_bits, q.activation_bits);
    }
  }
  const std::vector<std::size_t> float_class = nn::float_top1<Model>(weights, test.images);
  std::printf("%s%s: float model over %zu test images, calibrated on %zu training images%s (%.1f s)\n", Model::name, o.qat ? " (QAT weights)" : "", n,
              calibration.samples, o.qat ? " by tools/qat.py" : "", seconds_since(t0));

  // 2. quantize and compile
  const CompileOptions compile_options{.rounding_bits = rounding_bits,
                                       .error_probability = error_probability,
                                       .rounding = Rounding::approximate};
  t0 = std::chrono::steady_clock::now();
  const nn::QuantizedModel model = nn::quantize<Model>(weights, calibration, q, compile_options);
  std::printf("quantized (weights %d bits, activations %d bits, input %d bits) and compiled in %.1f s\n\n%s\n",
              q.weight_bits, q.activation_bits, q.input_bits, seconds_since(t0), explain(model.compiled).c_str());
  if (!o.save_model.empty()) {
    ClientRecipe recipe = model.recipe();  // pixels / 255, as the model was trained
    recipe.labels = o.dataset == "mnist" ? std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
                                         : std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    save_model(o.save_model, model.compiled, recipe);
    std::printf("model and client recipe written to %s\n", o.save_model.c_str());
  }

  // 3. clear integers and simulate over the test set
  t0 = std::chrono::steady_clock::now();
  std::vector<std::size_t> clear_class(n), simulated_class(n);
  std::vector<ClearTensor> quantized(n), clear(n);
  parallel_for(n, [&](std::size_t i, std::size_t) {
    quantized[i] = model.quantize_input(test.images[i]);
    clear[i] = run_clear(model.compiled, {quantized[i]}, RunOptions{.threads = 1})[0];
    clear_class[i] = argmax(clear[i]);
    simulated_class[i] = argmax(simulate(model.compiled, {quantized[i]}, i, RunOptions{.threads = 1})[0]);
  });
  auto accuracy = [&](const std::vector<std::size_t>& c, std::size_t count) {
    std::size_t right = 0;
    for (std::size_t i = 0; i < count; ++i) right += c[i] == test.labels[i];
    return 100.0 * static_cast<double>(right) / static_cast<double>(count);
  };
  std::printf("over %zu test images (%.1f s): float %.2f%%, clear %.2f%%, simulate %.2f%%\n", n, seconds_since(t0),
              accuracy(float_class, n), accuracy(clear_class, n), accuracy(simulated_class, n));

  // 4. encrypted, on the first images
  const std::size_t e = std::min(o.encrypted, n);
  std::vector<std::size_t> encrypted_class(e);
  std::size_t agree = 0, equal = 0;
  double seconds = 0;
  if (e > 0) {
    t0 = std::chrono::steady_clock::now();
    ClientKeys keys = ClientKeys::generate(model.compiled);
    std::printf("\nkeys for %s generated in %.1f s\n", model.compiled.instance_name.c_str(), seconds_since(t0));
    for (std::size_t i = 0; i < e; ++i) {
      t0 = std::chrono::steady_clock::now();
      const auto ciphertext = keys.encrypt(model.compiled, {quantized[i]});  // client
      const auto result = run(model.compiled, ciphertext, *keys.server_keys());                     // server
      const ClearTensor decrypted = keys.decrypt(model.compiled, result)[0];                         // client
      seconds += seconds_since(t0);
      encrypted_class[i] = argmax(model.dequantize_output(decrypted));
      agree += encrypted_class[i] == simulated_class[i];
      equal += decrypted == clear[i];
      std::printf("\nimage %zu/%zu: label %u, encrypted class %zu, %.2f s per image, accuracy so far %.1f%%   ", i + 1, e,
                  test.labels[i], encrypted_class[i], seconds / static_cast<double>(i + 1), accuracy(encrypted_class, i + 1));
      std::fflush(stdout);
    }
    std::printf("\n\nencrypted, first %zu test images: accuracy %.2f%% (float %.2f%%, clear %.2f%%, simulate %.2f%% on the "
                "same images); class equal to simulate's on %zu/%zu, output equal to clear on %zu/%zu; %zu PBS per image, "
                "%.2f s per image on %zu threads\n",
                e, accuracy(encrypted_class, e), accuracy(float_class, e), accuracy(clear_class, e),
                accuracy(simulated_class, e), agree, e, equal, e, model.compiled.statistics.bootstraps,
                seconds / static_cast<double>(e), default_thread_count());
  }
  if (!o.csv.empty()) {
    std::ofstream csv(o.csv, std::ios::app);
    const int bits = rounding_bits;  // what a bootstrap reads: the width that sets the cost
    csv << o.dataset << "," << bits << ",float," << accuracy(float_class, n) << "\n"
        << o.dataset << "," << bits << ",clear," << accuracy(clear_class, n) << "\n"
        << o.dataset << "," << bits << ",simulate," << accuracy(simulated_class, n) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  return o.dataset == "mnist" ? run<fhetensor_models::mnist_cnn::Model>(o) : run<fhetensor_models::fashion_cnn::Model>(o);
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_04_mnist: %s\n", e.what());
  return 1;
}
