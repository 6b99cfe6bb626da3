#pragma once
// The graph every front door lowers to: C++ expressions (expr/encrypted.hpp) and, later,
// imported models. Seven node kinds cover every operation: data movement is one gather,
// every clear-weighted linear map is one of three linear kinds, and every non-linear
// function is one lookup. Passes (compiler/) annotate it; only the runtime touches
// ciphertexts.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <fhetensor/core/value_range.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/shape.hpp>
#include <fhetensor/expr/table_function.hpp>

FHETENSOR_BEGIN_NAMESPACE

using NodeId = std::size_t;
using ClearTensor = xt::xarray<std::int64_t>;

enum class NodeKind : std::uint8_t {
  input,      // an encrypted input
  gather,     // data movement: out[i] = operands laid end to end [map[i]], 0 where map[i] < 0
  linear,     // elementwise: out = sum_j coefficients[j] * operand[j] + bias (clear, broadcast)
  matmul,     // out[..., m] = sum_k x[..., k] * weights[k, m] + bias[m]
  conv2d,     // NCHW (or CHW) convolution with clear weights [C_out, C_in / groups, KH, KW]
  reduce_sum, // sum over axes
  lookup,     // out = f(x rounded to the table's precision): one bootstrap per element
};

inline const char* to_string(NodeKind k) {
  constexpr std::array names{"input", "gather", "linear", "matmul", "conv2d", "reduce_sum", "lookup"};
  return names[static_cast<std::size_t>(k)];
}

struct Node {
  NodeKind kind = NodeKind::input;
  std::string label{};  // what the user wrote, for explain()
  Shape shape{};
  std::vector<NodeId> operands{};

  // input
  std::optional<ValueRange> declared_range{};
  // any node: its values lie in the hull of these nodes' ranges (maximum, minimum) when
  // the lookup hull_if_exact reads its input without rounding
  std::vector<NodeId> hull_of{};
  NodeId hull_if_exact = 0;
  // linear kinds: a range the values are assumed to stay in (calibrated on data, as
  // Concrete's input sets do) where the worst case is wider; outside it, results wrap
  // around the torus, and every run mode computes the same wrapped values
  std::optional<ValueRange> assumed_range{};
  // gather
  IndexMap map{};
  // linear: one coefficient tensor per operand (scalar or broadcastable to shape);
  // linear, matmul, conv2d: bias (scalar or broadcastable to shape); matmul, conv2d: weights
  std::vector<ClearTensor> coefficients{};
  ClearTensor weights{};
  ClearTensor bias{};
  // conv2d
  Window2d window{};
  std::size_t groups = 1;
  // reduce_sum
  std::vector<std::size_t> axes{};
  // lookup: one function for every element, or several, element i using
  // functions[table_of[i]] (per-channel requantization)
  std::vector<TableFunction> functions{};
  std::vector<std::uint32_t> table_of{};
  std::optional<int> rounding_bits{};  // pinned by round_bits(); else the compiler decides

  bool is_lookup() const noexcept { return kind == NodeKind::lookup; }
  std::size_t table_index(std::size_t element) const { return table_of.empty() ? 0 : table_of[element]; }
};

/// Nodes in creation order, which is a topological order: operands come first.
class Graph {
 public:
  NodeId add(Node node) {
    for (NodeId o : node.operands)
      if (o >= nodes_.size()) shape_error("a node's operand belongs to another graph");
    nodes_.push_back(std::move(node));
    return nodes_.size() - 1;
  }
  const Node& operator[](NodeId id) const { return nodes_.at(id); }
  Node& operator[](NodeId id) { return nodes_.at(id); }
  std::size_t size() const noexcept { return nodes_.size(); }
  const std::vector<Node>& nodes() const noexcept { return nodes_; }

  std::vector<NodeId> inputs() const {
    std::vector<NodeId> ids;
    for (NodeId i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].kind == NodeKind::input) ids.push_back(i);
    return ids;
  }

 private:
  std::vector<Node> nodes_;
};

FHETENSOR_END_NAMESPACE
