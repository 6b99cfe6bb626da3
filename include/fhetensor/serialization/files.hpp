#pragma once
// Saving and loading what a deployment exchanges, as bytes (network) or files (written
// atomically: a failed save leaves the previous file intact):
//   compiled model          both sides (the client needs its encodings, the server its graph)
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
    case ObjectKind::ciphertexts: return limits.max_ciphertext_bytes;
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
  from_payload(envelope, object);
  return object;
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

inline std::vector<std::uint8_t> serialize(const CompiledModel& model) {
  return detail::seal_object(ObjectKind::model, model.instance, model);
}
inline std::vector<std::uint8_t> serialize(const CompressedServerKeys& keys) {
  return detail::seal_object(ObjectKind::server_keys, keys.instance(), keys);
}
inline std::vector<std::uint8_t> serialize(std::span<const CiphertextTensor> tensors) {
  if (tensors.empty()) throw std::invalid_argument("fhetensor: no ciphertexts to serialize");
  for (const auto& t : tensors)
    if (t.instance != tensors[0].instance) throw std::invalid_argument("fhetensor: ciphertexts of different parameter sets");
  return detail::seal_object(ObjectKind::ciphertexts, tensors[0].instance, detail::CiphertextList{{tensors.begin(), tensors.end()}});
}
/// The secret keys, to be kept by their owner (with the evaluation keys' seed, so that
/// the imported keys regenerate the same server keys).
inline std::vector<std::uint8_t> export_client_keys(const ClientKeys& keys) {
  return detail::seal_object(ObjectKind::client_keys, keys.instance(), detail::ClientKeysRecord{&keys, std::nullopt});
}

inline CompiledModel deserialize_model(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  return detail::load_object<CompiledModel>(bytes, ObjectKind::model, limits);
}
inline CompressedServerKeys deserialize_server_keys(std::span<const std::uint8_t> bytes) {
  return detail::load_object<CompressedServerKeys>(bytes, ObjectKind::server_keys, {});
}
inline std::vector<CiphertextTensor> deserialize_ciphertexts(std::span<const std::uint8_t> bytes, const LoadLimits& limits = {}) {
  return detail::load_object<detail::CiphertextList>(bytes, ObjectKind::ciphertexts, limits).tensors;
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

inline void save_model(const std::filesystem::path& path, const CompiledModel& model) {
  io::write_file_atomically(path, serialize(model));
}
inline void save_server_keys(const std::filesystem::path& path, const CompressedServerKeys& keys) {
  io::write_file_atomically(path, serialize(keys));
}
inline void save_ciphertexts(const std::filesystem::path& path, std::span<const CiphertextTensor> tensors) {
  io::write_file_atomically(path, serialize(tensors));
}
/// Readable and writable by the owner only.
inline void export_client_keys(const std::filesystem::path& path, const ClientKeys& keys) {
  auto bytes = export_client_keys(keys);
  io::write_file_atomically(path, bytes, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  sodium_memzero(bytes.data(), bytes.size());
}

inline CompiledModel load_model(const std::filesystem::path& path, const LoadLimits& limits = {}) {
  return deserialize_model(detail::read_object_file(path, ObjectKind::model, limits), limits);
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
