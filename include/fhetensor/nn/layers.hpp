#pragma once
// The attributes of the layers an imported model uses, shared by every Net (nn/float_net.hpp
// runs them over floats, nn/quantized_net.hpp builds the encrypted expression). Their
// meaning is ONNX's (https://onnx.ai/onnx/operators/); the importer (tools/onnx_import.py)
// fills them from the ONNX attributes, resolving defaults.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace nn {

/// 2-d convolution of an NCHW tensor with weights [C_out, C_in / group, KH, KW].
struct ConvAttributes {
  std::array<std::size_t, 2> strides{1, 1};
  std::array<std::size_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
  std::array<std::size_t, 2> dilations{1, 1};
  std::size_t group = 1;
};

/// AveragePool and MaxPool over the two last axes of an NCHW tensor.
struct PoolAttributes {
  std::array<std::size_t, 2> kernel{1, 1};
  std::array<std::size_t, 2> strides{1, 1};
  std::array<std::size_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
  std::array<std::size_t, 2> dilations{1, 1};
  bool ceil_mode = false;
  bool count_include_pad = false;  // AveragePool only
};

/// Gemm: alpha * A' B' + beta * C, with A' = A (transA = 0 only) and B' = B or B^T.
struct GemmAttributes {
  float alpha = 1;
  float beta = 1;
  bool trans_b = false;
};

/// Clip's bounds; an absent bound is infinite.
struct ClipBounds {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};

}  // namespace nn

FHETENSOR_END_NAMESPACE
