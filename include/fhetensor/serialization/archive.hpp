#pragma once
// cereal archives over bytes in memory, and the bounded reads every loader uses. cereal's
// own std::vector and std::string loads trust the size they read and allocate it: here a
// count is checked against the bytes that are actually left before anything is allocated.
#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>

#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>
#include <fhetensor/core/version.hpp>
#include <fhetensor/serialization/envelope.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

/// A read-only stream buffer over bytes the caller owns.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::span<const std::uint8_t> bytes) {
    char* begin = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
    setg(begin, begin, begin + bytes.size());
  }
  std::uint64_t remaining() const noexcept { return static_cast<std::uint64_t>(egptr() - gptr()); }
};

/// What a loader knows besides the bytes: the parameter set of the envelope and how many
/// bytes are left (every count is checked against them).
struct LoadContext {
  const MemoryBuffer* buffer = nullptr;
  std::size_t instance = 0;
  std::uint32_t format_version = 0;
  std::uint64_t max_expanded_bytes = 0;  // what seeded ciphertexts may grow to
  std::uint64_t remaining() const noexcept { return buffer->remaining(); }
};

// Save and load functions take the plain archives (cereal passes those); loads reach their
// context through the archive they were started with.
using OutputArchive = cereal::PortableBinaryOutputArchive;
using InputArchive = cereal::PortableBinaryInputArchive;
class ContextArchive : public InputArchive {
 public:
  ContextArchive(LoadContext& context, std::istream& stream) : cereal::PortableBinaryInputArchive(stream), context_(context) {}
  LoadContext& context() noexcept { return context_; }

 private:
  LoadContext& context_;
};

inline LoadContext& context(InputArchive& ar) {
  auto* with_context = dynamic_cast<ContextArchive*>(&ar);
  if (!with_context) throw std::logic_error("fhetensor: a load without its context");
  return with_context->context();
}

[[noreturn]] inline void malformed(const std::string& what) { throw FormatError("fhetensor: malformed " + what); }

/// A flag written as one byte: anything but 0 or 1 is refused (a bool holding another
/// value is undefined behaviour).
inline bool load_bool(InputArchive& ar, const char* what) {
  std::uint8_t byte;
  ar(byte);
  if (byte > 1) malformed(std::string(what) + ": a flag that is neither 0 nor 1");
  return byte == 1;
}

/// A count of items of `item_bytes` each that must fit in what is left (and under `max`).
inline std::uint64_t load_count(InputArchive& ar, std::uint64_t item_bytes, std::uint64_t max, const char* what) {
  std::uint64_t count;
  ar(count);
  if (count > max || (item_bytes > 0 && count > context(ar).remaining() / item_bytes))
    malformed(std::string(what) + ": a count of " + std::to_string(count) + " exceeds what the data holds");
  return count;
}

/// Plain values laid end to end, preceded by their count.
template <class T>
void save_array(OutputArchive& ar, std::span<const T> values) {
  ar(static_cast<std::uint64_t>(values.size()));
  ar(cereal::binary_data(values.data(), values.size() * sizeof(T)));
}
template <class T>
std::vector<T> load_array(InputArchive& ar, std::uint64_t max, const char* what) {
  std::vector<T> values(load_count(ar, sizeof(T), max, what));
  ar(cereal::binary_data(values.data(), values.size() * sizeof(T)));
  return values;
}
/// An array whose length the format fixes: anything else is refused.
template <class T>
void load_exact_array(InputArchive& ar, std::span<T> out, const char* what) {
  std::uint64_t count;
  ar(count);
  if (count != out.size())
    malformed(std::string(what) + ": " + std::to_string(count) + " values where the parameter set has " +
              std::to_string(out.size()));
  if (count * sizeof(T) > context(ar).remaining()) malformed(std::string(what) + ": truncated");
  ar(cereal::binary_data(out.data(), out.size() * sizeof(T)));
}

inline void save_string(OutputArchive& ar, const std::string& s) { save_array<char>(ar, s); }
inline std::string load_string(InputArchive& ar, std::uint64_t max, const char* what) {
  const auto chars = load_array<char>(ar, max, what);
  return {chars.begin(), chars.end()};
}

/// A stream buffer appending to a byte vector (no copy of multi-gigabyte keys through a string).
class VectorBuffer : public std::streambuf {
 public:
  explicit VectorBuffer(std::vector<std::uint8_t>& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.insert(out_.end(), reinterpret_cast<const std::uint8_t*>(s), reinterpret_cast<const std::uint8_t*>(s) + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_.push_back(static_cast<std::uint8_t>(c));
    return c;
  }

 private:
  std::vector<std::uint8_t>& out_;
};

/// `object` written by its cereal save function, sealed in an envelope.
template <class T>
std::vector<std::uint8_t> seal_object(ObjectKind kind, std::size_t instance, const T& object) {
  std::vector<std::uint8_t> bytes(format::header_size);
  {
    VectorBuffer buffer(bytes);
    std::ostream stream(&buffer);
    OutputArchive ar(stream);
    ar(object);
  }
  seal_in_place(kind, instance, bytes);
  return bytes;
}

/// Loads `object` from a checked envelope's payload; every byte must be used.
template <class T>
void from_payload(const Envelope& envelope, T& object, std::uint64_t max_expanded_bytes = 0) {
  MemoryBuffer buffer(envelope.payload);
  std::istream stream(&buffer);
  LoadContext context{&buffer, envelope.header.instance, envelope.header.format_version, max_expanded_bytes};
  try {
    ContextArchive ar(context, stream);
    ar(object);
  } catch (const cereal::Exception& e) {
    throw FormatError(std::string("fhetensor: truncated data (") + e.what() + ")");
  }
  if (buffer.remaining() != 0) malformed(std::to_string(buffer.remaining()) + " bytes left over after the object");
}

/// A class version the loader knows, or a clear refusal.
inline void check_version(std::uint32_t version, std::uint32_t newest, const char* what) {
  if (version < 1 || version > newest)
    throw FormatError("fhetensor: " + std::string(what) + " record of version " + std::to_string(version) +
                      "; this build reads versions 1 to " + std::to_string(newest));
}

}  // namespace detail

FHETENSOR_END_NAMESPACE
