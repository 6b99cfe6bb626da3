#pragma once
// The pieces of post-training quantization that do not depend on the graph: calibrated
// real ranges, uniform quantizers (real = scale * (q - zero)), per-channel weights, and
// the bit widths a user may override per layer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <fhetensor/core/value_range.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/graph.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

/// The real values a node took over the calibration data.
struct RealRange {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();

  void include(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  void include(const RealRange& r) { lo = std::min(lo, r.lo), hi = std::max(hi, r.hi); }
  bool empty() const noexcept { return !(lo <= hi); }
};

/// Ranges by node name, as nn::calibrate() measures them with the float net: of the whole
/// tensor, and of each element (an accumulator's channels have scales of their own, and a
/// channel's range is often far narrower than the tensor's).
struct Calibration {
  static constexpr const char* input_name = "input";  // the model's input
  std::map<std::string, RealRange> ranges;
  std::map<std::string, std::vector<RealRange>> element_ranges;
  std::size_t samples = 0;

  void include(const std::string& name, const auto& values) {
    RealRange& whole = ranges[name];
    std::vector<RealRange>& elements = element_ranges[name];
    elements.resize(values.size());
    std::size_t e = 0;
    for (auto v : values) whole.include(v), elements[e++].include(v);
  }

  const RealRange& operator[](const std::string& name) const {
    const auto it = ranges.find(name);
    if (it == ranges.end() || it->second.empty())
      throw std::invalid_argument("fhetensor: no calibrated range for node " + name +
                                  ": calibrate with the same model, on at least one sample");
    return it->second;
  }
};

/// Uniform asymmetric quantization to `bits` unsigned levels: q = clamp(round(x / scale) +
/// zero, 0, 2^bits - 1). The range is widened to hold 0 exactly (padding, ReLU).
struct Quantizer {
  double scale = 1;
  std::int64_t zero = 0;
  int bits = 8;

  static Quantizer for_range(RealRange r, int bits) {
    if (bits < 1 || bits > 24) throw std::invalid_argument("fhetensor: quantization to " + std::to_string(bits) + " bits");
    const double lo = std::min(r.lo, 0.0), hi = std::max(r.hi, 0.0);
    const auto top = static_cast<double>((std::int64_t{1} << bits) - 1);
    const double scale = hi > lo ? (hi - lo) / top : 1.0;
    const auto zero = static_cast<std::int64_t>(std::clamp(std::round(-lo / scale), 0.0, top));
    return {scale, zero, bits};
  }
  ValueRange levels() const noexcept { return {0, (std::int64_t{1} << bits) - 1}; }
  std::int64_t quantize(double x) const {
    const double q = std::round(x / scale) + static_cast<double>(zero);
    return static_cast<std::int64_t>(std::clamp(q, 0.0, static_cast<double>(levels().hi)));
  }
  double dequantize(std::int64_t q) const { return scale * static_cast<double>(q - zero); }
};

/// Which channel element i of a row-major tensor belongs to, along one axis.
struct ChannelAxis {
  std::size_t channels = 1;
  std::size_t inner = 1;  // elements per step along the axis

  template <class S>
  static ChannelAxis of(const S& shape, std::size_t axis) {
    ChannelAxis c{shape[axis], 1};
    for (std::size_t a = axis + 1; a < shape.size(); ++a) c.inner *= shape[a];
    return c;
  }
  std::size_t operator()(std::size_t i) const noexcept { return (i / inner) % channels; }
};

/// Symmetric signed weights, one scale per output channel: q = round(w / scale[c]) in
/// [-(2^(bits-1) - 1), 2^(bits-1) - 1].
struct ChannelWeights {
  ClearTensor values;
  std::vector<double> scale;
  std::size_t axis = 0;

  /// The sum of each channel's weights (what a zero point contributes to it).
  std::vector<std::int64_t> channel_sums() const {
    const auto channel_of = ChannelAxis::of(values.shape(), axis);
    std::vector<std::int64_t> sums(channel_of.channels, 0);
    for (std::size_t i = 0; i < values.size(); ++i) sums[channel_of(i)] += values.flat(i);
    return sums;
  }
};

/// w rounded to the levels of the given per-channel scales.
inline ChannelWeights quantize_with_scales(const xt::xarray<double>& w, std::size_t axis, std::vector<double> scale) {
  const auto channel_of = ChannelAxis::of(w.shape(), axis);
  ChannelWeights q{ClearTensor::from_shape(w.shape()), std::move(scale), axis};
  for (std::size_t i = 0; i < w.size(); ++i) q.values.flat(i) = std::llround(w.flat(i) / q.scale[channel_of(i)]);
  return q;
}

/// `axis` is the output-channel axis (0 for convolution weights, 1 for [K, M] matrices).
inline ChannelWeights quantize_per_channel(const xt::xarray<double>& w, std::size_t axis, int bits) {
  if (bits < 2 || bits > 24) throw std::invalid_argument("fhetensor: weights quantized to " + std::to_string(bits) + " bits");
  const auto channel_of = ChannelAxis::of(w.shape(), axis);
  std::vector<double> largest(channel_of.channels, 0.0);
  for (std::size_t i = 0; i < w.size(); ++i) largest[channel_of(i)] = std::max(largest[channel_of(i)], std::abs(w.flat(i)));
  const auto top = static_cast<double>((std::int64_t{1} << (bits - 1)) - 1);
  for (double& l : largest) l = l > 0 ? l / top : 1.0;
  return quantize_with_scales(w, axis, std::move(largest));
}

/// Bit widths of one layer; unset ones take QuantizationOptions' defaults.
struct LayerBits {
  std::optional<int> weights;
  std::optional<int> activations;
  std::optional<int> reads;  // bits the layer's tables read of their input (else CompileOptions::rounding_bits)
};

struct QuantizationOptions {
  int input_bits = 8;       // the client quantizes inputs to this many bits
  int weight_bits = 6;      // signed, per output channel
  int activation_bits = 6;  // every table's output
  int output_bits = 8;      // the model's output, requantized to one scale
  std::map<std::string, LayerBits> layers{};  // overrides, by node name
  /// Accumulators get the range seen in calibration, widened by this fraction of its
  /// span, instead of the worst case over all inputs (see assume_range()). Negative:
  /// keep the worst case.
  double range_margin = 0.1;
  /// A narrow channel's weights get up to this many times finer levels (see
  /// QuantizedNet::balanced_weights); 1 keeps plain per-channel scales.
  int max_channel_refinement = 1;
  /// ReLU and Clip read a window of their accumulator, per channel, that covers the
  /// calibrated ranges of this fraction of the channel's elements
  /// (QuantizedNet::saturating_table), rather than the whole range: finer reads at the
  /// same table width. Unset: the whole range.
  std::optional<double> saturating_window{};
  /// With saturating_window: a channel whose window is narrower than the widest is
  /// multiplied by up to this integer to fill the read (the multiplier scales its noise too).
  int max_window_multiplier = 4;
  /// With saturating_window: those tables read in two steps (QuantizedNet::two_step_table),
  /// the first reading first_read_bits: two bootstraps per element, a finer read.
  bool two_step_reads = false;
  int first_read_bits = 5;

  int weight_bits_of(const std::string& layer) const {
    const auto it = layers.find(layer);
    return it != layers.end() && it->second.weights ? *it->second.weights : weight_bits;
  }
  int activation_bits_of(const std::string& layer) const {
    const auto it = layers.find(layer);
    return it != layers.end() && it->second.activations ? *it->second.activations : activation_bits;
  }
};

}  // namespace nn

FHETENSOR_END_NAMESPACE
