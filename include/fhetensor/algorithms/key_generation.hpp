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

/// Encrypts mu (0 or 1) as a GGSW ciphertext into `out` (GgswShape layout): row (p, j) is a
/// GLWE encryption of mu * g_j * (-S_p for p < k, 1 for p = k). That is the textbook row
/// (mu * g_j added to mask p) with the same phase, but its mask stays as drawn, so that a
/// seeded mask can be regenerated from the seed alone.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void encrypt_ggsw_into(std::span<Torus> out, Torus mu, const GlweSecretKey<P>& secret, const GlweKeyTransform<P, Fft>& key,
                       Csprng& masks, Csprng& noise) {
  using Shape = GgswShape<P>;
  std::vector<Torus> message(Shape::N);
  for (std::size_t p = 0; p <= Shape::k; ++p)
    for (std::size_t j = 0; j < Shape::levels; ++j) {
      const Torus g = mu * gadget_value(P::pbs_decomposition, static_cast<int>(j));
      if (p < Shape::k) {
        const auto s = secret.polynomial(p);
        for (std::size_t c = 0; c < Shape::N; ++c) message[c] = -g * s[c];
      } else {
        std::fill(message.begin(), message.end(), 0);
        message[0] = g;
      }
      encrypt_glwe_into<P>(out.subspan((p * Shape::levels + j) * Shape::row_size, Shape::row_size), message, key,
                           P::glwe_noise, masks, noise);
    }
}

/// What a server needs to evaluate lookup tables: no secret.
template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
struct EvaluationKeys {
  FourierBootstrapKey<P, Fft> bootstrap;
  KeySwitchKey<P> keyswitch;
};

/// The evaluation keys as a client uploads them: every mask comes from a stream derived
/// from one public seed, so only the bodies travel (tfhe-rs's seeded keys). The
/// key-switching key shrinks n + 1 times, the bootstrapping key k + 1 times.
template <TfheInstance P>
struct CompressedEvaluationKeys {
  using Ggsw = GgswShape<P>;
  using Ksk = KeySwitchKey<P>;
  static constexpr std::size_t bootstrap_body_count = P::lwe_dimension * Ggsw::rows * Ggsw::N;
  static constexpr std::size_t keyswitch_body_count = Ksk::input_dimension * Ksk::levels;

  Csprng::Seed mask_seed{};
  std::vector<Torus> bootstrap_bodies = std::vector<Torus>(bootstrap_body_count);  // GGSW i, row r: (i * rows + r) * N
  std::vector<Torus> keyswitch_bodies = std::vector<Torus>(keyswitch_body_count);  // input i, level j: i * levels + j

  std::size_t size_bytes() const noexcept { return sizeof mask_seed + (bootstrap_body_count + keyswitch_body_count) * sizeof(Torus); }
  /// What the expanded keys take: the torus-domain form (the Fourier form takes as much).
  static constexpr std::size_t expanded_size_bytes() noexcept {
    return (P::lwe_dimension * Ggsw::ggsw_size + Ksk::input_dimension * Ksk::levels * Ksk::output_size) * sizeof(Torus);
  }
};

namespace detail {
// Row r of GGSW i, or level j of key-switching input i, draws its mask from these streams in
// row (level) order: generation and expansion must agree on it.
inline Csprng bootstrap_masks(const Csprng::Seed& seed, std::size_t i) {
  return Csprng(derive_seed(seed, seed_domain::bootstrap_key_masks, i));
}
inline Csprng keyswitch_masks(const Csprng::Seed& seed, std::size_t i) {
  return Csprng(derive_seed(seed, seed_domain::keyswitch_key_masks, i));
}

/// The bodies of GGSW encryptions of the small key's bits under the GLWE key.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void generate_bootstrap_bodies(std::span<Torus> bodies, const SecretKeys<P>& keys, const Csprng::Seed& mask_seed, Csprng& rng,
                               const Fft& fft) {
  using Ggsw = GgswShape<P>;
  const auto noise_seeds = draw_seeds(rng, P::lwe_dimension);
  const GlweKeyTransform<P, Fft> key(keys.glwe, fft);
  std::vector<std::vector<Torus>> scratch(default_thread_count(), std::vector<Torus>(Ggsw::ggsw_size));
  parallel_for(P::lwe_dimension, [&](std::size_t i, std::size_t worker) {
    Csprng masks = bootstrap_masks(mask_seed, i), noise(noise_seeds[i]);
    std::span<Torus> ggsw(scratch[worker]);
    encrypt_ggsw_into<P>(ggsw, keys.small.bits()[i], keys.glwe, key, masks, noise);
    for (std::size_t r = 0; r < Ggsw::rows; ++r) {
      const auto body = ggsw.subspan(r * Ggsw::row_size + Ggsw::k * Ggsw::N, Ggsw::N);
      std::copy(body.begin(), body.end(), bodies.begin() + static_cast<std::ptrdiff_t>((i * Ggsw::rows + r) * Ggsw::N));
    }
  });
}

/// The bodies of small-key encryptions of s_i * q / B^(j+1) for every big-key bit s_i.
template <TfheInstance P>
void generate_keyswitch_bodies(std::span<Torus> bodies, const SecretKeys<P>& keys, const Csprng::Seed& mask_seed, Csprng& rng) {
  using Ksk = KeySwitchKey<P>;
  constexpr Decomposition d = P::keyswitch_decomposition;
  const auto noise_seeds = draw_seeds(rng, Ksk::input_dimension);
  const auto big = keys.big();
  parallel_for(Ksk::input_dimension, [&](std::size_t i, std::size_t) {
    Csprng masks = keyswitch_masks(mask_seed, i), noise(noise_seeds[i]);
    std::vector<Torus> ct(Ksk::output_size);
    for (std::size_t j = 0; j < Ksk::levels; ++j) {
      encrypt_lwe_into(std::span<Torus>(ct), keys.small.bits(), big.bits()[i] * gadget_value(d, static_cast<int>(j)),
                       P::lwe_noise, masks, noise);
      bodies[i * Ksk::levels + j] = ct.back();
    }
  });
}

template <TfheInstance P>
KeySwitchKey<P> expand_keyswitch_key(const Csprng::Seed& mask_seed, std::span<const Torus> bodies) {
  using Ksk = KeySwitchKey<P>;
  Ksk out;
  parallel_for(Ksk::input_dimension, [&](std::size_t i, std::size_t) {
    Csprng masks = keyswitch_masks(mask_seed, i);
    for (std::size_t j = 0; j < Ksk::levels; ++j) {
      const auto ct = out.ciphertext(i, j);
      masks.fill(ct.first(Ksk::output_size - 1));
      ct.back() = bodies[i * Ksk::levels + j];
    }
  });
  return out;
}
}  // namespace detail

/// Fresh evaluation keys in compressed form.
template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
CompressedEvaluationKeys<P> generate_compressed_evaluation_keys(const SecretKeys<P>& keys, Csprng& rng,
                                                                const Fft& fft = Fft(P::polynomial_size)) {
  CompressedEvaluationKeys<P> out;
  out.mask_seed = rng.next_seed();
  detail::generate_bootstrap_bodies<P>(out.bootstrap_bodies, keys, out.mask_seed, rng, fft);
  detail::generate_keyswitch_bodies<P>(out.keyswitch_bodies, keys, out.mask_seed, rng);
  return out;
}

/// A key-switching key alone (tests and benchmarks of the key switch).
template <TfheInstance P>
KeySwitchKey<P> generate_keyswitch_key(const SecretKeys<P>& keys, Csprng& rng) {
  const Csprng::Seed mask_seed = rng.next_seed();
  std::vector<Torus> bodies(CompressedEvaluationKeys<P>::keyswitch_body_count);
  detail::generate_keyswitch_bodies<P>(bodies, keys, mask_seed, rng);
  return detail::expand_keyswitch_key<P>(mask_seed, bodies);
}

/// The server's keys from the compressed ones: masks regenerated, the bootstrapping key
/// transformed to the Fourier domain one GGSW at a time (never held whole in the torus
/// domain: 4.7 GB at N = 65536).
template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
EvaluationKeys<P, Fft> expand(const CompressedEvaluationKeys<P>& keys,
                              std::type_identity_t<std::shared_ptr<const Fft>> fft = std::make_shared<Fft>(P::polynomial_size)) {
  using Ggsw = GgswShape<P>;
  FourierBootstrapKey<P, Fft> bootstrap(std::move(fft));
  std::vector<std::vector<Torus>> scratch(default_thread_count(), std::vector<Torus>(Ggsw::ggsw_size));
  parallel_for(P::lwe_dimension, [&](std::size_t i, std::size_t worker) {
    Csprng masks = detail::bootstrap_masks(keys.mask_seed, i);
    std::span<Torus> ggsw(scratch[worker]);
    for (std::size_t r = 0; r < Ggsw::rows; ++r) {
      const auto row = ggsw.subspan(r * Ggsw::row_size, Ggsw::row_size);
      masks.fill(row.first(Ggsw::k * Ggsw::N));
      const auto body = keys.bootstrap_bodies.begin() + static_cast<std::ptrdiff_t>((i * Ggsw::rows + r) * Ggsw::N);
      std::copy(body, body + static_cast<std::ptrdiff_t>(Ggsw::N), row.begin() + static_cast<std::ptrdiff_t>(Ggsw::k * Ggsw::N));
    }
    bootstrap.set_ggsw(i, ggsw);
  });
  return {std::move(bootstrap), detail::expand_keyswitch_key<P>(keys.mask_seed, keys.keyswitch_bodies)};
}

template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
EvaluationKeys<P, Fft> generate_evaluation_keys(const SecretKeys<P>& keys, Csprng& rng,
                                                std::type_identity_t<std::shared_ptr<const Fft>> fft =
                                                    std::make_shared<Fft>(P::polynomial_size)) {
  const auto compressed = generate_compressed_evaluation_keys<P, Fft>(keys, rng, *fft);
  return expand<P, Fft>(compressed, std::move(fft));
}

FHETENSOR_END_NAMESPACE
