#pragma once
// Post-training quantization of an imported model (tools/onnx_import.py's header):
//   Calibration c = nn::calibrate<Model>(weights, samples);         // float net, ranges
//   QuantizedModel q = nn::quantize<Model>(weights, c, {...}, {...}); // compiled
// or, for a model trained by tools/qat.py, its exported recipe:
//   auto r = nn::QuantizationRecipe::load("model.quantization");
//   QuantizedModel q = nn::quantize<Model>(weights, r.calibration, r.options, r.compile_options());
// then q.quantize_input() on the client, any run mode on q.compiled, and
// q.dequantize_output() after decryption.
#include <cmath>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xsort.hpp>
#include <fhetensor/nn/client_recipe.hpp>
#include <fhetensor/compiler/compile.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/nn/float_net.hpp>
#include <fhetensor/nn/quantization.hpp>
#include <fhetensor/nn/quantized_net.hpp>
#include <fhetensor/nn/weight_file.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

/// What the importer's header declares for a model: its input shape and a forward()
/// generic over the Net.
template <class M>
concept ImportedModel = requires { M::input_shape.size(); };

template <ImportedModel M>
inline constexpr std::size_t input_rank = M::input_shape.size();

template <ImportedModel M>
Shape input_shape_of() {
  return Shape(M::input_shape.begin(), M::input_shape.end());
}

/// The float model's top-1 class (argmax of its flattened output) on each sample, on all cores.
template <ImportedModel M>
std::vector<std::size_t> float_top1(const WeightFile& weights, const std::vector<xt::xarray<float>>& samples) {
  std::vector<std::size_t> top1(samples.size());
  parallel_for(samples.size(), [&](std::size_t i, std::size_t) {
    FloatNet net(weights, {}, 1);
    top1[i] = static_cast<std::size_t>(xt::argmax(M::forward(net, typename FloatNet::template Value<input_rank<M>>(samples[i])))());
  });
  return top1;
}

/// The float model over `samples`, recording every node's output range.
template <ImportedModel M>
Calibration calibrate(const WeightFile& weights, const std::vector<xt::xarray<float>>& samples) {
  Calibration c;
  FloatNet net(weights, [&c](const std::string& name, const xt::xarray<float>& out) { c.include(name, out); });
  for (const auto& sample : samples) {
    c.include(Calibration::input_name, sample);
    const typename FloatNet::template Value<input_rank<M>> x = sample;
    M::forward(net, x);
    ++c.samples;
  }
  return c;
}

/// What tools/qat.py trained a model for: the calibrated ranges it exported and the bit
/// widths it trained with. quantize() with these reproduces, bit for bit, the integer model
/// whose accuracy PyTorch reported. The file is a weight file of "range/<node>" [2],
/// "element_ranges/<node>" [E, 2] and "option/<name>" [1] tensors.
struct QuantizationRecipe {
  Calibration calibration;
  QuantizationOptions options;
  int rounding_bits = 6;
  /// The error probability whose bootstrap noise it trained against, if it did.
  std::optional<double> error_probability;

  static QuantizationRecipe load(const std::string& path) {
    try {
      return from(WeightFile::load(path));
    } catch (const std::invalid_argument& e) {
      throw WeightFileError(std::string(e.what()) + " (in " + path + ")");
    }
  }

  static QuantizationRecipe from(const WeightFile& file) {
    QuantizationRecipe r;
    auto option = [&](const std::string& key) {
      const std::string name = "option/" + key;
      if (!file.contains(name) || file[name].size() != 1)
        throw std::invalid_argument("fhetensor: the quantization recipe has no " + name);
      return static_cast<double>(file[name].flat(0));
    };
    auto bits = [&](const std::string& key, int lo, int hi) {
      const double v = option(key);
      if (!(v >= lo && v <= hi) || v != std::floor(v))
        throw std::invalid_argument("fhetensor: the recipe's " + key + " is " + std::to_string(v) + ", not " +
                                    std::to_string(lo) + " to " + std::to_string(hi));
      return static_cast<int>(v);
    };
    r.options.input_bits = bits("input_bits", 1, 24);
    r.options.weight_bits = bits("weight_bits", 2, 24);
    r.options.activation_bits = bits("activation_bits", 1, 24);
    r.options.output_bits = bits("output_bits", 1, 24);
    r.rounding_bits = bits("rounding_bits", 1, 8);
    r.options.range_margin = option("range_margin");
    if (file.contains("option/error_probability")) {
      r.error_probability = option("error_probability");
      if (!(*r.error_probability > 0 && *r.error_probability < 0.5))
        throw std::invalid_argument("fhetensor: the recipe's error_probability is " + std::to_string(*r.error_probability) +
                                    ", not in (0, 0.5)");
    }
    if (file.contains("calibration/samples")) r.calibration.samples = static_cast<std::size_t>(file["calibration/samples"].flat(0));
    for (const auto& [name, t] : file.tensors()) {
      if (name.starts_with("range/")) {
        if (t.size() != 2 || !(t.flat(0) <= t.flat(1)))
          throw std::invalid_argument("fhetensor: the recipe's " + name + " is not a range [lo, hi]");
        r.calibration.ranges[name.substr(6)] = {t.flat(0), t.flat(1)};
      } else if (name.starts_with("element_ranges/")) {
        if (t.dimension() != 2 || t.shape()[1] != 2)
          throw std::invalid_argument("fhetensor: the recipe's " + name + " is not [elements, 2]");
        std::vector<RealRange>& elements = r.calibration.element_ranges[name.substr(15)];
        for (std::size_t e = 0; e < t.shape()[0]; ++e) elements.push_back({t(e, 0), t(e, 1)});
      }
    }
    if (!r.calibration.ranges.count(Calibration::input_name))
      throw std::invalid_argument("fhetensor: the quantization recipe has no range/input");
    return r;
  }

  CompileOptions compile_options(CompileOptions o = {}) const {
    o.rounding_bits = rounding_bits;
    if (error_probability) o.error_probability = *error_probability;
    return o;
  }
};

/// A compiled quantized model and the client's side of its quantization.
struct QuantizedModel {
  CompiledModel compiled;
  Quantizer input;
  Quantizer output;
  std::optional<std::size_t> softmax_axis;  // applied by the client after decryption

  /// What a client needs to use the model (saved with it: serialization/files.hpp).
  ClientRecipe recipe() const {
    ClientRecipe r;
    r.input = input;
    r.output = output;
    r.softmax_axis = softmax_axis;
    return r;
  }
  ClearTensor quantize_input(const xt::xarray<float>& x) const { return recipe().quantize(xt::cast<double>(x)); }
  /// Real outputs from decrypted (or clear, or simulated) levels; softmax if the model
  /// ends with one.
  xt::xarray<double> dequantize_output(const ClearTensor& q) const { return recipe().dequantize(q); }
};

/// Quantizes with the calibrated ranges and compiles.
template <ImportedModel M>
QuantizedModel quantize(const WeightFile& weights, const Calibration& calibration, QuantizationOptions q = {},
                        CompileOptions options = {}) {
  QuantizedNet net(weights, calibration, std::move(q), options.rounding_bits);
  const auto x = net.template input<input_rank<M>>(input_shape_of<M>());
  const auto y = net.output(M::forward(net, x));
  return {compile(y.q, options), net.input_quantizer(), net.output_quantizer(), net.softmax_axis()};
}

}  // namespace nn

FHETENSOR_END_NAMESPACE
