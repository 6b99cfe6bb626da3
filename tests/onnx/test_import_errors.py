#!/usr/bin/env python3
"""CTest: tools/onnx_import.py (argv[1]) refuses what it does not support with exit status 1,
a message naming the operator, the node and the attribute, and no file written; a supported
model with a batch norm to fold imports."""

import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

IMPORTER = sys.argv[1]


def value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def constant(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def model(nodes, inputs, output, initializers=(), opset=14):
    graph = helper.make_graph(nodes, "g", inputs, [output], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


rng = np.random.default_rng(1)
REFUSED = [  # (what, model, words the message must hold)
    ("an unknown operator", model([helper.make_node("FooBar", ["x"], ["y"], name="mystery")],
                                  [value("x", [1, 4])], value("y", [1, 4])), ["FooBar", "mystery", "not supported"]),
    ("an unsupported operator", model([helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky")],
                                      [value("x", [1, 4])], value("y", [1, 4])), ["LeakyRelu", "leaky"]),
    ("Gemm transA = 1", model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transA=1)],
                              [value("x", [3, 1])], value("y", [1, 2]), [constant("w", rng.random((3, 2)))]),
     ["Gemm", "fc", "transA"]),
    ("a 1-d Conv", model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1d")],
                         [value("x", [1, 2, 8])], value("y", [1, 3, 6]), [constant("w", rng.random((3, 2, 3)))]),
     ["Conv", "conv1d", "2-d"]),
    ("Pad mode reflect", model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="reflect")],
                               [value("x", [1, 4])], value("y", [1, 6]), [constant("pads", [0, 1, 0, 1], np.int64)]),
     ["Pad", "pad", "mode", "reflect"]),
    ("Add broadcasting two runtime values",
     model([helper.make_node("Add", ["x", "z"], ["y"], name="sum")], [value("x", [2, 4]), value("z", [1, 4])],
           value("y", [2, 4])), ["Add", "sum", "broadcasting"]),
    ("an unknown attribute", model([helper.make_node("Relu", ["x"], ["y"], name="act", slope=0.1)],
                                   [value("x", [1, 4])], value("y", [1, 4])), ["Relu", "act", "attribute slope"]),
]


def run_importer(directory, onnx_model):
    path = os.path.join(directory, "model.onnx")
    save(onnx_model, path)
    out_dir = os.path.join(directory, "out")
    result = subprocess.run([sys.executable, IMPORTER, path, "--name", "m", "--out-dir", out_dir],
                            capture_output=True, text=True)
    written = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
    return result, out_dir, written


def main():
    failures = []
    for what, onnx_model, words in REFUSED:
        with tempfile.TemporaryDirectory() as directory:
            result, _, written = run_importer(directory, onnx_model)
        missing = [w for w in words if w not in result.stderr]
        if result.returncode != 1 or missing or written:
            failures.append(f"{what}: exit status {result.returncode}, stderr {result.stderr!r}, "
                            f"words missing {missing}, files written {written}")
        else:
            print(f"ok: {what}: {result.stderr.strip()}")

    # Conv -> BatchNormalization -> Relu imports with the normalization folded away.
    channels = 3
    folded = model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["n"], name="bn"),
         helper.make_node("Relu", ["n"], ["y"], name="relu")],
        [value("x", ["batch", 2, 5, 5])], value("y", ["batch", channels, 5, 5]),
        [constant("w", rng.random((channels, 2, 3, 3))), constant("s", rng.random(channels)),
         constant("b", rng.random(channels)), constant("mean", rng.random(channels)),
         constant("var", rng.random(channels) + 0.5)])
    with tempfile.TemporaryDirectory() as directory:
        result, out_dir, written = run_importer(directory, folded)
        header = open(os.path.join(out_dir, "m.hpp")).read() if "m.hpp" in written else ""
        weights = open(os.path.join(out_dir, "m.weights"), "rb").read() if "m.weights" in written else b""
    if (result.returncode != 0 or "net.conv(" not in header or "batch_norm" in header
            or "input_shape{1, 2, 5, 5}" not in header or not weights.startswith(b"FHTWGT")):
        failures.append(f"the foldable model: exit status {result.returncode}, stderr {result.stderr!r}, "
                        f"header {header!r}")
    else:
        print("ok: Conv + BatchNormalization imports folded, the dynamic batch fixed at 1")

    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
