#pragma once
// The envelope every fhetensor file and message travels in: a fixed 96-byte header, then a
// cereal payload. The header is checked before a byte of the payload is trusted or
// allocated for: magic, format version, object kind, parameter set (name and a digest of
// every parameter), payload length against a limit, and a BLAKE2b checksum over header and
// payload (against corruption, not forgery: anyone can recompute it, so loaders still
// validate everything they read). Layout (little-endian):
//   0 magic "\x89FHET\r\n\x1a" | 8 format version u32 | 12 kind u32 | 16 parameter set name,
//   32 bytes NUL-padded | 48 parameter digest u64 | 56 payload length u64 |
//   64 BLAKE2b-256 of bytes [0, 64) and the payload | 96 payload
#include <sodium.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/random/csprng.hpp>

FHETENSOR_BEGIN_NAMESPACE

static_assert(std::endian::native == std::endian::little, "fhetensor's file formats assume a little-endian host");

/// Malformed, corrupt, foreign or oversized input: the message says which check failed.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ObjectKind : std::uint32_t { client_keys = 1, server_keys = 2, ciphertexts = 3, model = 4, run_state = 5 };

inline std::string_view to_string(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::client_keys: return "client keys (secret)";
    case ObjectKind::server_keys: return "server keys";
    case ObjectKind::ciphertexts: return "ciphertexts";
    case ObjectKind::model: return "compiled model";
    case ObjectKind::run_state: return "checkpoint of an encrypted run";
  }
  return "unknown";
}

namespace format {
/// The version files are written in, and the oldest this build reads. Bump the version
/// whenever a payload's layout changes (and bump that class's cereal version with it),
/// after freezing fixtures of the old one (tests/fixtures/README.md).
///   1: models, server keys, full ciphertexts, client keys
///   2: seeded ciphertexts; model files may carry the client's recipe (client/recipe.hpp)
inline constexpr std::uint32_t current_version = 2;
inline constexpr std::uint32_t oldest_readable_version = 1;
inline constexpr std::array<unsigned char, 8> magic{0x89, 'F', 'H', 'E', 'T', '\r', '\n', 0x1a};
inline constexpr std::size_t header_size = 96;
inline constexpr std::size_t name_size = 32;
}  // namespace format

/// A digest of every parameter of menu instance `index`: two builds with the same set name
/// but different parameters refuse each other's files.
inline std::uint64_t parameter_digest(std::size_t index) {
  return with_menu_instance(index, []<class I>(std::type_identity<I>) {
    const std::string description = std::string(I::name) + " n=" + std::to_string(I::lwe_dimension) +
                                    " k=" + std::to_string(I::glwe_dimension) + " N=" + std::to_string(I::polynomial_size) +
                                    " lwe_noise=" + std::to_string(I::lwe_noise.variance()) +
                                    " glwe_noise=" + std::to_string(I::glwe_noise.variance()) +
                                    " pbs=" + std::to_string(I::pbs_decomposition.base_log) + "x" +
                                    std::to_string(I::pbs_decomposition.level_count) +
                                    " ks=" + std::to_string(I::keyswitch_decomposition.base_log) + "x" +
                                    std::to_string(I::keyswitch_decomposition.level_count);
    detail::ensure_sodium_initialized();
    std::array<unsigned char, crypto_generichash_BYTES> hash;
    crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(description.data()),
                       description.size(), nullptr, 0);
    std::uint64_t digest;
    std::memcpy(&digest, hash.data(), sizeof digest);
    return digest;
  });
}

inline std::string_view instance_name(std::size_t index) {
  return with_menu_instance(index, []<class I>(std::type_identity<I>) { return std::string_view(I::name); });
}

/// What a header says, once checked.
struct EnvelopeHeader {
  std::uint32_t format_version = 0;
  ObjectKind kind{};
  std::size_t instance = 0;  // index in this build's parameter menu
  std::uint64_t payload_size = 0;
};

/// A checked envelope: the header and a view of the payload inside the caller's bytes.
struct Envelope {
  EnvelopeHeader header;
  std::span<const std::uint8_t> payload;
};

namespace detail {
inline std::array<unsigned char, crypto_generichash_BYTES> envelope_checksum(std::span<const std::uint8_t> header_start,
                                                                              std::span<const std::uint8_t> payload) {
  ensure_sodium_initialized();
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  crypto_generichash_update(&state, header_start.data(), header_start.size());
  crypto_generichash_update(&state, payload.data(), payload.size());
  std::array<unsigned char, crypto_generichash_BYTES> out;
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}
template <class T>
T read_le(std::span<const std::uint8_t> bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}
template <class T>
void write_le(std::vector<std::uint8_t>& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}
}  // namespace detail

/// Writes the header into the first header_size bytes of `bytes`; the payload follows them.
inline void seal_in_place(ObjectKind kind, std::size_t instance, std::vector<std::uint8_t>& bytes) {
  if (bytes.size() < format::header_size) throw std::logic_error("fhetensor: no room for the envelope's header");
  std::fill(bytes.begin(), bytes.begin() + format::header_size, std::uint8_t{0});
  std::memcpy(bytes.data(), format::magic.data(), format::magic.size());
  detail::write_le(bytes, 8, format::current_version);
  detail::write_le(bytes, 12, static_cast<std::uint32_t>(kind));
  const std::string_view name = instance_name(instance);
  std::memcpy(bytes.data() + 16, name.data(), std::min(name.size(), format::name_size));
  detail::write_le(bytes, 48, parameter_digest(instance));
  detail::write_le(bytes, 56, static_cast<std::uint64_t>(bytes.size() - format::header_size));
  const auto sum = detail::envelope_checksum(std::span(bytes).first(64), std::span(bytes).subspan(format::header_size));
  std::memcpy(bytes.data() + 64, sum.data(), sum.size());
}

/// Header and payload of an object of `kind` for menu instance `instance`.
inline std::vector<std::uint8_t> seal(ObjectKind kind, std::size_t instance, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out(format::header_size + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + format::header_size);
  seal_in_place(kind, instance, out);
  return out;
}

/// Checks the fixed header (the first header_size bytes): magic, version, kind, parameter set.
inline EnvelopeHeader read_header(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < format::header_size)
    throw FormatError("fhetensor: not an fhetensor file: " + std::to_string(bytes.size()) + " bytes, shorter than the " +
                      std::to_string(format::header_size) + "-byte header");
  if (std::memcmp(bytes.data(), format::magic.data(), format::magic.size()) != 0)
    throw FormatError("fhetensor: not an fhetensor file (wrong magic bytes)");
  EnvelopeHeader h;
  h.format_version = detail::read_le<std::uint32_t>(bytes, 8);
  if (h.format_version > format::current_version)
    throw FormatError("fhetensor: written in format version " + std::to_string(h.format_version) +
                      " by a newer fhetensor; this build reads versions " + std::to_string(format::oldest_readable_version) +
                      " to " + std::to_string(format::current_version));
  if (h.format_version < format::oldest_readable_version)
    throw FormatError("fhetensor: format version " + std::to_string(h.format_version) + " is too old; this build reads versions " +
                      std::to_string(format::oldest_readable_version) + " to " + std::to_string(format::current_version));
  const auto kind = detail::read_le<std::uint32_t>(bytes, 12);
  if (kind < 1 || kind > 5) throw FormatError("fhetensor: unknown object kind " + std::to_string(kind));
  h.kind = static_cast<ObjectKind>(kind);

  const char* name_field = reinterpret_cast<const char*>(bytes.data() + 16);
  const std::string_view name(name_field, strnlen(name_field, format::name_size));
  std::size_t index = menu_size;
  for (std::size_t i = 0; i < menu_size; ++i)
    if (instance_name(i) == name) index = i;
  if (index == menu_size) throw FormatError("fhetensor: unknown parameter set \"" + std::string(name) + "\"");
  if (detail::read_le<std::uint64_t>(bytes, 48) != parameter_digest(index))
    throw FormatError("fhetensor: parameter set " + std::string(name) + " has different parameters in the build that wrote this file");
  h.instance = index;
  h.payload_size = detail::read_le<std::uint64_t>(bytes, 56);
  return h;
}

/// Checks the header and the checksum of `bytes`; the payload must not exceed `max_payload`.
/// Every failure is a FormatError saying what is wrong.
inline Envelope open_envelope(std::span<const std::uint8_t> bytes, std::uint64_t max_payload) {
  Envelope e{read_header(bytes), {}};
  if (e.header.payload_size > max_payload)
    throw FormatError("fhetensor: the payload claims " + std::to_string(e.header.payload_size) + " bytes, over the limit of " +
                      std::to_string(max_payload));
  if (e.header.payload_size != bytes.size() - format::header_size)
    throw FormatError("fhetensor: truncated or padded: the header announces " + std::to_string(e.header.payload_size) +
                      " payload bytes, " + std::to_string(bytes.size() - format::header_size) + " follow it");
  e.payload = bytes.subspan(format::header_size);
  const auto sum = detail::envelope_checksum(bytes.first(64), e.payload);
  if (std::memcmp(sum.data(), bytes.data() + 64, sum.size()) != 0) throw FormatError("fhetensor: checksum mismatch: the data is corrupt");
  return e;
}

/// As open_envelope, and the object must be of `kind` (checked first: the clearest error).
inline Envelope open_envelope(std::span<const std::uint8_t> bytes, ObjectKind kind, std::uint64_t max_payload) {
  const EnvelopeHeader header = read_header(bytes);
  if (header.kind != kind)
    throw FormatError("fhetensor: expected " + std::string(to_string(kind)) + ", this holds " + std::string(to_string(header.kind)));
  return open_envelope(bytes, max_payload);
}

FHETENSOR_END_NAMESPACE
