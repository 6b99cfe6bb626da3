#pragma once
// Shared by the libFuzzer targets of fuzz/. The object loaders check a BLAKE2b checksum
// over header and payload before parsing, so raw mutated bytes would almost never get past
// it: these targets take [instance byte][payload] and seal the payload in a valid envelope
// of that kind, for menu instance (first byte % menu_size). fuzz_envelope.cpp feeds raw
// bytes to exercise the header checks themselves.
//
// A target catches only the documented error of its loader (FormatError here); any other
// exception escapes, std::terminate aborts, and libFuzzer reports it with its input, as it
// does crashes, sanitizer reports, leaks and allocations over -malloc_limit_mb.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>
#include <fhetensor/serialization/envelope.hpp>

namespace fhetensor::fuzz {

/// The fuzz input as an envelope of `kind`: byte 0 picks the instance, the rest is the
/// payload. An empty input gives an empty vector (the loaders refuse it as too short).
inline std::vector<std::uint8_t> sealed(ObjectKind kind, const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  return seal(kind, data[0] % menu_size, std::span<const std::uint8_t>(data + 1, size - 1));
}

}  // namespace fhetensor::fuzz
