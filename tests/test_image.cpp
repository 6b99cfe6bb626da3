// PNG and JPEG decoding (io/image.hpp): images written here with libpng and libjpeg in
// memory decode back exactly (PNG) or closely (JPEG); channel conversions; hostile input
// (cut at every length, every bit flipped, absurd dimensions, wrong magic) throws
// ImageError or decodes to a valid tensor, never crashes; warnings stay off stderr; and
// the ImageNet resize and crop on hand-computed cases.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include <fhetensor/io/image.hpp>

using namespace fhetensor;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- Writing test images in memory ----

struct PngSpec {
  png_uint_32 width, height;
  int bit_depth, color_type;
  bool interlaced;
  const Bytes* rows;  // packed rows, as libpng takes them
  const std::vector<png_color>* palette;
  const Bytes* transparency;  // tRNS of a palette image
};

void png_write_bytes(png_structp png, png_bytep data, std::size_t size) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + size);
}
void png_flush_nothing(png_structp) {}

// Under setjmp: only trivially destructible objects in this frame.
bool png_encode_into(const PngSpec* spec, Bytes* out, png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, png_write_bytes, png_flush_nothing);
  png_set_IHDR(png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
               spec->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (spec->palette) png_set_PLTE(png, info, spec->palette->data(), static_cast<int>(spec->palette->size()));
  if (spec->transparency) {
    png_set_tRNS(png, info, spec->transparency->data(), static_cast<int>(spec->transparency->size()), nullptr);
  }
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

Bytes encode_png(const PngSpec& spec) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const std::size_t row_bytes = spec.rows->size() / spec.height;
  std::vector<png_bytep> rows;
  for (png_uint_32 y = 0; y < spec.height; ++y) rows.push_back(const_cast<png_bytep>(spec.rows->data()) + y * row_bytes);
  Bytes out;
  const bool ok = png_encode_into(&spec, &out, png, info, rows.data());
  png_destroy_write_struct(&png, &info);
  REQUIRE(ok);
  return out;
}

Bytes encode_png(png_uint_32 width, png_uint_32 height, int color_type, const Bytes& rows, int bit_depth = 8,
                 bool interlaced = false) {
  return encode_png(PngSpec{width, height, bit_depth, color_type, interlaced, &rows, nullptr, nullptr});
}

struct JpegErrorJump {
  jpeg_error_mgr errors;
  std::jmp_buf jump;
};

void jpeg_write_error(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<JpegErrorJump*>(cinfo->err)->jump, 1); }

bool jpeg_encode_into(jpeg_compress_struct* cinfo, JpegErrorJump* errors, const std::uint8_t* pixels, int width,
                      int height, int channels, int quality, bool progressive, unsigned char** buffer,
                      unsigned long* size) {
  if (setjmp(errors->jump)) return false;
  jpeg_create_compress(cinfo);
  jpeg_mem_dest(cinfo, buffer, size);
  cinfo->image_width = static_cast<JDIMENSION>(width);
  cinfo->image_height = static_cast<JDIMENSION>(height);
  cinfo->input_components = channels;
  cinfo->in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  if (progressive) jpeg_simple_progression(cinfo);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels + std::size_t{cinfo->next_scanline} * width * channels);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

// Interleaved pixels (HWC) to a JPEG.
Bytes encode_jpeg(const Bytes& pixels, int width, int height, int channels, int quality = 95, bool progressive = false) {
  jpeg_compress_struct cinfo{};
  JpegErrorJump errors{};
  cinfo.err = jpeg_std_error(&errors.errors);
  errors.errors.error_exit = jpeg_write_error;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok =
      jpeg_encode_into(&cinfo, &errors, pixels.data(), width, height, channels, quality, progressive, &buffer, &size);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buffer, buffer + (ok ? size : 0));
  std::free(buffer);
  REQUIRE(ok);
  return out;
}

// ---- Checking decoded tensors ----

std::vector<std::size_t> shape_of(const xt::xarray<std::int64_t>& a) { return {a.shape().begin(), a.shape().end()}; }

// A decoded tensor that is well formed: CHW, 1 to 4 channels, values 0..255.
bool well_formed(const xt::xarray<std::int64_t>& a) {
  if (a.dimension() != 3 || a.shape(0) < 1 || a.shape(0) > 4 || a.size() != a.shape(0) * a.shape(1) * a.shape(2)) {
    return false;
  }
  for (const std::int64_t v : a) {
    if (v < 0 || v > 255) return false;
  }
  return true;
}

// The test's own copy of an image: value of channel c at (y, x) for a width x height image.
std::uint8_t sample(std::size_t c, std::size_t y, std::size_t x) { return static_cast<std::uint8_t>(37 * c + 11 * y + 5 * x + 3); }

Bytes interleaved(std::size_t width, std::size_t height, std::size_t channels) {
  Bytes out;
  for (std::size_t y = 0; y < height; ++y)
    for (std::size_t x = 0; x < width; ++x)
      for (std::size_t c = 0; c < channels; ++c) out.push_back(sample(c, y, x));
  return out;
}

void check_pattern(const xt::xarray<std::int64_t>& a, std::size_t width, std::size_t height, std::size_t channels) {
  REQUIRE(shape_of(a) == std::vector<std::size_t>{channels, height, width});
  std::size_t wrong = 0;
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t y = 0; y < height; ++y)
      for (std::size_t x = 0; x < width; ++x) wrong += a(c, y, x) != sample(c, y, x);
  CHECK(wrong == 0);
}

std::uint32_t crc(const std::uint8_t* data, std::size_t size) {
  return static_cast<std::uint32_t>(crc32(crc32(0, nullptr, 0), data, static_cast<uInt>(size)));
}

void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) p[k] = static_cast<std::uint8_t>(v >> (24 - 8 * k));
}

// A PNG whose IHDR claims width x height, its CRC recomputed so that only the size is wrong.
Bytes with_png_size(Bytes png, std::uint32_t width, std::uint32_t height) {
  put_u32(png.data() + 16, width);
  put_u32(png.data() + 20, height);
  put_u32(png.data() + 29, crc(png.data() + 12, 17));
  return png;
}

// A JPEG whose baseline frame header (SOF0) claims width x height.
Bytes with_jpeg_size(Bytes jpeg, std::uint16_t width, std::uint16_t height) {
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = static_cast<std::uint8_t>(height >> 8);
      jpeg[i + 6] = static_cast<std::uint8_t>(height);
      jpeg[i + 7] = static_cast<std::uint8_t>(width >> 8);
      jpeg[i + 8] = static_cast<std::uint8_t>(width);
      return jpeg;
    }
  }
  FAIL("no SOF0 marker");
  return jpeg;
}

// Everything written to stderr (fd 2) while `run` runs.
template <class Run>
std::string captured_stderr(Run run) {
  std::fflush(stderr);
  char path[] = "/tmp/fhetensor_test_image_stderr_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const int saved = dup(2);
  dup2(fd, 2);
  run();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::ifstream in(path);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  close(fd);
  std::remove(path);
  return text;
}

}  // namespace

TEST_CASE("PNG images decode exactly, in every colour type", "[io][image]") {
  const std::size_t w = 7, h = 5;
  SECTION("gray, gray + alpha, RGB, RGBA; interlaced too") {
    const std::pair<int, std::size_t> types[] = {{PNG_COLOR_TYPE_GRAY, 1},
                                                 {PNG_COLOR_TYPE_GRAY_ALPHA, 2},
                                                 {PNG_COLOR_TYPE_RGB, 3},
                                                 {PNG_COLOR_TYPE_RGB_ALPHA, 4}};
    for (const auto& [type, channels] : types) {
      for (const bool interlaced : {false, true}) {
        INFO("channels " << channels << (interlaced ? ", interlaced" : ""));
        const auto png = encode_png(w, h, type, interleaved(w, h, channels), 8, interlaced);
        check_pattern(io::decode_image(png), w, h, channels);
      }
    }
  }
  SECTION("16-bit samples are reduced to 8 bits") {
    Bytes rows;  // big-endian 16-bit samples v * 257, which reduce back to v exactly
    for (const std::uint8_t v : interleaved(w, h, 3)) {
      rows.push_back(v);
      rows.push_back(v);
    }
    check_pattern(io::decode_image(encode_png(w, h, PNG_COLOR_TYPE_RGB, rows, 16)), w, h, 3);
  }
  SECTION("1-bit gray is expanded to 0 and 255") {
    const Bytes rows = {0b10110000, 0b01000000};  // 4 x 2 pixels, rows padded to a byte
    const auto a = io::decode_image(encode_png(4, 2, PNG_COLOR_TYPE_GRAY, rows, 1));
    REQUIRE(shape_of(a) == std::vector<std::size_t>{1, 2, 4});
    CHECK(std::vector<std::int64_t>(a.begin(), a.end()) == std::vector<std::int64_t>{255, 0, 255, 255, 0, 255, 0, 0});
  }
  SECTION("a palette becomes RGB, or RGBA with transparency") {
    const std::vector<png_color> palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
    const Bytes indices = {0, 1, 2, 1};  // 2 x 2
    const auto rgb = io::decode_image(encode_png(PngSpec{2, 2, 8, PNG_COLOR_TYPE_PALETTE, false, &indices, &palette, nullptr}));
    REQUIRE(shape_of(rgb) == std::vector<std::size_t>{3, 2, 2});
    CHECK(rgb(0, 0, 0) == 10);
    CHECK(rgb(1, 0, 1) == 100);
    CHECK(rgb(2, 1, 0) == 3);
    const Bytes alpha = {255, 128};
    const auto rgba =
        io::decode_image(encode_png(PngSpec{2, 2, 8, PNG_COLOR_TYPE_PALETTE, false, &indices, &palette, &alpha}));
    REQUIRE(shape_of(rgba) == std::vector<std::size_t>{4, 2, 2});
    CHECK(rgba(3, 0, 0) == 255);
    CHECK(rgba(3, 0, 1) == 128);
    CHECK(rgba(3, 1, 0) == 255);  // index 2 has no tRNS entry: opaque
  }
}

TEST_CASE("channel options: keep, gray (BT.601 luma as PIL), RGB", "[io][image]") {
  // Pure red, green, blue and white with alpha 9: PIL's convert("L") gives 76, 150, 29, 255.
  const Bytes rgba = {255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9, 255, 255, 255, 9};
  const auto png = encode_png(4, 1, PNG_COLOR_TYPE_RGB_ALPHA, rgba);
  const auto gray = io::decode_image(png, {.channels = io::ImageChannels::gray});
  REQUIRE(shape_of(gray) == std::vector<std::size_t>{1, 1, 4});
  CHECK(std::vector<std::int64_t>(gray.begin(), gray.end()) == std::vector<std::int64_t>{76, 150, 29, 255});
  const auto rgb = io::decode_image(png, {.channels = io::ImageChannels::rgb});
  REQUIRE(shape_of(rgb) == std::vector<std::size_t>{3, 1, 4});
  CHECK(std::vector<std::int64_t>(rgb.begin(), rgb.end()) ==
        std::vector<std::int64_t>{255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255});

  const auto gray_png = encode_png(3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, Bytes{7, 1, 80, 2, 250, 3});
  const auto expanded = io::decode_image(gray_png, {.channels = io::ImageChannels::rgb});
  REQUIRE(shape_of(expanded) == std::vector<std::size_t>{3, 1, 3});
  CHECK(std::vector<std::int64_t>(expanded.begin(), expanded.end()) ==
        std::vector<std::int64_t>{7, 80, 250, 7, 80, 250, 7, 80, 250});
  const auto only_gray = io::decode_image(gray_png, {.channels = io::ImageChannels::gray});
  CHECK(std::vector<std::int64_t>(only_gray.begin(), only_gray.end()) == std::vector<std::int64_t>{7, 80, 250});
}

TEST_CASE("JPEG images decode closely: colour, gray, progressive", "[io][image]") {
  const int w = 24, h = 16;
  Bytes orange;
  for (int i = 0; i < w * h; ++i) orange.insert(orange.end(), {200, 100, 50});
  const auto close_to = [](const xt::xarray<std::int64_t>& a, std::vector<std::int64_t> expected) {
    std::int64_t worst = 0;
    for (std::size_t c = 0; c < a.shape(0); ++c)
      for (std::size_t i = 0; i < a.shape(1) * a.shape(2); ++i)
        worst = std::max(worst, std::abs(a.data()[c * a.shape(1) * a.shape(2) + i] - expected[c]));
    INFO("largest difference " << worst);
    return worst <= 3;
  };
  for (const bool progressive : {false, true}) {
    INFO((progressive ? "progressive" : "baseline"));
    const auto jpeg = encode_jpeg(orange, w, h, 3, 95, progressive);
    const auto a = io::decode_image(jpeg);
    REQUIRE(shape_of(a) == std::vector<std::size_t>{3, static_cast<std::size_t>(h), static_cast<std::size_t>(w)});
    CHECK(close_to(a, {200, 100, 50}));
    // BT.601 luma of (200, 100, 50): 124.3
    CHECK(close_to(io::decode_image(jpeg, {.channels = io::ImageChannels::gray}), {124}));
  }
  const auto gray = encode_jpeg(Bytes(w * h, 128), w, h, 1);
  const auto g = io::decode_image(gray);
  REQUIRE(shape_of(g) == std::vector<std::size_t>{1, static_cast<std::size_t>(h), static_cast<std::size_t>(w)});
  CHECK(close_to(g, {128}));
  CHECK(shape_of(io::decode_image(gray, {.channels = io::ImageChannels::rgb}))[0] == 3);
}

TEST_CASE("files: read_image detects the format and names the file", "[io][image]") {
  std::random_device entropy;
  const fs::path dir = fs::temp_directory_path() / ("fhetensor_test_image_" + std::to_string(entropy()));
  fs::create_directory(dir);
  const auto png = encode_png(3, 2, PNG_COLOR_TYPE_RGB, interleaved(3, 2, 3));
  // The name says JPEG, the bytes say PNG: the bytes win.
  io::write_file_atomically(dir / "really_a_png.jpg", png);
  check_pattern(io::read_image(dir / "really_a_png.jpg"), 3, 2, 3);
  io::write_file_atomically(dir / "bad.png", std::string_view("GIF89a........"));
  CHECK_THROWS_WITH(io::read_image(dir / "bad.png"),
                    Contains((dir / "bad.png").string()) && Contains("not a PNG or JPEG image (it starts with 47 49 46 38"));
  CHECK_THROWS_WITH(io::read_image(dir / "bad.png", {.max_file_bytes = 10}), Contains("above the limit of 10 bytes"));
  CHECK_THROWS_WITH(io::read_image(dir / "missing.png"), Contains("cannot open"));
  fs::remove_all(dir);
}

TEST_CASE("absurd image sizes are refused from the header, before decoding", "[io][image]") {
  const auto png = encode_png(16, 16, PNG_COLOR_TYPE_RGB, interleaved(16, 16, 3));
  const auto jpeg = encode_jpeg(interleaved(16, 16, 3), 16, 16, 3);
  // A valid small image against a small limit.
  CHECK_THROWS_WITH(io::decode_image(png, {.max_pixels = 255}), Contains("16 x 16 pixels, above the limit of 255"));
  CHECK(io::decode_image(png, {.max_pixels = 256}).size() == 3 * 256);
  CHECK_THROWS_WITH(io::decode_image(jpeg, {.max_pixels = 255}), Contains("16 x 16 pixels, above the limit of 255"));
  CHECK(io::decode_image(jpeg, {.max_pixels = 256}).size() == 3 * 256);
  // Headers claiming billions of pixels over a few hundred bytes of data.
  CHECK_THROWS_WITH(io::decode_image(with_png_size(png, 100000, 100000)),
                    Contains("100000 x 100000 pixels, above the limit of 50000000"));
  CHECK_THROWS_WITH(io::decode_image(with_jpeg_size(jpeg, 65000, 65000)), Contains("65000 x 65000 pixels, above the limit"));
  // Within the limit but with the data missing: truncated, not a gray image.
  CHECK_THROWS_WITH(io::decode_image(with_png_size(png, 5000, 5000)), Contains("PNG: "));
  CHECK_THROWS_WITH(io::decode_image(with_jpeg_size(jpeg, 5000, 5000)), Contains("JPEG: Corrupt JPEG data: premature end of data segment"));
  CHECK_THROWS_WITH(io::decode_image(with_png_size(png, 0, 16)), Contains("PNG: "));
}

TEST_CASE("wrong magic, empty and cut images are errors", "[io][image]") {
  CHECK_THROWS_WITH(io::decode_image(Bytes{}), Contains("fhetensor: image data: not a PNG or JPEG image (it starts with nothing)"));
  CHECK_THROWS_AS(io::decode_image(Bytes{0x89, 'P', 'N', 'G'}), io::ImageError);
  CHECK_THROWS_AS(io::decode_image(Bytes{0xff, 0xd8}), io::ImageError);
  CHECK_THROWS_WITH(io::decode_image(Bytes{0xff, 0xd8, 0xff}), Contains("JPEG: "));

  const auto png = encode_png(5, 4, PNG_COLOR_TYPE_RGB_ALPHA, interleaved(5, 4, 4));
  const auto jpeg = encode_jpeg(interleaved(8, 8, 3), 8, 8, 3, 90, true);
  for (const Bytes* image : {&png, &jpeg}) {
    INFO((image == &png ? "PNG" : "JPEG") << " of " << image->size() << " bytes");
    std::size_t not_thrown = 0;
    for (std::size_t keep = 0; keep < image->size(); ++keep) {
      try {
        io::decode_image(std::span(image->data(), keep));
        ++not_thrown;
        UNSCOPED_INFO("decoded when cut to " << keep << " bytes");
      } catch (const io::ImageError&) {
      }
    }
    CHECK(not_thrown == 0);
  }
}

TEST_CASE("every bit flipped: ImageError or a well-formed image, never a crash", "[io][image]") {
  const auto png = encode_png(6, 5, PNG_COLOR_TYPE_RGB, interleaved(6, 5, 3));
  const auto jpeg = encode_jpeg(interleaved(16, 8, 3), 16, 8, 3, 75);
  const auto progressive = encode_jpeg(interleaved(8, 8, 1), 8, 8, 1, 75, true);
  for (const Bytes* image : {&png, &jpeg, &progressive}) {
    INFO("image of " << image->size() << " bytes");
    std::size_t decoded = 0, malformed = 0;
    for (std::size_t bit = 0; bit < image->size() * 8; ++bit) {
      auto flipped = *image;
      flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      for (const auto channels : {io::ImageChannels::keep, io::ImageChannels::gray}) {
        try {
          const auto a = io::decode_image(flipped, {.channels = channels});
          ++decoded;
          if (!well_formed(a)) ++malformed;
        } catch (const io::ImageError&) {
        }
      }
    }
    CHECK(malformed == 0);
    // Flips in JPEG's entropy-coded data mostly decode (to other pixels); PNG's CRCs
    // catch every flip.
    CHECK((image == &png ? decoded == 0 : decoded > image->size()));
  }
}

TEST_CASE("library warnings do not reach stderr", "[io][image]") {
  // JPEG: junk before the final EOI marker ("Corrupt JPEG data: 3 extraneous bytes").
  auto jpeg = encode_jpeg(interleaved(8, 8, 3), 8, 8, 3);
  jpeg.insert(jpeg.end() - 2, {0x12, 0x34, 0x56});
  // PNG: an unknown ancillary chunk with a wrong CRC, inserted after IHDR ("CRC error").
  auto png = encode_png(2, 2, PNG_COLOR_TYPE_GRAY, Bytes{1, 2, 3, 4});
  png.insert(png.begin() + 33, {0, 0, 0, 1, 'z', 'z', 'Z', 'z', 42, 0xde, 0xad, 0xbe, 0xef});
  xt::xarray<std::int64_t> a, b;
  const std::string printed = captured_stderr([&] {
    a = io::decode_image(jpeg);
    b = io::decode_image(png);
    std::fputs("probe", stderr);  // shows that the capture works
  });
  CHECK(printed == "probe");
  CHECK(shape_of(a) == std::vector<std::size_t>{3, 8, 8});
  CHECK(std::vector<std::int64_t>(b.begin(), b.end()) == std::vector<std::int64_t>{1, 2, 3, 4});
}

TEST_CASE("resize_bilinear matches PyTorch's bilinear (align_corners=False, no antialias)", "[io][image]") {
  xt::xarray<float> square = {{{0.f, 1.f}, {2.f, 3.f}}};
  // 2 -> 4: source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (last pixel).
  const xt::xarray<float> up = io::resize_bilinear(square, 4, 4);
  const std::vector<float> expected = {0.f,  0.25f, 0.75f, 1.f,  0.5f, 0.75f, 1.25f, 1.5f,
                                       1.5f, 1.75f, 2.25f, 2.5f, 2.f,  2.25f, 2.75f, 3.f};
  REQUIRE(up.shape(1) == 4);
  CHECK(std::vector<float>(up.begin(), up.end()) == expected);
  // 4 -> 2 samples at 0.5 and 2.5: means of pairs (no antialiasing needed at factor 2).
  const xt::xarray<double> row = {{{0.0, 10.0, 20.0, 40.0}}};
  const xt::xarray<double> down = io::resize_bilinear(row, 1, 2);
  CHECK(std::vector<double>(down.begin(), down.end()) == std::vector<double>{5.0, 30.0});
  // Same size: unchanged; a constant image stays constant at any size.
  CHECK((io::resize_bilinear(up, 4, 4) == up));
  auto flat = xt::xarray<double>::from_shape({2, 7, 5});
  flat.fill(0.375);
  const xt::xarray<double> resized = io::resize_bilinear(flat, 3, 11);
  CHECK(resized.shape(0) == 2);
  for (const double v : resized) REQUIRE(v == 0.375);
  CHECK_THROWS_AS(io::resize_bilinear(xt::xarray<float>::from_shape({2, 2}), 1, 1), std::invalid_argument);
}

TEST_CASE("center_crop places the window as torchvision does", "[io][image]") {
  auto grid = xt::xarray<std::int64_t>::from_shape({1, 5, 6});
  for (std::size_t i = 0; i < grid.size(); ++i) grid.data()[i] = static_cast<std::int64_t>(i);
  // Offsets round((5 - 3) / 2) = 1 and round((6 - 1) / 2) = round(2.5) = 2 (half to even).
  const auto a = io::center_crop(grid, 3, 1);
  CHECK(std::vector<std::int64_t>(a.begin(), a.end()) == std::vector<std::int64_t>{1 * 6 + 2, 2 * 6 + 2, 3 * 6 + 2});
  // round((5 - 2) / 2) = round(1.5) = 2; round((6 - 5) / 2) = round(0.5) = 0.
  const auto b = io::center_crop(grid, 2, 5);
  CHECK(b(0, 0, 0) == 2 * 6 + 0);
  CHECK(b(0, 1, 4) == 3 * 6 + 4);
  CHECK((io::center_crop(grid, 5, 6) == grid));
  CHECK_THROWS_AS(io::center_crop(grid, 6, 6), std::invalid_argument);
}
