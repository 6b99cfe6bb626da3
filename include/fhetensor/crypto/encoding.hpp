#pragma once
// Messages of p bits live in the top bits of the torus under a padding bit:
// plaintext = m * Delta with Delta = q / 2^(p+1). The padding bit keeps the message in
// the first half of the torus, where the negacyclic lookup table is not negated.
#include <cstdint>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct Encoding {
  int precision;  // message bits, 1 to 8

  constexpr std::uint64_t message_modulus() const noexcept { return std::uint64_t{1} << precision; }
  constexpr Torus delta() const noexcept { return torus_scale(precision + 1); }
  /// m is taken modulo 2^precision.
  constexpr Torus encode(std::int64_t m) const noexcept {
    return (static_cast<Torus>(m) & (message_modulus() - 1)) * delta();
  }
  /// Nearest message; the padding bit is dropped (it is only set by overflow).
  constexpr std::uint64_t decode(Torus phase) const noexcept {
    return torus_round_to_bits(phase, precision + 1) & (message_modulus() - 1);
  }
  friend constexpr bool operator==(Encoding, Encoding) = default;
};

FHETENSOR_END_NAMESPACE
