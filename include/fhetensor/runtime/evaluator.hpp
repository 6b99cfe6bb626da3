#pragma once
// One evaluator for the four run modes. A mode is a Domain: what a value is (a double, an
// integer, a ciphertext) and how a lookup is applied; the linear kernels are written once
// over it. Nodes run by levels of lookups: every table of one level runs in a single
// parallel loop, so independent bootstraps keep both cores busy.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/runtime/checkpoint.hpp>
#include <fhetensor/runtime/progress.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct RunOptions {
  std::size_t threads = default_thread_count();
  ProgressCallback progress{};  // e.g. terminal_progress_bar()
  LevelCallback on_level{};     // each level of bootstraps with its time, when it ends
  /// Encrypted runs (run()) only: the state is saved there after each level, and a run
  /// started again resumes from the last save (runtime/checkpoint.hpp).
  std::shared_ptr<RunCheckpoint> checkpoint{};
};

/// What every run mode provides to the evaluator.
template <class D>
concept Domain = requires(D& d, typename D::Buffer& out, const typename D::Buffer& in, std::size_t i, NodeId id) {
  { d.make_buffer(id, i) } -> std::same_as<typename D::Buffer>;
  d.axpy(out, i, std::int64_t{}, in, i);  // out[i] += c * in[j]
  d.copy(out, i, in, i);
  d.add_constant(out, i, std::int64_t{}, id);
  d.lookup(id, in, i, out, i, i);  // out[i] = table(in[j]), on worker w
  d.begin_lookups(std::vector<NodeId>{});
};

/// One element of a level's lookups: out[i] = table(in[j]) for node `id`.
template <class Buffer>
struct LookupItem {
  NodeId id;
  const Buffer* in;
  std::size_t j;
  Buffer* out;
  std::size_t i;
};

/// The evaluator gathers a batch of lookups on the stack: at most this many.
inline constexpr std::size_t max_lookup_batch = 8;

/// A domain that applies up to D::lookup_batch_size lookups at once (encrypted: one pass
/// over the bootstrapping key for the batch).
template <class D>
concept BatchedDomain = Domain<D> && requires(D& d, std::span<const LookupItem<typename D::Buffer>> items, std::size_t w) {
  requires D::lookup_batch_size >= 1 && D::lookup_batch_size <= max_lookup_batch;
  d.lookup_batch(items, w);
};

namespace detail {

/// Level of a node: the number of lookups on its longest path from an input.
inline std::vector<std::size_t> lookup_levels(const Graph& g) {
  std::vector<std::size_t> level(g.size(), 0);
  for (NodeId id = 0; id < g.size(); ++id) {
    for (NodeId o : g[id].operands) level[id] = std::max(level[id], level[o]);
    if (g[id].is_lookup()) ++level[id];
  }
  return level;
}

/// The step of the evaluation after which a node's value is no longer read: step 2l runs
/// the lookups of level l, step 2l + 1 the other nodes of level l. Outputs are read at the
/// end (max); nodes nothing reads, never (-1, as their value is never kept).
inline std::vector<std::ptrdiff_t> last_read_steps(const Graph& g, const std::vector<std::size_t>& level,
                                                   const std::vector<NodeId>& outputs) {
  std::vector<std::ptrdiff_t> last(g.size(), -1);
  for (NodeId id = 0; id < g.size(); ++id)
    for (NodeId o : g[id].operands)
      last[o] = std::max(last[o], static_cast<std::ptrdiff_t>(2 * level[id] + (g[id].is_lookup() ? 0 : 1)));
  for (NodeId o : outputs) last[o] = std::numeric_limits<std::ptrdiff_t>::max();
  return last;
}

/// For each output element of a reduce_sum, the input elements it adds.
inline std::vector<std::vector<std::size_t>> reduction_sources(const Shape& in, const std::vector<std::size_t>& axes) {
  Shape kept;
  for (std::size_t a = 0; a < in.size(); ++a)
    if (!std::binary_search(axes.begin(), axes.end(), a)) kept.push_back(in[a]);
  const auto out_strides = strides_of(kept);
  std::vector<std::vector<std::size_t>> sources(element_count(kept));
  for_each_index(in, [&](std::size_t flat, const auto& index) {
    std::size_t out = 0, k = 0;
    for (std::size_t a = 0; a < in.size(); ++a)
      if (!std::binary_search(axes.begin(), axes.end(), a)) out += index[a] * out_strides[k++];
    sources[out].push_back(flat);
  });
  return sources;
}

}  // namespace detail

template <Domain D>
class Evaluator {
 public:
  using Buffer = typename D::Buffer;

  Evaluator(const CompiledModel& model, D& domain, RunOptions options)
      : model_(model), g_(model.graph), domain_(domain), options_(std::move(options)) {}

  /// Values between two levels: after `levels_done` levels, those of the nodes still read.
  struct State {
    std::size_t levels_done = 0;
    std::vector<std::pair<NodeId, Buffer>> values;
  };
  /// Called after each level of lookups with the nodes whose values are still read.
  using SaveState = std::function<void(std::size_t levels_done, std::span<const NodeId> live, const std::vector<Buffer>& values)>;

  std::vector<Buffer> run(std::vector<Buffer> inputs) {
    if (inputs.size() != model_.inputs.size())
      throw std::invalid_argument("fhetensor: the model takes " + std::to_string(model_.inputs.size()) + " inputs, got " +
                                  std::to_string(inputs.size()));
    State start;
    for (std::size_t i = 0; i < inputs.size(); ++i) start.values.emplace_back(model_.inputs[i], std::move(inputs[i]));
    return resume(std::move(start));
  }

  /// Runs the levels after state.levels_done; state holds exactly the values still read
  /// then (what `save` was given). A value is freed after the step that last reads it.
  std::vector<Buffer> resume(State state, const SaveState& save = {}) {
    const auto level = detail::lookup_levels(g_);
    const std::size_t levels = g_.size() ? *std::max_element(level.begin(), level.end()) : 0;
    const auto last_read = detail::last_read_steps(g_, level, model_.outputs);
    const auto done_at = [&](NodeId id) { return g_[id].kind == NodeKind::input || level[id] < state.levels_done; };
    const auto read_after = [&](NodeId id, std::size_t levels_done) { return last_read[id] >= static_cast<std::ptrdiff_t>(2 * levels_done); };

    values_.assign(g_.size(), Buffer{});
    std::vector<bool> held(g_.size(), false);
    for (auto& [id, value] : state.values) {
      if (id < g_.size() && g_[id].kind == NodeKind::input && !read_after(id, state.levels_done)) continue;  // never read
      if (id >= g_.size() || held[id] || !done_at(id) || !read_after(id, state.levels_done))
        throw std::invalid_argument("fhetensor: the saved state holds node " + std::to_string(id) + ", not a value read after level " +
                                    std::to_string(state.levels_done));
      values_[id] = std::move(value), held[id] = true;
    }
    std::size_t bootstraps_done = 0;
    for (NodeId id = 0; id < g_.size(); ++id) {
      if (done_at(id) && read_after(id, state.levels_done) && !held[id])
        throw std::invalid_argument("fhetensor: the saved state after level " + std::to_string(state.levels_done) + " lacks node " +
                                    std::to_string(id));
      if (g_[id].is_lookup() && level[id] < state.levels_done) bootstraps_done += element_count(g_[id].shape);
    }
    const auto release = [&](std::size_t step) {
      for (NodeId id = 0; id < g_.size(); ++id)
        if (held[id] && last_read[id] == static_cast<std::ptrdiff_t>(step)) values_[id] = Buffer{}, held[id] = false;
    };

    ProgressTracker progress(model_.statistics.bootstraps, options_.progress);
    progress.resume_from(bootstraps_done);
    for (std::size_t l = state.levels_done; l <= levels; ++l) {
      const auto start = std::chrono::steady_clock::now();
      std::vector<NodeId> lookups;
      for (NodeId id = 0; id < g_.size(); ++id)
        if (level[id] == l && g_[id].is_lookup()) lookups.push_back(id), held[id] = true;
      const std::string stage = lookups.empty() ? std::string() : run_lookups(lookups, l, levels, progress);
      release(2 * l);
      for (NodeId id = 0; id < g_.size(); ++id)
        if (level[id] == l && !g_[id].is_lookup() && g_[id].kind != NodeKind::input) run_linear(id), held[id] = true;
      release(2 * l + 1);
      if (lookups.empty()) continue;
      if (options_.on_level) {
        std::size_t bootstraps = 0;
        for (NodeId id : lookups) bootstraps += element_count(g_[id].shape);
        options_.on_level({l, levels, stage, bootstraps, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});
      }
      if (save && l < levels) {
        std::vector<NodeId> live;
        for (NodeId id = 0; id < g_.size(); ++id)
          if (held[id]) live.push_back(id);
        save(l + 1, live, values_);
      }
    }
    progress.finish();
    std::vector<Buffer> outputs;
    for (NodeId o : model_.outputs) outputs.push_back(values_[o]);
    return outputs;
  }

 private:
  /// Runs the lookups of one level; returns the stage's description.
  std::string run_lookups(const std::vector<NodeId>& ids, std::size_t level, std::size_t levels, ProgressTracker& progress) {
    std::string stage = "level " + std::to_string(level) + "/" + std::to_string(levels) + ":";
    std::vector<std::size_t> first{0};  // element ranges of the nodes, laid end to end
    for (NodeId id : ids) {
      values_[id] = domain_.make_buffer(id, element_count(g_[id].shape));
      first.push_back(first.back() + element_count(g_[id].shape));
      stage += " " + g_[id].label + " " + to_string(g_[id].shape);
    }
    progress.begin_stage(stage);
    domain_.begin_lookups(ids);
    // Batches, when the domain takes them, as long as every thread still gets work.
    const std::size_t total = first.back(), threads = std::max<std::size_t>(1, options_.threads);
    std::size_t batch = 1;
    if constexpr (BatchedDomain<D>) batch = std::clamp<std::size_t>((total + threads - 1) / threads, 1, D::lookup_batch_size);
    parallel_for(
        (total + batch - 1) / batch,
        [&](std::size_t chunk, std::size_t worker) {
          std::array<LookupItem<Buffer>, max_lookup_batch> items;
          std::size_t count = 0;
          for (std::size_t e = chunk * batch; e < std::min(total, (chunk + 1) * batch); ++e) {
            const std::size_t k = static_cast<std::size_t>(std::upper_bound(first.begin(), first.end(), e) - first.begin()) - 1;
            const NodeId id = ids[k];
            items[count++] = {id, &values_[g_[id].operands[0]], e - first[k], &values_[id], e - first[k]};
          }
          if constexpr (BatchedDomain<D>) {
            domain_.lookup_batch(std::span<const LookupItem<Buffer>>(items.data(), count), worker);
          } else {
            for (std::size_t b = 0; b < count; ++b)
              domain_.lookup(items[b].id, *items[b].in, items[b].j, *items[b].out, items[b].i, worker);
          }
          progress.advance(count);
        },
        threads);
    return stage;
  }

  void run_linear(NodeId id) {
    const Node& n = g_[id];
    Buffer out = domain_.make_buffer(id, element_count(n.shape));
    const Buffer& x = values_[n.operands[0]];
    auto each = [&](std::size_t count, auto&& body) { parallel_for(count, [&](std::size_t i, std::size_t) { body(i); }, options_.threads); };
    switch (n.kind) {
      case NodeKind::gather: {
        std::vector<std::size_t> base{0};
        for (NodeId o : n.operands) base.push_back(base.back() + element_count(g_[o].shape));
        each(n.map.size(), [&](std::size_t i) {
          if (n.map[i] < 0) return;
          const auto m = static_cast<std::size_t>(n.map[i]);
          const std::size_t k = static_cast<std::size_t>(std::upper_bound(base.begin(), base.end(), m) - base.begin()) - 1;
          domain_.copy(out, i, values_[n.operands[k]], m - base[k]);
        });
        break;
      }
      case NodeKind::linear:
        each(element_count(n.shape), [&](std::size_t i) {
          for (std::size_t j = 0; j < n.operands.size(); ++j) domain_.axpy(out, i, n.coefficients[j].flat(i), values_[n.operands[j]], i);
          domain_.add_constant(out, i, n.bias.flat(i), id);
        });
        break;
      case NodeKind::matmul: {
        const std::size_t k = n.weights.shape()[0], m = n.weights.shape()[1];
        each(element_count(n.shape), [&](std::size_t i) {
          const std::size_t row = i / m, col = i % m;
          for (std::size_t t = 0; t < k; ++t) domain_.axpy(out, i, n.weights(t, col), x, row * k + t);
          domain_.add_constant(out, i, n.bias(col), id);
        });
        break;
      }
      case NodeKind::conv2d: {
        const Shape& in = g_[n.operands[0]].shape;
        const std::size_t r = in.size(), c_in = in[r - 3], h = in[r - 2], w = in[r - 1];
        const std::size_t c_out = n.shape[r - 3], oh = n.shape[r - 2], ow = n.shape[r - 1];
        const std::size_t per_group_in = c_in / n.groups, per_group_out = c_out / n.groups;
        const std::size_t kernel = n.window.kernel_h * n.window.kernel_w;
        const IndexMap taps = n.window.taps(h, w);
        each(element_count(n.shape), [&](std::size_t i) {
          const std::size_t pixel = i % (oh * ow), co = (i / (oh * ow)) % c_out, batch = i / (oh * ow * c_out);
          const std::size_t group = co / per_group_out;
          for (std::size_t cl = 0; cl < per_group_in; ++cl) {
            const std::size_t plane = (batch * c_in + group * per_group_in + cl) * h * w;
            for (std::size_t t = 0; t < kernel; ++t) {
              const std::int64_t tap = taps[pixel * kernel + t];
              if (tap >= 0) domain_.axpy(out, i, n.weights.flat((co * per_group_in + cl) * kernel + t), x, plane + static_cast<std::size_t>(tap));
            }
          }
          domain_.add_constant(out, i, n.bias(co), id);
        });
        break;
      }
      case NodeKind::reduce_sum: {
        const auto sources = detail::reduction_sources(g_[n.operands[0]].shape, n.axes);
        each(sources.size(), [&](std::size_t i) {
          for (std::size_t s : sources[i]) domain_.axpy(out, i, 1, x, s);
        });
        break;
      }
      case NodeKind::input:
      case NodeKind::lookup:
        break;
    }
    values_[id] = std::move(out);
  }

  const CompiledModel& model_;
  const Graph& g_;
  D& domain_;
  RunOptions options_;
  std::vector<Buffer> values_;
};

FHETENSOR_END_NAMESPACE
