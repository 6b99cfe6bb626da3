#pragma once
// What a client needs besides its keys to turn data into a model's integer inputs and
// decrypted integers into answers: pixel normalization, the input and output quantizers,
// the softmax left to the client, class labels (Concrete-ML's client keeps the same).
// A model file carries one when the model was quantized from a float network.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/graph.hpp>
#include <fhetensor/nn/quantization.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct ClientRecipe {
  /// An image's pixels p (channels first) become the real input (p * pixel_scale - mean[c]) /
  /// stddev[c], as torchvision's ToTensor and Normalize compute; no mean: no normalization.
  double pixel_scale = 1.0 / 255;
  std::vector<double> mean, stddev;
  nn::Quantizer input, output;
  std::optional<std::size_t> softmax_axis;
  std::vector<std::string> labels;  // class names, by output index

  xt::xarray<double> real_from_pixels(const ClearTensor& pixels) const {
    xt::xarray<double> x = xt::cast<double>(pixels) * pixel_scale;
    if (mean.empty()) return x;
    if (pixels.dimension() < 3 || pixels.shape()[pixels.dimension() - 3] != mean.size() || stddev.size() != mean.size())
      throw std::invalid_argument("fhetensor: the model normalizes " + std::to_string(mean.size()) +
                                  " channels; this image has another number");
    const auto channel = nn::ChannelAxis::of(pixels.shape(), pixels.dimension() - 3);
    for (std::size_t i = 0; i < x.size(); ++i) x.flat(i) = (x.flat(i) - mean[channel(i)]) / stddev[channel(i)];
    return x;
  }
  ClearTensor quantize(const xt::xarray<double>& x) const {
    ClearTensor q = ClearTensor::from_shape(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) q.flat(i) = input.quantize(x.flat(i));
    return q;
  }
  /// Real outputs from decrypted (or clear, or simulated) levels; softmax if the model ends with one.
  xt::xarray<double> dequantize(const ClearTensor& q) const {
    xt::xarray<double> y = xt::xarray<double>::from_shape(q.shape());
    for (std::size_t i = 0; i < q.size(); ++i) y.flat(i) = output.dequantize(q.flat(i));
    if (!softmax_axis) return y;
    // Reductions evaluated at once: a lazy one would outlive its temporary axis list.
    const std::vector<std::size_t> axes{*softmax_axis};
    const xt::xarray<double> m = xt::amax(y, axes, xt::keep_dims);
    const xt::xarray<double> e = xt::exp(y - m);
    const xt::xarray<double> total = xt::sum(e, axes, xt::keep_dims);
    return e / total;
  }
};

FHETENSOR_END_NAMESPACE
