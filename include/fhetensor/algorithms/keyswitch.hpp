#pragma once
// LWE key switching from the big key to the small key (Chillotti et al. 2020, Alg. 1):
// out = (0, b) - sum_i sum_j d_ij * KSK_ij, with d_ij the digits of a_i.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>

#include <fhetensor/algorithms/decomposition.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/keyswitch_key.hpp>
#include <fhetensor/crypto/lwe.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Key switches of several ciphertexts in one pass over the key: each key row, read from
/// memory once, updates every ciphertext of the batch while it is in L1. The key (60 MiB
/// at N = 2048, 180 MiB at N = 4096) does not fit in any cache, so a switch of one
/// ciphertext is bound by memory bandwidth, and a batch of B divides that traffic by B.
/// Results equal keyswitch_into's for each ciphertext, bit for bit.
template <TfheInstance P>
void keyswitch_batch_into(std::span<LweCiphertext<P, SmallKey>> out, std::span<const LweCiphertext<P, BigKey>> in,
                          const KeySwitchKey<P>& ksk) {
  constexpr Decomposition d = P::keyswitch_decomposition;
  constexpr std::size_t size = KeySwitchKey<P>::output_size;
  constexpr std::size_t chunk = 8;  // accumulators of 8 ciphertexts (<= 9 KiB each) stay in L1/L2
  if (out.size() != in.size())
    throw std::invalid_argument("fhetensor: a key-switch batch needs as many outputs as inputs");
  for (std::size_t first = 0; first < in.size(); first += chunk) {
    const std::size_t count = std::min(chunk, in.size() - first);
    Torus* acc[chunk];
    for (std::size_t b = 0; b < count; ++b) {
      acc[b] = out[first + b].data().data();
      std::fill_n(acc[b], size - 1, Torus{0});
      acc[b][size - 1] = in[first + b].body();
    }
    std::int64_t digits[chunk][64];
    for (std::size_t i = 0; i < KeySwitchKey<P>::input_dimension; ++i) {
      for (std::size_t b = 0; b < count; ++b) decompose<d>(in[first + b].mask()[i], digits[b]);
      for (int j = 0; j < d.level_count; ++j) {
        const Torus* __restrict r = ksk.ciphertext(i, static_cast<std::size_t>(j)).data();
        for (std::size_t b = 0; b < count; ++b) {
          if (digits[b][j] == 0) continue;
          const Torus digit = static_cast<Torus>(digits[b][j]);
          Torus* __restrict a = acc[b];
          for (std::size_t t = 0; t < size; ++t) a[t] -= digit * r[t];
        }
      }
    }
  }
}

template <TfheInstance P>
void keyswitch_into(LweCiphertext<P, SmallKey>& out, const LweCiphertext<P, BigKey>& in, const KeySwitchKey<P>& ksk) {
  keyswitch_batch_into<P>({&out, 1}, {&in, 1}, ksk);
}

template <TfheInstance P>
LweCiphertext<P, SmallKey> keyswitch(const LweCiphertext<P, BigKey>& in, const KeySwitchKey<P>& ksk) {
  LweCiphertext<P, SmallKey> out;
  keyswitch_into(out, in, ksk);
  return out;
}

FHETENSOR_END_NAMESPACE
