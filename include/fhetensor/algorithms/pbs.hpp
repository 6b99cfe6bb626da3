#pragma once
// Programmable bootstrapping: key switch to the small key, blind-rotate the lookup table,
// extract coefficient 0. The result encrypts f(m) under the big key with fresh noise.
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fhetensor/algorithms/blind_rotate.hpp>
#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/keyswitch.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/lookup_table.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Scratch for a whole key-switch + bootstrap.
template <TfheInstance P>
struct PbsWorkspace {
  LweCiphertext<P, SmallKey> switched;
  BlindRotationWorkspace<P> rotation;
  static constexpr std::size_t size_bytes() noexcept {
    return BlindRotationWorkspace<P>::size_bytes() + (P::lwe_dimension + 1) * sizeof(Torus);
  }
};

/// Bootstrap a small-key ciphertext (no key switch): the "PBS" of TFHE papers.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void bootstrap_into(LweCiphertext<P, BigKey>& out, const LweCiphertext<P, SmallKey>& in, const LookupTable<P>& table,
                    const FourierBootstrapKey<P, Fft>& bsk, BlindRotationWorkspace<P>& ws) {
  blind_rotate(ws, in, table.polynomial(), bsk);
  sample_extract_into(out, ws.accumulator);
}

/// f(m) for a big-key ciphertext of m: key switch, then bootstrap.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void apply_lookup_table_into(LweCiphertext<P, BigKey>& out, const LweCiphertext<P, BigKey>& in,
                             const LookupTable<P>& table, const EvaluationKeys<P, Fft>& keys, PbsWorkspace<P>& ws) {
  keyswitch_into(ws.switched, in, keys.keyswitch);
  bootstrap_into(out, ws.switched, table, keys.bootstrap, ws.rotation);
}

/// Scratch for batches of up to `capacity` key switches + bootstraps.
template <TfheInstance P>
struct PbsBatchWorkspace {
  explicit PbsBatchWorkspace(std::size_t capacity) : switched(capacity), rotation(capacity), tests(capacity) {}
  std::size_t capacity() const noexcept { return rotation.size(); }
  std::vector<LweCiphertext<P, SmallKey>> switched;
  std::vector<BlindRotationWorkspace<P>> rotation;
  std::vector<std::span<const Torus>> tests;
};

/// out[b] = tables[b](in[b]) for a batch: the results of apply_lookup_table_into, bit for
/// bit, with one pass over each key for the whole batch (keyswitch_batch_into,
/// blind_rotate_batch).
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void apply_lookup_tables_into(std::span<LweCiphertext<P, BigKey>> out, std::span<const LweCiphertext<P, BigKey>> in,
                              std::span<const LookupTable<P>* const> tables, const EvaluationKeys<P, Fft>& keys,
                              PbsBatchWorkspace<P>& ws) {
  const std::size_t n = in.size();
  if (n > ws.capacity() || out.size() != n || tables.size() != n)
    throw std::invalid_argument("fhetensor: a bootstrap batch of " + std::to_string(n) + " inputs, " +
                                std::to_string(out.size()) + " outputs and " + std::to_string(tables.size()) +
                                " tables, for a workspace of " + std::to_string(ws.capacity()));
  keyswitch_batch_into<P>(std::span(ws.switched).first(n), in, keys.keyswitch);
  for (std::size_t b = 0; b < n; ++b) ws.tests[b] = tables[b]->polynomial();
  blind_rotate_batch<P, Fft>(std::span(ws.rotation).first(n), std::span<const LweCiphertext<P, SmallKey>>(ws.switched).first(n),
                             std::span<const std::span<const Torus>>(ws.tests).first(n), keys.bootstrap);
  for (std::size_t b = 0; b < n; ++b) sample_extract_into(out[b], ws.rotation[b].accumulator);
}

template <TfheInstance P, fft::NegacyclicFftBackend Fft>
LweCiphertext<P, BigKey> apply_lookup_table(const LweCiphertext<P, BigKey>& in, const LookupTable<P>& table,
                                            const EvaluationKeys<P, Fft>& keys, PbsWorkspace<P>& ws) {
  LweCiphertext<P, BigKey> out;
  apply_lookup_table_into(out, in, table, keys, ws);
  return out;
}

FHETENSOR_END_NAMESPACE
