// A compiled model's payload, sealed in a valid envelope (fuzz_support.hpp): the cereal
// parser of nodes and annotations and validate(). What loads must be usable: explain()
// reads every node, and the model saved again loads again, into the same bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <fhetensor/compiler/explain.hpp>
#include <fhetensor/serialization/files.hpp>

#include "fuzz_support.hpp"

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = fuzz::sealed(ObjectKind::model, data, size);
  std::optional<CompiledModel> model;
  try {
    model = deserialize_model(bytes);
  } catch (const FormatError&) {
    return 0;
  }
  (void)explain(*model);
  const auto saved = serialize(*model);
  if (serialize(deserialize_model(saved)) != saved) __builtin_trap();
  return 0;
}
