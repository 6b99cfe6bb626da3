// The weight file (nn/weight_file.hpp): round trips, and every malformed input, truncated,
// bit-flipped or with absurd lengths, is a WeightFileError, never a crash or another error.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <fhetensor/nn/weight_file.hpp>

using fhetensor::nn::WeightFile;
using fhetensor::nn::WeightFileError;

namespace {

WeightFile sample_file() {
  WeightFile file;
  file.insert("conv1.weight", xt::xarray<float>{{{{1.5f, -2.0f}, {0.25f, 3.0f}}}});
  file.insert("conv1.bias", xt::xarray<float>{0.5f});
  file.insert("scalar", xt::xarray<float>(7.0f));
  file.insert("empty", xt::xarray<float>::from_shape({0, 3}));
  file.insert("größe/ünïcode", xt::xarray<float>{{1, 2, 3}, {4, 5, 6}});
  return file;
}

void require_same(const WeightFile& a, const WeightFile& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (const auto& [name, tensor] : a.tensors()) {
    INFO("tensor " << name);
    REQUIRE(b.contains(name));
    CHECK(b[name].shape() == tensor.shape());
    CHECK((b[name] == tensor));  // (()): Catch would take xtensor's <=
  }
}

/// Parses bytes that must be refused, and says whether they were, with WeightFileError only.
bool refused(std::string_view bytes) {
  try {
    WeightFile::parse(bytes);
  } catch (const WeightFileError&) {
    return true;
  }
  return false;
}

template <class T>
void overwrite(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// Offsets into the serialization of a file holding one tensor.
constexpr std::size_t count_offset = 8, name_length_offset = 12, name_offset = 16;

}  // namespace

TEST_CASE("a weight file round-trips through bytes and through a file", "[weight_file]") {
  const WeightFile original = sample_file();
  require_same(original, WeightFile::parse(original.serialize()));

  const auto path = std::filesystem::temp_directory_path() / "fhetensor_test_weight_file.weights";
  {
    std::ofstream out(path, std::ios::binary);
    const auto bytes = original.serialize();
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  require_same(original, WeightFile::load(path.string()));
  std::filesystem::remove(path);
  CHECK_THROWS_AS(WeightFile::load(path.string()), WeightFileError);
  CHECK_THROWS_AS(WeightFile::load(std::filesystem::temp_directory_path().string()), WeightFileError);
  CHECK_THROWS_AS(original["missing"], WeightFileError);
}

TEST_CASE("every truncation of a weight file is refused", "[weight_file]") {
  const std::string bytes = sample_file().serialize();
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    INFO("truncated to " << length << " of " << bytes.size() << " bytes");
    CHECK(refused(std::string_view(bytes).substr(0, length)));
  }
}

TEST_CASE("bad magic, another version and trailing bytes are refused", "[weight_file]") {
  const std::string bytes = sample_file().serialize();
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  CHECK(refused(bad_magic));
  std::string other_version = bytes;
  overwrite(other_version, 6, std::uint16_t{2});
  CHECK_THROWS_WITH(WeightFile::parse(other_version), Catch::Contains("version 2"));
  CHECK(refused(bytes + '\0'));
  CHECK(refused(bytes + bytes));
}

TEST_CASE("absurd lengths, ranks and counts are refused before anything is allocated", "[weight_file]") {
  WeightFile one;
  one.insert("w", xt::xarray<float>{{1, 2}, {3, 4}});
  const std::string bytes = one.serialize();
  const std::size_t rank_offset = name_offset + 1, extents_offset = rank_offset + 1;

  std::string many_tensors = bytes;
  overwrite(many_tensors, count_offset, std::uint32_t{0xFFFFFFFF});
  CHECK(refused(many_tensors));
  std::string long_name = bytes;
  overwrite(long_name, name_length_offset, std::uint32_t{0xFFFFFFFF});
  CHECK(refused(long_name));
  std::string high_rank = bytes;
  high_rank[rank_offset] = static_cast<char>(200);
  CHECK(refused(high_rank));
  for (const std::uint64_t extent : {std::uint64_t{1} << 62, ~std::uint64_t{0}, std::uint64_t{3}}) {
    INFO("first extent " << extent);
    std::string huge = bytes;
    overwrite(huge, extents_offset, extent);
    CHECK(refused(huge));
  }

  WeightFile twice;
  twice.insert("w", xt::xarray<float>{1});
  std::string duplicated = twice.serialize();
  duplicated += duplicated.substr(count_offset + 4);
  overwrite(duplicated, count_offset, std::uint32_t{2});
  CHECK_THROWS_WITH(WeightFile::parse(duplicated), Catch::Contains("twice"));
}

TEST_CASE("random bit flips are refused or keep the file's layout", "[weight_file]") {
  // The format has no checksum: a flip in float data (or a name) is undetectable and reads
  // as other data. A flip that still parses cannot have changed how much the file holds.
  const WeightFile original = sample_file();
  const std::string bytes = original.serialize();
  const auto elements = [](const WeightFile& file) {
    std::size_t n = 0;
    for (const auto& entry : file.tensors()) n += entry.second.size();
    return n;
  };
  std::mt19937_64 gen(20240611);
  std::uniform_int_distribution<std::size_t> byte(0, bytes.size() - 1);
  std::size_t refusals = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string flipped = bytes;
    for (int f = 0; f <= trial % 3; ++f) flipped[byte(gen)] ^= static_cast<char>(1 << (gen() % 8));
    INFO("trial " << trial);
    try {
      const auto file = WeightFile::parse(flipped);
      CHECK(file.tensors().size() == original.tensors().size());
      CHECK(elements(file) == elements(original));
    } catch (const WeightFileError&) {
      ++refusals;
    }
  }
  CHECK(refusals > 0);
  for (std::size_t at = 0; at < 8; ++at)  // magic and version
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[at] ^= static_cast<char>(1 << bit);
      CHECK(refused(flipped));
    }
}

TEST_CASE("random truncations of random files are refused", "[weight_file]") {
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 200; ++trial) {
    WeightFile file;
    const int tensors = 1 + static_cast<int>(gen() % 4);
    for (int t = 0; t < tensors; ++t) {
      std::vector<std::size_t> shape(gen() % 4);
      for (auto& e : shape) e = 1 + gen() % 5;
      xt::xarray<float> values = xt::xarray<float>::from_shape(shape);
      for (auto& v : values) v = static_cast<float>(gen() % 1000) / 7.0f;
      file.insert(std::to_string(t) + ".weight", std::move(values));
    }
    const std::string bytes = file.serialize();
    require_same(file, WeightFile::parse(bytes));
    const std::size_t length = gen() % bytes.size();
    INFO("trial " << trial << ", truncated to " << length << " of " << bytes.size());
    CHECK(refused(std::string_view(bytes).substr(0, length)));
  }
}
