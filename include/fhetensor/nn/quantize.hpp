#pragma once
// Post-training quantization of an imported model (tools/onnx_import.py's header):
//   Calibration c = nn::calibrate<Model>(weights, samples);         // float net, ranges
//   QuantizedModel q = nn::quantize<Model>(weights, c, {...}, {...}); // compiled
// then q.quantize_input() on the client, any run mode on q.compiled, and
// q.dequantize_output() after decryption.
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <fhetensor/compiler/compile.hpp>
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

/// A compiled quantized model and the client's side of its quantization.
struct QuantizedModel {
  CompiledModel compiled;
  Quantizer input;
  Quantizer output;
  std::optional<std::size_t> softmax_axis;  // applied by the client after decryption

  ClearTensor quantize_input(const xt::xarray<float>& x) const {
    ClearTensor q = ClearTensor::from_shape(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) q.flat(i) = input.quantize(x.flat(i));
    return q;
  }
  /// Real outputs from decrypted (or clear, or simulated) levels; softmax if the model
  /// ends with one.
  xt::xarray<double> dequantize_output(const ClearTensor& q) const {
    xt::xarray<double> y = xt::xarray<double>::from_shape(q.shape());
    for (std::size_t i = 0; i < q.size(); ++i) y.flat(i) = output.dequantize(q.flat(i));
    if (softmax_axis) y = softmax(y, *softmax_axis);
    return y;
  }

 private:
  static xt::xarray<double> softmax(const xt::xarray<double>& y, std::size_t axis) {
    const auto m = xt::amax(y, {axis}, xt::keep_dims);
    const xt::xarray<double> e = xt::exp(y - m);
    return e / xt::sum(e, {axis}, xt::keep_dims);
  }
};

/// Quantizes with the calibrated ranges and compiles.
template <ImportedModel M>
QuantizedModel quantize(const WeightFile& weights, const Calibration& calibration, QuantizationOptions q = {},
                        CompileOptions options = {}) {
  QuantizedNet net(weights, calibration, std::move(q));
  const auto x = net.template input<input_rank<M>>(input_shape_of<M>());
  const auto y = net.output(M::forward(net, x));
  return {compile(y.q, options), net.input_quantizer(), net.output_quantizer(), net.softmax_axis()};
}

}  // namespace nn

FHETENSOR_END_NAMESPACE
