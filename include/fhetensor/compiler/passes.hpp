#pragma once
// The compiler's passes, in order (each a function of the graph and what the previous
// ones found):
//   1. ranges: every node's value range, from declared input ranges and clear weights;
//      a lookup's rounding (which bits of its input it reads) is decided with its input's
//      range, and its output range is the range of its table;
//   2. fusion: a table applied to a table (possibly through a scalar affine step) becomes
//      one table; dead nodes go;
//   3. encodings: nodes joined by linear operations form a component with one encoding,
//      as wide as the widest value read from it (by a table or a decryption);
//   4. noise: each node's variance on a candidate parameter set;
//   5. parameters: the cheapest instance of the menu that bootstraps every table within
//      the error probability.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>
#include <fhetensor/algorithms/noise_formulas.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/compiler/cost_model.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/graph.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct CompileError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

namespace compiler {

inline std::string describe(const Graph& g, NodeId id) {
  return "node " + std::to_string(id) + " (" + g[id].label + " " + to_string(g[id].shape) + ")";
}

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// Reads a table's input over at most `bits` bits: rounds away low bits only when needed.
inline LookupPlan plan_rounding(ValueRange in, int bits) {
  LookupPlan plan;
  if (in.span() < (std::uint64_t{1} << bits)) {
    plan.precision = bits_for_span(in.span());
    plan.offset = in.lo;
    plan.used_entries = static_cast<std::int64_t>(in.span()) + 1;
    return plan;
  }
  for (int k = 1; k < 63; ++k) {
    const std::int64_t half = std::int64_t{1} << (k - 1), step = std::int64_t{1} << k;
    const std::int64_t jlo = floor_div(in.lo + half, step), jhi = floor_div(in.hi + half, step);
    if (static_cast<std::uint64_t>(jhi - jlo) < (std::uint64_t{1} << bits)) {
      plan.shift = k;
      plan.precision = bits_for_span(static_cast<std::uint64_t>(jhi - jlo));
      plan.offset = jlo * step;
      plan.used_entries = jhi - jlo + 1;
      return plan;
    }
  }
  throw CompileError("fhetensor: no rounding fits the range " + in.to_string());
}

/// Fills one table per function with f at the rounded input of every index (the last
/// reachable value beyond them) and returns the hull of the tables' outputs.
inline ValueRange fill_tables(LookupPlan& plan, const std::vector<TableFunction>& functions) {
  const std::size_t entries = std::size_t{1} << plan.precision;
  plan.tables.assign(functions.size(), LookupPlan::Table(entries));
  ValueRange out{INT64_MAX, INT64_MIN};
  for (std::size_t t = 0; t < functions.size(); ++t)
    for (std::size_t j = 0; j < entries; ++j) {
      const auto used = static_cast<std::int64_t>(std::min<std::size_t>(j, plan.used_entries - 1));
      const std::int64_t y = functions[t].integer(plan.offset + (used << plan.shift));
      plan.tables[t][j] = y;
      out = hull(out, point(y));
    }
  return checked(out);
}

class Compiler {
 public:
  Compiler(Graph graph, std::vector<NodeId> outputs, CompileOptions options)
      : graph_(std::move(graph)), outputs_(std::move(outputs)), options_(options) {
    if (options_.rounding_bits < 1 || options_.rounding_bits > max_precision)
      throw CompileError("fhetensor: rounding_bits must be 1 to 8: no parameter set bootstraps wider tables");
    if (!(options_.error_probability > 0 && options_.error_probability < 0.5))
      throw CompileError("fhetensor: the error probability must be in (0, 0.5)");
    if (outputs_.empty()) throw CompileError("fhetensor: a model needs at least one output");
  }

  CompiledModel run() {
    ranges();
    fuse();
    prune();
    encodings();
    choose_parameters();  // runs the noise pass on each candidate, the chosen one last
    return finish();
  }

 private:
  // ---- 1. ranges
  void ranges() {
    nodes_.assign(graph_.size(), {});
    for (NodeId id = 0; id < graph_.size(); ++id) {
      nodes_[id].range = range_of(id);
      if (const auto& a = graph_[id].assumed_range; a && !graph_[id].is_lookup())
        nodes_[id].range = {std::max(nodes_[id].range.lo, a->lo), std::min(nodes_[id].range.hi, a->hi)};
      if (nodes_[id].range.lo > nodes_[id].range.hi)
        throw CompileError("fhetensor: the assumed range of " + describe(graph_, id) + " misses every value it can take");
      if (const auto& h = graph_[id].hull_of; !h.empty() && nodes_[graph_[id].hull_if_exact].lookup->shift == 0) {
        ValueRange bound = nodes_[h[0]].range;
        for (NodeId o : h) bound = hull(bound, nodes_[o].range);
        nodes_[id].range = {std::max(nodes_[id].range.lo, bound.lo), std::min(nodes_[id].range.hi, bound.hi)};
      }
    }
  }

  ValueRange range_of(NodeId id) {
    const Node& n = graph_[id];
    auto in = [&](std::size_t i) { return nodes_[n.operands[i]].range; };
    switch (n.kind) {
      case NodeKind::input:
        if (!n.declared_range)
          throw CompileError("fhetensor: " + describe(graph_, id) +
                             " has no declared range: give one with input<T>(shape, ValueRange{lo, hi}), a width such as "
                             "Bits<P>, or a narrow element type such as std::uint8_t");
        return *n.declared_range;
      case NodeKind::gather: {
        ValueRange r = in(0);
        for (std::size_t i = 1; i < n.operands.size(); ++i) r = hull(r, in(i));
        if (std::any_of(n.map.begin(), n.map.end(), [](std::int64_t m) { return m < 0; })) r = hull(r, point(0));
        return r;
      }
      case NodeKind::linear: {
        ValueRange r{INT64_MAX, INT64_MIN};
        for (std::size_t e = 0; e < element_count(n.shape); ++e) {
          ValueRange v = point(n.bias.flat(e));
          for (std::size_t i = 0; i < n.operands.size(); ++i) v = v + scale(in(i), n.coefficients[i].flat(e));
          r = hull(r, v);
        }
        return r;
      }
      case NodeKind::matmul: {
        const std::size_t k = n.weights.shape()[0], m = n.weights.shape()[1];
        ValueRange r{INT64_MAX, INT64_MIN};
        for (std::size_t col = 0; col < m; ++col) {
          ValueRange v = point(n.bias(col));
          for (std::size_t row = 0; row < k; ++row) v = v + scale(in(0), n.weights(row, col));
          r = hull(r, v);
        }
        return r;
      }
      case NodeKind::conv2d: {
        const bool padded = n.window.pad_top + n.window.pad_left + n.window.pad_bottom + n.window.pad_right > 0;
        const ValueRange x = padded ? hull(in(0), point(0)) : in(0);
        const std::size_t per_filter = element_count(n.weights.shape()) / n.weights.shape()[0];
        ValueRange r{INT64_MAX, INT64_MIN};
        for (std::size_t co = 0; co < n.weights.shape()[0]; ++co) {
          ValueRange v = point(n.bias(co));
          for (std::size_t t = 0; t < per_filter; ++t) v = v + scale(x, n.weights.flat(co * per_filter + t));
          r = hull(r, v);
        }
        return r;
      }
      case NodeKind::reduce_sum:
        return repeat_sum(in(0), static_cast<std::int64_t>(element_count(graph_[n.operands[0]].shape) /
                                                          std::max<std::size_t>(1, element_count(n.shape))));
      case NodeKind::lookup: {
        if (n.functions.empty() || (!n.table_of.empty() && n.table_of.size() != element_count(n.shape)))
          throw CompileError("fhetensor: " + describe(graph_, id) + " needs one table function, or one table index per element");
        for (std::uint32_t t : n.table_of)
          if (t >= n.functions.size()) throw CompileError("fhetensor: " + describe(graph_, id) + " selects a table it does not have");
        LookupPlan plan = plan_rounding(in(0), n.rounding_bits.value_or(options_.rounding_bits));
        const ValueRange out = fill_tables(plan, n.functions);
        nodes_[id].lookup = std::move(plan);
        return out;
      }
    }
    throw CompileError("fhetensor: unknown node kind");
  }

  // ---- 2. fusion
  std::vector<std::size_t> consumer_counts() const {
    std::vector<std::size_t> uses(graph_.size(), 0);
    for (const Node& n : graph_.nodes())
      for (NodeId o : n.operands) ++uses[o];
    for (NodeId o : outputs_) ++uses[o];
    return uses;
  }

  static bool is_scalar_affine(const Node& n) {
    if (n.kind != NodeKind::linear || n.operands.size() != 1) return false;
    auto uniform = [](const ClearTensor& t) { return std::all_of(t.begin(), t.end(), [&](std::int64_t v) { return v == *t.begin(); }); };
    return uniform(n.coefficients[0]) && uniform(n.bias);
  }

  // Table t's clear semantics, rounding included, as one function of its input.
  static TableFunction as_function(const Node& n, const LookupPlan& plan, std::size_t t) {
    LookupPlan rounding = plan;
    rounding.tables.clear();
    return {n.functions[t].name,
            [table = plan.tables[t], rounding](std::int64_t x) {
              const std::int64_t j = std::clamp<std::int64_t>(rounding.index_of(x), 0, rounding.used_entries - 1);
              return table[static_cast<std::size_t>(j)];
            },
            n.functions[t].real};
  }

  // outer(a * inner(x) + b) for every pair of tables the elements use together.
  static void compose_tables(Node& outer, const Node& inner, const LookupPlan& outer_plan, const LookupPlan& inner_plan,
                             std::optional<std::pair<std::int64_t, std::int64_t>> step) {
    std::map<std::pair<std::size_t, std::size_t>, std::uint32_t> pairs;
    std::vector<std::uint32_t> table_of(element_count(outer.shape));
    for (std::size_t e = 0; e < table_of.size(); ++e)
      table_of[e] = pairs.try_emplace({outer.table_index(e), inner.table_index(e)}, static_cast<std::uint32_t>(pairs.size()))
                        .first->second;
    std::vector<TableFunction> fused(pairs.size());
    for (const auto& [pair, index] : pairs) {
      TableFunction middle = as_function(inner, inner_plan, pair.second);
      if (step) middle = affine(middle, step->first, step->second);
      fused[index] = compose(as_function(outer, outer_plan, pair.first), middle);
      fused[index].name = outer.functions[pair.first].name + (step ? "(affine(" : "(") + inner.functions[pair.second].name +
                          (step ? "))" : ")");
    }
    outer.functions = std::move(fused);
    outer.table_of = outer.functions.size() > 1 ? std::move(table_of) : std::vector<std::uint32_t>{};
  }

  void fuse() {
    auto uses = consumer_counts();
    for (NodeId id = 0; id < graph_.size(); ++id) {
      Node& outer = graph_[id];
      if (!outer.is_lookup()) continue;
      NodeId x = outer.operands[0];
      // Scalar affine steps a * v + b between the tables compose into one.
      std::optional<std::pair<std::int64_t, std::int64_t>> step;
      while (is_scalar_affine(graph_[x]) && uses[x] == 1 && !graph_[x].assumed_range) {
        const std::int64_t a = *graph_[x].coefficients[0].begin(), b = *graph_[x].bias.begin();
        step = step ? std::pair{step->first * a, step->first * b + step->second} : std::pair{a, b};
        x = graph_[x].operands[0];
      }
      if (!graph_[x].is_lookup() || uses[x] != 1 || graph_[x].shape != outer.shape) continue;
      const Node& inner = graph_[x];
      LookupPlan plan = *nodes_[x].lookup;
      compose_tables(outer, inner, *nodes_[id].lookup, plan, step);
      nodes_[id].range = fill_tables(plan, outer.functions);
      nodes_[id].lookup = std::move(plan);
      outer.label = outer.functions.size() == 1 ? outer.functions[0].name
                                                : outer.functions[0].name + " (" + std::to_string(outer.functions.size()) + " tables)";
      outer.operands = inner.operands;
      outer.rounding_bits = inner.rounding_bits;
      ++fused_;
      uses = consumer_counts();
    }
  }

  void prune() {
    std::vector<bool> live(graph_.size(), false);
    for (NodeId o : outputs_) live[o] = true;
    for (NodeId id = graph_.size(); id-- > 0;)
      if (live[id])
        for (NodeId o : graph_[id].operands) live[o] = true;
    for (NodeId id = 0; id < graph_.size(); ++id)  // inputs stay, even unused: they are the model's signature
      if (graph_[id].kind == NodeKind::input) live[id] = true;
    std::vector<NodeId> renumber(graph_.size(), 0);
    Graph kept;
    std::vector<NodeAnnotation> kept_nodes;
    for (NodeId id = 0; id < graph_.size(); ++id) {
      if (!live[id]) continue;
      Node n = std::move(graph_[id]);
      for (NodeId& o : n.operands) o = renumber[o];
      n.hull_of.clear();  // used by the range pass only
      renumber[id] = kept.add(std::move(n));
      kept_nodes.push_back(std::move(nodes_[id]));
    }
    for (NodeId& o : outputs_) o = renumber[o];
    graph_ = std::move(kept);
    nodes_ = std::move(kept_nodes);
  }

  // ---- 3. encodings
  void encodings() {
    std::vector<std::size_t> parent(graph_.size());
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](std::size_t v) {
      while (parent[v] != v) v = parent[v] = parent[parent[v]];
      return v;
    };
    for (NodeId id = 0; id < graph_.size(); ++id)
      if (!graph_[id].is_lookup())
        for (NodeId o : graph_[id].operands) parent[find(o)] = find(id);
    std::vector<std::size_t> component_of_root(graph_.size(), SIZE_MAX);
    for (NodeId id = 0; id < graph_.size(); ++id) {
      std::size_t& c = component_of_root[find(id)];
      if (c == SIZE_MAX) c = component_bits_.size(), component_bits_.push_back(1);
      nodes_[id].component = c;
    }
    auto read = [&](NodeId id, int bits, const std::string& reader) {
      if (bits > 62)
        throw CompileError("fhetensor: " + reader + " reads " + std::to_string(bits) + "-bit values from " +
                           describe(graph_, id) + ": more than the 62 bits the torus holds");
      int& w = component_bits_[nodes_[id].component];
      w = std::max(w, bits);
    };
    for (NodeId id = 0; id < graph_.size(); ++id)
      if (graph_[id].is_lookup()) {
        const LookupPlan& p = *nodes_[id].lookup;
        read(graph_[id].operands[0], p.precision + p.shift, describe(graph_, id));
      }
    for (NodeId o : outputs_) read(o, width_of(nodes_[o].range), "the decryption of the output");
    for (NodeId id = 0; id < graph_.size(); ++id)
      if (graph_[id].is_lookup()) {
        LookupPlan& p = *nodes_[id].lookup;
        p.input_scale_log2 = component_bits_[nodes_[graph_[id].operands[0]].component] - p.precision - p.shift;
      }
  }

  // ---- 4. noise: absolute variances (torus units) on instance I
  template <TfheInstance I>
  void noise() {
    for (NodeId id = 0; id < graph_.size(); ++id) {
      const Node& n = graph_[id];
      NodeAnnotation& a = nodes_[id];
      auto mu = [&](std::size_t i) { return nodes_[n.operands[i]].variance; };
      auto corr = [&](std::size_t i) { return nodes_[n.operands[i]].correlated; };
      switch (n.kind) {
        case NodeKind::input:
          a.variance = noise::fresh_variance<I>(), a.correlated = false;
          break;
        case NodeKind::lookup:
          a.variance = noise::bootstrap_variance<I>(), a.correlated = false;
          break;
        case NodeKind::gather: {
          a.variance = 0, a.correlated = false;
          std::size_t total = 0;
          for (std::size_t i = 0; i < n.operands.size(); ++i) {
            a.variance = std::max(a.variance, mu(i));
            a.correlated = a.correlated || corr(i);
            total += element_count(graph_[n.operands[i]].shape);
          }
          std::vector<bool> seen(total, false);
          for (std::int64_t m : n.map)
            if (m >= 0) {
              a.correlated = a.correlated || seen[static_cast<std::size_t>(m)];
              seen[static_cast<std::size_t>(m)] = true;
            }
          break;
        }
        case NodeKind::linear: {
          // Several operands may share noise: bound the sum by Minkowski's inequality.
          a.variance = 0;
          for (std::size_t e = 0; e < element_count(n.shape); ++e) {
            double sigma = 0;
            for (std::size_t i = 0; i < n.operands.size(); ++i)
              sigma += std::abs(static_cast<double>(n.coefficients[i].flat(e))) * std::sqrt(mu(i));
            a.variance = std::max(a.variance, sigma * sigma);
          }
          a.correlated = n.operands.size() > 1 || corr(0);
          break;
        }
        case NodeKind::matmul:
        case NodeKind::conv2d: {
          // Independent inputs add variances; correlated ones add standard deviations.
          const std::size_t filters = n.kind == NodeKind::matmul ? n.weights.shape()[1] : n.weights.shape()[0];
          const std::size_t taps = element_count(n.weights.shape()) / filters;
          a.variance = 0;
          for (std::size_t f = 0; f < filters; ++f) {
            double sum_squares = 0, sum_abs = 0;
            for (std::size_t t = 0; t < taps; ++t) {
              const double w = static_cast<double>(n.kind == NodeKind::matmul ? n.weights(t, f) : n.weights.flat(f * taps + t));
              sum_squares += w * w, sum_abs += std::abs(w);
            }
            a.variance = std::max(a.variance, corr(0) ? sum_abs * sum_abs * mu(0) : sum_squares * mu(0));
          }
          a.correlated = true;
          break;
        }
        case NodeKind::reduce_sum: {
          const double count = static_cast<double>(element_count(graph_[n.operands[0]].shape) /
                                                   std::max<std::size_t>(1, element_count(n.shape)));
          a.variance = (corr(0) ? count * count : count) * mu(0);
          a.correlated = true;
          break;
        }
      }
      if (a.lookup)
        a.lookup->rotation_variance = noise::pow2(2 * a.lookup->input_scale_log2) * nodes_[n.operands[0]].variance +
                                      noise::keyswitch_variance<I>() + noise::modulus_switch_variance<I>();
    }
  }

  // ---- 5. parameters
  /// log2 of the error probability of the model's worst bootstrap or decryption on I;
  /// `worst_what` names it.
  template <TfheInstance I>
  double worst_log2_error(std::string* worst_what = nullptr) const {
    constexpr double negligible = -1000;  // erfc underflows: far below any target
    double worst = negligible;
    auto log2_error = [](double margin, double variance) {
      const double p = std::erfc(margin / std::sqrt(2.0 * variance));
      return p > 0 ? std::log2(p) : negligible;
    };
    for (NodeId id = 0; id < graph_.size(); ++id) {
      if (!graph_[id].is_lookup()) continue;
      const LookupPlan& p = *nodes_[id].lookup;
      if (std::size_t{2} << p.precision > I::polynomial_size) return 0;  // the table does not fit
      const double variance = p.rotation_variance;
      // Exact rounding keeps every input inside its interval: half an input step of margin.
      const int margin_shift = options_.rounding == Rounding::exact ? p.shift : 0;
      const double e = log2_error(noise::decoding_margin(p.precision) / noise::pow2(margin_shift), variance);
      if (e > worst && worst_what)
        *worst_what = "the table of " + describe(graph_, id) + " reads " + std::to_string(p.precision + margin_shift) +
                      " bits" + (margin_shift ? " (exact rounding: lower rounding_bits, or use Rounding::approximate)" : "");
      worst = std::max(worst, e);
    }
    for (NodeId o : outputs_) {
      const int bits = component_bits_[nodes_[o].component];
      const double e = log2_error(noise::decoding_margin(bits), nodes_[o].variance);
      if (e > worst && worst_what)
        *worst_what = "the decryption of output " + describe(graph_, o) + " reads " + std::to_string(bits) +
                      " bits (round it with round_bits<P>() before the output)";
      worst = std::max(worst, e);
    }
    return worst;
  }

  void choose_parameters() {
    const double target = std::log2(options_.error_probability);
    std::string tried;
    for (std::size_t i = 0; i < menu_size; ++i) {
      const double worst = with_menu_instance(i, [&]<class I>(std::type_identity<I>) {
        noise<I>();
        return worst_log2_error<I>();
      });
      if (worst <= target) {
        instance_ = i;
        worst_log2_error_ = worst;
        return;
      }
      tried += (tried.empty() ? "" : ", ") + std::string(with_menu_instance(i, []<class I>(std::type_identity<I>) {
                 return std::string_view(I::name);
               })) + ": " + detail::format_probability(worst);
    }
    std::string hardest;
    with_menu_instance(menu_size - 1, [&]<class I>(std::type_identity<I>) {
      noise<I>();
      return worst_log2_error<I>(&hardest);
    });
    throw CompileError("fhetensor: no parameter set runs this model within an error probability of " +
                       detail::format_probability(target) + " (best per set: " + tried +
                       "); the hardest step: " + hardest + "; or relax the error probability");
  }

  CompiledModel finish() {
    CompiledModel m;
    m.inputs = graph_.inputs();
    m.outputs = outputs_;
    m.nodes = std::move(nodes_);
    m.component_bits = component_bits_;
    m.instance = instance_;
    m.instance_name = with_menu_instance(instance_, []<class I>(std::type_identity<I>) { return std::string(I::name); });
    m.options = options_;
    ModelStatistics& s = m.statistics;
    for (NodeId id = 0; id < graph_.size(); ++id) {
      if (graph_[id].is_lookup()) {
        ++s.lookup_nodes;
        s.bootstraps += element_count(graph_[id].shape);
        s.max_precision = std::max(s.max_precision, m.nodes[id].lookup->precision);
      } else if (graph_[id].kind != NodeKind::input) {
        ++s.linear_nodes;
      }
    }
    s.fused_tables = fused_;
    s.log2_error_probability = worst_log2_error_;
    s.estimated_seconds = static_cast<double>(s.bootstraps) * estimated_bootstrap_seconds(instance_);
    m.graph = std::move(graph_);
    return m;
  }

  Graph graph_;
  std::vector<NodeId> outputs_;
  CompileOptions options_;
  std::vector<NodeAnnotation> nodes_;
  std::vector<int> component_bits_;
  std::size_t instance_ = 0;
  std::size_t fused_ = 0;
  double worst_log2_error_ = 0;
};

}  // namespace compiler

FHETENSOR_END_NAMESPACE
