#pragma once
// Noise distributions of LWE/GLWE encryption, in absolute torus units (q = 2^64).
#include <concepts>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// TUniform(b): integers in [-2^b, 2^b], each inner value with probability 2^-(b+1) and
/// the two extremes with 2^-(b+2). Bounded, so it suits security estimates and exact tails
/// (Joye et al., "TFHE-rs: A (Practical) Handbook", 2024, and tfhe-rs's TUniform sets).
struct TUniform {
  int log2_bound;
  constexpr double variance() const noexcept {
    const double bound = static_cast<double>(1ULL << log2_bound);
    return (2.0 * bound * bound + 1.0) / 6.0;
  }
  friend constexpr bool operator==(TUniform, TUniform) = default;
};

/// Rounded Gaussian with the given standard deviation (absolute units).
struct Gaussian {
  double standard_deviation;
  constexpr double variance() const noexcept { return standard_deviation * standard_deviation; }
  friend constexpr bool operator==(Gaussian, Gaussian) = default;
};

template <class D>
concept NoiseDistribution = requires(const D d) {
  { d.variance() } -> std::same_as<double>;
};

FHETENSOR_END_NAMESPACE
