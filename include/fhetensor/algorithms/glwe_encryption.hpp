#pragma once
// GLWE encryption and decryption, with exact polynomial products.
#include <cstddef>
#include <span>
#include <vector>

#include <fhetensor/algorithms/polynomial.hpp>
#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/glwe.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>
#include <fhetensor/random/csprng.hpp>
#include <fhetensor/random/noise_sampler.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
GlweSecretKey<P> generate_glwe_secret_key(Csprng& rng) {
  std::vector<Torus> bits(P::glwe_dimension * P::polynomial_size);
  for (auto& b : bits) b = rng.next_bit();
  return GlweSecretKey<P>(std::move(bits));
}

/// A GLWE key with its polynomials transformed once, for many encryptions/decryptions.
template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
class GlweKeyTransform {
 public:
  GlweKeyTransform(const GlweSecretKey<P>& key, const Fft& fft) : fft_(fft) {
    for (std::size_t i = 0; i < P::glwe_dimension; ++i) {
      std::vector<std::int64_t> bits(key.polynomial(i).begin(), key.polynomial(i).end());
      transforms_.emplace_back(P::polynomial_size);
      fft.forward(bits, transforms_.back().view());
    }
  }

  /// out += sum_i A_i * S_i (exact).
  void add_mask_key_product(std::span<Torus> out, std::span<const Torus> glwe) const {
    for (std::size_t i = 0; i < P::glwe_dimension; ++i)
      add_exact_product(out, glwe.subspan(i * P::polynomial_size, P::polynomial_size), transforms_[i].view(), fft_);
  }

 private:
  const Fft& fft_;
  std::vector<fft::FourierPolynomial> transforms_;
};

/// Encrypts the polynomial `message` into `out` ((k+1)N coefficients): random masks,
/// B = sum_i A_i S_i + e + M. Masks may come from a public seeded stream, noise not.
template <TfheInstance P, fft::NegacyclicFftBackend Fft, NoiseDistribution D>
void encrypt_glwe_into(std::span<Torus> out, std::span<const Torus> message, const GlweKeyTransform<P, Fft>& key,
                       D noise, Csprng& masks, Csprng& noise_rng) {
  constexpr std::size_t N = P::polynomial_size;
  constexpr std::size_t k = P::glwe_dimension;
  masks.fill(out.first(k * N));
  auto body = out.subspan(k * N, N);
  for (std::size_t j = 0; j < N; ++j) body[j] = message[j] + sample_noise(noise, noise_rng);
  key.add_mask_key_product(body, out);
}
template <TfheInstance P, fft::NegacyclicFftBackend Fft, NoiseDistribution D>
void encrypt_glwe_into(std::span<Torus> out, std::span<const Torus> message, const GlweKeyTransform<P, Fft>& key,
                       D noise, Csprng& rng) {
  encrypt_glwe_into<P>(out, message, key, noise, rng, rng);
}

/// B - sum_i A_i S_i for every coefficient.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
std::vector<Torus> decrypt_glwe_phase(const GlweCiphertext<P>& ct, const GlweKeyTransform<P, Fft>& key) {
  std::vector<Torus> product(P::polynomial_size, 0);
  key.add_mask_key_product(product, ct.data());
  std::vector<Torus> phase(P::polynomial_size);
  for (std::size_t j = 0; j < P::polynomial_size; ++j) phase[j] = ct.body()[j] - product[j];
  return phase;
}

FHETENSOR_END_NAMESPACE
