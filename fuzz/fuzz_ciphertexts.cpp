// A ciphertext list's payload, sealed in a valid envelope (fuzz_support.hpp): counts,
// shapes, parameter set and row size of each tensor, checked against the bytes left.
#include <cstddef>
#include <cstdint>
#include <fhetensor/serialization/files.hpp>

#include "fuzz_support.hpp"

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = fuzz::sealed(ObjectKind::ciphertexts, data, size);
  try {
    const auto tensors = deserialize_ciphertexts(bytes);
    for (const CiphertextTensor& t : tensors)  // what loads is consistent: rows of the set, as many as the shape says
      if (t.instance != data[0] % menu_size || t.data.size() != element_count(t.shape) * t.row_size) __builtin_trap();
    if (tensors.empty()) return 0;
    const auto saved = serialize(tensors);  // saved again, they load again into the same bytes
    if (serialize(deserialize_ciphertexts(saved)) != saved) __builtin_trap();
  } catch (const FormatError&) {
  }
  return 0;
}
