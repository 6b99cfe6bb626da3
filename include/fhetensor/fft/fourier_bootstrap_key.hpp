#pragma once
// The bootstrapping key in the Fourier domain of one FFT backend: what blind rotation
// reads, n * (k+1)l * (k+1) transformed polynomials in GGSW order.
#include <cstddef>
#include <memory>
#include <vector>

#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/ggsw.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P, fft::NegacyclicFftBackend Fft = fft::NegacyclicFft>
class FourierBootstrapKey {
  using Shape = GgswShape<P>;

 public:
  /// Zero key of the right shape; fill it with set_ggsw (keys too large to hold twice).
  explicit FourierBootstrapKey(std::shared_ptr<const Fft> fft) : fft_(std::move(fft)) {
    polynomials_.reserve(P::lwe_dimension * Shape::rows * (Shape::k + 1));
    for (std::size_t i = 0; i < P::lwe_dimension * Shape::rows * (Shape::k + 1); ++i)
      polynomials_.emplace_back(Shape::N);
  }

  FourierBootstrapKey(const BootstrapKey<P>& key, std::shared_ptr<const Fft> fft) : FourierBootstrapKey(std::move(fft)) {
    parallel_for(P::lwe_dimension, [&](std::size_t index, std::size_t) { set_ggsw(index, key.ggsw(index)); });
  }

  /// Transforms GGSW number `index` (torus domain, GgswShape layout). Thread-safe for
  /// distinct indices.
  void set_ggsw(std::size_t index, std::span<const Torus> ggsw) {
    for (std::size_t row = 0; row < Shape::rows; ++row)
      for (std::size_t column = 0; column <= Shape::k; ++column)
        fft_->forward_torus(ggsw.subspan(row * Shape::row_size + column * Shape::N, Shape::N),
                            polynomials_[offset(index, row, column)].view());
  }

  fft::FourierConstView polynomial(std::size_t index, std::size_t row, std::size_t column) const noexcept {
    return polynomials_[offset(index, row, column)].view();
  }
  const Fft& fft() const noexcept { return *fft_; }
  std::shared_ptr<const Fft> fft_ptr() const noexcept { return fft_; }
  std::size_t size_bytes() const noexcept { return polynomials_.size() * Shape::N * sizeof(double); }

 private:
  static constexpr std::size_t offset(std::size_t index, std::size_t row, std::size_t column) noexcept {
    return (index * Shape::rows + row) * (Shape::k + 1) + column;
  }
  std::shared_ptr<const Fft> fft_;
  std::vector<fft::FourierPolynomial> polynomials_;
};

FHETENSOR_END_NAMESPACE
