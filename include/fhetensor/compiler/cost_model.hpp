#pragma once
// What one key switch + bootstrap costs on each instance of the menu, for explain() and
// the estimated run time. Medians of ks_pbs_set/<name> on the 2-core reference machine,
// from `tools/run_benchmarks.sh build 'ks_pbs_set/'` (docs/benchmarks.md, 2026-11-24 run);
// other machines, and this shared VM on other days (+-40%), scale them.
#include <array>
#include <cstddef>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline double estimated_bootstrap_seconds(std::size_t menu_index) {
  // N = 1024 (k = 2), 2048, 2048 quiet, 4096, 4096 quiet, 8192, 16384, 65536
  constexpr std::array<double, 8> seconds{0.0307, 0.0308, 0.0517, 0.0804, 0.119, 0.259, 0.668, 3.69};
  static_assert(seconds.size() == menu_size, "one cost per instance of the menu");
  return seconds.at(menu_index);
}

FHETENSOR_END_NAMESPACE
