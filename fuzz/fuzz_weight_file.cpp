// The weight files of imported models (nn/weight_file.hpp), read by the headers
// tools/onnx_import.py generates. Only WeightFileError is expected; what parses is
// written back and parses again into the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <fhetensor/nn/weight_file.hpp>

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = nn::WeightFile::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    const std::string saved = file.serialize();
    if (nn::WeightFile::parse(saved).serialize() != saved) __builtin_trap();
  } catch (const nn::WeightFileError&) {
  }
  return 0;
}
