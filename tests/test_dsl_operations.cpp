// The DSL's operations (expr/operations.hpp) against independent references: every
// operation is traced, compiled and run in the clear (run_clear) on random inputs, with
// random weights, and compared with a direct computation written here with loops or
// xtensor (never with the library's own index maps). Tables read at most 256 values
// here, so that they are exact (rounding_bits defaults to 8).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xmanipulation.hpp>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;
using Catch::Matchers::Contains;

namespace {

using Gen = std::mt19937_64;
constexpr int trials = 50;
constexpr std::int64_t end = INT64_MAX;  // Slice's "to the end"

using Dims = std::vector<std::size_t>;

std::int64_t uniform(Gen& gen, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(gen);
}

ClearTensor random_tensor(const Dims& shape, std::int64_t lo, std::int64_t hi, Gen& gen) {
  ClearTensor t = ClearTensor::from_shape(shape);
  for (auto& v : t) v = uniform(gen, lo, hi);
  return t;
}
ClearTensor random_tensor(const Dims& shape, ValueRange r, Gen& gen) { return random_tensor(shape, r.lo, r.hi, gen); }

template <std::size_t N>
Tensor<int, N> random_weights(const std::array<std::size_t, N>& shape, int lo, int hi, Gen& gen) {
  Tensor<int, N> t = Tensor<int, N>::from_shape(shape);
  for (auto& v : t) v = static_cast<int>(uniform(gen, lo, hi));
  return t;
}

/// Every value of r, in order, as a rank-1 tensor.
ClearTensor every_value(ValueRange r) {
  ClearTensor t = ClearTensor::from_shape({static_cast<std::size_t>(r.hi - r.lo + 1)});
  for (std::size_t i = 0; i < t.size(); ++i) t.flat(i) = r.lo + static_cast<std::int64_t>(i);
  return t;
}

Dims dims(const ClearTensor& t) { return Dims(t.shape().begin(), t.shape().end()); }

ClearTensor zeros(const Dims& shape) {
  ClearTensor t = ClearTensor::from_shape(shape);
  std::fill(t.begin(), t.end(), 0);
  return t;
}

ClearTensor reshaped(ClearTensor t, const Dims& shape) {
  t.reshape(shape);
  return t;
}

std::int64_t& at(ClearTensor& t, const Dims& i) { return t.element(i.begin(), i.end()); }
std::int64_t at(const ClearTensor& t, const Dims& i) { return t.element(i.begin(), i.end()); }

/// f(index) for every multi-index of `shape`, row-major.
template <class F>
void each_index(const Dims& shape, F f) {
  std::size_t count = 1;
  for (std::size_t d : shape) count *= d;
  Dims index(shape.size(), 0);
  for (std::size_t n = 0; n < count; ++n) {
    f(static_cast<const Dims&>(index));
    for (std::size_t a = shape.size(); a-- > 0;) {
      if (++index[a] < shape[a]) break;
      index[a] = 0;
    }
  }
}

/// s / c rounded half away from zero.
std::int64_t rounded_div(std::int64_t s, std::int64_t c) { return std::llround(static_cast<double>(s) / static_cast<double>(c)); }
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

template <class F>
ClearTensor map(const ClearTensor& x, F f) {
  ClearTensor y = x;
  for (auto& v : y) v = f(v);
  return y;
}
template <class F>
ClearTensor zip(const ClearTensor& a, const ClearTensor& b, F f) {  // with NumPy broadcasting
  const ClearTensor shape_probe = a + b;
  ClearTensor x = xt::broadcast(a, shape_probe.shape()), y = xt::broadcast(b, shape_probe.shape());
  ClearTensor out = x;
  for (std::size_t i = 0; i < out.size(); ++i) out.flat(i) = f(x.flat(i), y.flat(i));
  return out;
}

std::string show(const ClearTensor& t) {
  std::ostringstream s;
  s << "shape [";
  for (std::size_t i = 0; i < t.dimension(); ++i) s << (i ? ", " : "") << t.shape()[i];
  s << "] " << t;
  return s.str();
}

bool same_tensor(const ClearTensor& a, const ClearTensor& b) {
  return std::equal(a.shape().begin(), a.shape().end(), b.shape().begin(), b.shape().end()) &&
         std::equal(a.begin(), a.end(), b.begin(), b.end());
}

/// Whether every element of output k lies in the range the compiler gave it.
bool within_compiled_range(const CompiledModel& m, std::size_t k, const ClearTensor& y) {
  const ValueRange r = m.nodes[m.outputs[k]].range;
  return std::all_of(y.begin(), y.end(), [&](std::int64_t v) { return r.contains(v); });
}

/// Runs m in the clear on `inputs` and checks every output against `want` (and against the
/// compiled output range); on a mismatch reports the inputs and the first wrong output and
/// returns false.
bool check_run(const CompiledModel& m, const std::vector<ClearTensor>& inputs, const std::vector<ClearTensor>& want) {
  const std::vector<ClearTensor> got = run_clear(m, inputs);
  std::size_t bad = want.size();
  bool in_range = true;
  for (std::size_t k = 0; k < std::min(got.size(), want.size()) && bad == want.size(); ++k)
    if (!same_tensor(got[k], want[k]) || !(in_range = within_compiled_range(m, k, got[k]))) bad = k;
  const bool ok = got.size() == want.size() && bad == want.size();
  if (ok) {
    CHECK(ok);
    return true;
  }
  std::ostringstream s;
  for (std::size_t i = 0; i < inputs.size(); ++i) s << "input " << i << ": " << show(inputs[i]) << "\n";
  if (got.size() != want.size()) s << got.size() << " outputs, expected " << want.size();
  else s << "output " << bad << ": got " << show(got[bad]) << "\nexpected " << show(want[bad]);
  if (!in_range) s << "\noutside the compiled output range " << m.nodes[m.outputs[bad]].range.to_string();
  INFO(s.str());
  CHECK(ok);
  return false;
}

template <class Exception, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const Exception& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<another exception: ") + e.what() + ">";
  }
  return "<no exception>";
}

// ---------------------------------------------------------------- references

ClearTensor ref_dense(const ClearTensor& x, const ClearTensor& w, const ClearTensor& bias) {
  const std::size_t k = w.shape()[0], m = w.shape()[1], rows = x.size() / k;
  Dims shape = dims(x);
  shape.back() = m;
  ClearTensor y = ClearTensor::from_shape(shape);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < m; ++c) {
      std::int64_t acc = bias.dimension() == 0 ? bias() : bias(c);
      for (std::size_t t = 0; t < k; ++t) acc += x.flat(r * k + t) * w(t, c);
      y.flat(r * m + c) = acc;
    }
  return y;
}

ClearTensor ref_conv2d(ClearTensor x, const ClearTensor& w, const ClearTensor& bias, const Conv2dOptions& o) {
  const bool chw = x.dimension() == 3;
  if (chw) x.reshape({1, x.shape()[0], x.shape()[1], x.shape()[2]});
  const std::size_t batch = x.shape()[0], c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
  const std::size_t c_out = w.shape()[0], per_group = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
  const std::size_t outs_per_group = c_out / o.groups;
  REQUIRE(per_group * o.groups == c);
  const auto pt = static_cast<std::int64_t>(o.padding[0]), pl = static_cast<std::int64_t>(o.padding[1]);
  const std::size_t oh = (h + o.padding[0] + o.padding[2] - (o.dilation[0] * (kh - 1) + 1)) / o.stride[0] + 1;
  const std::size_t ow = (wd + o.padding[1] + o.padding[3] - (o.dilation[1] * (kw - 1) + 1)) / o.stride[1] + 1;
  ClearTensor y = ClearTensor::from_shape({batch, c_out, oh, ow});
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t co = 0; co < c_out; ++co)
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          std::int64_t acc = bias(co);
          const std::size_t g = co / outs_per_group;
          for (std::size_t cl = 0; cl < per_group; ++cl)
            for (std::size_t ky = 0; ky < kh; ++ky)
              for (std::size_t kx = 0; kx < kw; ++kx) {
                const auto iy = static_cast<std::int64_t>(oy * o.stride[0] + ky * o.dilation[0]) - pt;
                const auto ix = static_cast<std::int64_t>(ox * o.stride[1] + kx * o.dilation[1]) - pl;
                if (iy < 0 || ix < 0 || iy >= static_cast<std::int64_t>(h) || ix >= static_cast<std::int64_t>(wd)) continue;
                acc += w(co, cl, ky, kx) * x(b, g * per_group + cl, static_cast<std::size_t>(iy), static_cast<std::size_t>(ix));
              }
          y(b, co, oy, ox) = acc;
        }
  if (chw) y.reshape({c_out, oh, ow});
  return y;
}

/// Average pooling (padding counts as zeros) or max pooling (padding ignored).
ClearTensor ref_pool(ClearTensor x, const Window2d& win, bool max) {
  const bool chw = x.dimension() == 3;
  if (chw) x.reshape({1, x.shape()[0], x.shape()[1], x.shape()[2]});
  const std::size_t batch = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const std::size_t oh = (h + win.pad_top + win.pad_bottom - (win.dilation_h * (win.kernel_h - 1) + 1)) / win.stride_h + 1;
  const std::size_t ow = (w + win.pad_left + win.pad_right - (win.dilation_w * (win.kernel_w - 1) + 1)) / win.stride_w + 1;
  ClearTensor y = ClearTensor::from_shape({batch, c, oh, ow});
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t ch = 0; ch < c; ++ch)
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          std::int64_t sum = 0, best = INT64_MIN;
          for (std::size_t ky = 0; ky < win.kernel_h; ++ky)
            for (std::size_t kx = 0; kx < win.kernel_w; ++kx) {
              const auto iy = static_cast<std::int64_t>(oy * win.stride_h + ky * win.dilation_h) - static_cast<std::int64_t>(win.pad_top);
              const auto ix = static_cast<std::int64_t>(ox * win.stride_w + kx * win.dilation_w) - static_cast<std::int64_t>(win.pad_left);
              if (iy < 0 || ix < 0 || iy >= static_cast<std::int64_t>(h) || ix >= static_cast<std::int64_t>(w)) continue;
              const std::int64_t v = x(b, ch, static_cast<std::size_t>(iy), static_cast<std::size_t>(ix));
              sum += v;
              best = std::max(best, v);
            }
          y(b, ch, oy, ox) = max ? best : rounded_div(sum, static_cast<std::int64_t>(win.kernel_h * win.kernel_w));
        }
  if (chw) y.reshape({c, oh, ow});
  return y;
}

ClearTensor ref_sum(const ClearTensor& x, const std::vector<std::size_t>& axes, bool keep) {
  Dims kept_shape = dims(x), out_shape;
  for (std::size_t a : axes) kept_shape[a] = 1;
  ClearTensor y = zeros(kept_shape);
  each_index(dims(x), [&](const Dims& i) {
    Dims j = i;
    for (std::size_t a : axes) j[a] = 0;
    at(y, j) += at(x, i);
  });
  if (keep) return y;
  for (std::size_t a = 0; a < x.dimension(); ++a)
    if (std::find(axes.begin(), axes.end(), a) == axes.end()) out_shape.push_back(x.shape()[a]);
  return reshaped(y, out_shape);
}

ClearTensor ref_mean(const ClearTensor& x, const std::vector<std::size_t>& axes, bool keep) {
  std::int64_t count = 1;
  for (std::size_t a : axes) count *= static_cast<std::int64_t>(x.shape()[a]);
  return map(ref_sum(x, axes, keep), [&](std::int64_t s) { return rounded_div(s, count); });
}

/// The indices a Python slice start:stop:step selects on an axis of `n` (CPython's rules;
/// stop == end stands for an omitted stop).
std::vector<std::size_t> python_slice(std::int64_t n, Slice s) {
  std::int64_t start = s.start, stop = s.stop;
  if (s.step > 0) {
    if (start < 0) start = std::max<std::int64_t>(start + n, 0);
    start = std::min(start, n);
    if (stop == end) stop = n;
    else {
      if (stop < 0) stop = std::max<std::int64_t>(stop + n, 0);
      stop = std::min(stop, n);
    }
  } else {
    if (start < 0) start = std::max<std::int64_t>(start + n, -1);
    start = std::min(start, n - 1);
    if (stop == end) stop = -1;
    else {
      if (stop < 0) stop = std::max<std::int64_t>(stop + n, -1);
      stop = std::min(stop, n - 1);
    }
  }
  std::vector<std::size_t> picked;
  for (std::int64_t i = start; s.step > 0 ? i < stop : i > stop; i += s.step) picked.push_back(static_cast<std::size_t>(i));
  return picked;
}

ClearTensor ref_slice(const ClearTensor& x, const std::vector<Slice>& slices) {
  std::vector<std::vector<std::size_t>> picked;
  Dims shape;
  for (std::size_t a = 0; a < x.dimension(); ++a) {
    std::vector<std::size_t> p;
    if (a < slices.size()) p = python_slice(static_cast<std::int64_t>(x.shape()[a]), slices[a]);
    else
      for (std::size_t i = 0; i < x.shape()[a]; ++i) p.push_back(i);
    shape.push_back(p.size());
    picked.push_back(std::move(p));
  }
  ClearTensor y = ClearTensor::from_shape(shape);
  each_index(shape, [&](const Dims& i) {
    Dims j(i.size());
    for (std::size_t a = 0; a < i.size(); ++a) j[a] = picked[a][i[a]];
    at(y, i) = at(x, j);
  });
  return y;
}

ClearTensor ref_pad(const ClearTensor& x, const Dims& before, const Dims& after) {
  Dims shape = dims(x);
  for (std::size_t a = 0; a < shape.size(); ++a) shape[a] += before[a] + after[a];
  ClearTensor y = zeros(shape);
  each_index(dims(x), [&](const Dims& i) {
    Dims j = i;
    for (std::size_t a = 0; a < j.size(); ++a) j[a] += before[a];
    at(y, j) = at(x, i);
  });
  return y;
}

ClearTensor ref_transpose(const ClearTensor& x, const Dims& permutation) {
  return ClearTensor(xt::transpose(x, permutation));
}

}  // namespace

// ---------------------------------------------------------------- arithmetic

TEST_CASE("widths known from the types propagate through the operations", "[dsl]") {
  using X = Encrypted<Tensor<int, 1>, Bits<3>>;
  using Y = Encrypted<Tensor<int, 2>, SignedBits<4>>;
  static_assert(decltype(-std::declval<X>())::static_range == ValueRange{-7, 0});
  static_assert(decltype(std::declval<X>() + std::declval<Y>())::static_range == ValueRange{-8, 14});
  static_assert(decltype(std::declval<X>() - std::declval<Y>())::static_range == ValueRange{-7, 15});
  static_assert(decltype(std::declval<X>() + std::declval<Y>())::rank == 2);
  static_assert(decltype(sign(std::declval<X>()))::static_range == ValueRange{-1, 1});
  static_assert(decltype(clip<2, 5>(std::declval<X>()))::static_range == ValueRange{2, 5});
  static_assert(decltype(less(std::declval<X>(), std::declval<Y>()))::static_range == ValueRange{0, 1});
  static_assert(!decltype(relu(std::declval<X>()))::static_range.has_value());
  SUCCEED();
}

TEST_CASE("the usage example computes relu of a dense layer", "[dsl]") {
  Tensor<int, 2> w = {{1, -2, 3}, {2, 1, -1}, {0, 1, 1}, {-1, 2, 0}};
  auto model = compile([&](auto x) { return relu(dense(x, w, Tensor<int, 1>{1, 0, -2})); }, input<Tensor<int, 1>, Bits<3>>({4}));
  auto model2 = compile([&](auto x) { return relu(dense(x, w, Tensor<int, 1>{1, 0, -2})); },
                        input<Tensor<int, 1>>({4}, ValueRange{-5, 9}));
  const ClearTensor x = {3, 1, 7, 2};
  CHECK(check_run(model, {x}, {ClearTensor{4, 6, 13}}));
  CHECK(check_run(model2, {x}, {ClearTensor{4, 6, 13}}));
}

namespace {
template <std::size_t NA, std::size_t NB>
void check_encrypted_add_sub(const Dims& sa, const Dims& sb, Gen& gen) {
  INFO("shapes " << to_string(sa) << " and " << to_string(sb));
  const ValueRange ra{-6, 9}, rb{-3, 4};
  auto m = compile([](auto a, auto b) { return std::tuple{a + b, a - b, b - a, -a, -(a - b), a + a - b}; },
                   std::tuple{input<Tensor<int, NA>>(sa, ra), input<Tensor<int, NB>>(sb, rb)});
  for (int t = 0; t < trials; ++t) {
    const ClearTensor a = random_tensor(sa, ra, gen), b = random_tensor(sb, rb, gen);
    const std::vector<ClearTensor> want{a + b, a - b, b - a, -a, -(a - b), a + a - b};
    if (!check_run(m, {a, b}, want)) break;
  }
}
}  // namespace

TEST_CASE("negation and encrypted addition and subtraction broadcast like NumPy", "[dsl]") {
  Gen gen(1);
  check_encrypted_add_sub<2, 2>({3, 4}, {3, 4}, gen);
  check_encrypted_add_sub<2, 1>({3, 1}, {4}, gen);
  check_encrypted_add_sub<1, 2>({4}, {3, 1}, gen);
  check_encrypted_add_sub<3, 2>({2, 1, 3}, {4, 1}, gen);
  check_encrypted_add_sub<1, 2>({1}, {2, 5}, gen);
  check_encrypted_add_sub<2, 2>({2, 3}, {1, 3}, gen);
  check_encrypted_add_sub<2, 2>({1, 3}, {4, 1}, gen);

  // Typed widths: Bits<3> and SignedBits<4>.
  auto m = compile([](auto a, auto b) { return std::tuple{a + b, a - b, -b}; },
                   std::tuple{input<Tensor<int, 1>, Bits<3>>({5}), input<Tensor<int, 1>, SignedBits<4>>({5})});
  for (int t = 0; t < trials; ++t) {
    const ClearTensor a = random_tensor({5}, 0, 7, gen), b = random_tensor({5}, -8, 7, gen);
    if (!check_run(m, {a, b}, {a + b, a - b, -b})) break;
  }
}

TEST_CASE("encrypted tensors combine with clear scalars and broadcast clear tensors", "[dsl]") {
  Gen gen(2);
  const ValueRange r{-5, 6};
  for (int t = 0; t < trials; ++t) {
    const int s = static_cast<int>(uniform(gen, -4, 4));
    const std::int64_t s64 = uniform(gen, -4, 4);
    Tensor<int, 1> row = random_weights<1>({4}, -3, 3, gen);            // non-const lvalue
    const Tensor<int, 2> column = random_weights<2>({3, 1}, -3, 3, gen);  // const lvalue
    ClearTensor full = random_tensor({3, 4}, -3, 3, gen);                // int64 xarray
    const ClearTensor col3 = reshaped(ClearTensor{2, 0, -1}, {3, 1});   // passed as a temporary
    auto m = compile(
        [&](auto x, auto narrow) {
          return std::tuple{x + s,      s + x,       x - s,           s - x,         x * s,          s * x,
                            x * s64,    s64 - x,     x + row,         row + x,       x - column,     column - x,
                            x * full,   row * x,     x * column - row, full - x * 2, narrow * row,   row - narrow,
                            narrow + full, x + Tensor<int, 1>{1, -2, 3, 0}, ClearTensor(col3) * x,
                            x - (full + 1), (row * 2) * x};
        },
        std::tuple{input<Tensor<int, 2>>({3, 4}, r), input<Tensor<int, 2>>({3, 1}, r)});
    const ClearTensor x = random_tensor({3, 4}, r, gen), narrow = random_tensor({3, 1}, r, gen);
    const ClearTensor row64 = xt::cast<std::int64_t>(row), column64 = xt::cast<std::int64_t>(column);
    const std::vector<ClearTensor> want{x + s,         s + x,       x - s,          s - x,          x * s,
                                        s * x,         x * s64,     s64 - x,        x + row64,      row64 + x,
                                        x - column64,  column64 - x, x * full,      row64 * x,      x * column64 - row64,
                                        full - x * 2,  narrow * row64, row64 - narrow, narrow + full, x + ClearTensor{1, -2, 3, 0},
                                        col3 * x,      x - (full + 1), (row64 * 2) * x};
    if (!check_run(m, {x, narrow}, want)) break;
  }
}

// ---------------------------------------------------------------- linear layers

namespace {
template <std::size_t N>
void check_dense(const Dims& lead, Gen& gen) {
  INFO("leading axes " << to_string(lead));
  const ValueRange r{-4, 7};
  for (int t = 0; t < trials; ++t) {
    const std::size_t k = static_cast<std::size_t>(uniform(gen, 1, 6)), m = static_cast<std::size_t>(uniform(gen, 1, 5));
    const Tensor<int, 2> w = random_weights<2>({k, m}, -3, 3, gen);
    const Tensor<int, 1> b = random_weights<1>({m}, -5, 5, gen);
    const int s = static_cast<int>(uniform(gen, -5, 5));
    Dims shape = lead;
    shape.push_back(k);
    auto model = compile([&](auto x) { return std::tuple{dense(x, w, b), dense(x, w), matmul(x, w), dense(x, w, s)}; },
                         input<Tensor<int, N>>(shape, r));
    const ClearTensor x = random_tensor(shape, r, gen), w64 = xt::cast<std::int64_t>(w), b64 = xt::cast<std::int64_t>(b);
    const std::vector<ClearTensor> want{ref_dense(x, w64, b64), ref_dense(x, w64, ClearTensor(0)), ref_dense(x, w64, ClearTensor(0)),
                                        ref_dense(x, w64, ClearTensor(s))};
    if (!check_run(model, {x}, want)) break;
  }
}
}  // namespace

TEST_CASE("dense and matmul multiply the last axis by the weight matrix", "[dsl]") {
  Gen gen(3);
  check_dense<1>({}, gen);
  check_dense<2>({3}, gen);
  check_dense<2>({1}, gen);
  check_dense<3>({2, 3}, gen);
}

namespace {
struct ConvCase {
  std::size_t batch, c, c_out, h, w, kh, kw;
  Conv2dOptions options;
};

template <std::size_t N>
void check_conv2d(const ConvCase& cc, Gen& gen) {
  static_assert(N == 3 || N == 4);
  const Conv2dOptions& o = cc.options;
  INFO("conv2d C=" << cc.c << " C_out=" << cc.c_out << " " << cc.h << "x" << cc.w << " kernel " << cc.kh << "x" << cc.kw
                   << " stride " << o.stride[0] << "," << o.stride[1] << " padding " << o.padding[0] << "," << o.padding[1]
                   << "," << o.padding[2] << "," << o.padding[3] << " dilation " << o.dilation[0] << "," << o.dilation[1]
                   << " groups " << o.groups << (N == 4 ? " NCHW" : " CHW"));
  const Dims shape = N == 4 ? Dims{cc.batch, cc.c, cc.h, cc.w} : Dims{cc.c, cc.h, cc.w};
  const ValueRange r{-3, 4};
  for (int t = 0; t < trials; ++t) {
    const Tensor<int, 4> w = random_weights<4>({cc.c_out, cc.c / o.groups, cc.kh, cc.kw}, -2, 2, gen);
    const Tensor<int, 1> b = random_weights<1>({cc.c_out}, -5, 5, gen);
    auto model = compile([&](auto x) { return std::tuple{conv2d(x, w, b, o), conv2d(x, w, 0, o)}; }, input<Tensor<int, N>>(shape, r));
    const ClearTensor x = random_tensor(shape, r, gen), w64 = xt::cast<std::int64_t>(w), b64 = xt::cast<std::int64_t>(b);
    const std::vector<ClearTensor> want{ref_conv2d(x, w64, b64, o), ref_conv2d(x, w64, zeros({cc.c_out}), o)};
    if (!check_run(model, {x}, want)) break;
  }
}
}  // namespace

TEST_CASE("conv2d matches a direct convolution with stride padding dilation and groups", "[dsl]") {
  Gen gen(4);
  // {batch, C, C_out, H, W, KH, KW, {stride, padding (top, left, bottom, right), dilation, groups}}
  const std::vector<ConvCase> cases{
      {2, 1, 1, 5, 5, 3, 3, {}},
      {2, 2, 3, 6, 5, 3, 2, {{2, 1}, {1, 0, 2, 1}, {1, 1}, 1}},
      {1, 3, 2, 7, 7, 3, 3, {{1, 1}, {2, 2, 2, 2}, {2, 2}, 1}},
      {2, 4, 6, 5, 6, 2, 3, {{1, 2}, {0, 1, 1, 0}, {1, 2}, 2}},
      {2, 3, 3, 5, 4, 3, 3, {{1, 1}, {1, 1, 1, 1}, {1, 1}, 3}},   // depthwise
      {3, 2, 4, 6, 6, 3, 3, {{2, 2}, {1, 1, 0, 0}, {1, 1}, 2}},   // depthwise, channel multiplier 2
      {1, 4, 2, 4, 5, 1, 1, {{1, 3}, {0, 0, 0, 2}, {1, 1}, 2}},   // 1x1 kernels, groups 2
      {2, 2, 2, 3, 3, 3, 3, {{3, 3}, {3, 0, 0, 3}, {1, 1}, 1}},   // padding as wide as the kernel
  };
  for (const ConvCase& cc : cases) {
    check_conv2d<3>(cc, gen);
    check_conv2d<4>(cc, gen);
  }
}

// ---------------------------------------------------------------- reductions

TEST_CASE("sum reduces the given axes with or without keeping them", "[dsl]") {
  Gen gen(5);
  const ValueRange r{-5, 6};
  const Dims shape{2, 3, 4};
  auto m = compile(
      [](auto x) {
        return std::tuple{sum<1>(x, {0}),          sum<1>(x, {1}),          sum<1>(x, {2}),         sum<2>(x, {0, 2}),
                          sum<2>(x, {2, 1}),       sum<3>(x, {1, 0, 2}),    sum(x),                 sum<1, true>(x, {1}),
                          sum<2, true>(x, {2, 0}), sum<3, true>(x, {0, 1, 2}), sum<0>(x, {})};
      },
      input<Tensor<int, 3>>(shape, r));
  auto m1 = compile([](auto x) { return std::tuple{sum(x), sum<1, true>(x, {0}), relu(sum(x) - 20), mean<1>(x, {0}) * 2 + sum(x)}; },
                    input<Tensor<int, 1>, Bits<3>>({7}));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor(shape, r, gen);
    const std::vector<ClearTensor> want{ref_sum(x, {0}, false),       ref_sum(x, {1}, false),       ref_sum(x, {2}, false),
                                        ref_sum(x, {0, 2}, false),    ref_sum(x, {1, 2}, false),    ref_sum(x, {0, 1, 2}, false),
                                        ref_sum(x, {0, 1, 2}, false), ref_sum(x, {1}, true),        ref_sum(x, {0, 2}, true),
                                        ref_sum(x, {0, 1, 2}, true),  x};
    if (!check_run(m, {x}, want)) break;
    const ClearTensor y = random_tensor({7}, 0, 7, gen);
    const ClearTensor total = ref_sum(y, {0}, false);
    const std::vector<ClearTensor> want1{total, ref_sum(y, {0}, true), map(total, [](std::int64_t v) { return std::max<std::int64_t>(v - 20, 0); }),
                                         ref_mean(y, {0}, false) * 2 + total};
    if (!check_run(m1, {y}, want1)) break;
  }
}

TEST_CASE("mean divides the sum and rounds half away from zero", "[dsl]") {
  Gen gen(6);
  const ValueRange r{-5, 5};
  const Dims shape{2, 3, 4};
  auto m = compile(
      [](auto x) {
        return std::tuple{mean<1>(x, {0}), mean<1>(x, {1}), mean<1>(x, {2}), mean<2>(x, {0, 2}), mean<2, true>(x, {2, 1}),
                          mean<3>(x, {0, 1, 2}), mean<1, true>(x, {0})};
      },
      input<Tensor<int, 3>>(shape, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor(shape, r, gen);
    const std::vector<ClearTensor> want{ref_mean(x, {0}, false),    ref_mean(x, {1}, false),      ref_mean(x, {2}, false),
                                        ref_mean(x, {0, 2}, false), ref_mean(x, {1, 2}, true),    ref_mean(x, {0, 1, 2}, false),
                                        ref_mean(x, {0}, true)};
    if (!check_run(m, {x}, want)) break;
  }
  // Halves round away from zero: 1.5 -> 2, -1.5 -> -2, 0.5 -> 1, -0.5 -> -1; 4/3 -> 1, -5/3 -> -2.
  auto pairs = compile([](auto x) { return mean<1>(x, {1}); }, input<Tensor<int, 2>>({4, 2}, ValueRange{-2, 2}));
  CHECK(check_run(pairs, {ClearTensor{{1, 2}, {-1, -2}, {-1, 2}, {1, -2}}}, {ClearTensor{2, -2, 1, -1}}));
  auto triples = compile([](auto x) { return mean<1>(x, {1}); }, input<Tensor<int, 2>>({3, 3}, ValueRange{-2, 2}));
  CHECK(check_run(triples, {ClearTensor{{1, 2, 1}, {-2, -2, -1}, {2, 2, 2}}}, {ClearTensor{1, -2, 2}}));
}

// ---------------------------------------------------------------- pooling

namespace {
template <std::size_t N>
void check_pooling(const Dims& shape, const Window2d& win, Gen& gen) {
  INFO("input " << to_string(shape) << " kernel " << win.kernel_h << "x" << win.kernel_w << " stride " << win.stride_h << ","
                << win.stride_w << " padding " << win.pad_top << "," << win.pad_left << "," << win.pad_bottom << ","
                << win.pad_right << " dilation " << win.dilation_h << "," << win.dilation_w);
  const ValueRange r{-4, 5};
  auto m = compile([&](auto x) { return std::tuple{avg_pool2d(x, win), max_pool2d(x, win)}; }, input<Tensor<int, N>>(shape, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor(shape, r, gen);
    if (!check_run(m, {x}, {ref_pool(x, win, false), ref_pool(x, win, true)})) break;
  }
}
}  // namespace

TEST_CASE("avg_pool2d counts the padding and max_pool2d ignores it", "[dsl]") {
  Gen gen(7);
  const std::vector<Window2d> windows{
      {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
      {.kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1},
      {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_top = 1, .pad_left = 0, .pad_bottom = 0, .pad_right = 1},
      {.kernel_h = 2, .kernel_w = 3, .stride_h = 1, .stride_w = 2, .pad_top = 0, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
       .dilation_h = 2, .dilation_w = 1},
      {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 2, .pad_bottom = 0, .pad_right = 0},
      {.kernel_h = 1, .kernel_w = 2, .stride_h = 1, .stride_w = 1},
  };
  for (const Window2d& win : windows) {
    check_pooling<3>({2, 5, 6}, win, gen);
    check_pooling<4>({2, 3, 6, 5}, win, gen);
  }
}

TEST_CASE("global_avg_pool averages each channel plane", "[dsl]") {
  Gen gen(8);
  const ValueRange r{-4, 5};
  auto chw = compile([](auto x) { return global_avg_pool(x); }, input<Tensor<int, 3>>({3, 4, 5}, r));
  auto nchw = compile([](auto x) { return global_avg_pool(x); }, input<Tensor<int, 4>>({2, 3, 3, 4}, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor({3, 4, 5}, r, gen), y = random_tensor({2, 3, 3, 4}, r, gen);
    if (!check_run(chw, {x}, {ref_mean(x, {1, 2}, false)})) break;
    if (!check_run(nchw, {y}, {ref_mean(y, {2, 3}, false)})) break;
  }
}

// ---------------------------------------------------------------- data movement

TEST_CASE("reshape flatten and transpose move elements like NumPy", "[dsl]") {
  Gen gen(10);
  const ValueRange r{-9, 9};
  auto m = compile(
      [](auto x) {
        return std::tuple{reshape(x, std::array<std::size_t, 2>{6, 4}), reshape(x, std::array<std::size_t, 4>{1, 4, 3, 2}),
                          reshape(x, std::array<std::size_t, 1>{24}), flatten(x),
                          transpose(x, {0, 1, 2}), transpose(x, {0, 2, 1}), transpose(x, {1, 0, 2}),
                          transpose(x, {1, 2, 0}), transpose(x, {2, 0, 1}), transpose(x, {2, 1, 0}),
                          transpose(reshape(x, std::array<std::size_t, 2>{4, 6}), {1, 0}),
                          flatten(transpose(x, {2, 0, 1}))};
      },
      input<Tensor<int, 3>>({2, 3, 4}, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor({2, 3, 4}, r, gen);
    const std::vector<ClearTensor> want{reshaped(x, {6, 4}),         reshaped(x, {1, 4, 3, 2}),      reshaped(x, {24}),
                                        reshaped(x, {24}),           ref_transpose(x, {0, 1, 2}),    ref_transpose(x, {0, 2, 1}),
                                        ref_transpose(x, {1, 0, 2}), ref_transpose(x, {1, 2, 0}),    ref_transpose(x, {2, 0, 1}),
                                        ref_transpose(x, {2, 1, 0}), ref_transpose(reshaped(x, {4, 6}), {1, 0}),
                                        reshaped(ref_transpose(x, {2, 0, 1}), {24})};
    if (!check_run(m, {x}, want)) break;
  }
}

TEST_CASE("slice follows Python slicing including negative steps and clamping", "[dsl]") {
  Gen gen(11);
  const ValueRange r{-9, 9};
  const std::vector<std::vector<Slice>> cases2{
      {{1, 4, 1}},
      {{-1, end, -1}},
      {{4, 0, -2}, {5, -7, -1}},
      {{0, 5, 2}, {-2, 1, -3}},
      {{10, -10, -1}, {-10, 10, 3}},
      {{0, end, 1}, {-1, end, -2}},
      {{3, 1, -1}, {1, 5, 3}},
      {{-3, -1, 1}, {-1, -4, -1}},
      {{}, {2, end, 2}},
      {{4, end, -1}, {0, 1, -1}},  // empty (0 down to 1): skipped here, run in the next test
  };
  const std::vector<std::vector<Slice>> cases3{
      {{-1, end, -1}, {1, 3, 1}, {4, 0, -2}},
      {{0, 3, 2}},
      {{}, {-3, end, 1}},
      {{2, -4, -1}, {3, end, -3}, {-5, 5, 4}},
  };
  for (const auto& s : cases2) {
    std::vector<ClearTensor> probe{ref_slice(zeros({5, 6}), s)};
    if (probe[0].size() == 0) continue;  // empty results: see the separate test below
    auto m = compile([&](auto x) { return slice(x, s); }, input<Tensor<int, 2>>({5, 6}, r));
    for (int t = 0; t < trials; ++t) {
      const ClearTensor x = random_tensor({5, 6}, r, gen);
      if (!check_run(m, {x}, {ref_slice(x, s)})) break;
    }
  }
  for (const auto& s : cases3) {
    auto m = compile([&](auto x) { return std::tuple{slice(x, s), slice(slice(x, s), {{-1, end, -1}})}; },
                     input<Tensor<int, 3>>({3, 4, 5}, r));
    for (int t = 0; t < trials; ++t) {
      const ClearTensor x = random_tensor({3, 4, 5}, r, gen);
      if (!check_run(m, {x}, {ref_slice(x, s), ref_slice(ref_slice(x, s), {{-1, end, -1}})})) break;
    }
  }
}

TEST_CASE("slice may select nothing as in NumPy", "[dsl]") {
  const std::vector<Slice> s{{2, 2, 1}}, t{{4, end, -1}, {0, 1, -1}}, u{{-10, end, -1}}, v{{}, {7, end, 1}};
  auto m = compile([&](auto x) { return std::tuple{slice(x, s), slice(x, t), slice(x, u), slice(x, v), x}; },
                   input<Tensor<int, 2>, Bits<3>>({5, 6}));
  Gen gen(20);
  const ClearTensor x = random_tensor({5, 6}, 0, 7, gen);
  CHECK(check_run(m, {x}, {ref_slice(x, s), ref_slice(x, t), ref_slice(x, u), ref_slice(x, v), x}));
  CHECK(ref_slice(x, s).shape()[0] == 0);
  CHECK(ref_slice(x, t).shape()[1] == 0);
  CHECK(ref_slice(x, u).shape()[0] == 0);
  CHECK(ref_slice(x, v).shape()[1] == 0);
}

TEST_CASE("pad surrounds every axis with zeros", "[dsl]") {
  Gen gen(12);
  const ValueRange r{1, 9};  // no zeros in the data: a misplaced pad shows
  auto m = compile(
      [](auto x) {
        return std::tuple{pad(x, {1, 0, 2}, {0, 2, 1}), pad(x, {0, 0, 0}, {0, 0, 0}), pad(x, {2, 2, 2}, {2, 2, 2}),
                          pad(x, {0, 3, 0}, {1, 0, 0})};
      },
      input<Tensor<int, 3>>({2, 3, 2}, r));
  auto m1 = compile([](auto x) { return pad(x, {3}, {1}); }, input<Tensor<int, 1>>({4}, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor({2, 3, 2}, r, gen), y = random_tensor({4}, r, gen);
    const std::vector<ClearTensor> want{ref_pad(x, {1, 0, 2}, {0, 2, 1}), x, ref_pad(x, {2, 2, 2}, {2, 2, 2}),
                                        ref_pad(x, {0, 3, 0}, {1, 0, 0})};
    if (!check_run(m, {x}, want)) break;
    if (!check_run(m1, {y}, {ref_pad(y, {3}, {1})})) break;
  }
}

TEST_CASE("concatenate joins two or three tensors along any axis", "[dsl]") {
  Gen gen(13);
  const ValueRange ra{-9, 0}, rb{1, 9}, rc{10, 19};  // disjoint: a misplaced element shows
  auto m = compile(
      [](auto a, auto b, auto c) {
        return std::tuple{concatenate(0, a, b), concatenate(0, a, b, c), concatenate(0, b, a, b)};
      },
      std::tuple{input<Tensor<int, 3>>({2, 3, 4}, ra), input<Tensor<int, 3>>({1, 3, 4}, rb), input<Tensor<int, 3>>({3, 3, 4}, rc)});
  auto m1 = compile([](auto a, auto b, auto c) { return std::tuple{concatenate(1, a, b), concatenate(1, a, b, c), concatenate(1, c, a)}; },
                    std::tuple{input<Tensor<int, 3>>({2, 3, 4}, ra), input<Tensor<int, 3>>({2, 1, 4}, rb),
                               input<Tensor<int, 3>>({2, 2, 4}, rc)});
  auto m2 = compile([](auto a, auto b, auto c) { return std::tuple{concatenate(2, a, b), concatenate(2, a, b, c), concatenate(2, a)}; },
                    std::tuple{input<Tensor<int, 3>>({2, 3, 4}, ra), input<Tensor<int, 3>>({2, 3, 2}, rb),
                               input<Tensor<int, 3>>({2, 3, 1}, rc)});
  auto m3 = compile([](auto a, auto b) { return concatenate(0, a, b, a); },
                    std::tuple{input<Tensor<int, 1>>({3}, ra), input<Tensor<int, 1>>({2}, rb)});
  using xt::concatenate;
  using xt::xtuple;
  for (int t = 0; t < trials; ++t) {
    {
      const ClearTensor a = random_tensor({2, 3, 4}, ra, gen), b = random_tensor({1, 3, 4}, rb, gen), c = random_tensor({3, 3, 4}, rc, gen);
      const std::vector<ClearTensor> want{concatenate(xtuple(a, b), 0), concatenate(xtuple(a, b, c), 0), concatenate(xtuple(b, a, b), 0)};
      if (!check_run(m, {a, b, c}, want)) break;
    }
    {
      const ClearTensor a = random_tensor({2, 3, 4}, ra, gen), b = random_tensor({2, 1, 4}, rb, gen), c = random_tensor({2, 2, 4}, rc, gen);
      const std::vector<ClearTensor> want{concatenate(xtuple(a, b), 1), concatenate(xtuple(a, b, c), 1), concatenate(xtuple(c, a), 1)};
      if (!check_run(m1, {a, b, c}, want)) break;
    }
    {
      const ClearTensor a = random_tensor({2, 3, 4}, ra, gen), b = random_tensor({2, 3, 2}, rb, gen), c = random_tensor({2, 3, 1}, rc, gen);
      const std::vector<ClearTensor> want{concatenate(xtuple(a, b), 2), concatenate(xtuple(a, b, c), 2), a};
      if (!check_run(m2, {a, b, c}, want)) break;
    }
    {
      const ClearTensor a = random_tensor({3}, ra, gen), b = random_tensor({2}, rb, gen);
      if (!check_run(m3, {a, b}, {concatenate(xtuple(a, b, a), 0)})) break;
    }
  }
}

// ---------------------------------------------------------------- lookup tables

namespace {
/// Checks `m` (one input of shape {n} over r) on every value of r and on random tensors.
void check_table_model(const CompiledModel& m, ValueRange r, const std::function<std::vector<ClearTensor>(const ClearTensor&)>& ref,
                       Gen& gen) {
  const ClearTensor sweep = every_value(r);
  if (!check_run(m, {sweep}, ref(sweep))) return;
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor(dims(sweep), r, gen);
    if (!check_run(m, {x}, ref(x))) break;
  }
}
}  // namespace

TEST_CASE("apply relu relu6 clip and sign give their integer functions exactly", "[dsl]") {
  Gen gen(14);
  const ValueRange r{-40, 50};
  const std::size_t n = static_cast<std::size_t>(r.hi - r.lo + 1);
  auto m = compile(
      [](auto x) {
        return std::tuple{relu(x),
                          relu6(x),
                          relu6(x, 0.5),
                          relu6(x, 0.3),
                          clip(x, -7, 12),
                          clip<-3, 20>(x),
                          sign(x),
                          apply(x, [](std::int64_t v) { return v * v - 3; }),
                          apply(x, [](std::int64_t v) { return v % 7; }, "mod7"),
                          apply(x, TableFunction::from_integer("cube/50", [](std::int64_t v) { return v * v * v / 50; })),
                          relu(x - 10),
                          sign(x + 5)};
      },
      input<Tensor<int, 1>>({n}, r));
  check_table_model(
      m, r,
      [](const ClearTensor& x) {
        return std::vector<ClearTensor>{
            map(x, [](std::int64_t v) { return std::max<std::int64_t>(v, 0); }),
            map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, 0, 6); }),
            map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, 0, 12); }),
            map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, 0, 20); }),
            map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, -7, 12); }),
            map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, -3, 20); }),
            map(x, [](std::int64_t v) -> std::int64_t { return v > 0 ? 1 : v < 0 ? -1 : 0; }),
            map(x, [](std::int64_t v) { return v * v - 3; }),
            map(x, [](std::int64_t v) { return v % 7; }),
            map(x, [](std::int64_t v) { return v * v * v / 50; }),
            map(x, [](std::int64_t v) { return std::max<std::int64_t>(v - 10, 0); }),
            map(x, [](std::int64_t v) -> std::int64_t { return v + 5 > 0 ? 1 : v + 5 < 0 ? -1 : 0; })};
      },
      gen);

  // Elementwise on any rank, with a typed width.
  auto m3 = compile([](auto x) { return std::tuple{relu(x - 3), clip<1, 4>(x), sign(x - 4)}; }, input<Tensor<int, 3>, Bits<3>>({2, 3, 2}));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor({2, 3, 2}, 0, 7, gen);
    const std::vector<ClearTensor> want{map(x, [](std::int64_t v) { return std::max<std::int64_t>(v - 3, 0); }),
                                        map(x, [](std::int64_t v) { return std::clamp<std::int64_t>(v, 1, 4); }),
                                        map(x, [](std::int64_t v) -> std::int64_t { return (v > 4) - (v < 4); })};
    if (!check_run(m3, {x}, want)) break;
  }
}

TEST_CASE("sigmoid tanh and gelu round the real function of the scaled input", "[dsl]") {
  Gen gen(15);
  const ValueRange r{-100, 100};
  const std::size_t n = static_cast<std::size_t>(r.hi - r.lo + 1);
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  auto gel = [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); };
  struct Scales {
    double in, out;
  };
  for (const Scales s : {Scales{0.05, 1.0 / 100}, Scales{0.1, 1.0 / 64}, Scales{0.02, 0.01}, Scales{0.07, 0.03}}) {
    INFO("input scale " << s.in << " output scale " << s.out);
    auto m = compile([&](auto x) { return std::tuple{sigmoid(x, s.in, s.out), tanh(x, s.in, s.out), gelu(x, s.in, s.out)}; },
                     input<Tensor<int, 1>>({n}, r));
    auto quantized = [&](const ClearTensor& x, auto f) {
      return map(x, [&](std::int64_t v) { return std::llround(f(static_cast<double>(v) * s.in) / s.out); });
    };
    check_table_model(
        m, r,
        [&](const ClearTensor& x) {
          return std::vector<ClearTensor>{quantized(x, sig), quantized(x, [](double v) { return std::tanh(v); }), quantized(x, gel)};
        },
        gen);
  }
}

namespace {
/// round_bits<P> over every value of r: the output is x rounded half up to a multiple of
/// 2^k (one k for the whole range) and takes at most 2^P values.
template <int P>
void check_round_bits(ValueRange r) {
  INFO("round_bits<" << P << "> over " << r.to_string());
  const ClearTensor x = every_value(r);
  // Approximate rounding: wide inputs need fewer bits of the torus; run_clear is the same.
  auto m = compile([](auto v) { return std::tuple{round_bits<P>(v), relu(round_bits<P>(v) - 3)}; },
                   input<Tensor<int, 1>>({x.size()}, r), CompileOptions{.rounding = Rounding::approximate});
  const std::vector<ClearTensor> y = run_clear(m, {x});
  auto rounded = [](std::int64_t v, int k) {
    if (k == 0) return v;
    const std::int64_t step = std::int64_t{1} << k;
    return floor_div(v + step / 2, step) * step;
  };
  int k_found = -1;
  for (int k = 0; k < 40 && k_found < 0; ++k)
    if (std::equal(x.begin(), x.end(), y[0].begin(), [&](std::int64_t v, std::int64_t out) { return rounded(v, k) == out; }))
      k_found = k;
  INFO("outputs " << show(y[0]));
  REQUIRE(k_found >= 0);
  const std::set<std::int64_t> distinct(y[0].begin(), y[0].end());
  CHECK(distinct.size() <= (std::size_t{1} << P));
  if (r.span() < (std::uint64_t{1} << P)) CHECK(k_found == 0);  // already narrow enough: exact
  // Chained into a table, the rounding is kept (the tables fuse); checked where the
  // relu's own input spans at most 256 values, so that it reads it exactly.
  const auto [lo, hi] = std::minmax_element(y[0].begin(), y[0].end());
  if (*hi - *lo < 256)
    CHECK(same_tensor(y[1], map(x, [&](std::int64_t v) { return std::max<std::int64_t>(rounded(v, k_found) - 3, 0); })));
}
}  // namespace

TEST_CASE("round_bits keeps the top bits rounding half up", "[dsl]") {
  check_round_bits<3>({0, 63});
  check_round_bits<4>({-100, 155});
  check_round_bits<1>({0, 9});
  check_round_bits<2>({5, 40});
  check_round_bits<5>({-20, 11});
  check_round_bits<5>({-20, 12});
  check_round_bits<6>({-200, 300});
  check_round_bits<4>({-50, 60});
  check_round_bits<8>({-300, 700});
  check_round_bits<8>({0, 255});
  check_round_bits<7>({-77, 300});
}

TEST_CASE("maximum and minimum of encrypted and clear operands", "[dsl]") {
  Gen gen(16);
  const ValueRange ra{-20, 30}, rb{-10, 25};
  for (int t = 0; t < trials; ++t) {
    Tensor<int, 1> row = random_weights<1>({4}, -15, 15, gen);
    const int s = static_cast<int>(uniform(gen, -10, 10));
    auto m = compile(
        [&](auto a, auto b, auto column) {
          return std::tuple{maximum(a, b), minimum(a, b), maximum(b, a), minimum(b, a), maximum(a, s), minimum(s, a),
                            maximum(a, row), minimum(row, b), maximum(column, b), minimum(a, column)};
        },
        std::tuple{input<Tensor<int, 2>>({3, 4}, ra), input<Tensor<int, 2>>({3, 4}, rb), input<Tensor<int, 2>>({3, 1}, rb)});
    const ClearTensor a = random_tensor({3, 4}, ra, gen), b = random_tensor({3, 4}, rb, gen), column = random_tensor({3, 1}, rb, gen);
    const ClearTensor row64 = xt::cast<std::int64_t>(row), s64 = ClearTensor(s);
    auto mx = [](std::int64_t u, std::int64_t v) { return std::max(u, v); };
    auto mn = [](std::int64_t u, std::int64_t v) { return std::min(u, v); };
    const std::vector<ClearTensor> want{zip(a, b, mx),        zip(a, b, mn),     zip(b, a, mx),         zip(b, a, mn),
                                        zip(a, s64, mx),      zip(s64, a, mn),   zip(a, row64, mx),     zip(row64, b, mn),
                                        zip(column, b, mx),   zip(a, column, mn)};
    if (!check_run(m, {a, b, column}, want)) break;
  }
}

TEST_CASE("maximum stays within its compiled range when its relu table rounds", "[dsl]") {
  // a - b spans 301 values: the relu table reads it rounded to even values, so maximum()
  // may exceed both operands by one (max(200, -99) = -99 + relu(300) = 201). Whatever it
  // returns must lie in the output range the compiler derived, which the encodings and
  // any following table rely on.
  auto m = compile([](auto a, auto b) { return maximum(a, b); },
                   std::tuple{input<Tensor<int, 1>>({201}, ValueRange{0, 200}), input<Tensor<int, 1>>({1}, ValueRange{-100, 0})});
  const ClearTensor a = every_value({0, 200});
  for (std::int64_t b = -100; b <= 0; ++b) {
    const ClearTensor y = run_clear(m, {a, ClearTensor{b}})[0];
    INFO("b = " << b << ": " << show(y) << "\ncompiled output range " << m.nodes[m.outputs[0]].range.to_string());
    const bool ok = within_compiled_range(m, 0, y);
    CHECK(ok);
    if (!ok) break;
  }
}

TEST_CASE("comparisons give one where they hold and zero elsewhere", "[dsl]") {
  Gen gen(17);
  const ValueRange r{-3, 3};  // narrow: many ties
  for (int t = 0; t < trials; ++t) {
    Tensor<int, 1> row = random_weights<1>({4}, -3, 3, gen);
    const int s = static_cast<int>(uniform(gen, -3, 3));
    auto m = compile(
        [&](auto a, auto b, auto column) {
          return std::tuple{less(a, b),      less_equal(a, b), greater(a, b),     greater_equal(a, b), equal(a, b),
                            not_equal(a, b), less(a, s),       greater_equal(a, s), equal(a, row),     not_equal(b, row),
                            greater(column, a), less_equal(a, column)};
        },
        std::tuple{input<Tensor<int, 2>>({3, 4}, r), input<Tensor<int, 2>>({3, 4}, r), input<Tensor<int, 2>>({3, 1}, r)});
    const ClearTensor a = random_tensor({3, 4}, r, gen), b = random_tensor({3, 4}, r, gen), column = random_tensor({3, 1}, r, gen);
    const ClearTensor row64 = xt::cast<std::int64_t>(row), s64 = ClearTensor(s);
    auto f = [](auto p) { return [p](std::int64_t u, std::int64_t v) -> std::int64_t { return p(u, v) ? 1 : 0; }; };
    const std::vector<ClearTensor> want{
        zip(a, b, f(std::less<>{})),           zip(a, b, f(std::less_equal<>{})),   zip(a, b, f(std::greater<>{})),
        zip(a, b, f(std::greater_equal<>{})),  zip(a, b, f(std::equal_to<>{})),     zip(a, b, f(std::not_equal_to<>{})),
        zip(a, s64, f(std::less<>{})),         zip(a, s64, f(std::greater_equal<>{})), zip(a, row64, f(std::equal_to<>{})),
        zip(b, row64, f(std::not_equal_to<>{})), zip(column, a, f(std::greater<>{})), zip(a, column, f(std::less_equal<>{}))};
    if (!check_run(m, {a, b, column}, want)) break;
  }
}

TEST_CASE("chains of tables fuse into their composition", "[dsl]") {
  Gen gen(18);
  const ValueRange r{-30, 30};
  auto m = compile(
      [](auto x) {
        return std::tuple{sign(relu(x) * 2 - 7), relu6(relu(x)), clip(sign(x) * 5 + 1, -2, 3), greater(relu(x), 4),
                          apply(clip<-5, 5>(x) * -3 + 2, [](std::int64_t v) { return v * v; })};
      },
      input<Tensor<int, 2>>({4, 5}, r));
  for (int t = 0; t < trials; ++t) {
    const ClearTensor x = random_tensor({4, 5}, r, gen);
    auto relu_ = [](std::int64_t v) { return std::max<std::int64_t>(v, 0); };
    auto sign_ = [](std::int64_t v) -> std::int64_t { return (v > 0) - (v < 0); };
    const std::vector<ClearTensor> want{
        map(x, [&](std::int64_t v) { return sign_(relu_(v) * 2 - 7); }),
        map(x, [&](std::int64_t v) { return std::clamp<std::int64_t>(relu_(v), 0, 6); }),
        map(x, [&](std::int64_t v) { return std::clamp<std::int64_t>(sign_(v) * 5 + 1, -2, 3); }),
        map(x, [&](std::int64_t v) -> std::int64_t { return relu_(v) > 4; }),
        map(x, [&](std::int64_t v) {
          const std::int64_t u = std::clamp<std::int64_t>(v, -5, 5) * -3 + 2;
          return u * u;
        })};
    if (!check_run(m, {x}, want)) break;
  }
}

// ---------------------------------------------------------------- run_float

namespace {
xt::xarray<double> as_double(const ClearTensor& t) { return xt::cast<double>(t); }
}  // namespace

TEST_CASE("run_float gives the integer result on linear operations", "[dsl]") {
  Gen gen(19);
  const ValueRange r{-4, 5};
  for (int t = 0; t < trials; ++t) {
    const Tensor<int, 4> cw = random_weights<4>({3, 2, 2, 2}, -2, 2, gen);
    const Tensor<int, 2> dw = random_weights<2>({12, 4}, -2, 2, gen);
    const Tensor<int, 1> row = random_weights<1>({4}, -3, 3, gen);
    auto m = compile(
        [&](auto x, auto y) {
          auto c = conv2d(x, cw, Tensor<int, 1>{1, -1, 2}, {.padding = {1, 0, 0, 1}});
          return std::tuple{c,
                            sum<2>(c, {1, 2}),
                            transpose(pad(x, {0, 1, 0}, {1, 0, 0}), {2, 0, 1}) * 3 - 1,
                            dense(y, dw) + row,
                            slice(concatenate(0, y, y), {{-1, end, -2}}) - y,
                            -reshape(y, std::array<std::size_t, 2>{3, 4}) + 2 + sum(x)};
        },
        std::tuple{input<Tensor<int, 3>>({2, 4, 3}, r), input<Tensor<int, 1>>({12}, r)});
    const ClearTensor x = random_tensor({2, 4, 3}, r, gen), y = random_tensor({12}, r, gen);
    const std::vector<ClearTensor> exact = run_clear(m, {x, y});
    const std::vector<xt::xarray<double>> real = run_float(m, {as_double(x), as_double(y)});
    REQUIRE(real.size() == exact.size());
    bool ok = true;
    for (std::size_t k = 0; k < exact.size(); ++k) {
      INFO("output " << k << ": float " << real[k] << "\nclear " << exact[k]);
      CHECK(real[k] == as_double(exact[k]));
      ok = ok && real[k] == as_double(exact[k]);
    }
    if (!ok) break;
  }
}

TEST_CASE("run_float applies tables to the unrounded input", "[dsl]") {
  const double in = 0.05, out = 0.01;
  auto m = compile(
      [&](auto x) { return std::tuple{sigmoid(x, in, out), tanh(x, 0.03, 0.02), gelu(x, 0.04, 0.01), relu(x)}; },
      input<Tensor<int, 1>>({6}, ValueRange{-100, 100}));
  auto averages = compile([](auto x) { return std::tuple{mean<1>(x, {0}), avg_pool2d(x, {.kernel_h = 1, .kernel_w = 3, .pad_left = 1, .pad_right = 1})}; },
                          input<Tensor<int, 3>>({6, 1, 1}, ValueRange{-20, 20}));
  const xt::xarray<double> x = {-99.5, -3.25, 0.0, 0.4, 17.7, 100.0};
  const std::vector<xt::xarray<double>> y = run_float(m, {x});
  REQUIRE(y.size() == 4);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x(i);
    INFO("x = " << v);
    CHECK(y[0](i) == Approx(1.0 / (1.0 + std::exp(-v * in)) / out).epsilon(1e-12));
    CHECK(y[1](i) == Approx(std::tanh(v * 0.03) / 0.02).epsilon(1e-12));
    CHECK(y[2](i) == Approx(0.5 * v * 0.04 * (1.0 + std::erf(v * 0.04 / std::sqrt(2.0))) / 0.01).epsilon(1e-12).margin(1e-12));
    CHECK(y[3](i) == std::max(v, 0.0));
  }
  // Divisions (mean, average pooling) are exact in the float mode.
  xt::xarray<double> planes = {-19.5, -3.25, 0.0, 0.4, 17.7, 20.0};
  planes.reshape({6, 1, 1});
  const std::vector<xt::xarray<double>> a = run_float(averages, {planes});
  REQUIRE(a.size() == 2);
  CHECK(a[0](0, 0) == Approx((-19.5 - 3.25 + 0.0 + 0.4 + 17.7 + 20.0) / 6).epsilon(1e-12));
  for (std::size_t c = 0; c < 6; ++c) CHECK(a[1](c, 0, 0) == Approx(planes(c, 0, 0) / 3).epsilon(1e-12));
  const ClearTensor integral_planes = reshaped(ClearTensor{-19, -3, 0, 1, 17, 20}, {6, 1, 1});
  const std::vector<ClearTensor> ai = run_clear(averages, {integral_planes});
  const std::vector<xt::xarray<double>> af = run_float(averages, {as_double(integral_planes)});
  CHECK(ai[0]() == std::llround(af[0]()));
  for (std::size_t c = 0; c < 6; ++c) CHECK(ai[1](c, 0, 0) == std::llround(af[1](c, 0, 0)));
  // The clear run of the same model rounds: integer inputs give the rounded real function.
  const ClearTensor xi = {-99, -3, 0, 1, 17, 100};
  const std::vector<ClearTensor> yi = run_clear(m, {xi});
  const std::vector<xt::xarray<double>> yf = run_float(m, {as_double(xi)});
  for (std::size_t i = 0; i < xi.size(); ++i) {
    CHECK(yi[0](i) == std::llround(yf[0](i)));
    CHECK(yi[1](i) == std::llround(yf[1](i)));
    CHECK(yi[2](i) == std::llround(yf[2](i)));
    CHECK(static_cast<double>(yi[3](i)) == yf[3](i));
  }
}

// ---------------------------------------------------------------- errors

TEST_CASE("shape errors throw invalid_argument naming the shapes", "[dsl]") {
  const Tensor<int, 2> w3 = xt::ones<int>({3, 2});
  const std::string dense_error = thrown_message<std::invalid_argument>(
      [&] { (void)compile([&](auto x) { return dense(x, w3); }, input<Tensor<int, 2>, Bits<3>>({2, 4})); });
  CHECK_THAT(dense_error, Contains("[2, 4]") && Contains("[3, 2]") && Contains("4 features") && Contains("3 rows"));

  const std::string add_error = thrown_message<std::invalid_argument>([] {
    (void)compile([](auto a, auto b) { return a + b; },
                  std::tuple{input<Tensor<int, 2>, Bits<3>>({2, 3}), input<Tensor<int, 1>, Bits<3>>({4})});
  });
  CHECK_THAT(add_error, Contains("[2, 3]") && Contains("[4]") && Contains("broadcast"));

  const Tensor<int, 2> row5 = xt::ones<int>({1, 5});
  const std::string clear_error = thrown_message<std::invalid_argument>(
      [&] { (void)compile([&](auto x) { return x * row5; }, input<Tensor<int, 2>, Bits<3>>({3, 4})); });
  CHECK_THAT(clear_error, Contains("[1, 5]") && Contains("[3, 4]"));

  const std::string rank_error = thrown_message<std::invalid_argument>(
      [&] { (void)compile([&](auto x) { return x + row5; }, input<Tensor<int, 1>, Bits<3>>({5})); });
  CHECK_THAT(rank_error, Contains("[1, 5]"));

  const Tensor<int, 4> cw = xt::ones<int>({6, 2, 3, 3});
  const std::string groups_error = thrown_message<std::invalid_argument>([&] {
    (void)compile([&](auto x) { return conv2d(x, cw, 0, {.groups = 3}); }, input<Tensor<int, 3>, Bits<3>>({4, 5, 5}));
  });
  CHECK_THAT(groups_error, Contains("[4, 5, 5]") && Contains("[6, 2, 3, 3]") && Contains("3 groups"));

  const std::string reshape_error = thrown_message<std::invalid_argument>([] {
    (void)compile([](auto x) { return reshape(x, std::array<std::size_t, 2>{4, 2}); }, input<Tensor<int, 2>, Bits<3>>({2, 3}));
  });
  CHECK_THAT(reshape_error, Contains("[2, 3]") && Contains("[4, 2]"));

  // Other malformed operations: also invalid_argument, not a crash or another exception type.
  auto bits3 = [](Dims shape) { return input<Tensor<int, 3>, Bits<3>>(std::move(shape)); };
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return sum<2>(x, {1, 1}); }, bits3({2, 3, 4})); }),
             Contains("repeated"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return sum<1>(x, {3}); }, bits3({2, 3, 4})); }),
             Contains("axis 3"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return mean<1>(x, {3}); }, bits3({2, 3, 4})); }),
             Contains("axis 3"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return slice(x, {{0, 2, 0}}); }, bits3({2, 3, 4})); }),
             Contains("step"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return transpose(x, {0, 1, 1}); }, bits3({2, 3, 4})); }),
             Contains("permutation"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return concatenate(0, x, transpose(x, {0, 2, 1})); }, bits3({2, 3, 4})); }),
             Contains("[2, 3, 4]") && Contains("[2, 4, 3]"));
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([](auto x) { return concatenate(3, x, x); }, bits3({2, 3, 4})); }),
             Contains("axis 3"));
  CHECK_THAT(thrown_message<std::invalid_argument>(
                 [&] { (void)compile([](auto x) { return max_pool2d(x, Window2d{.kernel_h = 4, .kernel_w = 2}); }, bits3({2, 3, 4})); }),
             Contains("window"));
  const Tensor<int, 4> cw2 = xt::ones<int>({2, 3, 1, 1});
  CHECK_THAT(thrown_message<std::invalid_argument>([&] { (void)compile([&](auto x) { return conv2d(x, cw2); }, bits3({2, 3, 4})); }),
             Contains("[2, 3, 1, 1]") && Contains("[2, 3, 4]") && Contains("3 channels per group") && Contains("gives 2"));
  const Tensor<int, 2> w34 = xt::ones<int>({4, 3});
  CHECK_THAT(thrown_message<std::invalid_argument>(
                 [&] { (void)compile([&](auto x) { return dense(x, w34, Tensor<int, 1>{1, 2}); }, bits3({2, 3, 4})); }),
             Contains("[2]") && Contains("[3]"));
}

TEST_CASE("inputs outside their declared range are rejected", "[dsl]") {
  auto typed = compile([](auto x) { return relu(x - 3); }, input<Tensor<int, 1>, Bits<3>>({4}));
  CHECK_NOTHROW(run_clear(typed, {ClearTensor{0, 7, 3, 1}}));
  CHECK_THROWS_AS(run_clear(typed, {ClearTensor{0, 8, 3, 1}}), std::out_of_range);
  CHECK_THROWS_AS(run_clear(typed, {ClearTensor{-1, 7, 3, 1}}), std::out_of_range);
  auto declared = compile([](auto x) { return x * 2; }, input<Tensor<int, 2>>({2, 2}, ValueRange{-5, 9}));
  CHECK_NOTHROW(run_clear(declared, {ClearTensor{{-5, 9}, {0, 1}}}));
  CHECK_THROWS_AS(run_clear(declared, {ClearTensor{{-6, 9}, {0, 1}}}), std::out_of_range);
  CHECK_THROWS_AS(run_clear(declared, {ClearTensor{{-5, 10}, {0, 1}}}), std::out_of_range);
  CHECK_THROWS_AS(run_float(declared, {xt::xarray<double>{{-5, 9.5}, {0, 1}}}), std::out_of_range);
  // A wrong shape or count of inputs is an invalid argument.
  CHECK_THROWS_AS(run_clear(declared, {ClearTensor{-5, 9, 0, 1}}), std::invalid_argument);
  CHECK_THROWS_AS(run_clear(declared, {}), std::invalid_argument);
}

TEST_CASE("an input without a declared range does not compile", "[dsl]") {
  CHECK_THROWS_AS(compile([](auto x) { return relu(x); }, input<Tensor<int, 1>>({4})), CompileError);
  CHECK_THROWS_AS(compile([](auto a, auto b) { return a + b; },
                          std::tuple{input<Tensor<int, 1>, Bits<3>>({4}), input<Tensor<int, 1>>({4})}),
                  CompileError);
  // Narrow element types carry their range.
  auto m = compile([](auto x) { return x + 1; }, input<Tensor<std::int8_t, 1>>({2}));
  CHECK(check_run(m, {ClearTensor{-128, 127}}, {ClearTensor{-127, 128}}));
  CHECK_THROWS_AS(run_clear(m, {ClearTensor{-129, 0}}), std::out_of_range);
}
