#pragma once
// Reading MNIST-style idx files (idx3 images, idx1 labels, unsigned bytes), plain or
// gzip-compressed, and finding the MNIST and Fashion-MNIST files on this machine.
//
// Needs zlib: link fhetensor::io (not fhetensor::fhetensor alone), which is why this header
// is not part of <fhetensor/fhetensor.hpp>.
//
// The files are untrusted input: the magic number is checked, each dimension and the total
// size are bounded before anything is allocated, and a file holding fewer bytes than its
// header promises is an error, never a short read. Errors are std::runtime_error naming the
// file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace io {

/// Images of an idx3 file, row-major: image i, row r, column c is
/// pixels[(i * rows + r) * cols + c].
struct IdxImages {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> pixels;

  std::size_t image_size() const noexcept { return rows * cols; }
  const std::uint8_t* image(std::size_t i) const noexcept { return pixels.data() + i * image_size(); }
};

/// Bounds on what a header may claim, far above the real datasets (60,000 images of
/// 28x28): a corrupt or hostile header must not make us allocate gigabytes.
inline constexpr std::uint64_t idx_max_side = 4096;
inline constexpr std::uint64_t idx_max_bytes = std::uint64_t{1} << 30;

/// "Everything in the file", for the limit arguments below.
inline constexpr std::size_t idx_no_limit = std::numeric_limits<std::size_t>::max();

namespace detail {

[[noreturn]] inline void idx_fail(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error("idx file " + path.string() + ": " + what);
}

// gzread reads plain files unchanged ("transparent" mode), so one reader serves both.
class GzReader {
 public:
  explicit GzReader(const std::filesystem::path& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (file_ == nullptr) idx_fail(path_, "cannot open");
    gzbuffer(file_, 1 << 17);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() { gzclose(file_); }

  // Fills `out` entirely, or throws: a short read means the file is truncated.
  void read_exactly(void* out, std::size_t size, const char* what) {
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t done = 0;
    while (done < size) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30));
      const int got = gzread(file_, bytes + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        idx_fail(path_, std::string("corrupt data while reading ") + what + " (" + message + ")");
      }
      if (got == 0) {
        idx_fail(path_, std::string("truncated: ") + what + " needs " + std::to_string(size) +
                            " bytes, only " + std::to_string(done) + " present");
      }
      done += static_cast<std::size_t>(got);
    }
  }

  std::uint32_t read_big_endian_u32(const char* what) {
    unsigned char b[4];
    read_exactly(b, 4, what);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  }

 private:
  std::filesystem::path path_;
  gzFile file_;
};

// Reads the header of an unsigned-byte idx file with `dims` dimensions and returns them.
inline std::vector<std::uint64_t> read_idx_header(GzReader& in, const std::filesystem::path& path,
                                                  std::uint32_t dims, const char* kind) {
  const std::uint32_t expected_magic = 0x0800u | dims;
  const std::uint32_t magic = in.read_big_endian_u32("the magic number");
  if (magic != expected_magic) {
    char hex[64];
    std::snprintf(hex, sizeof hex, "bad magic 0x%08x, expected 0x%08x", magic, expected_magic);
    idx_fail(path, std::string(hex) + " (" + kind + ")");
  }
  std::vector<std::uint64_t> sizes;
  for (std::uint32_t d = 0; d < dims; ++d) sizes.push_back(in.read_big_endian_u32("the header"));
  for (std::size_t d = 1; d < sizes.size(); ++d) {
    if (sizes[d] == 0 || sizes[d] > idx_max_side) {
      idx_fail(path, "dimension " + std::to_string(d) + " is " + std::to_string(sizes[d]) +
                         ", outside [1, " + std::to_string(idx_max_side) + "]");
    }
  }
  return sizes;
}

// Items to read: the header's count, capped by `limit`, with the total size bounded.
inline std::size_t items_to_read(const std::filesystem::path& path, std::uint64_t count, std::size_t limit,
                                 std::uint64_t item_bytes) {
  const std::uint64_t items = std::min<std::uint64_t>(count, limit);
  if (items > idx_max_bytes / item_bytes) {
    idx_fail(path, std::to_string(items) + " items of " + std::to_string(item_bytes) +
                       " bytes exceed the size limit of " + std::to_string(idx_max_bytes) + " bytes");
  }
  return static_cast<std::size_t>(items);
}

}  // namespace detail

/// The first min(limit, count) images of an idx3 unsigned-byte file, plain or gzipped.
inline IdxImages read_idx_images(const std::filesystem::path& path, std::size_t limit = idx_no_limit) {
  detail::GzReader in(path);
  const auto sizes = detail::read_idx_header(in, path, 3, "idx3 unsigned-byte images");
  IdxImages images;
  images.rows = static_cast<std::size_t>(sizes[1]);
  images.cols = static_cast<std::size_t>(sizes[2]);
  images.count = detail::items_to_read(path, sizes[0], limit, sizes[1] * sizes[2]);
  images.pixels.resize(images.count * images.rows * images.cols);
  in.read_exactly(images.pixels.data(), images.pixels.size(), "the pixels");
  return images;
}

/// The first min(limit, count) labels of an idx1 unsigned-byte file, plain or gzipped.
inline std::vector<std::uint8_t> read_idx_labels(const std::filesystem::path& path,
                                                 std::size_t limit = idx_no_limit) {
  detail::GzReader in(path);
  const auto sizes = detail::read_idx_header(in, path, 1, "idx1 unsigned-byte labels");
  std::vector<std::uint8_t> labels(detail::items_to_read(path, sizes[0], limit, 1));
  in.read_exactly(labels.data(), labels.size(), "the labels");
  return labels;
}

// ---- Finding the datasets ----------------------------------------------------------------

enum class Dataset { mnist, fashion_mnist };
enum class Split { train, test };

/// The images and labels of one split of a dataset.
struct IdxSplitFiles {
  std::filesystem::path images;
  std::filesystem::path labels;
};

/// Where the project's shared data lives: $FHETENSOR_DATA, else ../shared/data beside the
/// source tree this header belongs to, when that folder exists.
inline std::optional<std::filesystem::path> data_root() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("FHETENSOR_DATA"); env != nullptr && *env != '\0') return fs::path(env);
  // This header is <root>/include/fhetensor/io/idx.hpp in the source tree; an installed
  // copy has no source tree beside it.
  std::error_code ec;
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
  const fs::path shared = root.parent_path() / "shared" / "data";
  if (fs::is_regular_file(root / "CMakeLists.txt", ec) && fs::is_directory(shared, ec)) return shared;
  return std::nullopt;
}

/// Where the Debian package dataset-fashion-mnist puts its idx files.
inline constexpr std::string_view fashion_mnist_debian_dir = "/usr/share/datasets/fashion-mnist";

namespace detail {

// `stem` with .gz preferred, or plain.
inline std::optional<std::filesystem::path> find_idx_file(const std::filesystem::path& dir, const std::string& stem) {
  std::error_code ec;
  for (const std::string& name : {stem + ".gz", stem}) {
    if (std::filesystem::is_regular_file(dir / name, ec)) return dir / name;
  }
  return std::nullopt;
}

inline std::optional<IdxSplitFiles> find_split_in(const std::filesystem::path& dir, Split split) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  auto images = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  auto labels = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  if (!images || !labels) return std::nullopt;
  return IdxSplitFiles{*images, *labels};
}

}  // namespace detail

/// The idx files of one split, or nullopt when they are not on this machine (tests skip
/// then). MNIST: <data_root>/mnist. Fashion-MNIST: <data_root>/fashion-mnist if present,
/// else the Debian package's folder.
inline std::optional<IdxSplitFiles> find_dataset(Dataset dataset, Split split) {
  const auto root = data_root();
  if (dataset == Dataset::mnist) return root ? detail::find_split_in(*root / "mnist", split) : std::nullopt;
  if (root) {
    if (auto files = detail::find_split_in(*root / "fashion-mnist", split)) return files;
  }
  return detail::find_split_in(std::filesystem::path(fashion_mnist_debian_dir), split);
}

}  // namespace io
FHETENSOR_END_NAMESPACE
