#pragma once
// Parameter sets: a TFHE instance used at a given message precision and failure target,
// and the choice of the cheapest instance for a (precision, target) pair.
#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <fhetensor/algorithms/noise_formulas.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline constexpr int min_precision = 1;
inline constexpr int max_precision = 8;

/// An instance used for messages of `Precision` bits (plus a padding bit) whose PBS fail
/// with probability at most 2^Target.log2_p, for inputs of 2-norm up to `max_norm2`.
template <TfheInstance Instance, int Precision, FailureProbability Target = p_fail_2m64>
struct ParameterSet : Instance {
  static_assert(Precision >= min_precision && Precision <= max_precision,
                "fhetensor supports lookup tables over 1 to 8 message bits");
  using instance = Instance;
  static constexpr int precision = Precision;
  static constexpr FailureProbability failure_target = Target;
  static constexpr double max_norm2 = noise::max_norm2<Instance>(Precision, Target);
  static_assert(max_norm2 >= 1.0, "this instance is too noisy for this precision and failure probability");

  static double log2_failure_probability(double norm2 = max_norm2) {
    return noise::log2_failure_probability<Instance>(Precision, norm2);
  }
};

template <class P>
concept ParameterSetType = TfheInstance<P> && requires {
  typename P::instance;
  { P::precision } -> std::convertible_to<int>;
  { P::failure_target } -> std::convertible_to<FailureProbability>;
  { P::max_norm2 } -> std::convertible_to<double>;
};

namespace detail {
template <class... Instances>
struct InstanceList {};

// The menu, cheapest first (blind rotation cost grows with N and n).
using Menu = InstanceList<TfheN1024, TfheN2048, TfheN2048Quiet, TfheN4096, TfheN4096Quiet, TfheN8192, TfheN16384,
                         TfheN65536>;

template <int Precision, FailureProbability Target, class List>
struct FirstFeasible;
template <int Precision, FailureProbability Target>
struct FirstFeasible<Precision, Target, InstanceList<>> {
  static_assert(Precision < 0, "no instance of the menu meets this precision and failure probability");
};
template <int Precision, FailureProbability Target, class Head, class... Tail>
struct FirstFeasible<Precision, Target, InstanceList<Head, Tail...>>
    : std::conditional_t<(noise::max_norm2<Head>(Precision, Target) >= 1.0), std::type_identity<Head>,
                         FirstFeasible<Precision, Target, InstanceList<Tail...>>> {};
}  // namespace detail

namespace detail {
template <int Precision, FailureProbability Target>
struct ParamsFor {
  static_assert(Precision >= min_precision && Precision <= max_precision,
                "fhetensor supports lookup tables over 1 to 8 message bits");
  using type = ParameterSet<typename FirstFeasible<Precision, Target, Menu>::type, Precision, Target>;
};
}  // namespace detail

/// The menu at run time, for graphs whose widths are known only then: index 0 is the
/// cheapest instance. with_menu_instance(i, f) calls f(std::type_identity<Instance>{}).
namespace detail {
template <class F, class... Instances>
decltype(auto) with_instance_of(InstanceList<Instances...>, std::size_t index, F&& f) {
  using Result = decltype(f(std::type_identity<TfheN2048>{}));
  constexpr std::array<Result (*)(F&), sizeof...(Instances)> table{
      +[](F& g) -> Result { return g(std::type_identity<Instances>{}); }...};
  if (index >= table.size()) throw std::out_of_range("fhetensor: no parameter set of index " + std::to_string(index));
  return table[index](f);
}
template <class... Instances>
constexpr std::size_t size_of(InstanceList<Instances...>) noexcept { return sizeof...(Instances); }
}  // namespace detail
inline constexpr std::size_t menu_size = detail::size_of(detail::Menu{});
namespace detail {
template <class I, class... Instances>
constexpr std::size_t index_in(InstanceList<Instances...>) noexcept {
  std::size_t index = 0;
  bool found = false;
  ((found = found || std::is_same_v<I, Instances>, index += found ? 0 : 1), ...);
  return index;
}
}  // namespace detail
/// The index of instance I in the menu (what with_menu_instance takes).
template <class I>
constexpr std::size_t menu_index() noexcept {
  static_assert(detail::index_in<I>(detail::Menu{}) < menu_size, "this instance is not in the menu");
  return detail::index_in<I>(detail::Menu{});
}
template <class F>
decltype(auto) with_menu_instance(std::size_t index, F&& f) {
  return detail::with_instance_of(detail::Menu{}, index, f);
}

/// The cheapest instance of the menu for `Precision` message bits at failure target `Target`.
template <int Precision, FailureProbability Target = p_fail_2m64>
using params_for = typename detail::ParamsFor<Precision, Target>::type;

FHETENSOR_END_NAMESPACE
