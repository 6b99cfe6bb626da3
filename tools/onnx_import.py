#!/usr/bin/env python3
"""ONNX model -> <name>.hpp (a typed forward(net, x) over any Net) + <name>.weights.

The contract is docs/import.md. Run with /usr/bin/python3 (Debian's python3-onnx):

    /usr/bin/python3 tools/onnx_import.py model.onnx --name mnist_cnn --out-dir models/

As a module: import_model(model, name) -> (header_text, {weight name: float32 array}),
and write_weight_file(path, weights). An unsupported operator, attribute or value raises
UnsupportedModel naming the operator, the node and the attribute; the command line then
exits with status 1 and writes nothing.
"""

import argparse
import math
import os
import re
import struct
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

WEIGHT_FILE_MAGIC = b"FHTWGT"
WEIGHT_FILE_VERSION = 1

# Generated identifiers must not collide with C++ keywords or the header's own names.
CPP_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
extern false float for friend goto if inline int long mutable namespace new noexcept not
not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
return short signed sizeof static static_assert static_cast struct switch template this
thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq
""".split())
HEADER_NAMES = {"net", "forward", "name", "input_count", "input_shape", "output_shape", "std", "fhetensor", "Net", "Model", "x"}

# Nodes that pass their first input through at inference.
PASS_THROUGH = {"Identity", "Dropout"}


class UnsupportedModel(Exception):
    """The model uses an operator, attribute or value the importer does not support."""


def node_label(node):
    """The name a node is reported under: its own, or its first output's."""
    return node.name or (node.output[0] if node.output else node.op_type)


def fail(node, what):
    raise UnsupportedModel(f"{node.op_type} node '{node_label(node)}': {what}")


class Attributes:
    """A node's attributes; those a handler never reads are unsupported."""

    def __init__(self, node):
        self.node = node
        self.values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.read = set()

    def get(self, name, default=None):
        self.read.add(name)
        value = self.values.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def has(self, name):
        return name in self.values

    def require(self, name, allowed, default):
        """The attribute, failing unless its value is one of allowed."""
        value = self.get(name, default)
        if value not in allowed:
            fail(self.node, f"attribute {name} = {value!r} is not supported (only {', '.join(map(repr, allowed))})")
        return value

    def check_all_read(self):
        for name in self.values:
            if name not in self.read:
                fail(self.node, f"attribute {name} is not supported")


def cpp_string(text):
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def cpp_float(value):
    value = np.float32(value)
    if np.isinf(value):
        return ("-" if value < 0 else "") + "std::numeric_limits<float>::infinity()"
    if np.isnan(value):
        return "std::numeric_limits<float>::quiet_NaN()"
    text = str(value)  # NumPy prints the shortest text that reads back as this float32
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def cpp_list(values):
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def cpp_identifier(text):
    ident = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", text)).strip("_")
    if not ident or ident[0].isdigit():
        ident = "v_" + ident
    if ident in CPP_KEYWORDS or ident in HEADER_NAMES:
        ident += "_"
    return ident


def window_count(extent, kernel, stride, dilation, pad_begin, pad_end, ceil_mode):
    """Output positions of a sliding window, as nn::FloatNet computes them."""
    padded, span = extent + pad_begin + pad_end, (kernel - 1) * dilation + 1
    if padded < span:
        return 0
    count = (padded - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (count - 1) * stride >= extent + pad_begin:
        count -= 1
    return count


class Value:
    """A runtime value of the generated code: its C++ variable and its static shape."""

    def __init__(self, var, shape):
        self.var, self.shape = var, tuple(shape)

    @property
    def rank(self):
        return len(self.shape)


class Importer:
    def __init__(self, model, name, source):
        self.name, self.source = name, source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if self.opset is None:
            raise UnsupportedModel("the model imports no version of the default ONNX operator set")
        for node in model.graph.node:
            if node.domain not in ("", "ai.onnx"):
                fail(node, f"operator domain '{node.domain}' is not supported")
        self.constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.output_names = [o.name for o in model.graph.output]
        self.nodes = self.live_nodes(model.graph)
        for node in self.nodes:  # before shape inference, which may fail on an unknown operator
            if node.op_type != "Constant" and not hasattr(self, "op_" + node.op_type):
                fail(node, "operator not supported")
        model = self.fix_dynamic_input_extents(model)
        try:
            model = shape_inference.infer_shapes(model, strict_mode=True)
        except Exception as error:  # onnx raises several unrelated types here
            raise UnsupportedModel(f"ONNX shape inference failed: {error}") from None
        self.graph = model.graph
        self.types = {}
        for info in list(self.graph.input) + list(self.graph.value_info) + list(self.graph.output):
            self.types[info.name] = info.type.tensor_type
        self.nodes = self.live_nodes(self.graph)  # the same nodes, shapes inferred
        self.consumers = {}
        for node in self.nodes:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.values = {}  # ONNX value name -> Value
        self.weights = {}  # weight name -> float32 array, the ones the header names
        self.identifiers = set()
        self.net_names = set()
        self.folded = set()  # ids of the BatchNormalization nodes folded into their producer
        self.body = []

    # -- model-level ---------------------------------------------------------------------

    def fix_dynamic_input_extents(self, model):
        """A symbolic input extent (a dynamic batch) is fixed at 1, so shapes are static."""
        model = onnx.ModelProto.FromString(model.SerializeToString())
        for info in model.graph.input:
            if info.name in self.constants:
                continue
            for dim in info.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value"):
                    dim.dim_value = 1
        return model

    def live_nodes(self, graph):
        """The nodes the graph outputs depend on, in the graph's (topological) order."""
        producer = {o: n for n in graph.node for o in n.output if o}
        needed, live = list(self.output_names), set()
        while needed:
            node = producer.get(needed.pop())
            if node is not None and id(node) not in live:
                live.add(id(node))
                needed.extend(i for i in node.input if i)
        return [n for n in graph.node if id(n) in live]

    def static_shape(self, name, what):
        tensor_type = self.types.get(name)
        if tensor_type is None or not tensor_type.HasField("shape"):
            raise UnsupportedModel(f"shape inference gives no shape for {what} '{name}'")
        dims = tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            raise UnsupportedModel(f"shape inference gives no static shape for {what} '{name}'")
        return tuple(d.dim_value for d in dims)

    def check_float(self, name, what):
        elem_type = self.types[name].elem_type if name in self.types else onnx.TensorProto.FLOAT
        if elem_type != onnx.TensorProto.FLOAT:
            type_name = onnx.TensorProto.DataType.Name(elem_type)
            raise UnsupportedModel(f"{what} '{name}' has element type {type_name}; only FLOAT is supported")

    def run(self):
        params = []
        for info in self.graph.input:
            if info.name in self.constants:
                continue  # an initializer listed as an input too (IR < 4) is a constant
            self.check_float(info.name, "model input")
            value = Value(self.identifier(info.name), self.static_shape(info.name, "model input"))
            self.values[info.name] = value
            params.append(value)
        if not params:
            raise UnsupportedModel("the model has no runtime input")
        self.register_constants()
        for node in self.nodes:
            self.emit(node)
        if len(self.output_names) != 1:
            raise UnsupportedModel(f"the model has {len(self.output_names)} outputs; only one is supported")
        output = self.output_names[0]
        if output not in self.values:
            raise UnsupportedModel(f"the model output '{output}' is a constant")
        return self.header(params, self.values[output]), self.weights

    def header(self, params, output):
        def shape_constant(name, shape):
            return f"inline constexpr std::array<std::size_t, {len(shape)}> {name}{cpp_list(shape)};"

        if len(params) == 1:
            input_shapes = [shape_constant("input_shape", params[0].shape)]
        else:
            input_shapes = [shape_constant(f"input_shape_{k}", p.shape) for k, p in enumerate(params)]
        arguments = ", ".join(f"const typename Net::template Value<{p.rank}>& {p.var}" for p in params)
        lines = [
            f"// Generated by tools/onnx_import.py from {self.source}: do not edit.",
            "#pragma once",
            "#include <array>",
            "#include <cstddef>",
            "#include <cstdint>",
            "#include <limits>",
            "#include <vector>",
            "#include <fhetensor/nn/layers.hpp>",
            "",
            f"namespace fhetensor_models::{self.name} {{",
            f"inline constexpr const char* name = {cpp_string(self.name)};",
            f"inline constexpr std::size_t input_count = {len(params)};",
            *input_shapes,
            shape_constant("output_shape", output.shape),
            "",
            "template <class Net>",
            f"auto forward(Net& net, {arguments}) {{",
            *("  " + line for line in self.body),
            f"  return {output.var};",
            "}",
            *self.model_struct(params),
            f"}}  // namespace fhetensor_models::{self.name}",
        ]
        return "\n".join(lines) + "\n"

    def model_struct(self, params):
        """The model as one type, what nn::calibrate<Model> and nn::quantize<Model> take."""
        if len(params) != 1:
            return []
        return [
            "",
            "/// The model as one type: nn::calibrate<Model>(...), nn::quantize<Model>(...).",
            "struct Model {",
            "  static constexpr const char* name = " + cpp_string(self.name) + ";",
            f"  static constexpr auto input_shape = fhetensor_models::{self.name}::input_shape;",
            f"  static constexpr auto output_shape = fhetensor_models::{self.name}::output_shape;",
            "  template <class Net>",
            f"  static auto forward(Net& net, const typename Net::template Value<{params[0].rank}>& x) {{",
            f"    return fhetensor_models::{self.name}::forward(net, x);",
            "  }",
            "};",
        ]

    # -- emission ------------------------------------------------------------------------

    def identifier(self, text):
        base = ident = cpp_identifier(text)
        suffix = 2
        while ident in self.identifiers:
            ident, suffix = f"{base}_{suffix}", suffix + 1
        self.identifiers.add(ident)
        return ident

    def net_name(self, node):
        """The string the net reports the node under (made unique if two nodes share it)."""
        base = name = node_label(node)
        suffix = 2
        while name in self.net_names:
            name, suffix = f"{base}#{suffix}", suffix + 1
        self.net_names.add(name)
        return name

    def register_constants(self):
        """Constant nodes, and Identity of a constant, before anything reads them: a folded
        batch norm reads its parameters when its Conv is emitted, maybe before they appear."""
        for node in self.nodes:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self.constant_node_value(node)
            elif node.op_type == "Identity" and node.input[0] in self.constants:
                self.constants[node.output[0]] = self.constants[node.input[0]]

    def emit(self, node):
        if node.output[0] in self.constants:
            return
        if id(node) in self.folded:
            self.values[node.output[0]] = self.values[node.input[0]]
            return
        handler = getattr(self, "op_" + node.op_type)
        for k, extra in enumerate(node.output[1:], start=1):
            if extra and (extra in self.consumers or extra in self.output_names):
                fail(node, f"output {k} ('{extra}') is not supported")
        attrs = Attributes(node)
        if node.op_type in PASS_THROUGH:
            handler(node, attrs)
            attrs.check_all_read()
            self.values[node.output[0]] = self.runtime(node, 0)
            return
        label = cpp_string(self.net_name(node))
        call = handler(node, attrs, label)
        attrs.check_all_read()
        output = node.output[0]
        self.check_float(output, "value")
        value = Value(self.identifier(node_label(node)), self.static_shape(output, "value"))
        self.body.append(f"auto {value.var} = {call};")
        self.values[output] = value

    def constant_node_value(self, node):
        attrs = Attributes(node)
        if attrs.has("value"):
            value = numpy_helper.to_array(attrs.get("value"))
        elif attrs.has("value_float") or attrs.has("value_floats"):
            value = np.array(attrs.get("value_float", attrs.get("value_floats")), dtype=np.float32)
        elif attrs.has("value_int") or attrs.has("value_ints"):
            value = np.array(attrs.get("value_int", attrs.get("value_ints")), dtype=np.int64)
        else:
            value = None
        attrs.check_all_read()
        if value is None:
            fail(node, "only a tensor, float or int value is supported")
        return value

    # -- operands ------------------------------------------------------------------------

    def has_input(self, node, i):
        return len(node.input) > i and node.input[i] != ""

    def runtime(self, node, i):
        """Input i as a runtime value; a constant there is not supported."""
        name = node.input[i]
        if name in self.constants:
            fail(node, f"input {i} ('{name}') is a constant; only a runtime value is supported there")
        return self.values[name]

    def constant(self, node, i):
        """Input i as a constant array; a runtime value there is not supported."""
        name = node.input[i]
        if name not in self.constants:
            fail(node, f"input {i} ('{name}') is a runtime value; only a constant (initializer) is supported there")
        return self.constants[name]

    def float_constant(self, node, i):
        value = self.constant(node, i)
        if not np.issubdtype(value.dtype, np.floating):
            fail(node, f"input {i} ('{node.input[i]}') is a {value.dtype} constant; only float constants are supported")
        return value.astype(np.float32)

    def scalar(self, node, i):
        value = self.constant(node, i)
        if value.size != 1:
            fail(node, f"input {i} ('{node.input[i]}') has shape {list(value.shape)}; a scalar is expected")
        return value.reshape(()).item()

    def weight(self, node, i):
        """Input i as a weight of the weight file; returns the C++ string naming it."""
        name = node.input[i]
        self.weights[name] = self.float_constant(node, i)
        return cpp_string(name)

    def derived_weight(self, base, values):
        """A weight computed from constant base (a folded batch norm, a reshape): stored
        under base's name when nothing else reads base, else under a fresh name."""
        name, suffix = base, 2
        if len(self.consumers.get(base, [])) > 1 or base in self.weights:
            while (name := f"{base}#{suffix}") in self.constants or name in self.weights:
                suffix += 1
        self.weights[name] = np.asarray(values, dtype=np.float32)
        return cpp_string(name)

    def axis(self, node, attrs, name, rank, default, allow_end=False):
        value = attrs.get(name, default)
        if value is None:
            fail(node, f"attribute {name} is required")
        limit = rank + 1 if allow_end else rank
        if not -rank <= value < limit:
            fail(node, f"attribute {name} = {value} is out of range for rank {rank}")
        return value + rank if value < 0 else value

    # -- windows (Conv, pools) -----------------------------------------------------------

    def window_attributes(self, node, attrs, x, kernel, with_dilations=True):
        """Strides, explicit pads [top, left, bottom, right] and dilations, auto_pad resolved."""
        if x.rank != 4 or len(kernel) != 2:
            fail(node, f"only 2-d windows over [N, C, H, W] are supported (input {list(x.shape)}, kernel {list(kernel)})")
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1])) if with_dilations else [1, 1]
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        for name, values, length in (("strides", strides, 2), ("dilations", dilations, 2), ("pads", pads, 4)):
            if len(values) != length or min(values) < (0 if name == "pads" else 1):
                fail(node, f"attribute {name} = {values} is not supported")
        auto_pad = attrs.require("auto_pad", ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"), "NOTSET")
        if auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad.startswith("SAME"):
            for axis in range(2):
                extent = x.shape[2 + axis]
                span = (kernel[axis] - 1) * dilations[axis] + 1
                total = max(0, (-(-extent // strides[axis]) - 1) * strides[axis] + span - extent)
                small, large = total // 2, total - total // 2
                pads[axis], pads[2 + axis] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        return strides, pads, dilations

    def check_window_output(self, node, x, kernel, strides, pads, dilations, ceil_mode=False):
        """The net computes window outputs itself: they must agree with shape inference."""
        expected = tuple(
            window_count(x.shape[2 + a], kernel[a], strides[a], dilations[a], pads[a], pads[2 + a], ceil_mode)
            for a in range(2))
        inferred = self.static_shape(node.output[0], "value")[2:]
        if expected != inferred:
            fail(node, f"output extents {list(expected)} differ from ONNX shape inference's {list(inferred)}")

    # -- operators -----------------------------------------------------------------------

    def op_Conv(self, node, attrs, label):
        x = self.runtime(node, 0)
        w = self.float_constant(node, 1)
        if w.ndim != 4:
            fail(node, f"weights of shape {list(w.shape)}: only 2-d convolution is supported")
        kernel = list(attrs.get("kernel_shape", w.shape[2:]))
        if kernel != list(w.shape[2:]):
            fail(node, f"attribute kernel_shape = {kernel} differs from the weights' {list(w.shape[2:])}")
        strides, pads, dilations = self.window_attributes(node, attrs, x, kernel)
        group = attrs.get("group", 1)
        if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
            fail(node, f"attribute group = {group} does not fit input channels {x.shape[1]} and weights {list(w.shape)}")
        self.check_window_output(node, x, kernel, strides, pads, dilations)
        bias = self.float_constant(node, 2) if self.has_input(node, 2) else None
        if bias is not None and bias.shape != (w.shape[0],):
            fail(node, f"bias of shape {list(bias.shape)} for {w.shape[0]} output channels")
        folded = self.foldable_batch_norm(node)
        if folded is None:
            w_name = self.weight(node, 1)
            b_name = self.weight(node, 2) if bias is not None else '""'
        else:  # a missing bias takes the batch norm's B's name
            batch_norm, factor, shift = folded
            w_name = self.derived_weight(node.input[1], w * factor[:, None, None, None])
            shifted = (bias * factor if bias is not None else 0) + shift
            b_name = self.derived_weight(node.input[2] if bias is not None else batch_norm.input[2], shifted)
        attributes = (f"fhetensor::nn::ConvAttributes{{{cpp_list(strides)}, {cpp_list(pads)}, "
                      f"{cpp_list(dilations)}, {group}}}")
        return f"net.conv({label}, {x.var}, {w_name}, {b_name}, {attributes})"

    def op_Gemm(self, node, attrs, label):
        a = self.runtime(node, 0)
        b = self.float_constant(node, 1)
        attrs.require("transA", (0,), 0)
        trans_b = attrs.require("transB", (0, 1), 0)
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        attrs.get("broadcast")  # opset < 7: C broadcasts either way here
        if a.rank != 2 or b.ndim != 2:
            fail(node, f"operands of shapes {list(a.shape)} and {list(b.shape)}: Gemm multiplies matrices")
        output_shape = self.static_shape(node.output[0], "value")
        c = self.float_constant(node, 2) if self.has_input(node, 2) else None
        if c is not None and np.broadcast_shapes(c.shape, output_shape) != output_shape:
            fail(node, f"C of shape {list(c.shape)} does not broadcast to the output {list(output_shape)}")
        folded = self.foldable_batch_norm(node)
        if folded is None:
            b_name = self.weight(node, 1)
            c_name = self.weight(node, 2) if c is not None else '""'
        else:  # beta goes into C, which a missing C takes the batch norm's B's name for
            batch_norm, factor, shift = folded
            b_name = self.derived_weight(node.input[1], b * (factor[:, None] if trans_b else factor[None, :]))
            shifted = (beta * factor * c if c is not None else 0) + shift
            c_name = self.derived_weight(node.input[2] if c is not None else batch_norm.input[2], shifted)
            beta = 1.0
        attributes = f"fhetensor::nn::GemmAttributes{{{cpp_float(alpha)}, {cpp_float(beta)}, {str(bool(trans_b)).lower()}}}"
        return f"net.gemm({label}, {a.var}, {b_name}, {c_name}, {attributes})"

    def op_MatMul(self, node, attrs, label):
        a = self.runtime(node, 0)
        w = self.float_constant(node, 1)
        if w.ndim != 2 or a.rank < 1:
            fail(node, f"operands of shapes {list(a.shape)} and {list(w.shape)}: only a 2-d constant right operand "
                       "is supported")
        return f"net.matmul({label}, {a.var}, {self.weight(node, 1)})"

    def unary(self, node, label, method):
        return f"net.{method}({label}, {self.runtime(node, 0).var})"

    def op_Relu(self, node, attrs, label):
        return self.unary(node, label, "relu")

    def op_Sigmoid(self, node, attrs, label):
        return self.unary(node, label, "sigmoid")

    def op_Tanh(self, node, attrs, label):
        return self.unary(node, label, "tanh")

    def op_Clip(self, node, attrs, label):
        x = self.runtime(node, 0)
        if self.opset < 11:
            lo, hi = attrs.get("min", -math.inf), attrs.get("max", math.inf)
        else:
            lo = self.scalar(node, 1) if self.has_input(node, 1) else -math.inf
            hi = self.scalar(node, 2) if self.has_input(node, 2) else math.inf
        return f"net.clip({label}, {x.var}, fhetensor::nn::ClipBounds{{{cpp_float(lo)}, {cpp_float(hi)}}})"

    def batch_norm_parameters(self, node, attrs):
        """BatchNormalization's inference parameters [scale, B, mean, var] and epsilon."""
        epsilon = attrs.get("epsilon", 1e-5)
        attrs.get("momentum")  # training only
        attrs.get("is_test")  # opset < 7: this import is inference either way
        attrs.require("spatial", (1,), 1)
        attrs.require("training_mode", (0,), 0)
        return [self.float_constant(node, i) for i in range(1, 5)], epsilon

    def foldable_batch_norm(self, node):
        """For a Conv or Gemm whose only consumer is a BatchNormalization over its output
        channels: (that node, now marked folded, and its factor and shift per channel)."""
        output = node.output[0]
        readers = self.consumers.get(output, [])
        if len(readers) != 1 or output in self.output_names:
            return None
        batch_norm = readers[0]
        if batch_norm.op_type != "BatchNormalization" or batch_norm.input[0] != output:
            return None
        if any(extra and (extra in self.consumers or extra in self.output_names) for extra in batch_norm.output[1:]):
            return None
        attrs = Attributes(batch_norm)
        (scale, bias, mean, var), epsilon = self.batch_norm_parameters(batch_norm, attrs)
        attrs.check_all_read()
        channels = self.static_shape(output, "value")[1]
        if any(p.shape != (channels,) for p in (scale, bias, mean, var)):
            fail(batch_norm, f"parameters of shapes {[list(p.shape) for p in (scale, bias, mean, var)]} "
                             f"for {channels} channels")
        factor = (scale / np.sqrt(var.astype(np.float64) + epsilon)).astype(np.float32)
        self.folded.add(id(batch_norm))
        return batch_norm, factor, bias - mean * factor

    def op_BatchNormalization(self, node, attrs, label):
        x = self.runtime(node, 0)
        if x.rank < 2:
            fail(node, f"input of shape {list(x.shape)}: [N, C, ...] is expected")
        (scale, bias, mean, var), epsilon = self.batch_norm_parameters(node, attrs)
        if any(p.shape != (x.shape[1],) for p in (scale, bias, mean, var)):
            fail(node, f"parameters of shapes {[list(p.shape) for p in (scale, bias, mean, var)]} "
                       f"for {x.shape[1]} channels")
        names = ", ".join(self.weight(node, i) for i in range(1, 5))
        return f"net.batch_norm({label}, {x.var}, {names}, {cpp_float(epsilon)})"

    def binary(self, node, attrs, label, method):
        attrs.get("broadcast")  # opset < 7; its axis is handled below
        old_axis = attrs.get("axis")
        constant = [name in self.constants for name in node.input[:2]]
        if all(constant):
            fail(node, "both operands are constants (fold them before import)")
        if not any(constant):
            a, b = self.runtime(node, 0), self.runtime(node, 1)
            if method != "add":
                fail(node, f"{node.op_type} of two runtime values is not supported")
            if a.shape != b.shape:
                fail(node, f"Add with broadcasting between two runtime values ({list(a.shape)} and {list(b.shape)}) "
                           "is not supported")
            return f"net.add({label}, {a.var}, {b.var})"
        if method == "div" and constant[0]:
            fail(node, "a constant divided by a runtime value is not supported")
        x_index, c_index = (1, 0) if constant[0] else (0, 1)
        x, c = self.runtime(node, x_index), self.float_constant(node, c_index)
        if old_axis is not None:  # opset < 7: C's axes line up with x's from axis on
            axis = old_axis + x.rank if old_axis < 0 else old_axis
            c = c.reshape(c.shape + (1,) * (x.rank - axis - c.ndim))
        if c.ndim > x.rank or np.broadcast_shapes(c.shape, x.shape) != x.shape:
            fail(node, f"the constant of shape {list(c.shape)} broadcasts the value {list(x.shape)} to a larger shape")
        name = self.weight(node, c_index) if old_axis is None else self.derived_weight(node.input[c_index], c)
        return f"net.{method}_constant({label}, {x.var}, {name})"

    def op_Add(self, node, attrs, label):
        return self.binary(node, attrs, label, "add")

    def op_Mul(self, node, attrs, label):
        return self.binary(node, attrs, label, "mul")

    def op_Div(self, node, attrs, label):
        return self.binary(node, attrs, label, "div")

    def pool(self, node, attrs, label, method):
        x = self.runtime(node, 0)
        kernel = list(attrs.get("kernel_shape", []))
        is_max = method == "max_pool"
        strides, pads, dilations = self.window_attributes(node, attrs, x, kernel)
        ceil_mode = attrs.require("ceil_mode", (0, 1), 0)
        count_include_pad = 0 if is_max else attrs.require("count_include_pad", (0, 1), 0)
        if is_max:
            attrs.get("storage_order")  # only affects the Indices output, which is refused
        self.check_window_output(node, x, kernel, strides, pads, dilations, ceil_mode)
        bools = str(bool(ceil_mode)).lower(), str(bool(count_include_pad)).lower()
        attributes = (f"fhetensor::nn::PoolAttributes{{{cpp_list(kernel)}, {cpp_list(strides)}, {cpp_list(pads)}, "
                      f"{cpp_list(dilations)}, {bools[0]}, {bools[1]}}}")
        return f"net.{method}({label}, {x.var}, {attributes})"

    def op_AveragePool(self, node, attrs, label):
        return self.pool(node, attrs, label, "average_pool")

    def op_MaxPool(self, node, attrs, label):
        return self.pool(node, attrs, label, "max_pool")

    def op_GlobalAveragePool(self, node, attrs, label):
        x = self.runtime(node, 0)
        if x.rank != 4:
            fail(node, f"input of shape {list(x.shape)}: only [N, C, H, W] is supported")
        return f"net.global_average_pool({label}, {x.var})"

    def op_Flatten(self, node, attrs, label):
        x = self.runtime(node, 0)
        axis = self.axis(node, attrs, "axis", x.rank, 1, allow_end=True)
        return f"net.flatten({label}, {x.var}, {axis})"

    def op_Reshape(self, node, attrs, label):
        x = self.runtime(node, 0)
        if self.opset < 5:
            requested = list(attrs.get("shape", []))
        else:
            shape = self.constant(node, 1)
            if shape.dtype != np.int64 or shape.ndim != 1:
                fail(node, f"input 1 (shape) of type {shape.dtype} and rank {shape.ndim}: a 1-d int64 tensor is expected")
            requested = [int(d) for d in shape]
        allow_zero = attrs.require("allowzero", (0, 1), 0)
        resolved = []
        for i, extent in enumerate(requested):
            if extent == 0 and allow_zero:
                fail(node, "attribute allowzero = 1 with a 0 in the shape: empty tensors are not supported")
            if extent == 0:
                if i >= x.rank:
                    fail(node, f"shape {requested}: entry {i} copies an extent the input does not have")
                extent = x.shape[i]
            resolved.append(extent)
        elements = math.prod(x.shape)
        if resolved.count(-1) > 1 or any(d < -1 for d in resolved):
            fail(node, f"shape {requested} is not a valid reshape")
        if -1 in resolved:
            known = math.prod(d for d in resolved if d != -1)
            if known == 0 or elements % known:
                fail(node, f"shape {requested} does not fit {elements} elements")
            resolved[resolved.index(-1)] = elements // known
        if math.prod(resolved) != elements or 0 in resolved:
            fail(node, f"shape {requested} does not fit the input {list(x.shape)}")
        rank = len(resolved)
        return f"net.template reshape<{rank}>({label}, {x.var}, std::array<std::int64_t, {rank}>{cpp_list(resolved)})"

    def op_Concat(self, node, attrs, label):
        parts = [self.runtime(node, i) for i in range(len(node.input))]
        if len({p.rank for p in parts}) != 1:
            fail(node, f"operands of ranks {[p.rank for p in parts]}")
        axis = self.axis(node, attrs, "axis", parts[0].rank, 1 if self.opset < 4 else None)
        return f"net.concat({label}, {axis}, {', '.join(p.var for p in parts)})"

    def op_Pad(self, node, attrs, label):
        x = self.runtime(node, 0)
        attrs.require("mode", ("constant",), "constant")
        if self.opset < 11:
            pads = list(attrs.get("pads" if self.opset >= 2 else "paddings", []))
            value = attrs.get("value", 0.0)
        else:
            pads = [int(p) for p in self.constant(node, 1).reshape(-1)]
            value = self.scalar(node, 2) if self.has_input(node, 2) else 0.0
            if self.has_input(node, 3):  # opset 18: pads only for the listed axes
                axes = [a + x.rank if a < 0 else a for a in self.constant(node, 3).reshape(-1)]
                full = [0] * (2 * x.rank)
                for k, a in enumerate(axes):
                    full[a], full[x.rank + a] = pads[k], pads[len(axes) + k]
                pads = full
        if len(pads) != 2 * x.rank:
            fail(node, f"{len(pads)} pads for an input of rank {x.rank}")
        return f"net.pad({label}, {x.var}, std::vector<std::int64_t>{cpp_list(pads)}, {cpp_float(value)})"

    def op_Softmax(self, node, attrs, label):
        x = self.runtime(node, 0)
        axis = self.axis(node, attrs, "axis", x.rank, 1 if self.opset < 13 else -1)
        if self.opset < 13 and math.prod(x.shape[axis + 1:]) != 1:
            fail(node, f"attribute axis = {axis}: before opset 13 Softmax normalises over all axes from {axis} on; "
                       "only an axis followed by extents of 1 is supported")
        return f"net.softmax({label}, {x.var}, {axis})"

    def op_Identity(self, node, attrs):
        pass

    def op_Dropout(self, node, attrs):
        attrs.get("ratio")
        attrs.get("seed")
        attrs.require("is_test", (1,), 1)  # opset < 7: 0 is training
        if self.has_input(node, 2) and bool(self.scalar(node, 2)):
            fail(node, "input 2 (training_mode) is true; only inference is supported")


def import_model(model, name, source=None):
    """(header text, {weight name: float32 array}) of an onnx.ModelProto; raises
    UnsupportedModel on what docs/import.md does not cover."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in CPP_KEYWORDS:
        raise UnsupportedModel(f"the name '{name}' is not a C++ identifier")
    return Importer(model, name, source or f"{name}.onnx").run()


def weight_file_bytes(weights):
    """The weight-file format of include/fhetensor/nn/weight_file.hpp."""
    out = [WEIGHT_FILE_MAGIC, struct.pack("<HI", WEIGHT_FILE_VERSION, len(weights))]
    for name, values in weights.items():
        encoded = name.encode("utf-8")
        values = np.ascontiguousarray(values, dtype="<f4")
        out += [struct.pack("<I", len(encoded)), encoded, struct.pack("<B", values.ndim),
                struct.pack(f"<{values.ndim}Q", *values.shape), values.tobytes()]
    return b"".join(out)


def write_atomically(path, data):
    """Writes through a temporary file, so a failure leaves no partial file behind."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".onnx_import.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        umask = os.umask(0)  # mkstemp makes the file private; give it the usual mode
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_weight_file(path, weights):
    write_atomically(path, weight_file_bytes(weights))


def write_model(out_dir, name, header, weights):
    os.makedirs(out_dir, exist_ok=True)
    write_weight_file(os.path.join(out_dir, f"{name}.weights"), weights)
    write_atomically(os.path.join(out_dir, f"{name}.hpp"), header.encode("utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("--name", help="C++ namespace and file name (default: the model file's stem)")
    parser.add_argument("--out-dir", default=".", help="where <name>.hpp and <name>.weights go")
    args = parser.parse_args(argv)
    name = args.name or cpp_identifier(os.path.splitext(os.path.basename(args.model))[0])
    try:
        model = onnx.load(args.model)
    except Exception as error:  # a missing file, or one that is no ONNX model
        print(f"onnx_import.py: error: cannot read {args.model}: {error}", file=sys.stderr)
        return 1
    try:
        header, weights = import_model(model, name, os.path.basename(args.model))
    except UnsupportedModel as error:
        print(f"onnx_import.py: error: {error}", file=sys.stderr)
        return 1
    write_model(args.out_dir, name, header, weights)
    print(f"onnx_import.py: wrote {name}.hpp and {name}.weights ({len(weights)} tensors) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
