#!/usr/bin/env python3
"""Quantization-aware fine-tuning of an ImageNet classifier for fhetensor's windowed reads.

The model is an ONNX file made of Conv (depthwise included), Clip, GlobalAveragePool,
Flatten and Gemm, as the MobileNet v1 models of the shared data are. Each Clip reads its
convolution's accumulator through a window per channel, as nn::QuantizedNet's
saturating_table does: centred on the channel's active interval, as wide as the channel's
calibrated values need, read in 2^R boxes (a fraction `--fill` of them on average, for the
multipliers' rounding) with Gaussian noise of `--noise` boxes (the bootstrap's errors).
The rounding passes gradients straight through (Bengio et al., arXiv:1308.3432). The
student is distilled from the float model (Hinton et al., arXiv:1503.02531) on the
calibration images, which are also what fhetensor calibrates the windows on; accuracy is
reported on the first validation images. The result is the same ONNX graph with new
weights, for tools/onnx_import.py (-DFHETENSOR_IMAGENET_MODELS=<path>).

    /usr/bin/python3 tools/imagenet_qat.py ../shared/data/imagenet/models/mobilenet_v1_0.5_160.onnx \
        --data ../shared/data/imagenet --reads 6 --epochs 6 --out build/mobilenet_v1_0.5_160_qat6.onnx
"""
from __future__ import annotations

import argparse
import copy
import pathlib
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image


def load_images(directory: pathlib.Path, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """As examples/07_imagenet.cpp prepares them: the shorter side resized to
    round(size / 0.875) (bilinear, no antialiasing), the centred size x size window
    (torchvision's offsets), x / 127.5 - 1, NCHW."""
    lines = (directory / "labels.txt").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()][:count]
    images, labels = [], []
    for file, label in entries:
        pixels = torch.from_numpy(np.asarray(Image.open(directory / file).convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy())
        h, w = pixels.shape[1:]
        shorter, target = min(h, w), int(np.floor(size / 0.875 + 0.5))
        resized = F.interpolate(pixels[None], size=(h * target // shorter, w * target // shorter), mode="bilinear",
                                align_corners=False, antialias=False)[0]
        top, left = (round((n - size) / 2) for n in resized.shape[1:])
        images.append(resized[:, top:top + size, left:left + size] / 127.5 - 1)
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)


class OnnxClassifier(torch.nn.Module):
    """The ONNX graph as a chain of layers with trainable weights."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.params = torch.nn.ParameterDict()
        self.layers: list[tuple] = []
        for node in model.graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Conv":
                w, b = node.input[1], node.input[2] if len(node.input) > 2 else ""
                self.params[w.replace(".", "_")] = torch.nn.Parameter(torch.from_numpy(init[w].copy()))
                if b:
                    self.params[b.replace(".", "_")] = torch.nn.Parameter(torch.from_numpy(init[b].copy()))
                self.layers.append(("conv", w, b, attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0]), attrs.get("group", 1)))
            elif node.op_type == "Clip":
                lo, hi = (float(init[name]) for name in node.input[1:3])
                self.layers.append(("clip", lo, hi, node.output[0]))
            elif node.op_type == "GlobalAveragePool":
                self.layers.append(("gap",))
            elif node.op_type == "Flatten":
                self.layers.append(("flatten",))
            elif node.op_type == "Gemm":
                w, b = node.input[1], node.input[2]
                self.params[w.replace(".", "_")] = torch.nn.Parameter(torch.from_numpy(init[w].copy()))
                self.params[b.replace(".", "_")] = torch.nn.Parameter(torch.from_numpy(init[b].copy()))
                self.layers.append(("gemm", w, b, attrs.get("transB", 0)))
            else:
                raise ValueError(f"imagenet_qat.py: unsupported operator {node.op_type} ({node.name})")

    def param(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "_")]

    def forward(self, x: torch.Tensor, read=None) -> torch.Tensor:
        """read(name, z): what a table sees of accumulator z before Clip `name`."""
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                _, w, b, strides, pads, group = layer
                x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
                x = F.conv2d(x, self.param(w), self.param(b) if b else None, stride=strides, groups=group)
            elif kind == "clip":
                _, lo, hi, name = layer
                x = torch.clamp(read(name, x) if read else x, lo, hi)
            elif kind == "gap":
                x = x.mean(dim=(2, 3), keepdim=True)
            elif kind == "flatten":
                x = x.flatten(1)
            else:
                _, w, b, trans_b = layer
                x = F.linear(x, self.param(w) if trans_b else self.param(w).t(), self.param(b))
        return x


class RoundStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class WindowedReads:
    """Per-channel windows from the calibration images' accumulators, read in boxes."""

    def __init__(self, reads: int, fill: float, noise: float, bounds: dict[str, tuple[float, float]]):
        self.boxes = fill * ((1 << reads) - 1)
        self.noise, self.bounds = noise, bounds
        self.centre: dict[str, torch.Tensor] = {}
        self.box: dict[str, torch.Tensor] = {}

    def calibrate(self, model: OnnxClassifier, images: torch.Tensor, batch: int) -> None:
        lo: dict[str, torch.Tensor] = {}
        hi: dict[str, torch.Tensor] = {}

        def record(name, z):
            zl, zh = z.amin(dim=(0, 2, 3)), z.amax(dim=(0, 2, 3))
            lo[name] = torch.minimum(lo[name], zl) if name in lo else zl
            hi[name] = torch.maximum(hi[name], zh) if name in hi else zh
            return z

        with torch.no_grad():
            for i in range(0, len(images), batch):
                model(images[i:i + batch], record)
        for name in lo:
            a, b = self.bounds[name]
            active_lo = lo[name].clamp(a, b)
            active_hi = torch.maximum(hi[name].clamp(a, b), active_lo)
            needed = torch.maximum(torch.maximum(hi[name] - active_lo, active_hi - lo[name]), active_hi - active_lo)
            self.centre[name] = ((active_lo + active_hi) / 2).view(1, -1, 1, 1)
            self.box[name] = (needed.clamp_min(1e-6) / self.boxes).view(1, -1, 1, 1)

    def __call__(self, name: str, z: torch.Tensor) -> torch.Tensor:
        c, box = self.centre[name], self.box[name]
        u = (z - c) / box
        if self.noise > 0:
            u = u + self.noise * torch.randn_like(u)
        return c + box * RoundStraightThrough.apply(u)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (logits.argmax(1) == labels).float().mean().item()


def evaluate(model, images, batch, read=None) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch], read) for i in range(0, len(images), batch)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=pathlib.Path)
    p.add_argument("--data", type=pathlib.Path, default=pathlib.Path("../shared/data/imagenet"))
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--reads", type=int, default=6, help="bits a table reads")
    p.add_argument("--fill", type=float, default=0.75, help="mean fraction of the boxes a channel's window uses")
    p.add_argument("--noise", type=float, default=0.3, help="bootstrap noise, in boxes (standard deviation)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--calibration", type=int, default=500)
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    source = onnx.load(str(args.model))
    size = source.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    t0 = time.time()
    train_x, train_y = load_images(args.data / "calib", args.calibration, size)
    val_x, val_y = load_images(args.data / "val", args.val, size)
    print(f"{len(train_x)} calibration and {len(val_x)} validation images at {size} x {size} ({time.time() - t0:.0f} s)", flush=True)

    teacher = OnnxClassifier(source).eval()
    student = copy.deepcopy(teacher)
    bounds = {layer[3]: (layer[1], layer[2]) for layer in teacher.layers if layer[0] == "clip"}
    reads = WindowedReads(args.reads, args.fill, args.noise, bounds)
    # The teacher's soft labels for both flips of every training image, computed once.
    soft = {flip: F.softmax(evaluate(teacher, train_x.flip(3) if flip else train_x, args.batch) / args.temperature, 1) for flip in (0, 1)}
    teacher_val = evaluate(teacher, val_x, args.batch)

    def report(epoch: int) -> None:
        reads.calibrate(student, train_x, args.batch)
        noise, reads.noise = reads.noise, 0.0
        quiet = top1(evaluate(student, val_x, args.batch, reads), val_y)
        reads.noise = noise
        torch.manual_seed(1)
        noisy = top1(evaluate(student, val_x, args.batch, reads), val_y)
        print(f"epoch {epoch}: validation top-1 float teacher {top1(teacher_val, val_y):.2f}%, student float "
              f"{top1(evaluate(student, val_x, args.batch), val_y):.2f}%, {args.reads}-bit windowed reads {quiet:.2f}%, "
              f"with noise {noisy:.2f}% ({time.time() - t0:.0f} s)", flush=True)

    report(0)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        student.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), args.batch):
            index = order[i:i + args.batch]
            flip = int(torch.randint(2, ()).item())
            x = train_x[index].flip(3) if flip else train_x[index]
            logits = student(x, reads)
            loss = F.kl_div(F.log_softmax(logits / args.temperature, 1), soft[flip][index], reduction="batchmean") * args.temperature ** 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        report(epoch)

    out = copy.deepcopy(source)
    for t in out.graph.initializer:
        key = t.name.replace(".", "_")
        if key in student.params:
            t.CopyFrom(numpy_helper.from_array(student.params[key].detach().numpy().astype(np.float32), t.name))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(out, str(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
