#pragma once
// The float reference Net: runs an imported model's forward() (tools/onnx_import.py, the
// interface in docs/import.md) over plain floats with ONNX semantics. It is the reference
// the encrypted model is compared with, and the calibration pass: the observer sees every
// node's output under the node's name.
//
// Conv, Gemm and MatMul are the hot loops (whole test sets, ImageNet-sized convolutions):
// a convolution unfolds its windows (im2col) and all three share one matrix product that
// the compiler vectorises, in parallel over panels of output columns or over groups.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xtensor.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/nn/layers.hpp>
#include <fhetensor/nn/weight_file.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

class FloatNet {
 public:
  template <std::size_t N>
  using Value = xt::xtensor<float, N>;
  using Observer = std::function<void(const std::string& name, const xt::xarray<float>& output)>;

  /// weights must outlive the net (it is read on every call, not copied).
  explicit FloatNet(const WeightFile& weights, Observer observer = {}, std::size_t threads = default_thread_count())
      : weights_(&weights), observer_(std::move(observer)), threads_(std::max<std::size_t>(1, threads)) {}
  FloatNet(WeightFile&&, Observer = {}, std::size_t = 0) = delete;

  Value<4> conv(const std::string& name, const Value<4>& x, const std::string& weight_name,
                const std::string& bias_name, const ConvAttributes& attributes) {
    const auto& w = weight(name, weight_name, 4);
    const std::size_t batch = x.shape(0), channels = x.shape(1), height = x.shape(2), width = x.shape(3);
    const std::size_t out_channels = w.shape(0), group_channels = w.shape(1), kh = w.shape(2), kw = w.shape(3);
    const std::size_t group = attributes.group;
    if (group == 0 || group_channels * group != channels || out_channels % group != 0)
      fail(name, "weights " + shape_string(w.shape()) + " with group " + std::to_string(group) +
                     " do not fit an input of " + std::to_string(channels) + " channels");
    const auto& [sh, sw] = attributes.strides;
    const auto& [dh, dw] = attributes.dilations;
    const auto& [pad_top, pad_left, pad_bottom, pad_right] = attributes.pads;
    const std::size_t out_height = window_count(name, height, kh, sh, dh, pad_top, pad_bottom, false);
    const std::size_t out_width = window_count(name, width, kw, sw, dw, pad_left, pad_right, false);
    const float* bias = bias_name.empty() ? nullptr : vector_weight(name, bias_name, out_channels).data();

    Value<4> out = Value<4>::from_shape({batch, out_channels, out_height, out_width});
    const std::size_t plane = out_height * out_width, taps = group_channels * kh * kw, per_group = out_channels / group;
    // A 1x1 convolution without stride or padding multiplies the input's channels directly.
    const bool pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_top + pad_left + pad_bottom + pad_right == 0;
    // Groups (depthwise convolutions) run in parallel; a single group parallelises its product.
    const std::size_t threads = threads_for(out.size() * taps);
    parallel_for(
        batch * group,
        [&](std::size_t item, std::size_t) {
          const std::size_t n = item / group, g = item % group;
          const float* x_group = x.data() + (n * channels + g * group_channels) * height * width;
          std::vector<float> unfolded;
          if (!pointwise) unfolded = unfold(x_group, group_channels, height, width, kh, kw, attributes, out_height, out_width);
          float* o = out.data() + (n * out_channels + g * per_group) * plane;
          matrix_product(w.data() + g * per_group * taps, per_group, taps, pointwise ? x_group : unfolded.data(), plane,
                         false, o, group == 1 ? threads : 1);
          if (bias)
            for (std::size_t m = 0; m < per_group; ++m)
              for (float* v = o + m * plane; v != o + (m + 1) * plane; ++v) *v += bias[g * per_group + m];
        },
        group == 1 ? 1 : threads);
    return report(name, std::move(out));
  }

  Value<2> gemm(const std::string& name, const Value<2>& a, const std::string& b_name, const std::string& c_name,
                const GemmAttributes& attributes) {
    const auto& b = weight(name, b_name, 2);
    const std::size_t rows = a.shape(0), depth = a.shape(1);
    const std::size_t cols = attributes.trans_b ? b.shape(0) : b.shape(1);
    if ((attributes.trans_b ? b.shape(1) : b.shape(0)) != depth)
      fail(name, "A " + shape_string(a.shape()) + " and B " + shape_string(b.shape()) +
                     (attributes.trans_b ? " (transposed)" : "") + " do not multiply");
    Value<2> out = Value<2>::from_shape({rows, cols});
    matrix_product(a.data(), rows, depth, b.data(), cols, attributes.trans_b, out.data(),
                   threads_for(rows * depth * cols));
    if (attributes.alpha != 1.0f) out *= attributes.alpha;
    if (!c_name.empty()) out += attributes.beta * broadcast_to(name, (*weights_)[c_name], out.shape());
    return report(name, std::move(out));
  }

  /// a [..., K] times the constant W [K, M]: [..., M].
  template <std::size_t N>
  Value<N> matmul(const std::string& name, const Value<N>& a, const std::string& w_name) {
    static_assert(N >= 1);
    const auto& w = weight(name, w_name, 2);
    const std::size_t depth = a.shape(N - 1), cols = w.shape(1);
    if (w.shape(0) != depth)
      fail(name, "A " + shape_string(a.shape()) + " and W " + shape_string(w.shape()) + " do not multiply");
    auto shape = a.shape();
    shape[N - 1] = cols;
    Value<N> out = Value<N>::from_shape(shape);
    matrix_product(a.data(), a.size() / depth, depth, w.data(), cols, false, out.data(), threads_for(out.size() * depth));
    return report(name, std::move(out));
  }

  template <std::size_t N>
  Value<N> relu(const std::string& name, const Value<N>& x) {
    return report(name, map(x, [](float v) { return std::max(v, 0.0f); }));
  }
  template <std::size_t N>
  Value<N> sigmoid(const std::string& name, const Value<N>& x) {
    return report(name, map(x, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }));
  }
  template <std::size_t N>
  Value<N> tanh(const std::string& name, const Value<N>& x) {
    return report(name, map(x, [](float v) { return std::tanh(v); }));
  }
  template <std::size_t N>
  Value<N> clip(const std::string& name, const Value<N>& x, const ClipBounds& bounds) {
    // ONNX's Clip is min(max(x, lo), hi): with lo > hi every element is hi.
    return report(name, map(x, [&](float v) { return std::min(std::max(v, bounds.lo), bounds.hi); }));
  }

  /// Inference batch normalization over axis 1 of [N, C, ...].
  template <std::size_t N>
  Value<N> batch_norm(const std::string& name, const Value<N>& x, const std::string& scale_name,
                      const std::string& bias_name, const std::string& mean_name, const std::string& var_name,
                      float epsilon) {
    static_assert(N >= 2, "batch normalization needs [N, C, ...]");
    const std::size_t channels = x.shape(1), inner = x.size() / std::max<std::size_t>(1, x.shape(0) * channels);
    const auto& scale = vector_weight(name, scale_name, channels);
    const auto& bias = vector_weight(name, bias_name, channels);
    const auto& mean = vector_weight(name, mean_name, channels);
    const auto& var = vector_weight(name, var_name, channels);
    Value<N> out = x;
    for (std::size_t row = 0; row < x.shape(0) * channels; ++row) {
      const std::size_t c = row % channels;
      const float factor = scale(c) / std::sqrt(var(c) + epsilon), shift = bias(c) - mean(c) * factor;
      for (float* v = out.data() + row * inner; v != out.data() + (row + 1) * inner; ++v) *v = *v * factor + shift;
    }
    return report(name, std::move(out));
  }

  template <std::size_t N>
  Value<N> add(const std::string& name, const Value<N>& a, const Value<N>& b) {
    if (a.shape() != b.shape())
      fail(name, "adds values of shapes " + shape_string(a.shape()) + " and " + shape_string(b.shape()));
    return report(name, Value<N>(a + b));
  }
  template <std::size_t N>
  Value<N> add_constant(const std::string& name, const Value<N>& x, const std::string& c_name) {
    return report(name, Value<N>(x + broadcast_to(name, (*weights_)[c_name], x.shape())));
  }
  template <std::size_t N>
  Value<N> mul_constant(const std::string& name, const Value<N>& x, const std::string& c_name) {
    return report(name, Value<N>(x * broadcast_to(name, (*weights_)[c_name], x.shape())));
  }
  template <std::size_t N>
  Value<N> div_constant(const std::string& name, const Value<N>& x, const std::string& c_name) {
    return report(name, Value<N>(x / broadcast_to(name, (*weights_)[c_name], x.shape())));
  }

  Value<4> average_pool(const std::string& name, const Value<4>& x, const PoolAttributes& attributes) {
    return pool(name, x, attributes, false);
  }
  Value<4> max_pool(const std::string& name, const Value<4>& x, const PoolAttributes& attributes) {
    return pool(name, x, attributes, true);
  }
  Value<4> global_average_pool(const std::string& name, const Value<4>& x) {
    const std::size_t plane = x.shape(2) * x.shape(3);
    if (plane == 0) fail(name, "pools an empty plane");
    Value<4> out = Value<4>::from_shape({x.shape(0), x.shape(1), 1, 1});
    for (std::size_t i = 0; i < out.size(); ++i) {
      const float* p = x.data() + i * plane;
      out.data()[i] = static_cast<float>(std::accumulate(p, p + plane, 0.0) / static_cast<double>(plane));
    }
    return report(name, std::move(out));
  }

  /// [d0 ... d(axis-1), d(axis) ... ] to [d0 * ... * d(axis-1), d(axis) * ...].
  template <std::size_t N>
  Value<2> flatten(const std::string& name, const Value<N>& x, std::size_t axis) {
    if (axis > N) fail(name, "flattens rank " + std::to_string(N) + " at axis " + std::to_string(axis));
    std::size_t outer = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= x.shape(i);
    return report(name, reshaped<2>(x, {outer, outer == 0 ? 0 : x.size() / outer}));
  }

  /// shape is resolved (no 0 or -1 entries) and must hold as many elements as x.
  template <std::size_t R, std::size_t N>
  Value<R> reshape(const std::string& name, const Value<N>& x, const std::array<std::int64_t, R>& shape) {
    std::array<std::size_t, R> extents{};
    std::size_t count = 1;
    for (std::size_t i = 0; i < R; ++i) {
      if (shape[i] <= 0) fail(name, "reshape extents must be resolved and positive");
      count *= extents[i] = static_cast<std::size_t>(shape[i]);
    }
    if (count != x.size())
      fail(name, "reshapes " + shape_string(x.shape()) + " to " + shape_string(extents) + ": element counts differ");
    return report(name, reshaped<R>(x, extents));
  }

  template <std::size_t N, class... Rest>
  Value<N> concat(const std::string& name, std::size_t axis, const Value<N>& first, const Rest&... rest) {
    static_assert((std::is_same_v<Rest, Value<N>> && ...), "concat joins values of one rank");
    if (axis >= N) fail(name, "concatenates rank " + std::to_string(N) + " along axis " + std::to_string(axis));
    const std::array<const Value<N>*, 1 + sizeof...(Rest)> parts{&first, &rest...};
    auto shape = first.shape();
    shape[axis] = 0;
    for (const auto* part : parts) {
      for (std::size_t i = 0; i < N; ++i)
        if (i != axis && part->shape(i) != first.shape(i))
          fail(name, "concatenates " + shape_string(first.shape()) + " and " + shape_string(part->shape()) +
                         " along axis " + std::to_string(axis));
      shape[axis] += part->shape(axis);
    }
    Value<N> out = Value<N>::from_shape(shape);
    std::size_t outer = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= shape[i];
    float* o = out.data();
    for (std::size_t row = 0; row < outer; ++row)
      for (const auto* part : parts) {
        const std::size_t chunk = outer == 0 ? 0 : part->size() / outer;
        o = std::copy_n(part->data() + row * chunk, chunk, o);
      }
    return report(name, std::move(out));
  }

  /// pads = {begin_0, ..., begin_(N-1), end_0, ..., end_(N-1)}; negative entries crop.
  template <std::size_t N>
  Value<N> pad(const std::string& name, const Value<N>& x, const std::vector<std::int64_t>& pads, float value) {
    if (pads.size() != 2 * N)
      fail(name, std::to_string(pads.size()) + " pads for a rank-" + std::to_string(N) + " value");
    auto shape = x.shape();
    for (std::size_t i = 0; i < N; ++i) {
      const auto extent = static_cast<std::int64_t>(x.shape(i)) + pads[i] + pads[N + i];
      if (extent < 0) fail(name, "pads " + shape_string(x.shape()) + " to a negative extent");
      shape[i] = static_cast<std::size_t>(extent);
    }
    Value<N> out = Value<N>::from_shape(shape);
    std::array<std::size_t, N> index{};
    for (float& o : out) {
      std::size_t source = 0;
      bool inside = true;
      for (std::size_t i = 0; i < N; ++i) {
        const auto at = static_cast<std::int64_t>(index[i]) - pads[i];
        inside = inside && at >= 0 && at < static_cast<std::int64_t>(x.shape(i));
        source = source * x.shape(i) + static_cast<std::size_t>(at);
      }
      o = inside ? x.data()[source] : value;
      for (std::size_t i = N; i-- > 0;) {
        if (++index[i] < shape[i]) break;
        index[i] = 0;
      }
    }
    return report(name, std::move(out));
  }

  template <std::size_t N>
  Value<N> softmax(const std::string& name, const Value<N>& x, std::size_t axis) {
    if (axis >= N) fail(name, "softmax of rank " + std::to_string(N) + " along axis " + std::to_string(axis));
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= x.shape(i);
    for (std::size_t i = axis + 1; i < N; ++i) inner *= x.shape(i);
    const std::size_t length = x.shape(axis);
    Value<N> out = Value<N>::from_shape(x.shape());
    for (std::size_t o = 0; o < outer; ++o)
      for (std::size_t in = 0; in < inner; ++in) {
        const float* src = x.data() + o * length * inner + in;
        float* dst = out.data() + o * length * inner + in;
        float largest = -std::numeric_limits<float>::infinity();
        for (std::size_t k = 0; k < length; ++k) largest = std::max(largest, src[k * inner]);
        float sum = 0;
        for (std::size_t k = 0; k < length; ++k) sum += dst[k * inner] = std::exp(src[k * inner] - largest);
        for (std::size_t k = 0; k < length; ++k) dst[k * inner] /= sum;
      }
    return report(name, std::move(out));
  }

 private:
  struct Range {
    std::size_t begin, end;
  };

  [[noreturn]] static void fail(const std::string& node, const std::string& what) {
    throw std::invalid_argument("fhetensor::nn::FloatNet: node " + node + ": " + what);
  }

  template <class S>
  static std::string shape_string(const S& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
  }

  const xt::xarray<float>& weight(const std::string& node, const std::string& weight_name, std::size_t rank) const {
    const auto& w = (*weights_)[weight_name];
    if (w.dimension() != rank)
      fail(node, "weight " + weight_name + " has shape " + shape_string(w.shape()) + ", expected rank " +
                     std::to_string(rank));
    return w;
  }
  const xt::xarray<float>& vector_weight(const std::string& node, const std::string& weight_name,
                                         std::size_t length) const {
    const auto& w = weight(node, weight_name, 1);
    if (w.size() != length)
      fail(node, "weight " + weight_name + " has " + std::to_string(w.size()) + " elements, expected " +
                     std::to_string(length));
    return w;
  }

  /// c broadcast (NumPy rules, c's side only) to shape, or a clear error.
  template <class S>
  static xt::xarray<float> broadcast_to(const std::string& node, const xt::xarray<float>& c, const S& shape) {
    bool fits = c.dimension() <= shape.size();
    for (std::size_t i = 0; fits && i < c.dimension(); ++i) {
      const std::size_t extent = c.shape(c.dimension() - 1 - i);
      fits = extent == 1 || extent == shape[shape.size() - 1 - i];
    }
    if (!fits) fail(node, "constant of shape " + shape_string(c.shape()) + " does not broadcast to " + shape_string(shape));
    return xt::broadcast(c, shape);
  }

  template <std::size_t N, class F>
  static Value<N> map(const Value<N>& x, F f) {
    Value<N> out = Value<N>::from_shape(x.shape());
    std::transform(x.begin(), x.end(), out.begin(), f);
    return out;
  }

  template <std::size_t R, std::size_t N>
  static Value<R> reshaped(const Value<N>& x, const std::array<std::size_t, R>& shape) {
    Value<R> out = Value<R>::from_shape(shape);
    std::copy(x.data(), x.data() + x.size(), out.data());
    return out;
  }

  template <class V>
  V report(const std::string& name, V value) const {
    if (observer_) observer_(name, xt::xarray<float>(value));
    return value;
  }

  /// Small layers run on the calling thread: starting threads costs more than they save.
  std::size_t threads_for(std::size_t multiply_adds) const {
    return multiply_adds < (std::size_t{1} << 16) ? 1 : threads_;
  }

  /// Output positions of a sliding window along one axis (ONNX's floor or ceil rounding;
  /// in ceil mode a last window starting past the input and its begin padding is dropped,
  /// as PyTorch does).
  static std::size_t window_count(const std::string& node, std::size_t extent, std::size_t kernel, std::size_t stride,
                                  std::size_t dilation, std::size_t pad_begin, std::size_t pad_end, bool ceil_mode) {
    if (kernel == 0 || stride == 0 || dilation == 0) fail(node, "kernel, strides and dilations must be positive");
    const std::size_t padded = extent + pad_begin + pad_end, span = (kernel - 1) * dilation + 1;
    if (padded < span)
      fail(node, "a window of " + std::to_string(span) + " does not fit an extent of " + std::to_string(padded));
    std::size_t count = (padded - span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
    if (ceil_mode && (count - 1) * stride >= extent + pad_begin) --count;
    return count;
  }

  /// The outputs [begin, end) whose tap at offset (tap - pad) lands inside [0, extent).
  static Range valid_outputs(std::size_t outputs, std::size_t extent, std::size_t stride, std::size_t tap,
                             std::size_t pad) {
    // input position = o * stride + tap - pad, needed in [0, extent)
    const std::size_t begin = tap >= pad ? 0 : (pad - tap + stride - 1) / stride;
    const std::size_t limit = extent + pad;  // o * stride + tap < limit
    const std::size_t end = limit <= tap ? 0 : std::min(outputs, (limit - tap - 1) / stride + 1);
    return {begin, std::max(begin, end)};
  }

  /// im2col: the [channels * kh * kw, out_height * out_width] matrix whose column holds
  /// the window of one output position (0 where the window lies in the padding).
  static std::vector<float> unfold(const float* x, std::size_t channels, std::size_t height, std::size_t width,
                                   std::size_t kh, std::size_t kw, const ConvAttributes& a, std::size_t out_height,
                                   std::size_t out_width) {
    const std::size_t plane = out_height * out_width;
    std::vector<float> columns(channels * kh * kw * plane, 0.0f);
    float* row = columns.data();
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t i = 0; i < kh; ++i) {
        const auto rows = valid_outputs(out_height, height, a.strides[0], i * a.dilations[0], a.pads[0]);
        for (std::size_t j = 0; j < kw; ++j, row += plane) {
          const auto cols = valid_outputs(out_width, width, a.strides[1], j * a.dilations[1], a.pads[1]);
          const auto col_offset = static_cast<std::ptrdiff_t>(j * a.dilations[1]) - static_cast<std::ptrdiff_t>(a.pads[1]);
          for (std::size_t oh = rows.begin; oh < rows.end; ++oh) {
            const float* in = x + (c * height + oh * a.strides[0] + i * a.dilations[0] - a.pads[0]) * width;
            for (std::size_t ow = cols.begin; ow < cols.end; ++ow)
              row[oh * out_width + ow] = in[col_offset + static_cast<std::ptrdiff_t>(ow * a.strides[1])];
          }
        }
      }
    return columns;
  }

  static constexpr std::size_t panel_width = 32;

  /// out[rows, cols] = a[rows, depth] · b, with b [depth, cols], or [cols, depth] when
  /// transposed. Each panel of 32 output columns copies its slice of b into contiguous
  /// memory once, then every 4 rows of a accumulate against it in registers; panels run
  /// in parallel. A row or two (a depthwise convolution, a batch of one) cannot repay the
  /// copy: their rows of b are summed straight into the output instead.
  static void matrix_product(const float* a, std::size_t rows, std::size_t depth, const float* b, std::size_t cols,
                             bool transposed, float* out, std::size_t threads) {
    if (rows < 4 && !transposed) {
      constexpr std::size_t block = 1024;
      parallel_for(
          (cols + block - 1) / block,
          [&](std::size_t item, std::size_t) {
            const std::size_t first = item * block, last = std::min(cols, first + block);
            for (std::size_t r = 0; r < rows; ++r) {
              float* o = out + r * cols;
              std::fill(o + first, o + last, 0.0f);
              for (std::size_t k = 0; k < depth; ++k) {
                const float a_rk = a[r * depth + k];
                const float* b_row = b + k * cols;
                for (std::size_t c = first; c < last; ++c) o[c] += a_rk * b_row[c];
              }
            }
          },
          threads);
      return;
    }
    std::vector<std::vector<float>> packed(std::min(threads, (cols + panel_width - 1) / panel_width));
    parallel_for(
        (cols + panel_width - 1) / panel_width,
        [&](std::size_t item, std::size_t worker) {
          const std::size_t first = item * panel_width, width = std::min(panel_width, cols - first);
          auto& panel = packed[worker];
          panel.assign(depth * panel_width, 0.0f);
          for (std::size_t k = 0; k < depth; ++k)
            for (std::size_t j = 0; j < width; ++j)
              panel[k * panel_width + j] = transposed ? b[(first + j) * depth + k] : b[k * cols + first + j];
          std::size_t r = 0;
          for (; r + 4 <= rows; r += 4) panel_product<4>(a + r * depth, depth, panel.data(), out + r * cols + first, cols, width);
          for (; r < rows; ++r) panel_product<1>(a + r * depth, depth, panel.data(), out + r * cols + first, cols, width);
        },
        threads);
  }

  template <std::size_t Rows>
  static void panel_product(const float* a, std::size_t depth, const float* panel, float* out, std::size_t out_stride,
                            std::size_t width) {
    float sums[Rows][panel_width] = {};
    for (std::size_t k = 0; k < depth; ++k) {
      const float* b = panel + k * panel_width;
      for (std::size_t r = 0; r < Rows; ++r) {
        const float a_rk = a[r * depth + k];
        for (std::size_t j = 0; j < panel_width; ++j) sums[r][j] += a_rk * b[j];
      }
    }
    for (std::size_t r = 0; r < Rows; ++r) std::copy_n(sums[r], width, out + r * out_stride);
  }

  Value<4> pool(const std::string& name, const Value<4>& x, const PoolAttributes& p, bool maximum) {
    const std::size_t height = x.shape(2), width = x.shape(3);
    // Named values, not structured bindings: clang before 16 cannot capture those in a lambda.
    const std::size_t kh = p.kernel[0], kw = p.kernel[1], sh = p.strides[0], sw = p.strides[1];
    const std::size_t dh = p.dilations[0], dw = p.dilations[1];
    const std::size_t pad_top = p.pads[0], pad_left = p.pads[1], pad_bottom = p.pads[2], pad_right = p.pads[3];
    const std::size_t out_height = window_count(name, height, kh, sh, dh, pad_top, pad_bottom, p.ceil_mode);
    const std::size_t out_width = window_count(name, width, kw, sw, dw, pad_left, pad_right, p.ceil_mode);
    Value<4> out = Value<4>::from_shape({x.shape(0), x.shape(1), out_height, out_width});
    // Taps in the explicit padding count for count_include_pad; those past it (ceil mode) never do.
    const auto padded_taps = [](std::size_t start, std::size_t k, std::size_t d, std::size_t limit) {
      std::size_t n = 0;
      for (std::size_t i = 0; i < k; ++i) n += start + i * d < limit;
      return n;
    };
    parallel_for(
        x.shape(0) * x.shape(1),
        [&](std::size_t item, std::size_t) {
          const float* plane = x.data() + item * height * width;
          float* o = out.data() + item * out_height * out_width;
          for (std::size_t oh = 0; oh < out_height; ++oh) {
            const auto rows = valid_taps(oh * sh, kh, dh, pad_top, height);
            for (std::size_t ow = 0; ow < out_width; ++ow) {
              const auto cols = valid_taps(ow * sw, kw, dw, pad_left, width);
              float acc = maximum ? -std::numeric_limits<float>::infinity() : 0.0f;
              for (std::size_t i = rows.begin; i < rows.end; ++i)
                for (std::size_t j = cols.begin; j < cols.end; ++j) {
                  const float v = plane[(oh * sh + i * dh - pad_top) * width + ow * sw + j * dw - pad_left];
                  acc = maximum ? std::max(acc, v) : acc + v;
                }
              if (!maximum) {
                const std::size_t taps =
                    p.count_include_pad
                        ? padded_taps(oh * sh, kh, dh, height + pad_top + pad_bottom) *
                              padded_taps(ow * sw, kw, dw, width + pad_left + pad_right)
                        : (rows.end - rows.begin) * (cols.end - cols.begin);
                acc /= static_cast<float>(std::max<std::size_t>(taps, 1));
              }
              o[oh * out_width + ow] = acc;
            }
          }
        },
        threads_for(out.size() * kh * kw));
    return report(name, std::move(out));
  }

  /// The taps i in [begin, end) of a window starting at padded position start that land in
  /// [0, extent) of the input (taps are increasing, so the valid ones are contiguous).
  static Range valid_taps(std::size_t start, std::size_t kernel, std::size_t dilation, std::size_t pad,
                          std::size_t extent) {
    std::size_t begin = 0, end = kernel;
    while (begin < kernel && start + begin * dilation < pad) ++begin;
    while (end > begin && start + (end - 1) * dilation >= pad + extent) --end;
    return {begin, end};
  }

  const WeightFile* weights_;
  Observer observer_;
  std::size_t threads_;
};

}  // namespace nn

FHETENSOR_END_NAMESPACE
