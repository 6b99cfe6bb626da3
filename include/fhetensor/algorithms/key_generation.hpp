#pragma once
// Secret keys (client side) and evaluation keys (server side: bootstrapping key and
// key-switching key). Generation runs on every core, each worker on its own ChaCha20
// stream seeded from the caller's generator.
#include <cstddef>
#include <memory>
#include <vector>

#include <fhetensor/algorithms/decomposition.hpp>
#include <fhetensor/algorithms/glwe_encryption.hpp>
#include <fhetensor/algorithms/lwe_encryption.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/ggsw.hpp>
#include <fhetensor/crypto/keyswitch_key.hpp>
#include <fhetensor/fft/fourier_bootstrap_key.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
struct SecretKeys {
  GlweSecretKey<P> glwe;
  LweSecretKey<P, SmallKey> small;
  LweSecretKey<P, BigKey> big() const { return glwe.as_lwe_key(); }
};

template <TfheInstance P>
SecretKeys<P> generate_secret_keys(Csprng& rng) {
  auto glwe = generate_glwe_secret_key<P>(rng);
  auto small = generate_lwe_secret_key<P, SmallKey>(rng);
  return {std::move(glwe), std::move(small)};
}

namespace detail {
// One independent generator per work item, so the result doesn't depend on scheduling.
inline std::vector<Csprng::Seed> draw_seeds(Csprng& rng, std::size_t count) {
  std::vector<Csprng::Seed> seeds(count);
  for (auto& s : seeds) s = rng.next_seed();
  return seeds;
}
}  // namespace detail

/// Encrypts mu (0 or 1) as a GGSW ciphertext into `out` (GgswShape layout);
/// encrypt_zero(row) writes a GLWE encryption of zero.
template <TfheInstance P, class EncryptZero>
void encrypt_ggsw_into(std::span<Torus> out, Torus mu, EncryptZero&& encrypt_zero) {
  using Shape = GgswShape<P>;
  for (std::size_t p = 0; p <= Shape::k; ++p)
    for (std::size_t j = 0; j < Shape::levels; ++j) {
      auto row = out.subspan((p * Shape::levels + j) * Shape::row_size, Shape::row_size);
      encrypt_zero(row);
      row[p * Shape::N] += mu * gadget_value(P::pbs_decomposition, static_cast<int>(j));
    }
}

/// GGSW encryption of small-key bit i, from its own generator.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void encrypt_bootstrap_ggsw(std::span<Torus> out, const SecretKeys<P>& keys, std::size_t i,
                            const GlweKeyTransform<P, Fft>& key, const Csprng::Seed& seed) {
  Csprng local(seed);
  const std::vector<Torus> zero(P::polynomial_size, 0);
  encrypt_ggsw_into<P>(out, keys.small.bits()[i],
                       [&](std::span<Torus> row) { encrypt_glwe_into<P>(row, zero, key, P::glwe_noise, local); });
}

/// GGSW encryptions of the small key's bits under the GLWE key (torus domain).
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
BootstrapKey<P> generate_bootstrap_key(const SecretKeys<P>& keys, Csprng& rng, const Fft& fft) {
  BootstrapKey<P> bsk;
  const GlweKeyTransform<P, Fft> key(keys.glwe, fft);
  const auto seeds = detail::draw_seeds(rng, P::lwe_dimension);
  parallel_for(P::lwe_dimension,
               [&](std::size_t i, std::size_t) { encrypt_bootstrap_ggsw(bsk.ggsw(i), keys, i, key, seeds[i]); });
  return bsk;
}

/// The same key straight into the Fourier domain, one GGSW at a time: the torus-domain
/// key is never held whole (4.7 GB at N = 65536).
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
FourierBootstrapKey<P, Fft> generate_fourier_bootstrap_key(const SecretKeys<P>& keys, Csprng& rng,
                                                           std::shared_ptr<const Fft> fft) {
  FourierBootstrapKey<P, Fft> bsk(fft);
  const GlweKeyTransform<P, Fft> key(keys.glwe, *fft);
  const auto seeds = detail::draw_seeds(rng, P::lwe_dimension);
  std::vector<std::vector<Torus>> scratch(default_thread_count(), std::vector<Torus>(GgswShape<P>::ggsw_size));
  parallel_for(P::lwe_dimension, [&](std::size_t i, std::size_t worker) {
    encrypt_bootstrap_ggsw(std::span<Torus>(scratch[worker]), keys, i, key, seeds[i]);
    bsk.set_ggsw(i, scratch[worker]);
  });
  return bsk;
}

/// Small-key LWE encryptions of s_i * q / B^(j+1) for every big-key bit s_i.
template <TfheInstance P>
KeySwitchKey<P> generate_keyswitch_key(const SecretKeys<P>& keys, Csprng& rng) {
  constexpr Decomposition d = P::keyswitch_decomposition;
  KeySwitchKey<P> ksk;
  const auto big = keys.big();
  const auto seeds = detail::draw_seeds(rng, KeySwitchKey<P>::input_dimension);
  parallel_for(KeySwitchKey<P>::input_dimension, [&](std::size_t i, std::size_t) {
    Csprng local(seeds[i]);
    for (std::size_t j = 0; j < KeySwitchKey<P>::levels; ++j)
      encrypt_lwe_into(ksk.ciphertext(i, j), keys.small.bits(), big.bits()[i] * gadget_value(d, static_cast<int>(j)),
                       P::lwe_noise, local);
  });
  return ksk;
}

/// What a server needs to evaluate lookup tables: no secret.
template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
struct EvaluationKeys {
  FourierBootstrapKey<P, Fft> bootstrap;
  KeySwitchKey<P> keyswitch;
};

template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
EvaluationKeys<P, Fft> generate_evaluation_keys(const SecretKeys<P>& keys, Csprng& rng,
                                                std::type_identity_t<std::shared_ptr<const Fft>> fft =
                                                    std::make_shared<Fft>(P::polynomial_size)) {
  auto bsk = generate_fourier_bootstrap_key(keys, rng, std::move(fft));
  return {std::move(bsk), generate_keyswitch_key(keys, rng)};
}

FHETENSOR_END_NAMESPACE
