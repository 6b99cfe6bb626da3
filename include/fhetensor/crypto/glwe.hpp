#pragma once
// GLWE secret keys and ciphertexts over Z_q[X]/(X^N + 1), q = 2^64.
#include <cstddef>
#include <span>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/lwe.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// k binary polynomials of N coefficients. Flattened, it is the big LWE key.
template <TfheInstance P>
class GlweSecretKey {
 public:
  static constexpr std::size_t k = P::glwe_dimension;
  static constexpr std::size_t N = P::polynomial_size;
  explicit GlweSecretKey(std::vector<Torus> bits) : bits_(std::move(bits)) {}
  std::span<const Torus> polynomial(std::size_t i) const noexcept { return {bits_.data() + i * N, N}; }
  LweSecretKey<P, BigKey> as_lwe_key() const { return LweSecretKey<P, BigKey>(bits_); }

 private:
  std::vector<Torus> bits_;
};

/// (A_0, ..., A_{k-1}, B) with phase B - sum_i A_i S_i.
template <TfheInstance P>
class GlweCiphertext {
 public:
  static constexpr std::size_t k = P::glwe_dimension;
  static constexpr std::size_t N = P::polynomial_size;

  GlweCiphertext() : data_((k + 1) * N, 0) {}

  std::span<Torus> polynomial(std::size_t i) noexcept { return {data_.data() + i * N, N}; }
  std::span<const Torus> polynomial(std::size_t i) const noexcept { return {data_.data() + i * N, N}; }
  std::span<Torus> body() noexcept { return polynomial(k); }
  std::span<const Torus> body() const noexcept { return polynomial(k); }
  std::span<Torus> data() noexcept { return data_; }
  std::span<const Torus> data() const noexcept { return data_; }

 private:
  std::vector<Torus> data_;
};

FHETENSOR_END_NAMESPACE
