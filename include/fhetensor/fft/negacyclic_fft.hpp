#pragma once
// Negacyclic FFT over Z[X]/(X^N + 1) for TFHE's external product (docs/fft.md).
//
// A real polynomial a of degree < N is folded into M = N/2 complex values
// z_j = a_j + i a_{j+M}. With zeta = exp(i pi / N), a(zeta^(4k+1)) = sum_j z_j zeta^j w^(jk),
// w = exp(2 pi i / M): evaluating at half the roots of X^N + 1 is an M-point "twisted" DFT, and
// the other half are complex conjugates, so pointwise products of these M values are
// negacyclic products.
//
// Instead of twisting and then running a cyclic FFT we factor Y^M - i directly, as in the
// negacyclic NTTs of lattice cryptography: Y^(2h) - c = (Y^h - r)(Y^h + r) with r^2 = c, so
// one radix-2 stage maps (lo, hi) -> (lo + r hi, lo - r hi) with ONE twiddle per block. No
// twist pass, no trivial twiddles, and every vector butterfly uses broadcast twiddles. The
// twiddle of block b at stage s is r_{s,b} = exp(i pi (1 + 4 bitrev_s(b)) / 2^(s+2)); the two
// children of a block have twiddles t and i t, so the second one is free.
//
// Forward: decimation in frequency (natural order in, bit-reversed-ish out); backward: the
// exact inverse, Gentleman-Sande butterflies (x, y) -> (x + y, (x - y) conj(r)) in reverse
// order, scaled by 1/M at the end (exact). Fourier-domain order is internal: only pointwise
// products are done there. Butterflies are fused in radix-4 units (tangent form, below).
//
// Vector layout (width W = 8 for AVX-512, 4 for AVX2): radix-4 passes (a radix-8 first pass
// when the count is odd), depth first, while the butterfly distance is >= W; the last
// 2 log2(W) stages run on blocks of W^2 values held in 2W registers: log2(W) stages between
// registers, a W x W transpose, and log2(W) more stages between registers with per-lane
// twiddles. The transpose is not undone: the Fourier domain is stored transposed within
// each block, and the backward pass starts from it.
#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numbers>
#include <span>
#include <stdexcept>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace fft {

/// What the external product needs from a negacyclic FFT.
template <class F>
concept NegacyclicFftBackend = requires(const F& f, std::span<const std::int64_t> ints,
                                        std::span<const Torus> torus, std::span<Torus> out,
                                        FourierView fourier) {
  { f.polynomial_size() } -> std::same_as<std::size_t>;
  f.forward(ints, fourier);            // signed integer polynomial -> Fourier
  f.forward_torus(torus, fourier);     // torus polynomial read as signed int64 -> Fourier
  f.backward_torus(fourier, out);      // out[j] = round(coefficient j) mod 2^64; destroys `fourier`
  f.backward_torus_add(fourier, out);  // out[j] += round(coefficient j) mod 2^64; destroys `fourier`
};

// ---------------------------------------------------------------------------------------
// Error model (derivation in docs/fft.md).

namespace detail {
inline constexpr double unit_roundoff = 0x1p-53;

struct ErrorFactors {
  double eta_forward;   // per stage: ||computed - exact stage(computed input)||_2 <= eta ||exact output||_2
  double eta_backward;  // per stage: |error of an output| <= eta (sum of |inputs| it depends on)
  double pointwise;     // |fl(a b) - a b| <= pointwise |a| |b|
  double conversion;    // int64 -> double, relative
};

// First-order local error constants of the butterflies actually used, with margin; the
// derivation is in docs/fft.md. tau bounds the error of a twiddle as the kernels represent
// it (rounded w_re times rounded 1 + i w_im/w_re, or a product of three rounded factors).
inline ErrorFactors error_factors() noexcept {
  const double u = unit_roundoff;
  const double tau = 3.5 * u;
  ErrorFactors f{};
#if FHETENSOR_FFT_FUSED
  // radix-4: 5u + tau per output per unit sum of |inputs|; radix-2: sqrt(2) (3u + tau)
  f.eta_forward = std::max(5.0 * u + tau, std::numbers::sqrt2 * (3.0 * u + tau)) * (1.0 + 0x1p-8);
#else
  // without FMAs every multiply-add rounds twice: radix-4 12u + tau, radix-2 sqrt(2) (7u + tau)
  f.eta_forward = std::max(12.0 * u + tau, std::numbers::sqrt2 * (7.0 * u + tau)) * (1.0 + 0x1p-8);
#endif
  // radix-2 with a twiddle rebuilt as w_re (w_re t_w): u + 2.83u + 3u <= 4u + tau; radix-4
  // units: half of 5.83u + 5u; the tangent-form last pass: half of 8u, or 6u for radix 2
  f.eta_backward = (4.0 * u + tau) * (1.0 + 0x1p-8);
  f.pointwise = std::numbers::sqrt2 * 2.0 * u / (1.0 - 2.0 * u);  // sqrt(2) gamma_2
  f.conversion = u;
  return f;
}
}  // namespace detail

/// Worst-case |error| of one output coefficient of
/// backward(forward(a) * forward_torus(b)) against the exact integer product (before the
/// reduction mod 2^64), for |a_j| <= max_abs_int and |b_j| <= max_abs_torus. Includes the
/// final rounding to an integer. Valid for NegacyclicFft on every ISA.
inline double product_error_bound(std::size_t polynomial_size, double max_abs_int,
                                  double max_abs_torus) {
  if (polynomial_size < 2 || !detail::is_power_of_two(polynomial_size))
    throw std::invalid_argument("product_error_bound: polynomial size must be a power of two >= 2");
  const auto f = detail::error_factors();
  const double stages = std::log2(static_cast<double>(polynomial_size / 2));
  // (1 + eta)^m - 1 without cancellation.
  const double gf = std::expm1(stages * std::log1p(f.eta_forward));
  const double gb = std::expm1(stages * std::log1p(f.eta_backward));
  const auto input_error = [&](double max_abs) {
    return max_abs <= 0x1p53 ? gf : gf * (1.0 + f.conversion) + f.conversion;
  };
  const double log_factor = std::log1p(input_error(max_abs_int)) +
                            std::log1p(input_error(max_abs_torus)) + std::log1p(f.pointwise) +
                            std::log1p(gb);
  // ||a||_2 ||b||_2 <= N max|a| max|b|; the 1 + 2^-20 covers the rounding of this formula.
  const double norms = static_cast<double>(polynomial_size) * max_abs_int * max_abs_torus;
  return norms * std::expm1(log_factor) * (1.0 + 0x1p-20) + 0.5;
}

/// Model of the variance of the error of one output coefficient of
/// backward(forward(a) * forward_torus(b)) for random inputs: independent coefficients with
/// the given mean squares, the torus ones spread uniformly over the 64-bit range. It is an
/// upper estimate: 1.15 to 1.35 times the measured variance for N = 256..16384
/// (tests/test_fft.cpp checks it within [1, 2) for N = 1024, 2048, 4096).
inline double product_error_variance(std::size_t polynomial_size, double mean_square_int,
                                     double mean_square_torus) {
  if (polynomial_size < 2 || !detail::is_power_of_two(polynomial_size))
    throw std::invalid_argument("product_error_variance: polynomial size must be a power of two >= 2");
  const double u = detail::unit_roundoff;
  const double n = static_cast<double>(polynomial_size);
  const double stages = std::log2(n / 2);
  // Each rounding of a value x adds an error of variance kappa u^2 E[x^2] (kappa = 0.18 for
  // values spread over many binades). Per stage the relative error power grows by about
  // 2.6 kappa u^2 in each forward transform and 2.2 in the backward one, whose twiddles are
  // rebuilt from the forward records (7.4 in all; 8.75 measured); the complex product adds
  // 1.5 kappa u^2 and the int64 -> double conversion of uniform torus coefficients u^2 / 7.
  // The constants round the per-stage and constant terms up so that the model stays above
  // the measurements (the constant term measured -4..+3 kappa, depending on whether the
  // transforms start with a radix-8 or a radix-4 pass). docs/fft.md has the details.
  constexpr double kappa = 0.18;
  constexpr double conversion = 1.0 / 7.0;
#if FHETENSOR_FFT_FUSED
  constexpr double per_stage = 9.5, constant = 10.0;
#else
  constexpr double per_stage = 12.0, constant = 10.0;  // every multiply-add rounds twice
#endif
  const double relative = kappa * (per_stage * stages + constant) + conversion;
  return n * mean_square_int * mean_square_torus * u * u * relative;
}

// ---------------------------------------------------------------------------------------
namespace detail {

struct TwiddleLd {
  long double re, im;
};

constexpr TwiddleLd operator*(TwiddleLd a, TwiddleLd b) noexcept {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

/// r_{s,b} = exp(i pi (1 + 4 bitrev_s(b)) / 2^(s+2)), in long double. Its angle is an odd
/// multiple of pi / 2^(s+2), so neither part is ever zero.
inline TwiddleLd negacyclic_twiddle(unsigned stage, std::size_t block) {
  std::uint64_t rev = 0;
  for (unsigned i = 0; i < stage; ++i) rev |= ((block >> i) & 1u) << (stage - 1 - i);
  const long double angle = std::numbers::pi_v<long double> * static_cast<long double>(1 + 4 * rev) /
                            std::ldexp(1.0L, static_cast<int>(stage) + 2);
  return {std::cos(angle), std::sin(angle)};
}

// Twiddle records: a radix-4 unit works on a block with twiddle r whose first child has
// twiddle s (the second child has i s); q = r s. One record serves both directions:
//   (r_re, t_r, t_s, t_q, kappa, s_re) with t_w = w_im / w_re and kappa = q_re / s_re,
// and a radix-2 record is (w_re, t_w).
//
// Forward, tangent form (Linzer & Feig, IBM J. Res. Dev. 1993): w y = w_re (y (1 + i t_w)),
// so x +- w y is two FMAs once y (1 + i t_w) is known. With
//   c' = c (1 + i t_r), b' = b (1 + i t_s), d' = d (1 + i t_q), v+- = b' +- kappa d',
//   P, Q = a +- r_re c':
// A = P + s_re v+, B = P - s_re v+, C = Q + i s_re v-, D = Q - i s_re v-: 22 flops per
// radix-4 vector butterfly instead of 32 with four complex multiplications. Each pair
// x +- w y is computed as lo = x + w y, hi = lo - (2w) y: the FMA's destination is then
// always an operand that dies, which saves a register copy per pair (AVX FMAs overwrite
// an input).
//
// Backward (Gentleman-Sande, the inverse of the above times 4), three complex products:
// A = u + v, C = conj(r) (u - v), B = conj(s) (p - i q), D = conj(q) (p + i q) with
// u, p = a +- b and v, q = c +- d; r_im = r_re t_r etc. are rebuilt from the record.
inline constexpr std::size_t rec_rr = 0, rec_tr = 1, rec_ts = 2, rec_tq = 3, rec_kappa = 4, rec_sre = 5,
                             rec_count = 6;                      // radix-4 record fields
inline constexpr std::size_t rec2_wr = 0, rec2_t = 1, rec2_count = 2;  // radix-2 record fields
inline constexpr std::size_t record_size = 8;  // doubles per pass record: one cache line

inline void radix4_record(unsigned stage, std::size_t block, double* out, std::size_t step = 1) {
  const TwiddleLd r = negacyclic_twiddle(stage, block), s = negacyclic_twiddle(stage + 1, 2 * block);
  const TwiddleLd q = r * s;
  out[rec_rr * step] = static_cast<double>(r.re);
  out[rec_tr * step] = static_cast<double>(r.im / r.re);
  out[rec_ts * step] = static_cast<double>(s.im / s.re);
  out[rec_tq * step] = static_cast<double>(q.im / q.re);
  out[rec_kappa * step] = static_cast<double>(q.re / s.re);
  out[rec_sre * step] = static_cast<double>(s.re);
}

inline void radix2_record(unsigned stage, std::size_t block, double* out, std::size_t step = 1) {
  const TwiddleLd w = negacyclic_twiddle(stage, block);
  out[rec2_wr * step] = static_cast<double>(w.re);
  out[rec2_t * step] = static_cast<double>(w.im / w.re);
}

struct FftPlan {
  std::size_t n = 0;         // N
  std::size_t half = 0;      // M = N/2 complex points
  unsigned log_half = 0;     // m
  unsigned pass_stages = 0;  // stages done by radix-2/4 passes; the rest in the register tail
  bool simd = false;
  double out_scale = 0;      // 2^-64 / M, exact
  AlignedDoubles records;    // passes: record of (stage s, block b) at 2^s + b
  AlignedDoubles tail;       // per W^2 block of the register tail
};

/// Radix-2/4 passes and the register tail, for one ISA policy.
template <class Isa>
struct FftKernel {
  using V = typename Isa::Vec;
  static constexpr std::size_t W = Isa::width;
  static constexpr unsigned L = static_cast<unsigned>(std::countr_zero(W));  // log2 W
  static_assert(W == 1 || L == 2 || L == 3, "register tail written for W = 4 or 8");
  // Tail table per block: the broadcast fields (padded to whole vectors), then the per-lane
  // fields, one vector each. Fields: a radix-4 record, and for W = 8 two radix-2 records.
  static constexpr std::size_t tail_fields = L == 3 ? rec_count + 2 * rec2_count : rec_count;
  static constexpr std::size_t tail_pre = (tail_fields + W - 1) / W * W;
  static constexpr std::size_t tail_stride = tail_pre + tail_fields * W;

  struct Forward4 {
    V rr, rr2, tr, ts, tq, kappa, kappa2, sre, sre2;
  };
  struct Backward4 {
    V rr, ri, sr, si, qr, qi;
  };
  // Field i of a record: Get(i) broadcasts a scalar or loads a per-lane vector.
  template <class Get>
  FHETENSOR_FFT_INLINE static Forward4 forward4(Get get) noexcept {
    const V rr = get(rec_rr), kappa = get(rec_kappa), sre = get(rec_sre);
    return {rr, Isa::add(rr, rr), get(rec_tr), get(rec_ts), get(rec_tq), kappa, Isa::add(kappa, kappa),
            sre, Isa::add(sre, sre)};
  }
  template <class Get>
  FHETENSOR_FFT_INLINE static Backward4 backward4(Get get) noexcept {
    const V rr = get(rec_rr), sre = get(rec_sre);
    const V qr = Isa::mul(get(rec_kappa), sre);
    return {rr, Isa::mul(rr, get(rec_tr)), sre, Isa::mul(sre, get(rec_ts)), qr, Isa::mul(qr, get(rec_tq))};
  }
  static auto broadcast(const double* rec) noexcept {
    return [rec](std::size_t i) { return Isa::set1(rec[i]); };
  }
  static auto lanes(const double* vec) noexcept {
    return [vec](std::size_t i) { return Isa::load(vec + i * W); };
  }
  // Pass records: the doubled and rebuilt factors are computed once per block in scalar.
  static Forward4 forward4(const double* rec) noexcept {
    return {Isa::set1(rec[rec_rr]),    Isa::set1(2 * rec[rec_rr]),    Isa::set1(rec[rec_tr]),
            Isa::set1(rec[rec_ts]),    Isa::set1(rec[rec_tq]),        Isa::set1(rec[rec_kappa]),
            Isa::set1(2 * rec[rec_kappa]), Isa::set1(rec[rec_sre]),   Isa::set1(2 * rec[rec_sre])};
  }
  static Backward4 backward4(const double* rec) noexcept {
    const double qr = rec[rec_kappa] * rec[rec_sre];
    return {Isa::set1(rec[rec_rr]), Isa::set1(rec[rec_rr] * rec[rec_tr]), Isa::set1(rec[rec_sre]),
            Isa::set1(rec[rec_sre] * rec[rec_ts]), Isa::set1(qr), Isa::set1(qr * rec[rec_tq])};
  }

  // ---- butterflies (split complex) ----
  // Forward radix-2, w = wr (1 + i t), wr2 = 2 wr: (x, y) <- (x + w y, x - w y)
  FHETENSOR_FFT_INLINE static void fwd2(V& xr, V& xi, V& yr, V& yi, V wr, V wr2, V t) noexcept {
    const V ur = Isa::fnmadd(t, yi, yr), ui = Isa::fmadd(t, yr, yi);
    xr = Isa::fmadd(wr, ur, xr);
    xi = Isa::fmadd(wr, ui, xi);
    yr = Isa::fnmadd(wr2, ur, xr);
    yi = Isa::fnmadd(wr2, ui, xi);
  }
  // ... with twiddle i w: (x, y) <- (x + i w y, x - i w y)
  FHETENSOR_FFT_INLINE static void fwd2_i(V& xr, V& xi, V& yr, V& yi, V wr, V wr2, V t) noexcept {
    const V ur = Isa::fnmadd(t, yi, yr), ui = Isa::fmadd(t, yr, yi);
    xr = Isa::fnmadd(wr, ui, xr);
    xi = Isa::fmadd(wr, ur, xi);
    yr = Isa::fmadd(wr2, ui, xr);
    yi = Isa::fnmadd(wr2, ur, xi);
  }
  // Backward radix-2 (inverse of fwd2 times 2): (x, y) <- (x + y, (x - y) conj(w))
  FHETENSOR_FFT_INLINE static void bwd2(V& xr, V& xi, V& yr, V& yi, V wr, V wi) noexcept {
    const V tr = Isa::sub(xr, yr), ti = Isa::sub(xi, yi);
    xr = Isa::add(xr, yr);
    xi = Isa::add(xi, yi);
    yr = Isa::fmadd(tr, wr, Isa::mul(ti, wi));
    yi = Isa::fmsub(ti, wr, Isa::mul(tr, wi));
  }
  // ... with twiddle i w: conj(i w) = -i conj(w)
  FHETENSOR_FFT_INLINE static void bwd2_i(V& xr, V& xi, V& yr, V& yi, V wr, V wi) noexcept {
    const V tr = Isa::sub(xr, yr), ti = Isa::sub(xi, yi);
    xr = Isa::add(xr, yr);
    xi = Isa::add(xi, yi);
    yr = Isa::fmsub(ti, wr, Isa::mul(tr, wi));
    yi = Isa::fnmsub(tr, wr, Isa::mul(ti, wi));
  }

  // Forward radix-4 on (a, b, c, d) = points (j, j+q, j+2q, j+3q) of a block.
  FHETENSOR_FFT_INLINE static void fwd4(V& ar, V& ai, V& br, V& bi, V& cr, V& ci, V& dr, V& di,
                                        const Forward4& w) noexcept {
    const V c1r = Isa::fnmadd(w.tr, ci, cr), c1i = Isa::fmadd(w.tr, cr, ci);
    const V pr = Isa::fmadd(w.rr, c1r, ar), pi = Isa::fmadd(w.rr, c1i, ai);
    const V qr = Isa::fnmadd(w.rr2, c1r, pr), qi = Isa::fnmadd(w.rr2, c1i, pi);
    const V b1r = Isa::fnmadd(w.ts, bi, br), b1i = Isa::fmadd(w.ts, br, bi);
    const V d1r = Isa::fnmadd(w.tq, di, dr), d1i = Isa::fmadd(w.tq, dr, di);
    const V vpr = Isa::fmadd(w.kappa, d1r, b1r), vpi = Isa::fmadd(w.kappa, d1i, b1i);
    const V vmr = Isa::fnmadd(w.kappa2, d1r, vpr), vmi = Isa::fnmadd(w.kappa2, d1i, vpi);
    ar = Isa::fmadd(w.sre, vpr, pr);
    ai = Isa::fmadd(w.sre, vpi, pi);
    br = Isa::fnmadd(w.sre2, vpr, ar);
    bi = Isa::fnmadd(w.sre2, vpi, ai);
    cr = Isa::fnmadd(w.sre, vmi, qr);
    ci = Isa::fmadd(w.sre, vmr, qi);
    dr = Isa::fmadd(w.sre2, vmi, cr);
    di = Isa::fnmadd(w.sre2, vmr, ci);
  }

  // Backward radix-4: exact inverse of fwd4 times 4.
  FHETENSOR_FFT_INLINE static void bwd4(V& ar, V& ai, V& br, V& bi, V& cr, V& ci, V& dr, V& di,
                                        const Backward4& w) noexcept {
    const V ur = Isa::add(ar, br), ui = Isa::add(ai, bi);
    const V pr = Isa::sub(ar, br), pi = Isa::sub(ai, bi);
    const V vr = Isa::add(cr, dr), vi = Isa::add(ci, di);
    const V qr = Isa::sub(cr, dr), qi = Isa::sub(ci, di);
    ar = Isa::add(ur, vr);
    ai = Isa::add(ui, vi);
    const V xr = Isa::sub(ur, vr), xi = Isa::sub(ui, vi);  // C = conj(r) x
    cr = Isa::fmadd(xr, w.rr, Isa::mul(xi, w.ri));
    ci = Isa::fmsub(xi, w.rr, Isa::mul(xr, w.ri));
    const V er = Isa::add(pr, qi), ei = Isa::sub(pi, qr);  // B = conj(s) (p - i q)
    br = Isa::fmadd(er, w.sr, Isa::mul(ei, w.si));
    bi = Isa::fmsub(ei, w.sr, Isa::mul(er, w.si));
    const V fr = Isa::sub(pr, qi), fi = Isa::add(pi, qr);  // D = conj(q) (p + i q)
    dr = Isa::fmadd(fr, w.qr, Isa::mul(fi, w.qi));
    di = Isa::fmsub(fi, w.qr, Isa::mul(fr, w.qi));
  }

  // ---- register tail: the last 2L stages on one block of W^2 points ----
  // Levels 0 and 1 (distances W/2, W/4 registers) as one radix-4 unit, level 2 (W = 8 only,
  // distance 1) as radix-2 with twiddles u0, i u0, u2, i u2; a transpose; the same again
  // with per-lane twiddles (lane g = group g of W consecutive points). The transpose is not
  // undone: the backward tail starts from this layout.
  template <class Get>
  FHETENSOR_FFT_INLINE static void tail_forward_levels(V (&xr)[W], V (&xi)[W], Get get) noexcept {
    const Forward4 w4 = forward4(get);
    constexpr std::size_t h = W / 4;
#pragma GCC unroll 4
    for (std::size_t k = 0; k < h; ++k)
      fwd4(xr[k], xi[k], xr[k + h], xi[k + h], xr[k + 2 * h], xi[k + 2 * h], xr[k + 3 * h], xi[k + 3 * h], w4);
    if constexpr (L == 3) {
      const V w0 = get(rec_count + rec2_wr), t0 = get(rec_count + rec2_t);
      const V w2 = get(rec_count + rec2_count + rec2_wr), t2 = get(rec_count + rec2_count + rec2_t);
      const V w0x2 = Isa::add(w0, w0), w2x2 = Isa::add(w2, w2);
      fwd2(xr[0], xi[0], xr[1], xi[1], w0, w0x2, t0);
      fwd2_i(xr[2], xi[2], xr[3], xi[3], w0, w0x2, t0);
      fwd2(xr[4], xi[4], xr[5], xi[5], w2, w2x2, t2);
      fwd2_i(xr[6], xi[6], xr[7], xi[7], w2, w2x2, t2);
    }
  }

  template <class Get>
  FHETENSOR_FFT_INLINE static void tail_backward_levels(V (&xr)[W], V (&xi)[W], Get get) noexcept {
    if constexpr (L == 3) {
      const V w0 = get(rec_count + rec2_wr), w0i = Isa::mul(w0, get(rec_count + rec2_t));
      const V w2 = get(rec_count + rec2_count + rec2_wr);
      const V w2i = Isa::mul(w2, get(rec_count + rec2_count + rec2_t));
      bwd2(xr[0], xi[0], xr[1], xi[1], w0, w0i);
      bwd2_i(xr[2], xi[2], xr[3], xi[3], w0, w0i);
      bwd2(xr[4], xi[4], xr[5], xi[5], w2, w2i);
      bwd2_i(xr[6], xi[6], xr[7], xi[7], w2, w2i);
    }
    const Backward4 w4 = backward4(get);
    constexpr std::size_t h = W / 4;
#pragma GCC unroll 4
    for (std::size_t k = 0; k < h; ++k)
      bwd4(xr[k], xi[k], xr[k + h], xi[k + h], xr[k + 2 * h], xi[k + 2 * h], xr[k + 3 * h], xi[k + 3 * h], w4);
  }

  // One W x W tail block in registers: load, the stages around the transpose, store.
  template <class Stages>
  FHETENSOR_FFT_INLINE static void tail_block(double* re, double* im, Stages&& stages) noexcept {
    V xr[W], xi[W];
#pragma GCC unroll 16
    for (std::size_t k = 0; k < W; ++k) {
      xr[k] = Isa::load(re + k * W);
      xi[k] = Isa::load(im + k * W);
    }
    stages(xr, xi);
#pragma GCC unroll 16
    for (std::size_t k = 0; k < W; ++k) {
      Isa::store(re + k * W, xr[k]);
      Isa::store(im + k * W, xi[k]);
    }
  }

  static void tail_forward(const FftPlan& p, double* re, double* im, std::size_t block) noexcept {
    if constexpr (W > 1) {
      const double* pre = p.tail.get() + block * tail_stride;
      tail_block(re, im, [pre](V (&xr)[W], V (&xi)[W]) {
        tail_forward_levels(xr, xi, broadcast(pre));
        Isa::transpose(xr);
        Isa::transpose(xi);
        tail_forward_levels(xr, xi, lanes(pre + tail_pre));
      });
    } else {
      (void)p, (void)re, (void)im, (void)block;
    }
  }

  static void tail_backward(const FftPlan& p, double* re, double* im, std::size_t block) noexcept {
    if constexpr (W > 1) {
      const double* pre = p.tail.get() + block * tail_stride;
      tail_block(re, im, [pre](V (&xr)[W], V (&xi)[W]) {
        tail_backward_levels(xr, xi, lanes(pre + tail_pre));
        Isa::transpose(xr);
        Isa::transpose(xi);
        tail_backward_levels(xr, xi, broadcast(pre));
      });
    } else {
      (void)p, (void)re, (void)im, (void)block;
    }
  }

  // ---- passes ----
  static const double* pass_record(const FftPlan& p, unsigned s, std::size_t b) noexcept {
    return p.records.get() + ((std::size_t{1} << s) + b) * record_size;
  }

  // One radix-4 pass over a block of four quarters of q points: load, butterfly, store.
  template <class Butterfly>
  FHETENSOR_FFT_INLINE static void radix4_pass(double* re, double* im, std::size_t q, Butterfly&& butterfly) noexcept {
    for (std::size_t j = 0; j < q; j += W) {
      V ar = Isa::load(re + j), ai = Isa::load(im + j);
      V br = Isa::load(re + j + q), bi = Isa::load(im + j + q);
      V cr = Isa::load(re + j + 2 * q), ci = Isa::load(im + j + 2 * q);
      V dr = Isa::load(re + j + 3 * q), di = Isa::load(im + j + 3 * q);
      butterfly(ar, ai, br, bi, cr, ci, dr, di);
      Isa::store(re + j, ar), Isa::store(im + j, ai);
      Isa::store(re + j + q, br), Isa::store(im + j + q, bi);
      Isa::store(re + j + 2 * q, cr), Isa::store(im + j + 2 * q, ci);
      Isa::store(re + j + 3 * q, dr), Isa::store(im + j + 3 * q, di);
    }
  }

  static void radix4_forward(const FftPlan& p, double* re, double* im, unsigned s, std::size_t b,
                             std::size_t q) noexcept {
    const Forward4 w = forward4(pass_record(p, s, b));
    radix4_pass(re, im, q, [&](V& ar, V& ai, V& br, V& bi, V& cr, V& ci, V& dr, V& di) {
      fwd4(ar, ai, br, bi, cr, ci, dr, di, w);
    });
  }

  static void radix4_backward(const FftPlan& p, double* re, double* im, unsigned s, std::size_t b,
                              std::size_t q) noexcept {
    const Backward4 w = backward4(pass_record(p, s, b));
    radix4_pass(re, im, q, [&](V& ar, V& ai, V& br, V& bi, V& cr, V& ci, V& dr, V& di) {
      bwd4(ar, ai, br, bi, cr, ci, dr, di, w);
    });
  }

  // Depth first, so that once a block fits in L1 it stays there for all its stages.
  static void forward_rec(const FftPlan& p, double* re, double* im, unsigned s, std::size_t b) noexcept {
    if (s == p.pass_stages) {
      tail_forward(p, re, im, b);
      return;
    }
    const std::size_t q = p.half >> (s + 2);
    radix4_forward(p, re, im, s, b, q);
    for (std::size_t c = 0; c < 4; ++c) forward_rec(p, re + c * q, im + c * q, s + 2, 4 * b + c);
  }

  static void backward_rec(const FftPlan& p, double* re, double* im, unsigned s, std::size_t b) noexcept {
    if (s == p.pass_stages) {
      tail_backward(p, re, im, b);
      return;
    }
    const std::size_t q = p.half >> (s + 2);
    for (std::size_t c = 0; c < 4; ++c) backward_rec(p, re + c * q, im + c * q, s + 2, 4 * b + c);
    radix4_backward(p, re, im, s, b, q);
  }

  // The first forward pass reads the integer coefficients (a_j real, a_{j+M} imaginary).
  static void forward(const FftPlan& p, const std::int64_t* in, double* re, double* im) noexcept {
    const std::size_t m = p.half;
    const double* rec = pass_record(p, 0, 0);
    if (p.pass_stages == 0) {
      for (std::size_t j = 0; j < m; j += W) {
        Isa::store(re + j, Isa::load_int(in + j));
        Isa::store(im + j, Isa::load_int(in + m + j));
      }
      tail_forward(p, re, im, 0);
    } else if (p.pass_stages == 1) {
      const std::size_t h = m / 2;
      const V wr = Isa::set1(rec[rec2_wr]), wr2 = Isa::set1(2 * rec[rec2_wr]), t = Isa::set1(rec[rec2_t]);
      for (std::size_t j = 0; j < h; j += W) {
        V xr = Isa::load_int(in + j), xi = Isa::load_int(in + m + j);
        V yr = Isa::load_int(in + j + h), yi = Isa::load_int(in + m + j + h);
        fwd2(xr, xi, yr, yi, wr, wr2, t);
        Isa::store(re + j, xr), Isa::store(im + j, xi);
        Isa::store(re + j + h, yr), Isa::store(im + j + h, yi);
      }
      forward_rec(p, re, im, 1, 0);
      forward_rec(p, re + h, im + h, 1, 1);
    } else if (p.pass_stages % 2 == 1) {
      // Radix 8: the radix-2 stage 0 and the radix-4 units of its two children in one pass,
      // which saves a sweep over the data when the number of pass stages is odd.
      const std::size_t e = m / 8;
      const V wr = Isa::set1(rec[rec2_wr]), wr2 = Isa::set1(2 * rec[rec2_wr]), t = Isa::set1(rec[rec2_t]);
      const Forward4 w0 = forward4(pass_record(p, 1, 0)), w1 = forward4(pass_record(p, 1, 1));
      for (std::size_t j = 0; j < e; j += W) {
        V xr[8], xi[8];
#pragma GCC unroll 8
        for (std::size_t k = 0; k < 8; ++k) {
          xr[k] = Isa::load_int(in + j + k * e);
          xi[k] = Isa::load_int(in + m + j + k * e);
        }
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k) fwd2(xr[k], xi[k], xr[k + 4], xi[k + 4], wr, wr2, t);
        fwd4(xr[0], xi[0], xr[1], xi[1], xr[2], xi[2], xr[3], xi[3], w0);
        fwd4(xr[4], xi[4], xr[5], xi[5], xr[6], xi[6], xr[7], xi[7], w1);
#pragma GCC unroll 8
        for (std::size_t k = 0; k < 8; ++k) {
          Isa::store(re + j + k * e, xr[k]);
          Isa::store(im + j + k * e, xi[k]);
        }
      }
      for (std::size_t c = 0; c < 8; ++c) forward_rec(p, re + c * e, im + c * e, 3, c);
    } else {
      const std::size_t q = m / 4;
      const Forward4 w = forward4(rec);
      for (std::size_t j = 0; j < q; j += W) {
        V ar = Isa::load_int(in + j), ai = Isa::load_int(in + m + j);
        V br = Isa::load_int(in + j + q), bi = Isa::load_int(in + m + j + q);
        V cr = Isa::load_int(in + j + 2 * q), ci = Isa::load_int(in + m + j + 2 * q);
        V dr = Isa::load_int(in + j + 3 * q), di = Isa::load_int(in + m + j + 3 * q);
        fwd4(ar, ai, br, bi, cr, ci, dr, di, w);
        Isa::store(re + j, ar), Isa::store(im + j, ai);
        Isa::store(re + j + q, br), Isa::store(im + j + q, bi);
        Isa::store(re + j + 2 * q, cr), Isa::store(im + j + 2 * q, ci);
        Isa::store(re + j + 3 * q, dr), Isa::store(im + j + 3 * q, di);
      }
      for (std::size_t c = 0; c < 4; ++c) forward_rec(p, re + c * q, im + c * q, 2, c);
    }
  }

  // out (+)= round(x s 2^64) mod 2^64, s already holding the 2^-64.
  template <bool Add>
  FHETENSOR_FFT_INLINE static void emit(std::uint64_t* out, V x, V s) noexcept {
    if constexpr (Add) Isa::add_torus(out, Isa::mul(x, s));
    else Isa::store_torus(out, Isa::mul(x, s));
  }

  // The last backward pass writes (or adds) the coefficients. Its complex products are done
  // in tangent form, conj(w) y = w_re (y (1 - i t_w)), and the real factors w_re are folded
  // into the output scaling, which is one multiplication anyway.
  template <bool Add>
  static void backward(const FftPlan& p, double* re, double* im, std::uint64_t* out) noexcept {
    const std::size_t m = p.half;
    const double* rec = pass_record(p, 0, 0);
    const double c0 = p.out_scale;
    if (p.pass_stages == 0) {
      tail_backward(p, re, im, 0);
      const V s = Isa::set1(c0);
      for (std::size_t j = 0; j < m; j += W) {
        emit<Add>(out + j, Isa::load(re + j), s);
        emit<Add>(out + m + j, Isa::load(im + j), s);
      }
    } else if (p.pass_stages == 1) {
      const std::size_t h = m / 2;
      backward_rec(p, re, im, 1, 0);
      backward_rec(p, re + h, im + h, 1, 1);
      const V t = Isa::set1(rec[rec2_t]), s_lo = Isa::set1(c0), s_hi = Isa::set1(rec[rec2_wr] * c0);
      for (std::size_t j = 0; j < h; j += W) {
        const V xr = Isa::load(re + j), xi = Isa::load(im + j);
        const V yr = Isa::load(re + j + h), yi = Isa::load(im + j + h);
        const V dr = Isa::sub(xr, yr), di = Isa::sub(xi, yi);
        emit<Add>(out + j, Isa::add(xr, yr), s_lo);
        emit<Add>(out + m + j, Isa::add(xi, yi), s_lo);
        emit<Add>(out + j + h, Isa::fmadd(t, di, dr), s_hi);
        emit<Add>(out + m + j + h, Isa::fnmadd(t, dr, di), s_hi);
      }
    } else if (p.pass_stages % 2 == 1) {
      // Radix 8, the inverse of the forward's first pass.
      const std::size_t e = m / 8;
      for (std::size_t c = 0; c < 8; ++c) backward_rec(p, re + c * e, im + c * e, 3, c);
      const Backward4 w0 = backward4(pass_record(p, 1, 0)), w1 = backward4(pass_record(p, 1, 1));
      const V t = Isa::set1(rec[rec2_t]), s_lo = Isa::set1(c0), s_hi = Isa::set1(rec[rec2_wr] * c0);
      for (std::size_t j = 0; j < e; j += W) {
        V xr[8], xi[8];
#pragma GCC unroll 8
        for (std::size_t k = 0; k < 8; ++k) {
          xr[k] = Isa::load(re + j + k * e);
          xi[k] = Isa::load(im + j + k * e);
        }
        bwd4(xr[0], xi[0], xr[1], xi[1], xr[2], xi[2], xr[3], xi[3], w0);
        bwd4(xr[4], xi[4], xr[5], xi[5], xr[6], xi[6], xr[7], xi[7], w1);
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k) {
          const V dr = Isa::sub(xr[k], xr[k + 4]), di = Isa::sub(xi[k], xi[k + 4]);
          emit<Add>(out + j + k * e, Isa::add(xr[k], xr[k + 4]), s_lo);
          emit<Add>(out + m + j + k * e, Isa::add(xi[k], xi[k + 4]), s_lo);
          emit<Add>(out + j + (k + 4) * e, Isa::fmadd(t, di, dr), s_hi);
          emit<Add>(out + m + j + (k + 4) * e, Isa::fnmadd(t, dr, di), s_hi);
        }
      }
    } else {
      const std::size_t q = m / 4;
      for (std::size_t c = 0; c < 4; ++c) backward_rec(p, re + c * q, im + c * q, 2, c);
      const V tr = Isa::set1(rec[rec_tr]), ts = Isa::set1(rec[rec_ts]), tq = Isa::set1(rec[rec_tq]);
      const V sa = Isa::set1(c0), sb = Isa::set1(rec[rec_sre] * c0), sc = Isa::set1(rec[rec_rr] * c0),
              sd = Isa::set1(rec[rec_kappa] * rec[rec_sre] * c0);
      for (std::size_t j = 0; j < q; j += W) {
        const V ar = Isa::load(re + j), ai = Isa::load(im + j);
        const V br = Isa::load(re + j + q), bi = Isa::load(im + j + q);
        const V cr = Isa::load(re + j + 2 * q), ci = Isa::load(im + j + 2 * q);
        const V dr = Isa::load(re + j + 3 * q), di = Isa::load(im + j + 3 * q);
        const V ur = Isa::add(ar, br), ui = Isa::add(ai, bi);
        const V pr = Isa::sub(ar, br), pi = Isa::sub(ai, bi);
        const V vr = Isa::add(cr, dr), vi = Isa::add(ci, di);
        const V qr = Isa::sub(cr, dr), qi = Isa::sub(ci, di);
        emit<Add>(out + j, Isa::add(ur, vr), sa);
        emit<Add>(out + m + j, Isa::add(ui, vi), sa);
        const V xr = Isa::sub(ur, vr), xi = Isa::sub(ui, vi);
        emit<Add>(out + j + 2 * q, Isa::fmadd(tr, xi, xr), sc);
        emit<Add>(out + m + j + 2 * q, Isa::fnmadd(tr, xr, xi), sc);
        const V er = Isa::add(pr, qi), ei = Isa::sub(pi, qr);
        emit<Add>(out + j + q, Isa::fmadd(ts, ei, er), sb);
        emit<Add>(out + m + j + q, Isa::fnmadd(ts, er, ei), sb);
        const V fr = Isa::sub(pr, qi), fi = Isa::add(pi, qr);
        emit<Add>(out + j + 3 * q, Isa::fmadd(tq, fi, fr), sd);
        emit<Add>(out + m + j + 3 * q, Isa::fnmadd(tq, fr, fi), sd);
      }
    }
  }

  static void fill_tables(FftPlan& p) {
    // Pass records at 2^s + b (a pass starting at stage 0 uses index 1); the first pass is
    // radix-2 when the number of pass stages is odd.
    const std::size_t records = std::max<std::size_t>(std::size_t{1} << p.pass_stages, 2);
    p.records = allocate_aligned(records * record_size);
    if (p.pass_stages % 2 == 1) radix2_record(0, 0, p.records.get() + record_size);
    for (unsigned s = p.pass_stages % 2; s + 2 <= p.pass_stages; s += 2)
      for (std::size_t b = 0; b < (std::size_t{1} << s); ++b)
        radix4_record(s, b, p.records.get() + ((std::size_t{1} << s) + b) * record_size);

    if constexpr (W > 1) {
      const std::size_t blocks = p.half / (W * W);
      p.tail = allocate_aligned(blocks * tail_stride);
      const unsigned s0 = p.pass_stages;
      for (std::size_t t = 0; t < blocks; ++t) {
        double* pre = p.tail.get() + t * tail_stride;
        double* post = pre + tail_pre;
        // before the transpose: the tail block and its descendants, broadcast
        radix4_record(s0, t, pre);
        if constexpr (L == 3)
          for (std::size_t c = 0; c < 2; ++c) radix2_record(s0 + 2, 4 * t + 2 * c, pre + rec_count + rec2_count * c);
        // after it: lane g holds group g of the block (W consecutive points)
        for (std::size_t g = 0; g < W; ++g) {
          const std::size_t group = t * W + g;
          radix4_record(s0 + L, group, post + g, W);
          if constexpr (L == 3)
            for (std::size_t c = 0; c < 2; ++c)
              radix2_record(s0 + L + 2, 4 * group + 2 * c, post + (rec_count + rec2_count * c) * W + g, W);
        }
      }
    }
  }
};

inline std::shared_ptr<const FftPlan> make_fft_plan(std::size_t n) {
  if (n < 2 || !is_power_of_two(n))
    throw std::invalid_argument("NegacyclicFft: polynomial size must be a power of two >= 2");
  auto p = std::make_shared<FftPlan>();
  p->n = n;
  p->half = n / 2;
  p->log_half = static_cast<unsigned>(std::countr_zero(p->half));
  p->out_scale = 0x1p-64 / static_cast<double>(p->half);
  constexpr std::size_t w = NativeIsa::width;
  constexpr unsigned l = static_cast<unsigned>(std::countr_zero(w));
  // The register tail needs a whole W x W block; smaller transforms run the scalar kernel.
  p->simd = w > 1 && p->half >= w * w;
  p->pass_stages = p->log_half - (p->simd ? 2 * l : 0);
  if (p->simd) FftKernel<NativeIsa>::fill_tables(*p);
  else FftKernel<ScalarIsa>::fill_tables(*p);
  return p;
}

}  // namespace detail

/// The fast negacyclic FFT (AVX-512 / AVX2+FMA / portable, chosen by the compiler flags).
/// Immutable after construction: every member is const and thread-safe, copies share tables.
class NegacyclicFft {
 public:
  /// N: a power of two >= 2 (the vector kernels start at N = 2 W^2).
  explicit NegacyclicFft(std::size_t polynomial_size) : plan_(detail::make_fft_plan(polynomial_size)) {}

  std::size_t polynomial_size() const noexcept { return plan_->n; }

  /// Signed integer polynomial (N coefficients) -> Fourier domain (N/2 values).
  void forward(std::span<const std::int64_t> in, FourierView out) const {
    check(in.size(), out);
    if (plan_->simd) detail::FftKernel<detail::NativeIsa>::forward(*plan_, in.data(), out.re, out.im);
    else detail::FftKernel<detail::ScalarIsa>::forward(*plan_, in.data(), out.re, out.im);
  }

  /// Torus polynomial, coefficients read as signed int64 in [-2^63, 2^63).
  void forward_torus(std::span<const Torus> in, FourierView out) const {
    // int64_t and uint64_t may alias each other.
    forward(std::span<const std::int64_t>(reinterpret_cast<const std::int64_t*>(in.data()), in.size()), out);
  }

  /// out[j] = round(coefficient j) mod 2^64. `in` is used as scratch and destroyed.
  void backward_torus(FourierView in, std::span<Torus> out) const { backward<false>(in, out); }

  /// out[j] += round(coefficient j) mod 2^64 (wrapping). `in` is destroyed.
  void backward_torus_add(FourierView in, std::span<Torus> out) const { backward<true>(in, out); }

 private:
  template <bool Add>
  void backward(FourierView in, std::span<Torus> out) const {
    check(out.size(), in);
    if (plan_->simd) detail::FftKernel<detail::NativeIsa>::backward<Add>(*plan_, in.re, in.im, out.data());
    else detail::FftKernel<detail::ScalarIsa>::backward<Add>(*plan_, in.re, in.im, out.data());
  }

  void check(std::size_t coefficients, FourierView f) const {
    if (coefficients != plan_->n || f.size != plan_->half)
      throw std::length_error("NegacyclicFft: polynomial or Fourier size does not match N");
  }

  std::shared_ptr<const detail::FftPlan> plan_;
};

static_assert(NegacyclicFftBackend<NegacyclicFft>);

}  // namespace fft
FHETENSOR_END_NAMESPACE
