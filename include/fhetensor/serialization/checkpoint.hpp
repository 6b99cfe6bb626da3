#pragma once
// A long encrypted run's checkpoint in a file (runtime/checkpoint.hpp):
//   auto checkpoint = std::make_shared<FileCheckpoint>("run.fhet", model, inputs);
//   run(model, inputs, server_keys, {.checkpoint = checkpoint});  // started again: resumes
// The file is an envelope of kind "run state", rewritten atomically after each level: the
// digests of the model and of the encrypted inputs it belongs to, the levels done, and
// the ciphertexts still to be read. A checkpoint of another model or other inputs is
// refused, not resumed from.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <sodium.h>
#include <fhetensor/core/version.hpp>
#include <fhetensor/runtime/checkpoint.hpp>
#include <fhetensor/serialization/files.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

using Digest = std::array<std::uint8_t, crypto_generichash_BYTES>;

inline Digest blake2b(std::span<const std::span<const std::uint8_t>> parts) {
  ensure_sodium_initialized();
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  for (const auto& part : parts) crypto_generichash_update(&state, part.data(), part.size());
  Digest out;
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

/// What a checkpoint file holds; saved from views of the run's buffers, loaded into a RunState.
struct RunStateRecord {
  const CompiledModel* model = nullptr;
  Digest model_digest{}, inputs_digest{};
  std::size_t levels_done = 0;
  std::span<const NodeId> nodes;                      // saving
  std::span<const std::span<const Torus>> values;    // saving
  RunState loaded;                                    // loading
};

inline void save(OutputArchive& ar, const RunStateRecord& r, std::uint32_t) {
  ar(cereal::binary_data(r.model_digest.data(), r.model_digest.size()), cereal::binary_data(r.inputs_digest.data(), r.inputs_digest.size()));
  ar(static_cast<std::uint64_t>(r.levels_done), static_cast<std::uint64_t>(r.nodes.size()));
  for (std::size_t k = 0; k < r.nodes.size(); ++k) {
    ar(static_cast<std::uint64_t>(r.nodes[k]));
    save_array<Torus>(ar, r.values[k]);
  }
}

inline void load(InputArchive& ar, RunStateRecord& r, std::uint32_t version) {
  check_version(version, 1, "run state");
  Digest model_digest, inputs_digest;
  ar(cereal::binary_data(model_digest.data(), model_digest.size()), cereal::binary_data(inputs_digest.data(), inputs_digest.size()));
  if (model_digest != r.model_digest) malformed("run state: the checkpoint is of another model");
  if (inputs_digest != r.inputs_digest) malformed("run state: the checkpoint is of other encrypted inputs");
  const CompiledModel& m = *r.model;
  std::uint64_t levels_done;
  ar(levels_done);
  if (levels_done > m.graph.size()) malformed("run state: " + std::to_string(levels_done) + " levels done, more than the model has");
  r.loaded.levels_done = levels_done;
  const std::uint64_t count = load_count(ar, 16, m.graph.size(), "run state");
  const std::size_t row = ciphertext_row_size(m.instance);
  for (std::uint64_t k = 0; k < count; ++k) {
    std::uint64_t node;
    ar(node);
    if (node >= m.graph.size()) malformed("run state: node " + std::to_string(node) + " is not in the model");
    std::vector<Torus>& value = r.loaded.values.emplace_back(element_count(m.graph[node].shape) * row);
    load_exact_array<Torus>(ar, value, "run state value");
    r.loaded.nodes.push_back(static_cast<NodeId>(node));
  }
}

}  // namespace detail

/// A run's state in `file`, for one model and one set of encrypted inputs.
class FileCheckpoint : public RunCheckpoint {
 public:
  FileCheckpoint(std::filesystem::path file, const CompiledModel& model, std::span<const CiphertextTensor> inputs)
      : file_(std::move(file)), model_(model) {
    const auto model_bytes = serialize(model);
    model_digest_ = detail::blake2b(std::array{std::span<const std::uint8_t>(model_bytes)});
    std::vector<std::span<const std::uint8_t>> parts;
    for (const CiphertextTensor& t : inputs)
      parts.emplace_back(reinterpret_cast<const std::uint8_t*>(t.data.data()), t.data.size() * sizeof(Torus));
    inputs_digest_ = detail::blake2b(parts);
  }

  const std::filesystem::path& file() const noexcept { return file_; }

  /// The saved state, or nullopt when there is no file. A file that is corrupt, of another
  /// model or of other inputs throws FormatError (delete it to start again).
  std::optional<RunState> load() override {
    std::error_code ec;
    if (!std::filesystem::exists(file_, ec)) return std::nullopt;
    const auto bytes = io::read_file_bounded(file_, format::header_size + max_payload());
    const Envelope envelope = open_envelope(bytes, ObjectKind::run_state, max_payload());
    if (envelope.header.instance != model_.instance)
      throw FormatError("fhetensor: " + file_.string() + " is a checkpoint under another parameter set than the model's");
    detail::RunStateRecord record;
    record.model = &model_, record.model_digest = model_digest_, record.inputs_digest = inputs_digest_;
    try {
      detail::from_payload(envelope, record);
    } catch (const FormatError& e) {
      throw FormatError(std::string(e.what()) + " (" + file_.string() + ")");
    }
    return std::move(record.loaded);
  }

  void save(std::size_t levels_done, std::span<const NodeId> nodes, std::span<const std::span<const Torus>> values) override {
    const detail::RunStateRecord record{&model_, model_digest_, inputs_digest_, levels_done, nodes, values, {}};
    io::write_file_atomically(file_, detail::seal_object(ObjectKind::run_state, model_.instance, record));
  }

 private:
  /// Every node's value at once: more than any state holds.
  std::uint64_t max_payload() const {
    std::uint64_t bytes = 128;
    for (const Node& n : model_.graph.nodes()) bytes += 16 + element_count(n.shape) * detail::ciphertext_row_size(model_.instance) * sizeof(Torus);
    return bytes;
  }

  std::filesystem::path file_;
  const CompiledModel& model_;
  detail::Digest model_digest_{}, inputs_digest_{};
};

FHETENSOR_END_NAMESPACE

CEREAL_CLASS_VERSION(fhetensor::detail::RunStateRecord, 1);
