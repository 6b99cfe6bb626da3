#!/usr/bin/env python3
"""Generates the C++ test that runs ONNX's own operator test cases through the importer
and nn::FloatNet (tests/CMakeLists.txt runs it at build time):

    /usr/bin/python3 tools/onnx_node_tests.py --data /usr/share/libonnx-testdata/data --out-dir DIR

For every test case (Debian's libonnx-testdata: node/, pytorch-converted/, pytorch-operator/)
made only of supported operators, and for a few small PyTorch models exported here when
python3-torch is installed, DIR gets

    cases/<case>.hpp, cases/<case>.weights  the imported model; the weight file also holds
                                            the inputs "__input_k" and the expected "__output_0"
    test_onnx_nodes_generated.cpp           one Catch2 TEST_CASE per operator
    summary.md                              per operator: cases run, cases rejected and why

Only the first input of a case stays a runtime input; the others (weights, shapes, bounds)
become initializers, except the equal-shaped operands of Add and Concat, which stay inputs.
"""

import argparse
import io
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

sys.dont_write_bytecode = True  # a build must not write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_import  # noqa: E402

OPERATORS = ["Conv", "Gemm", "MatMul", "Relu", "Clip", "Sigmoid", "Tanh", "BatchNormalization", "Add", "Mul", "Div",
             "AveragePool", "GlobalAveragePool", "MaxPool", "Flatten", "Reshape", "Concat", "Pad", "Softmax"]
TORCH_GROUP = "PyTorch models"
# Nodes a case may hold besides its operators.
AUXILIARY = {"Constant", "Identity", "Dropout"}
SUITES = ["node", "pytorch-converted", "pytorch-operator"]
KEEP_RUNTIME = {"Add", "Concat"}

# The generated test requires at least this many cases to run per operator, so that an
# importer or test-data change that silently drops cases fails instead of passing.
MINIMUM_RUN = {
    "Conv": 18, "Gemm": 11, "MatMul": 1, "Relu": 2, "Clip": 9, "Sigmoid": 3, "Tanh": 3, "BatchNormalization": 7,
    "Add": 2, "Mul": 3, "Div": 3, "AveragePool": 13, "GlobalAveragePool": 2, "MaxPool": 12, "Flatten": 11,
    "Reshape": 9, "Concat": 13, "Pad": 3, "Softmax": 10, TORCH_GROUP: 3,
}


class Case:
    def __init__(self, display, ident, group, model, inputs, expected):
        self.display, self.ident, self.group = display, ident, group
        self.model, self.inputs, self.expected = model, inputs, expected
        self.rejection = None
        self.runtime_ranks = []


def read_tensor(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def operator_of(model):
    """The case's operator, or None when the case holds anything unsupported."""
    types = [n.op_type for n in model.graph.node]
    main = [t for t in types if t not in AUXILIARY]
    if not main or any(t not in OPERATORS and t not in AUXILIARY for t in types):
        return None
    return main[0]


def keep_runtime_inputs(model, inputs, operator):
    """Turns the case's inputs but the first into initializers (see the module docstring);
    returns the data of those left at run time."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    runtime = [i for i in graph.input if i.name not in initializers]
    kept = [runtime[0].name]
    for info, data in zip(runtime[1:], inputs[1:]):
        if operator in KEEP_RUNTIME and data.shape == inputs[0].shape:
            kept.append(info.name)
        else:
            graph.initializer.append(numpy_helper.from_array(data, info.name))
    # The new initializers stay listed as inputs: IR < 4 requires it, the importer allows it.
    return [data for info, data in zip(runtime, inputs) if info.name in kept]


def suite_cases(data_dir):
    for suite in SUITES:
        root = os.path.join(data_dir, suite)
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            directory = os.path.join(root, name)
            data_set = os.path.join(directory, "test_data_set_0")
            if name.endswith("_expanded") or not os.path.isdir(data_set):
                continue  # an expanded case tests other operators' composition
            model = onnx.load(os.path.join(directory, "model.onnx"))
            operator = operator_of(model)
            if operator is None:
                continue
            files = sorted(os.listdir(data_set))
            inputs = [read_tensor(os.path.join(data_set, f"input_{k}.pb")) for k in range(len(files))
                      if f"input_{k}.pb" in files]
            expected = read_tensor(os.path.join(data_set, "output_0.pb"))
            runtime = keep_runtime_inputs(model, inputs, operator)
            ident = onnx_import.cpp_identifier(f"{suite}_{name}")
            yield Case(f"{suite}/{name}", ident, operator, model, runtime, expected)


def torch_cases():
    """Small exported PyTorch models: batch norm folding, a dynamic batch, several inputs."""
    try:
        import torch
    except ImportError:
        return
    warnings.simplefilter("ignore")
    torch.manual_seed(7)
    nn = torch.nn

    def randomised(module):
        for m in module.modules():  # running statistics away from 0 and 1, so folding shows
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
        return module.eval()

    class ConvNet(nn.Module):  # Conv+BN folding with and without a bias, Gemm+BN folding
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                nn.Conv2d(8, 16, 1), nn.Dropout(0.3), nn.AvgPool2d(2, ceil_mode=True))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, 10), nn.BatchNorm1d(10))

        def forward(self, x):
            return torch.softmax(self.classifier(self.features(x)), dim=1)

    class TwoInputs(nn.Module):  # forward(net, x, y); elementwise, MatMul, Reshape, Concat, Clip
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3))
            self.scale = nn.Parameter(torch.rand(4) + 0.5)

        def forward(self, x, y):
            h = torch.relu(x) + torch.sigmoid(y)
            h = torch.cat([h * self.scale, torch.tanh(y) / 3.0], dim=1)
            h = h.reshape(2, 2, 4) @ self.weight
            return torch.clamp(h, -1.0, 1.5).flatten(1)

    class MobileBlock(nn.Module):  # depthwise-separable block with a global average pool
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
                nn.Conv2d(4, 12, 1, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

        def forward(self, x):
            return self.body(x).flatten(1)

    # conv_net's batch is dynamic in the export; the importer fixes it at 1.
    examples = [("conv_net", ConvNet(), [(1, 3, 16, 16)], {"input0": {0: "batch"}}),
                ("two_inputs", TwoInputs(), [(2, 4), (2, 4)], {}), ("mobile_block", MobileBlock(), [(1, 4, 9, 9)], {})]
    for name, module, shapes, dynamic_axes in examples:
        module = randomised(module)
        inputs = [torch.randn(*s) for s in shapes]
        names = [f"input{k}" for k in range(len(inputs))]
        buffer = io.BytesIO()
        # PRESERVE keeps BatchNormalization nodes (EVAL would fuse them in the exporter).
        torch.onnx.export(module, tuple(inputs), buffer, opset_version=14, input_names=names,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes=dynamic_axes)
        with torch.no_grad():
            expected = module(*inputs).numpy()
        yield Case(f"torch/{name}", f"torch_{name}", TORCH_GROUP, onnx.load_from_string(buffer.getvalue()),
                   [i.numpy() for i in inputs], expected)


def generate_case(case, cases_dir):
    try:
        header, weights = onnx_import.import_model(case.model, case.ident, f"{case.display}/model.onnx")
    except onnx_import.UnsupportedModel as error:
        case.rejection = str(error)
        return
    for k, data in enumerate(case.inputs):
        weights[f"__input_{k}"] = data.astype(np.float32)
    weights["__output_0"] = case.expected.astype(np.float32)
    case.runtime_ranks = [data.ndim for data in case.inputs]
    onnx_import.write_model(cases_dir, case.ident, header, weights)


def test_source(groups, cases_dir):
    out = ["// Generated by tools/onnx_node_tests.py: do not edit.", '#include "node_test_support.hpp"']
    out += [f'#include "cases/{c.ident}.hpp"' for cases in groups.values() for c in cases if not c.rejection]
    for group, cases in groups.items():
        ran = [c for c in cases if not c.rejection]
        rejected = len(cases) - len(ran)
        out += ["", f'TEST_CASE("ONNX node tests: {group}", "[onnx]") {{',
                f"  onnx_node_tests::OperatorCases cases({onnx_import.cpp_string(group)}, "
                f"{onnx_import.cpp_string(cases_dir)}, {rejected}, {MINIMUM_RUN.get(group, 1)});"]
        for c in ran:
            arguments = ", ".join(f"onnx_node_tests::input<{rank}>(weights, {k})"
                                  for k, rank in enumerate(c.runtime_ranks))
            out.append(f"  cases.check({onnx_import.cpp_string(c.ident)}, {onnx_import.cpp_string(c.display)}, "
                       f"[](auto& net, const auto& weights) {{ return fhetensor_models::{c.ident}::forward(net, "
                       f"{arguments}); }});")
        out += ["  cases.finish();", "}"]
    return "\n".join(out) + "\n"


def summary_text(groups, data_dir):
    lines = ["# ONNX node tests", "",
             f"Generated by tools/onnx_node_tests.py from {data_dir} ({', '.join(SUITES)}): every case made only of",
             "the supported operators (and Constant, Identity, Dropout), plus small exported PyTorch models.", "",
             "| operator | ran | rejected | required to run |", "|---|---|---|---|"]
    for group, cases in groups.items():
        rejected = sum(1 for c in cases if c.rejection)
        lines.append(f"| {group} | {len(cases) - rejected} | {rejected} | {MINIMUM_RUN.get(group, 1)} |")
    lines += ["", "## Rejected by the importer", ""]
    lines += [f"- {c.display}: {c.rejection}" for cases in groups.values() for c in cases if c.rejection]
    return "\n".join(lines) + "\n"


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/usr/share/libonnx-testdata/data", help="libonnx-testdata's data directory")
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args(argv)
    cases_dir = os.path.join(os.path.abspath(args.out_dir), "cases")
    os.makedirs(cases_dir, exist_ok=True)
    groups = {op: [] for op in OPERATORS}
    for case in list(suite_cases(args.data)) + list(torch_cases()):
        generate_case(case, cases_dir)
        groups.setdefault(case.group, []).append(case)  # no PyTorch group without python3-torch
    write_text(os.path.join(args.out_dir, "test_onnx_nodes_generated.cpp"), test_source(groups, cases_dir))
    write_text(os.path.join(args.out_dir, "summary.md"), summary_text(groups, args.data))
    short = [f"{g} {sum(1 for c in cs if not c.rejection)}/{len(cs)}" for g, cs in groups.items()]
    print("onnx_node_tests.py: cases run per operator: " + ", ".join(short))
    return 0


if __name__ == "__main__":
    sys.exit(main())
