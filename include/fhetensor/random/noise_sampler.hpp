#pragma once
// Samplers for the noise distributions of <fhetensor/params/noise_distribution.hpp>,
// drawing from the CSPRNG. Samples are torus elements (signed values mod 2^64).
#include <cmath>
#include <cstdint>
#include <numbers>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/noise_distribution.hpp>
#include <fhetensor/random/csprng.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline Torus sample_noise(TUniform d, Csprng& rng) {
  // r uniform on b+2 bits; (r >> 1) + (r & 1) has the TUniform shape on [0, 2^(b+1)].
  const std::uint64_t r = rng.next_u64() >> (62 - d.log2_bound);
  return (r >> 1) + (r & 1) - (std::uint64_t{1} << d.log2_bound);
}

inline Torus sample_noise(Gaussian d, Csprng& rng) {
  // Box-Muller; 1 - u avoids log(0).
  const double u1 = 1.0 - rng.next_unit_double();
  const double u2 = rng.next_unit_double();
  const double g = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  return torus_from_real(g * d.standard_deviation);
}

FHETENSOR_END_NAMESPACE
