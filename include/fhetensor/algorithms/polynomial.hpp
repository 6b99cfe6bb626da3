#pragma once
// Polynomial arithmetic in Z_q[X]/(X^N + 1) that the FFT does not cover.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// out = X^e * in, for e in [0, 2N): coefficients move up by e, wrapping with a sign flip.
inline void multiply_by_monomial(std::span<const Torus> in, std::size_t e, std::span<Torus> out) noexcept {
  const std::size_t n = in.size();
  if (e >= n) {
    e -= n;
    for (std::size_t j = 0; j < e; ++j) out[j] = in[j + n - e];
    for (std::size_t j = e; j < n; ++j) out[j] = Torus{0} - in[j - e];
  } else {
    for (std::size_t j = 0; j < e; ++j) out[j] = Torus{0} - in[j + n - e];
    for (std::size_t j = e; j < n; ++j) out[j] = in[j - e];
  }
}

/// Exact negacyclic product with a binary (or small) polynomial, accumulated into out:
/// out += a * s mod (X^N + 1, 2^64). The torus polynomial is split into three 22-bit limbs
/// so each limb product (at most N * 2^22 < 2^39) is exact in the f64 FFT; key generation
/// and GLWE encryption need it exact, unlike the external product whose FFT error is noise.
template <fft::NegacyclicFftBackend Fft>
void add_exact_product(std::span<Torus> out, std::span<const Torus> a, fft::FourierConstView s_fourier, const Fft& fft) {
  const std::size_t n = a.size();
  std::vector<std::int64_t> limb(n);
  std::vector<Torus> product(n);
  fft::FourierPolynomial transform(n);
  constexpr int limb_bits = 22;
  for (int l = 0; l < 3; ++l) {
    for (std::size_t i = 0; i < n; ++i)
      limb[i] = static_cast<std::int64_t>((a[i] >> (limb_bits * l)) & ((Torus{1} << limb_bits) - 1));
    fft.forward(limb, transform.view());
    fft::FourierPolynomial result(n);
    fft::fourier_multiply_add(result.view(), transform.view(), s_fourier);
    fft.backward_torus(result.view(), product);
    for (std::size_t i = 0; i < n; ++i) out[i] += product[i] << (limb_bits * l);
  }
}

FHETENSOR_END_NAMESPACE
