#pragma once
// What one key switch + bootstrap costs on each instance of the menu, for explain() and
// the estimated run time: per_PBS of ks_pbs_batch/<name>/4 (batches of 4, as encrypted
// execution runs them) on one core of the 2-core reference machine, medians of 3, from
// the two commands of docs/benchmarks.md, "Batched key switches" (2026-11-24). Other
// machines, and this shared VM at other hours (+-40%), scale them.
#include <array>
#include <cstddef>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline double estimated_bootstrap_seconds(std::size_t menu_index) {
  // N = 1024 (k = 2), 2048, 2048 quiet, 4096, 4096 quiet, 8192, 16384, 65536
  constexpr std::array<double, 8> seconds{0.0129, 0.0219, 0.0309, 0.0419, 0.0684, 0.193, 0.463, 2.69};
  static_assert(seconds.size() == menu_size, "one cost per instance of the menu");
  return seconds.at(menu_index);
}

FHETENSOR_END_NAMESPACE
