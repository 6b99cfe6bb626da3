#pragma once
// Programmable bootstrapping: key switch to the small key, blind-rotate the lookup table,
// extract coefficient 0. The result encrypts f(m) under the big key with fresh noise.
#include <cstddef>

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

template <TfheInstance P, fft::NegacyclicFftBackend Fft>
LweCiphertext<P, BigKey> apply_lookup_table(const LweCiphertext<P, BigKey>& in, const LookupTable<P>& table,
                                            const EvaluationKeys<P, Fft>& keys, PbsWorkspace<P>& ws) {
  LweCiphertext<P, BigKey> out;
  apply_lookup_table_into(out, in, table, keys, ws);
  return out;
}

FHETENSOR_END_NAMESPACE
