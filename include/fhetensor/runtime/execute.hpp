#pragma once
// The fourth run mode: encrypted execution on the server, with evaluation keys only.
// Values of a component c are LWE ciphertexts (big key) of v * 2^(63 - bits_c). A lookup
// scales its input so that the table index sits under the padding bit, key-switches and
// bootstraps with a table whose outputs are already in the consumer's encoding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <vector>
#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/algorithms/pbs.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/lookup_table.hpp>
#include <fhetensor/runtime/ciphertext_tensor.hpp>
#include <fhetensor/runtime/evaluator.hpp>
#include <fhetensor/runtime/server_keys.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

template <TfheInstance I>
class ExecuteDomain {
 public:
  static constexpr std::size_t row = I::glwe_dimension * I::polynomial_size + 1;
  struct Buffer {
    std::vector<Torus> data;
  };

  ExecuteDomain(const CompiledModel& model, const EvaluationKeys<I>& keys, std::size_t threads)
      : model_(model), keys_(keys), tables_(model.graph.size()), scratch_(std::max<std::size_t>(1, threads)) {}

  Buffer make_buffer(NodeId, std::size_t count) { return {std::vector<Torus>(count * row, 0)}; }
  void axpy(Buffer& out, std::size_t i, std::int64_t c, const Buffer& in, std::size_t j) {
    if (c == 0) return;
    Torus* o = out.data.data() + i * row;
    const Torus* x = in.data.data() + j * row;
    const auto t = static_cast<Torus>(c);
    for (std::size_t k = 0; k < row; ++k) o[k] += t * x[k];
  }
  void copy(Buffer& out, std::size_t i, const Buffer& in, std::size_t j) {
    std::memcpy(out.data.data() + i * row, in.data.data() + j * row, row * sizeof(Torus));
  }
  void add_constant(Buffer& out, std::size_t i, std::int64_t b, NodeId id) {
    out.data[i * row + row - 1] += static_cast<Torus>(b) << model_.encoding_shift(id);
  }

  /// The tables of one level, built before its bootstraps start.
  void begin_lookups(const std::vector<NodeId>& ids) {
    for (NodeId id : ids) {
      const LookupPlan& p = *model_.nodes[id].lookup;
      const int out_shift = model_.encoding_shift(id);
      tables_[id].clear();
      for (const LookupPlan::Table& table : p.tables)
        tables_[id].emplace_back(Encoding{p.precision}, [&](std::int64_t j) {
          return static_cast<Torus>(table[static_cast<std::size_t>(j)]) << out_shift;
        });
    }
  }

  static constexpr std::size_t lookup_batch_size = 4;

  void lookup_batch(std::span<const LookupItem<Buffer>> items, std::size_t worker) {
    Scratch& s = scratch_[worker];
    for (std::size_t b = 0; b < items.size(); ++b) {
      const LookupItem<Buffer>& item = items[b];
      const LookupPlan& p = *model_.nodes[item.id].lookup;
      std::span<Torus> x = s.inputs[b].data();
      const Torus* source = item.in->data.data() + item.j * row;
      for (std::size_t k = 0; k < row; ++k) x[k] = source[k] << p.input_scale_log2;
      // (x - offset) * 2^(63 - precision - shift): index j lands on j * 2^(63 - precision);
      // when rounding, half an input step moves every input off the rounding boundaries.
      const int step = 63 - p.precision - p.shift;
      x[row - 1] -= static_cast<Torus>(p.offset) << step;
      if (p.shift > 0) x[row - 1] += Torus{1} << (step - 1);
      s.tables[b] = &tables_[item.id][model_.graph[item.id].table_index(item.i)];
    }
    const std::size_t n = items.size();
    apply_lookup_tables_into<I>(std::span(s.outputs).first(n), std::span<const LweCiphertext<I, BigKey>>(s.inputs).first(n),
                                std::span<const LookupTable<I>* const>(s.tables).first(n), keys_, s.pbs);
    for (std::size_t b = 0; b < n; ++b)
      std::memcpy(items[b].out->data.data() + items[b].i * row, s.outputs[b].data().data(), row * sizeof(Torus));
  }
  void lookup(NodeId id, const Buffer& in, std::size_t j, Buffer& out, std::size_t i, std::size_t worker) {
    const LookupItem<Buffer> item{id, &in, j, &out, i};
    lookup_batch({&item, 1}, worker);
  }

 private:
  struct Scratch {
    std::vector<LweCiphertext<I, BigKey>> inputs = std::vector<LweCiphertext<I, BigKey>>(lookup_batch_size);
    std::vector<LweCiphertext<I, BigKey>> outputs = std::vector<LweCiphertext<I, BigKey>>(lookup_batch_size);
    std::vector<const LookupTable<I>*> tables = std::vector<const LookupTable<I>*>(lookup_batch_size);
    PbsBatchWorkspace<I> pbs{lookup_batch_size};
  };
  const CompiledModel& model_;
  const EvaluationKeys<I>& keys_;
  std::vector<std::vector<LookupTable<I>>> tables_;
  std::vector<Scratch> scratch_;
};

}  // namespace detail

/// Runs the model on encrypted inputs (one per model input, in order) with the server's
/// evaluation keys; returns one encrypted tensor per output. With options.checkpoint, it
/// saves its state after each level and resumes from a saved state instead of starting
/// from the inputs (which must be the same: serialization/checkpoint.hpp checks it).
inline std::vector<CiphertextTensor> run(const CompiledModel& model, const std::vector<CiphertextTensor>& inputs,
                                         const ServerKeys& keys, RunOptions options = {}) {
  if (inputs.size() != model.inputs.size())
    throw std::invalid_argument("fhetensor: the model takes " + std::to_string(model.inputs.size()) + " inputs, got " +
                                std::to_string(inputs.size()));
  if (keys.instance() != model.instance)
    throw std::invalid_argument("fhetensor: the server keys are for another parameter set than the model's (" +
                                model.instance_name + ")");
  return with_menu_instance(model.instance, [&]<class I>(std::type_identity<I>) {
    using Domain = detail::ExecuteDomain<I>;
    std::vector<typename Domain::Buffer> buffers;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const CiphertextTensor& c = inputs[k];
      if (c.shape != model.graph[model.inputs[k]].shape || c.row_size != Domain::row || c.instance != model.instance ||
          c.data.size() != element_count(c.shape) * c.row_size)
        throw std::invalid_argument("fhetensor: encrypted input " + std::to_string(k) + " of shape " + to_string(c.shape) +
                                    " does not match the model's input " + to_string(model.graph[model.inputs[k]].shape) +
                                    " under " + model.instance_name);
      buffers.push_back({c.data});
    }
    Domain domain(model, keys.get<I>(), options.threads);
    const std::shared_ptr<RunCheckpoint> checkpoint = options.checkpoint;
    Evaluator<Domain> evaluator(model, domain, std::move(options));
    typename Evaluator<Domain>::State state;
    if (auto saved = checkpoint ? checkpoint->load() : std::nullopt) {
      state.levels_done = saved->levels_done;
      for (std::size_t k = 0; k < saved->nodes.size(); ++k) {
        const NodeId id = saved->nodes[k];
        if (id >= model.graph.size() || saved->values[k].size() != element_count(model.graph[id].shape) * Domain::row)
          throw std::invalid_argument("fhetensor: the checkpoint's value of node " + std::to_string(id) + " does not fit the model");
        state.values.emplace_back(id, typename Domain::Buffer{std::move(saved->values[k])});
      }
    } else {
      for (std::size_t k = 0; k < buffers.size(); ++k) state.values.emplace_back(model.inputs.at(k), std::move(buffers[k]));
    }
    typename Evaluator<Domain>::SaveState save;
    if (checkpoint)
      save = [&](std::size_t levels_done, std::span<const NodeId> live, const std::vector<typename Domain::Buffer>& values) {
        std::vector<std::span<const Torus>> rows;
        for (NodeId id : live) rows.emplace_back(values[id].data);
        checkpoint->save(levels_done, live, rows);
      };
    auto results = evaluator.resume(std::move(state), save);
    std::vector<CiphertextTensor> out;
    for (std::size_t k = 0; k < results.size(); ++k)
      out.push_back({model.graph[model.outputs[k]].shape, model.instance, Domain::row, std::move(results[k].data)});
    return out;
  });
}

FHETENSOR_END_NAMESPACE
