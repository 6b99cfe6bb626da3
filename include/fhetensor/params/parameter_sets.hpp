#pragma once
// The menu of TFHE instances (parameter sets as types, as in TFHEpp) and the vocabulary
// to describe them. Which instance serves which precision and failure probability is
// decided from the noise formulas in <fhetensor/algorithms/parameter_menu.hpp>.
//
// Security: every instance is >= 128 bits for both of its lattice problems. Sources:
//  [LE] lattice-estimator (malb/lattice-estimator, 2026-06), BDGL16 cost model, q = 2^64,
//       binary secret, as tabulated in the project's shared/ARCHITECTURE.md:
//       LWE n = 918 TUniform 2^45: 136.9 bits; GLWE k*N = 2048 TUniform 2^17: 136.6 bits;
//       smallest TUniform bound for >= 128 bits: n = 900: 2^44, n = 1000: 2^42.
//       Where an instance has a larger dimension than a tabulated point at the same noise,
//       its estimate is at least that point's (the estimator's cost grows with the
//       dimension at fixed noise and modulus): marked "monotone".
//  [TFHE-RS] tfhe-rs shortint TUniform tables (classic/tuniform/p_fail_2_minus_64, v0.11
//       to v1.4), sets annotated "security = 132 bits" by their authors with the
//       lattice-estimator: LWE n = 1089 TUniform 2^40 and n = 1121 TUniform 2^39, needed
//       for 7 and 8 bits because the key-switching noise grows with k*N.
// docs/parameters.md lists every instance with its estimate and failure probabilities.
#include <concepts>
#include <cstddef>
#include <string_view>

#include <fhetensor/core/version.hpp>
#include <fhetensor/params/noise_distribution.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Gadget decomposition: `level_count` digits in base 2^`base_log` (most significant first).
struct Decomposition {
  int base_log;
  int level_count;
  constexpr int precision_bits() const noexcept { return base_log * level_count; }
  friend constexpr bool operator==(Decomposition, Decomposition) = default;
};

/// A security estimate and where it comes from.
struct SecurityEstimate {
  double bits;
  std::string_view source;
};

/// Members every TFHE instance provides. The LWE key of dimension n is the "small" key
/// (after key switching); the flattened GLWE key of dimension k*N is the "big" key that
/// client ciphertexts and PBS outputs live under (tfhe-rs's EncryptionKeyChoice::Big).
template <class I>
concept TfheInstance = requires {
  { I::name } -> std::convertible_to<std::string_view>;
  { I::lwe_dimension } -> std::convertible_to<std::size_t>;
  { I::glwe_dimension } -> std::convertible_to<std::size_t>;
  { I::polynomial_size } -> std::convertible_to<std::size_t>;
  { I::lwe_noise.variance() } -> std::same_as<double>;
  { I::glwe_noise.variance() } -> std::same_as<double>;
  { I::pbs_decomposition } -> std::convertible_to<Decomposition>;
  { I::keyswitch_decomposition } -> std::convertible_to<Decomposition>;
  { I::lwe_security } -> std::convertible_to<SecurityEstimate>;
  { I::glwe_security } -> std::convertible_to<SecurityEstimate>;
};

namespace security_source {
inline constexpr std::string_view le_lwe_918 = "[LE] LWE n=918, TUniform 2^45: 136.9 bits";
inline constexpr std::string_view le_lwe_900 = "[LE] monotone from LWE n=900, TUniform 2^44: 128 bits";
inline constexpr std::string_view le_lwe_1000 = "[LE] monotone from LWE n=1000, TUniform 2^42: 128 bits";
inline constexpr std::string_view tfhe_rs_lwe = "[TFHE-RS] lattice-estimator, 132 bits";
inline constexpr std::string_view le_glwe_2048 = "[LE] GLWE k*N=2048, TUniform 2^17: 136.6 bits";
inline constexpr std::string_view le_glwe_larger = "[LE] monotone from GLWE k*N=2048, TUniform 2^17: 136.6 bits";
}  // namespace security_source

// Instances, cheapest first. The glwe noise is TUniform 2^17 throughout ([LE]).
#define FHETENSOR_TFHE_INSTANCE(Name, n, k, N, lwe_bound, pbs_base, pbs_levels, ks_base, ks_levels, lwe_bits, \
                                lwe_source, glwe_bits, glwe_source)                                           \
  struct Name {                                                                                               \
    static constexpr std::string_view name = "n" #n "-k" #k "-N" #N;                                         \
    static constexpr std::size_t lwe_dimension = n;                                                           \
    static constexpr std::size_t glwe_dimension = k;                                                          \
    static constexpr std::size_t polynomial_size = N;                                                         \
    static constexpr TUniform lwe_noise{lwe_bound};                                                           \
    static constexpr TUniform glwe_noise{17};                                                                 \
    static constexpr Decomposition pbs_decomposition{pbs_base, pbs_levels};                                   \
    static constexpr Decomposition keyswitch_decomposition{ks_base, ks_levels};                               \
    static constexpr SecurityEstimate lwe_security{lwe_bits, lwe_source};                                    \
    static constexpr SecurityEstimate glwe_security{glwe_bits, glwe_source};                                  \
  }

namespace ss = security_source;
// k = 2, N = 1024: the cheapest blind rotation; up to 3 bits at 2^-64.
FHETENSOR_TFHE_INSTANCE(TfheN1024, 918, 2, 1024, 45, 23, 1, 4, 4, 136.9, ss::le_lwe_918, 136.6, ss::le_glwe_2048);
// The shape of tfhe-rs's 2_2 TUniform set (n = 918, N = 2048, PBS 2^23 x 1, KS 2^4 x 4).
FHETENSOR_TFHE_INSTANCE(TfheN2048, 918, 1, 2048, 45, 23, 1, 4, 4, 136.9, ss::le_lwe_918, 136.6, ss::le_glwe_2048);
FHETENSOR_TFHE_INSTANCE(TfheN4096, 954, 1, 4096, 44, 22, 1, 3, 6, 128.0, ss::le_lwe_900, 136.6, ss::le_glwe_larger);
FHETENSOR_TFHE_INSTANCE(TfheN8192, 1036, 1, 8192, 42, 15, 2, 3, 6, 128.0, ss::le_lwe_1000, 136.6, ss::le_glwe_larger);
FHETENSOR_TFHE_INSTANCE(TfheN16384, 1089, 1, 16384, 40, 15, 2, 2, 10, 132.0, ss::tfhe_rs_lwe, 136.6, ss::le_glwe_larger);
// 8-bit lookups: the mod-switch noise needs 2N = 2^17 (N = 32768 misses 2^-64).
FHETENSOR_TFHE_INSTANCE(TfheN65536, 1121, 1, 65536, 39, 15, 2, 3, 7, 132.0, ss::tfhe_rs_lwe, 136.6, ss::le_glwe_larger);
#undef FHETENSOR_TFHE_INSTANCE

// Quiet variants: the same keys' shapes (so the same security) with a two-level PBS
// decomposition. Their bootstraps cost more but return far less noise, which graphs need
// where wide accumulators of bootstrap outputs are read (decrypted outputs, rounding).
struct TfheN2048Quiet : TfheN2048 {
  static constexpr std::string_view name = "n918-k1-N2048-quiet";
  static constexpr Decomposition pbs_decomposition{15, 2};
};
struct TfheN4096Quiet : TfheN4096 {
  static constexpr std::string_view name = "n954-k1-N4096-quiet";
  static constexpr Decomposition pbs_decomposition{15, 2};
};

/// A failure probability target: log2 of the probability that one PBS decrypts wrongly,
/// and the matching z-score (erfc(z / sqrt 2) = 2^log2_p; checked in tests/test_params.cpp).
struct FailureProbability {
  int log2_p;
  double z_score;
  friend constexpr bool operator==(FailureProbability, FailureProbability) = default;
};
inline constexpr FailureProbability p_fail_2m40{-40, 7.14356};
inline constexpr FailureProbability p_fail_2m64{-64, 9.15530};
inline constexpr FailureProbability p_fail_2m128{-128, 13.10863};

FHETENSOR_END_NAMESPACE
