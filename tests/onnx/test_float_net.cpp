// nn::FloatNet beyond ONNX's test cases (test_onnx_nodes): the parallel paths of Conv,
// Gemm and MatMul against plain loops, the observer, and clear errors on wrong shapes.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include <fhetensor/nn/float_net.hpp>

using namespace fhetensor::nn;

namespace {

xt::xarray<float> random_array(std::vector<std::size_t> shape, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1, 1);
  xt::xarray<float> out = xt::xarray<float>::from_shape(shape);
  for (auto& v : out) v = dist(gen);
  return out;
}

template <std::size_t N>
FloatNet::Value<N> random_value(const std::array<std::size_t, N>& shape, std::mt19937& gen) {
  FloatNet::Value<N> out = FloatNet::Value<N>::from_shape(shape);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : out) v = dist(gen);
  return out;
}

/// ONNX Conv written as its definition: every output sums its window, padding reads 0.
FloatNet::Value<4> reference_conv(const FloatNet::Value<4>& x, const xt::xarray<float>& w,
                                  const xt::xarray<float>& b, const ConvAttributes& a) {
  const std::size_t out_channels = w.shape(0), group_channels = w.shape(1), kh = w.shape(2), kw = w.shape(3);
  const auto extent = [](std::size_t in, std::size_t k, std::size_t s, std::size_t d, std::size_t p0, std::size_t p1) {
    return (in + p0 + p1 - (k - 1) * d - 1) / s + 1;
  };
  const std::size_t oh = extent(x.shape(2), kh, a.strides[0], a.dilations[0], a.pads[0], a.pads[2]);
  const std::size_t ow = extent(x.shape(3), kw, a.strides[1], a.dilations[1], a.pads[1], a.pads[3]);
  FloatNet::Value<4> out = FloatNet::Value<4>::from_shape({x.shape(0), out_channels, oh, ow});
  const std::size_t per_group = out_channels / a.group;
  for (std::size_t n = 0; n < x.shape(0); ++n)
    for (std::size_t m = 0; m < out_channels; ++m)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          double sum = b(m);
          for (std::size_t c = 0; c < group_channels; ++c)
            for (std::size_t u = 0; u < kh; ++u)
              for (std::size_t v = 0; v < kw; ++v) {
                const auto y = static_cast<std::ptrdiff_t>(i * a.strides[0] + u * a.dilations[0]) -
                               static_cast<std::ptrdiff_t>(a.pads[0]);
                const auto z = static_cast<std::ptrdiff_t>(j * a.strides[1] + v * a.dilations[1]) -
                               static_cast<std::ptrdiff_t>(a.pads[1]);
                if (y < 0 || z < 0 || y >= static_cast<std::ptrdiff_t>(x.shape(2)) ||
                    z >= static_cast<std::ptrdiff_t>(x.shape(3)))
                  continue;
                sum += static_cast<double>(x(n, m / per_group * group_channels + c, y, z)) * w(m, c, u, v);
              }
          out(n, m, i, j) = static_cast<float>(sum);
        }
  return out;
}

}  // namespace

TEST_CASE("FloatNet conv matches the definition on every thread count", "[float_net]") {
  std::mt19937 gen(3);
  WeightFile weights;
  const auto x = random_value<4>({2, 8, 23, 19}, gen);
  struct Setup {
    std::size_t out_channels, group;
    ConvAttributes attributes;
  };
  for (const auto& [out_channels, group, attributes] :
       {Setup{12, 1, {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1}}, Setup{16, 2, {{2, 3}, {0, 2, 1, 0}, {2, 1}, 2}},
        Setup{8, 8, {{2, 2}, {1, 1, 1, 1}, {1, 1}, 8}}, Setup{16, 8, {{1, 1}, {2, 2, 2, 2}, {2, 2}, 8}}}) {
    weights.insert("w", random_array({out_channels, 8 / group, 3, 3}, gen));
    weights.insert("b", random_array({out_channels}, gen));
    const auto expected = reference_conv(x, weights["w"], weights["b"], attributes);
    for (const std::size_t threads : {1, 2, 3}) {
      INFO("group " << group << ", threads " << threads);
      FloatNet net(weights, {}, threads);
      const auto actual = net.conv("conv", x, "w", "b", attributes);
      REQUIRE(actual.shape() == expected.shape());
      CHECK(xt::allclose(actual, expected, 1e-4, 1e-5));
    }
  }
}

TEST_CASE("FloatNet gemm and matmul match plain loops", "[float_net]") {
  std::mt19937 gen(5);
  WeightFile weights;
  weights.insert("b", random_array({300, 130}, gen));
  weights.insert("bt", xt::xarray<float>(xt::transpose(weights["b"])));
  weights.insert("c", random_array({130}, gen));
  const auto a = random_value<2>({7, 300}, gen);
  FloatNet::Value<2> expected = FloatNet::Value<2>::from_shape({7, 130});
  for (std::size_t i = 0; i < 7; ++i)
    for (std::size_t j = 0; j < 130; ++j) {
      double sum = 0;
      for (std::size_t k = 0; k < 300; ++k) sum += static_cast<double>(a(i, k)) * weights["b"](k, j);
      expected(i, j) = static_cast<float>(sum);
    }
  FloatNet net(weights);
  CHECK(xt::allclose(net.gemm("g", a, "b", "", {1, 1, false}), expected, 1e-4, 1e-5));
  CHECK(xt::allclose(net.gemm("g", a, "bt", "c", {2, 0.5f, true}), 2.0f * expected + 0.5f * weights["c"], 1e-4,
                     1e-5));
  FloatNet::Value<3> stacked = xt::reshape_view(a, {1, 7, 300});
  CHECK(xt::allclose(net.matmul("m", stacked, "b"), xt::reshape_view(expected, {1, 7, 130}), 1e-4, 1e-5));
}

TEST_CASE("FloatNet reports every node's output under its name", "[float_net]") {
  WeightFile weights;
  weights.insert("two", xt::xarray<float>{2.0f});
  std::vector<std::pair<std::string, xt::xarray<float>>> seen;
  FloatNet net(weights, [&](const std::string& name, const xt::xarray<float>& output) { seen.emplace_back(name, output); });
  const FloatNet::Value<2> x{{-1.0f, 0.5f}, {2.0f, -3.0f}};
  const auto doubled = net.mul_constant("double", net.relu("relu", x), "two");
  const auto joined = net.concat("join", 0, doubled, x);
  const auto probabilities = net.softmax("softmax", net.flatten("flat", joined, 0), 1);
  REQUIRE(seen.size() == 5);
  CHECK(seen[0].first == "relu");
  // (()): Catch would take xtensor's <= for an element-wise comparison.
  CHECK((seen[0].second == xt::xarray<float>{{0.0f, 0.5f}, {2.0f, 0.0f}}));
  CHECK(seen[1].first == "double");
  CHECK((seen[1].second == xt::xarray<float>{{0.0f, 1.0f}, {4.0f, 0.0f}}));
  CHECK(seen[2].first == "join");
  CHECK(joined.shape() == std::array<std::size_t, 2>{4, 2});
  CHECK(seen[4].first == "softmax");
  CHECK(probabilities.shape() == std::array<std::size_t, 2>{1, 8});
  CHECK(xt::sum(probabilities)() == Approx(1.0f));
}

TEST_CASE("FloatNet refuses wrong shapes and missing weights clearly", "[float_net]") {
  std::mt19937 gen(11);
  WeightFile weights;
  weights.insert("w", random_array({4, 3, 3, 3}, gen));
  weights.insert("b3", random_array({3}, gen));
  weights.insert("m", random_array({5, 2}, gen));
  FloatNet net(weights);
  const auto image = random_value<4>({1, 2, 5, 5}, gen);
  CHECK_THROWS_WITH(net.conv("c", image, "w", "", {}), Catch::Contains("node c") && Catch::Contains("channels"));
  CHECK_THROWS_WITH(net.conv("c", random_value<4>({1, 3, 5, 5}, gen), "w", "b3", {}),
                    Catch::Contains("b3") && Catch::Contains("expected 4"));
  CHECK_THROWS_WITH(net.conv("c", random_value<4>({1, 3, 2, 2}, gen), "w", "", {}), Catch::Contains("does not fit"));
  CHECK_THROWS_AS(net.conv("c", image, "nothing", "", {}), WeightFileError);
  CHECK_THROWS_WITH(net.matmul("mm", random_value<2>({1, 4}, gen), "m"), Catch::Contains("do not multiply"));
  CHECK_THROWS_WITH(net.gemm("g", random_value<2>({1, 4}, gen), "w", "", {}), Catch::Contains("rank 2"));
  const auto pair = random_value<2>({2, 3}, gen);
  CHECK_THROWS_AS(net.add("a", pair, random_value<2>({3, 2}, gen)), std::invalid_argument);
  CHECK_THROWS_WITH(net.add_constant("a", pair, "m"), Catch::Contains("does not broadcast"));
  CHECK_THROWS_WITH(net.reshape<2>("r", pair, std::array<std::int64_t, 2>{4, 2}), Catch::Contains("element counts"));
  CHECK_THROWS_WITH(net.reshape<1>("r", pair, std::array<std::int64_t, 1>{-1}), Catch::Contains("resolved"));
  CHECK_THROWS_AS(net.concat("j", 1, pair, random_value<2>({3, 3}, gen)), std::invalid_argument);
  CHECK_THROWS_AS(net.pad("p", pair, {0, 0, 0}, 0.0f), std::invalid_argument);
  CHECK_THROWS_AS(net.batch_norm("bn", pair, "b3", "b3", "b3", "m", 1e-5f), std::invalid_argument);
}
