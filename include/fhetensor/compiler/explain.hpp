#pragma once
// explain(): the plan of a compiled model, like a query planner's EXPLAIN: per node its
// shape, value range, encoding, bootstraps, table precision and estimated time.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>
#include <fhetensor/compiler/cost_model.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {
inline std::string format_seconds(double s) {
  char buffer[32];
  if (s < 1) std::snprintf(buffer, sizeof buffer, "%.0f ms", s * 1e3);
  else if (s < 120) std::snprintf(buffer, sizeof buffer, "%.1f s", s);
  else if (s < 7200) std::snprintf(buffer, sizeof buffer, "%.1f min", s / 60);
  else std::snprintf(buffer, sizeof buffer, "%.1f h", s / 3600);
  return buffer;
}
inline std::string pad_right(std::string s, std::size_t width) { return s.size() < width ? s + std::string(width - s.size(), ' ') : s; }
}  // namespace detail

inline std::string explain(const CompiledModel& m) {
  const double per_pbs = estimated_bootstrap_seconds(m.instance);
  std::vector<std::vector<std::string>> rows{
      {"node", "operation", "shape", "range", "bits", "PBS", "table", "noise (boxes)", "time (1 core)"}};
  for (NodeId id = 0; id < m.graph.size(); ++id) {
    const Node& n = m.graph[id];
    const NodeAnnotation& a = m.nodes[id];
    std::string table = "", noise = "", pbs = "", time = "";
    if (a.lookup) {
      const LookupPlan& p = *a.lookup;
      const std::size_t count = element_count(n.shape);
      table = std::to_string(p.precision) + "-bit" +
              (p.shift ? " (top of " + std::to_string(p.precision + p.shift) + ", " +
                             (m.options.rounding == Rounding::exact ? "exact" : "approximate") + ")"
                       : "");
      char sigma[16];
      std::snprintf(sigma, sizeof sigma, "%.3f", p.noise_in_boxes());
      noise = sigma;
      pbs = std::to_string(count);
      time = detail::format_seconds(static_cast<double>(count) * per_pbs);
    }
    rows.push_back({std::to_string(id), std::string(n.kind == NodeKind::lookup ? "lookup " : to_string(n.kind) + std::string(" ")) + n.label,
                    to_string(n.shape), a.range.to_string(), std::to_string(m.component_bits[a.component]), pbs, table, noise, time});
  }
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) widths[c] = std::max(widths[c], r[c].size());
  std::ostringstream out;
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < r.size(); ++c) out << detail::pad_right(r[c], widths[c] + 2);
    out << '\n';
  }
  const ModelStatistics& s = m.statistics;
  out << "parameter set " << m.instance_name << ": " << s.bootstraps << " PBS in " << s.lookup_nodes << " tables ("
      << s.fused_tables << " fused), up to " << s.max_precision << " bits; worst error probability "
      << detail::format_probability(s.log2_error_probability) << " per PBS (target "
      << detail::format_probability(std::log2(m.options.error_probability)) << "); estimated "
      << detail::format_seconds(s.estimated_seconds) << " on one core\n";
  return out.str();
}

FHETENSOR_END_NAMESPACE
