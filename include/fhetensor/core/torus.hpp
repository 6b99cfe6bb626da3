#pragma once
// The discretised torus T_q with q = 2^64: torus elements are uint64_t and all arithmetic
// wraps modulo 2^64 (unsigned overflow is defined behaviour in C++).
#include <bit>
#include <cmath>
#include <cstdint>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

using Torus = std::uint64_t;

inline constexpr int torus_bits = 64;
inline constexpr double torus_modulus = 18446744073709551616.0;  // q = 2^64

/// A torus element as a signed integer in [-2^63, 2^63).
constexpr std::int64_t torus_to_signed(Torus x) noexcept { return static_cast<std::int64_t>(x); }

/// Rounds a real number to the nearest torus element (reduction modulo 2^64).
inline Torus torus_from_real(double x) noexcept {
  double reduced = std::nearbyint(x - torus_modulus * std::nearbyint(x / torus_modulus));
  if (reduced >= 0.5 * torus_modulus) reduced -= torus_modulus;  // now in [-2^63, 2^63)
  return static_cast<Torus>(static_cast<std::int64_t>(reduced));
}

/// q / 2^bits: the scaling factor Delta that puts a `bits`-bit message in the top bits.
constexpr Torus torus_scale(int bits) noexcept { return Torus{1} << (torus_bits - bits); }

/// Rounds x to the nearest multiple of 2^(64 - bits) and returns the top `bits` bits.
constexpr std::uint64_t torus_round_to_bits(Torus x, int bits) noexcept {
  const int shift = torus_bits - bits;
  const Torus half = Torus{1} << (shift - 1);
  return ((x + half) >> shift) & ((std::uint64_t{1} << bits) - 1);
}

FHETENSOR_END_NAMESPACE
