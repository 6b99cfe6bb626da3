#pragma once
// Shapes and the index maps of data movement. Every reshape, transpose, slice, pad,
// concatenation and broadcast lowers to one gather: output element i reads flat element
// map[i] of its operands (laid end to end), or is 0 where map[i] < 0 (padding).
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

using Shape = std::vector<std::size_t>;
using IndexMap = std::vector<std::int64_t>;

template <class S>
std::size_t element_count(const S& s) noexcept {
  return std::accumulate(s.begin(), s.end(), std::size_t{1}, std::multiplies<>{});
}

inline std::string to_string(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// Row-major strides.
inline std::vector<std::size_t> strides_of(const Shape& s) {
  std::vector<std::size_t> strides(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) strides[i - 1] = strides[i] * s[i];
  return strides;
}

/// Calls f(flat_index, multi_index) for every element of s in row-major order.
template <class F>
void for_each_index(const Shape& s, F&& f) {
  const std::size_t count = element_count(s);
  std::vector<std::size_t> index(s.size(), 0);
  for (std::size_t flat = 0; flat < count; ++flat) {
    f(flat, static_cast<const std::vector<std::size_t>&>(index));
    for (std::size_t axis = s.size(); axis-- > 0;) {
      if (++index[axis] < s[axis]) break;
      index[axis] = 0;
    }
  }
}

[[noreturn]] inline void shape_error(const std::string& what) { throw std::invalid_argument("fhetensor: " + what); }

/// NumPy broadcasting of two shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::size_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const std::size_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      shape_error("shapes " + to_string(a) + " and " + to_string(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// For each element of `to`, the flat index of the element of `from` broadcast onto it.
inline IndexMap broadcast_map(const Shape& from, const Shape& to) {
  if (broadcast_shapes(from, to) != to) shape_error("shape " + to_string(from) + " does not broadcast to " + to_string(to));
  const auto strides = strides_of(from);
  const std::size_t lead = to.size() - from.size();
  IndexMap map(element_count(to));
  for_each_index(to, [&](std::size_t flat, const auto& index) {
    std::size_t source = 0;
    for (std::size_t a = 0; a < from.size(); ++a) source += (from[a] == 1 ? 0 : index[lead + a]) * strides[a];
    map[flat] = static_cast<std::int64_t>(source);
  });
  return map;
}

inline IndexMap transpose_map(const Shape& in, const std::vector<std::size_t>& permutation, Shape& out) {
  if (permutation.size() != in.size()) shape_error("transpose of a rank-" + std::to_string(in.size()) + " tensor needs as many axes");
  std::vector<bool> seen(in.size(), false);
  out.assign(in.size(), 0);
  for (std::size_t a = 0; a < in.size(); ++a) {
    if (permutation[a] >= in.size() || seen[permutation[a]]) shape_error("transpose axes are not a permutation");
    seen[permutation[a]] = true;
    out[a] = in[permutation[a]];
  }
  const auto strides = strides_of(in);
  IndexMap map(element_count(out));
  for_each_index(out, [&](std::size_t flat, const auto& index) {
    std::size_t source = 0;
    for (std::size_t a = 0; a < out.size(); ++a) source += index[a] * strides[permutation[a]];
    map[flat] = static_cast<std::int64_t>(source);
  });
  return map;
}

/// A Python-style slice of one axis: start, stop (exclusive), step; negative positions
/// count from the end, and out-of-range ones are clamped, as in NumPy.
struct Slice {
  std::int64_t start = 0;
  std::int64_t stop = INT64_MAX;
  std::int64_t step = 1;
};

inline IndexMap slice_map(const Shape& in, const std::vector<Slice>& slices, Shape& out) {
  if (slices.size() > in.size()) shape_error("more slices than axes");
  std::vector<std::int64_t> first(in.size(), 0), step(in.size(), 1);
  out = in;
  for (std::size_t a = 0; a < slices.size(); ++a) {
    const auto dim = static_cast<std::int64_t>(in[a]);
    const Slice s = slices[a];
    if (s.step == 0) shape_error("a slice step of 0");
    auto clamp = [&](std::int64_t v, std::int64_t low, std::int64_t high) {
      if (v < 0) v += dim;
      return std::clamp(v, low, high);
    };
    const std::int64_t begin = s.step > 0 ? clamp(s.start, 0, dim) : clamp(s.start, -1, dim - 1);
    const std::int64_t end = s.stop == INT64_MAX ? (s.step > 0 ? dim : -1)
                                                 : (s.step > 0 ? clamp(s.stop, 0, dim) : clamp(s.stop, -1, dim - 1));
    const std::int64_t length = s.step > 0 ? (end - begin + s.step - 1) / s.step : (begin - end - s.step - 1) / -s.step;
    out[a] = static_cast<std::size_t>(std::max<std::int64_t>(0, length));
    first[a] = begin;
    step[a] = s.step;
  }
  const auto strides = strides_of(in);
  IndexMap map(element_count(out));
  for_each_index(out, [&](std::size_t flat, const auto& index) {
    std::int64_t source = 0;
    for (std::size_t a = 0; a < in.size(); ++a)
      source += (first[a] + static_cast<std::int64_t>(index[a]) * step[a]) * static_cast<std::int64_t>(strides[a]);
    map[flat] = source;
  });
  return map;
}

/// Zero padding: `before[a]` and `after[a]` elements around axis a.
inline IndexMap pad_map(const Shape& in, const std::vector<std::size_t>& before, const std::vector<std::size_t>& after,
                        Shape& out) {
  if (before.size() != in.size() || after.size() != in.size()) shape_error("pad needs a before and after count for every axis");
  out = in;
  for (std::size_t a = 0; a < in.size(); ++a) out[a] += before[a] + after[a];
  const auto strides = strides_of(in);
  IndexMap map(element_count(out));
  for_each_index(out, [&](std::size_t flat, const auto& index) {
    std::int64_t source = 0;
    for (std::size_t a = 0; a < in.size(); ++a) {
      if (index[a] < before[a] || index[a] >= before[a] + in[a]) {
        source = -1;
        break;
      }
      source += static_cast<std::int64_t>((index[a] - before[a]) * strides[a]);
    }
    map[flat] = source;
  });
  return map;
}

/// Concatenation along `axis`; indices point into the operands laid end to end.
inline IndexMap concat_map(const std::vector<Shape>& ins, std::size_t axis, Shape& out) {
  if (ins.empty()) shape_error("concatenate of no tensors");
  if (axis >= ins[0].size()) shape_error("concatenate axis " + std::to_string(axis) + " of a rank-" + std::to_string(ins[0].size()) + " tensor");
  out = ins[0];
  out[axis] = 0;
  for (const Shape& s : ins) {
    Shape a = s, b = ins[0];
    if (s.size() != ins[0].size()) shape_error("concatenate of tensors of different ranks");
    a[axis] = b[axis] = 0;
    if (a != b) shape_error("concatenate of " + to_string(ins[0]) + " and " + to_string(s) + " along axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  std::vector<std::int64_t> base(ins.size(), 0);
  for (std::size_t i = 1; i < ins.size(); ++i) base[i] = base[i - 1] + static_cast<std::int64_t>(element_count(ins[i - 1]));
  IndexMap map(element_count(out));
  for_each_index(out, [&](std::size_t flat, const auto& index) {
    std::size_t operand = 0, position = index[axis];
    while (position >= ins[operand][axis]) position -= ins[operand++][axis];
    const auto strides = strides_of(ins[operand]);
    std::size_t source = 0;
    for (std::size_t a = 0; a < index.size(); ++a) source += (a == axis ? position : index[a]) * strides[a];
    map[flat] = base[operand] + static_cast<std::int64_t>(source);
  });
  return map;
}

/// The sliding-window geometry shared by conv2d and the pooling layers (NCHW order).
struct Window2d {
  std::size_t kernel_h = 1, kernel_w = 1;
  std::size_t stride_h = 1, stride_w = 1;
  std::size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::size_t dilation_h = 1, dilation_w = 1;

  std::size_t output_size(std::size_t in, std::size_t kernel, std::size_t stride, std::size_t pad, std::size_t dilation) const {
    const std::size_t span = dilation * (kernel - 1) + 1;
    if (in + pad < span) shape_error("a window of " + std::to_string(span) + " does not fit an input of " + std::to_string(in));
    return (in + pad - span) / stride + 1;
  }
  std::size_t output_h(std::size_t h) const { return output_size(h, kernel_h, stride_h, pad_top + pad_bottom, dilation_h); }
  std::size_t output_w(std::size_t w) const { return output_size(w, kernel_w, stride_w, pad_left + pad_right, dilation_w); }

  /// For each output position (oy, ox) and kernel tap (ky, kx), the input position
  /// iy * w + ix within one channel plane, or -1 where the tap falls in the padding.
  IndexMap taps(std::size_t h, std::size_t w) const {
    const std::size_t oh = output_h(h), ow = output_w(w), k = kernel_h * kernel_w;
    IndexMap map(oh * ow * k);
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t ox = 0; ox < ow; ++ox)
        for (std::size_t ky = 0; ky < kernel_h; ++ky)
          for (std::size_t kx = 0; kx < kernel_w; ++kx) {
            const auto iy = static_cast<std::int64_t>(oy * stride_h + ky * dilation_h) - static_cast<std::int64_t>(pad_top);
            const auto ix = static_cast<std::int64_t>(ox * stride_w + kx * dilation_w) - static_cast<std::int64_t>(pad_left);
            const bool inside = iy >= 0 && ix >= 0 && iy < static_cast<std::int64_t>(h) && ix < static_cast<std::int64_t>(w);
            map[((oy * ow + ox) * kernel_h + ky) * kernel_w + kx] = inside ? iy * static_cast<std::int64_t>(w) + ix : -1;
          }
    return map;
  }
};

FHETENSOR_END_NAMESPACE
