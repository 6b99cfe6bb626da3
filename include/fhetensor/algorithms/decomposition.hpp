#pragma once
// Gadget decomposition in base B = 2^beta with l levels: round a torus value to its top
// beta*l bits, then write it with balanced digits in [-B/2, B/2) (most significant first),
// so that sum_j d_j q / B^(j+1) is the rounded value.
#include <cstddef>
#include <cstdint>
#include <span>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// The closest value to x representable on the decomposition's beta*l top bits, as an
/// integer in [0, 2^(beta*l)).
constexpr std::uint64_t decomposition_round(Torus x, Decomposition d) noexcept {
  const int shift = torus_bits - d.precision_bits();
  return (x + (Torus{1} << (shift - 1))) >> shift;
}

/// Digits of x, most significant first, into digits[0 .. level_count).
constexpr void decompose(Torus x, Decomposition d, std::int64_t* digits) noexcept {
  std::uint64_t v = decomposition_round(x, d);
  const std::uint64_t mask = (std::uint64_t{1} << d.base_log) - 1;
  const std::int64_t half = std::int64_t{1} << (d.base_log - 1);
  for (int j = d.level_count - 1; j >= 0; --j) {
    auto digit = static_cast<std::int64_t>(v & mask);
    v >>= d.base_log;
    if (digit >= half) {  // balance: borrow from the next digit up (the top carry wraps mod q)
      digit -= std::int64_t{1} << d.base_log;
      ++v;
    }
    digits[j] = digit;
  }
}

/// Decomposes x into digits[j * stride] for every level j: the branch-free form of
/// decompose(), which compilers vectorise over consecutive coefficients.
template <Decomposition D>
inline void decompose_strided(Torus x, std::int64_t* digits, std::size_t stride) noexcept {
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

/// Decomposes every coefficient of a polynomial: digits is level-major (level j occupies
/// digits[j*N .. (j+1)*N)), ready for one FFT per level.
template <Decomposition D>
void decompose_polynomial(std::span<const Torus> polynomial, std::span<std::int64_t> digits) noexcept {
  const std::size_t n = polynomial.size();
  for (std::size_t i = 0; i < n; ++i) decompose_strided<D>(polynomial[i], digits.data() + i, n);
}

/// q / B^(j+1): the gadget value of level j.
constexpr Torus gadget_value(Decomposition d, int level) noexcept {
  return Torus{1} << (torus_bits - d.base_log * (level + 1));
}

FHETENSOR_END_NAMESPACE
