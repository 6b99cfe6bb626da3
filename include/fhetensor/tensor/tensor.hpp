#pragma once
// Clear tensors (xtensor) and the width specifications that encrypted tensors carry in
// their type. A width known from the type is checked at compile time; otherwise the
// compiler derives it from the weights and the declared input ranges.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <fhetensor/core/value_range.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// A clear rank-N tensor.
template <class T, std::size_t N>
using Tensor = xt::xtensor<T, N>;

/// The width is not in the type: it comes from the declared input range or the weights.
struct InferredWidth {
  static constexpr std::optional<ValueRange> range = std::nullopt;
};

/// Values in the closed interval [R.lo, R.hi].
template <ValueRange R>
struct InRange {
  static_assert(R.lo <= R.hi, "a value range needs lo <= hi");
  static_assert(R.lo >= -range_limit && R.hi <= range_limit,
                "a value range wider than 62 bits does not fit the 64-bit torus with its padding bit");
  static constexpr std::optional<ValueRange> range = R;
};

/// Unsigned values of `P` bits: [0, 2^P).
template <int P>
struct Bits : InRange<ValueRange::unsigned_bits(P < 1 ? 1 : P > 62 ? 62 : P)> {
  static_assert(P >= 1 && P <= 62, "an encrypted value has 1 to 62 bits: the 64-bit torus keeps one for padding");
};

/// Two's-complement values of `P` bits: [-2^(P-1), 2^(P-1)).
template <int P>
struct SignedBits : InRange<ValueRange::signed_bits(P < 1 ? 1 : P > 62 ? 62 : P)> {
  static_assert(P >= 1 && P <= 62, "an encrypted value has 1 to 62 bits: the 64-bit torus keeps one for padding");
};

template <class W>
concept WidthSpec = requires {
  { W::range } -> std::convertible_to<std::optional<ValueRange>>;
};

namespace detail {
// Narrow element types pin the width: Encrypted<Tensor<std::uint8_t, 2>> holds 8-bit values.
template <class E>
constexpr std::optional<ValueRange> element_range() {
  if constexpr (std::same_as<E, bool>)
    return ValueRange{0, 1};
  else if constexpr (sizeof(E) < sizeof(std::int64_t))
    return ValueRange{std::numeric_limits<E>::min(), std::numeric_limits<E>::max()};
  else
    return std::nullopt;
}
template <class E>
constexpr bool is_narrow_element = sizeof(E) <= 2 || std::same_as<E, bool>;
}  // namespace detail

/// The range a declared input has from its width spec, else from a narrow element type
/// (8 and 16 bits: an `int` element says nothing about the data).
template <class E, WidthSpec W>
constexpr std::optional<ValueRange> declared_range() {
  if constexpr (W::range.has_value())
    return W::range;
  else if constexpr (detail::is_narrow_element<E>)
    return detail::element_range<E>();
  else
    return std::nullopt;
}

/// Any clear tensor converted to the int64 tensors graphs store.
template <class E>
xt::xarray<std::int64_t> to_clear_tensor(const xt::xexpression<E>& e) {
  static_assert(std::integral<typename E::value_type>,
                "clear weights are integers: quantize floating-point weights first");
  return xt::xarray<std::int64_t>(xt::cast<std::int64_t>(e.derived_cast()));
}
template <std::integral T>
xt::xarray<std::int64_t> to_clear_tensor(T scalar) {
  return xt::xarray<std::int64_t>(static_cast<std::int64_t>(scalar));
}

FHETENSOR_END_NAMESPACE
