#pragma once
// The Net that turns an imported model's forward() into an encrypted expression with
// integer weights. Every value is an integer tensor q with real = scale * (q - zero):
//  - a linear layer reads levels of one scale and leaves a wide accumulator whose scale
//    is per element (per output channel: weights are quantized per channel), with its
//    calibrated range assumed (QuantizationOptions::range_margin);
//  - a table (activation, or a requantization where a layer needs levels of one scale)
//    reads any value and returns levels: one bootstrap per element, one table per
//    distinct input scale; the compiler fuses a requantization into the table before it;
//  - scaling by constants, average pooling and batch normalization only change scales.
// As in Concrete-ML's post-training quantization (Zama, concrete-ml docs, "Quantization").
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/encrypted.hpp>
#include <fhetensor/expr/operations.hpp>
#include <fhetensor/nn/layers.hpp>
#include <fhetensor/nn/quantization.hpp>
#include <fhetensor/nn/weight_file.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

/// A quantized value: real = scale * (q - zero).
template <std::size_t N>
struct QValue {
  EncryptedTensor<int, N> q;
  std::vector<double> scale;  // one (per tensor) or one per element, row-major
  std::int64_t zero = 0;
  bool levels = false;        // q holds a table's (or the input's) levels, not an accumulator
  std::string name;           // the node whose calibrated range is these real values

  double scale_at(std::size_t e) const { return scale.size() == 1 ? scale[0] : scale[e]; }
  bool uniform() const { return std::all_of(scale.begin(), scale.end(), [&](double s) { return s == scale[0]; }); }
  /// Levels of one positive scale: what linear layers and max pooling read.
  bool is_levels() const { return levels && uniform() && scale[0] > 0; }
};

class QuantizedNet {
 public:
  template <std::size_t N>
  using Value = QValue<N>;

  /// read_bits: what a table reads where no layer pins its width (CompileOptions::rounding_bits).
  QuantizedNet(const WeightFile& weights, const Calibration& calibration, QuantizationOptions options, int read_bits)
      : weights_(weights), calibration_(calibration), options_(std::move(options)), read_bits_(read_bits) {}

  /// The encrypted input: levels of the input quantizer.
  template <std::size_t N>
  QValue<N> input(const Shape& shape) {
    input_ = Quantizer::for_range(calibration_[Calibration::input_name], options_.input_bits);
    return {EncryptedTensor<int, N>::input(shape, input_->levels()), {input_->scale}, input_->zero, true, Calibration::input_name};
  }
  /// The model's output as levels of one scale (requantized if needed).
  template <std::size_t N>
  QValue<N> output(const QValue<N>& v) {
    QValue<N> out = v.is_levels() && v.scale.size() == 1 ? v : table(v, v.name, options_.output_bits, identity, "requantize");
    output_ = Quantizer{out.scale[0], out.zero, options_.output_bits};
    return out;
  }
  const Quantizer& input_quantizer() const { return input_.value(); }
  const Quantizer& output_quantizer() const { return output_.value(); }
  std::optional<std::size_t> softmax_axis() const { return softmax_axis_; }

  // ---- linear layers
  QValue<4> conv(const std::string& name, const QValue<4>& x, const std::string& w, const std::string& b, ConvAttributes a) {
    const QValue<4> in = as_levels(x);
    const ChannelWeights q = balanced_weights(name, xt::xarray<double>(weights_[w]), 0, in.scale[0]);
    const std::size_t c_out = q.values.shape()[0];
    const bool padded = a.pads[0] + a.pads[1] + a.pads[2] + a.pads[3] > 0;
    // Padding is real 0, level `zero`: subtract the zero point first when padding.
    const EncryptedTensor<int, 4> src = padded && in.zero != 0 ? EncryptedTensor<int, 4>(in.q - in.zero) : in.q;
    const std::int64_t folded_zero = padded ? 0 : in.zero;
    ClearTensor bias = ClearTensor::from_shape({c_out});
    const std::vector<std::int64_t> weight_sums = q.channel_sums();
    for (std::size_t c = 0; c < c_out; ++c)
      bias(c) = bias_level(b, c, in.scale[0] * q.scale[c]) - folded_zero * weight_sums[c];
    auto acc = conv2d(src, q.values, bias, Conv2dOptions{a.strides, a.pads, a.dilations, a.group});
    return accumulator<4>(name, acc, per_axis(acc.shape(), 1, q.scale, in.scale[0]));
  }

  QValue<2> gemm(const std::string& name, const QValue<2>& x, const std::string& w, const std::string& b, GemmAttributes a) {
    const xt::xarray<double> b_matrix = weights_[w];
    if (b_matrix.dimension() != 2) throw std::invalid_argument("fhetensor: Gemm " + name + " needs a 2-d weight " + w);
    xt::xarray<double> m = a.trans_b ? xt::xarray<double>(xt::transpose(b_matrix)) : b_matrix;
    m *= a.alpha;
    return dense_layer<2>(name, x, m, b, a.beta);
  }

  template <std::size_t N>
  QValue<N> matmul(const std::string& name, const QValue<N>& x, const std::string& w) {
    return dense_layer<N>(name, x, weights_[w], "", 0);
  }

  template <std::size_t N>
  QValue<N> add(const std::string& name, const QValue<N>& a, const QValue<N>& b) {
    if (a.q.shape() != b.q.shape()) throw std::invalid_argument("fhetensor: Add " + name + " of two shapes");
    if (a.is_levels() && b.is_levels() && a.scale[0] == b.scale[0])
      return accumulator<N>(name, a.q + b.q - (a.zero + b.zero), a.scale);
    // b joins a's scale through a table (free when b is itself a table: they fuse).
    const QValue<N> left = a.uniform() ? a : table(a, a.name, options_.activation_bits_of(name), identity, "requantize");
    const double s = left.scale[0];
    const QValue<N> right = rescale(b, s);
    return accumulator<N>(name, left.q + right.q - left.zero, {s});
  }

  template <std::size_t N>
  QValue<N> add_constant(const std::string& name, const QValue<N>& x, const std::string& c) {
    const xt::xarray<double> constant = xt::broadcast(xt::xarray<double>(weights_[c]), x.q.shape());
    ClearTensor levels = ClearTensor::from_shape(x.q.shape());
    for (std::size_t e = 0; e < levels.size(); ++e) levels.flat(e) = std::llround(constant.flat(e) / x.scale_at(e)) - x.zero;
    return accumulator<N>(name, x.q + levels, x.scale);
  }
  template <std::size_t N>
  QValue<N> mul_constant(const std::string& name, const QValue<N>& x, const std::string& c) {
    return scaled(name, x, xt::xarray<double>(weights_[c]), false);
  }
  template <std::size_t N>
  QValue<N> div_constant(const std::string& name, const QValue<N>& x, const std::string& c) {
    return scaled(name, x, xt::xarray<double>(weights_[c]), true);
  }

  QValue<4> batch_norm(const std::string& name, const QValue<4>& x, const std::string& gamma, const std::string& beta,
                       const std::string& mean, const std::string& var, float epsilon) {
    const auto& g = weights_[gamma];
    const auto& bt = weights_[beta];
    const auto& mu = weights_[mean];
    const auto& v = weights_[var];
    const std::size_t channels = x.q.shape()[1], plane = element_count(x.q.shape()) / (x.q.shape()[0] * channels);
    std::vector<double> scale(element_count(x.q.shape()));
    ClearTensor levels = ClearTensor::from_shape(x.q.shape());
    for (std::size_t e = 0; e < scale.size(); ++e) {
      const std::size_t c = (e / plane) % channels;
      const double a = g(c) / std::sqrt(static_cast<double>(v(c)) + epsilon), shift = bt(c) - mu(c) * a;
      scale[e] = a * x.scale_at(e);
      levels.flat(e) = (scale[e] != 0 ? std::llround(shift / scale[e]) : 0) - x.zero;
    }
    return accumulator<4>(name, x.q + levels, std::move(scale));
  }

  // ---- tables
  template <std::size_t N>
  QValue<N> relu(const std::string& name, const QValue<N>& x) {
    return saturating_table(x, name, options_.activation_bits_of(name), [](double v) { return v > 0 ? v : 0.0; }, 0.0,
                            calibration_[name].hi, "relu");
  }
  template <std::size_t N>
  QValue<N> sigmoid(const std::string& name, const QValue<N>& x) {
    return table(x, name, options_.activation_bits_of(name), [](double v) { return 1 / (1 + std::exp(-v)); }, "sigmoid");
  }
  template <std::size_t N>
  QValue<N> tanh(const std::string& name, const QValue<N>& x) {
    return table(x, name, options_.activation_bits_of(name), [](double v) { return std::tanh(v); }, "tanh");
  }
  template <std::size_t N>
  QValue<N> clip(const std::string& name, const QValue<N>& x, ClipBounds b) {
    const double lo = b.lo, hi = b.hi;
    return saturating_table(x, name, options_.activation_bits_of(name), [lo, hi](double v) { return std::clamp(v, lo, hi); },
                            lo, hi, "clip");
  }
  template <std::size_t N>
  QValue<N> softmax(const std::string&, const QValue<N>& x, std::int64_t axis) {
    softmax_axis_ = static_cast<std::size_t>(axis < 0 ? axis + static_cast<std::int64_t>(N) : axis);
    return x;  // monotone: the client applies it after decryption
  }

  // ---- pooling
  QValue<4> average_pool(const std::string& name, const QValue<4>& x, PoolAttributes a) {
    const QValue<4> in = accumulator_form(x);
    const Shape& s = in.q.shape();
    const Window2d window = pool_window(a, s[2], s[3]);
    // A depthwise convolution with ones sums each window; the count divides the scale.
    ClearTensor ones = xt::ones<std::int64_t>({s[1], std::size_t{1}, a.kernel[0], a.kernel[1]});
    auto sum = conv2d(in.q, ones, 0,
                      Conv2dOptions{a.strides, {window.pad_top, window.pad_left, window.pad_bottom, window.pad_right},
                                    a.dilations, s[1]});
    if (in.scale.size() != 1 && !uniform_per_channel(in))
      throw std::invalid_argument("fhetensor: AveragePool " + name + " of a value whose scale varies within a channel");
    const std::vector<std::size_t> counts = window_counts(a, window, s[2], s[3]);
    std::vector<double> scale(element_count(sum.shape()));
    const std::size_t plane = counts.size();
    for (std::size_t e = 0; e < scale.size(); ++e)  // e / plane is the (batch, channel) plane
      scale[e] = in.scale_at(in.scale.size() == 1 ? 0 : (e / plane) * s[2] * s[3]) / static_cast<double>(counts[e % plane]);
    return accumulator<4>(name, sum, std::move(scale));
  }
  QValue<4> global_average_pool(const std::string& name, const QValue<4>& x) {
    const Shape& s = x.q.shape();
    return average_pool(name, x, PoolAttributes{.kernel = {s[2], s[3]}, .strides = {1, 1}});
  }
  QValue<4> max_pool(const std::string& name, const QValue<4>& x, PoolAttributes a) {
    const QValue<4> in = as_levels(x);
    const Window2d window = pool_window(a, in.q.shape()[2], in.q.shape()[3]);
    return {EncryptedTensor<int, 4>(max_pool2d(in.q, window)), in.scale, in.zero, true, name};
  }

  // ---- data movement
  template <std::size_t N>
  QValue<2> flatten(const std::string& name, const QValue<N>& x, std::int64_t axis) {
    const Shape& s = x.q.shape();
    const auto split = static_cast<std::size_t>(axis < 0 ? axis + static_cast<std::int64_t>(N) : axis);
    const std::size_t outer = std::accumulate(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(split), std::size_t{1}, std::multiplies<>());
    return moved<2>(x, name, fhetensor::reshape(x.q, std::array<std::size_t, 2>{outer, element_count(s) / outer}));
  }
  template <std::size_t R, std::size_t N>
  QValue<R> reshape(const std::string& name, const QValue<N>& x, std::array<std::int64_t, R> extents) {
    std::array<std::size_t, R> e;
    for (std::size_t i = 0; i < R; ++i) e[i] = static_cast<std::size_t>(extents[i]);
    return moved<R>(x, name, fhetensor::reshape(x.q, e));
  }
  template <std::size_t N, class... Rest>
  QValue<N> concat(const std::string& name, std::int64_t axis, const QValue<N>& first, const Rest&... rest) {
    // Every part joins one quantizer, that of the concatenation's calibrated range.
    const Quantizer common = Quantizer::for_range(calibration_[name], options_.activation_bits_of(name));
    auto join = [&](const QValue<N>& v) {
      return v.is_levels() && v.scale[0] == common.scale && v.zero == common.zero ? v.q : requantize(v, common).q;
    };
    const auto a = static_cast<std::size_t>(axis < 0 ? axis + static_cast<std::int64_t>(N) : axis);
    return {EncryptedTensor<int, N>(concatenate(a, join(first), join(rest)...)), {common.scale}, common.zero, true, name};
  }
  template <std::size_t N>
  QValue<N> pad(const std::string& name, const QValue<N>& x, const std::vector<std::int64_t>& pads, float value) {
    if (value != 0) throw std::invalid_argument("fhetensor: Pad " + name + " with a constant other than 0 is not supported");
    if (pads.size() != 2 * N) throw std::invalid_argument("fhetensor: Pad " + name + " needs 2 x rank pads");
    const QValue<N> in = x.zero != 0 ? accumulator_form(x) : x;
    std::array<std::size_t, N> before, after;
    for (std::size_t i = 0; i < N; ++i) {
      if (pads[i] < 0 || pads[N + i] < 0) throw std::invalid_argument("fhetensor: Pad " + name + " with negative pads");
      before[i] = static_cast<std::size_t>(pads[i]), after[i] = static_cast<std::size_t>(pads[N + i]);
    }
    if (in.scale.size() != 1) throw std::invalid_argument("fhetensor: Pad " + name + " of a per-channel accumulator");
    return {EncryptedTensor<int, N>(fhetensor::pad(in.q, before, after)), in.scale, in.zero, in.levels, name};
  }

 private:
  static constexpr auto identity = [](double v) { return v; };

  /// A table on every element: f of the real value, quantized to the calibrated range of
  /// node `range_of` over `bits` levels. Elements of equal input scale share a table.
  template <std::size_t N, class F>
  QValue<N> table(const QValue<N>& x, const std::string& range_of, int bits, F f, const std::string& what) {
    return apply_tables(x, Quantizer::for_range(calibration_[range_of], bits), f, what, range_of);
  }
  /// A saturating activation (f constant below lo and above hi, real values) read through
  /// a window of its accumulator, with options_.saturating_window (else a plain table).
  /// Each channel's table saturates where the channel's calibrated values stop (its active
  /// interval [a, b] within [lo, hi]) and holds f's levels minus c, the middle of its two
  /// saturated levels, so that the bootstrap's negacyclic half (an input past the window's
  /// end reads -table at the other end) saturates too: an input within [b - W, a + W]
  /// reads right for a window W wide (real units), though the table spans only W; c is
  /// added back in clear. W covers the calibrated values of that fraction of the channel's
  /// elements; each channel is multiplied by a small integer and shifted so that its window
  /// fills one shared read grid: a channel of narrow values is read with (nearly) all the
  /// table's bits too. Elements past their window may be misread, the same way in every
  /// run mode.
  template <std::size_t N, class F>
  QValue<N> saturating_table(const QValue<N>& x, const std::string& name, int bits, F f, double lo, double hi, const std::string& what) {
    const auto ranges = calibration_.element_ranges.find(x.name);
    const Node& node = (*x.q.graph())[x.q.node()];
    if (!options_.saturating_window || x.levels || !node.assumed_range || ranges == calibration_.element_ranges.end() ||
        ranges->second.size() != element_count(x.q.shape()) || !(lo < hi))
      return table(x, name, bits, f, what);
    // Levels 0 .. 2^bits - 2, so that the two saturated levels have an even sum.
    const RealRange out = calibration_[name];
    Quantizer to = Quantizer::for_range(out, bits);  // checks bits
    to.scale = (std::max(out.hi, 0.0) - std::min(out.lo, 0.0)) / static_cast<double>((std::int64_t{1} << bits) - 2);
    if (!(to.scale > 0)) return table(x, name, bits, f, what);
    to.zero = static_cast<std::int64_t>(std::round(-std::min(out.lo, 0.0) / to.scale));
    if (options_.two_step_reads) {
      const std::int64_t low = to.quantize(f(lo)), high = to.quantize(f(hi));
      if ((low + high) % 2 != 0) return table(x, name, bits, f, what);
      return two_step_table(x, name, to, f, lo, hi, (low + high) / 2, what);
    }

    // Each channel's active interval: the part of [lo, hi] its calibrated values reach.
    const std::vector<RealRange>& element = ranges->second;
    const ScaleGroups groups = group_by_scale(x, true);
    std::vector<RealRange> active(groups.scales.size());
    for (std::size_t e = 0; e < groups.table_of.size(); ++e) {
      if (!(groups.scales[groups.table_of[e]] > 0)) return table(x, name, bits, f, what);
      if (!element[e].empty()) active[groups.table_of[e]].include(active_interval(element[e], lo, hi));
    }
    // The channel's saturated levels, one dropped from the top when their sum is odd.
    std::vector<std::int64_t> low_of(groups.scales.size()), high_of(groups.scales.size());
    for (std::size_t g = 0; g < active.size(); ++g) {
      const RealRange a = active[g].empty() ? RealRange{lo, lo} : active[g];
      low_of[g] = to.quantize(f(a.lo)), high_of[g] = to.quantize(f(a.hi));
      if ((low_of[g] + high_of[g]) % 2 != 0) --high_of[g];
    }
    // Its window's width (in its levels): what reading its elements' values right needs;
    // none for a constant channel (its table reads the same level everywhere).
    std::vector<std::vector<double>> needed(groups.scales.size());
    for (std::size_t e = 0; e < groups.table_of.size(); ++e) {
      const RealRange& a = active[groups.table_of[e]];
      if (!element[e].empty()) needed[groups.table_of[e]].push_back(std::max(element[e].hi - a.lo, a.hi - element[e].lo));
    }
    std::vector<double> width(groups.scales.size(), 0.0);
    for (std::size_t g = 0; g < width.size(); ++g) {
      if (needed[g].empty() || low_of[g] == high_of[g]) continue;
      auto& n = needed[g];
      const auto rank = std::min(n.size() - 1, static_cast<std::size_t>(std::ceil(*options_.saturating_window * static_cast<double>(n.size()))) - 1);
      std::nth_element(n.begin(), n.begin() + static_cast<std::ptrdiff_t>(rank), n.end());
      width[g] = std::max(n[rank], active[g].hi - active[g].lo) / groups.scales[g];
    }
    const double widest = *std::max_element(width.begin(), width.end());
    if (!(widest > 0)) return table(x, name, bits, f, what);
    // The grid: the 2^reads boxes of a table but the last (plan_rounding rounds half up at
    // both ends), step levels each; the widest window fits. A narrower channel is
    // multiplied by up to max_window_multiplier (which multiplies its noise too) to fill it.
    const int reads = reads_of(name);
    std::int64_t step = 1;
    while (static_cast<double>(((std::int64_t{1} << reads) - 1) * step) < widest + 3) step *= 2;
    const std::int64_t half = (step << reads) / 2;
    const double grid = static_cast<double>(2 * half - 2 * step - 3);  // symmetric about 0, room for the shifts' rounding
    const auto most = static_cast<double>(std::max(1, options_.max_window_multiplier));
    std::vector<std::int64_t> multiplier_of(groups.scales.size()), shift_of(groups.scales.size()), middle_of(groups.scales.size());
    std::vector<TableFunction> functions(groups.scales.size());
    for (std::size_t g = 0; g < functions.size(); ++g) {
      const double s = groups.scales[g];
      const auto k = static_cast<std::int64_t>(width[g] > 0 ? std::clamp(std::floor(grid / width[g]), 1.0, most) : 1.0);
      const std::int64_t o = width[g] == 0 ? 0 : -std::llround(static_cast<double>(k) * (active[g].lo + active[g].hi) / (2 * s));
      const std::int64_t low = low_of[g], high = high_of[g], c = (low + high) / 2;
      // v = k x + o holds x = (v - o) / k, the real value s (v - o) / k.
      const double unit = s / static_cast<double>(k);
      functions[g] = {what, [f, unit, o, to, low, high, c](std::int64_t v) { return std::clamp(to.quantize(f(unit * static_cast<double>(v - o))), low, high) - c; },
                      [f, unit, o, to, low, high, c](double v) {
                        return std::clamp(f(unit * (v - static_cast<double>(o))) / to.scale + static_cast<double>(to.zero),
                                          static_cast<double>(low), static_cast<double>(high)) - static_cast<double>(c);
                      }};
      multiplier_of[g] = k, shift_of[g] = o, middle_of[g] = c;
    }
    ClearTensor multiplier = ClearTensor::from_shape(x.q.shape()), shift = ClearTensor::from_shape(x.q.shape()),
                middle = ClearTensor::from_shape(x.q.shape());
    for (std::size_t e = 0; e < groups.table_of.size(); ++e) {
      const std::uint32_t g = groups.table_of[e];
      multiplier.flat(e) = multiplier_of[g], shift.flat(e) = shift_of[g], middle.flat(e) = middle_of[g];
    }
    const EncryptedTensor<int, N> windowed = assume_range(EncryptedTensor<int, N>(x.q * multiplier + shift), {-half, half - step - 1});
    EncryptedTensor<int, N> y(apply(windowed, std::move(functions), groups.table_of));
    (*y.graph())[y.node()].rounding_bits = reads;  // the grid above is sized for these
    return {EncryptedTensor<int, N>(y + middle), {to.scale}, to.zero, true, name};
  }

  /// Elements grouped by scale, one table each; by_channel: by scale and channel (axis 1),
  /// for tables whose window depends on the channel's calibrated values.
  struct ScaleGroups {
    std::vector<double> scales;
    std::vector<std::uint32_t> table_of;  // per element
  };
  template <std::size_t N>
  static ScaleGroups group_by_scale(const QValue<N>& x, bool by_channel = false) {
    ScaleGroups groups;
    std::map<std::pair<double, std::size_t>, std::uint32_t> index_of;
    const auto channel_of = ChannelAxis::of(x.q.shape(), N > 1 ? 1 : 0);
    groups.table_of.resize(element_count(x.q.shape()));
    for (std::size_t e = 0; e < groups.table_of.size(); ++e) {
      const std::pair key{x.scale_at(e), by_channel ? channel_of(e) : 0};
      const auto [it, added] = index_of.try_emplace(key, static_cast<std::uint32_t>(groups.scales.size()));
      if (added) groups.scales.push_back(key.first);
      groups.table_of[e] = it->second;
    }
    return groups;
  }

  /// The two-step read of a saturating table (QuantizationOptions::two_step_reads): a
  /// first table reads x coarsely and returns how far it lies beyond the active interval
  /// [lo, hi] of its element (plus the interval's centre); x minus that is narrow, and
  /// the second table reads it finely. Inside the interval the second read sees x itself,
  /// not x rounded by the first. Two bootstraps per element.
  template <std::size_t N, class F>
  QValue<N> two_step_table(const QValue<N>& x, const std::string& name, const Quantizer& to, F f, double lo, double hi,
                           std::int64_t c, const std::string& what) {
    const Node& node = (*x.q.graph())[x.q.node()];
    const ValueRange assumed = *node.assumed_range;
    const int first_bits = options_.first_read_bits;
    // The first read's step, as the compiler's plan_rounding will choose it.
    std::int64_t step = 1;
    while (static_cast<std::uint64_t>(assumed.span()) >= (std::uint64_t{1} << first_bits) * static_cast<std::uint64_t>(step)) step *= 2;
    // One table per scale (per channel), over the active interval of its elements.
    const std::vector<RealRange>& ranges = calibration_.element_ranges.at(x.name);
    ScaleGroups groups = group_by_scale(x, true);
    std::vector<RealRange> reached(groups.scales.size());
    for (std::size_t e = 0; e < groups.table_of.size(); ++e) reached[groups.table_of[e]].include(ranges[e]);
    std::vector<TableFunction> excess(reached.size()), fine(reached.size());
    std::vector<std::int64_t> centre_of(reached.size());
    double half_width = 0;
    for (std::uint32_t index = 0; index < groups.scales.size(); ++index) {
      const double s = groups.scales[index];
      const RealRange active = reached[index].empty() ? RealRange{lo, lo} : active_interval(reached[index], lo, hi);
      const auto a = static_cast<std::int64_t>(std::floor(active.lo / s)), b = static_cast<std::int64_t>(std::ceil(active.hi / s));
      const std::int64_t centre = a + (b - a) / 2, m = step / 2;
      half_width = std::max(half_width, static_cast<double>(b - a) / 2);
      centre_of[index] = centre;
      excess[index] = {what + " (coarse)", [a, b, m, centre](std::int64_t v) { return v - std::clamp(v, a - m, b + m) + centre; },
                       [a, b, m, centre](double v) {
                         return v - std::clamp(v, static_cast<double>(a - m), static_cast<double>(b + m)) + static_cast<double>(centre);
                       }};
    }
    EncryptedTensor<int, N> coarse(apply(x.q, std::move(excess), groups.table_of));
    (*coarse.graph())[coarse.node()].rounding_bits = first_bits;
    // Inside: x - centre. Beyond: within a step (and a step of noise) of the interval.
    const auto reach = static_cast<std::int64_t>(std::ceil(half_width)) + 2 * step;
    const EncryptedTensor<int, N> near = assume_range(EncryptedTensor<int, N>(x.q - coarse), {-reach, reach});
    for (std::uint32_t index = 0; index < groups.scales.size(); ++index) {
      const double s = groups.scales[index];
      const std::int64_t centre = centre_of[index];
      fine[index] = {what, [f, s, centre, to, c](std::int64_t v) { return to.quantize(f(s * static_cast<double>(v + centre))) - c; },
                     [f, s, centre, to, c](double v) { return f(s * (v + static_cast<double>(centre))) / to.scale + static_cast<double>(to.zero - c); }};
    }
    EncryptedTensor<int, N> y(apply(near, std::move(fine), std::move(groups.table_of)));
    pin_reads(y, name);
    return {y, {to.scale}, to.zero - c, true, name};
  }

  /// The part of [lo, hi] that values in r reach (a point at the nearer end when none).
  static RealRange active_interval(const RealRange& r, double lo, double hi) {
    const double a = std::clamp(r.lo, lo, hi);
    return {a, std::max(std::clamp(r.hi, lo, hi), a)};
  }

  template <std::size_t N>
  QValue<N> requantize(const QValue<N>& x, const Quantizer& to) { return apply_tables(x, to, identity, "requantize", x.name); }
  /// x's real values in levels of scale s (zero point 0), unclamped.
  template <std::size_t N>
  QValue<N> rescale(const QValue<N>& x, double s) {
    const RealRange r = calibration_[x.name];
    const int bits = std::max(1, static_cast<int>(std::ceil(std::log2((r.hi - std::min(r.lo, 0.0)) / s + 1))));
    Quantizer to{s, static_cast<std::int64_t>(std::round(-std::min(r.lo, 0.0) / s)), std::min(bits, 30)};
    QValue<N> y = apply_tables(x, to, identity, "rescale", x.name);
    return {EncryptedTensor<int, N>(y.q - y.zero), {s}, 0, false, x.name};
  }

  /// Tables of `to.quantize(f(real value))` on every element.
  template <std::size_t N, class F>
  QValue<N> apply_tables(const QValue<N>& x, const Quantizer& to, F f, const std::string& what, const std::string& name) {
    ScaleGroups groups = group_by_scale(x);
    std::vector<TableFunction> functions;
    for (const double s : groups.scales)
      functions.push_back({what, [f, s, z = x.zero, to](std::int64_t v) { return to.quantize(f(s * static_cast<double>(v - z))); },
                           [f, s, z = x.zero, to](double v) { return f(s * (v - static_cast<double>(z))) / to.scale + static_cast<double>(to.zero); }});
    EncryptedTensor<int, N> y(apply(x.q, std::move(functions), std::move(groups.table_of)));
    pin_reads(y, name);
    return {y, {to.scale}, to.zero, true, name};
  }

  /// The bits layer `name`'s tables read, where QuantizationOptions::layers sets them.
  std::optional<int> pinned_reads(const std::string& name) const {
    const auto it = options_.layers.find(name);
    return it != options_.layers.end() ? it->second.reads : std::nullopt;
  }
  template <std::size_t N>
  void pin_reads(const EncryptedTensor<int, N>& table, const std::string& name) const {
    if (const auto reads = pinned_reads(name)) (*table.graph())[table.node()].rounding_bits = *reads;
  }
  int reads_of(const std::string& name) const { return pinned_reads(name).value_or(read_bits_); }

  /// Levels of one positive scale, requantizing when x is anything else.
  template <std::size_t N>
  QValue<N> as_levels(const QValue<N>& x) {
    return x.is_levels() ? x : requantize(x, Quantizer::for_range(calibration_[x.name], options_.activation_bits_of(x.name)));
  }
  /// The same real values with zero point 0 (levels minus their zero).
  template <std::size_t N>
  QValue<N> accumulator_form(const QValue<N>& x) {
    if (x.zero == 0) return x;
    return {EncryptedTensor<int, N>(x.q - x.zero), x.scale, 0, false, x.name};
  }

  /// A linear layer's result, its calibrated range assumed (in levels, per element scale).
  template <std::size_t N, class Expr>
  QValue<N> accumulator(const std::string& name, const Expr& acc, std::vector<double> scale) {
    EncryptedTensor<int, N> q(acc.graph(), acc.node());
    if (options_.range_margin >= 0 && calibration_.ranges.count(name)) {
      // Each element's range in its own scale: a channel of small weights has a small
      // scale and, usually, small values.
      const auto it = calibration_.element_ranges.find(name);
      const bool per_element = it != calibration_.element_ranges.end() && it->second.size() == element_count(q.shape());
      double lo = 0, hi = 0;
      for (std::size_t e = 0; e < (per_element ? it->second.size() : scale.size()); ++e) {
        const double s = scale.size() == 1 ? scale[0] : scale[e];
        const RealRange r = per_element ? it->second[e] : calibration_[name];
        if (s != 0 && !r.empty()) lo = std::min({lo, r.lo / s, r.hi / s}), hi = std::max({hi, r.lo / s, r.hi / s});
      }
      const double margin = std::fma(options_.range_margin, hi - lo, 1.0);  // one rounding, as tools/qat.py computes it
      q = assume_range(q, ValueRange{static_cast<std::int64_t>(std::floor(lo - margin)), static_cast<std::int64_t>(std::ceil(hi + margin))});
    }
    return {q, std::move(scale), 0, false, name};
  }

  template <std::size_t N>
  QValue<N> dense_layer(const std::string& name, const QValue<N>& x, const xt::xarray<double>& m, const std::string& b, double beta) {
    const QValue<N> in = as_levels(x);
    const ChannelWeights q = balanced_weights(name, m, 1, in.scale[0]);
    const std::size_t cols = q.values.shape()[1];
    ClearTensor bias = ClearTensor::from_shape({cols});
    const std::vector<std::int64_t> weight_sums = q.channel_sums();
    for (std::size_t c = 0; c < cols; ++c)
      bias(c) = bias_level(b, c, in.scale[0] * q.scale[c], beta) - in.zero * weight_sums[c];
    auto acc = dense(in.q, q.values, bias);
    return accumulator<N>(name, acc, per_axis(acc.shape(), N - 1, q.scale, in.scale[0]));
  }

  /// Per-channel weights, each channel's scale refined by an integer factor so that every
  /// channel's calibrated accumulator spans about as many levels as the widest one: a
  /// table reads all channels with one rounding, and a narrow channel would otherwise
  /// keep only a few of its levels.
  ChannelWeights balanced_weights(const std::string& name, const xt::xarray<double>& w, std::size_t axis, double input_scale) const {
    const int bits = options_.weight_bits_of(name);
    ChannelWeights q = quantize_per_channel(w, axis, bits);
    const auto it = calibration_.element_ranges.find(name);
    if (options_.max_channel_refinement <= 1 || it == calibration_.element_ranges.end()) return q;
    const std::size_t channels = q.scale.size(), elements = it->second.size();
    // Output elements: channel axis 1 of [N, C, H, W] for convolutions, the last for matrices.
    const ChannelAxis channel_of{channels, axis == 0 ? elements / channels : 1};
    std::vector<double> span(channels, 0.0);
    for (std::size_t e = 0; e < elements; ++e) {
      const RealRange& r = it->second[e];
      if (r.empty()) continue;
      const std::size_t c = channel_of(e);
      span[c] = std::max(span[c], std::max(std::abs(r.lo), std::abs(r.hi)) / (input_scale * q.scale[c]));
    }
    const double widest = *std::max_element(span.begin(), span.end());
    std::vector<double> scale = q.scale;
    for (std::size_t c = 0; c < channels; ++c)
      if (span[c] > 0) scale[c] /= std::clamp(std::floor(widest / span[c]), 1.0, static_cast<double>(options_.max_channel_refinement));
    return quantize_with_scales(w, axis, std::move(scale));
  }

  /// Bias b[c] (scalar b broadcasts) times beta in levels of `scale`; 0 without a bias.
  std::int64_t bias_level(const std::string& b, std::size_t c, double scale, double beta = 1) const {
    if (b.empty()) return 0;
    const auto& t = weights_[b];
    return std::llround(beta * static_cast<double>(t.size() == 1 ? t.flat(0) : t.flat(c)) / scale);
  }

  /// Per-element scales of a tensor whose axis `axis` carries channel scales times s.
  static std::vector<double> per_axis(const Shape& shape, std::size_t axis, const std::vector<double>& channel, double s) {
    const auto channel_of = ChannelAxis::of(shape, axis);
    std::vector<double> scale(element_count(shape));
    for (std::size_t e = 0; e < scale.size(); ++e) scale[e] = channel[channel_of(e)] * s;
    return scale;
  }
  template <std::size_t N>
  static bool uniform_per_channel(const QValue<N>& x) {
    const Shape& s = x.q.shape();
    const std::size_t plane = s[2] * s[3];
    for (std::size_t e = 0; e < x.scale.size(); ++e)
      if (x.scale[e] != x.scale[e - e % plane]) return false;
    return true;
  }

  template <std::size_t N>
  QValue<N> scaled(const std::string& name, const QValue<N>& x, const xt::xarray<double>& c, bool divide) {
    const xt::xarray<double> factor = xt::broadcast(c, x.q.shape());
    std::vector<double> scale(factor.size());
    for (std::size_t e = 0; e < scale.size(); ++e) scale[e] = divide ? x.scale_at(e) / factor.flat(e) : x.scale_at(e) * factor.flat(e);
    QValue<N> out{x.q, std::move(scale), x.zero, x.levels, name};
    if (out.uniform()) out.scale.resize(1);
    return out;
  }

  template <std::size_t R, std::size_t N, class Expr>
  static QValue<R> moved(const QValue<N>& x, const std::string& name, const Expr& e) {
    return {EncryptedTensor<int, R>(e.graph(), e.node()), x.scale, x.zero, x.levels, name};
  }

  /// ONNX pooling window; ceil_mode pads the bottom and right so that the last partial
  /// window counts.
  static Window2d pool_window(const PoolAttributes& a, std::size_t h, std::size_t w) {
    Window2d win{.kernel_h = a.kernel[0], .kernel_w = a.kernel[1], .stride_h = a.strides[0], .stride_w = a.strides[1],
                 .pad_top = a.pads[0], .pad_left = a.pads[1], .pad_bottom = a.pads[2], .pad_right = a.pads[3],
                 .dilation_h = a.dilations[0], .dilation_w = a.dilations[1]};
    if (a.ceil_mode) {
      // ONNX's output size with ceil, less a last window that would start in the padding.
      auto extra = [](std::size_t in, std::size_t pad_begin, std::size_t pads, std::size_t k, std::size_t s, std::size_t d) {
        const std::size_t span = d * (k - 1) + 1;
        std::size_t out = (in + pads - span + s - 1) / s + 1;
        if ((out - 1) * s >= in + pad_begin) --out;
        return (out - 1) * s + span > in + pads ? (out - 1) * s + span - in - pads : std::size_t{0};
      };
      win.pad_bottom += extra(h, a.pads[0], a.pads[0] + a.pads[2], a.kernel[0], a.strides[0], a.dilations[0]);
      win.pad_right += extra(w, a.pads[1], a.pads[1] + a.pads[3], a.kernel[1], a.strides[1], a.dilations[1]);
    }
    return win;
  }
  /// For each output position, the divisor of its average: the window's taps inside the
  /// input or, with count_include_pad, inside the input and ONNX's pads (not ceil_mode's).
  static std::vector<std::size_t> window_counts(const PoolAttributes& a, const Window2d& win, std::size_t h, std::size_t w) {
    Window2d counted = win;
    if (a.count_include_pad) {
      h += a.pads[0] + a.pads[2], w += a.pads[1] + a.pads[3];
      counted.pad_top = counted.pad_left = 0;
      counted.pad_bottom -= a.pads[2], counted.pad_right -= a.pads[3];
    }
    const IndexMap taps = counted.taps(h, w);
    const std::size_t k = win.kernel_h * win.kernel_w;
    std::vector<std::size_t> counts(taps.size() / k);
    for (std::size_t o = 0; o < counts.size(); ++o)
      counts[o] = static_cast<std::size_t>(std::max<std::ptrdiff_t>(
          1, std::count_if(taps.begin() + static_cast<std::ptrdiff_t>(o * k), taps.begin() + static_cast<std::ptrdiff_t>((o + 1) * k),
                           [](std::int64_t i) { return i >= 0; })));
    return counts;
  }

  const WeightFile& weights_;
  const Calibration& calibration_;
  QuantizationOptions options_;
  int read_bits_;
  std::optional<Quantizer> input_, output_;
  std::optional<std::size_t> softmax_axis_;
};

}  // namespace nn

FHETENSOR_END_NAMESPACE
