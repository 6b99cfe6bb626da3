#pragma once
// LWE key-switching key from the big key (k*N) to the small key (n): for every big-key
// bit s_i and level j, an LWE encryption under the small key of s_i * q / B^(j+1).
#include <cstddef>
#include <span>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/lwe.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
class KeySwitchKey {
 public:
  static constexpr std::size_t input_dimension = lwe_dimension_v<P, BigKey>;
  static constexpr std::size_t output_size = lwe_dimension_v<P, SmallKey> + 1;
  static constexpr std::size_t levels = static_cast<std::size_t>(P::keyswitch_decomposition.level_count);

  KeySwitchKey() : data_(input_dimension * levels * output_size, 0) {}

  /// The small-key ciphertext for big-key coefficient `input` at level `level`.
  std::span<Torus> ciphertext(std::size_t input, std::size_t level) noexcept {
    return {data_.data() + (input * levels + level) * output_size, output_size};
  }
  std::span<const Torus> ciphertext(std::size_t input, std::size_t level) const noexcept {
    return {data_.data() + (input * levels + level) * output_size, output_size};
  }
  std::span<const Torus> data() const noexcept { return data_; }

 private:
  std::vector<Torus> data_;
};

FHETENSOR_END_NAMESPACE
