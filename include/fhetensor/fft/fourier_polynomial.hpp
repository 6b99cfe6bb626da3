#pragma once
// Fourier-domain polynomials for the negacyclic FFT: N/2 complex values in split format
// (re[] and im[] separate, each 64-byte aligned so one AVX-512 load covers 8 values), and
// the pointwise multiply-accumulate that is the hot loop of TFHE's external product.
//
// This header also holds the compile-time ISA selection shared by the FFT backends: the
// compiler's -m flags choose AVX-512 (8 doubles), AVX2+FMA (4 doubles) or portable scalar
// code; there is no runtime dispatch. Every translation unit of a program must therefore be
// compiled with the same ISA flags (the inline functions differ between ISAs).
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define FHETENSOR_FFT_ISA_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__FMA__)
#define FHETENSOR_FFT_ISA_AVX2 1
#include <immintrin.h>
#endif

#if defined(__GNUC__)
#define FHETENSOR_FFT_INLINE [[gnu::always_inline]] inline
#else
#define FHETENSOR_FFT_INLINE inline
#endif

// Whether every multiply-add of the FFT kernels is a single-rounding FMA (error model).
#if defined(FHETENSOR_FFT_ISA_AVX512) || defined(FHETENSOR_FFT_ISA_AVX2) || defined(FP_FAST_FMA)
#define FHETENSOR_FFT_FUSED 1
#else
#define FHETENSOR_FFT_FUSED 0
#endif

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace fft {

/// Mutable view of a Fourier-domain polynomial: `size` = N/2 complex values.
struct FourierView {
  double* re = nullptr;
  double* im = nullptr;
  std::size_t size = 0;
};

/// Read-only view; implicitly constructible from FourierView.
struct FourierConstView {
  const double* re = nullptr;
  const double* im = nullptr;
  std::size_t size = 0;

  constexpr FourierConstView() noexcept = default;
  constexpr FourierConstView(const double* re_, const double* im_, std::size_t size_) noexcept
      : re(re_), im(im_), size(size_) {}
  constexpr FourierConstView(FourierView v) noexcept : re(v.re), im(v.im), size(v.size) {}
};

namespace detail {

inline constexpr std::size_t fourier_alignment = 64;  // bytes: one cache line, one zmm

struct AlignedFree {
  void operator()(double* p) const noexcept {
    ::operator delete[](p, std::align_val_t{fourier_alignment});
  }
};
using AlignedDoubles = std::unique_ptr<double[], AlignedFree>;

/// `count` doubles, 64-byte aligned, zero-initialised.
inline AlignedDoubles allocate_aligned(std::size_t count) {
  if (count == 0) return {};
  auto* p = static_cast<double*>(
      ::operator new[](count * sizeof(double), std::align_val_t{fourier_alignment}));
  std::memset(p, 0, count * sizeof(double));
  return AlignedDoubles(p);
}

/// Rounds `count` doubles up to a whole number of 64-byte lines.
constexpr std::size_t padded_doubles(std::size_t count) noexcept {
  constexpr std::size_t per_line = fourier_alignment / sizeof(double);
  return (count + per_line - 1) / per_line * per_line;
}

/// Doubles from re[0] to im[0] in a FourierPolynomial: whole 64-byte lines plus one more, so
/// that re[j] and im[j] never sit a multiple of 4 KiB apart (same L1 set, false store
/// forwarding) for power-of-two sizes.
constexpr std::size_t fourier_stride(std::size_t count) noexcept {
  return padded_doubles(count) + (count >= 64 ? 8 : 0);
}

constexpr bool is_power_of_two(std::size_t x) noexcept { return x != 0 && (x & (x - 1)) == 0; }

// ---------------------------------------------------------------------------------------
// ISA policies. Each provides a vector of `width` doubles and the handful of operations the
// FFT needs, including the int64 -> double load and the double -> (round, mod 2^64) store.
// The FFT code is written once against this interface.

/// Rounds to the nearest integer (current rounding mode, like std::nearbyint) without the
/// libm call that baseline x86-64 needs: adding 1.5 * 2^52 leaves no fraction bits.
inline double round_to_integer(double x) noexcept {
#if defined(__FAST_MATH__)
  return std::nearbyint(x);  // the magic-number sum would be folded away
#else
  constexpr double magic = 0x1.8p52;
  const double ax = std::fabs(x);
  if (ax < 0x1p51) return (x + magic) - magic;
  if (ax >= 0x1p52) return x;  // already an integer
  return std::nearbyint(x);
#endif
}

/// round(z 2^64) mod 2^64 for any finite z: the FFT outputs arrive pre-scaled by 2^-64 so that
/// the reduction is z - round(z), which is exact (both are multiples of ulp(z) and the result
/// is no larger than z), and 2^64 (z - round(z)) is exact too (docs/fft.md).
inline std::uint64_t torus_from_scaled(double z) noexcept {
  const double f = z - round_to_integer(z);  // in [-1/2, 1/2]
  double y = round_to_integer(f * 0x1p64);   // in [-2^63, 2^63]
  if (y >= 0x1p63) y -= 0x1p64;
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(y));
}

struct ScalarIsa {
  static constexpr std::size_t width = 1;
  using Vec = double;
  static Vec load(const double* p) noexcept { return *p; }
  static void store(double* p, Vec v) noexcept { *p = v; }
  static Vec set1(double x) noexcept { return x; }
  static Vec add(Vec a, Vec b) noexcept { return a + b; }
  static Vec sub(Vec a, Vec b) noexcept { return a - b; }
  static Vec mul(Vec a, Vec b) noexcept { return a * b; }
  // True FMAs where the hardware has them (then every kernel rounds once per FMA, like the
  // vector paths); otherwise a product and a sum, which the error bound also covers.
#if defined(FP_FAST_FMA)
  static Vec fmadd(Vec a, Vec b, Vec c) noexcept { return std::fma(a, b, c); }
  static Vec fmsub(Vec a, Vec b, Vec c) noexcept { return std::fma(a, b, -c); }
  static Vec fnmadd(Vec a, Vec b, Vec c) noexcept { return std::fma(-a, b, c); }
  static Vec fnmsub(Vec a, Vec b, Vec c) noexcept { return -std::fma(a, b, c); }
#else
  static Vec fmadd(Vec a, Vec b, Vec c) noexcept { return a * b + c; }
  static Vec fmsub(Vec a, Vec b, Vec c) noexcept { return a * b - c; }
  static Vec fnmadd(Vec a, Vec b, Vec c) noexcept { return c - a * b; }
  static Vec fnmsub(Vec a, Vec b, Vec c) noexcept { return -(a * b) - c; }
#endif
  static Vec load_int(const std::int64_t* p) noexcept { return static_cast<double>(*p); }
  // *p = (or +=) round(z 2^64) mod 2^64
  static void store_torus(std::uint64_t* p, Vec z) noexcept { *p = torus_from_scaled(z); }
  static void add_torus(std::uint64_t* p, Vec z) noexcept { *p += torus_from_scaled(z); }
  static void transpose(Vec (&)[1]) noexcept {}
};

#if defined(FHETENSOR_FFT_ISA_AVX512)
struct Avx512Isa {
  static constexpr std::size_t width = 8;
  using Vec = __m512d;
  FHETENSOR_FFT_INLINE static Vec load(const double* p) noexcept { return _mm512_loadu_pd(p); }
  FHETENSOR_FFT_INLINE static void store(double* p, Vec v) noexcept { _mm512_storeu_pd(p, v); }
  FHETENSOR_FFT_INLINE static Vec set1(double x) noexcept { return _mm512_set1_pd(x); }
  FHETENSOR_FFT_INLINE static Vec add(Vec a, Vec b) noexcept { return _mm512_add_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec sub(Vec a, Vec b) noexcept { return _mm512_sub_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec mul(Vec a, Vec b) noexcept { return _mm512_mul_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec fmadd(Vec a, Vec b, Vec c) noexcept { return _mm512_fmadd_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fmsub(Vec a, Vec b, Vec c) noexcept { return _mm512_fmsub_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fnmadd(Vec a, Vec b, Vec c) noexcept { return _mm512_fnmadd_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fnmsub(Vec a, Vec b, Vec c) noexcept { return _mm512_fnmsub_pd(a, b, c); }
  // vcvtqq2pd (AVX-512DQ): exact for |x| <= 2^53, correctly rounded above.
  FHETENSOR_FFT_INLINE static Vec load_int(const std::int64_t* p) noexcept {
    return _mm512_cvtepi64_pd(_mm512_loadu_si512(p));
  }
  // round(z 2^64) mod 2^64: vreducepd gives z - round(z) exactly, 2^64 times that is an
  // exact y in [-2^63, 2^63], and vcvtpd2qq rounds it to the nearest integer. Its
  // out-of-range answer for y = 2^63 is 0x8000000000000000 = 2^63 mod 2^64: the right one.
  // (maskz form: the plain intrinsic trips GCC 12's -Wuninitialized.)
  FHETENSOR_FFT_INLINE static __m512i to_torus(Vec z) noexcept {
    const Vec f = _mm512_maskz_reduce_pd(0xff, z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const Vec y = _mm512_mul_pd(f, _mm512_set1_pd(0x1p64));
    return _mm512_cvt_roundpd_epi64(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  FHETENSOR_FFT_INLINE static void store_torus(std::uint64_t* p, Vec z) noexcept {
    _mm512_storeu_si512(p, to_torus(z));
  }
  FHETENSOR_FFT_INLINE static void add_torus(std::uint64_t* p, Vec z) noexcept {
    _mm512_storeu_si512(p, _mm512_add_epi64(_mm512_loadu_si512(p), to_torus(z)));
  }
  // 8x8 transpose: unpack pairs, then two rounds of 128-bit-lane shuffles (24 shuffles).
  // GCC 12's _mm512_unpack*/_mm512_shuffle_f64x2 trip -Wuninitialized (their undefined
  // pass-through operand); the generic shuffle builtin compiles to the same instructions.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
  FHETENSOR_FFT_INLINE static Vec unpacklo(Vec a, Vec b) noexcept {
    return __builtin_shufflevector(a, b, 0, 8, 2, 10, 4, 12, 6, 14);
  }
  FHETENSOR_FFT_INLINE static Vec unpackhi(Vec a, Vec b) noexcept {
    return __builtin_shufflevector(a, b, 1, 9, 3, 11, 5, 13, 7, 15);
  }
  FHETENSOR_FFT_INLINE static Vec even_lanes(Vec a, Vec b) noexcept {  // vshuff64x2 0x88
    return __builtin_shufflevector(a, b, 0, 1, 4, 5, 8, 9, 12, 13);
  }
  FHETENSOR_FFT_INLINE static Vec odd_lanes(Vec a, Vec b) noexcept {  // vshuff64x2 0xdd
    return __builtin_shufflevector(a, b, 2, 3, 6, 7, 10, 11, 14, 15);
  }
#else
  FHETENSOR_FFT_INLINE static Vec unpacklo(Vec a, Vec b) noexcept { return _mm512_unpacklo_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec unpackhi(Vec a, Vec b) noexcept { return _mm512_unpackhi_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec even_lanes(Vec a, Vec b) noexcept { return _mm512_shuffle_f64x2(a, b, 0x88); }
  FHETENSOR_FFT_INLINE static Vec odd_lanes(Vec a, Vec b) noexcept { return _mm512_shuffle_f64x2(a, b, 0xdd); }
#endif
  FHETENSOR_FFT_INLINE static void transpose(Vec (&v)[8]) noexcept {
    const Vec t0 = unpacklo(v[0], v[1]), t1 = unpackhi(v[0], v[1]);
    const Vec t2 = unpacklo(v[2], v[3]), t3 = unpackhi(v[2], v[3]);
    const Vec t4 = unpacklo(v[4], v[5]), t5 = unpackhi(v[4], v[5]);
    const Vec t6 = unpacklo(v[6], v[7]), t7 = unpackhi(v[6], v[7]);
    const Vec s0 = even_lanes(t0, t2), s1 = odd_lanes(t0, t2);
    const Vec s2 = even_lanes(t1, t3), s3 = odd_lanes(t1, t3);
    const Vec s4 = even_lanes(t4, t6), s5 = odd_lanes(t4, t6);
    const Vec s6 = even_lanes(t5, t7), s7 = odd_lanes(t5, t7);
    v[0] = even_lanes(s0, s4);
    v[4] = odd_lanes(s0, s4);
    v[2] = even_lanes(s1, s5);
    v[6] = odd_lanes(s1, s5);
    v[1] = even_lanes(s2, s6);
    v[5] = odd_lanes(s2, s6);
    v[3] = even_lanes(s3, s7);
    v[7] = odd_lanes(s3, s7);
  }
};
using NativeIsa = Avx512Isa;
#elif defined(FHETENSOR_FFT_ISA_AVX2)
struct Avx2Isa {
  static constexpr std::size_t width = 4;
  using Vec = __m256d;
  FHETENSOR_FFT_INLINE static Vec load(const double* p) noexcept { return _mm256_loadu_pd(p); }
  FHETENSOR_FFT_INLINE static void store(double* p, Vec v) noexcept { _mm256_storeu_pd(p, v); }
  FHETENSOR_FFT_INLINE static Vec set1(double x) noexcept { return _mm256_set1_pd(x); }
  FHETENSOR_FFT_INLINE static Vec add(Vec a, Vec b) noexcept { return _mm256_add_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec sub(Vec a, Vec b) noexcept { return _mm256_sub_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec mul(Vec a, Vec b) noexcept { return _mm256_mul_pd(a, b); }
  FHETENSOR_FFT_INLINE static Vec fmadd(Vec a, Vec b, Vec c) noexcept { return _mm256_fmadd_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fmsub(Vec a, Vec b, Vec c) noexcept { return _mm256_fmsub_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fnmadd(Vec a, Vec b, Vec c) noexcept { return _mm256_fnmadd_pd(a, b, c); }
  FHETENSOR_FFT_INLINE static Vec fnmsub(Vec a, Vec b, Vec c) noexcept { return _mm256_fnmsub_pd(a, b, c); }
  // AVX2 has no int64 -> double conversion. Split x = hi 2^32 + lo and let the FPU build
  // each half from magic exponents: 2^52 + lo exactly, and 2^84 + 2^63 + hi 2^32 exactly
  // (bit 31 of hi flipped makes it unsigned); subtracting 2^84 + 2^63 + 2^52 is exact and
  // the final addition rounds once, so the result is correctly rounded like vcvtqq2pd.
  FHETENSOR_FFT_INLINE static Vec load_int(const std::int64_t* p) noexcept {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i lo = _mm256_blend_epi32(_mm256_set1_epi64x(0x4330000000000000), x, 0x55);
    const __m256i hi = _mm256_xor_si256(_mm256_srli_epi64(x, 32),
                                        _mm256_set1_epi64x(0x4530000080000000));
    const Vec hi_d = _mm256_sub_pd(_mm256_castsi256_pd(hi),
                                   _mm256_castsi256_pd(_mm256_set1_epi64x(0x4530000080100000)));
    return _mm256_add_pd(hi_d, _mm256_castsi256_pd(lo));
  }
  // round(z 2^64) mod 2^64: y = 2^64 (z - round(z)) in [-2^63, 2^63] exactly, as in the
  // AVX-512 path; then split round(y) = hi 2^32 + lo with lo in [0, 2^32) and read both halves
  // out of magic-number sums.
  FHETENSOR_FFT_INLINE static __m256i to_torus(Vec z) noexcept {
    constexpr int nearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const Vec f = _mm256_sub_pd(z, _mm256_round_pd(z, nearest));
    const Vec y = _mm256_round_pd(_mm256_mul_pd(f, _mm256_set1_pd(0x1p64)), nearest);
    const Vec hi = _mm256_floor_pd(_mm256_mul_pd(y, _mm256_set1_pd(0x1p-32)));
    const Vec lo = _mm256_fnmadd_pd(hi, _mm256_set1_pd(0x1p32), y);
    const __m256i hi_bits =
        _mm256_castpd_si256(_mm256_add_pd(hi, _mm256_set1_pd(0x1.8p52)));  // low bits: hi
    const __m256i lo_bits =
        _mm256_castpd_si256(_mm256_add_pd(lo, _mm256_set1_pd(0x1p52)));  // low 32 bits: lo
    return _mm256_blend_epi32(_mm256_slli_epi64(hi_bits, 32), lo_bits, 0x55);
  }
  FHETENSOR_FFT_INLINE static void store_torus(std::uint64_t* p, Vec z) noexcept {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_torus(z));
  }
  FHETENSOR_FFT_INLINE static void add_torus(std::uint64_t* p, Vec z) noexcept {
    auto* q = reinterpret_cast<__m256i*>(p);
    _mm256_storeu_si256(q, _mm256_add_epi64(_mm256_loadu_si256(q), to_torus(z)));
  }
  FHETENSOR_FFT_INLINE static void transpose(Vec (&v)[4]) noexcept {
    const Vec t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
    const Vec t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
};
using NativeIsa = Avx2Isa;
#else
using NativeIsa = ScalarIsa;
#endif

}  // namespace detail

/// Owning Fourier-domain polynomial (N/2 complex values, split and aligned).
class FourierPolynomial {
 public:
  FourierPolynomial() = default;

  /// Holds N/2 complex zeros. N must be a power of two, N >= 2.
  explicit FourierPolynomial(std::size_t polynomial_size)
      : size_(polynomial_size / 2), stride_(detail::fourier_stride(polynomial_size / 2)) {
    if (polynomial_size < 2 || !detail::is_power_of_two(polynomial_size))
      throw std::invalid_argument("FourierPolynomial: polynomial size must be a power of two >= 2");
    data_ = detail::allocate_aligned(2 * stride_);
  }

  FourierPolynomial(const FourierPolynomial& other)
      : size_(other.size_), stride_(other.stride_), data_(detail::allocate_aligned(2 * other.stride_)) {
    if (data_) std::memcpy(data_.get(), other.data_.get(), 2 * stride_ * sizeof(double));
  }
  FourierPolynomial& operator=(const FourierPolynomial& other) {
    if (this != &other) *this = FourierPolynomial(other);
    return *this;
  }
  FourierPolynomial(FourierPolynomial&& other) noexcept
      : size_(std::exchange(other.size_, 0)),
        stride_(std::exchange(other.stride_, 0)),
        data_(std::move(other.data_)) {}
  FourierPolynomial& operator=(FourierPolynomial&& other) noexcept {
    size_ = std::exchange(other.size_, 0);
    stride_ = std::exchange(other.stride_, 0);
    data_ = std::move(other.data_);
    return *this;
  }
  ~FourierPolynomial() = default;

  std::size_t polynomial_size() const noexcept { return 2 * size_; }

  FourierView view() noexcept { return {data_.get(), im_ptr(), size_}; }
  FourierConstView view() const noexcept { return {data_.get(), im_ptr(), size_}; }

  void fill_zero() noexcept {
    if (data_) std::memset(data_.get(), 0, 2 * stride_ * sizeof(double));
  }

 private:
  double* im_ptr() const noexcept { return data_ ? data_.get() + stride_ : nullptr; }

  std::size_t size_ = 0;    // complex values, N/2
  std::size_t stride_ = 0;  // doubles from re[0] to im[0]: size_ rounded up to 64 bytes
  detail::AlignedDoubles data_;
};

namespace detail {
/// out = (accumulate ? out : 0) + a * b, pointwise: one loop for both entry points.
template <bool Accumulate>
inline void fourier_product(FourierView out, FourierConstView a, FourierConstView b) noexcept {
  assert(out.size == a.size && out.size == b.size);
  using Isa = NativeIsa;
  constexpr std::size_t w = Isa::width;
  const std::size_t n = out.size;
  const std::size_t vector_end = n / w * w;
  for (std::size_t j = 0; j < vector_end; j += w) {
    const auto ar = Isa::load(a.re + j), ai = Isa::load(a.im + j);
    const auto br = Isa::load(b.re + j), bi = Isa::load(b.im + j);
    if constexpr (Accumulate) {
      const auto cr = Isa::load(out.re + j), ci = Isa::load(out.im + j);
      Isa::store(out.re + j, Isa::fnmadd(ai, bi, Isa::fmadd(ar, br, cr)));
      Isa::store(out.im + j, Isa::fmadd(ai, br, Isa::fmadd(ar, bi, ci)));
    } else {
      Isa::store(out.re + j, Isa::fnmadd(ai, bi, Isa::mul(ar, br)));
      Isa::store(out.im + j, Isa::fmadd(ai, br, Isa::mul(ar, bi)));
    }
  }
  for (std::size_t j = vector_end; j < n; ++j) {  // N < 2 W only
    const double ar = a.re[j], ai = a.im[j], br = b.re[j], bi = b.im[j];
    const double cr = Accumulate ? out.re[j] : 0.0, ci = Accumulate ? out.im[j] : 0.0;
    out.re[j] = (cr + ar * br) - ai * bi;
    out.im[j] = (ci + ar * bi) + ai * br;
  }
}
}  // namespace detail

/// acc += a * b, pointwise over the N/2 complex values (all three views the same size).
/// Each value is acc + a.re b.re - a.im b.im (resp. acc + a.re b.im + a.im b.re) with two
/// FMAs, so accumulating into zero rounds like one complex product with an FMA.
inline void fourier_multiply_add(FourierView acc, FourierConstView a, FourierConstView b) noexcept {
  detail::fourier_product<true>(acc, a, b);
}

/// out = a * b, pointwise: the first term of a sum, with no zeroing pass before it.
inline void fourier_multiply(FourierView out, FourierConstView a, FourierConstView b) noexcept {
  detail::fourier_product<false>(out, a, b);
}

}  // namespace fft
FHETENSOR_END_NAMESPACE
