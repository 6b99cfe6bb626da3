#pragma once
// Three of the four run modes, all in the clear:
//   run_float: the graph over reals, tables applied to unrounded inputs (the reference a
//              quantized model is calibrated against);
//   run_clear: the exact integer computation that encrypted execution reproduces;
//   simulate:  run_clear plus the errors the chosen error probability allows, drawn from
//              the same distribution as the real noise (noise formulas of the chosen set).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <fhetensor/algorithms/noise_formulas.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/runtime/evaluator.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

template <class T>
struct ScalarDomain {
  using Buffer = std::vector<T>;
  Buffer make_buffer(NodeId, std::size_t count) { return Buffer(count, T{}); }
  void axpy(Buffer& out, std::size_t i, std::int64_t c, const Buffer& in, std::size_t j) { out[i] += static_cast<T>(c) * in[j]; }
  void copy(Buffer& out, std::size_t i, const Buffer& in, std::size_t j) { out[i] = in[j]; }
  void add_constant(Buffer& out, std::size_t i, std::int64_t b, NodeId) { out[i] += static_cast<T>(b); }
  void begin_lookups(const std::vector<NodeId>&) {}
};

struct FloatDomain : ScalarDomain<double> {
  const CompiledModel& model;
  explicit FloatDomain(const CompiledModel& m) : model(m) {}
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t) {
    out[i] = model.graph[id].function.real(in[j]);
  }
};

struct ClearDomain : ScalarDomain<std::int64_t> {
  const CompiledModel& model;
  explicit ClearDomain(const CompiledModel& m) : model(m) {}
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t) {
    const LookupPlan& p = *model.nodes[id].lookup;
    out[i] = p.table[static_cast<std::size_t>(p.index_of(in[j]))];
  }
};

/// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014): a counter-based stream, so that a
/// simulation depends on its seed only, not on how threads shared the work.
constexpr std::uint64_t split_mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
/// A standard normal sample for (seed, stream, index), by Box-Muller.
inline double normal_sample(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t a = split_mix(seed ^ split_mix(stream * 0x100000001b3ULL ^ split_mix(index)));
  const std::uint64_t b = split_mix(a);
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1p-53, u2 = static_cast<double>(b >> 11) * 0x1p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

/// What key switching and modulus switching add before a blind rotation (torus units);
/// the compiler gave every node's own variance.
struct NoiseModel {
  double before_rotation = 0;
  static NoiseModel of(const CompiledModel& m) {
    return with_menu_instance(m.instance, []<class I>(std::type_identity<I>) {
      return NoiseModel{noise::keyswitch_variance<I>() + noise::modulus_switch_variance<I>()};
    });
  }
};

struct SimulateDomain : ScalarDomain<std::int64_t> {
  const CompiledModel& model;
  NoiseModel noise_model;
  std::uint64_t seed;
  SimulateDomain(const CompiledModel& m, std::uint64_t s) : model(m), noise_model(NoiseModel::of(m)), seed(s) {}

  // The phase at the blind rotation, in units of the table's step, is the index (plus
  // half an input step when rounding) plus Gaussian noise; the nearest box wins, and
  // boxes past either end wrap negacyclically, negated.
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t) {
    const LookupPlan& p = *model.nodes[id].lookup;
    const double variance = std::ldexp(p.input_variance, 2 * p.input_scale_log2) +
                            noise_model.before_rotation;
    const double step = std::ldexp(1.0, 63 - p.precision);
    const double d = static_cast<double>(in[j] - p.offset);
    const double position = p.shift == 0 ? d : std::ldexp(d, -p.shift) + std::ldexp(1.0, -p.shift - 1);
    const double noisy = position + normal_sample(seed, id, i) * std::sqrt(variance) / step;
    const auto boxes = std::int64_t{1} << p.precision;
    std::int64_t box = static_cast<std::int64_t>(std::floor(noisy + 0.5)) % (2 * boxes);
    if (box < 0) box += 2 * boxes;
    out[i] = box < boxes ? p.table[static_cast<std::size_t>(box)] : -p.table[static_cast<std::size_t>(box - boxes)];
  }

  /// A decryption of output `id`, element i: its noise may also round to a neighbour.
  std::int64_t decrypt(NodeId id, std::size_t i, std::int64_t value) const {
    const double step = std::ldexp(1.0, model.encoding_shift(id));
    const double sigma = std::sqrt(model.nodes[id].variance) / step;
    return value + static_cast<std::int64_t>(std::llround(normal_sample(seed, ~std::uint64_t{id}, i) * sigma));
  }
};

template <class T>
std::vector<std::vector<T>> flatten_inputs(const CompiledModel& m, const std::vector<xt::xarray<T>>& inputs) {
  if (inputs.size() != m.inputs.size())
    throw std::invalid_argument("fhetensor: the model takes " + std::to_string(m.inputs.size()) + " inputs, got " +
                                std::to_string(inputs.size()));
  std::vector<std::vector<T>> flat;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const Node& n = m.graph[m.inputs[k]];
    const Shape shape(inputs[k].shape().begin(), inputs[k].shape().end());
    if (shape != n.shape)
      throw std::invalid_argument("fhetensor: input " + std::to_string(k) + " has shape " + to_string(shape) +
                                  " but the model expects " + to_string(n.shape));
    flat.emplace_back(inputs[k].begin(), inputs[k].end());
    const ValueRange r = m.nodes[m.inputs[k]].range;
    for (T v : flat.back())
      if (v < static_cast<T>(r.lo) || v > static_cast<T>(r.hi))
        throw std::out_of_range("fhetensor: input " + std::to_string(k) + " holds " + std::to_string(v) +
                                ", outside its declared range " + r.to_string());
  }
  return flat;
}

template <class T>
std::vector<xt::xarray<T>> shape_outputs(const CompiledModel& m, std::vector<std::vector<T>> flat) {
  std::vector<xt::xarray<T>> out;
  for (std::size_t k = 0; k < flat.size(); ++k) {
    xt::xarray<T> a = xt::xarray<T>::from_shape(m.graph[m.outputs[k]].shape);
    std::copy(flat[k].begin(), flat[k].end(), a.begin());
    out.push_back(std::move(a));
  }
  return out;
}

template <class T, class D>
std::vector<xt::xarray<T>> run_scalar_mode(const CompiledModel& m, D& domain, const std::vector<xt::xarray<T>>& inputs,
                                           RunOptions options) {
  return shape_outputs(m, Evaluator<D>(m, domain, std::move(options)).run(flatten_inputs(m, inputs)));
}

}  // namespace detail

inline std::vector<xt::xarray<double>> run_float(const CompiledModel& m, const std::vector<xt::xarray<double>>& inputs,
                                                 RunOptions options = {}) {
  detail::FloatDomain domain(m);
  return detail::run_scalar_mode(m, domain, inputs, std::move(options));
}

inline std::vector<ClearTensor> run_clear(const CompiledModel& m, const std::vector<ClearTensor>& inputs, RunOptions options = {}) {
  detail::ClearDomain domain(m);
  return detail::run_scalar_mode(m, domain, inputs, std::move(options));
}

inline std::vector<ClearTensor> simulate(const CompiledModel& m, const std::vector<ClearTensor>& inputs, std::uint64_t seed,
                                         RunOptions options = {}) {
  detail::SimulateDomain domain(m, seed);
  auto outputs = detail::run_scalar_mode(m, domain, inputs, std::move(options));
  for (std::size_t k = 0; k < outputs.size(); ++k)
    for (std::size_t i = 0; i < outputs[k].size(); ++i) outputs[k].flat(i) = domain.decrypt(m.outputs[k], i, outputs[k].flat(i));
  return outputs;
}

FHETENSOR_END_NAMESPACE
