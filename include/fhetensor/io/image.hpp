#pragma once
// PNG and JPEG images, the inputs `fhetensor encrypt` takes from strangers, decoded into
// CHW integer tensors (values 0..255); and the resize and crop of ImageNet preprocessing.
//
// Needs libpng and libjpeg(-turbo): link fhetensor::image (not fhetensor::fhetensor
// alone), which is why this header is not part of <fhetensor/fhetensor.hpp>.
//
// Untrusted input: the format is told by the magic bytes, never the file name; the pixel
// count is checked against a caller-given limit from the header, before any pixel buffer
// is allocated; data cut short is an error (libjpeg would fill the rest with gray); a
// progressive JPEG may have at most jpeg_max_scans scans (each one revisits the whole
// image, so thousands of tiny scans would take minutes); chunks a PNG does not need for
// its pixels (text, colour profiles, ...) are skipped unparsed; and the libraries'
// warnings are dropped rather than printed on stderr. Errors: ImageError (a
// std::runtime_error, "fhetensor: ...") for bad content, std::runtime_error for a file
// that cannot be read.
//
// Both libraries report errors by longjmp. Each call into them sits in a small function
// whose frame holds no C++ object with a destructor (longjmp would skip it); the C++
// caller turns a failure into an exception.
#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

#include <xtensor/xarray.hpp>

#include <fhetensor/core/version.hpp>
#include <fhetensor/io/atomic_file.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace io {

struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Channels of the decoded tensor. keep: as stored (1 gray, 2 gray + alpha, 3 RGB,
/// 4 RGBA; a palette PNG gives RGB, and a PNG with a tRNS chunk gains an alpha channel,
/// where PIL would keep the mode and put the transparency aside). gray: 1 channel,
/// colour reduced to ITU-R BT.601 luma as PIL's convert("L") computes it, alpha dropped.
/// rgb: 3 channels, gray repeated, alpha dropped.
enum class ImageChannels { keep, gray, rgb };

struct ImageOptions {
  ImageChannels channels = ImageChannels::keep;
  /// Bound on width * height, checked from the header before decoding.
  std::uint64_t max_pixels = 50'000'000;
  /// Bound on the size of a file read by read_image.
  std::uint64_t max_file_bytes = std::uint64_t{256} << 20;
};

enum class ImageFormat { png, jpeg };

inline constexpr int jpeg_max_scans = 500;

/// The format announced by the first bytes, if PNG or JPEG.
inline std::optional<ImageFormat> detect_image_format(std::span<const std::uint8_t> bytes) {
  static constexpr std::uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static constexpr std::uint8_t jpeg[] = {0xff, 0xd8, 0xff};
  if (bytes.size() >= sizeof png && std::memcmp(bytes.data(), png, sizeof png) == 0) return ImageFormat::png;
  if (bytes.size() >= sizeof jpeg && std::memcmp(bytes.data(), jpeg, sizeof jpeg) == 0) return ImageFormat::jpeg;
  return std::nullopt;
}

namespace detail {

// Decoded pixels, rows of interleaved channels (HWC), one byte a sample.
struct DecodedImage {
  std::size_t width = 0;
  std::size_t height = 0;
  std::size_t channels = 0;
  std::vector<std::uint8_t> samples;
};

[[noreturn]] inline void image_fail(const std::string& origin, const std::string& what) {
  throw ImageError("fhetensor: " + origin + ": " + what);
}

inline void check_pixel_limit(const std::string& origin, std::uint64_t width, std::uint64_t height,
                              std::uint64_t max_pixels) {
  const std::string size = std::to_string(width) + " x " + std::to_string(height);
  if (width == 0 || height == 0) image_fail(origin, "the image is " + size + " pixels: empty");
  if (width > max_pixels / height) {
    image_fail(origin, "the image is " + size + " pixels, above the limit of " + std::to_string(max_pixels) + " pixels");
  }
}

// ---- PNG ---------------------------------------------------------------------------------

struct PngSession {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
  char message[256];
};

inline void png_on_error(png_structp png, png_const_charp message) {
  auto* session = static_cast<PngSession*>(png_get_error_ptr(png));
  std::snprintf(session->message, sizeof session->message, "%s", message);
  png_longjmp(png, 1);
}

inline void png_on_warning(png_structp, png_const_charp) {}

inline void png_read_bytes(png_structp png, png_bytep out, std::size_t length) {
  auto* session = static_cast<PngSession*>(png_get_io_ptr(png));
  if (length > session->size - session->offset) png_error(png, "truncated: the data ends early");
  std::memcpy(out, session->data + session->offset, length);
  session->offset += length;
}

struct PngHeader {
  png_uint_32 width;
  png_uint_32 height;
};

struct PngLayout {
  std::size_t channels;
  std::size_t row_bytes;
};

// The three steps below run in turn, each under its own setjmp; false means libpng
// failed, its message in the session.
inline bool png_step_header(png_structp png, png_infop info, PngHeader* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  header->width = png_get_image_width(png, info);
  header->height = png_get_image_height(png, info);
  return true;
}

inline bool png_step_layout(png_structp png, png_infop info, PngLayout* layout) {
  if (setjmp(png_jmpbuf(png))) return false;
  // Palette to RGB, gray below 8 bits to 8 bits, tRNS to an alpha channel; 16 bits to 8,
  // rounded (v * 255 / 65535); interlaced images deinterlaced. No gamma correction.
  png_set_expand(png);
  png_set_scale_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  layout->channels = png_get_channels(png, info);
  layout->row_bytes = png_get_rowbytes(png, info);
  return true;
}

inline bool png_step_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);  // to IEND: a file cut after its pixels is still an error
  return true;
}

struct PngHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngHandles() = default;
  PngHandles(const PngHandles&) = delete;
  PngHandles& operator=(const PngHandles&) = delete;
  ~PngHandles() { png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr); }
};

inline DecodedImage decode_png(std::span<const std::uint8_t> bytes, const ImageOptions& options,
                               const std::string& origin) {
  PngSession session{bytes.data(), bytes.size(), 0, {}};
  const auto failed = [&] { image_fail(origin, std::string("PNG: ") + session.message); };
  PngHandles handles;
  handles.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &session, png_on_error, png_on_warning);
  if (handles.png == nullptr) image_fail(origin, "PNG: cannot create a decoder");
  handles.info = png_create_info_struct(handles.png);
  if (handles.info == nullptr) image_fail(origin, "PNG: cannot create a decoder");
  png_set_read_fn(handles.png, &session, png_read_bytes);
  // Ancillary chunks that do not change the pixels we return: skipped (CRC still
  // checked) instead of parsed, which is less work and less code facing hostile bytes.
  static constexpr char ignored[] =
      "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0sTER\0tEXt\0tIME\0zTXt";
  png_set_keep_unknown_chunks(handles.png, PNG_HANDLE_CHUNK_NEVER, reinterpret_cast<png_const_bytep>(ignored),
                              static_cast<int>(sizeof ignored / 5));

  PngHeader header{};
  if (!png_step_header(handles.png, handles.info, &header)) failed();
  check_pixel_limit(origin, header.width, header.height, options.max_pixels);
  PngLayout layout{};
  if (!png_step_layout(handles.png, handles.info, &layout)) failed();
  if (layout.channels < 1 || layout.channels > 4 || layout.row_bytes != header.width * layout.channels) {
    image_fail(origin, "PNG: unexpected row layout after conversion to 8 bits");
  }
  DecodedImage image;
  image.width = header.width;
  image.height = header.height;
  image.channels = layout.channels;
  image.samples.resize(layout.row_bytes * header.height);
  std::vector<png_bytep> rows(header.height);
  for (std::size_t y = 0; y < rows.size(); ++y) rows[y] = image.samples.data() + y * layout.row_bytes;
  if (!png_step_pixels(handles.png, rows.data())) failed();
  return image;
}

// ---- JPEG --------------------------------------------------------------------------------

struct JpegSession {
  jpeg_error_mgr errors;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

inline void jpeg_on_error(j_common_ptr cinfo) {
  auto* session = static_cast<JpegSession*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, session->message);
  std::longjmp(session->jump, 1);
}

// Warnings are dropped, except those for pixel data that ends before the image does (the
// file cut short, or a scan cut short by a marker): libjpeg would fill the rest with gray
// and call it a success.
inline void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER)) {
    jpeg_on_error(cinfo);
  }
}

inline void jpeg_on_output(j_common_ptr) {}

inline void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > jpeg_max_scans) {
    auto* session = static_cast<JpegSession*>(cinfo->client_data);
    std::snprintf(session->message, sizeof session->message, "more than %d scans", jpeg_max_scans);
    std::longjmp(session->jump, 1);
  }
}

// As for PNG: three steps, each under its own setjmp; false means libjpeg failed.
inline bool jpeg_step_header(j_decompress_ptr cinfo, JpegSession* session, const std::uint8_t* data,
                             std::size_t size) {
  if (setjmp(session->jump)) return false;
  jpeg_create_decompress(cinfo);  // keeps cinfo->err and cinfo->client_data
  cinfo->progress = &session->progress;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  return true;
}

inline bool jpeg_step_layout(j_decompress_ptr cinfo, JpegSession* session) {
  if (setjmp(session->jump)) return false;
  jpeg_calc_output_dimensions(cinfo);
  return true;
}

inline bool jpeg_step_pixels(j_decompress_ptr cinfo, JpegSession* session, std::uint8_t* out, std::size_t row_bytes) {
  if (setjmp(session->jump)) return false;
  jpeg_start_decompress(cinfo);
  if (std::size_t{cinfo->output_width} * static_cast<std::size_t>(cinfo->output_components) != row_bytes) {
    std::snprintf(session->message, sizeof session->message, "output size changed after the header");
    return false;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + std::size_t{cinfo->output_scanline} * row_bytes;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      std::snprintf(session->message, sizeof session->message, "the decoder stopped early");
      return false;
    }
  }
  jpeg_finish_decompress(cinfo);  // to EOI: a file cut after its pixels is still an error
  return true;
}

struct JpegHandle {
  jpeg_decompress_struct cinfo{};
  JpegHandle() = default;
  JpegHandle(const JpegHandle&) = delete;
  JpegHandle& operator=(const JpegHandle&) = delete;
  // Safe even if jpeg_create_decompress failed or never ran: cinfo starts zeroed.
  ~JpegHandle() { jpeg_destroy_decompress(&cinfo); }
};

inline DecodedImage decode_jpeg(std::span<const std::uint8_t> bytes, const ImageOptions& options,
                                const std::string& origin) {
  JpegSession session{};
  const auto failed = [&] { image_fail(origin, std::string("JPEG: ") + session.message); };
  JpegHandle handle;
  j_decompress_ptr cinfo = &handle.cinfo;
  cinfo->err = jpeg_std_error(&session.errors);
  session.errors.error_exit = jpeg_on_error;
  session.errors.emit_message = jpeg_on_message;
  session.errors.output_message = jpeg_on_output;
  session.progress.progress_monitor = jpeg_on_progress;
  cinfo->client_data = &session;

  if (!jpeg_step_header(cinfo, &session, bytes.data(), bytes.size())) failed();
  check_pixel_limit(origin, cinfo->image_width, cinfo->image_height, options.max_pixels);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    image_fail(origin, "JPEG: CMYK images are not supported");
  }
  cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (!jpeg_step_layout(cinfo, &session)) failed();
  DecodedImage image;
  image.width = cinfo->output_width;
  image.height = cinfo->output_height;
  image.channels = static_cast<std::size_t>(cinfo->output_components);
  if (image.channels != 1 && image.channels != 3) image_fail(origin, "JPEG: unexpected number of channels");
  check_pixel_limit(origin, image.width, image.height, options.max_pixels);
  image.samples.resize(image.width * image.height * image.channels);
  if (!jpeg_step_pixels(cinfo, &session, image.samples.data(), image.width * image.channels)) failed();
  return image;
}

// ---- To a tensor -------------------------------------------------------------------------

// ITU-R BT.601 luma in 16-bit fixed point, rounded: PIL's convert("L").
inline std::int64_t luma(std::uint32_t r, std::uint32_t g, std::uint32_t b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

inline xt::xarray<std::int64_t> to_chw(const DecodedImage& image, ImageChannels mode) {
  const std::size_t in = image.channels;
  const std::size_t out_channels = mode == ImageChannels::keep ? in : mode == ImageChannels::gray ? 1 : 3;
  auto out = xt::xarray<std::int64_t>::from_shape({out_channels, image.height, image.width});
  const std::size_t plane = image.height * image.width;
  const bool colour = in >= 3;
  std::int64_t* dst = out.data();
  for (std::size_t i = 0; i < plane; ++i) {
    const std::uint8_t* px = image.samples.data() + i * in;
    if (mode == ImageChannels::keep) {
      for (std::size_t c = 0; c < in; ++c) dst[c * plane + i] = px[c];
    } else if (mode == ImageChannels::gray) {
      dst[i] = colour ? luma(px[0], px[1], px[2]) : px[0];
    } else {
      for (std::size_t c = 0; c < 3; ++c) dst[c * plane + i] = px[colour ? c : 0];
    }
  }
  return out;
}

inline xt::xarray<std::int64_t> decode_image(std::span<const std::uint8_t> bytes, const ImageOptions& options,
                                             const std::string& origin) {
  const auto format = detect_image_format(bytes);
  if (!format) {
    std::string found;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) {
      char hex[4];
      std::snprintf(hex, sizeof hex, " %02x", bytes[i]);
      found += hex;
    }
    image_fail(origin, "not a PNG or JPEG image (it starts with" + (found.empty() ? std::string(" nothing") : found) + ")");
  }
  const DecodedImage image =
      *format == ImageFormat::png ? decode_png(bytes, options, origin) : decode_jpeg(bytes, options, origin);
  return to_chw(image, options.channels);
}

}  // namespace detail

/// A PNG or JPEG image held in memory, told apart by its magic bytes, as a tensor of shape
/// {channels, height, width} with values 0..255. Throws ImageError.
inline xt::xarray<std::int64_t> decode_image(std::span<const std::uint8_t> bytes, const ImageOptions& options = {}) {
  return detail::decode_image(bytes, options, "image data");
}

/// decode_image of a file of at most options.max_file_bytes; errors name the file.
inline xt::xarray<std::int64_t> read_image(const std::filesystem::path& path, const ImageOptions& options = {}) {
  const auto bytes = read_file_bounded(path, options.max_file_bytes);
  return detail::decode_image(bytes, options, path.string());
}

// ---- ImageNet preprocessing --------------------------------------------------------------

/// `chw` (channels, height, width) resized to height x width by bilinear interpolation as
/// PyTorch's interpolate(mode="bilinear", align_corners=False, antialias=False) computes
/// it, which is torchvision's resize of a tensor with antialias=False: pixel centres
/// aligned, no antialiasing (a large downscale skips pixels; PIL would average them).
template <class T>
xt::xarray<T> resize_bilinear(const xt::xarray<T>& chw, std::size_t height, std::size_t width) {
  static_assert(std::is_floating_point_v<T>, "resize_bilinear interpolates: convert to float first");
  if (chw.dimension() != 3) throw std::invalid_argument("fhetensor: resize_bilinear takes a CHW tensor of rank 3");
  const std::size_t channels = chw.shape(0), in_height = chw.shape(1), in_width = chw.shape(2);
  if (in_height == 0 || in_width == 0 || height == 0 || width == 0) {
    throw std::invalid_argument("fhetensor: resize_bilinear of or to an empty image");
  }
  // For each output row (column): the two source rows and the weight of the second.
  struct Tap {
    std::size_t low, high;
    T weight;
  };
  const auto taps = [](std::size_t in, std::size_t out) {
    std::vector<Tap> result(out);
    const T scale = static_cast<T>(in) / static_cast<T>(out);
    for (std::size_t o = 0; o < out; ++o) {
      const T source = std::max(scale * (static_cast<T>(o) + T(0.5)) - T(0.5), T(0));
      const std::size_t low = std::min(static_cast<std::size_t>(source), in - 1);
      result[o] = {low, std::min(low + 1, in - 1), source - static_cast<T>(low)};
    }
    return result;
  };
  const std::vector<Tap> rows = taps(in_height, height), cols = taps(in_width, width);
  auto out = xt::xarray<T>::from_shape({channels, height, width});
  T* dst = out.data();
  for (std::size_t c = 0; c < channels; ++c) {
    const T* plane = chw.data() + c * in_height * in_width;
    for (const Tap& r : rows) {
      const T* top = plane + r.low * in_width;
      const T* bottom = plane + r.high * in_width;
      for (const Tap& k : cols) {
        *dst++ = (1 - r.weight) * ((1 - k.weight) * top[k.low] + k.weight * top[k.high]) +
                 r.weight * ((1 - k.weight) * bottom[k.low] + k.weight * bottom[k.high]);
      }
    }
  }
  return out;
}

/// The centred height x width window of `chw`, placed as torchvision's center_crop places
/// it: offset round((size - crop) / 2) with Python's round half to even.
template <class T>
xt::xarray<T> center_crop(const xt::xarray<T>& chw, std::size_t height, std::size_t width) {
  if (chw.dimension() != 3) throw std::invalid_argument("fhetensor: center_crop takes a CHW tensor of rank 3");
  const std::size_t channels = chw.shape(0), in_height = chw.shape(1), in_width = chw.shape(2);
  if (height == 0 || width == 0 || height > in_height || width > in_width) {
    throw std::invalid_argument("fhetensor: cannot crop " + std::to_string(height) + " x " + std::to_string(width) +
                                " from an image of " + std::to_string(in_height) + " x " + std::to_string(in_width));
  }
  const auto offset = [](std::size_t size, std::size_t crop) {
    const std::size_t half = (size - crop) / 2;  // + 0.5 when size - crop is odd: round to even
    return (size - crop) % 2 == 1 && half % 2 == 1 ? half + 1 : half;
  };
  const std::size_t top = offset(in_height, height), left = offset(in_width, width);
  auto out = xt::xarray<T>::from_shape({channels, height, width});
  T* dst = out.data();
  for (std::size_t c = 0; c < channels; ++c) {
    for (std::size_t y = 0; y < height; ++y) {
      const T* src = chw.data() + (c * in_height + top + y) * in_width + left;
      dst = std::copy(src, src + width, dst);
    }
  }
  return out;
}

}  // namespace io
FHETENSOR_END_NAMESPACE
