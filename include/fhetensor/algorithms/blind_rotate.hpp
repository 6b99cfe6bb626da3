#pragma once
// Modulus switching, external product / CMux, blind rotation and sample extraction
// (Chillotti et al., "TFHE", JoC 2020: Alg. 3 and 5, Thm 3.14). Every hot routine takes a
// caller-owned workspace, so a thread reuses its scratch across bootstraps.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <fhetensor/algorithms/decomposition.hpp>
#include <fhetensor/algorithms/polynomial.hpp>
#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/glwe.hpp>
#include <fhetensor/crypto/lwe.hpp>
#include <fhetensor/fft/fourier_bootstrap_key.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// round(x * 2N / q): the position of x on the 2N-th roots of unity.
template <std::size_t N>
constexpr std::size_t modulus_switch(Torus x) noexcept {
  constexpr int log2_2n = std::countr_zero(2 * N);
  return static_cast<std::size_t>((x + (Torus{1} << (torus_bits - log2_2n - 1))) >> (torus_bits - log2_2n));
}

/// Scratch of one blind rotation; reuse it (one per thread) across bootstraps.
template <TfheInstance P>
class BlindRotationWorkspace {
 public:
  static constexpr std::size_t k = P::glwe_dimension;
  static constexpr std::size_t N = P::polynomial_size;
  static constexpr std::size_t levels = static_cast<std::size_t>(P::pbs_decomposition.level_count);

  BlindRotationWorkspace() : digits(levels * N), digit_transform(N) {
    for (std::size_t c = 0; c <= k; ++c) output_transforms.emplace_back(N);
  }

  /// Bytes of scratch one bootstrap needs.
  static constexpr std::size_t size_bytes() noexcept {
    return (k + 1) * N * sizeof(Torus) + levels * N * sizeof(std::int64_t) + (k + 2) * N * sizeof(double);
  }

  GlweCiphertext<P> accumulator;
  std::vector<std::int64_t> digits;
  fft::FourierPolynomial digit_transform;
  std::vector<fft::FourierPolynomial> output_transforms;
};

/// Digits of X^e * a - a (e in [1, 2N)), level-major: the rotation, the difference and
/// the decomposition in one pass, over two contiguous ranges without branches.
template <Decomposition D>
void decompose_rotation_difference(std::span<const Torus> a, std::size_t e, std::span<std::int64_t> digits) noexcept {
  const std::size_t n = a.size();
  const bool negate = e >= n;  // X^e = -X^(e-N)
  const std::size_t shift = negate ? e - n : e;
  // Conditional negation as (x ^ m) - m, m = 0 or all ones: cheaper than a multiply.
  const Torus mask_low = negate ? Torus{0} : ~Torus{0};  // the wrapped part is negated once more
  const Torus mask_high = negate ? ~Torus{0} : Torus{0};
  const Torus* __restrict in = a.data();
  std::int64_t* __restrict out = digits.data();
  for (std::size_t j = 0; j < shift; ++j)
    decompose<D>(((in[j + n - shift] ^ mask_low) - mask_low) - in[j], out + j, n);
  for (std::size_t j = shift; j < n; ++j)
    decompose<D>(((in[j - shift] ^ mask_high) - mask_high) - in[j], out + j, n);
}

/// acc += ExtProd(GGSW(s_i), X^e * acc - acc): a CMux that rotates acc by X^e when s_i = 1.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void cmux_rotate_assign(BlindRotationWorkspace<P>& ws, const FourierBootstrapKey<P, Fft>& bsk, std::size_t index,
                        std::size_t e) {
  using Ws = BlindRotationWorkspace<P>;
  constexpr Decomposition d = P::pbs_decomposition;
  const Fft& fft = bsk.fft();
  constexpr std::size_t prefetch_parts = (Ws::k + 1) * (Ws::levels + 1);  // one per FFT
  std::size_t part = 0;
  for (std::size_t p = 0; p <= Ws::k; ++p) {
    decompose_rotation_difference<d>(ws.accumulator.polynomial(p), e, ws.digits);
    for (std::size_t level = 0; level < Ws::levels; ++level) {
      bsk.prefetch(index + 1, part++, prefetch_parts);
      fft.forward(std::span<const std::int64_t>(ws.digits).subspan(level * Ws::N, Ws::N), ws.digit_transform.view());
      const std::size_t row = p * Ws::levels + level;
      for (std::size_t c = 0; c <= Ws::k; ++c) {
        const auto key = bsk.polynomial(index, row, c);
        if (row == 0) fft::fourier_multiply(ws.output_transforms[c].view(), ws.digit_transform.view(), key);
        else fft::fourier_multiply_add(ws.output_transforms[c].view(), ws.digit_transform.view(), key);
      }
    }
  }
  for (std::size_t c = 0; c <= Ws::k; ++c) {
    bsk.prefetch(index + 1, part++, prefetch_parts);
    fft.backward_torus_add(ws.output_transforms[c].view(), ws.accumulator.polynomial(c));
  }
}

/// Blind rotations of several ciphertexts, one workspace each: leaves X^(-phase_b) * v_b
/// in ws[b].accumulator, phase_b the mod-switched phase of in[b] and v_b its test
/// polynomial. The batch walks the bootstrapping key once: each GGSW, far too large to
/// stay cached between bootstraps, is fetched from memory once for the whole batch.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void blind_rotate_batch(std::span<BlindRotationWorkspace<P>> ws, std::span<const LweCiphertext<P, SmallKey>> in,
                        std::span<const std::span<const Torus>> test_polynomials, const FourierBootstrapKey<P, Fft>& bsk) {
  constexpr std::size_t N = P::polynomial_size;
  const std::size_t batch = ws.size();
  for (std::size_t b = 0; b < batch; ++b) {
    auto& acc = ws[b].accumulator;
    for (std::size_t c = 0; c < P::glwe_dimension; ++c)
      for (auto& x : acc.polynomial(c)) x = 0;
    const std::size_t body = modulus_switch<N>(in[b].body());
    multiply_by_monomial(test_polynomials[b], (2 * N - body) % (2 * N), acc.body());
  }
  for (std::size_t i = 0; i < P::lwe_dimension; ++i)
    for (std::size_t b = 0; b < batch; ++b) {
      const std::size_t e = modulus_switch<N>(in[b].mask()[i]) % (2 * N);
      if (e != 0) cmux_rotate_assign(ws[b], bsk, i, e);
    }
}

/// Leaves X^(-phase) * v in ws.accumulator, where phase is the mod-switched phase of `in`
/// and v the test polynomial.
template <TfheInstance P, fft::NegacyclicFftBackend Fft>
void blind_rotate(BlindRotationWorkspace<P>& ws, const LweCiphertext<P, SmallKey>& in, std::span<const Torus> test_polynomial,
                  const FourierBootstrapKey<P, Fft>& bsk) {
  blind_rotate_batch<P, Fft>({&ws, 1}, {&in, 1}, {&test_polynomial, 1}, bsk);
}

/// The LWE ciphertext (under the flattened GLWE key) of coefficient 0 of a GLWE ciphertext.
template <TfheInstance P>
void sample_extract_into(LweCiphertext<P, BigKey>& out, const GlweCiphertext<P>& in) noexcept {
  constexpr std::size_t N = P::polynomial_size;
  auto mask = out.mask();
  for (std::size_t p = 0; p < P::glwe_dimension; ++p) {
    const auto a = in.polynomial(p);
    mask[p * N] = a[0];
    for (std::size_t j = 1; j < N; ++j) mask[p * N + j] = Torus{0} - a[N - j];
  }
  out.body() = in.body()[0];
}

FHETENSOR_END_NAMESPACE
