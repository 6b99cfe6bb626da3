#pragma once
// What the generated ONNX node test (tools/onnx_node_tests.py) runs every case with: load
// the case's weight file (weights, inputs "__input_k", expected "__output_0"), run the
// imported forward() over nn::FloatNet, compare with ONNX's expected output.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <catch2/catch.hpp>
#include <fhetensor/nn/float_net.hpp>
#include <fhetensor/nn/weight_file.hpp>

namespace onnx_node_tests {

using fhetensor::nn::FloatNet;
using fhetensor::nn::WeightFile;

inline constexpr float relative_tolerance = 1e-3f;
inline constexpr float absolute_tolerance = 1e-5f;

/// Runtime input k of a case, at the rank its forward() takes.
template <std::size_t N>
FloatNet::Value<N> input(const WeightFile& weights, std::size_t k) {
  const auto& values = weights["__input_" + std::to_string(k)];
  if (values.dimension() != N) throw std::invalid_argument("__input_" + std::to_string(k) + " has another rank");
  std::array<std::size_t, N> shape{};
  std::copy(values.shape().begin(), values.shape().end(), shape.begin());
  FloatNet::Value<N> out = FloatNet::Value<N>::from_shape(shape);
  std::copy(values.begin(), values.end(), out.begin());
  return out;
}

/// The cases of one operator: each is checked, then finish() requires that enough ran.
class OperatorCases {
 public:
  OperatorCases(std::string op, std::string cases_dir, std::size_t rejected, std::size_t minimum_run)
      : op_(std::move(op)), cases_dir_(std::move(cases_dir)), rejected_(rejected), minimum_run_(minimum_run) {}

  /// forward(net, weights) runs the case's model on its inputs.
  template <class Forward>
  void check(const std::string& ident, const std::string& display, Forward forward) {
    INFO("ONNX test case " << display);
    try {
      const auto weights = WeightFile::load(cases_dir_ + "/" + ident + ".weights");
      std::size_t observed = 0;
      xt::xarray<float> last_observed;
      FloatNet net(weights, [&](const std::string&, const xt::xarray<float>& output) {
        ++observed;
        last_observed = output;
      });
      const auto actual = forward(net, weights);
      const auto& expected = weights["__output_0"];
      const bool same_shape = std::equal(actual.shape().begin(), actual.shape().end(), expected.shape().begin(),
                                         expected.shape().end());
      CHECK(same_shape);  // not REQUIRE: the operator's other cases still run
      if (same_shape) compare(display, actual, expected);
      // The observer saw every node, the last one being the output.
      CHECK(observed > 0);
      CHECK((xt::xarray<float>(actual) == last_observed));  // (()): Catch would take xtensor's <=
      ++ran_;
    } catch (const std::exception& e) {
      FAIL_CHECK(display << " threw: " << e.what());
    }
  }

  void finish() const {
    std::cout << "ONNX node tests, " << op_ << ": " << ran_ << " cases ran (worst error " << worst_error_ << " in "
              << worst_case_ << "), " << rejected_
              << " rejected by the importer (listed in summary.md beside the generated test)\n";
    REQUIRE(ran_ >= minimum_run_);
  }

 private:
  template <class Actual>
  void compare(const std::string& display, const Actual& actual, const xt::xarray<float>& expected) {
    float worst_ratio = 0, worst_error = 0;
    std::size_t worst_index = 0;
    const float* a = actual.data();
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const float e = expected.data()[i];
      const float error = std::abs(a[i] - e);
      const float ratio = std::isnan(error) ? INFINITY : error / (absolute_tolerance + relative_tolerance * std::abs(e));
      if (ratio > worst_ratio || i == 0) worst_ratio = ratio, worst_error = error, worst_index = i;
    }
    std::ostringstream report;
    report << display << ": worst error " << worst_error << " at flat index " << worst_index << " (expected "
           << (expected.size() ? expected.data()[worst_index] : 0.0f) << ", got "
           << (expected.size() ? a[worst_index] : 0.0f) << ")";
    INFO(report.str());
    CHECK(worst_ratio <= 1.0f);
    if (worst_error >= worst_error_) worst_error_ = worst_error, worst_case_ = display;
  }

  std::string op_, cases_dir_, worst_case_ = "none";
  std::size_t rejected_, minimum_run_, ran_ = 0;
  float worst_error_ = 0;
};

}  // namespace onnx_node_tests
