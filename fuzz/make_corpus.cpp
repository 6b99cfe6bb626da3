// Writes the seed corpora of the fuzz targets into <directory>/<target>/, from real objects
// made at run time (nothing binary is committed): a compiled model, keys from a seeded
// Csprng, encrypted inputs, .npy arrays and, when built with the image decoder, PNG and
// JPEG images, weight files. Inputs of the object targets are [instance byte][payload]
// (fuzz_support.hpp); envelope/ gets whole sealed files.
//   make_corpus <directory>
// Also writes <directory>/server_keys_full/: a complete server key (tens of megabytes),
// run once by tools/check_sanitizers.sh rather than fuzzed (inputs are capped by -max_len).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>
#include <fhetensor/fhetensor.hpp>
#include <fhetensor/io/npy.hpp>
#include <fhetensor/nn/weight_file.hpp>
#include <fhetensor/serialization/files.hpp>
#ifdef FHETENSOR_FUZZ_IMAGE
#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#endif

using namespace fhetensor;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, std::span<const std::uint8_t> bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("make_corpus: cannot write " + path.string());
}

/// A sealed object as the object targets take it: its instance byte, then its payload.
std::vector<std::uint8_t> fuzz_input(std::span<const std::uint8_t> sealed) {
  const EnvelopeHeader header = read_header(sealed);
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(header.instance)};
  out.insert(out.end(), sealed.begin() + format::header_size, sealed.end());
  return out;
}

/// A .npy file of any dtype, written by hand (encode_npy writes '<i8' only).
std::vector<std::uint8_t> npy(int major, const std::string& descr, const std::string& shape, std::size_t data_bytes,
                              bool fortran = false) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
  const std::size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<std::uint8_t> out{0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  for (std::size_t i = 0; i < preamble - 8; ++i) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  for (std::size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<std::uint8_t>(i * 37 + 1));
  return out;
}

#ifdef FHETENSOR_FUZZ_IMAGE
void png_append(png_structp png, png_bytep data, std::size_t length) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}
void png_flush(png_structp) {}

/// A width x height PNG of `color_type` and `depth` (a gradient; a palette of 4 colours,
/// with transparency when `trns`; interlaced when asked).
std::vector<std::uint8_t> png(int width, int height, int color_type, int depth, bool interlace = false, bool trns = false) {
  std::vector<std::uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) throw std::runtime_error("make_corpus: libpng failed");
  png_set_write_fn(png, &out, png_append, png_flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), depth, color_type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {40, 80, 160}};
    png_set_PLTE(png, info, palette, 4);
    if (trns) {
      png_byte alpha[2] = {0, 128};
      png_set_tRNS(png, info, alpha, 2, nullptr);
    }
  }
  png_text text{};
  text.compression = PNG_TEXT_COMPRESSION_NONE;
  text.key = const_cast<char*>("Comment");
  text.text = const_cast<char*>("fhetensor fuzz seed");
  png_set_text(png, info, &text, 1);
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const std::size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<std::uint8_t> row(row_bytes);
  const int passes = interlace ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; ++pass)
    for (int y = 0; y < height; ++y) {
      for (std::size_t i = 0; i < row_bytes; ++i)
        row[i] = static_cast<std::uint8_t>(color_type == PNG_COLOR_TYPE_PALETTE ? ((i + y) % 4) * (depth == 8 ? 1 : 0x55 / 3)
                                                                                 : (i * 29 + y * 13 + channels));
      png_write_row(png, row.data());
    }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

/// A width x height JPEG of 1 or 3 components, baseline or progressive.
std::vector<std::uint8_t> jpeg(int width, int height, int components, bool progressive, int quality = 75) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(width * components));
  while (cinfo.next_scanline < cinfo.image_height) {
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<std::uint8_t>(i * 7 + cinfo.next_scanline * 11);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <directory>\n";
    return 2;
  }
  const fs::path dir = argv[1];

  // Models: a dense layer and a ReLU; a convolution, pooling, a sum and two inputs (every
  // node kind the DSL has); per-element tables.
  Tensor<int, 2> w{{1, -1}, {2, 0}, {-1, 1}, {0, 3}};
  const CompiledModel mlp = compile([&](auto x) { return relu(dense(x, w)); }, input<Tensor<int, 1>, Bits<3>>({4}));
  Tensor<int, 4> k = xt::zeros<int>({2, 1, 3, 3});
  for (std::size_t i = 0; i < k.size(); ++i) k.flat(i) = static_cast<int>(i % 3) - 1;
  const CompiledModel cnn = compile(
      [&](auto image, auto bias) {
        auto features = relu(conv2d(image, k, 0, Conv2dOptions{.padding = {1, 1, 1, 1}}));
        auto pooled = max_pool2d(features, Window2d{.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2});
        return std::tuple{sum(bias) * 2 + 1, flatten(pooled)};
      },
      std::tuple{input<Tensor<int, 3>, Bits<1>>({1, 4, 4}), input<Tensor<int, 1>, SignedBits<3>>({3})});
  const CompiledModel tiny = compile([](auto x) { return relu(x - 2) * 3; }, input<Tensor<int, 1>, Bits<2>>({1}));
  int n = 0;
  for (const CompiledModel* m : {&mlp, &cnn, &tiny}) {
    const auto bytes = serialize(*m);
    write(dir / "model" / ("model" + std::to_string(n)), fuzz_input(bytes));
    write(dir / "envelope" / ("model" + std::to_string(n)), bytes);
    ++n;
  }

  // Keys (seeded: the corpus is reproducible) and ciphertexts, for the models' set.
  Csprng::Seed seed{};
  seed[0] = 17;
  Csprng rng(seed);
  ClientKeys keys = ClientKeys::generate(tiny, rng);
  const auto secret = export_client_keys(keys);
  write(dir / "client_keys" / "keys", fuzz_input(secret));
  write(dir / "envelope" / "client_keys", secret);

  const auto one = serialize(keys.encrypt(tiny, {ClearTensor{3}}));
  write(dir / "ciphertexts" / "one", fuzz_input(one));
  write(dir / "envelope" / "ciphertexts", one);
  const CompiledModel tiny4 = compile([](auto x) { return relu(x - 2) * 3; }, input<Tensor<int, 1>, Bits<2>>({4}));
  if (tiny4.instance == tiny.instance) {
    const ClearTensor x = {1, 3, 0, 2};
    write(dir / "ciphertexts" / "four", fuzz_input(serialize(keys.encrypt(tiny4, {x}))));
  }
  std::vector<CiphertextTensor> two = keys.encrypt(tiny, {ClearTensor{1}});
  two.push_back(two[0]);
  two[1].shape = {1, 1};
  write(dir / "ciphertexts" / "two", fuzz_input(serialize(two)));

  // Server keys: complete for the full load, and their first bytes (seed, counts, the
  // first bodies) for fuzzing.
  const auto server = serialize(keys.compressed_server_keys());
  const auto server_input = fuzz_input(server);
  write(dir / "server_keys_full" / "keys", server_input);
  for (std::size_t cut : {std::size_t{48}, std::size_t{512}, std::size_t{4096}})
    write(dir / "server_keys" / ("head" + std::to_string(cut)), std::span(server_input).first(cut));
  write(dir / "envelope" / "server_keys_head", std::span(server).first(4096));

  // .npy: what numpy writes for each dtype, in each format version.
  write(dir / "npy" / "i8", io::encode_npy(xt::xarray<std::int64_t>{{1, -2, 3}, {4, 5, -6}}));
  write(dir / "npy" / "scalar", io::encode_npy(xt::xarray<std::int64_t>(7)));
  write(dir / "npy" / "u1", npy(1, "|u1", "(2, 3, 4)", 24));
  write(dir / "npy" / "i1", npy(1, "|i1", "(5,)", 5));
  write(dir / "npy" / "i2", npy(1, "<i2", "(3, 1)", 6));
  write(dir / "npy" / "u2", npy(1, "<u2", "(2,)", 4));
  write(dir / "npy" / "i4", npy(2, "<i4", "(2, 2)", 16));
  write(dir / "npy" / "u4", npy(3, "<u4", "(1,)", 4));
  write(dir / "npy" / "u8", npy(1, "<u8", "(2,)", 16));
  write(dir / "npy" / "f4", npy(1, "<f4", "(4,)", 16));
  write(dir / "npy" / "f8", npy(1, "<f8", "(1, 2)", 16));
  write(dir / "npy" / "empty", npy(1, "<f8", "(0, 3)", 0));
  write(dir / "npy" / "fortran", npy(1, "<i8", "(2, 2)", 32, true));

  // Weight files as tools/onnx_import.py writes them: a few tensors, one of them empty.
  nn::WeightFile weights;
  weights.insert("conv.weight", xt::xarray<float>({{{{0.5f, -1.0f}, {2.0f, 0.25f}}}}));
  weights.insert("fc.bias", xt::xarray<float>{1.0f, -2.0f, 3.0f});
  weights.insert("empty", xt::xarray<float>::from_shape({0, 3}));
  weights.insert("scalar", xt::xarray<float>(7.0f));
  const std::string weight_bytes = weights.serialize();
  write(dir / "weight_file" / "weights", std::span(reinterpret_cast<const std::uint8_t*>(weight_bytes.data()), weight_bytes.size()));

#ifdef FHETENSOR_FUZZ_IMAGE
  write(dir / "image" / "gray.png", png(7, 5, PNG_COLOR_TYPE_GRAY, 8));
  write(dir / "image" / "gray2.png", png(9, 3, PNG_COLOR_TYPE_GRAY, 2));
  write(dir / "image" / "gray_alpha.png", png(4, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8));
  write(dir / "image" / "rgb16.png", png(5, 6, PNG_COLOR_TYPE_RGB, 16));
  write(dir / "image" / "rgba_interlaced.png", png(9, 9, PNG_COLOR_TYPE_RGBA, 8, true));
  write(dir / "image" / "palette.png", png(6, 4, PNG_COLOR_TYPE_PALETTE, 8));
  write(dir / "image" / "palette_trns.png", png(6, 4, PNG_COLOR_TYPE_PALETTE, 2, false, true));
  write(dir / "image" / "gray.jpg", jpeg(16, 8, 1, false));
  write(dir / "image" / "rgb.jpg", jpeg(13, 11, 3, false, 90));
  write(dir / "image" / "progressive.jpg", jpeg(17, 9, 3, true));
#endif
  std::cout << "make_corpus: seed corpora written to " << dir.string() << " (keys of " << instance_name(tiny.instance)
            << ", server key of " << server.size() << " bytes)\n";
  return 0;
}
