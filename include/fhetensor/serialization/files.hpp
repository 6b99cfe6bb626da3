#pragma once
// Saving and loading what a deployment exchanges, as bytes (network) or files (written
// atomically: a failed save leaves the previous file intact):
//   compiled model          both sides (the client needs its encodings, the server its graph),
//                           with the client's recipe for models quantized from floats
//   CompressedServerKeys    client -> server: seeded masks, expanded by ServerKeys(...)
//   ciphertexts             client -> server -> client
//   client keys             secret: only through export_client_keys / import_client_keys
// Every loader bounds what it reads, checks the envelope (envelope.hpp) and that the
// object conforms to the parameter set it names, and throws FormatError otherwise.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <vector>
#include <fhetensor/core/version.hpp>
#include <fhetensor/io/atomic_file.hpp>
#include <fhetensor/serialization/objects.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// Upper bounds on what loaders accept (keys have the exact sizes of their parameter set).
struct LoadLimits {
  std::uint64_t max_model_bytes = std::uint64_t{1} << 30;
  std::uint64_t max_ciphertext_bytes = std::uint64_t{4} << 30;
};

namespace detail {
/// The largest payload an object of `kind` for `instance` may have.
inline std::uint64_t max_payload(ObjectKind kind, std::size_t instance, const LoadLimits& limits) {
  constexpr std::uint64_t slack = 64;  // cereal's endianness byte and class versions
  switch (kind) {
    case ObjectKind::model: return limits.max_model_bytes;
    case ObjectKind::ciphertexts:
    case ObjectKind::run_state: return limits.max_ciphertext_bytes;  // FileCheckpoint bounds it by its model
    case ObjectKind::server_keys:
      return with_menu_instance(instance, []<class I>(std::type_identity<I>) { return compressed_keys_payload<I>() + slack; });
    case ObjectKind::client_keys:
      return with_menu_instance(instance, []<class I>(std::type_identity<I>) {
        return std::uint64_t{I::glwe_dimension * I::polynomial_size + I::lwe_dimension + 32 + slack};
      });
  }
  return 0;
}

template <class T>
T load_object(std::span<const std::uint8_t> bytes, ObjectKind kind, const LoadLimits& limits) {
  const EnvelopeHeader header = read_header(bytes);
  const Envelope envelope = open_envelope(bytes, kind, max_payload(kind, header.instance, limits));
  T object{};
  from_payload(envelope, object, limits.max_ciphertext_bytes);
  return object;
}

/// Full ciphertexts; seeded ones expanded (their size was bounded when they were loaded).
inline std::vector<CiphertextTensor> expand_all(CiphertextList list) {
  std::vector<CiphertextTensor> out;
  for (auto& t : list.tensors) {
    if (auto* seeded = std::get_if<SeededCiphertextTensor>(&t)) out.push_back(seeded->expand());
    else out.push_back(std::move(std::get<CiphertextTensor>(t)));
  }
  return out;
}

template <class Tensor>
std::vector<std::uint8_t> serialize_tensors(std::span<const Tensor> tensors) {
  if (tensors.empty()) throw std::invalid_argument("fhetensor: no ciphertexts to serialize");
  CiphertextList list;
  for (const auto& t : tensors) {
    if (t.instance != tensors[0].instance) throw std::invalid_argument("fhetensor: ciphertexts of different parameter sets");
    list.tensors.emplace_back(t);
  }
  return seal_object(ObjectKind::ciphertexts, tensors[0].instance, list);
}

/// A file's bytes, read only as far as its header allows for an object of `kind`.
inline std::vector<std::uint8_t> read_object_file(const std::filesystem::path& path, ObjectKind kind, const LoadLimits& limits) {
  std::vector<std::uint8_t> head(format::header_size);
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("fhetensor: cannot open " + path.string());
  file.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(file.gcount()));
  const EnvelopeHeader header = read_header(head);
  return io::read_file_bounded(path, format::header_size + max_payload(kind, header.instance, limits));
}
}  // namespace detail

// ---- Bytes ---------------------------------------------------------------------------

inline std::vector<std::uint8_t> serialize(const ModelPackage& package) {
  return detail::seal_object(ObjectKind::model, package.model.instance, package);
}
inline std::vector<std::uint8_t> serialize(const CompiledModel& model, std::optional<ClientRecipe> recipe = std::nullopt) {
  return serialize(ModelPackage{model, std::move(recipe)});
}
inline std::vector<std::uint8_t> serialize(const CompressedServerKeys& keys) {
  return detail::seal_object(ObjectKind::server_keys, keys.instance(), keys);
}
inline std::vector<std::uint8_t> serialize(std::span<const CiphertextTensor> tensors) { return detail::serialize_tensors(tensors); }
/// What a client uploads: 8 bytes per element.
inline std::vector<std::uint8_t> serialize(std::span<const SeededCiphertextTensor> tensors) {
  return detail::serialize_tensors(tensors);
}
/// The secret keys, to be kept by their owner (with the evaluation keys' seed, so that
/// the imported keys regenerate the same server keys).
inline std::vector<std::uint8_t> export_client_keys(const ClientKeys& keys) {
  return detail::seal_object(ObjectKind::client_keys, keys.instance(), detail::ClientKeysRecord{&keys, std::nullopt});
}

inline ModelPackage deserialize_model_package(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  if (read_header(bytes).format_version == 1)  // a bare compiled model
    return {detail::load_object<CompiledModel>(bytes, ObjectKind::model, limits), std::nullopt};
  return detail::load_object<ModelPackage>(bytes, ObjectKind::model, limits);
}
inline CompiledModel deserialize_model(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  return deserialize_model_package(bytes, limits).model;
}
inline CompressedServerKeys deserialize_server_keys(std::span<const std::uint8_t> bytes) {
  return detail::load_object<CompressedServerKeys>(bytes, ObjectKind::server_keys, {});
}
/// Ciphertexts, seeded ones expanded (to at most limits.max_ciphertext_bytes each).
inline std::vector<CiphertextTensor> deserialize_ciphertexts(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  return detail::expand_all(detail::load_object<detail::CiphertextList>(bytes, ObjectKind::ciphertexts, limits));
}
/// A model's encrypted inputs: one per input, of its shape and parameter set, checked
/// before anything is expanded (what a server does with a client's upload).
inline std::vector<CiphertextTensor> deserialize_inputs(std::span<const std::uint8_t> bytes, const CompiledModel& model,
                                                         const LoadLimits& limits = {}) {
  auto list = detail::load_object<detail::CiphertextList>(bytes, ObjectKind::ciphertexts, limits);
  if (list.tensors.size() != model.inputs.size())
    throw FormatError("fhetensor: " + std::to_string(list.tensors.size()) + " encrypted inputs; the model takes " +
                      std::to_string(model.inputs.size()));
  for (std::size_t k = 0; k < list.tensors.size(); ++k) {
    const auto [shape, instance] = std::visit([](const auto& t) { return std::pair(t.shape, t.instance); }, list.tensors[k]);
    if (instance != model.instance || shape != model.graph[model.inputs[k]].shape)
      throw FormatError("fhetensor: encrypted input " + std::to_string(k) + " has shape " + to_string(shape) + " under " +
                        std::string(instance_name(instance)) + "; the model expects " +
                        to_string(model.graph[model.inputs[k]].shape) + " under " + model.instance_name);
  }
  return detail::expand_all(std::move(list));
}
inline ClientKeys import_client_keys(std::span<const std::uint8_t> bytes) {
  auto record = detail::load_object<detail::ClientKeysRecord>(bytes, ObjectKind::client_keys, {});
  return std::move(*record.loaded);
}

/// What a file or message holds, checked (checksum included) but not loaded.
inline EnvelopeHeader inspect(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  const EnvelopeHeader header = read_header(bytes);
  return open_envelope(bytes, detail::max_payload(header.kind, header.instance, limits)).header;
}

// ---- Files ---------------------------------------------------------------------------

inline void save_model(const std::filesystem::path& path, const CompiledModel& model,
                       std::optional<ClientRecipe> recipe = std::nullopt) {
  io::write_file_atomically(path, serialize(model, std::move(recipe)));
}
inline void save_server_keys(const std::filesystem::path& path, const CompressedServerKeys& keys) {
  io::write_file_atomically(path, serialize(keys));
}
inline void save_ciphertexts(const std::filesystem::path& path, std::span<const CiphertextTensor> tensors) {
  io::write_file_atomically(path, serialize(tensors));
}
inline void save_ciphertexts(const std::filesystem::path& path, std::span<const SeededCiphertextTensor> tensors) {
  io::write_file_atomically(path, serialize(tensors));
}
/// Readable and writable by the owner only.
inline void export_client_keys(const std::filesystem::path& path, const ClientKeys& keys) {
  auto bytes = export_client_keys(keys);
  io::write_file_atomically(path, bytes, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  sodium_memzero(bytes.data(), bytes.size());
}

inline ModelPackage load_model_package(const std::filesystem::path& path, const LoadLimits& limits = {}) {
  return deserialize_model_package(detail::read_object_file(path, ObjectKind::model, limits), limits);
}
inline CompiledModel load_model(const std::filesystem::path& path, const LoadLimits& limits = {}) {
  return load_model_package(path, limits).model;
}
inline CompressedServerKeys load_server_keys(const std::filesystem::path& path) {
  return deserialize_server_keys(detail::read_object_file(path, ObjectKind::server_keys, {}));
}
inline std::vector<CiphertextTensor> load_ciphertexts(const std::filesystem::path& path, const LoadLimits& limits = {}) {
  return deserialize_ciphertexts(detail::read_object_file(path, ObjectKind::ciphertexts, limits), limits);
}
inline ClientKeys import_client_keys(const std::filesystem::path& path) {
  auto bytes = detail::read_object_file(path, ObjectKind::client_keys, {});
  ClientKeys keys = import_client_keys(std::span<const std::uint8_t>(bytes));
  sodium_memzero(bytes.data(), bytes.size());
  return keys;
}

FHETENSOR_END_NAMESPACE
