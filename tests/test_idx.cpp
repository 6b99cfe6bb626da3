// The idx dataset reader (io/idx.hpp): small files written here, plain and gzipped, read
// back exactly; truncated, corrupt and hostile files are errors naming the file; and the
// real MNIST test labels when ../shared/data is present.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include <fhetensor/io/idx.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using TempDir = testing::TempDir;

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::vector<std::uint8_t> idx3_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::vector<std::uint8_t> out;
  put_u32(out, 0x00000803);
  put_u32(out, count);
  put_u32(out, rows);
  put_u32(out, cols);
  for (std::uint32_t i = 0; i < count * rows * cols; ++i) out.push_back(static_cast<std::uint8_t>(i * 7 + 3));
  return out;
}

std::vector<std::uint8_t> idx1_bytes(const std::vector<std::uint8_t>& labels) {
  std::vector<std::uint8_t> out;
  put_u32(out, 0x00000801);
  put_u32(out, static_cast<std::uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

void write_plain(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<std::uint8_t> read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("idx images and labels read back exactly, plain and gzipped", "[io]") {
  TempDir dir("fhetensor_test_idx_");
  const auto images = idx3_bytes(5, 3, 4);
  const std::vector<std::uint8_t> labels{7, 2, 1, 0, 4};
  for (const bool gzipped : {false, true}) {
    INFO((gzipped ? "gzip" : "plain"));
    const fs::path image_file = dir.path / (gzipped ? "images.gz" : "images");
    const fs::path label_file = dir.path / (gzipped ? "labels.gz" : "labels");
    (gzipped ? write_gzip : write_plain)(image_file, images);
    (gzipped ? write_gzip : write_plain)(label_file, idx1_bytes(labels));

    const io::IdxImages read = io::read_idx_images(image_file);
    CHECK(read.count == 5);
    CHECK(read.rows == 3);
    CHECK(read.cols == 4);
    CHECK(read.pixels == std::vector<std::uint8_t>(images.begin() + 16, images.end()));
    CHECK(read.image(2)[1 * 4 + 3] == images[16 + 2 * 12 + 1 * 4 + 3]);
    CHECK(io::read_idx_labels(label_file) == labels);

    // A limit reads a prefix; a limit past the end reads everything.
    const io::IdxImages first_two = io::read_idx_images(image_file, 2);
    CHECK(first_two.count == 2);
    CHECK(first_two.pixels == std::vector<std::uint8_t>(images.begin() + 16, images.begin() + 16 + 24));
    CHECK(io::read_idx_labels(label_file, 3) == std::vector<std::uint8_t>{7, 2, 1});
    CHECK(io::read_idx_labels(label_file, 100) == labels);
    CHECK(io::read_idx_labels(label_file, 0).empty());
  }
}

TEST_CASE("truncated idx files are errors naming the file", "[io]") {
  TempDir dir("fhetensor_test_idx_");
  const auto images = idx3_bytes(4, 5, 5);
  const std::vector<std::uint8_t> labels{1, 2, 3, 4, 5, 6};
  for (const bool gzipped : {false, true}) {
    INFO((gzipped ? "gzip" : "plain"));
    const auto write = gzipped ? write_gzip : write_plain;
    const fs::path file = dir.path / (gzipped ? "short.gz" : "short");

    // One pixel missing, no pixels at all, and a header cut short.
    for (const std::size_t keep : {images.size() - 1, std::size_t{16}, std::size_t{10}, std::size_t{0}}) {
      INFO("kept " << keep << " bytes");
      write(file, std::vector<std::uint8_t>(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(keep)));
      CHECK_THROWS_WITH(io::read_idx_images(file), Contains(file.string()) && Contains("truncated"));
    }
    // A prefix that is present can still be read: the limit decides what is needed.
    write(file, std::vector<std::uint8_t>(images.begin(), images.end() - 1));
    CHECK(io::read_idx_images(file, 3).count == 3);

    const auto label_bytes = idx1_bytes(labels);
    write(file, std::vector<std::uint8_t>(label_bytes.begin(), label_bytes.end() - 2));
    CHECK_THROWS_WITH(io::read_idx_labels(file), Contains(file.string()) && Contains("truncated"));
  }
}

TEST_CASE("a gzip stream cut short or damaged is an error", "[io]") {
  TempDir dir("fhetensor_test_idx_");
  const fs::path whole = dir.path / "whole.gz";
  write_gzip(whole, idx3_bytes(50, 28, 28));
  const auto compressed = read_all(whole);
  REQUIRE(compressed.size() > 64);

  const fs::path cut = dir.path / "cut.gz";
  write_plain(cut, std::vector<std::uint8_t>(compressed.begin(), compressed.begin() + compressed.size() / 2));
  CHECK_THROWS_WITH(io::read_idx_images(cut), Contains(cut.string()));

  // Flipped bits in the deflate stream: a data error or a CRC mismatch, never silent.
  auto damaged = compressed;
  for (std::size_t i = 20; i < damaged.size() - 8; i += 7) damaged[i] ^= 0x5a;
  const fs::path bad = dir.path / "bad.gz";
  write_plain(bad, damaged);
  CHECK_THROWS_WITH(io::read_idx_images(bad), Contains(bad.string()));
}

TEST_CASE("idx headers that are wrong or hostile are rejected before allocating", "[io]") {
  TempDir dir("fhetensor_test_idx_");
  const fs::path file = dir.path / "header";

  SECTION("labels given where images are expected, and the other way round") {
    write_plain(file, idx1_bytes({1, 2, 3}));
    CHECK_THROWS_WITH(io::read_idx_images(file), Contains(file.string()) && Contains("bad magic"));
    write_plain(file, idx3_bytes(1, 2, 2));
    CHECK_THROWS_WITH(io::read_idx_labels(file), Contains(file.string()) && Contains("bad magic"));
  }
  SECTION("a file that is not idx at all") {
    write_plain(file, std::vector<std::uint8_t>{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'});
    CHECK_THROWS_WITH(io::read_idx_labels(file), Contains("bad magic"));
  }
  SECTION("zero or enormous image sides") {
    std::vector<std::uint8_t> header;
    put_u32(header, 0x00000803);
    put_u32(header, 1);
    put_u32(header, 0);
    put_u32(header, 28);
    write_plain(file, header);
    CHECK_THROWS_WITH(io::read_idx_images(file), Contains("dimension 1"));
    header.clear();
    put_u32(header, 0x00000803);
    put_u32(header, 1);
    put_u32(header, 28);
    put_u32(header, 0xFFFFFFFF);
    write_plain(file, header);
    CHECK_THROWS_WITH(io::read_idx_images(file), Contains("dimension 2"));
  }
  SECTION("a count whose total size exceeds the limit") {
    std::vector<std::uint8_t> header;
    put_u32(header, 0x00000803);
    put_u32(header, 0xFFFFFFFF);
    put_u32(header, 4096);
    put_u32(header, 4096);
    write_plain(file, header);
    CHECK_THROWS_WITH(io::read_idx_images(file), Contains("size limit"));
    // With a small limit only what is asked for is allocated, and then found missing.
    CHECK_THROWS_WITH(io::read_idx_images(file, 1), Contains("truncated"));
  }
  SECTION("a file that does not exist") {
    CHECK_THROWS_WITH(io::read_idx_labels(dir.path / "missing"), Contains("missing") && Contains("cannot open"));
  }
}

TEST_CASE("the real MNIST test set, when present", "[io][data]") {
  const auto files = io::find_dataset(io::Dataset::mnist, io::Split::test);
  if (!files) {
    WARN("MNIST not found (set FHETENSOR_DATA or provide ../shared/data/mnist): skipped");
    return;
  }
  const auto labels = io::read_idx_labels(files->labels);
  REQUIRE(labels.size() == 10000);
  CHECK(std::vector<std::uint8_t>(labels.begin(), labels.begin() + 5) == std::vector<std::uint8_t>{7, 2, 1, 0, 4});
  for (const std::uint8_t label : labels) REQUIRE(label < 10);

  const io::IdxImages images = io::read_idx_images(files->images, 100);
  CHECK(images.count == 100);
  CHECK(images.rows == 28);
  CHECK(images.cols == 28);
}

TEST_CASE("the Fashion-MNIST test set, when present", "[io][data]") {
  const auto files = io::find_dataset(io::Dataset::fashion_mnist, io::Split::test);
  if (!files) {
    WARN("Fashion-MNIST not found (install dataset-fashion-mnist): skipped");
    return;
  }
  const auto labels = io::read_idx_labels(files->labels);
  REQUIRE(labels.size() == 10000);
  // Fashion-MNIST's test set opens with ankle boot, pullover, trouser, trouser, shirt.
  CHECK(std::vector<std::uint8_t>(labels.begin(), labels.begin() + 5) == std::vector<std::uint8_t>{9, 2, 1, 1, 6});
  const io::IdxImages images = io::read_idx_images(files->images, 10);
  CHECK(images.count == 10);
  CHECK(images.rows == 28);
}
