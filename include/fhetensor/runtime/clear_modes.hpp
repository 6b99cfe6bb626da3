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
    const Node& n = model.graph[id];
    out[i] = n.functions[n.table_index(i)].real(in[j]);
  }
};

struct ClearDomain : ScalarDomain<std::int64_t> {
  const CompiledModel& model;
  explicit ClearDomain(const CompiledModel& m) : model(m) {}
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t) {
    const LookupPlan& p = *model.nodes[id].lookup;
    out[i] = p.apply(p.tables[model.graph[id].table_index(i)], in[j]);
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

struct SimulateDomain : ScalarDomain<std::int64_t> {
  const CompiledModel& model;
  std::uint64_t seed;
  SimulateDomain(const CompiledModel& m, std::uint64_t s) : model(m), seed(s) {}

  // The phase at the blind rotation, in units of the table's step, is the index (plus
  // half an input step when rounding) plus Gaussian noise; the nearest box wins, and
  // boxes past either end wrap negacyclically, negated.
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t) {
    const LookupPlan& p = *model.nodes[id].lookup;
    // The noise, in units of a box, moves the noiseless phase (where within its box it
    // sits matters for approximate rounding) into a neighbouring box.
    const int box_bits = 63 - p.precision;
    const std::uint64_t phase = p.phase_of(in[j]);
    const double within = std::ldexp(static_cast<double>(phase & ((std::uint64_t{1} << box_bits) - 1)), -box_bits);
    const double noise = normal_sample(seed, id, i) * p.noise_in_boxes();
    const auto moved = static_cast<std::uint64_t>(static_cast<std::int64_t>(std::floor(within + noise)));
    const std::uint64_t box = ((phase >> box_bits) + moved) & ((std::uint64_t{2} << p.precision) - 1);
    out[i] = p.output_of_box(p.tables[model.graph[id].table_index(i)], box);
  }

  /// A decryption of output `id`, element i: its noise may also round to a neighbour.
  std::int64_t decrypt(NodeId id, std::size_t i, std::int64_t value) const {
    const double step = std::ldexp(1.0, model.encoding_shift(id));
    const double sigma = std::sqrt(model.nodes[id].variance) / step;
    return model.decoded(id, value + static_cast<std::int64_t>(std::llround(normal_sample(seed, ~std::uint64_t{id}, i) * sigma)));
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
  for (const Node& n : m.graph.nodes())
    for (const TableFunction& f : n.functions)
      if (!f.real)
        throw std::invalid_argument("fhetensor: the float mode needs the model's functions; a model loaded from a file holds "
                                    "only their tables (it runs in the clear, simulated and encrypted modes)");
  detail::FloatDomain domain(m);
  return detail::run_scalar_mode(m, domain, inputs, std::move(options));
}

inline std::vector<ClearTensor> run_clear(const CompiledModel& m, const std::vector<ClearTensor>& inputs, RunOptions options = {}) {
  detail::ClearDomain domain(m);
  auto outputs = detail::run_scalar_mode(m, domain, inputs, std::move(options));
  for (std::size_t k = 0; k < outputs.size(); ++k)
    for (auto& v : outputs[k]) v = m.decoded(m.outputs[k], v);
  return outputs;
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
