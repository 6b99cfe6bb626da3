// Exported client keys' payload, sealed in a valid envelope (fuzz_support.hpp): the GLWE
// and LWE secret bits and the evaluation seed. Loading only: the keys are never expanded
// (server_keys() is a trusted multi-second operation, not part of the loader).
#include <cstddef>
#include <cstdint>
#include <fhetensor/serialization/files.hpp>

#include "fuzz_support.hpp"

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = fuzz::sealed(ObjectKind::client_keys, data, size);
  try {
    const ClientKeys keys = import_client_keys(std::span<const std::uint8_t>(bytes));
    if (keys.instance() != data[0] % menu_size) __builtin_trap();
  } catch (const FormatError&) {
  }
  return 0;
}
