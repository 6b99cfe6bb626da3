#pragma once
// LWE key switching from the big key to the small key (Chillotti et al. 2020, Alg. 1):
// out = (0, b) - sum_i sum_j d_ij * KSK_ij, with d_ij the digits of a_i.
#include <cstddef>
#include <cstdint>

#include <fhetensor/algorithms/decomposition.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/keyswitch_key.hpp>
#include <fhetensor/crypto/lwe.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
void keyswitch_into(LweCiphertext<P, SmallKey>& out, const LweCiphertext<P, BigKey>& in, const KeySwitchKey<P>& ksk) noexcept {
  constexpr Decomposition d = P::keyswitch_decomposition;
  constexpr std::size_t size = KeySwitchKey<P>::output_size;
  auto acc = out.data();
  for (auto& c : acc) c = 0;
  acc[size - 1] = in.body();
  std::int64_t digits[64];
  const auto mask = in.mask();
  for (std::size_t i = 0; i < mask.size(); ++i) {
    decompose<d>(mask[i], digits);
    for (int j = 0; j < d.level_count; ++j) {
      if (digits[j] == 0) continue;
      const auto row = ksk.ciphertext(i, static_cast<std::size_t>(j));
      const Torus digit = static_cast<Torus>(digits[j]);
      Torus* __restrict a = acc.data();
      const Torus* __restrict r = row.data();
      for (std::size_t t = 0; t < size; ++t) a[t] -= digit * r[t];
    }
  }
}

template <TfheInstance P>
LweCiphertext<P, SmallKey> keyswitch(const LweCiphertext<P, BigKey>& in, const KeySwitchKey<P>& ksk) {
  LweCiphertext<P, SmallKey> out;
  keyswitch_into(out, in, ksk);
  return out;
}

FHETENSOR_END_NAMESPACE
