#pragma once
// Gadget decomposition in base B = 2^beta with l levels: round a torus value to its top
// beta*l bits, then write it with balanced digits in [-B/2, B/2) (most significant first),
// so that sum_j d_j q / B^(j+1) is the rounded value.
#include <cstddef>
#include <cstdint>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Digits of x into digits[j * stride] for every level j (most significant first): round
/// x to its top beta*l bits, then balance each digit by borrowing from the next one up
/// (the top carry wraps mod q). Branch-free, so compilers vectorise it over consecutive
/// coefficients.
template <Decomposition D>
constexpr void decompose(Torus x, std::int64_t* digits, std::size_t stride = 1) noexcept {
  constexpr int shift = torus_bits - D.precision_bits();
  constexpr std::uint64_t mask = (std::uint64_t{1} << D.base_log) - 1;
  constexpr std::uint64_t half = std::uint64_t{1} << (D.base_log - 1);
  std::uint64_t v = (x + (Torus{1} << (shift - 1))) >> shift;
  for (int j = D.level_count - 1; j >= 0; --j) {
    const std::uint64_t digit = v & mask;
    v >>= D.base_log;
    const std::uint64_t carry = digit >= half;
    v += carry;
    digits[static_cast<std::size_t>(j) * stride] = static_cast<std::int64_t>(digit - (carry << D.base_log));
  }
}

/// q / B^(j+1): the gadget value of level j.
constexpr Torus gadget_value(Decomposition d, int level) noexcept {
  return Torus{1} << (torus_bits - d.base_log * (level + 1));
}

FHETENSOR_END_NAMESPACE
