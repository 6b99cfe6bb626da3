#pragma once
// LWE secret keys and ciphertexts. A ciphertext's type names its parameter set and the key
// it is encrypted under, so mixing sets, or big-key and small-key ciphertexts, won't compile.
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// The flattened GLWE key, of dimension k*N: client ciphertexts and PBS outputs use it.
struct BigKey {};
/// The LWE key of dimension n: key-switching outputs and blind-rotation inputs use it.
struct SmallKey {};

template <class K>
concept LweKeyKind = std::same_as<K, BigKey> || std::same_as<K, SmallKey>;

template <TfheInstance P, LweKeyKind Kind>
inline constexpr std::size_t lwe_dimension_v =
    std::is_same_v<Kind, BigKey> ? P::glwe_dimension * P::polynomial_size : P::lwe_dimension;

/// A uniform binary secret (coefficients 0 or 1).
template <TfheInstance P, LweKeyKind Kind>
class LweSecretKey {
 public:
  using key_kind = Kind;
  static constexpr std::size_t dimension = lwe_dimension_v<P, Kind>;
  explicit LweSecretKey(std::vector<Torus> bits) : bits_(std::move(bits)) {}
  std::span<const Torus> bits() const noexcept { return bits_; }
  /// Fraction of ones: the noise formulas take it as the key's weight.
  double weight() const noexcept {
    std::size_t ones = 0;
    for (Torus b : bits_) ones += b;
    return static_cast<double>(ones) / static_cast<double>(bits_.size());
  }

 private:
  std::vector<Torus> bits_;
};

/// (a_0, ..., a_{d-1}, b) with phase b - <a, s>.
template <TfheInstance P, LweKeyKind Kind = BigKey>
class LweCiphertext {
 public:
  using parameters = P;
  using key_kind = Kind;
  static constexpr std::size_t dimension = lwe_dimension_v<P, Kind>;

  LweCiphertext() : data_(dimension + 1, 0) {}

  std::span<Torus> mask() noexcept { return {data_.data(), dimension}; }
  std::span<const Torus> mask() const noexcept { return {data_.data(), dimension}; }
  Torus& body() noexcept { return data_[dimension]; }
  Torus body() const noexcept { return data_[dimension]; }
  std::span<Torus> data() noexcept { return data_; }
  std::span<const Torus> data() const noexcept { return data_; }

  friend bool operator==(const LweCiphertext&, const LweCiphertext&) = default;

 private:
  std::vector<Torus> data_;
};

FHETENSOR_END_NAMESPACE
