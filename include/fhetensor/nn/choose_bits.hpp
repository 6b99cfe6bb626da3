#pragma once
// Bit widths chosen by the library: the cheapest quantization (by the compiled model's
// estimated time) whose simulated top-1 agrees with the float model's on the given samples
// within a tolerance. Rounding bits set the bootstrap precision, hence the parameter set;
// weight bits set the noise of each accumulator, which can also move the set. One
// parameter set serves the whole model, so the search is over model-wide widths; per-layer
// overrides in `base.layers` are kept as given.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xsort.hpp>
#include <fhetensor/compiler/compile.hpp>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/nn/quantize.hpp>
#include <fhetensor/runtime/clear_modes.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

struct BitSearch {
  std::vector<int> rounding_bits{4, 5, 6, 7, 8};
  std::vector<int> weight_bits{3, 4, 5, 6, 7};
  std::vector<int> activation_bits_above_rounding{0, 1};  // activation bits = rounding bits + this
  /// Simulated top-1 (last axis) may disagree with the float model's on at most this
  /// fraction of the samples.
  double max_disagreement = 0.01;
  QuantizationOptions base{};  // input, output bits, margins and per-layer overrides
  CompileOptions compile{.error_probability = 0x1p-6, .rounding = Rounding::approximate};
};

struct BitCandidate {
  QuantizationOptions options;
  CompileOptions compile;
  double agreement = 0;          // with the float model's top-1, simulated
  double estimated_seconds = 0;  // one core, from the compiled model
  std::string instance;          // parameter set
};

struct BitChoice {
  BitCandidate chosen;
  std::vector<BitCandidate> candidates;  // every width that compiled, in search order
};

template <ImportedModel M>
BitChoice choose_bits(const WeightFile& weights, const Calibration& calibration, const std::vector<xt::xarray<float>>& samples,
                      const BitSearch& search = {}) {
  if (samples.empty()) throw std::invalid_argument("fhetensor: choose_bits needs samples to measure agreement on");
  const std::vector<std::size_t> float_class = float_top1<M>(weights, samples);
  BitChoice choice;
  bool found = false;
  for (int r : search.rounding_bits)
    for (int w : search.weight_bits)
      for (int above : search.activation_bits_above_rounding) {
        BitCandidate c;
        c.options = search.base, c.compile = search.compile;
        c.options.weight_bits = w, c.options.activation_bits = r + above, c.compile.rounding_bits = r;
        std::optional<QuantizedModel> model;
        try {
          model = quantize<M>(weights, calibration, c.options, c.compile);
        } catch (const CompileError&) {
          continue;  // no parameter set carries this width at this error probability
        }
        std::vector<char> agrees(samples.size());
        parallel_for(samples.size(), [&](std::size_t i, std::size_t) {
          const ClearTensor out = simulate(model->compiled, {model->quantize_input(samples[i])}, i, RunOptions{.threads = 1})[0];
          agrees[i] = static_cast<std::size_t>(xt::argmax(out)()) == float_class[i];
        });
        c.agreement = static_cast<double>(std::count(agrees.begin(), agrees.end(), 1)) / static_cast<double>(samples.size());
        c.estimated_seconds = model->compiled.statistics.estimated_seconds;
        c.instance = model->compiled.instance_name;
        choice.candidates.push_back(c);
        const bool good = c.agreement >= 1 - search.max_disagreement;
        const auto better = [&](const BitCandidate& a, const BitCandidate& b) {
          return a.estimated_seconds != b.estimated_seconds ? a.estimated_seconds < b.estimated_seconds : a.agreement > b.agreement;
        };
        if (good && (!found || better(c, choice.chosen))) choice.chosen = c, found = true;
      }
  if (!found)
    throw std::invalid_argument("fhetensor: no bit width in the search keeps the model's top-1 within " +
                                std::to_string(100 * search.max_disagreement) + "% of the float model's: widen the search "
                                "or raise max_disagreement");
  return choice;
}

}  // namespace nn

FHETENSOR_END_NAMESPACE
