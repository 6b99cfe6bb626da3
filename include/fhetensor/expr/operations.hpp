#pragma once
// The operations of the DSL. Each adds one or a few nodes to the operand's graph and
// returns the result as a new expression; shapes are checked here (rank at compile time,
// extents when the node is built), value ranges by the compiler.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>
#include <xtensor/xbroadcast.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/encrypted.hpp>
#include <fhetensor/expr/graph.hpp>
#include <fhetensor/expr/table_function.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

// InRange<{Lo, Hi}> when the range is known at compile time, else InferredWidth.
template <bool Known, std::int64_t Lo, std::int64_t Hi>
struct WidthIf {
  using type = InferredWidth;
};
template <std::int64_t Lo, std::int64_t Hi>
struct WidthIf<true, Lo, Hi> {
  using type = InRange<ValueRange{Lo, Hi}>;
};

template <std::size_t N, class W = InferredWidth>
using result_t = EncryptedTensor<int, N, W>;

template <std::size_t N, class W = InferredWidth>
result_t<N, W> add_node(const std::shared_ptr<Graph>& graph, Node node) {
  const NodeId id = graph->add(std::move(node));
  return result_t<N, W>(graph, id);
}

inline void same_graph(const std::shared_ptr<Graph>& a, const std::shared_ptr<Graph>& b) {
  if (a != b) shape_error("the operands belong to different graphs: declare every input with input_of()");
}

inline ClearTensor broadcast_to(const ClearTensor& t, const Shape& shape) {
  if (broadcast_shapes(Shape(t.shape().begin(), t.shape().end()), shape) != shape)
    shape_error("a clear tensor of shape " + to_string(Shape(t.shape().begin(), t.shape().end())) +
                " does not broadcast to " + to_string(shape));
  return ClearTensor(xt::broadcast(t, shape));
}

inline Shape shape_of(const ClearTensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

/// x broadcast to `shape` (a gather), or x itself when it already has that shape.
inline NodeId broadcast_node(Graph& g, NodeId x, const Shape& shape) {
  if (g[x].shape == shape) return x;
  return g.add(Node{.kind = NodeKind::gather, .label = "broadcast", .shape = shape, .operands = {x},
                    .map = broadcast_map(g[x].shape, shape)});
}

inline NodeId linear_node(Graph& g, std::string label, std::vector<NodeId> operands, std::vector<ClearTensor> coefficients,
                          const ClearTensor& bias, const Shape& shape) {
  for (auto& o : operands) o = broadcast_node(g, o, shape);
  for (auto& c : coefficients) c = broadcast_to(c, shape);
  return g.add(Node{.kind = NodeKind::linear, .label = std::move(label), .shape = shape, .operands = std::move(operands),
                    .coefficients = std::move(coefficients), .bias = broadcast_to(bias, shape)});
}

}  // namespace detail

template <class T>
concept ClearOperand = std::integral<T> || requires(const T& t) { to_clear_tensor(t); };

// ---------------------------------------------------------------- arithmetic

template <class E, std::size_t N, class W>
auto operator-(const EncryptedTensor<E, N, W>& x) {
  constexpr auto s = EncryptedTensor<E, N, W>::static_range;
  constexpr ValueRange r = -s.value_or(ValueRange{});
  using Out = typename detail::WidthIf<s.has_value(), r.lo, r.hi>::type;
  Graph& g = *x.graph();
  const NodeId id = detail::linear_node(g, "neg", {x.node()}, {ClearTensor(-1)}, ClearTensor(0), x.shape());
  return detail::result_t<N, Out>(x.graph(), id);
}

namespace detail {
template <int Sign, class E1, std::size_t N1, class W1, class E2, std::size_t N2, class W2>
auto add_or_subtract(const EncryptedTensor<E1, N1, W1>& x, const EncryptedTensor<E2, N2, W2>& y) {
  constexpr auto a = EncryptedTensor<E1, N1, W1>::static_range;
  constexpr auto b = EncryptedTensor<E2, N2, W2>::static_range;
  constexpr bool known = a.has_value() && b.has_value();
  constexpr ValueRange r = known ? (Sign > 0 ? *a + *b : *a - *b) : ValueRange{};
  using Out = typename WidthIf<known, r.lo, r.hi>::type;
  same_graph(x.graph(), y.graph());
  const Shape shape = broadcast_shapes(x.shape(), y.shape());
  const NodeId id = linear_node(*x.graph(), Sign > 0 ? "add" : "sub", {x.node(), y.node()},
                                {ClearTensor(1), ClearTensor(Sign)}, ClearTensor(0), shape);
  return result_t<std::max(N1, N2), Out>(x.graph(), id);
}

/// c * x + b elementwise with clear c and b (either may be a scalar).
template <class E, std::size_t N, class W>
auto scale_shift(const EncryptedTensor<E, N, W>& x, const ClearTensor& c, const ClearTensor& b, std::string label) {
  const Shape shape = broadcast_shapes(broadcast_shapes(x.shape(), shape_of(c)), shape_of(b));
  if (shape.size() != N)
    shape_error("a clear operand of shape " + to_string(shape_of(c).size() > N ? shape_of(c) : shape_of(b)) +
                " would raise the rank of a rank-" + std::to_string(N) + " encrypted tensor");
  const NodeId id = linear_node(*x.graph(), std::move(label), {x.node()}, {c}, b, shape);
  return result_t<N>(x.graph(), id);
}
}  // namespace detail

template <class E1, std::size_t N1, class W1, class E2, std::size_t N2, class W2>
auto operator+(const EncryptedTensor<E1, N1, W1>& x, const EncryptedTensor<E2, N2, W2>& y) {
  return detail::add_or_subtract<+1>(x, y);
}
template <class E1, std::size_t N1, class W1, class E2, std::size_t N2, class W2>
auto operator-(const EncryptedTensor<E1, N1, W1>& x, const EncryptedTensor<E2, N2, W2>& y) {
  return detail::add_or_subtract<-1>(x, y);
}
// With a clear xtensor operand, ADL also finds xtensor's operator templates, which take
// both operands by forwarding reference (binding better than const&) and would wrap the
// encrypted one in an xscalar. These take the same forwarding-reference forms, in the same
// order, so that, being constrained, they are the more specialized and win.
template <EncryptedExpression X, class C>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator+(X&& x, C&& c) {
  return detail::scale_shift(x, ClearTensor(1), to_clear_tensor(c), "add");
}
template <class C, EncryptedExpression X>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator+(C&& c, X&& x) {
  return x + c;
}
template <EncryptedExpression X, class C>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator-(X&& x, C&& c) {
  return detail::scale_shift(x, ClearTensor(1), ClearTensor(-to_clear_tensor(c)), "sub");
}
template <class C, EncryptedExpression X>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator-(C&& c, X&& x) {
  return detail::scale_shift(x, ClearTensor(-1), to_clear_tensor(c), "sub");
}
template <EncryptedExpression X, class C>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator*(X&& x, C&& c) {
  return detail::scale_shift(x, to_clear_tensor(c), ClearTensor(0), "mul");
}
template <class C, EncryptedExpression X>
  requires ClearOperand<std::remove_cvref_t<C>>
auto operator*(C&& c, X&& x) {
  return x * c;
}

// ---------------------------------------------------------------- linear layers

/// x @ weights + bias: x [..., K], weights [K, M], bias [M] or scalar.
template <class E, std::size_t N, class W, class Weights, class Bias = int>
auto dense(const EncryptedTensor<E, N, W>& x, const Weights& weights, const Bias& bias = 0) {
  static_assert(N >= 1, "dense needs an input of rank at least 1: its last axis holds the features");
  ClearTensor w = to_clear_tensor(weights);
  if (w.dimension() != 2) shape_error("dense weights are a [K, M] matrix, got shape " + to_string(detail::shape_of(w)));
  if (x.shape().back() != w.shape()[0])
    shape_error("dense: the input " + to_string(x.shape()) + " has " + std::to_string(x.shape().back()) +
                " features but the weight matrix " + to_string(detail::shape_of(w)) + " has " + std::to_string(w.shape()[0]) +
                " rows");
  Shape shape = x.shape();
  shape.back() = w.shape()[1];
  ClearTensor b = detail::broadcast_to(to_clear_tensor(bias), Shape{w.shape()[1]});
  return detail::add_node<N>(x.graph(), Node{.kind = NodeKind::matmul, .label = "dense", .shape = shape,
                                             .operands = {x.node()}, .weights = std::move(w), .bias = std::move(b)});
}
template <class E, std::size_t N, class W, class Weights>
auto matmul(const EncryptedTensor<E, N, W>& x, const Weights& weights) {
  return dense(x, weights, 0);
}

/// Conv2d options, as in PyTorch and ONNX: padding is top, left, bottom, right.
struct Conv2dOptions {
  std::array<std::size_t, 2> stride{1, 1};
  std::array<std::size_t, 4> padding{0, 0, 0, 0};
  std::array<std::size_t, 2> dilation{1, 1};
  std::size_t groups = 1;
};

/// 2-d convolution of x [C, H, W] or [B, C, H, W] with weights [C_out, C / groups, KH, KW].
/// groups = C = C_out is a depthwise convolution.
template <class E, std::size_t N, class W, class Weights, class Bias = int>
auto conv2d(const EncryptedTensor<E, N, W>& x, const Weights& weights, const Bias& bias = 0, Conv2dOptions o = {}) {
  static_assert(N == 3 || N == 4, "conv2d takes a [C, H, W] or [B, C, H, W] tensor");
  ClearTensor w = to_clear_tensor(weights);
  if (w.dimension() != 4) shape_error("conv2d weights are [C_out, C_in / groups, KH, KW], got " + to_string(detail::shape_of(w)));
  const Shape& in = x.shape();
  const std::size_t c = in[N - 3], c_out = w.shape()[0];
  if (o.groups == 0 || c % o.groups != 0 || c_out % o.groups != 0)
    shape_error("conv2d: " + std::to_string(o.groups) + " groups do not divide the " + std::to_string(c) +
                " input channels of " + to_string(in) + " and the " + std::to_string(c_out) + " output channels of weights " +
                to_string(detail::shape_of(w)));
  if (w.shape()[1] != c / o.groups)
    shape_error("conv2d: weights " + to_string(detail::shape_of(w)) + " take " + std::to_string(w.shape()[1]) +
                " channels per group but the input " + to_string(in) + " gives " + std::to_string(c / o.groups));
  const Window2d window{.kernel_h = w.shape()[2], .kernel_w = w.shape()[3], .stride_h = o.stride[0], .stride_w = o.stride[1],
                        .pad_top = o.padding[0], .pad_left = o.padding[1], .pad_bottom = o.padding[2],
                        .pad_right = o.padding[3], .dilation_h = o.dilation[0], .dilation_w = o.dilation[1]};
  Shape shape = in;
  shape[N - 3] = c_out;
  shape[N - 2] = window.output_h(in[N - 2]);
  shape[N - 1] = window.output_w(in[N - 1]);
  ClearTensor b = detail::broadcast_to(to_clear_tensor(bias), Shape{c_out});
  return detail::add_node<N>(x.graph(), Node{.kind = NodeKind::conv2d, .label = "conv2d", .shape = shape,
                                             .operands = {x.node()}, .weights = std::move(w), .bias = std::move(b),
                                             .window = window, .groups = o.groups});
}

/// Sum over `axes` (an empty list sums nothing: sum(x) sums every element); the rank
/// drops by the number of axes unless the result keeps them as extent 1 (Keep = true).
template <std::size_t Removed, bool Keep = false, class E, std::size_t N, class W>
auto sum(const EncryptedTensor<E, N, W>& x, std::array<std::size_t, Removed> axes) {
  static_assert(Removed <= N, "sum over more axes than the tensor has");
  std::vector<std::size_t> list(axes.begin(), axes.end());
  std::sort(list.begin(), list.end());
  if (std::adjacent_find(list.begin(), list.end()) != list.end()) shape_error("sum over a repeated axis");
  Shape shape;
  for (std::size_t a = 0; a < N; ++a) {
    const bool reduced = std::binary_search(list.begin(), list.end(), a);
    if (!reduced) shape.push_back(x.shape()[a]);
    else if (Keep) shape.push_back(1);
  }
  if (!list.empty() && list.back() >= N) shape_error("sum over axis " + std::to_string(list.back()) + " of a rank-" + std::to_string(N) + " tensor");
  return detail::add_node<Keep ? N : N - Removed>(
      x.graph(), Node{.kind = NodeKind::reduce_sum, .label = "sum", .shape = shape, .operands = {x.node()}, .axes = list});
}
/// Sum of every element.
template <class E, std::size_t N, class W>
auto sum(const EncryptedTensor<E, N, W>& x) {
  std::array<std::size_t, N> all{};
  for (std::size_t a = 0; a < N; ++a) all[a] = a;
  return sum(x, all);
}

// ---------------------------------------------------------------- data movement

namespace detail {
template <std::size_t R, class X>
auto gather(const X& x, std::string label, Shape shape, IndexMap map) {
  return add_node<R>(x.graph(), Node{.kind = NodeKind::gather, .label = std::move(label), .shape = std::move(shape),
                                     .operands = {x.node()}, .map = std::move(map)});
}
}  // namespace detail

/// The same elements in a new shape of rank R (row-major order).
template <std::size_t R, class E, std::size_t N, class W>
auto reshape(const EncryptedTensor<E, N, W>& x, std::array<std::size_t, R> extents) {
  Shape shape(extents.begin(), extents.end());
  if (element_count(shape) != element_count(x.shape()))
    shape_error("reshape of " + to_string(x.shape()) + " to " + to_string(shape) + " changes the element count");
  IndexMap map(element_count(shape));
  for (std::size_t i = 0; i < map.size(); ++i) map[i] = static_cast<std::int64_t>(i);
  return detail::gather<R>(x, "reshape", std::move(shape), std::move(map));
}
template <class E, std::size_t N, class W>
auto flatten(const EncryptedTensor<E, N, W>& x) {
  return reshape(x, std::array{element_count(x.shape())});
}
template <class E, std::size_t N, class W>
auto transpose(const EncryptedTensor<E, N, W>& x, std::array<std::size_t, N> permutation) {
  Shape shape;
  IndexMap map = transpose_map(x.shape(), std::vector<std::size_t>(permutation.begin(), permutation.end()), shape);
  return detail::gather<N>(x, "transpose", std::move(shape), std::move(map));
}
/// NumPy basic slicing, one Slice per leading axis.
template <class E, std::size_t N, class W>
auto slice(const EncryptedTensor<E, N, W>& x, std::vector<Slice> slices) {
  Shape shape;
  IndexMap map = slice_map(x.shape(), slices, shape);
  return detail::gather<N>(x, "slice", std::move(shape), std::move(map));
}
/// Zero padding of every axis.
template <class E, std::size_t N, class W>
auto pad(const EncryptedTensor<E, N, W>& x, std::array<std::size_t, N> before, std::array<std::size_t, N> after) {
  Shape shape;
  IndexMap map = pad_map(x.shape(), {before.begin(), before.end()}, {after.begin(), after.end()}, shape);
  return detail::gather<N>(x, "pad", std::move(shape), std::move(map));
}
template <class E, std::size_t N, class W, class... Rest>
auto concatenate(std::size_t axis, const EncryptedTensor<E, N, W>& first, const Rest&... rest) {
  static_assert((... && (std::remove_cvref_t<Rest>::rank == N)), "concatenate takes tensors of one rank");
  (detail::same_graph(first.graph(), rest.graph()), ...);
  Shape shape;
  IndexMap map = concat_map({first.shape(), rest.shape()...}, axis, shape);
  return detail::add_node<N>(first.graph(), Node{.kind = NodeKind::gather, .label = "concatenate", .shape = std::move(shape),
                                                 .operands = {first.node(), rest.node()...}, .map = std::move(map)});
}

// ---------------------------------------------------------------- lookup tables

/// f applied to every element: one programmable bootstrap each. The compiler rounds
/// inputs wider than the rounding precision to their top bits.
template <class E, std::size_t N, class W>
auto apply(const EncryptedTensor<E, N, W>& x, TableFunction f) {
  std::string label = f.name;
  return detail::add_node<N>(x.graph(), Node{.kind = NodeKind::lookup, .label = std::move(label), .shape = x.shape(),
                                             .operands = {x.node()}, .functions = {std::move(f)}});
}
/// Element i gets functions[table_of[i]] (table_of in row-major order): per-channel
/// requantization, for instance. Still one bootstrap per element.
template <class E, std::size_t N, class W>
auto apply(const EncryptedTensor<E, N, W>& x, std::vector<TableFunction> functions, std::vector<std::uint32_t> table_of) {
  if (functions.empty()) shape_error("apply: no table function");
  if (table_of.size() != element_count(x.shape()))
    shape_error("apply: " + std::to_string(table_of.size()) + " table indices for a tensor of shape " + to_string(x.shape()));
  for (std::uint32_t t : table_of)
    if (t >= functions.size()) shape_error("apply: table index " + std::to_string(t) + " of " + std::to_string(functions.size()));
  std::string label = functions[0].name + (functions.size() > 1 ? " (" + std::to_string(functions.size()) + " tables)" : "");
  if (functions.size() == 1) table_of.clear();
  return detail::add_node<N>(x.graph(), Node{.kind = NodeKind::lookup, .label = std::move(label), .shape = x.shape(),
                                             .operands = {x.node()}, .functions = std::move(functions),
                                             .table_of = std::move(table_of)});
}

/// Declares that x's values stay in `range` (measured on calibration data) although the
/// worst case over all inputs is wider: encodings and table roundings then use `range`,
/// and a value outside it wraps around the torus in every run mode alike (Concrete's
/// input-set bounds have the same contract). Only linear results take an assumed range.
template <class E, std::size_t N, class W>
auto assume_range(const EncryptedTensor<E, N, W>& x, ValueRange range) {
  Node& n = (*x.graph())[x.node()];
  if (n.kind == NodeKind::lookup || n.kind == NodeKind::input)
    shape_error("assume_range: the range of a table or an input is already exact");
  n.assumed_range = n.assumed_range ? ValueRange{std::max(n.assumed_range->lo, range.lo), std::min(n.assumed_range->hi, range.hi)}
                                    : range;
  return EncryptedTensor<E, N>(x.graph(), x.node());
}
template <class E, std::size_t N, class W, class F>
  requires std::is_invocable_r_v<std::int64_t, F, std::int64_t>
auto apply(const EncryptedTensor<E, N, W>& x, F f, std::string name = "f") {
  return apply(x, TableFunction::from_integer(std::move(name), std::move(f)));
}

namespace detail {
template <ValueRange R, class E, std::size_t N, class W>
auto apply_with_range(const EncryptedTensor<E, N, W>& x, TableFunction f) {
  const auto y = apply(x, std::move(f));
  return result_t<N, InRange<R>>(y.graph(), y.node());
}
}  // namespace detail

template <class X> auto relu(const X& x) { return apply(x, table::relu()); }
template <class X> auto sign(const X& x) { return detail::apply_with_range<ValueRange{-1, 1}>(x, table::sign()); }
template <class X> auto clip(const X& x, std::int64_t lo, std::int64_t hi) { return apply(x, table::clip(lo, hi)); }
/// clip with bounds in the type: the result's range is known at compile time.
template <std::int64_t Lo, std::int64_t Hi, class X>
auto clip(const X& x) {
  return detail::apply_with_range<ValueRange{Lo, Hi}>(x, table::clip(Lo, Hi));
}
/// ReLU6 on values quantized with `scale` (6 is round(6 / scale)).
template <class X> auto relu6(const X& x, double scale = 1.0) { return clip(x, 0, round_to_integer(6.0 / scale)); }
template <class X> auto sigmoid(const X& x, double input_scale, double output_scale) {
  return apply(x, table::sigmoid(input_scale, output_scale));
}
template <class X> auto tanh(const X& x, double input_scale, double output_scale) {
  return apply(x, table::tanh(input_scale, output_scale));
}
template <class X> auto gelu(const X& x, double input_scale, double output_scale) {
  return apply(x, table::gelu(input_scale, output_scale));
}

/// x rounded to its top `bits` bits (the rest set to 0, rounding half up): a bootstrap
/// that reads only the top of a wide accumulator. Chained into a table it costs nothing.
template <int Bits, class E, std::size_t N, class W>
auto round_bits(const EncryptedTensor<E, N, W>& x) {
  static_assert(Bits >= 1 && Bits <= 8, "a lookup table reads 1 to 8 bits: no parameter set bootstraps more");
  auto y = apply(x, table::identity());
  (*y.graph())[y.node()].rounding_bits = Bits;
  (*y.graph())[y.node()].label = "round_bits<" + std::to_string(Bits) + ">";
  return y;
}

/// Elementwise maximum and minimum: max(a, b) = b + relu(a - b). Forwarding references
/// and constraints, as for the operators: xt::maximum and xt::less would win otherwise.
namespace detail {
// max(a, b) = b + relu(a - b) lies in the hull of the operands' ranges when the relu reads
// a - b exactly, which the range pass cannot see through the sum: say so, or max-pooling
// trees would widen at every level.
template <class X, class Y, class Combine>
auto maximum_like(X&& a, Y&& b, Combine combine) {
  auto r = relu(a - b);
  auto z = combine(r);
  if constexpr (EncryptedExpression<X> && EncryptedExpression<Y>) {
    Node& n = (*z.graph())[z.node()];
    n.hull_of = {a.node(), b.node()};
    n.hull_if_exact = r.node();
  }
  return z;
}
}  // namespace detail
template <class X, class Y>
  requires(EncryptedExpression<X> || EncryptedExpression<Y>)
auto maximum(X&& a, Y&& b) {
  return detail::maximum_like(a, b, [&](const auto& r) { return b + r; });
}
template <class X, class Y>
  requires(EncryptedExpression<X> || EncryptedExpression<Y>)
auto minimum(X&& a, Y&& b) {
  return detail::maximum_like(a, b, [&](const auto& r) { return a - r; });
}

// Comparisons give 1 or 0, from one table on a - b.
#define FHETENSOR_COMPARISON(name, predicate)                                                                 \
  template <EncryptedExpression X, class Y>                                                                   \
  auto name(X&& a, Y&& b) {                                                                                   \
    return detail::apply_with_range<ValueRange{0, 1}>(a - b, table::indicator(#name, [](std::int64_t d) { return predicate; })); \
  }
FHETENSOR_COMPARISON(less, d < 0)
FHETENSOR_COMPARISON(less_equal, d <= 0)
FHETENSOR_COMPARISON(greater, d > 0)
FHETENSOR_COMPARISON(greater_equal, d >= 0)
FHETENSOR_COMPARISON(equal, d == 0)
FHETENSOR_COMPARISON(not_equal, d != 0)
#undef FHETENSOR_COMPARISON

// ---------------------------------------------------------------- reductions with division, pooling

/// Mean over axes: the sum, then a division table (which fuses into a following table).
template <std::size_t Removed, bool Keep = false, class E, std::size_t N, class W>
auto mean(const EncryptedTensor<E, N, W>& x, std::array<std::size_t, Removed> axes) {
  auto total = sum<Removed, Keep>(x, axes);  // first: it checks the axes
  std::int64_t count = 1;
  for (std::size_t a : axes) count *= static_cast<std::int64_t>(x.shape()[a]);
  return apply(total, table::divide(count));
}

namespace detail {
/// The windows of a pooling layer: one gather per kernel tap, each of the output's shape.
template <class E, std::size_t N, class W>
auto pooling_taps(const EncryptedTensor<E, N, W>& x, const Window2d& window, bool zero_padding) {
  static_assert(N == 3 || N == 4, "pooling takes a [C, H, W] or [B, C, H, W] tensor");
  const Shape& in = x.shape();
  const std::size_t h = in[N - 2], w = in[N - 1], planes = element_count(in) / (h * w);
  const IndexMap taps = window.taps(h, w);
  const std::size_t oh = window.output_h(h), ow = window.output_w(w), k = window.kernel_h * window.kernel_w;
  Shape shape = in;
  shape[N - 2] = oh;
  shape[N - 1] = ow;
  std::vector<result_t<N>> gathered;
  for (std::size_t t = 0; t < k; ++t) {
    IndexMap map(planes * oh * ow);
    for (std::size_t p = 0; p < planes; ++p)
      for (std::size_t o = 0; o < oh * ow; ++o) {
        std::int64_t i = taps[o * k + t];
        // Max pooling ignores the padding: a padded tap repeats a valid one of its window.
        for (std::size_t u = 0; i < 0 && !zero_padding && u < k; ++u) i = taps[o * k + u];
        map[p * oh * ow + o] = i < 0 ? -1 : static_cast<std::int64_t>(p * h * w) + i;
      }
    gathered.push_back(gather<N>(x, "window tap " + std::to_string(t), shape, std::move(map)));
  }
  return gathered;
}
}  // namespace detail

/// Average pooling (zeros in the padding count, as with count_include_pad): a depthwise
/// sum of the window, then one division table.
template <class E, std::size_t N, class W>
auto avg_pool2d(const EncryptedTensor<E, N, W>& x, Window2d window) {
  auto taps = detail::pooling_taps(x, window, true);
  Graph& g = *x.graph();
  std::vector<NodeId> operands;
  std::vector<ClearTensor> ones;
  for (auto& t : taps) operands.push_back(t.node()), ones.push_back(ClearTensor(1));
  const NodeId s = detail::linear_node(g, "window sum", operands, ones, ClearTensor(0), taps[0].shape());
  const auto count = static_cast<std::int64_t>(window.kernel_h * window.kernel_w);
  return apply(detail::result_t<N>(x.graph(), s), table::divide(count));
}
/// Mean over the spatial axes: [.., C, H, W] -> [.., C].
template <class E, std::size_t N, class W>
auto global_avg_pool(const EncryptedTensor<E, N, W>& x) {
  static_assert(N == 3 || N == 4, "global_avg_pool takes a [C, H, W] or [B, C, H, W] tensor");
  return mean(x, std::array<std::size_t, 2>{N - 2, N - 1});
}
/// Max pooling: a tree of maximum() over the window's taps (k - 1 tables per output).
template <class E, std::size_t N, class W>
auto max_pool2d(const EncryptedTensor<E, N, W>& x, Window2d window) {
  auto level = detail::pooling_taps(x, window, false);
  while (level.size() > 1) {
    std::vector<detail::result_t<N>> next;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(maximum(level[i], level[i + 1]));
    if (level.size() % 2) next.push_back(level.back());
    level = std::move(next);
  }
  return level[0];
}

FHETENSOR_END_NAMESPACE
