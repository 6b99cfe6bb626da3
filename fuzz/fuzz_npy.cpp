// The .npy reader (io/npy.hpp), as `fhetensor encrypt` uses it on arrays from strangers:
// both conversions, to doubles and to exact integers. Only NpyError is expected.
#include <cstddef>
#include <cstdint>
#include <span>
#include <fhetensor/io/npy.hpp>

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    const auto values = io::decode_npy(bytes);
    if (values.size() * 8 > io::npy_default_max_bytes) __builtin_trap();
  } catch (const io::NpyError&) {
  }
  try {
    const auto values = io::decode_npy_integers(bytes);
    // Integers that load are written back and read again unchanged.
    if (io::decode_npy_integers(io::encode_npy(values)) != values) __builtin_trap();
  } catch (const io::NpyError&) {
  }
  return 0;
}
