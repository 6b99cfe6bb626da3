#pragma once
// The functions a lookup table can hold. Each has an integer form (what the table stores,
// applied to the rounded input) and a real form (the float reference mode, applied to the
// exact input), so that quantization error can be measured against the float graph.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct TableFunction {
  std::string name;
  std::function<std::int64_t(std::int64_t)> integer;
  std::function<double(double)> real;

  /// A table from any integer function; its real form evaluates it at the nearest integer.
  template <class F>
    requires std::is_invocable_r_v<std::int64_t, F, std::int64_t>
  static TableFunction from_integer(std::string name, F f) {
    std::function<std::int64_t(std::int64_t)> g = std::move(f);
    return {std::move(name), g, [g](double x) { return static_cast<double>(g(std::llround(x))); }};
  }

  /// outer(inner(x)): two chained tables become one (the fusion pass).
  friend TableFunction compose(const TableFunction& outer, const TableFunction& inner) {
    return {outer.name + "(" + inner.name + ")",
            [o = outer.integer, i = inner.integer](std::int64_t x) { return o(i(x)); },
            [o = outer.real, i = inner.real](double x) { return o(i(x)); }};
  }
  /// a * f(x) + b: a scalar affine step after a table folds into it.
  friend TableFunction affine(const TableFunction& f, std::int64_t a, std::int64_t b) {
    return {std::to_string(a) + "*" + f.name + "+" + std::to_string(b),
            [g = f.integer, a, b](std::int64_t x) { return a * g(x) + b; },
            [g = f.real, a, b](double x) { return static_cast<double>(a) * g(x) + static_cast<double>(b); }};
  }
};

/// Round half away from zero, as std::llround does.
inline std::int64_t round_to_integer(double x) { return std::llround(x); }

namespace table {

inline TableFunction identity() {
  return {"identity", [](std::int64_t x) { return x; }, [](double x) { return x; }};
}
inline TableFunction relu() {
  return {"relu", [](std::int64_t x) { return x > 0 ? x : 0; }, [](double x) { return x > 0 ? x : 0.0; }};
}
inline TableFunction clip(std::int64_t lo, std::int64_t hi) {
  return {"clip[" + std::to_string(lo) + "," + std::to_string(hi) + "]",
          [lo, hi](std::int64_t x) { return x < lo ? lo : x > hi ? hi : x; },
          [lo, hi](double x) { return std::clamp(x, static_cast<double>(lo), static_cast<double>(hi)); }};
}
inline TableFunction sign() {
  return {"sign", [](std::int64_t x) -> std::int64_t { return (x > 0) - (x < 0); },
          [](double x) -> double { return (x > 0) - (x < 0); }};
}
/// x / divisor rounded half away from zero (the mean's division).
inline TableFunction divide(std::int64_t divisor) {
  return {"/" + std::to_string(divisor),
          [divisor](std::int64_t x) {
            const std::int64_t q = (2 * (x < 0 ? -x : x) + divisor) / (2 * divisor);
            return x < 0 ? -q : q;
          },
          [divisor](double x) { return x / static_cast<double>(divisor); }};
}
/// 1 where the predicate holds on x, else 0: comparisons of a - b against 0.
template <class Predicate>
TableFunction indicator(std::string name, Predicate p) {
  return {std::move(name), [p](std::int64_t x) -> std::int64_t { return p(x) ? 1 : 0; },
          [p](double x) -> double { return p(x) ? 1.0 : 0.0; }};
}

/// A real function on quantized values: y = round(f(x * input_scale) / output_scale).
/// The float mode gives the unrounded f(x * input_scale) / output_scale.
template <class F>
TableFunction quantized(std::string name, F f, double input_scale, double output_scale) {
  return {std::move(name),
          [f, input_scale, output_scale](std::int64_t x) {
            return round_to_integer(f(static_cast<double>(x) * input_scale) / output_scale);
          },
          [f, input_scale, output_scale](double x) { return f(x * input_scale) / output_scale; }};
}
inline TableFunction sigmoid(double input_scale, double output_scale) {
  return quantized("sigmoid", [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, input_scale, output_scale);
}
inline TableFunction tanh(double input_scale, double output_scale) {
  return quantized("tanh", [](double v) { return std::tanh(v); }, input_scale, output_scale);
}
/// GELU with the exact erf form (Hendrycks and Gimpel, 2016).
inline TableFunction gelu(double input_scale, double output_scale) {
  return quantized("gelu", [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }, input_scale,
                   output_scale);
}

}  // namespace table

FHETENSOR_END_NAMESPACE
