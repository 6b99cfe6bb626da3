#pragma once
// GGSW ciphertexts and the bootstrapping key (one GGSW per bit of the small key), in the
// standard (torus) domain. Row (p, j) of a GGSW encrypting mu is a GLWE encryption of
// zero with mu * q / B^(j+1) added to polynomial p's constant coefficient.
#include <cstddef>
#include <span>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
struct GgswShape {
  static constexpr std::size_t k = P::glwe_dimension;
  static constexpr std::size_t N = P::polynomial_size;
  static constexpr std::size_t levels = static_cast<std::size_t>(P::pbs_decomposition.level_count);
  static constexpr std::size_t rows = (k + 1) * levels;           // row index: p * levels + j
  static constexpr std::size_t row_size = (k + 1) * N;            // one GLWE ciphertext
  static constexpr std::size_t ggsw_size = rows * row_size;
};

/// n GGSW ciphertexts in the torus domain (the form that is generated and serialized).
template <TfheInstance P>
class BootstrapKey {
  using Shape = GgswShape<P>;

 public:
  static constexpr std::size_t count = P::lwe_dimension;
  BootstrapKey() : data_(count * Shape::ggsw_size, 0) {}

  /// Polynomial `column` of row `row` of GGSW number `index`.
  std::span<Torus> polynomial(std::size_t index, std::size_t row, std::size_t column) noexcept {
    return {data_.data() + index * Shape::ggsw_size + row * Shape::row_size + column * Shape::N, Shape::N};
  }
  std::span<const Torus> polynomial(std::size_t index, std::size_t row, std::size_t column) const noexcept {
    return {data_.data() + index * Shape::ggsw_size + row * Shape::row_size + column * Shape::N, Shape::N};
  }
  std::span<Torus> row(std::size_t index, std::size_t row) noexcept {
    return {data_.data() + index * Shape::ggsw_size + row * Shape::row_size, Shape::row_size};
  }
  std::span<Torus> ggsw(std::size_t index) noexcept { return {data_.data() + index * Shape::ggsw_size, Shape::ggsw_size}; }
  std::span<const Torus> ggsw(std::size_t index) const noexcept {
    return {data_.data() + index * Shape::ggsw_size, Shape::ggsw_size};
  }
  std::span<const Torus> data() const noexcept { return data_; }

 private:
  std::vector<Torus> data_;
};

FHETENSOR_END_NAMESPACE
