#pragma once
// Integer value ranges: what the width pass propagates through a graph. Everything is
// constexpr so that widths known from types are checked by static_assert with the same
// arithmetic the runtime pass uses.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// The closed interval [lo, hi] of values a tensor's elements can take.
struct ValueRange {
  std::int64_t lo = 0;
  std::int64_t hi = 0;

  constexpr std::uint64_t span() const noexcept { return static_cast<std::uint64_t>(hi - lo); }
  constexpr bool contains(std::int64_t v) const noexcept { return lo <= v && v <= hi; }
  constexpr bool contains(ValueRange r) const noexcept { return lo <= r.lo && r.hi <= hi; }
  friend constexpr bool operator==(ValueRange, ValueRange) = default;

  static constexpr ValueRange unsigned_bits(int bits) noexcept { return {0, (std::int64_t{1} << bits) - 1}; }
  static constexpr ValueRange signed_bits(int bits) noexcept {
    return {-(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1};
  }
  std::string to_string() const { return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]"; }
};

/// Bits needed to tell apart span + 1 consecutive values (at least 1).
constexpr int bits_for_span(std::uint64_t span) noexcept {
  int bits = 1;
  while (bits < 64 && (span >> bits) != 0) ++bits;
  return bits;
}
constexpr int width_of(ValueRange r) noexcept { return bits_for_span(r.span()); }

// Ranges are bounded by +-2^62 so that the arithmetic below cannot overflow int64.
inline constexpr std::int64_t range_limit = std::int64_t{1} << 62;

constexpr ValueRange checked(ValueRange r) {
  if (r.lo < -range_limit || r.hi > range_limit)
    throw std::overflow_error("fhetensor: a value range exceeds 62 bits; no encoding on the 64-bit torus holds it");
  return r;
}
constexpr ValueRange operator+(ValueRange a, ValueRange b) { return checked({a.lo + b.lo, a.hi + b.hi}); }
constexpr ValueRange operator-(ValueRange a) noexcept { return {-a.hi, -a.lo}; }
constexpr ValueRange operator-(ValueRange a, ValueRange b) { return a + -b; }
/// c * x for every x in r.
constexpr ValueRange scale(ValueRange r, std::int64_t c) {
  if (c != 0 && (r.lo < -range_limit / (c < 0 ? -c : c) || r.hi > range_limit / (c < 0 ? -c : c)))
    throw std::overflow_error("fhetensor: a product exceeds 62 bits; no encoding on the 64-bit torus holds it");
  return c >= 0 ? ValueRange{c * r.lo, c * r.hi} : ValueRange{c * r.hi, c * r.lo};
}
constexpr ValueRange hull(ValueRange a, ValueRange b) noexcept { return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)}; }
constexpr ValueRange point(std::int64_t v) noexcept { return {v, v}; }

/// Range of x + y when x, y range over independent ranges, repeated `count` times:
/// a dense layer of fan-in K with a-bit inputs and w-bit weights needs a + w + ceil(log2 K) bits.
constexpr ValueRange repeat_sum(ValueRange r, std::int64_t count) { return checked({r.lo * count, r.hi * count}); }

FHETENSOR_END_NAMESPACE
