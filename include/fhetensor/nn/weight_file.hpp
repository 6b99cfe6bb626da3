#pragma once
// A model's named float tensors (weights, and in tests inputs and expected outputs), as
// tools/onnx_import.py writes them. The format is small enough to check completely:
//
//   magic "FHTWGT" (6 bytes), format version (u16 = 1), tensor count (u32), then per tensor
//   name length (u32), name (UTF-8), rank (u8), extents (rank x u64), float32 data
//
// all little-endian. Loading is bounded: every length is checked against the bytes left
// and against the limits below before anything is allocated.
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <xtensor/xarray.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

struct WeightFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class WeightFile {
 public:
  static constexpr std::string_view magic = "FHTWGT";
  static constexpr std::uint16_t version = 1;
  static constexpr std::uint64_t max_bytes = std::uint64_t{4} << 30;  // 4 GiB
  static constexpr std::size_t max_rank = 8;

  WeightFile() = default;

  static WeightFile load(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw WeightFileError("fhetensor: cannot open the weight file " + path);
    const auto end = in.tellg();
    if (end < 0) throw WeightFileError("fhetensor: cannot read " + path);  // a directory, say
    const auto size = static_cast<std::uint64_t>(end);
    if (size > max_bytes) throw WeightFileError("fhetensor: " + path + " is larger than the 4 GiB a weight file may hold");
    std::string bytes(size, '\0');
    in.seekg(0);
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (!in) throw WeightFileError("fhetensor: cannot read " + path);
    try {
      return parse(bytes);
    } catch (const WeightFileError& e) {
      throw WeightFileError(std::string(e.what()) + " (in " + path + ")");
    }
  }

  /// Parses a whole file held in memory; throws WeightFileError on any inconsistency.
  static WeightFile parse(std::string_view bytes) {
    static_assert(std::endian::native == std::endian::little, "weight files are little-endian");
    Reader r{bytes};
    if (r.take(magic.size()) != magic) throw WeightFileError("fhetensor: not a weight file (bad magic bytes)");
    if (const auto v = r.read<std::uint16_t>(); v != version)
      throw WeightFileError("fhetensor: weight file format version " + std::to_string(v) + ", this build reads version " +
                            std::to_string(version));
    WeightFile file;
    const auto count = r.read<std::uint32_t>();
    for (std::uint32_t t = 0; t < count; ++t) {
      const auto name_length = r.read<std::uint32_t>();
      std::string name(r.take(name_length));
      const auto rank = r.read<std::uint8_t>();
      if (rank > max_rank) throw WeightFileError("fhetensor: tensor " + name + " has rank " + std::to_string(rank));
      std::vector<std::size_t> shape(rank);
      std::uint64_t elements = 1;
      std::uint64_t extents = 1;  // product of the non-zero extents: after a 0, `elements` bounds nothing
      for (auto& e : shape) {
        const auto extent = r.read<std::uint64_t>();
        if (extent != 0 && elements > r.left() / 4 / extent)
          throw WeightFileError("fhetensor: tensor " + name + " claims more elements than the file holds");
        // An empty tensor's other extents must still fit xtensor's signed strides.
        if (extent != 0 && extents > (std::uint64_t{1} << 40) / extent)
          throw WeightFileError("fhetensor: tensor " + name + " has a shape of more than 2^40 elements");
        if (extent != 0) extents *= extent;
        elements *= extent;
        e = static_cast<std::size_t>(extent);
      }
      const std::string_view data = r.take(elements * 4);
      xt::xarray<float> values = xt::xarray<float>::from_shape(shape);
      if (!data.empty()) std::memcpy(values.data(), data.data(), data.size());  // an empty tensor may have no buffer
      if (!file.tensors_.emplace(name, std::move(values)).second)
        throw WeightFileError("fhetensor: the weight file holds tensor " + name + " twice");
    }
    if (r.left() != 0) throw WeightFileError("fhetensor: " + std::to_string(r.left()) + " bytes after the last tensor");
    return file;
  }

  const xt::xarray<float>& operator[](const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw WeightFileError("fhetensor: the weight file has no tensor named " + name);
    return it->second;
  }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  void insert(const std::string& name, xt::xarray<float> values) { tensors_[name] = std::move(values); }
  const std::map<std::string, xt::xarray<float>>& tensors() const noexcept { return tensors_; }

  /// The bytes load() reads back.
  std::string serialize() const {
    std::string out(magic);
    auto put = [&out](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(version);
    put(static_cast<std::uint32_t>(tensors_.size()));
    for (const auto& [name, t] : tensors_) {
      put(static_cast<std::uint32_t>(name.size()));
      out += name;
      put(static_cast<std::uint8_t>(t.dimension()));
      for (auto e : t.shape()) put(static_cast<std::uint64_t>(e));
      out.append(reinterpret_cast<const char*>(t.data()), t.size() * sizeof(float));
    }
    return out;
  }

 private:
  struct Reader {
    std::string_view bytes;
    std::uint64_t left() const noexcept { return bytes.size(); }
    std::string_view take(std::uint64_t n) {
      if (n > bytes.size()) throw WeightFileError("fhetensor: the weight file is truncated");
      const auto part = bytes.substr(0, n);
      bytes.remove_prefix(n);
      return part;
    }
    template <class T>
    T read() {
      T v;
      std::memcpy(&v, take(sizeof(T)).data(), sizeof(T));
      return v;
    }
  };
  std::map<std::string, xt::xarray<float>> tensors_;
};

}  // namespace nn

FHETENSOR_END_NAMESPACE
