#pragma once
// FFTW3 negacyclic FFT: the textbook route (fold, twist by exp(i pi j / N), M-point complex
// DFT), used to cross-check NegacyclicFft and as the speed baseline. Same interface; its
// Fourier domain is in natural order, so spectra are not interchangeable between backends.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numbers>
#include <span>
#include <stdexcept>

#include <fftw3.h>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/fft/fourier_polynomial.hpp>
#include <fhetensor/fft/negacyclic_fft.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace fft {

/// FFTW's planner (plan creation and destruction) is not thread-safe; all of fhetensor's
/// FFTW planning holds this lock. Executing a plan is thread-safe.
inline std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

class FftwNegacyclicFft {
 public:
  /// N: a power of two >= 2. The plan is created once (FFTW_MEASURE by default; tests pass
  /// FFTW_ESTIMATE to save planning time) and executed on the caller's split arrays.
  explicit FftwNegacyclicFft(std::size_t polynomial_size, unsigned planner_flags = FFTW_MEASURE)
      : state_(make_state(polynomial_size, planner_flags)) {}

  std::size_t polynomial_size() const noexcept { return state_->n; }

  void forward(std::span<const std::int64_t> in, FourierView out) const {
    check(in.size(), out);
    if (state_->vector) twist<detail::NativeIsa>(in.data(), out);
    else twist<detail::ScalarIsa>(in.data(), out);
    // FFTW's split transform has sign -1; swapping re and im gives sign +1, which evaluates
    // at zeta^(4k+1). The swap changes the re/im separation, hence a plan of its own.
    fftw_execute_split_dft(state_->plan_positive, out.im, out.re, out.im, out.re);
  }

  void forward_torus(std::span<const Torus> in, FourierView out) const {
    forward(std::span<const std::int64_t>(reinterpret_cast<const std::int64_t*>(in.data()), in.size()), out);
  }

  void backward_torus(FourierView in, std::span<Torus> out) const { backward<false>(in, out); }
  void backward_torus_add(FourierView in, std::span<Torus> out) const { backward<true>(in, out); }

 private:
  struct State {
    std::size_t n = 0, half = 0;
    bool vector = false;
    std::ptrdiff_t separation = 0;           // im - re of the arrays planned for
    fftw_plan plan_negative = nullptr;       // sign -1, executed on (re, im)
    fftw_plan plan_positive = nullptr;       // sign -1 executed on (im, re): sign +1
    detail::AlignedDoubles twist_re, twist_im;      // exp(i pi j / N)
    detail::AlignedDoubles untwist_re, untwist_im;  // exp(-i pi j / N) 2^-64 / M
    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
      std::lock_guard lock(fftw_planner_mutex());
      if (plan_negative) fftw_destroy_plan(plan_negative);
      if (plan_positive) fftw_destroy_plan(plan_positive);
    }
  };

  static std::shared_ptr<const State> make_state(std::size_t n, unsigned flags) {
    if (n < 2 || !detail::is_power_of_two(n))
      throw std::invalid_argument("FftwNegacyclicFft: polynomial size must be a power of two >= 2");
    auto s = std::make_shared<State>();
    s->n = n;
    s->half = n / 2;
    s->vector = s->half % detail::NativeIsa::width == 0;
    s->twist_re = detail::allocate_aligned(s->half);
    s->twist_im = detail::allocate_aligned(s->half);
    s->untwist_re = detail::allocate_aligned(s->half);
    s->untwist_im = detail::allocate_aligned(s->half);
    // 2^-64: the output conversion takes values pre-scaled by 2^-64 (see torus_from_scaled)
    const long double scale = 0x1p-64L / static_cast<long double>(s->half);
    for (std::size_t j = 0; j < s->half; ++j) {
      const long double angle =
          std::numbers::pi_v<long double> * static_cast<long double>(j) / static_cast<long double>(n);
      const long double c = std::cos(angle), sn = std::sin(angle);
      s->twist_re[j] = static_cast<double>(c);
      s->twist_im[j] = static_cast<double>(sn);
      s->untwist_re[j] = static_cast<double>(c * scale);
      s->untwist_im[j] = static_cast<double>(-sn * scale);
    }
    // Plan in place on scratch laid out like a FourierPolynomial: FFTW's new-array execute
    // requires the same alignment and the same separation im - re as at planning time.
    const std::size_t stride = detail::fourier_stride(s->half);
    auto scratch = detail::allocate_aligned(2 * stride);
    double* re = scratch.get();
    double* im = re + stride;
    s->separation = static_cast<std::ptrdiff_t>(stride);
    fftw_iodim dim{static_cast<int>(s->half), 1, 1};
    {
      std::lock_guard lock(fftw_planner_mutex());
      s->plan_negative = fftw_plan_guru_split_dft(1, &dim, 0, nullptr, re, im, re, im, flags);
      s->plan_positive = fftw_plan_guru_split_dft(1, &dim, 0, nullptr, im, re, im, re, flags);
    }
    if (!s->plan_negative || !s->plan_positive)
      throw std::runtime_error("FftwNegacyclicFft: FFTW could not create a plan");
    return s;
  }

  // z_j = (a_j + i a_{j+M}) exp(i pi j / N)
  template <class Isa>
  void twist(const std::int64_t* in, FourierView out) const {
    const State& s = *state_;
    const std::size_t m = s.half;
    for (std::size_t j = 0; j < m; j += Isa::width) {
      const auto ar = Isa::load_int(in + j), ai = Isa::load_int(in + m + j);
      const auto tr = Isa::load(s.twist_re.get() + j), ti = Isa::load(s.twist_im.get() + j);
      Isa::store(out.re + j, Isa::fmsub(ar, tr, Isa::mul(ai, ti)));
      Isa::store(out.im + j, Isa::fmadd(ar, ti, Isa::mul(ai, tr)));
    }
  }

  template <class Isa, bool Add>
  void untwist(FourierView in, std::uint64_t* out) const {
    const State& s = *state_;
    const std::size_t m = s.half;
    for (std::size_t j = 0; j < m; j += Isa::width) {
      const auto zr = Isa::load(in.re + j), zi = Isa::load(in.im + j);
      const auto tr = Isa::load(s.untwist_re.get() + j), ti = Isa::load(s.untwist_im.get() + j);
      const auto yr = Isa::fmsub(zr, tr, Isa::mul(zi, ti));
      const auto yi = Isa::fmadd(zr, ti, Isa::mul(zi, tr));
      if constexpr (Add) {
        Isa::add_torus(out + j, yr);
        Isa::add_torus(out + m + j, yi);
      } else {
        Isa::store_torus(out + j, yr);
        Isa::store_torus(out + m + j, yi);
      }
    }
  }

  template <bool Add>
  void backward(FourierView in, std::span<Torus> out) const {
    check(out.size(), in);
    fftw_execute_split_dft(state_->plan_negative, in.re, in.im, in.re, in.im);  // sign -1
    if (state_->vector) untwist<detail::NativeIsa, Add>(in, out.data());
    else untwist<detail::ScalarIsa, Add>(in, out.data());
  }

  // Also enforces FFTW's new-array rules: arrays laid out as in a FourierPolynomial.
  void check(std::size_t coefficients, FourierView f) const {
    if (coefficients != state_->n || f.size != state_->half)
      throw std::length_error("FftwNegacyclicFft: polynomial or Fourier size does not match N");
    if (f.im - f.re != state_->separation ||
        reinterpret_cast<std::uintptr_t>(f.re) % detail::fourier_alignment != 0)
      throw std::invalid_argument(
          "FftwNegacyclicFft: Fourier arrays must be laid out as in a FourierPolynomial");
  }

  std::shared_ptr<const State> state_;
};

static_assert(NegacyclicFftBackend<FftwNegacyclicFft>);

}  // namespace fft
FHETENSOR_END_NAMESPACE
