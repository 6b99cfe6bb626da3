#pragma once
// Noise variances of the TFHE operations, in absolute torus units (q = 2^64), and the
// failure probability of a programmable bootstrap. Formulas follow Chillotti et al.,
// "TFHE: Fast Fully Homomorphic Encryption over the Torus" (JoC 2020), Thm 4.1 and
// Lemma 4.3, with the balanced-digit variance (B^2 + 2) / 12 and binary keys whose
// Hamming weight is a fraction w of their length (w = 1/2 on average).
// tests/test_noise.cpp measures each of them against real ciphertexts.
#include <cmath>
#include <cstddef>

#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace noise {

inline constexpr double torus_modulus_squared = 340282366920938463463374607431768211456.0;  // 2^128

constexpr double pow2(int e) noexcept {
  double r = 1.0;
  for (int i = 0; i < (e < 0 ? -e : e); ++i) r *= 2.0;
  return e < 0 ? 1.0 / r : r;
}

constexpr double sqrt(double x) noexcept {  // Newton's method, usable in constant expressions
  if (x <= 0.0) return 0.0;
  double r = x < 1.0 ? 1.0 : x;
  for (int i = 0; i < 200; ++i) {
    const double next = 0.5 * (r + x / r);
    if (next == r) break;
    r = next;
  }
  return r;
}

/// Variance of the error made by rounding a uniform torus value to the decomposition's
/// precision: uniform over a step of q / B^l.
constexpr double decomposition_rounding_variance(Decomposition d) noexcept {
  const double step = pow2(64 - d.precision_bits());
  return (step * step - 1.0) / 12.0;
}

/// E[digit^2] of balanced base-B digits of a uniform value.
constexpr double digit_mean_square(Decomposition d) noexcept {
  const double base = pow2(d.base_log);
  return (base * base + 2.0) / 12.0;
}

/// Error variance of an f64 FFT negacyclic product of a polynomial with mean-square
/// coefficient `mean_square_int` by one with `mean_square_torus`: 2^-106 (f64 round-off
/// squared) times N terms, times 1.25 log2(N) for the transform's levels. The constant is
/// fitted to measurements of both backends for N = 512 to 65536 (docs/fft.md).
constexpr double fft_product_error_variance(std::size_t polynomial_size, double mean_square_int,
                                            double mean_square_torus) noexcept {
  int log2_n = 0;
  while ((std::size_t{1} << log2_n) < polynomial_size) ++log2_n;
  constexpr double rounding = 1.0 / 81129638414606681695789005144064.0;  // 2^-106 = (2^-53)^2
  return 1.25 * log2_n * rounding * static_cast<double>(polynomial_size) * mean_square_int * mean_square_torus;
}

/// Noise of a fresh encryption under the big (flattened GLWE) key.
template <TfheInstance I>
constexpr double fresh_variance() noexcept {
  return I::glwe_noise.variance();
}

/// Noise added by key switching from the big key (k*N) to the small key (n).
template <TfheInstance I>
constexpr double keyswitch_variance(double big_key_weight = 0.5) noexcept {
  constexpr Decomposition d = I::keyswitch_decomposition;
  const double big = static_cast<double>(I::glwe_dimension * I::polynomial_size);
  return big * d.level_count * digit_mean_square(d) * I::lwe_noise.variance() +
         big * big_key_weight * decomposition_rounding_variance(d);
}

/// Noise added by switching the modulus from 2^64 to 2N before blind rotation.
template <TfheInstance I>
constexpr double modulus_switch_variance(double small_key_weight = 0.5) noexcept {
  const double step = torus_modulus_squared / (4.0 * I::polynomial_size * I::polynomial_size);  // (q/2N)^2
  return (static_cast<double>(I::lwe_dimension) * small_key_weight + 1.0) * (step - 1.0) / 12.0;
}

/// Noise of a PBS output (blind rotation, then sample extraction, which adds none).
template <TfheInstance I>
constexpr double bootstrap_variance(double small_key_weight = 0.5, double big_key_weight = 0.5) noexcept {
  constexpr Decomposition d = I::pbs_decomposition;
  constexpr double k = static_cast<double>(I::glwe_dimension);
  constexpr double n_poly = static_cast<double>(I::polynomial_size);
  const double rows = (k + 1.0) * d.level_count;
  const double key_term = rows * n_poly * digit_mean_square(d) * I::glwe_noise.variance();
  const double rounding_term = decomposition_rounding_variance(d) * (1.0 + k * n_poly * big_key_weight);
  // FFT error lands in every output polynomial; in the masks it is multiplied by the key.
  const double fft_term = rows * fft_product_error_variance(I::polynomial_size, digit_mean_square(d), torus_modulus_squared / 12.0) *
                          (1.0 + k * n_poly * big_key_weight);
  const double n = static_cast<double>(I::lwe_dimension);
  return n * (key_term + fft_term) + n * small_key_weight * rounding_term;
}

/// Variance at the blind rotation's input when the PBS input is a linear combination of
/// PBS outputs with 2-norm `norm2` (the worst case of a circuit; fresh inputs are less).
template <TfheInstance I>
constexpr double variance_before_blind_rotation(double norm2) noexcept {
  return norm2 * norm2 * bootstrap_variance<I>() + keyswitch_variance<I>() + modulus_switch_variance<I>();
}

/// Half the distance between two encoded messages of `precision` bits plus a padding bit.
constexpr double decoding_margin(int precision) noexcept { return pow2(64 - precision - 2); }

/// Largest 2-norm of a linear combination of PBS outputs that can feed a PBS of
/// `precision` bits and still meet the failure target (< 1 means the instance can't).
template <TfheInstance I>
constexpr double max_norm2(int precision, FailureProbability target) noexcept {
  const double allowed_sigma = decoding_margin(precision) / target.z_score;
  const double slack = allowed_sigma * allowed_sigma - keyswitch_variance<I>() - modulus_switch_variance<I>();
  return slack <= 0.0 ? 0.0 : sqrt(slack / bootstrap_variance<I>());
}

/// log2 of the probability that one PBS decodes wrongly, at the given 2-norm.
template <TfheInstance I>
double log2_failure_probability(int precision, double norm2) {
  const double z = decoding_margin(precision) / std::sqrt(variance_before_blind_rotation<I>(norm2));
  const double p = std::erfc(z / std::sqrt(2.0));
  if (p > 0.0) return std::log2(p);
  // erfc underflows past z ~ 38: use its asymptotic form exp(-x^2) / (x sqrt(pi)).
  const double x = z / std::sqrt(2.0);
  return (-x * x - std::log(x * std::sqrt(3.14159265358979323846))) / std::log(2.0);
}

}  // namespace noise
FHETENSOR_END_NAMESPACE
