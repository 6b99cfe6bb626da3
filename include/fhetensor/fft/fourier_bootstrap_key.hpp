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
  /// One allocation, GGSW after GGSW in the order blind rotation reads them, each
  /// polynomial laid out as a FourierPolynomial: the hardware prefetcher streams it.
  explicit FourierBootstrapKey(std::shared_ptr<const Fft> fft)
      : fft_(std::move(fft)), data_(fft::detail::allocate_aligned(polynomial_count * polynomial_doubles)) {}

  FourierBootstrapKey(const BootstrapKey<P>& key, std::shared_ptr<const Fft> fft) : FourierBootstrapKey(std::move(fft)) {
    parallel_for(P::lwe_dimension, [&](std::size_t index, std::size_t) { set_ggsw(index, key.ggsw(index)); });
  }

  /// Transforms GGSW number `index` (torus domain, GgswShape layout). Thread-safe for
  /// distinct indices.
  void set_ggsw(std::size_t index, std::span<const Torus> ggsw) {
    for (std::size_t row = 0; row < Shape::rows; ++row)
      for (std::size_t column = 0; column <= Shape::k; ++column)
        fft_->forward_torus(ggsw.subspan(row * Shape::row_size + column * Shape::N, Shape::N),
                            mutable_polynomial(index, row, column));
  }

  fft::FourierConstView polynomial(std::size_t index, std::size_t row, std::size_t column) const noexcept {
    const double* re = data_.get() + offset(index, row, column) * polynomial_doubles;
    return {re, re + stride, Shape::N / 2};
  }

  /// Asks the caches for part `part` of `parts` of GGSW number `index` ahead of its use;
  /// spreading the parts over a CMux overlaps the memory traffic with the FFTs.
  void prefetch(std::size_t index, std::size_t part = 0, std::size_t parts = 1) const noexcept {
    if (index >= P::lwe_dimension) return;
    const char* begin = reinterpret_cast<const char*>(data_.get() + offset(index, 0, 0) * polynomial_doubles);
    constexpr std::size_t bytes = Shape::rows * (Shape::k + 1) * polynomial_doubles * sizeof(double);
    const std::size_t first = bytes * part / parts, last = bytes * (part + 1) / parts;
    for (std::size_t b = first; b < last; b += 64) __builtin_prefetch(begin + b, 0, 2);
  }
  const Fft& fft() const noexcept { return *fft_; }
  std::shared_ptr<const Fft> fft_ptr() const noexcept { return fft_; }
  std::size_t size_bytes() const noexcept { return polynomial_count * polynomial_doubles * sizeof(double); }

 private:
  static constexpr std::size_t stride = fft::detail::fourier_stride(Shape::N / 2);  // re[0] to im[0]
  static constexpr std::size_t polynomial_doubles = 2 * stride;
  static constexpr std::size_t polynomial_count = P::lwe_dimension * Shape::rows * (Shape::k + 1);

  static constexpr std::size_t offset(std::size_t index, std::size_t row, std::size_t column) noexcept {
    return (index * Shape::rows + row) * (Shape::k + 1) + column;
  }
  fft::FourierView mutable_polynomial(std::size_t index, std::size_t row, std::size_t column) noexcept {
    double* re = data_.get() + offset(index, row, column) * polynomial_doubles;
    return {re, re + stride, Shape::N / 2};
  }

  std::shared_ptr<const Fft> fft_;
  fft::detail::AlignedDoubles data_;
};

FHETENSOR_END_NAMESPACE
