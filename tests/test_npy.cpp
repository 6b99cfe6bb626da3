// The .npy reader and writer (io/npy.hpp) and the atomic file writer (io/atomic_file.hpp):
// every supported dtype read back exactly from hand-written bytes; what is refused, with
// messages naming it; truncated and bit-flipped files never crash; a round trip through
// numpy when /usr/bin/python3 has it; and a write that fails leaves the old file intact.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <fhetensor/io/npy.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using TempDir = testing::TempDir;

using Bytes = std::vector<std::uint8_t>;

// A .npy file: magic, version, header length, `dict` padded with spaces and '\n', data.
Bytes npy(const std::string& dict, const Bytes& data = {}, int major = 1) {
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  while ((8 + length_bytes + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  for (std::size_t k = 0; k < length_bytes; ++k) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * k)));
  for (const char c : header) out.push_back(static_cast<std::uint8_t>(c));
  for (const std::uint8_t b : data) out.push_back(b);
  return out;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

// Little-endian bytes of each value.
template <class T>
Bytes le(std::initializer_list<T> values) {
  Bytes out;
  for (const T value : values) {
    std::uint64_t bits = 0;
    if constexpr (sizeof(T) == 4 && std::is_floating_point_v<T>) bits = std::bit_cast<std::uint32_t>(value);
    else if constexpr (std::is_floating_point_v<T>) bits = std::bit_cast<std::uint64_t>(value);
    else bits = static_cast<std::uint64_t>(value);
    for (std::size_t k = 0; k < sizeof(T); ++k) out.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  return out;
}

Bytes read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::int64_t> values_of(const xt::xarray<std::int64_t>& a) { return {a.begin(), a.end()}; }
std::vector<double> values_of(const xt::xarray<double>& a) { return {a.begin(), a.end()}; }
std::vector<std::size_t> shape_of(const auto& a) { return {a.shape().begin(), a.shape().end()}; }

}  // namespace

TEST_CASE("every supported dtype reads back exactly", "[io][npy]") {
  using I64 = std::numeric_limits<std::int64_t>;
  SECTION("integers") {
    const auto check = [](const std::string& descr, const Bytes& data, std::vector<std::int64_t> expected) {
      INFO(descr);
      std::string shape = "(";  // appended: GCC 12 warns falsely about "(" + s (-Wrestrict)
      shape += std::to_string(expected.size());
      shape += ",)";
      const auto file = npy(dict(descr, shape), data);
      CHECK(values_of(io::decode_npy_integers(file)) == expected);
      CHECK(values_of(io::decode_npy(file)) == std::vector<double>(expected.begin(), expected.end()));
    };
    check("|i1", le<std::int8_t>({-128, -1, 0, 127}), {-128, -1, 0, 127});
    check("<i1", le<std::int8_t>({-5}), {-5});
    check("|u1", le<std::uint8_t>({0, 200, 255}), {0, 200, 255});
    check("<i2", le<std::int16_t>({-32768, 300, 32767}), {-32768, 300, 32767});
    check("<u2", le<std::uint16_t>({65535, 1}), {65535, 1});
    check("<i4", le<std::int32_t>({-2147483647 - 1, 7}), {-2147483647 - 1, 7});
    check("<u4", le<std::uint32_t>({4294967295u}), {4294967295});
    check("<i8", le<std::int64_t>({-(std::int64_t{1} << 52), 1 << 20}), {-(std::int64_t{1} << 52), 1 << 20});
    check("<u8", le<std::uint64_t>({std::uint64_t{1} << 53, 0}), {std::int64_t{1} << 53, 0});
    // Beyond 2^53 the integer form stays exact where doubles cannot.
    const auto extremes = npy(dict("<i8", "(2,)"), le<std::int64_t>({I64::min(), I64::max()}));
    CHECK(values_of(io::decode_npy_integers(extremes)) == std::vector<std::int64_t>{I64::min(), I64::max()});
    const auto big = npy(dict("<u8", "(1,)"), le<std::uint64_t>({std::uint64_t(I64::max())}));
    CHECK(values_of(io::decode_npy_integers(big)) == std::vector<std::int64_t>{I64::max()});
  }
  SECTION("floats") {
    const auto f4 = npy(dict("<f4", "(2, 2)"), le<float>({1.5f, -0.25f, 3.0f, 1e30f}));
    const auto a = io::decode_npy(f4);
    CHECK(shape_of(a) == std::vector<std::size_t>{2, 2});
    CHECK(values_of(a) == std::vector<double>{1.5, -0.25, 3.0, double(1e30f)});
    const auto f8 = npy(dict("<f8", "(3,)"), le<double>({-0.1, 2.0, -0.0}));
    CHECK(values_of(io::decode_npy(f8)) == std::vector<double>{-0.1, 2.0, -0.0});
    // Integral floats are accepted as integers, including -2^63 exactly.
    const auto integral = npy(dict("<f8", "(3,)"), le<double>({-3.0, 1e15, -0x1p63}));
    CHECK(values_of(io::decode_npy_integers(integral)) == std::vector<std::int64_t>{-3, 1000000000000000, I64::min()});
    const auto integral_f4 = npy(dict("<f4", "(2,)"), le<float>({255.0f, -16777216.0f}));
    CHECK(values_of(io::decode_npy_integers(integral_f4)) == std::vector<std::int64_t>{255, -16777216});
  }
}

TEST_CASE("shapes, header versions and header spellings", "[io][npy]") {
  SECTION("C order, multi-dimensional") {
    const auto a = io::decode_npy_integers(npy(dict("<i2", "(2, 3)"), le<std::int16_t>({1, 2, 3, 4, 5, 6})));
    REQUIRE(shape_of(a) == std::vector<std::size_t>{2, 3});
    CHECK(a(0, 2) == 3);
    CHECK(a(1, 0) == 4);
  }
  SECTION("a scalar, empty arrays, and rank 8") {
    const auto scalar = io::decode_npy(npy(dict("<f8", "()"), le<double>({4.5})));
    CHECK(scalar.dimension() == 0);
    CHECK(scalar() == 4.5);
    CHECK(io::decode_npy(npy(dict("<f8", "(0,)"))).size() == 0);
    const auto empty = io::decode_npy_integers(npy(dict("<i4", "(2, 0, 3)")));
    CHECK(shape_of(empty) == std::vector<std::size_t>{2, 0, 3});
    const auto rank8 = io::decode_npy(npy(dict("|u1", "(1, 1, 1, 1, 1, 1, 1, 2)"), Bytes{9, 8}));
    CHECK(rank8.dimension() == 8);
    CHECK(values_of(rank8) == std::vector<double>{9, 8});
  }
  SECTION("format versions 2.0 and 3.0 (four-byte header length)") {
    for (const int major : {2, 3}) {
      CHECK(values_of(io::decode_npy_integers(npy(dict("<i4", "(1,)"), le<std::int32_t>({-9}), major))) ==
            std::vector<std::int64_t>{-9});
    }
  }
  SECTION("keys in any order, double quotes, no trailing comma, a trailing comma in the shape") {
    const Bytes data = le<std::int32_t>({1, 2});
    for (const std::string d : {"{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}",
                                "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2,)}",
                                "{'descr':'<i4','fortran_order':False,'shape':(1, 2,),}"}) {
      INFO(d);
      CHECK(values_of(io::decode_npy_integers(npy(d, data))) == std::vector<std::int64_t>{1, 2});
    }
  }
}

TEST_CASE("what .npy files are refused, and the messages saying why", "[io][npy]") {
  const auto refused = [](const Bytes& file, const std::string& what) {
    INFO(what);
    CHECK_THROWS_AS(io::decode_npy(file), io::NpyError);
    CHECK_THROWS_WITH(io::decode_npy(file), Contains("fhetensor: .npy data: ") && Contains(what));
    CHECK_THROWS_WITH(io::decode_npy_integers(file), Contains(what));
  };
  const Bytes four = le<std::int32_t>({1, 2, 3, 4});
  refused(npy(dict(">i4", "(4,)"), four), "big-endian dtype '>i4'");
  refused(npy(dict("<i4", "(2, 2)", "True"), four), "Fortran-order");
  refused(npy(dict("|O", "(1,)"), Bytes(8)), "object dtype '|O'");
  refused(npy(dict("|b1", "(4,)"), Bytes(4)), "bool dtype '|b1'");
  refused(npy(dict("<c16", "(1,)"), Bytes(16)), "dtype '<c16' is not supported");
  refused(npy(dict("<f2", "(2,)"), Bytes(4)), "dtype '<f2' is not supported");
  refused(npy(dict("|i4", "(4,)"), four), "dtype '|i4' is not supported");
  refused(npy(dict("<U3", "(1,)"), Bytes(12)), "dtype '<U3' is not supported");
  refused(npy("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", Bytes(4)), "structured dtypes");
  refused(npy("{'descr': '<i4', 'shape': (4,), }", four), "lacks 'fortran_order'");
  refused(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), 'extra': 1}", four), "unexpected key 'extra'");
  refused(npy("{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (4,)}", four), "appears twice");
  refused(npy(dict("<i4", "(4)"), four), "not a tuple");
  refused(npy(dict("<i4", "(-4,)"), four), "expected a non-negative integer");
  refused(npy(dict("<i4", "(4.0,)"), four), "expected ',' or ')' at byte 52 of {'descr': '<i4', 'fortran_order': False, 'shape': (4.0,), }");
  refused(npy(dict("<i4", "(04,)"), four), "leading zeros");
  refused(npy(dict("<i4", "(1, 1, 1, 1, 1, 1, 1, 1, 4)"), four), "more than 8 dimensions");
  refused(npy("{'descr': '<i4', 'fortran_order': false, 'shape': (4,)}", four), "expected True or False");
  refused(npy("{'descr': '<i\\x34', 'fortran_order': False, 'shape': (4,)}", four), "escapes");
  refused(npy(dict("<i4", "(4,)") + " junk", four), "unexpected text after the dict");
  refused(npy("['descr', '<i4']", four), "expected '{'");

  SECTION("magic, version and header length") {
    refused(Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'n', 'p', 'y', '!'}, "not a .npy file (it starts with 68 65 6c 6c 6f 20");
    refused(Bytes{}, "not a .npy file (it starts with nothing");
    auto version = npy(dict("<i4", "(4,)"), four);
    version[6] = 4;
    refused(version, "format version 4.0 is not supported");
    version[6] = 1;
    version[7] = 1;
    refused(version, "format version 1.1");
    // A version 2.0 header claiming 70,000 bytes, all present: refused by the limit.
    Bytes huge(12 + 70000, ' ');
    const Bytes preamble = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0x70, 0x11, 0x01, 0x00};
    std::copy(preamble.begin(), preamble.end(), huge.begin());
    refused(huge, "header of 70000 bytes, above the limit of 65536");
    Bytes claims = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0x00, 0x10, '{', '}'};
    refused(claims, "truncated: the header needs 4096 bytes, only 2 present");
  }
  SECTION("data missing or in excess") {
    refused(npy(dict("<i4", "(5,)"), four), "truncated: the data of shape (5,) needs 20 bytes, only 16 present");
    auto longer = four;
    longer.push_back(0);
    refused(npy(dict("<i4", "(4,)"), longer), "1 unexpected bytes after the data");
  }
}

TEST_CASE("absurd shapes are refused before allocating, and the caller's limit holds", "[io][npy]") {
  // No data follows: a reader that allocated first would try petabytes, or overflow.
  for (const std::string shape : {"(4611686018427387904, 4611686018427387904, 16)", "(1099511627776, 1099511627776)",
                                  "(0, 4611686018427387904, 4611686018427387904)", "(134217729,)"}) {
    INFO(shape);
    CHECK_THROWS_WITH(io::decode_npy(npy(dict("<f8", shape))), Contains("more elements than the limit of 1073741824 bytes"));
  }
  CHECK_THROWS_WITH(io::decode_npy(npy(dict("<f8", "(99999999999999999999,)"))), Contains("dimension too large"));
  // Within the limit but absent: refused as truncated, before the 1 GiB array is made.
  CHECK_THROWS_WITH(io::decode_npy(npy(dict("|u1", "(134217728,)"))), Contains("truncated"));

  const auto hundred = npy(dict("|u1", "(10, 10)"), Bytes(100, 7));
  CHECK_THROWS_WITH(io::decode_npy(hundred, 799), Contains("limit of 799 bytes"));
  CHECK(io::decode_npy(hundred, 800).size() == 100);
  CHECK_THROWS_WITH(io::decode_npy(npy(dict("<f8", "()"), le<double>({1.0})), 7), Contains("limit of 7 bytes"));
}

TEST_CASE("the integer form refuses non-integral and out-of-range values, naming the first", "[io][npy]") {
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f8", "(2, 2)"), le<double>({1.0, 2.0, 3.0, 2.5}))),
                    Contains("element [1, 1] is 2.5, not an integer"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f4", "(3,)"), le<float>({1.0f, 0.1f, 0.5f}))),
                    Contains("element [1] is 0.1, not an integer"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f8", "(1,)"), le<double>({std::nan("")}))),
                    Contains("element [0] is nan, not an integer"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f8", "(1,)"), le<double>({-HUGE_VAL}))),
                    Contains("is -inf, not an integer"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f8", "(2,)"), le<double>({0x1p63, 1.0}))),
                    Contains("element [0] is 9223372036854775808, outside the int64 range"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<f4", "(1,)"), le<float>({-0x1p64f}))),
                    Contains("outside the int64 range"));
  CHECK_THROWS_WITH(io::decode_npy_integers(npy(dict("<u8", "(1,)"), le<std::uint64_t>({std::uint64_t{1} << 63}))),
                    Contains("element [0] is 9223372036854775808, above the int64 maximum"));
  // The double form takes all of them.
  CHECK(io::decode_npy(npy(dict("<f8", "(2,)"), le<double>({2.5, 0x1p63}))).size() == 2);
}

TEST_CASE("truncated and bit-flipped .npy files throw NpyError or decode consistently", "[io][npy]") {
  const auto valid = npy(dict("<i2", "(2, 3)"), le<std::int16_t>({1, -2, 3, -4, 5, -6}));
  // Every shorter prefix is missing something the header promises.
  for (std::size_t keep = 0; keep < valid.size(); ++keep) {
    INFO("kept " << keep << " bytes");
    CHECK_THROWS_AS(io::decode_npy(std::span(valid.data(), keep)), io::NpyError);
  }
  std::size_t decoded = 0;
  for (std::size_t bit = 0; bit < valid.size() * 8; ++bit) {
    INFO("bit " << bit);
    auto flipped = valid;
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    try {
      const auto a = io::decode_npy_integers(flipped);
      std::size_t elements = 1;
      for (const auto d : a.shape()) elements *= d;
      CHECK(a.size() == elements);
      ++decoded;
    } catch (const io::NpyError&) {
    }
  }
  // Flips in the data still decode.
  CHECK(decoded >= 12 * 8);
}

TEST_CASE("encode_npy writes what numpy writes", "[io][npy]") {
  const xt::xarray<std::int64_t> a = {{1, -2, 3}, {std::numeric_limits<std::int64_t>::min(), 0, 1 << 30}};
  const auto bytes = io::encode_npy(a);
  // numpy 1.24's np.save of the same array: a 118-byte header, the data at byte 128.
  REQUIRE(bytes.size() == 128 + 6 * 8);
  const std::string header(bytes.begin() + 10, bytes.begin() + 128);
  CHECK(header.rfind("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  CHECK(header.back() == '\n');
  CHECK(bytes[8] == 118);
  CHECK(bytes[9] == 0);
  CHECK((io::decode_npy_integers(bytes) == a));
  const xt::xarray<std::int64_t> one = {5};
  const auto one_bytes = io::encode_npy(one);
  CHECK(std::string(one_bytes.begin(), one_bytes.end()).find("'shape': (1,), }") != std::string::npos);
  auto scalar = xt::xarray<std::int64_t>::from_shape({});
  scalar() = 7;
  const auto scalar_bytes = io::encode_npy(scalar);
  CHECK(std::string(scalar_bytes.begin(), scalar_bytes.end()).find("'shape': (), }") != std::string::npos);
  CHECK((io::decode_npy_integers(io::encode_npy(scalar)) == scalar));
}

TEST_CASE("files: read_npy names the file, write_npy replaces atomically", "[io][npy]") {
  TempDir dir("fhetensor_test_npy_");
  const fs::path file = dir.path / "x.npy";
  const xt::xarray<std::int64_t> a = {{3, 1}, {4, 1}, {5, 9}};
  io::write_npy(file, a);
  CHECK((io::read_npy_integers(file) == a));
  CHECK(io::read_npy(file)(2, 1) == 9.0);
  const xt::xarray<std::int64_t> b = {2, 7};
  io::write_npy(file, b);
  CHECK((io::read_npy_integers(file) == b));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);  // no temporary left

  write_all(file, npy(dict(">f8", "(1,)"), Bytes(8)));
  CHECK_THROWS_WITH(io::read_npy(file), Contains("fhetensor: " + file.string() + ": big-endian"));
  CHECK_THROWS_WITH(io::read_npy(dir.path / "missing.npy"), Contains("missing.npy") && Contains("cannot open"));
  CHECK_THROWS_WITH(io::read_npy(dir.path), Contains("cannot read"));
  // A file far larger than the limit allows is refused from its size, unread.
  write_all(file, Bytes(100000, 0));
  CHECK_THROWS_WITH(io::read_npy(file, 8), Contains("is 100000 bytes, above the limit"));
}

TEST_CASE("a failed atomic write leaves the previous file and no temporary", "[io][npy]") {
  TempDir dir("fhetensor_test_npy_");
  const fs::path file = dir.path / "keep.npy";
  const xt::xarray<std::int64_t> old = {1, 2, 3};
  io::write_npy(file, old);
  const auto before = read_all(file);

  SECTION("the write itself fails (file size limit reached mid-write)") {
    // RLIMIT_FSIZE makes write() fail with EFBIG once the file reaches 4 KiB, as a full
    // disk would; SIGXFSZ, which would kill us first, is ignored meanwhile.
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const xt::xarray<std::int64_t> large = xt::xarray<std::int64_t>::from_shape({10000});
    bool threw = false;
    std::string message;
    try {
      io::write_npy(file, large);
    } catch (const std::runtime_error& e) {
      threw = true;
      message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK(threw);
    CHECK_THAT(message, Contains("cannot write " + file.string()));
  }
  SECTION("the rename fails (the target became a non-empty directory)") {
    const fs::path target = dir.path / "dir.npy";
    fs::create_directory(target);
    write_all(target / "inside", Bytes{1});
    CHECK_THROWS_WITH(io::write_npy(target, old), Contains("cannot write " + target.string()));
    CHECK(fs::is_directory(target));
  }
  SECTION("the folder does not exist") {
    CHECK_THROWS_WITH(io::write_npy(dir.path / "no" / "such.npy", old), Contains("cannot create a temporary file"));
  }
  CHECK(read_all(file) == before);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK((names == std::vector<std::string>{"keep.npy"} || names == std::vector<std::string>{"dir.npy", "keep.npy"}));
}

TEST_CASE("numpy reads what we write and we read what numpy writes", "[io][npy][python]") {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) + " -c 'import numpy' 2>/dev/null").c_str()) != 0) {
    WARN("numpy not found for /usr/bin/python3 (apt-get install python3-numpy): skipped");
    return;
  }
  TempDir dir("fhetensor_test_npy_");
  const std::string d = dir.path.string();
  // numpy writes one file per dtype, the values 0, -1, 2, -3, ... where they fit.
  const std::string make =
      std::string(python) + " -c \"import numpy as np, sys\n"
                            "v = np.array([0, -1, 2, -3, 4, -5])\n"
                            "for t in ['i1','u1','i2','u2','i4','u4','i8','u8','f4','f8']:\n"
                            "    np.save(sys.argv[1] + '/' + t + '.npy', (np.abs(v) if t[0] == 'u' else v).astype('<' + t).reshape(2, 3))\n"
                            "np.save(sys.argv[1] + '/fortran.npy', np.asfortranarray(v.reshape(2, 3)))\n"
                            "np.save(sys.argv[1] + '/big.npy', v.astype('>i4'))\n"
                            "\" " + d;
  REQUIRE(std::system(make.c_str()) == 0);
  for (const std::string t : {"i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"}) {
    INFO(t);
    const auto a = io::read_npy_integers(dir.path / (t + ".npy"));
    CHECK(shape_of(a) == std::vector<std::size_t>{2, 3});
    const std::vector<std::int64_t> expected =
        t[0] == 'u' ? std::vector<std::int64_t>{0, 1, 2, 3, 4, 5} : std::vector<std::int64_t>{0, -1, 2, -3, 4, -5};
    CHECK(values_of(a) == expected);
  }
  CHECK_THROWS_WITH(io::read_npy(dir.path / "fortran.npy"), Contains("Fortran-order"));
  CHECK_THROWS_WITH(io::read_npy(dir.path / "big.npy"), Contains("big-endian dtype '>i4'"));

  const xt::xarray<std::int64_t> ours = {{{-7, 0}, {std::numeric_limits<std::int64_t>::max(), 12}}};
  io::write_npy(dir.path / "ours.npy", ours);
  const std::string check = std::string(python) +
                            " -c \"import numpy as np, sys\n"
                            "a = np.load(sys.argv[1] + '/ours.npy')\n"
                            "assert a.dtype == np.dtype('<i8') and a.shape == (1, 2, 2), (a.dtype, a.shape)\n"
                            "assert a.tolist() == [[[-7, 0], [2**63 - 1, 12]]], a.tolist()\n"
                            "\" " + d;
  CHECK(std::system(check.c_str()) == 0);
}
