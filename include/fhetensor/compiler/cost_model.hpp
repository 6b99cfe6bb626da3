#pragma once
// What one key switch + bootstrap costs on each instance of the menu, for explain() and
// the estimated run time. Medians of ks_pbs_set/<name> on the 2-core reference machine,
// from `tools/run_benchmarks.sh build` (docs/benchmarks.md); other machines scale them.
#include <array>
#include <cstddef>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline double estimated_bootstrap_seconds(std::size_t menu_index) {
  // N = 1024 (k = 2), 2048, 2048 quiet, 4096, 4096 quiet, 8192, 16384, 65536
  constexpr std::array<double, 8> seconds{0.0219, 0.0217, 0.0362, 0.0574, 0.0911, 0.182, 0.434, 2.31};
  static_assert(seconds.size() == menu_size, "one cost per instance of the menu");
  return seconds.at(menu_index);
}

FHETENSOR_END_NAMESPACE
