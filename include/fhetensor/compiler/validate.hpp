#pragma once
// The invariants every run mode relies on, checked on a compiled model that did not come
// from compile() (a file, a network peer): operand order, shapes against the node kinds,
// index maps and tables inside their bounds, encodings that fit the torus. A model that
// passes cannot make the evaluator read or write out of bounds.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {
/// Elements a node may have: what a few gigabytes of ciphertexts hold at the smallest set.
inline constexpr std::size_t max_node_elements = std::size_t{1} << 26;

[[noreturn]] inline void invalid_model(NodeId id, const std::string& what) {
  throw std::invalid_argument("fhetensor: invalid model: node " + std::to_string(id) + ": " + what);
}

inline std::size_t checked_count(NodeId id, const Shape& shape) {
  if (shape.size() > 8) invalid_model(id, "rank " + std::to_string(shape.size()) + " over 8");
  std::size_t count = 1;
  for (std::size_t d : shape) {
    if (d != 0 && count > max_node_elements / d) invalid_model(id, "more than 2^26 elements");
    count *= d;
  }
  return count;
}

inline void check_range(NodeId id, ValueRange r) {
  if (r.lo > r.hi || r.lo < -range_limit || r.hi > range_limit) invalid_model(id, "value range " + r.to_string());
}

inline void check_conv2d(NodeId id, const Node& n, const Shape& in) {
  const Window2d& w = n.window;
  if (in.size() < 3 || in.size() != n.shape.size()) invalid_model(id, "conv2d shapes");
  const std::size_t r = in.size();
  if (!std::equal(in.begin(), in.end() - 3, n.shape.begin())) invalid_model(id, "conv2d batch dimensions differ");
  for (std::size_t v : {w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.dilation_h, w.dilation_w})
    if (v == 0 || v > 4096) invalid_model(id, "conv2d window");
  for (std::size_t v : {w.pad_top, w.pad_left, w.pad_bottom, w.pad_right})
    if (v > 4096) invalid_model(id, "conv2d padding");
  const std::size_t c_in = in[r - 3], c_out = n.shape[r - 3];
  if (n.groups == 0 || c_in % n.groups != 0 || c_out % n.groups != 0) invalid_model(id, "conv2d groups");
  if (in[r - 2] + w.pad_top + w.pad_bottom < w.dilation_h * (w.kernel_h - 1) + 1 ||
      in[r - 1] + w.pad_left + w.pad_right < w.dilation_w * (w.kernel_w - 1) + 1)
    invalid_model(id, "conv2d window larger than its input");
  if (w.output_h(in[r - 2]) != n.shape[r - 2] || w.output_w(in[r - 1]) != n.shape[r - 1])
    invalid_model(id, "conv2d output shape");
  const std::size_t kernel = w.kernel_h * w.kernel_w;
  if (n.weights.size() != c_out * (c_in / n.groups) * kernel) invalid_model(id, "conv2d weights");
  if (n.bias.dimension() != 1 || n.bias.size() != c_out) invalid_model(id, "conv2d bias");
  if (n.shape[r - 2] * n.shape[r - 1] * kernel > max_node_elements) invalid_model(id, "conv2d taps");
}

inline void check_lookup(NodeId id, const Node& n, const NodeAnnotation& a, std::size_t count) {
  if (!a.lookup) invalid_model(id, "a lookup without its plan");
  const LookupPlan& p = *a.lookup;
  if (p.precision < 1 || p.precision > max_precision) invalid_model(id, "table precision");
  if (p.shift < 0 || p.shift > 62 - p.precision) invalid_model(id, "rounding shift");
  if (p.input_scale_log2 < 0 || p.input_scale_log2 > 63) invalid_model(id, "input scale");
  if (!(p.rotation_variance >= 0) || !std::isfinite(p.rotation_variance)) invalid_model(id, "noise variance");
  if (p.tables.empty() || p.tables.size() > count + 1) invalid_model(id, "table count");
  for (const auto& t : p.tables)
    if (t.size() != std::size_t{1} << p.precision) invalid_model(id, "a table of the wrong size");
  if (!n.table_of.empty()) {
    if (n.table_of.size() != count) invalid_model(id, "table selection size");
    for (std::uint32_t t : n.table_of)
      if (t >= p.tables.size()) invalid_model(id, "a table selection out of range");
  } else if (p.tables.size() != 1) {
    invalid_model(id, "several tables and no selection");
  }
  if (!n.functions.empty() && n.functions.size() != p.tables.size()) invalid_model(id, "function count");
}
}  // namespace detail

/// Throws std::invalid_argument naming the first broken invariant.
inline void validate(const CompiledModel& m) {
  using detail::invalid_model;
  const Graph& g = m.graph;
  if (m.nodes.size() != g.size()) throw std::invalid_argument("fhetensor: invalid model: annotations for another graph");
  if (m.instance >= menu_size) throw std::invalid_argument("fhetensor: invalid model: unknown parameter set");
  for (int bits : m.component_bits)
    if (bits < 1 || bits > 63) throw std::invalid_argument("fhetensor: invalid model: an encoding of " + std::to_string(bits) + " bits");
  std::vector<std::size_t> counts(g.size());
  std::size_t bootstraps = 0;
  for (NodeId id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    const NodeAnnotation& a = m.nodes[id];
    const std::size_t count = counts[id] = detail::checked_count(id, n.shape);
    for (NodeId o : n.operands)
      if (o >= id) invalid_model(id, "an operand that does not come before it");
    if (a.component >= m.component_bits.size()) invalid_model(id, "encoding component");
    detail::check_range(id, a.range);
    if (!(a.variance >= 0) || !std::isfinite(a.variance)) invalid_model(id, "noise variance");
    if (n.kind != NodeKind::lookup && a.lookup) invalid_model(id, "a lookup plan on a linear node");
    const auto operand_count = [&](std::size_t k) { return counts[n.operands[k]]; };
    const auto unary = [&] {
      if (n.operands.size() != 1) invalid_model(id, "takes one operand");
    };
    switch (n.kind) {
      case NodeKind::input:
        if (!n.operands.empty()) invalid_model(id, "an input with operands");
        break;
      case NodeKind::gather: {
        if (n.operands.empty() || n.map.size() != count) invalid_model(id, "gather map size");
        std::size_t total = 0;
        for (std::size_t k = 0; k < n.operands.size(); ++k) total += operand_count(k);
        for (std::int64_t v : n.map)
          if (v >= static_cast<std::int64_t>(total)) invalid_model(id, "gather index out of range");
        break;
      }
      case NodeKind::linear:
        if (n.operands.empty() || n.coefficients.size() != n.operands.size()) invalid_model(id, "linear coefficients");
        for (std::size_t k = 0; k < n.operands.size(); ++k)
          if (operand_count(k) != count || n.coefficients[k].size() != count) invalid_model(id, "linear operand sizes");
        if (n.bias.size() != count) invalid_model(id, "linear bias size");
        break;
      case NodeKind::matmul: {
        unary();
        if (n.weights.dimension() != 2 || n.bias.dimension() != 1) invalid_model(id, "matmul weights or bias rank");
        const std::size_t k = n.weights.shape()[0], cols = n.weights.shape()[1];
        if (cols == 0 || n.shape.empty() || n.shape.back() != cols || n.bias.size() != cols) invalid_model(id, "matmul shapes");
        if (k == 0 || operand_count(0) != count / cols * k) invalid_model(id, "matmul operand size");
        break;
      }
      case NodeKind::conv2d:
        unary();
        detail::check_conv2d(id, n, g[n.operands[0]].shape);
        break;
      case NodeKind::reduce_sum: {
        unary();
        const Shape& in = g[n.operands[0]].shape;
        if (!std::is_sorted(n.axes.begin(), n.axes.end()) || std::adjacent_find(n.axes.begin(), n.axes.end()) != n.axes.end() ||
            (!n.axes.empty() && n.axes.back() >= in.size()))
          invalid_model(id, "reduction axes");
        std::size_t kept = 1;
        for (std::size_t d = 0; d < in.size(); ++d)
          if (!std::binary_search(n.axes.begin(), n.axes.end(), d)) kept *= in[d];
        if (kept != count) invalid_model(id, "reduction output size");
        break;
      }
      case NodeKind::lookup:
        unary();
        if (operand_count(0) != count) invalid_model(id, "lookup operand size");
        detail::check_lookup(id, n, a, count);
        bootstraps += count;
        break;
      default:
        invalid_model(id, "unknown node kind");
    }
  }
  std::vector<NodeId> inputs = g.inputs();
  std::vector<NodeId> declared = m.inputs;
  std::sort(declared.begin(), declared.end());
  if (declared != inputs) throw std::invalid_argument("fhetensor: invalid model: its inputs are not its input nodes");
  for (NodeId o : m.outputs)
    if (o >= g.size()) throw std::invalid_argument("fhetensor: invalid model: an output beyond the graph");
  if (m.statistics.bootstraps != bootstraps)
    throw std::invalid_argument("fhetensor: invalid model: its statistics count another number of bootstraps");
}

FHETENSOR_END_NAMESPACE
