// The PNG and JPEG decoder (io/image.hpp), as `fhetensor encrypt` uses it on images from
// strangers, in the three channel modes. Only ImageError is expected. The pixel limit is
// lowered from 50 million to 2^22 so that a legitimately large image (the allocation the
// limit allows) stays under the fuzzer's -malloc_limit_mb: an allocation above it is a
// finding, i.e. one the header's dimensions did not bound.
#include <cstddef>
#include <cstdint>
#include <span>
#include <fhetensor/io/image.hpp>

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  for (const io::ImageChannels mode : {io::ImageChannels::keep, io::ImageChannels::gray, io::ImageChannels::rgb}) {
    try {
      const auto chw = io::decode_image(bytes, io::ImageOptions{.channels = mode, .max_pixels = std::uint64_t{1} << 22});
      if (chw.dimension() != 3 || chw.shape(1) * chw.shape(2) > (std::uint64_t{1} << 22)) __builtin_trap();
      for (const std::int64_t v : chw)
        if (v < 0 || v > 255) __builtin_trap();
    } catch (const io::ImageError&) {
    }
  }
  return 0;
}
