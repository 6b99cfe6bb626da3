// Post-training quantization: a model written as the importer writes them, with random
// weights, quantized from calibration data; its clear-integer outputs must track the float
// net's, more closely with more bits, and run encrypted equal to the clear computation.
#include <catch2/catch.hpp>

#include <random>
#include <xtensor/xsort.hpp>
#include <fhetensor/fhetensor.hpp>
#include <fhetensor/nn/choose_bits.hpp>
#include <fhetensor/nn/quantize.hpp>

using namespace fhetensor;

namespace {

// What tools/onnx_import.py emits, written by hand: every kind of layer the quantized net
// treats differently (per-channel accumulators, pooling, batch norm, residual add, concat).
struct SmallCnn {
  static constexpr std::array<std::size_t, 4> input_shape{1, 2, 6, 6};
  template <class Net>
  static auto forward(Net& net, const typename Net::template Value<4>& x) {
    using nn::ConvAttributes, nn::PoolAttributes, nn::GemmAttributes;
    auto c1 = net.conv("conv1", x, "conv1.w", "conv1.b", ConvAttributes{{1, 1}, {1, 1, 1, 1}, {1, 1}, 1});
    auto b1 = net.batch_norm("bn1", c1, "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var", 1e-5f);
    auto r1 = net.relu("relu1", b1);
    auto c2 = net.conv("conv2", r1, "conv2.w", "", ConvAttributes{{1, 1}, {1, 1, 1, 1}, {1, 1}, 4});  // depthwise
    auto r2 = net.relu("relu2", c2);
    auto sum = net.add("residual", r1, r2);
    auto pooled = net.average_pool("pool", sum, PoolAttributes{.kernel = {2, 2}, .strides = {2, 2}});
    auto maxed = net.max_pool("maxpool", net.relu("relu3", sum), PoolAttributes{.kernel = {2, 2}, .strides = {2, 2}});
    auto both = net.concat("concat", 1, net.relu("relu4", pooled), maxed);
    auto flat = net.flatten("flatten", both, 1);
    auto hidden = net.relu("relu5", net.gemm("fc1", flat, "fc1.w", "fc1.b", GemmAttributes{1, 1, true}));
    auto scaled = net.mul_constant("scale", hidden, "half");
    return net.gemm("fc2", scaled, "fc2.w", "fc2.b", GemmAttributes{});
  }
};

// Average pools whose windows hang over the padding, counted both ways, and over
// ceil_mode's extra row and column.
struct PaddedAveragePools {
  static constexpr std::array<std::size_t, 4> input_shape{1, 2, 5, 5};
  template <class Net>
  static auto forward(Net& net, const typename Net::template Value<4>& x) {
    using nn::PoolAttributes;
    auto with_pads = net.average_pool(
        "with_pads", x, PoolAttributes{.kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil_mode = true, .count_include_pad = true});
    auto without = net.average_pool("without", x, PoolAttributes{.kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}});
    return net.concat("both", 1, with_pads, without);
  }
};

// A model small enough to run encrypted in a test: 8 inputs, 6 hidden units, 3 outputs.
struct TinyMlp {
  static constexpr std::array<std::size_t, 2> input_shape{1, 8};
  template <class Net>
  static auto forward(Net& net, const typename Net::template Value<2>& x) {
    auto hidden = net.relu("relu", net.gemm("fc1", x, "fc1.w", "fc1.b", nn::GemmAttributes{}));
    return net.gemm("fc2", hidden, "fc2.w", "", nn::GemmAttributes{.alpha = 2, .beta = 1, .trans_b = true});
  }
};

// A convolution whose accumulators span several times ReLU6's [0, 6], as MobileNet's do;
// its channels' weights differ in size, so their scales differ.
struct WideConvClip {
  static constexpr std::array<std::size_t, 4> input_shape{1, 2, 4, 4};
  template <class Net>
  static auto forward(Net& net, const typename Net::template Value<4>& x) {
    auto c = net.conv("conv", x, "conv.w", "conv.b", nn::ConvAttributes{{1, 1}, {1, 1, 1, 1}, {1, 1}, 1});
    return net.clip("clip", c, nn::ClipBounds{0, 6});
  }
};

// The same on 1 x 1 kernels and a 2 x 2 image: accumulators narrow enough for exact reads.
struct PointwiseClip {
  static constexpr std::array<std::size_t, 4> input_shape{1, 2, 2, 2};
  template <class Net>
  static auto forward(Net& net, const typename Net::template Value<4>& x) {
    auto c = net.conv("conv", x, "conv.w", "conv.b", nn::ConvAttributes{});
    return net.clip("clip", c, nn::ClipBounds{0, 6});
  }
};

xt::xarray<float> random_array(std::mt19937_64& gen, std::vector<std::size_t> shape, float lo, float hi) {
  xt::xarray<float> a = xt::xarray<float>::from_shape(shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& v : a) v = d(gen);
  return a;
}

nn::WeightFile small_cnn_weights(std::mt19937_64& gen) {
  nn::WeightFile w;
  w.insert("conv1.w", random_array(gen, {4, 2, 3, 3}, -0.5f, 0.5f));
  w.insert("conv1.b", random_array(gen, {4}, -0.2f, 0.2f));
  w.insert("bn1.scale", random_array(gen, {4}, 0.5f, 1.5f));
  w.insert("bn1.bias", random_array(gen, {4}, -0.1f, 0.1f));
  w.insert("bn1.mean", random_array(gen, {4}, -0.1f, 0.1f));
  w.insert("bn1.var", random_array(gen, {4}, 0.5f, 1.5f));
  w.insert("conv2.w", random_array(gen, {4, 1, 3, 3}, -0.5f, 0.5f));
  w.insert("fc1.w", random_array(gen, {16, 72}, -0.3f, 0.3f));  // transposed: [out, in]
  w.insert("fc1.b", random_array(gen, {16}, -0.1f, 0.1f));
  w.insert("half", xt::xarray<float>(0.5f));
  w.insert("fc2.w", random_array(gen, {16, 3}, -0.5f, 0.5f));
  w.insert("fc2.b", random_array(gen, {3}, -0.1f, 0.1f));
  return w;
}

std::vector<xt::xarray<float>> random_images(std::mt19937_64& gen, std::size_t count) {
  std::vector<xt::xarray<float>> images;
  for (std::size_t i = 0; i < count; ++i) images.push_back(random_array(gen, {1, 2, 6, 6}, -1.0f, 1.0f));
  return images;
}

/// Mean |quantized - float| output over the images, relative to the float outputs' span.
template <class Model = SmallCnn>
double relative_error(const nn::QuantizedModel& q, const nn::WeightFile& w, const std::vector<xt::xarray<float>>& images) {
  nn::FloatNet net(w);
  double total = 0, lo = 1e300, hi = -1e300;
  std::size_t count = 0;
  for (const auto& image : images) {
    const xt::xarray<float> expected = Model::forward(net, nn::FloatNet::Value<4>(image));
    const auto got = q.dequantize_output(run_clear(q.compiled, {q.quantize_input(image)})[0]);
    for (std::size_t i = 0; i < got.size(); ++i) {
      total += std::abs(got.flat(i) - expected.flat(i)), ++count;
      lo = std::min(lo, double(expected.flat(i))), hi = std::max(hi, double(expected.flat(i)));
    }
  }
  return total / static_cast<double>(count) / (hi - lo);
}

}  // namespace

TEST_CASE("quantized models track the float model, closer with more bits", "[quantize]") {
  std::mt19937_64 gen(7);
  const nn::WeightFile w = small_cnn_weights(gen);
  const auto calibration_images = random_images(gen, 64), test_images = random_images(gen, 64);
  const nn::Calibration c = nn::calibrate<SmallCnn>(w, calibration_images);
  CHECK(c.samples == 64);
  CHECK(c.ranges.count("relu5") == 1);
  // Tables read 6 bits at most; noise grows with the weights' magnitude, so weights stay narrow.
  const CompileOptions loose{.rounding_bits = 6, .error_probability = 0.05, .rounding = Rounding::approximate};
  double previous = 1e9;
  for (int bits : {2, 3, 5}) {
    const auto q = nn::quantize<SmallCnn>(w, c, {.input_bits = bits, .weight_bits = bits, .activation_bits = bits}, loose);
    const double error = relative_error(q, w, test_images);
    INFO(bits << " bits: mean output error " << error << " of the output span");
    CHECK(error < previous);
    previous = error;
    if (bits == 5) CHECK(error < 0.05);
  }
}

TEST_CASE("quantized average pools divide by ONNX's window counts", "[quantize]") {
  std::mt19937_64 gen(5);
  std::vector<xt::xarray<float>> images;
  for (int i = 0; i < 32; ++i) images.push_back(random_array(gen, {1, 2, 5, 5}, 0.0f, 1.0f));
  const nn::WeightFile none;
  const auto q = nn::quantize<PaddedAveragePools>(none, nn::calibrate<PaddedAveragePools>(none, images), {},
                                                  CompileOptions{.rounding_bits = 7, .error_probability = 0.05, .rounding = Rounding::approximate});
  // A wrong divisor at a border is off by a third to a half of the value: far above 1%.
  CHECK(relative_error<PaddedAveragePools>(q, none, images) < 0.01);
}

TEST_CASE("per-channel weights use every level of each channel", "[quantize]") {
  xt::xarray<double> w = {{1.0, -0.01}, {0.5, 0.02}, {-0.25, 0.005}};  // [K = 3, M = 2]
  const nn::ChannelWeights q = nn::quantize_per_channel(w, 1, 4);
  CHECK(q.values(0, 0) == 7);
  CHECK(q.values(1, 1) == 7);  // the small column is not crushed to 0 by the large one
  CHECK(q.scale[0] == Approx(1.0 / 7));
  const nn::Quantizer u = nn::Quantizer::for_range({-1.0, 3.0}, 4);
  CHECK(u.quantize(0.0) == u.zero);
  CHECK(u.dequantize(u.quantize(3.0)) == Approx(3.0).margin(u.scale / 2));
  CHECK(u.quantize(100.0) == 15);
}

TEST_CASE("a quantized model runs encrypted equal to its clear computation", "[quantize]") {
  std::mt19937_64 gen(11);
  nn::WeightFile w;
  w.insert("fc1.w", random_array(gen, {8, 6}, -1.0f, 1.0f));
  w.insert("fc1.b", random_array(gen, {6}, -0.2f, 0.2f));
  w.insert("fc2.w", random_array(gen, {3, 6}, -1.0f, 1.0f));
  std::vector<xt::xarray<float>> samples;
  for (int i = 0; i < 64; ++i) samples.push_back(random_array(gen, {1, 8}, -1.0f, 1.0f));
  const nn::Calibration c = nn::calibrate<TinyMlp>(w, samples);
  // Exact rounding: encrypted results equal the clear ones for every input.
  const auto q = nn::quantize<TinyMlp>(w, c, {.input_bits = 4, .weight_bits = 3, .activation_bits = 3},
                                       CompileOptions{.rounding_bits = 4, .error_probability = 0x1p-40});
  INFO(explain(q.compiled));
  Csprng rng = Csprng::from_os_entropy();
  ClientKeys keys = ClientKeys::generate(q.compiled, rng);
  for (int trial = 0; trial < 6; ++trial) {
    const ClearTensor in = q.quantize_input(random_array(gen, {1, 8}, -1.5f, 1.5f));  // also beyond calibration
    const auto expected = run_clear(q.compiled, {in});
    const auto got = keys.decrypt(q.compiled, run(q.compiled, keys.encrypt(q.compiled, {in}), *keys.server_keys()));
    REQUIRE(got[0] == expected[0]);
  }
}

nn::WeightFile wide_conv_weights(std::mt19937_64& gen, std::size_t kernel = 3) {
  nn::WeightFile w;
  xt::xarray<float> conv = random_array(gen, {3, 2, kernel, kernel}, -4.0f * 3 / static_cast<float>(kernel), 4.0f * 3 / static_cast<float>(kernel));
  xt::view(conv, 1) *= 0.3f, xt::view(conv, 2) *= 0.1f;
  w.insert("conv.w", conv);
  w.insert("conv.b", random_array(gen, {3}, -1.0f, 3.0f));
  return w;
}
std::vector<xt::xarray<float>> random_inputs(std::mt19937_64& gen, const std::array<std::size_t, 4>& shape, std::size_t count) {
  std::vector<xt::xarray<float>> inputs;
  for (std::size_t i = 0; i < count; ++i) inputs.push_back(random_array(gen, {shape.begin(), shape.end()}, -1.0f, 1.0f));
  return inputs;
}

TEST_CASE("windowed reads resolve a saturating activation finer at the same table width", "[quantize]") {
  std::mt19937_64 gen(13);
  const nn::WeightFile w = wide_conv_weights(gen);
  const auto calibration_inputs = random_inputs(gen, WideConvClip::input_shape, 200);
  const auto test_inputs = random_inputs(gen, WideConvClip::input_shape, 100);
  const nn::Calibration c = nn::calibrate<WideConvClip>(w, calibration_inputs);
  const nn::RealRange acc = c["conv"];
  INFO("accumulator range [" << acc.lo << ", " << acc.hi << "]");
  REQUIRE(acc.hi - acc.lo > 3 * 6.0);  // the point of the test: a range far wider than [0, 6]
  const CompileOptions reads5{.rounding_bits = 5, .error_probability = 0.05, .rounding = Rounding::approximate};
  const nn::QuantizationOptions base{.input_bits = 8, .weight_bits = 8, .activation_bits = 8, .range_margin = 0};
  auto error_with = [&](nn::QuantizationOptions o) {
    return relative_error<WideConvClip>(nn::quantize<WideConvClip>(w, c, o, reads5), w, test_inputs);
  };
  nn::QuantizationOptions windowed = base, one_scale = base;
  windowed.saturating_window = 1.0;
  one_scale.saturating_window = 1.0, one_scale.max_window_multiplier = 1;
  const double plain_error = error_with(base), one_scale_error = error_with(one_scale), windowed_error = error_with(windowed);
  INFO("mean error over the output span: plain " << plain_error << ", windows without multipliers " << one_scale_error
                                                  << ", windows " << windowed_error);
  // A window is about a third of the range here, so its boxes are about a third as wide.
  CHECK(windowed_error < 0.6 * plain_error);
  // Multipliers fill the read for the channels of small weights.
  CHECK(windowed_error < one_scale_error);
}

TEST_CASE("a windowed channel that never reaches the activation's top reads its calibrated values right", "[quantize]") {
  std::mt19937_64 gen(19);
  nn::WeightFile w = wide_conv_weights(gen);
  // Channel 2 (the smallest weights) lies mostly below 0 and never reaches 6: its window,
  // stretched to fill the read, is narrower than its values, and those below the window
  // are read through the negacyclic half.
  xt::xarray<float> bias = w["conv.b"];
  bias(2) = -1.2f;
  w.insert("conv.b", bias);
  const auto inputs = random_inputs(gen, WideConvClip::input_shape, 200);
  const nn::Calibration c = nn::calibrate<WideConvClip>(w, inputs);
  nn::QuantizationOptions o{.input_bits = 8, .weight_bits = 8, .activation_bits = 8, .range_margin = 0};
  o.saturating_window = 1.0;
  const auto q = nn::quantize<WideConvClip>(w, c, o, CompileOptions{.rounding_bits = 7, .error_probability = 0.05, .rounding = Rounding::approximate});
  nn::FloatNet net(w);
  double worst = 0, narrow_lo = 0, narrow_hi = 0;
  for (const auto& input : inputs) {  // the calibration inputs: every value within its element's range
    const xt::xarray<float> acc = net.conv("conv", nn::FloatNet::Value<4>(input), "conv.w", "conv.b", nn::ConvAttributes{{1, 1}, {1, 1, 1, 1}, {1, 1}, 1});
    narrow_lo = std::min<double>(narrow_lo, xt::amin(xt::view(acc, 0, 2))()), narrow_hi = std::max<double>(narrow_hi, xt::amax(xt::view(acc, 0, 2))());
    const xt::xarray<float> expected = WideConvClip::forward(net, nn::FloatNet::Value<4>(input));
    const auto got = q.dequantize_output(run_clear(q.compiled, {q.quantize_input(input)})[0]);
    worst = std::max(worst, double(xt::amax(xt::abs(got - expected))()));
  }
  INFO("channel 2's accumulators span [" << narrow_lo << ", " << narrow_hi << "]; worst error " << worst);
  REQUIRE(narrow_hi > 0.2);
  REQUIRE(narrow_hi < 6);
  REQUIRE(narrow_lo < -3 * narrow_hi);
  // A box and a level at most: a misread value below the window is off by whole units.
  CHECK(worst < 0.4);
}

TEST_CASE("a channel that never leaves a saturated end takes no room in the read grid", "[quantize]") {
  std::mt19937_64 gen(23);
  nn::WeightFile w = wide_conv_weights(gen);
  // Channel 2: tiny weights (a tiny scale) and a bias far below 0, so an accumulator
  // millions of levels wide that always reads 0; as wide a window would leave the other
  // channels a box or two.
  xt::xarray<float> conv = w["conv.w"], bias = w["conv.b"];
  xt::view(conv, 2) *= 1e-4f;
  bias(2) = -5.0f;
  w.insert("conv.w", conv), w.insert("conv.b", bias);
  const auto inputs = random_inputs(gen, WideConvClip::input_shape, 200);
  const nn::Calibration c = nn::calibrate<WideConvClip>(w, inputs);
  const CompileOptions reads5{.rounding_bits = 5, .error_probability = 0.05, .rounding = Rounding::approximate};
  nn::QuantizationOptions plain{.input_bits = 8, .weight_bits = 8, .activation_bits = 8, .range_margin = 0}, windowed = plain;
  windowed.saturating_window = 1.0;
  const double plain_error = relative_error<WideConvClip>(nn::quantize<WideConvClip>(w, c, plain, reads5), w, inputs);
  const double windowed_error = relative_error<WideConvClip>(nn::quantize<WideConvClip>(w, c, windowed, reads5), w, inputs);
  INFO("mean error over the output span: plain " << plain_error << ", windows " << windowed_error);
  CHECK(windowed_error < 0.6 * plain_error);
}

TEST_CASE("windowed reads run encrypted equal to their clear computation, past their windows too", "[quantize]") {
  std::mt19937_64 gen(17);
  const nn::WeightFile w = wide_conv_weights(gen, 1);
  // Few calibration inputs: narrow windows, which the test inputs often leave.
  const nn::Calibration c = nn::calibrate<PointwiseClip>(w, random_inputs(gen, PointwiseClip::input_shape, 4));
  nn::QuantizationOptions o{.input_bits = 3, .weight_bits = 3, .activation_bits = 3, .range_margin = 0};
  o.saturating_window = 1.0;
  // 5-bit reads of windows under 2^5 levels: no rounding, so encrypted equals clear exactly.
  const auto q = nn::quantize<PointwiseClip>(w, c, o, CompileOptions{.rounding_bits = 5, .error_probability = 0x1p-40});
  INFO(explain(q.compiled));
  Csprng rng = Csprng::from_os_entropy();
  ClientKeys keys = ClientKeys::generate(q.compiled, rng);
  std::size_t saturated = 0;
  for (int trial = 0; trial < 4; ++trial) {
    const ClearTensor in = q.quantize_input(random_array(gen, {1, 2, 2, 2}, -1.0f, 1.0f));
    const auto expected = run_clear(q.compiled, {in});
    const auto got = keys.decrypt(q.compiled, run(q.compiled, keys.encrypt(q.compiled, {in}), *keys.server_keys()));
    REQUIRE(got[0] == expected[0]);
    const xt::xarray<double> real = q.dequantize_output(expected[0]);
    saturated += static_cast<std::size_t>(std::count_if(real.begin(), real.end(), [](double v) { return v < 0.01 || v > 5.99; }));
  }
  CHECK(saturated > 0);  // the saturated ends, read through the negacyclic half, were exercised
}

TEST_CASE("quantization without a calibrated range names the node", "[quantize]") {
  std::mt19937_64 gen(3);
  const nn::WeightFile w = small_cnn_weights(gen);
  nn::Calibration c = nn::calibrate<SmallCnn>(w, random_images(gen, 4));
  c.ranges.erase("relu5");
  CHECK_THROWS_WITH(nn::quantize<SmallCnn>(w, c), Catch::Contains("relu5"));
}

TEST_CASE("choose_bits picks the cheapest widths that keep the float model's top-1", "[quantize]") {
  std::mt19937_64 gen(11);
  const nn::WeightFile w = small_cnn_weights(gen);
  const nn::Calibration c = nn::calibrate<SmallCnn>(w, random_images(gen, 64));
  const auto samples = random_images(gen, 64);
  nn::BitSearch search{.rounding_bits = {3, 4, 5, 6}, .weight_bits = {2, 3, 5}, .max_disagreement = 0.1};
  search.compile.error_probability = 0.05;
  const nn::BitChoice choice = nn::choose_bits<SmallCnn>(w, c, samples, search);
  REQUIRE(!choice.candidates.empty());
  CHECK(choice.chosen.agreement >= 0.9);
  for (const auto& candidate : choice.candidates) {
    INFO(candidate.compile.rounding_bits << "/" << candidate.options.weight_bits << "/" << candidate.options.activation_bits
                                         << ": agreement " << candidate.agreement << ", " << candidate.estimated_seconds << " s");
    CHECK(candidate.agreement >= 0.0);
    CHECK(candidate.agreement <= 1.0);
    if (candidate.agreement >= 0.9) CHECK(candidate.estimated_seconds >= choice.chosen.estimated_seconds);
  }
  // Wider is not worse on average: the widest candidate agrees at least as well as the narrowest.
  CHECK(choice.candidates.back().agreement >= choice.candidates.front().agreement);

  nn::BitSearch impossible{.rounding_bits = {1}, .weight_bits = {2}, .activation_bits_above_rounding = {0}, .max_disagreement = 0};
  impossible.compile.error_probability = 0.05;
  CHECK_THROWS_WITH(nn::choose_bits<SmallCnn>(w, c, samples, impossible), Catch::Contains("no bit width"));
  CHECK_THROWS_WITH(nn::choose_bits<SmallCnn>(w, c, {}, search), Catch::Contains("needs samples"));
}
