// Models trained by tools/qat.py: quantized with their exported recipe, run_clear must
// give, image for image over the whole test set, the integer outputs PyTorch computed
// (the JSON's FNV-1a digest) and so its accuracy. And the recipe loader's refusals.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <xtensor/xsort.hpp>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/idx.hpp>
#include <fhetensor/nn/quantize.hpp>

#include "fashion/fashion_cnn.hpp"  // QAT keeps the float model's graph
#include "mnist/mnist_cnn.hpp"

using namespace fhetensor;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The value of a top-level "key": value in tools/qat.py's JSON summary, unquoted.
std::string json_value(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\": ");
  REQUIRE(at != std::string::npos);
  const auto begin = at + key.size() + 4;
  const auto end = json.find_first_of(",\n", begin);
  std::string v = json.substr(begin, end - begin);
  if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

struct Fnv1a {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void add(std::int64_t v) {
    for (int b = 0; b < 8; ++b) h = (h ^ ((static_cast<std::uint64_t>(v) >> (8 * b)) & 0xff)) * 0x100000001b3ULL;
  }
  std::string hex() const {
    char s[17];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(h));
    return s;
  }
};

template <class Model>
void check_trained_model(io::Dataset dataset, const std::string& folder, const std::string& trained) {
  const std::string base = std::string(FHETENSOR_MODELS_DIR) + "/" + folder + "/" + trained;
  const auto files = io::find_dataset(dataset, io::Split::test);
  if (!files) {
    WARN(folder << " test images not found (FHETENSOR_DATA, ../shared/data, dataset-fashion-mnist): skipped");
    return;
  }
  const nn::WeightFile weights = nn::WeightFile::load(base + ".weights");
  const auto recipe = nn::QuantizationRecipe::load(base + ".quantization");
  const nn::QuantizedModel model = nn::quantize<Model>(weights, recipe.calibration, recipe.options,
                                                          recipe.compile_options({.error_probability = 0x1p-6, .rounding = Rounding::approximate}));
  const std::string summary = read_text(base + ".json");

  const io::IdxImages images = io::read_idx_images(files->images);
  const std::vector<std::uint8_t> labels = io::read_idx_labels(files->labels);
  REQUIRE(std::to_string(images.count) == json_value(summary, "test_images"));
  std::vector<ClearTensor> outputs(images.count);
  parallel_for(images.count, [&](std::size_t i, std::size_t) {
    xt::xarray<float> x = xt::xarray<float>::from_shape({1, 1, images.rows, images.cols});
    for (std::size_t p = 0; p < images.image_size(); ++p) x.flat(p) = static_cast<float>(images.image(i)[p]) / 255.0f;
    outputs[i] = run_clear(model.compiled, {model.quantize_input(x)}, RunOptions{.threads = 1})[0];
  });
  Fnv1a digest;
  std::size_t right = 0;
  for (std::size_t i = 0; i < images.count; ++i) {
    for (std::int64_t v : outputs[i]) digest.add(v);
    right += static_cast<std::size_t>(xt::argmax(outputs[i])()) == labels[i];
  }
  INFO(trained << ": " << right << " of " << images.count << " right in clear integers");
  CHECK(digest.hex() == json_value(summary, "clear_output_digest"));
  CHECK(static_cast<double>(right) / static_cast<double>(images.count) == std::stod(json_value(summary, "clear_test_accuracy")));
}

nn::WeightFile minimal_recipe() {
  nn::WeightFile f;
  for (const char* key : {"input_bits", "weight_bits", "activation_bits", "output_bits", "rounding_bits"})
    f.insert(std::string("option/") + key, xt::xarray<float>{6.0f});
  f.insert("option/range_margin", xt::xarray<float>{0.125f});
  f.insert("range/input", xt::xarray<float>{0.0f, 1.0f});
  f.insert("range/fc", xt::xarray<float>{-2.0f, 3.0f});
  f.insert("element_ranges/fc", xt::xarray<float>{{-2.0f, 1.0f}, {0.5f, 3.0f}});
  return f;
}

}  // namespace

TEST_CASE("QAT models: run_clear reproduces PyTorch's integer outputs on every MNIST test image", "[qat]") {
  check_trained_model<fhetensor_models::mnist_cnn::Model>(io::Dataset::mnist, "mnist", "mnist_qat");
}

TEST_CASE("QAT models: run_clear reproduces PyTorch's integer outputs on every Fashion-MNIST test image", "[qat]") {
  check_trained_model<fhetensor_models::fashion_cnn::Model>(io::Dataset::fashion_mnist, "fashion", "fashion_qat");
}

TEST_CASE("Quantization recipe: read back, and refused when incomplete or inconsistent", "[qat]") {
  const auto r = nn::QuantizationRecipe::from(minimal_recipe());
  CHECK(r.rounding_bits == 6);
  CHECK(r.options.weight_bits == 6);
  CHECK(r.options.range_margin == 0.125);
  CHECK(r.calibration["fc"].lo == -2.0);
  REQUIRE(r.calibration.element_ranges.at("fc").size() == 2);
  CHECK(r.calibration.element_ranges.at("fc")[1].lo == 0.5);
  CHECK(r.compile_options().rounding_bits == 6);
  CHECK_FALSE(r.error_probability);
  CHECK(r.compile_options({.error_probability = 0x1p-9}).error_probability == 0x1p-9);
  nn::WeightFile noisy = minimal_recipe();
  noisy.insert("option/error_probability", xt::xarray<float>{0.25f});
  CHECK(nn::QuantizationRecipe::from(noisy).compile_options({.error_probability = 0x1p-9}).error_probability == 0.25);

  auto refused = [](nn::WeightFile f, const std::string& what) {
    REQUIRE_THROWS_WITH(nn::QuantizationRecipe::from(f), Catch::Contains(what));
  };
  nn::WeightFile f = minimal_recipe();
  f.insert("option/rounding_bits", xt::xarray<float>{9.0f});
  refused(f, "rounding_bits");
  f = minimal_recipe();
  f.insert("option/weight_bits", xt::xarray<float>{4.5f});
  refused(f, "weight_bits");
  f = minimal_recipe();
  f.insert("range/fc", xt::xarray<float>{3.0f, -2.0f});
  refused(f, "range/fc");
  f = minimal_recipe();
  f.insert("element_ranges/fc", xt::xarray<float>{1.0f, 2.0f, 3.0f});
  refused(f, "element_ranges/fc");
  f = minimal_recipe();
  f.insert("option/error_probability", xt::xarray<float>{0.5f});
  refused(f, "error_probability");
  nn::WeightFile no_option;
  no_option.insert("range/input", xt::xarray<float>{0.0f, 1.0f});
  refused(no_option, "option/input_bits");
  CHECK_THROWS_AS(nn::QuantizationRecipe::load("/nonexistent.quantization"), nn::WeightFileError);
}
