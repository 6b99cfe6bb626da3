#pragma once
// NumPy .npy files: the arrays a client encrypts (`fhetensor encrypt`), which may come
// from strangers, and the integer arrays it writes back.
//
// Our own bounded parser, not xtensor's xnpy, which has no size limits and asserts on bad input.
//
// Read: format versions 1.0, 2.0 and 3.0; dtypes i1 u1 i2 u2 i4 u4 i8 u8 f4 f8,
// little-endian ('<', or '|' for one-byte types); C order; rank <= 8. Everything else
// (big-endian, Fortran order, bool, object, structured, strings, ...) is refused, naming
// what was found. The header is parsed as the strict subset of Python literal syntax that
// numpy writes: a dict with exactly the keys 'descr', 'fortran_order' and 'shape'.
//
// Bounds, all checked before the array is allocated: the header is at most 64 KiB, the
// array returned at most `max_bytes` (8 bytes an element, default 1 GiB), and the data
// must be exactly the bytes the header promises: a file cut short or with bytes after the
// data is an error. The product of the dimensions is computed without overflow.
//
// Errors: NpyError (a std::runtime_error, "fhetensor: ...") for bad content, and
// std::runtime_error for a file that cannot be read.
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

#include <fhetensor/core/version.hpp>
#include <fhetensor/io/atomic_file.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace io {

struct NpyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint64_t npy_default_max_bytes = std::uint64_t{1} << 30;
inline constexpr std::size_t npy_max_header_bytes = 64 * 1024;
inline constexpr std::size_t npy_max_rank = 8;

namespace detail {

[[noreturn]] inline void npy_fail(const std::string& origin, const std::string& what) {
  throw NpyError("fhetensor: " + origin + ": " + what);
}

enum class NpyType { i1, u1, i2, u2, i4, u4, i8, u8, f4, f8 };

struct NpyDtype {
  std::string_view name;  // without the byte-order character
  NpyType type;
  std::size_t size;
};

inline constexpr std::array<NpyDtype, 10> npy_dtypes{{{"i1", NpyType::i1, 1},
                                                      {"u1", NpyType::u1, 1},
                                                      {"i2", NpyType::i2, 2},
                                                      {"u2", NpyType::u2, 2},
                                                      {"i4", NpyType::i4, 4},
                                                      {"u4", NpyType::u4, 4},
                                                      {"i8", NpyType::i8, 8},
                                                      {"u8", NpyType::u8, 8},
                                                      {"f4", NpyType::f4, 4},
                                                      {"f8", NpyType::f8, 8}}};

// A checked file: what its header says, and where its data is.
struct NpyArray {
  NpyDtype dtype;
  std::vector<std::size_t> shape;
  std::size_t count = 0;
  std::span<const std::uint8_t> data;
};

inline std::string npy_shape_string(const std::vector<std::size_t>& shape) {
  std::string out = "(";
  for (std::size_t d = 0; d < shape.size(); ++d) out += (d ? ", " : "") + std::to_string(shape[d]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// Header text quoted in messages: printable ASCII kept, the rest escaped, length capped.
inline std::string npy_quote(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 120)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    }
  }
  return text.size() > 120 ? out + "..." : out;
}

// The header dict, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
// followed by padding spaces and '\n'.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, const std::string& origin) : text_(text), origin_(origin) {}

  std::string descr;
  bool fortran_order = false;
  std::vector<std::size_t> shape;

  void parse() {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    skip_spaces();
    expect('{');
    for (;;) {
      skip_spaces();
      if (peek() == '}') break;
      const std::string key = parse_string();
      skip_spaces();
      expect(':');
      skip_spaces();
      bool* seen = nullptr;
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (a list of fields in 'descr') are not supported");
        descr = parse_string();
        seen = &seen_descr;
      } else if (key == "fortran_order") {
        fortran_order = parse_bool();
        seen = &seen_order;
      } else if (key == "shape") {
        parse_shape();
        seen = &seen_shape;
      } else {
        fail("unexpected key '" + npy_quote(key) + "'");
      }
      if (*seen) fail("key '" + key + "' appears twice");
      *seen = true;
      skip_spaces();
      if (peek() != ',') break;
      ++pos_;
    }
    expect('}');
    skip_spaces();
    if (pos_ != text_.size()) fail("unexpected text after the dict");
    if (!seen_descr || !seen_order || !seen_shape) {
      fail(std::string("the header lacks '") + (!seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape") + "'");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::size_t end = text_.find_last_not_of(" \t\r\n");
    npy_fail(origin_, "bad header: " + what + " at byte " + std::to_string(pos_) + " of " +
                          npy_quote(text_.substr(0, end == std::string_view::npos ? 0 : end + 1)));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_spaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  // A quoted string without escapes: all numpy writes for the keys and simple dtypes.
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    ++pos_;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      const char c = text_[pos_];
      if (c == '\\') fail("escapes in strings are not supported");
      if (c < 0x20 || c >= 0x7f) fail("unexpected character in a string");
      if (pos_ - start >= 64) fail("string longer than 64 characters");
      ++pos_;
    }
    if (pos_ == text_.size()) fail("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool parse_bool() {
    for (const auto& [word, value] : {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }

  // A Python tuple of non-negative integers: (), (3,), (2, 3) or (2, 3,).
  void parse_shape() {
    expect('(');
    skip_spaces();
    bool comma = false;
    while (peek() != ')') {
      if (shape.size() == npy_max_rank) fail("more than " + std::to_string(npy_max_rank) + " dimensions");
      shape.push_back(parse_dimension());
      skip_spaces();
      comma = peek() == ',';
      if (!comma) break;
      ++pos_;
      skip_spaces();
    }
    if (peek() != ')') fail("expected ',' or ')'");
    if (shape.size() == 1 && !comma) fail("a shape of one dimension is written (n,): (n) is not a tuple");
    ++pos_;
  }

  std::size_t parse_dimension() {
    const std::size_t start = pos_;
    std::uint64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (value > (std::uint64_t{1} << 62) / 10) fail("dimension too large");
      value = value * 10 + static_cast<std::uint64_t>(text_[pos_++] - '0');
    }
    if (pos_ == start) fail("expected a non-negative integer");
    if (text_[start] == '0' && pos_ - start > 1) fail("leading zeros are not Python syntax");
    return static_cast<std::size_t>(value);
  }

  std::string_view text_;
  const std::string& origin_;
  std::size_t pos_ = 0;
};

inline NpyDtype npy_dtype(const std::string& descr, const std::string& origin) {
  std::string quoted = "'";  // built by appending: GCC 12 warns falsely about "'" + s (-Wrestrict)
  quoted += npy_quote(descr);
  quoted += '\'';
  if (descr.size() < 2) npy_fail(origin, "dtype " + quoted + " is not supported");
  const char order = descr[0];
  const std::string_view name = std::string_view(descr).substr(1);
  if (order == '>') {
    npy_fail(origin, "big-endian dtype " + quoted + " is not supported: save it little-endian (a.astype('<" +
                         npy_quote(std::string(name)) + "'))");
  }
  if (name[0] == 'O') npy_fail(origin, "object dtype " + quoted + " is not supported: it holds Python objects, not numbers");
  if (name == "b1") npy_fail(origin, "bool dtype " + quoted + " is not supported: save it as integers (a.astype('u1'))");
  for (const NpyDtype& dtype : npy_dtypes) {
    if (dtype.name != name) continue;
    // '|' means "byte order does not apply", true of one-byte types only.
    if (order == '<' || (order == '|' && dtype.size == 1)) return dtype;
    break;
  }
  npy_fail(origin, "dtype " + quoted + " is not supported (supported: little-endian i1 u1 i2 u2 i4 u4 i8 u8 f4 f8)");
}

inline std::uint64_t npy_read_le(const std::uint8_t* p, std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t k = 0; k < size; ++k) value |= std::uint64_t{p[k]} << (8 * k);
  return value;
}

// Checks a whole file held in memory and locates its data; allocates nothing big.
inline NpyArray parse_npy(std::span<const std::uint8_t> bytes, std::uint64_t max_bytes, const std::string& origin) {
  static constexpr std::uint8_t magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  const std::size_t size = bytes.size();
  if (size == 0 || std::memcmp(bytes.data(), magic, std::min(size, sizeof magic)) != 0) {
    std::string found;
    for (std::size_t i = 0; i < std::min<std::size_t>(size, 6); ++i) {
      char hex[4];
      std::snprintf(hex, sizeof hex, " %02x", bytes[i]);
      found += hex;
    }
    npy_fail(origin, "not a .npy file (it starts with" + (found.empty() ? std::string(" nothing") : found) +
                         ", not \\x93NUMPY)");
  }
  if (size < 8) npy_fail(origin, "truncated: the file ends within its 8-byte preamble");
  const unsigned major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0) {
    npy_fail(origin, "format version " + std::to_string(major) + "." + std::to_string(minor) +
                         " is not supported (1.0, 2.0 and 3.0 are)");
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (size < 8 + length_bytes) npy_fail(origin, "truncated: the file ends within the header length");
  const std::uint64_t header_length = npy_read_le(bytes.data() + 8, length_bytes);
  const std::size_t header_start = 8 + length_bytes;
  if (header_length > npy_max_header_bytes) {
    npy_fail(origin, "header of " + std::to_string(header_length) + " bytes, above the limit of " +
                         std::to_string(npy_max_header_bytes));
  }
  if (size - header_start < header_length) {
    npy_fail(origin, "truncated: the header needs " + std::to_string(header_length) + " bytes, only " +
                         std::to_string(size - header_start) + " present");
  }
  NpyHeaderParser header(
      std::string_view(reinterpret_cast<const char*>(bytes.data()) + header_start, static_cast<std::size_t>(header_length)),
      origin);
  header.parse();

  NpyArray array;
  array.dtype = npy_dtype(header.descr, origin);
  if (header.fortran_order) {
    npy_fail(origin, "Fortran-order (column-major) arrays are not supported: save np.ascontiguousarray(a)");
  }
  array.shape = std::move(header.shape);
  // Bound the product of the non-zero dimensions, so that no product overflows and a
  // shape like (0, 2**62) is refused too.
  const std::uint64_t max_elements = max_bytes / sizeof(std::int64_t);
  std::uint64_t bound = 1;
  bool empty = false;
  for (const std::size_t d : array.shape) {
    if (d == 0) {
      empty = true;
    } else if (bound > max_elements / d) {
      npy_fail(origin, "shape " + npy_shape_string(array.shape) + " has more elements than the limit of " +
                           std::to_string(max_bytes) + " bytes allows (8 bytes each)");
    } else {
      bound *= d;
    }
  }
  if (!empty && bound > max_elements) {  // a rank-0 array under a limit below 8 bytes
    npy_fail(origin, "one element is above the limit of " + std::to_string(max_bytes) + " bytes");
  }
  array.count = empty ? 0 : static_cast<std::size_t>(bound);
  const std::size_t data_start = header_start + static_cast<std::size_t>(header_length);
  const std::size_t needed = array.count * array.dtype.size;
  const std::size_t present = size - data_start;
  if (present < needed) {
    npy_fail(origin, "truncated: the data of shape " + npy_shape_string(array.shape) + " needs " +
                         std::to_string(needed) + " bytes, only " + std::to_string(present) + " present");
  }
  if (present > needed) npy_fail(origin, std::to_string(present - needed) + " unexpected bytes after the data");
  array.data = bytes.subspan(data_start, needed);
  return array;
}

// Calls fn(value, index) for each element in C order, value typed as stored.
template <class Fn>
void npy_for_each(const NpyArray& array, Fn&& fn) {
  const auto run = [&]<class T>(std::type_identity<T>) {
    const std::uint8_t* p = array.data.data();
    for (std::size_t i = 0; i < array.count; ++i, p += sizeof(T)) {
      const std::uint64_t bits = npy_read_le(p, sizeof(T));
      if constexpr (std::is_same_v<T, float>) {
        fn(std::bit_cast<float>(static_cast<std::uint32_t>(bits)), i);
      } else if constexpr (std::is_same_v<T, double>) {
        fn(std::bit_cast<double>(bits), i);
      } else {
        // Conversion to a signed type is modular (C++20): the two's-complement value.
        fn(static_cast<T>(static_cast<std::make_unsigned_t<T>>(bits)), i);
      }
    }
  };
  switch (array.dtype.type) {
    case NpyType::i1: return run(std::type_identity<std::int8_t>{});
    case NpyType::u1: return run(std::type_identity<std::uint8_t>{});
    case NpyType::i2: return run(std::type_identity<std::int16_t>{});
    case NpyType::u2: return run(std::type_identity<std::uint16_t>{});
    case NpyType::i4: return run(std::type_identity<std::int32_t>{});
    case NpyType::u4: return run(std::type_identity<std::uint32_t>{});
    case NpyType::i8: return run(std::type_identity<std::int64_t>{});
    case NpyType::u8: return run(std::type_identity<std::uint64_t>{});
    case NpyType::f4: return run(std::type_identity<float>{});
    case NpyType::f8: return run(std::type_identity<double>{});
  }
}

// "element [1, 2]" for flat index 5 of shape (2, 3).
inline std::string npy_element_name(const std::vector<std::size_t>& shape, std::size_t flat) {
  std::vector<std::size_t> index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string out = "element [";
  for (std::size_t d = 0; d < index.size(); ++d) out += (d ? ", " : "") + std::to_string(index[d]);
  return out + "]";
}

template <class T>
std::string npy_value_string(T value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

inline xt::xarray<double> npy_to_doubles(const NpyArray& array) {
  auto out = xt::xarray<double>::from_shape(array.shape);
  double* data = out.data();
  npy_for_each(array, [&](auto value, std::size_t i) { data[i] = static_cast<double>(value); });
  return out;
}

inline xt::xarray<std::int64_t> npy_to_integers(const NpyArray& array, const std::string& origin) {
  auto out = xt::xarray<std::int64_t>::from_shape(array.shape);
  std::int64_t* data = out.data();
  npy_for_each(array, [&](auto value, std::size_t i) {
    using T = decltype(value);
    const auto refuse = [&](const char* why) {
      npy_fail(origin, npy_element_name(array.shape, i) + " is " + npy_value_string(value) + ", " + why);
    };
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(value) || value != std::trunc(value)) refuse("not an integer");
      // 2^63 is exact in both float and double; INT64_MAX is not.
      if (!(value >= T(-0x1p63) && value < T(0x1p63))) refuse("outside the int64 range");
      data[i] = static_cast<std::int64_t>(value);
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
      if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) refuse("above the int64 maximum");
      data[i] = static_cast<std::int64_t>(value);
    } else {
      data[i] = value;
    }
  });
  return out;
}

// The file size that can hold an array of max_bytes (as returned) with its header.
inline std::uint64_t npy_max_file_bytes(std::uint64_t max_bytes) {
  const std::uint64_t overhead = 12 + npy_max_header_bytes;
  return max_bytes > std::numeric_limits<std::uint64_t>::max() - overhead ? max_bytes : max_bytes + overhead;
}

}  // namespace detail

/// The array of a .npy file held in memory, as doubles (i8 and u8 values beyond 2^53 are
/// rounded to the nearest double). Throws NpyError on anything not described above.
inline xt::xarray<double> decode_npy(std::span<const std::uint8_t> bytes, std::uint64_t max_bytes = npy_default_max_bytes) {
  return detail::npy_to_doubles(detail::parse_npy(bytes, max_bytes, ".npy data"));
}

/// The array of a .npy file held in memory, as exact integers: integer dtypes as they
/// are (u8 values above the int64 maximum refused), floats only when every value is an
/// integer within the int64 range; the error names the first element that is not.
inline xt::xarray<std::int64_t> decode_npy_integers(std::span<const std::uint8_t> bytes,
                                                    std::uint64_t max_bytes = npy_default_max_bytes) {
  const std::string origin = ".npy data";
  return detail::npy_to_integers(detail::parse_npy(bytes, max_bytes, origin), origin);
}

/// decode_npy of a file; errors name the file.
inline xt::xarray<double> read_npy(const std::filesystem::path& path, std::uint64_t max_bytes = npy_default_max_bytes) {
  const auto bytes = read_file_bounded(path, detail::npy_max_file_bytes(max_bytes));
  return detail::npy_to_doubles(detail::parse_npy(bytes, max_bytes, path.string()));
}

/// decode_npy_integers of a file; errors name the file.
inline xt::xarray<std::int64_t> read_npy_integers(const std::filesystem::path& path,
                                                  std::uint64_t max_bytes = npy_default_max_bytes) {
  const auto bytes = read_file_bounded(path, detail::npy_max_file_bytes(max_bytes));
  return detail::npy_to_integers(detail::parse_npy(bytes, max_bytes, path.string()), path.string());
}

/// The .npy bytes of `array`: format version 1.0, dtype '<i8', C order, the header padded
/// as numpy pads it so that the data starts at a multiple of 64 bytes.
inline std::vector<std::uint8_t> encode_npy(const xt::xarray<std::int64_t>& array) {
  if (array.dimension() > npy_max_rank) {
    throw NpyError("fhetensor: cannot write a .npy array of rank " + std::to_string(array.dimension()) +
                   ", above " + std::to_string(npy_max_rank));
  }
  const std::vector<std::size_t> shape(array.shape().begin(), array.shape().end());
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': " + detail::npy_shape_string(shape) + ", }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';

  std::vector<std::uint8_t> out;
  out.reserve(10 + header.size() + array.size() * 8);
  for (const int byte : {0x93, int{'N'}, int{'U'}, int{'M'}, int{'P'}, int{'Y'}, 1, 0}) out.push_back(static_cast<std::uint8_t>(byte));
  out.push_back(static_cast<std::uint8_t>(header.size()));
  out.push_back(static_cast<std::uint8_t>(header.size() >> 8));
  for (const char c : header) out.push_back(static_cast<std::uint8_t>(c));
  for (const std::int64_t value : array) {  // xarray iterates in row-major (C) order
    const auto bits = static_cast<std::uint64_t>(value);
    for (int k = 0; k < 8; ++k) out.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  return out;
}

/// Writes encode_npy(array) to `path` atomically (see write_file_atomically): a failure
/// leaves any previous file intact.
inline void write_npy(const std::filesystem::path& path, const xt::xarray<std::int64_t>& array) {
  write_file_atomically(path, encode_npy(array));
}

}  // namespace io
FHETENSOR_END_NAMESPACE
