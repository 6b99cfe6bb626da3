#pragma once
// Encrypted<Tensor<E, N>, Width>: a lazy expression over an encrypted tensor. Operations
// on it add nodes to a graph (expr/graph.hpp) and return new expressions; nothing is
// computed until a compiled model runs. The rank is in the type, and so is the value
// range wherever the operands' types determine it (Bits<P>, narrow element types):
// those widths are checked at compile time.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/graph.hpp>
#include <fhetensor/tensor/tensor.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// An encrypted rank-N tensor of integers of element type E (a hint: what matters is the
/// range, from Width, E, or the compiler's range pass). Users spell it
/// Encrypted<Tensor<E, N>, Width>; its own template arguments keep xtensor's namespace out
/// of argument-dependent lookup, so sum(x) finds fhetensor::sum, not xt::sum.
template <class E, std::size_t N, WidthSpec Width = InferredWidth>
class EncryptedTensor {
  static_assert(std::is_integral_v<E>, "encrypted tensors hold integers: quantize floating-point values first");

 public:
  using element_type = E;
  using width = Width;
  static constexpr std::size_t rank = N;
  /// The value range known from the type, if any.
  static constexpr std::optional<ValueRange> static_range = declared_range<E, Width>();

  /// A new graph with this tensor as its first encrypted input.
  static EncryptedTensor input(Shape shape, std::optional<ValueRange> range = std::nullopt) {
    return input(std::make_shared<Graph>(), std::move(shape), range);
  }
  /// Another encrypted input of an existing graph (models with several inputs).
  template <class Other>
  static EncryptedTensor input_of(const Other& same_graph, Shape shape, std::optional<ValueRange> range = std::nullopt) {
    return input(same_graph.graph(), std::move(shape), range);
  }

  /// An encrypted input added to `graph`.
  static EncryptedTensor input(std::shared_ptr<Graph> graph, Shape shape, std::optional<ValueRange> range) {
    if (shape.size() != N) shape_error("an input of rank " + std::to_string(N) + " declared with shape " + to_string(shape));
    if (static_range && range && !static_range->contains(*range))
      shape_error("the declared range " + range->to_string() + " exceeds the type's range " + static_range->to_string());
    Node node{.kind = NodeKind::input, .label = "input", .shape = std::move(shape)};
    node.declared_range = range ? range : static_range;
    const NodeId id = graph->add(std::move(node));
    return {std::move(graph), id};
  }

  EncryptedTensor(std::shared_ptr<Graph> graph, NodeId node) : graph_(std::move(graph)), node_(node) {
    if ((*graph_)[node_].shape.size() != N)
      shape_error("a rank-" + std::to_string(N) + " expression for a node of shape " + to_string((*graph_)[node_].shape));
  }
  /// The same node seen with another width spec (for instance after a range check).
  template <class W>
  EncryptedTensor(const EncryptedTensor<E, N, W>& other)
    requires(!std::same_as<W, Width> && !Width::range.has_value())
      : EncryptedTensor(other.graph(), other.node()) {}

  const std::shared_ptr<Graph>& graph() const noexcept { return graph_; }
  NodeId node() const noexcept { return node_; }
  /// A copy: a reference into the graph would dangle once another node is added.
  Shape shape() const { return (*graph_)[node_].shape; }

 private:
  std::shared_ptr<Graph> graph_;
  NodeId node_;
};

namespace detail {
template <class T, class Width>
struct EncryptedOf {
  static_assert(sizeof(T) == 0, "Encrypted<T> takes a clear tensor type: Encrypted<Tensor<int, N>>");
};
template <class E, std::size_t N, class Width>
struct EncryptedOf<Tensor<E, N>, Width> {
  using type = EncryptedTensor<E, N, Width>;
};
}  // namespace detail

/// An encrypted tensor of the shape of T = Tensor<E, N>: Encrypted<Tensor<int, 2>, Bits<6>>.
template <class T, WidthSpec Width = InferredWidth>
using Encrypted = typename detail::EncryptedOf<T, Width>::type;

template <class T>
inline constexpr bool is_encrypted_v = false;
template <class E, std::size_t N, class W>
inline constexpr bool is_encrypted_v<EncryptedTensor<E, N, W>> = true;
template <class T>
concept EncryptedExpression = is_encrypted_v<std::remove_cvref_t<T>>;

/// The declaration of one model input, for compile(function, inputs...).
template <class T, WidthSpec Width = InferredWidth>
struct InputDeclaration {
  Shape shape;
  std::optional<ValueRange> range;
};
template <class T, WidthSpec Width = InferredWidth>
InputDeclaration<T, Width> input(Shape shape, std::optional<ValueRange> range = std::nullopt) {
  return {std::move(shape), range};
}

FHETENSOR_END_NAMESPACE
