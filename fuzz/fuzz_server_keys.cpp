// Compressed server keys' payload, sealed in a valid envelope (fuzz_support.hpp): the
// mask seed and the bootstrapping and key-switching key bodies, whose counts are the
// parameter set's. Loading only: the keys are never expanded (ServerKeys(...) is a trusted
// multi-second operation). Inputs are bounded by -max_len, so most take the "too short"
// path; the seed corpus holds one complete key of the smallest set for the full load.
#include <cstddef>
#include <cstdint>
#include <fhetensor/serialization/files.hpp>

#include "fuzz_support.hpp"

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = fuzz::sealed(ObjectKind::server_keys, data, size);
  try {
    const CompressedServerKeys keys = deserialize_server_keys(bytes);
    if (keys.instance() != data[0] % menu_size) __builtin_trap();
  } catch (const FormatError&) {
  }
  return 0;
}
