// The compiler's passes: rounding plans, ranges, fusion, encodings, parameter choice,
// explain(), and the errors a user gets for models no parameter set can run.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <random>
#include <set>
#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

namespace {
std::size_t lookup_count(const CompiledModel& m) {
  std::size_t n = 0;
  for (const Node& node : m.graph.nodes()) n += node.is_lookup();
  return n;
}
}  // namespace

TEST_CASE("a table input that fits the rounding precision is read exactly", "[compiler]") {
  for (std::int64_t lo : {-300, -7, 0, 5}) {
    for (std::uint64_t span : {0u, 1u, 15u, 16u, 255u}) {
      const ValueRange r{lo, lo + static_cast<std::int64_t>(span)};
      const LookupPlan p = compiler::plan_rounding(r, 8);
      CHECK(p.shift == 0);
      CHECK(p.precision == bits_for_span(span));
      for (std::int64_t x = r.lo; x <= r.hi; ++x) CHECK(p.index_of(x) == x - lo);
    }
  }
}

TEST_CASE("a wide table input is rounded to its top bits with the fewest dropped bits", "[compiler]") {
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::int64_t lo = std::uniform_int_distribution<std::int64_t>(-5000, 5000)(gen);
    const std::int64_t hi = lo + std::uniform_int_distribution<std::int64_t>(0, 20000)(gen);
    const int bits = std::uniform_int_distribution<int>(1, 8)(gen);
    const LookupPlan p = compiler::plan_rounding({lo, hi}, bits);
    REQUIRE(p.precision <= bits);
    std::set<std::int64_t> indices;
    for (std::int64_t x = lo; x <= hi; ++x) {
      const std::int64_t j = p.index_of(x);
      REQUIRE(j >= 0);
      REQUIRE(j < p.used_entries);
      indices.insert(j);
      if (p.shift > 0) {
        // The absolute grid: x rounds half up to a multiple of 2^shift.
        const std::int64_t step = std::int64_t{1} << p.shift;
        const std::int64_t rounded = p.offset + j * step;
        REQUIRE(rounded % step == 0);
        REQUIRE(2 * (x - rounded) >= -step);
        REQUIRE(2 * (x - rounded) < step);
      }
    }
    CHECK(static_cast<std::int64_t>(indices.size()) == p.used_entries);
    if (p.shift > 0) {  // dropping one bit less would need more than `bits` bits
      const int k = p.shift - 1;
      const std::int64_t step = std::int64_t{1} << k, half = k > 0 ? step / 2 : 0;
      const std::int64_t count = compiler::floor_div(hi + half, step) - compiler::floor_div(lo + half, step) + 1;
      CHECK(count > (std::int64_t{1} << bits));
    }
  }
}

TEST_CASE("the range of a dense layer is the exact extreme over its input box", "[compiler]") {
  Tensor<int, 2> w = {{3, -2}, {-1, 4}, {2, 0}};
  auto m = compile([&](auto x) { return dense(x, w, Tensor<int, 1>{5, -3}); }, input<Tensor<int, 1>>({3}, ValueRange{-2, 7}));
  // Column 0: 3x0 - x1 + 2x2 + 5 over x in [-2, 7]^3; column 1: -2x0 + 4x1 - 3.
  const ValueRange r = m.nodes[m.outputs[0]].range;
  CHECK(r.lo == std::min(3 * -2 - 7 + 2 * -2 + 5, -2 * 7 + 4 * -2 - 3));
  CHECK(r.hi == std::max(3 * 7 + 2 + 2 * 7 + 5, -2 * -2 + 4 * 7 - 3));
}

TEST_CASE("widths known from types are checked at compile time", "[compiler]") {
  using X = Encrypted<Tensor<int, 1>, Bits<4>>;
  using Y = Encrypted<Tensor<int, 1>, SignedBits<3>>;
  STATIC_REQUIRE(X::static_range == ValueRange{0, 15});
  STATIC_REQUIRE(Encrypted<Tensor<std::uint8_t, 2>>::static_range == ValueRange{0, 255});
  STATIC_REQUIRE(!Encrypted<Tensor<int, 2>>::static_range.has_value());
  auto x = X::input({4});
  auto y = Y::input_of(x, {4});
  using Sum = decltype(x + y);
  using Difference = decltype(x - y);
  using Sign = decltype(sign(x - y));
  STATIC_REQUIRE(Sum::static_range == ValueRange{-4, 18});
  STATIC_REQUIRE(Difference::static_range == ValueRange{-3, 19});
  STATIC_REQUIRE(Sign::static_range == ValueRange{-1, 1});
  STATIC_REQUIRE(decltype(clip<-2, 5>(x * 3))::static_range == ValueRange{-2, 5});
  STATIC_REQUIRE(!decltype(x * 3)::static_range.has_value());  // clear weights are known at run time
}

TEST_CASE("chained tables fuse into one", "[compiler]") {
  auto x = Encrypted<Tensor<int, 1>, SignedBits<5>>::input({6});
  SECTION("a table of a table") {
    auto m = compile(relu(clip(x, -4, 9)));
    CHECK(lookup_count(m) == 1);
    CHECK(m.statistics.fused_tables == 1);
    CHECK(m.statistics.bootstraps == 6);
    for (std::int64_t v = -16; v < 16; ++v) {
      ClearTensor in = xt::xarray<std::int64_t>::from_shape({6});
      in.fill(v);
      CHECK(run_clear(m, {in})[0](0) == std::max<std::int64_t>(0, std::clamp<std::int64_t>(v, -4, 9)));
    }
  }
  SECTION("through a scalar affine step") {
    auto m = compile(apply(relu(x) * 3 - 2, [](std::int64_t v) { return v * v; }, "square"));
    CHECK(lookup_count(m) == 1);
    for (std::int64_t v = -16; v < 16; ++v) {
      ClearTensor in = xt::xarray<std::int64_t>::from_shape({6});
      in.fill(v);
      const std::int64_t r = 3 * std::max<std::int64_t>(v, 0) - 2;
      CHECK(run_clear(m, {in})[0](5) == r * r);
    }
  }
  SECTION("not when the inner table is used twice") {
    auto r = relu(x);
    auto m = compile(std::tuple{clip(r, 0, 3), r});
    CHECK(lookup_count(m) == 2);
    CHECK(m.statistics.fused_tables == 0);
  }
}

TEST_CASE("a component is encoded as wide as the widest value read from it", "[compiler]") {
  Tensor<int, 2> w = xt::ones<int>({8, 2}) * 3;
  auto x = Encrypted<Tensor<int, 1>, Bits<4>>::input({8});
  auto acc = dense(x, w);  // [0, 360]: 9 bits
  auto m = compile(std::tuple{relu(acc), acc}, CompileOptions{.rounding_bits = 4, .rounding = Rounding::approximate});
  const NodeId table = m.outputs[0];
  const LookupPlan& p = *m.nodes[table].lookup;
  CHECK(p.precision == 4);
  CHECK(p.precision + p.shift == 9);
  CHECK(m.component_bits[m.nodes[m.outputs[1]].component] == 9);
  CHECK(p.input_scale_log2 == 0);
}

TEST_CASE("the cheapest parameter set meeting the error probability is chosen", "[compiler]") {
  SECTION("one table per precision matches params_for at 2^-64") {
    auto check = [](auto bits_tag) {
      constexpr int P = decltype(bits_tag)::value;
      auto m = compile(relu(Encrypted<Tensor<int, 1>, Bits<P>>::input({3})), CompileOptions{.error_probability = 0x1p-64});
      CHECK(m.instance_name == params_for<P, p_fail_2m64>::name);
      CHECK(m.statistics.log2_error_probability <= -64);
    };
    check(std::integral_constant<int, 1>{});
    check(std::integral_constant<int, 3>{});
    check(std::integral_constant<int, 4>{});
    check(std::integral_constant<int, 5>{});
    check(std::integral_constant<int, 6>{});
    check(std::integral_constant<int, 7>{});
    check(std::integral_constant<int, 8>{});
  }
  SECTION("a relaxed error probability keeps a 6-bit table on a cheaper set") {
    auto x = Encrypted<Tensor<int, 1>, Bits<6>>::input({3});
    const auto strict = compile(relu(x), CompileOptions{.error_probability = 0x1p-40});
    const auto relaxed = compile(relu(x), CompileOptions{.error_probability = 0.05});
    CHECK(relaxed.instance < strict.instance);
    CHECK(relaxed.statistics.log2_error_probability <= std::log2(0.05));
  }
  SECTION("more noise in the table's input needs a quieter set") {
    auto x = Encrypted<Tensor<int, 1>, Bits<2>>::input({64});
    Tensor<int, 2> wide = xt::ones<int>({64, 1});
    const auto one = compile(relu(x));
    const auto many = compile(relu(dense(x, wide)), CompileOptions{.rounding_bits = 8});
    CHECK(many.nodes[many.graph[many.outputs[0]].operands[0]].variance == Approx(64 * many.nodes[many.inputs[0]].variance));
    CHECK(many.instance >= one.instance);
  }
}

TEST_CASE("models no parameter set can run are rejected with a reason", "[compiler]") {
  auto x = Encrypted<Tensor<int, 1>, Bits<8>>::input({4});
  Tensor<int, 2> w = xt::ones<int>({4, 4}) * 1000;
  auto acc = dense(x, w);  // 20 bits
  SECTION("exact rounding of a 20-bit accumulator to 6 bits at 2^-40") {
    try {
      compile(sign(acc), CompileOptions{.rounding_bits = 6});
      FAIL("expected a CompileError");
    } catch (const CompileError& e) {
      CHECK_THAT(e.what(), Catch::Contains("no parameter set") && Catch::Contains("Rounding::approximate"));
    }
    CHECK_NOTHROW(compile(sign(acc), CompileOptions{.rounding_bits = 6, .rounding = Rounding::approximate}));
  }
  SECTION("decrypting a 20-bit bootstrap output") {
    CHECK_THROWS_WITH(compile(relu(acc), CompileOptions{.rounding_bits = 6, .rounding = Rounding::approximate}),
                      Catch::Contains("the decryption of output") && Catch::Contains("round_bits"));
  }
  SECTION("a rounding precision above 8 bits") {
    CHECK_THROWS_AS(compile(relu(acc), CompileOptions{.rounding_bits = 9}), CompileError);
  }
  SECTION("an input without a range") {
    auto y = Encrypted<Tensor<int, 1>>::input({4});
    CHECK_THROWS_WITH(compile(relu(y)), Catch::Contains("no declared range"));
  }
}

TEST_CASE("explain prints every node and the plan's totals", "[compiler]") {
  Tensor<int, 2> w = {{1, 2}, {3, -1}, {0, 2}};
  auto m = compile([&](auto x) { return relu(dense(x, w)); }, input<Tensor<int, 1>, Bits<3>>({3}));
  const std::string text = explain(m);
  CHECK_THAT(text, Catch::Contains("dense") && Catch::Contains("relu") && Catch::Contains(m.instance_name) &&
                       Catch::Contains("2 PBS"));
  CHECK(m.statistics.bootstraps == 2);
  CHECK(m.statistics.estimated_seconds == Approx(2 * estimated_bootstrap_seconds(m.instance)));
  // The relu's noise, in boxes, is printed, and is what its error probability comes from.
  const auto relu_node = std::find_if(m.nodes.begin(), m.nodes.end(), [](const auto& a) { return a.lookup.has_value(); });
  REQUIRE(relu_node != m.nodes.end());
  const double sigma = relu_node->lookup->noise_in_boxes();
  char printed[16];
  std::snprintf(printed, sizeof printed, "%.3f", sigma);
  CHECK_THAT(text, Catch::Contains(printed));
  CHECK(sigma > 0);
  CHECK(m.statistics.log2_error_probability >= std::log2(std::erfc(0.5 / (sigma * std::sqrt(2.0)))) - 1e-9);
}

TEST_CASE("explain prints probabilities without understating them", "[compiler]") {
  CHECK(detail::format_probability(-2) == "0.25");
  CHECK(detail::format_probability(std::log2(0.3)) == "0.3");
  CHECK(detail::format_probability(-73.4) == "2^-73");
  CHECK(detail::format_probability(-40) == "2^-40");
}
