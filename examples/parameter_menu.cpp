// Prints the parameter menu as the Markdown table of docs/parameters.md: every instance,
// its security estimate with source, and for each precision and failure target the
// instance chosen, its failure probability and the largest admissible 2-norm.
//
//   example_parameter_menu
#include <cmath>
#include <cstdio>
#include <utility>

#include <fhetensor/algorithms/parameter_menu.hpp>

using namespace fhetensor;

template <TfheInstance I>
void print_instance() {
  std::printf("| %s | %zu | %zu | %zu | 2^%d | 2^%d | 2^%d x %d | 2^%d x %d | %.1f (%s) | %.1f (%s) |\n", I::name.data(),
              I::lwe_dimension, I::glwe_dimension, I::polynomial_size, I::lwe_noise.log2_bound, I::glwe_noise.log2_bound,
              I::pbs_decomposition.base_log, I::pbs_decomposition.level_count, I::keyswitch_decomposition.base_log,
              I::keyswitch_decomposition.level_count, I::lwe_security.bits, I::lwe_security.source.data(),
              I::glwe_security.bits, I::glwe_security.source.data());
}

template <int P, FailureProbability T>
void print_choice() {
  using S = params_for<P, T>;
  std::printf("| %d | 2^%d | %s | 2^%.1f | %.1f | %.1f | %.1f | %.1f |\n", P, T.log2_p, S::name.data(),
              S::log2_failure_probability(1.0), S::max_norm2, 0.5 * std::log2(noise::bootstrap_variance<S>()),
              0.5 * std::log2(noise::keyswitch_variance<S>()), 0.5 * std::log2(noise::modulus_switch_variance<S>()));
}

int main() {
  std::printf("| instance | n | k | N | LWE noise (TUniform bound) | GLWE noise | PBS decomposition | KS decomposition | "
              "LWE bits (source) | GLWE bits (source) |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t i = 0; i < menu_size; ++i)
    with_menu_instance(i, []<class I>(std::type_identity<I>) { print_instance<I>(); });
  std::printf("\n| precision | target | instance | failure per PBS (2-norm 1) | max 2-norm | log2 sd PBS out | "
              "log2 sd KS | log2 sd mod switch |\n|---|---|---|---|---|---|---|---|\n");
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (print_choice<I + 1, p_fail_2m64>(), ...);
    (print_choice<I + 1, p_fail_2m128>(), ...);
  }(std::make_integer_sequence<int, 8>{});
}
