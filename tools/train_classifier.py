#!/usr/bin/python3
"""Trains a small MNIST / Fashion-MNIST classifier for encrypted inference and exports it
to ONNX.

Every ReLU output costs one programmable bootstrap when the model runs encrypted, so the
architectures are chosen by their count of activation elements per image (at most
ACTIVATION_BUDGET), not by their parameters: linear layers are nearly free.

The exported graph: opset 13, input "input" [1,1,28,28] with pixels byte/255 and no other
normalization, output "logits" [1,10]; only Conv, Relu, Flatten, Gemm (and AveragePool /
MaxPool / Reshape / MatMul if an architecture used them); nodes named after the modules
(conv1, relu1, fc1, ...), initializers after the parameters (conv1.weight, ...). No
BatchNorm is used, so there is none to fold.

The export is checked by evaluating the ONNX graph with an independent numpy interpreter
over the whole test set: its accuracy is reported next to torch's.

Deterministic for a given --seed and --threads (CPU float sums depend on the thread count).

  /usr/bin/python3 tools/train_classifier.py --dataset mnist --arch conv8s4_fc128 --seed 1
  /usr/bin/python3 tools/train_classifier.py --dataset fashion --holdout 5000 --out /tmp/f.onnx
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fhe_datasets  # noqa: E402

ACTIVATION_BUDGET = 1200
ALLOWED_ONNX_OPS = {"Conv", "Relu", "Flatten", "Reshape", "Gemm", "MatMul", "AveragePool", "MaxPool"}
DEFAULT_OUTPUTS = {"mnist": "models/mnist/mnist_cnn.onnx", "fashion": "models/fashion/fashion_cnn.onnx"}


# ---- Architectures ----------------------------------------------------------------------
# Module attribute names become the ONNX node and initializer names.

class Linear(nn.Linear):
    """nn.Linear that trains as a 1x1 convolution: Debian's torch multiplies matrices with
    the reference BLAS, while its oneDNN convolution is 5-15x faster. Exports as Gemm."""

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return super().forward(x)
        return F.conv2d(x[:, :, None, None], self.weight[:, :, None, None], self.bias).flatten(1)


class PatchConvMlp(nn.Module):
    """Conv(1->c, k, stride 4) -> ReLU -> Flatten -> Linear(->hidden) -> ReLU -> Linear(->10).
    With k=4 the patches do not overlap (architecture B); k=8 with padding 2 keeps the 7x7
    output but lets neighbouring patches share pixels, at the same activation count."""

    def __init__(self, channels=16, kernel=4, padding=0, hidden=128):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel, stride=4, padding=padding)
        self.relu1 = nn.ReLU()
        self.flatten = nn.Flatten()
        side = (28 + 2 * padding - kernel) // 4 + 1
        self.fc1 = Linear(channels * side * side, hidden)
        self.relu2 = nn.ReLU()
        self.fc2 = Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(self.relu2(self.fc1(self.flatten(self.relu1(self.conv1(x))))))


class TwoConv(nn.Module):
    """Conv(1->16, k, s4) -> ReLU -> Conv(16->c2, k3, s2) -> ReLU -> Flatten -> Linear(->10)."""

    def __init__(self, kernel=4, padding=0, channels2=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel, stride=4, padding=padding)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, channels2, 3, stride=2)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = Linear(channels2 * 3 * 3, 10)

    def forward(self, x):
        return self.fc1(self.flatten(self.relu2(self.conv2(self.relu1(self.conv1(x))))))


ARCHITECTURES = {
    "patch4_fc128": (lambda: PatchConvMlp(kernel=4),
                     "Conv(1->16,k4,s4)-ReLU-Flatten(784)-Gemm(784->128)-ReLU-Gemm(128->10)"),
    "conv8s4_fc128": (lambda: PatchConvMlp(kernel=8, padding=2),
                      "Conv(1->16,k8,s4,p2)-ReLU-Flatten(784)-Gemm(784->128)-ReLU-Gemm(128->10)"),
    "conv8s4_conv3": (lambda: TwoConv(kernel=8, padding=2, channels2=40),
                      "Conv(1->16,k8,s4,p2)-ReLU-Conv(16->40,k3,s2)-ReLU-Flatten(360)-Gemm(360->10)"),
    "conv8s4w20_fc200": (lambda: PatchConvMlp(channels=20, kernel=8, padding=2, hidden=200),
                         "Conv(1->20,k8,s4,p2)-ReLU-Flatten(980)-Gemm(980->200)-ReLU-Gemm(200->10)"),
}


def count_activations(model: nn.Module) -> int:
    """ReLU output elements for one image: the bootstraps an encrypted run needs."""
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        total += output[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in handles:
        h.remove()
    return total


# ---- Training ---------------------------------------------------------------------------

AUGMENTATIONS = {
    "affine": "random shift <=2 px, rotation <=10 deg, scale +-8%",
    "shift": "random shift <=1 px",
    "none": "none",
}
# Digits gain from small deformations. Fashion-MNIST's images are aligned (every shoe
# points left) and these small models underfit it under stronger augmentation (shift 2 px
# with mirroring cost 1.5 points), so it gets 1-pixel shifts only.
DEFAULT_AUGMENTATION = {"mnist": "affine", "fashion": "shift"}
# Chosen on a 5,000-image holdout of the training set (models/README.md lists the runs).
DEFAULT_ARCHITECTURE = {"mnist": "conv8s4_fc128", "fashion": "conv8s4w20_fc200"}
DEFAULT_LABEL_SMOOTHING = {"mnist": 0.0, "fashion": 0.1}


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Mild, label-preserving deformations (see AUGMENTATIONS)."""
    if kind == "none":
        return x
    n = x.shape[0]
    max_shift = 2 if kind == "affine" else 1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (max_shift / 14.0)  # grid units: 14 px = 1
    if kind == "affine":
        angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
        scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.08
    else:
        angle, scale = torch.zeros(n), torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def train(model, x, y, args, log) -> None:
    gen = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    # One short warm-up epoch, then cosine decay to zero: good results in few epochs.
    total = args.epochs * steps_per_epoch
    warmup = min(steps_per_epoch, max(1, total // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        loss_sum, start = 0.0, time.time()
        for i in range(0, len(x), args.batch_size):
            idx = order[i:i + args.batch_size]
            batch = augment(x[idx], args.augment, gen)
            loss = F.cross_entropy(model(batch), y[idx], label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss) * len(idx)
        log(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / len(x):.4f} ({time.time() - start:.1f} s)")


# ---- Export and its independent check ---------------------------------------------------

def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), opset_version=13,
                      input_names=["input"], output_names=["logits"], do_constant_folding=True)
    graph_model = onnx.load(str(path))
    # torch names nodes "/fc1/Gemm"; the importer uses node names as C++ identifiers and
    # layer names, so give each node its module's name.
    # Intermediate tensors take their node's name too; the graph's input and output keep theirs.
    used, renamed = set(), {}
    graph_output = graph_model.graph.output[0].name
    for node in graph_model.graph.node:
        scope = node.name.strip("/").split("/")
        name = scope[0] if len(scope) > 1 and scope[0] else node.op_type.lower()
        while name in used:
            name += "_"
        used.add(name)
        node.name = name
        node.input[:] = [renamed.get(i, i) for i in node.input]
        if node.output[0] != graph_output:
            renamed[node.output[0]] = name
            node.output[0] = name
    graph_model.producer_name = "fhetensor tools/train_classifier.py"
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))


def check_onnx_graph(path: Path) -> onnx.ModelProto:
    m = onnx.load(str(path))
    ops = {n.op_type for n in m.graph.node}
    if not ops <= ALLOWED_ONNX_OPS:
        raise RuntimeError(f"{path}: unexpected operators {sorted(ops - ALLOWED_ONNX_OPS)}")
    if m.opset_import[0].version != 13:
        raise RuntimeError(f"{path}: opset {m.opset_import[0].version}, expected 13")
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    if dims != [1, 1, 28, 28]:
        raise RuntimeError(f"{path}: input shape {dims}, expected [1, 1, 28, 28]")
    return m


def run_onnx_numpy(m, x: np.ndarray) -> np.ndarray:
    """Evaluates the graph with numpy, batch dimension free: an independent check that the
    file means what torch computed (no onnxruntime on this machine)."""
    from numpy.lib.stride_tricks import sliding_window_view
    from onnx import numpy_helper
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    values[m.graph.input[0].name] = x.astype(np.float64)
    for node in m.graph.node:
        attrs = {a.name: (list(a.ints) if a.ints else a.i if a.type == a.INT else a.f) for a in node.attribute}
        inputs = [values[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise RuntimeError(f"{node.name}: only group 1, dilation 1 are checked here")
            w = inputs[1]
            sh, sw = attrs.get("strides", [1, 1])
            pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
            xp = np.pad(inputs[0], ((0, 0), (0, 0), (pt, pb), (pl, pr)))
            windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
            out = np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
            if len(inputs) > 2 and inputs[2] is not None:
                out += inputs[2][None, :, None, None]
        elif op == "Relu":
            out = np.maximum(inputs[0], 0)
        elif op == "Flatten":
            axis = attrs.get("axis", 1)
            out = inputs[0].reshape(int(np.prod(inputs[0].shape[:axis])), -1)
        elif op == "Reshape":
            shape = [inputs[0].shape[0] if (i == 0 and s in (0, 1)) else s for i, s in enumerate(inputs[1].astype(int))]
            out = inputs[0].reshape(shape)
        elif op == "Gemm":
            a = inputs[0].T if attrs.get("transA", 0) else inputs[0]
            b = inputs[1].T if attrs.get("transB", 0) else inputs[1]
            out = attrs.get("alpha", 1.0) * a @ b
            if len(inputs) > 2 and inputs[2] is not None:
                out = out + attrs.get("beta", 1.0) * inputs[2]
        elif op == "MatMul":
            out = inputs[0] @ inputs[1]
        elif op in ("AveragePool", "MaxPool"):
            k = attrs["kernel_shape"]
            s = attrs.get("strides", k)
            if any(attrs.get("pads", [0])):
                raise RuntimeError(f"{node.name}: padded pooling is not checked here")
            windows = sliding_window_view(inputs[0], k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
            out = windows.mean(axis=(4, 5)) if op == "AveragePool" else windows.max(axis=(4, 5))
        else:
            raise RuntimeError(f"{node.name}: operator {op} not supported by the check")
        values[node.output[0]] = out
    return values[m.graph.output[0].name]


# ---- Main -------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["mnist", "fashion"], required=True)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES),
                        help="default: conv8s4_fc128 for mnist, conv8s4w20_fc200 for fashion")
    parser.add_argument("--data-dir", help="folder of the idx files (default: $FHETENSOR_DATA, "
                        "../shared/data, or the Debian package for Fashion-MNIST)")
    parser.add_argument("--out", help="ONNX file to write (default models/<dataset>/<dataset>_cnn.onnx); "
                        "the JSON summary goes beside it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, help="default: 0 for mnist, 0.1 for fashion")
    parser.add_argument("--augment", choices=sorted(AUGMENTATIONS),
                        help="default: affine for mnist, none for fashion")
    parser.add_argument("--holdout", type=int, default=0,
                        help="keep the last N training images out of training and report accuracy on "
                             "them: choose architectures on this, not on the test set")
    parser.add_argument("--threads", type=int, default=1,
                        help="1 by default: on a shared machine extra OpenMP threads mostly wait")
    args = parser.parse_args()

    args.arch = args.arch or DEFAULT_ARCHITECTURE[args.dataset]
    args.augment = args.augment or DEFAULT_AUGMENTATION[args.dataset]
    if args.label_smoothing is None:
        args.label_smoothing = DEFAULT_LABEL_SMOOTHING[args.dataset]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    repo = fhe_datasets.REPO_ROOT
    out = Path(args.out) if args.out else repo / DEFAULT_OUTPUTS[args.dataset]
    log = lambda message: print(f"[{args.dataset} {args.arch}] {message}", flush=True)  # noqa: E731

    train_images, train_labels = fhe_datasets.load_split(args.dataset, "train", args.data_dir)
    test_images, test_labels = fhe_datasets.load_split(args.dataset, "t10k", args.data_dir)
    x, y = to_tensor(train_images), torch.from_numpy(train_labels.astype(np.int64))
    x_test, y_test = to_tensor(test_images), torch.from_numpy(test_labels.astype(np.int64))
    x_holdout = y_holdout = None
    if args.holdout:
        x, x_holdout = x[:-args.holdout], x[-args.holdout:]
        y, y_holdout = y[:-args.holdout], y[-args.holdout:]

    build, description = ARCHITECTURES[args.arch]
    model = build()
    activations = count_activations(model)
    if activations > ACTIVATION_BUDGET:
        raise SystemExit(f"{args.arch}: {activations} activations per image exceed the budget {ACTIVATION_BUDGET}")
    log(f"{description}: {activations} activations/image, "
        f"{sum(p.numel() for p in model.parameters())} parameters, {len(x)} training images")

    start = time.time()
    train(model, x, y, args, log)
    train_seconds = time.time() - start
    test_accuracy = accuracy(model, x_test, y_test)
    holdout_accuracy = accuracy(model, x_holdout, y_holdout) if args.holdout else None
    log(f"float test accuracy {test_accuracy:.4f}" +
        (f", holdout accuracy {holdout_accuracy:.4f}" if args.holdout else "") + f" ({train_seconds:.0f} s)")

    export_onnx(model, out)
    graph = check_onnx_graph(out)
    logits = run_onnx_numpy(graph, test_images.astype(np.float32)[:, None] / np.float32(255))
    onnx_accuracy = float((logits.argmax(1) == test_labels).mean())
    with torch.no_grad():
        torch_logits = torch.cat([model(x_test[i:i + 1000]) for i in range(0, len(x_test), 1000)]).double().numpy()
    max_difference = float(np.abs(logits - torch_logits).max())
    log(f"ONNX graph (numpy check) test accuracy {onnx_accuracy:.4f}, max |logit difference| {max_difference:.2e}")
    if max_difference > 1e-3:
        raise SystemExit(f"{out}: the exported graph disagrees with torch ({max_difference})")

    command = "/usr/bin/python3 tools/train_classifier.py " + shlex.join(sys.argv[1:])
    summary = {
        "dataset": args.dataset,
        "architecture": args.arch,
        "layers": description,
        "activations_per_image": activations,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": "[1,1,28,28] float, pixel byte / 255, no other normalization",
        "output": "[1,10] logits",
        "onnx_opset": 13,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": f"AdamW lr {args.lr} weight decay {args.weight_decay}, linear warm-up (1 epoch) then cosine to 0",
        "label_smoothing": args.label_smoothing,
        "augmentation": AUGMENTATIONS[args.augment],
        "training_images": len(x),
        "float_test_accuracy": test_accuracy,
        "onnx_test_accuracy": onnx_accuracy,
        "test_images": len(x_test),
        "holdout_accuracy": holdout_accuracy,
        "torch_version": torch.__version__,
        "threads": args.threads,
        "train_seconds": round(train_seconds),
        "command": command,
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
