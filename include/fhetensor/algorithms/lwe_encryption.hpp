#pragma once
// LWE encryption, decryption and the linear operations that need no key.
#include <cstdint>
#include <span>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/lwe.hpp>
#include <fhetensor/random/csprng.hpp>
#include <fhetensor/random/noise_sampler.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Big-key ciphertexts share the GLWE key, so they use its noise; small-key ones the LWE noise.
template <TfheInstance P, LweKeyKind Kind>
constexpr auto default_noise() noexcept {
  if constexpr (std::is_same_v<Kind, BigKey>) return P::glwe_noise;
  else return P::lwe_noise;
}

template <TfheInstance P, LweKeyKind Kind>
LweSecretKey<P, Kind> generate_lwe_secret_key(Csprng& rng) {
  std::vector<Torus> bits(lwe_dimension_v<P, Kind>);
  for (auto& b : bits) b = rng.next_bit();
  return LweSecretKey<P, Kind>(std::move(bits));
}

inline Torus dot_product(std::span<const Torus> a, std::span<const Torus> s) noexcept {
  Torus sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * s[i];
  return sum;
}

/// Writes an encryption of `plaintext` into (mask, body) storage `out` of size d + 1. The
/// mask may come from a public seeded stream (compressed ciphertexts and keys); the noise
/// must come from a secret one.
template <NoiseDistribution D>
void encrypt_lwe_into(std::span<Torus> out, std::span<const Torus> key_bits, Torus plaintext, D noise, Csprng& masks,
                      Csprng& noise_rng) {
  const std::size_t d = key_bits.size();
  masks.fill(out.first(d));
  out[d] = dot_product(out.first(d), key_bits) + sample_noise(noise, noise_rng) + plaintext;
}
template <NoiseDistribution D>
void encrypt_lwe_into(std::span<Torus> out, std::span<const Torus> key_bits, Torus plaintext, D noise, Csprng& rng) {
  encrypt_lwe_into(out, key_bits, plaintext, noise, rng, rng);
}

template <TfheInstance P, LweKeyKind Kind, NoiseDistribution D = decltype(default_noise<P, Kind>())>
LweCiphertext<P, Kind> encrypt_lwe(const LweSecretKey<P, Kind>& key, Torus plaintext, Csprng& rng,
                                   D noise = default_noise<P, Kind>()) {
  LweCiphertext<P, Kind> ct;
  encrypt_lwe_into(ct.data(), key.bits(), plaintext, noise, rng);
  return ct;
}

/// b - <a, s>: the plaintext plus the noise.
template <TfheInstance P, LweKeyKind Kind>
Torus decrypt_phase(const LweSecretKey<P, Kind>& key, const LweCiphertext<P, Kind>& ct) noexcept {
  return ct.body() - dot_product(ct.mask(), key.bits());
}

/// A noiseless encryption (zero mask) of a public constant.
template <TfheInstance P, LweKeyKind Kind = BigKey>
LweCiphertext<P, Kind> trivial_lwe(Torus plaintext) {
  LweCiphertext<P, Kind> ct;
  ct.body() = plaintext;
  return ct;
}

// Linear operations: the phase follows the same operation, the noise variances add
// (times the square of a scalar factor).
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K>& operator+=(LweCiphertext<P, K>& x, const LweCiphertext<P, K>& y) noexcept {
  auto a = x.data();
  auto b = y.data();
  for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return x;
}
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K>& operator-=(LweCiphertext<P, K>& x, const LweCiphertext<P, K>& y) noexcept {
  auto a = x.data();
  auto b = y.data();
  for (std::size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return x;
}
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K>& operator*=(LweCiphertext<P, K>& x, std::int64_t scalar) noexcept {
  for (auto& c : x.data()) c *= static_cast<Torus>(scalar);
  return x;
}
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K> operator+(LweCiphertext<P, K> x, const LweCiphertext<P, K>& y) noexcept { return x += y; }
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K> operator-(LweCiphertext<P, K> x, const LweCiphertext<P, K>& y) noexcept { return x -= y; }
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K> operator*(LweCiphertext<P, K> x, std::int64_t scalar) noexcept { return x *= scalar; }
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K> operator*(std::int64_t scalar, LweCiphertext<P, K> x) noexcept { return x *= scalar; }
template <TfheInstance P, LweKeyKind K>
LweCiphertext<P, K> operator-(LweCiphertext<P, K> x) noexcept { return x *= -1; }

/// Adds a public plaintext (only the body changes).
template <TfheInstance P, LweKeyKind K>
void add_plaintext_assign(LweCiphertext<P, K>& x, Torus plaintext) noexcept { x.body() += plaintext; }

FHETENSOR_END_NAMESPACE
