#pragma once
// INSECURE toy instances, for tests only: small dimensions make the logic of every
// algorithm quick to test over many keys. Never use them for data; they are not in the
// installed headers and offer no security at all.
#include <fhetensor/params/parameter_sets.hpp>

namespace fhetensor::testing {

struct InsecureToyN512 {
  static constexpr std::string_view name = "INSECURE-toy-n64-k1-N512";
  static constexpr std::size_t lwe_dimension = 64;
  static constexpr std::size_t glwe_dimension = 1;
  static constexpr std::size_t polynomial_size = 512;
  static constexpr TUniform lwe_noise{30};
  static constexpr TUniform glwe_noise{10};
  static constexpr Decomposition pbs_decomposition{10, 3};
  static constexpr Decomposition keyswitch_decomposition{4, 5};
  static constexpr SecurityEstimate lwe_security{0.0, "INSECURE: test only"};
  static constexpr SecurityEstimate glwe_security{0.0, "INSECURE: test only"};
};

struct InsecureToyK2N256 {
  static constexpr std::string_view name = "INSECURE-toy-n32-k2-N256";
  static constexpr std::size_t lwe_dimension = 32;
  static constexpr std::size_t glwe_dimension = 2;
  static constexpr std::size_t polynomial_size = 256;
  static constexpr TUniform lwe_noise{30};
  static constexpr TUniform glwe_noise{10};
  static constexpr Decomposition pbs_decomposition{8, 2};
  static constexpr Decomposition keyswitch_decomposition{3, 6};
  static constexpr SecurityEstimate lwe_security{0.0, "INSECURE: test only"};
  static constexpr SecurityEstimate glwe_security{0.0, "INSECURE: test only"};
};

}  // namespace fhetensor::testing
