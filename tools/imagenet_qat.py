#!/usr/bin/env python3
"""Quantization-aware fine-tuning of an ImageNet classifier for fhetensor's windowed reads.

The model is an ONNX file made of Conv (depthwise included), Clip, GlobalAveragePool,
Flatten and Gemm, as the MobileNet v1 models of the shared data are. The student runs
through an emulation of fhetensor's clear-integer model (FheEmulation: what
nn::QuantizedNet builds with example_07's options), with Gaussian noise on every read for
the bootstraps' errors; roundings pass gradients straight through (Bengio et al.,
arXiv:1308.3432). It is distilled from the float model (Hinton et al., arXiv:1503.02531)
on the calibration images, shifted and flipped at random; those images are also what
fhetensor calibrates on. Accuracy is reported on the first validation images. The result
is the same ONNX graph with new weights, for tools/onnx_import.py
(-DFHETENSOR_IMAGENET_MODELS=<path>).

    /usr/bin/python3 tools/imagenet_qat.py ../shared/data/imagenet/models/mobilenet_v1_0.5_160.onnx \
        --reads 6 --epochs 6 --out build/qat/mobilenet_v1_0.5_160_qat6.onnx
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

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        """The float model; record: every layer's output is appended to it."""
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                _, w, b, strides, pads, group = layer
                x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
                x = F.conv2d(x, self.param(w), self.param(b) if b else None, stride=strides, groups=group)
            elif kind == "clip":
                x = torch.clamp(x, layer[1], layer[2])
            elif kind == "gap":
                x = x.mean(dim=(2, 3), keepdim=True)
            elif kind == "flatten":
                x = x.flatten(1)
            else:
                _, w, b, trans_b = layer
                x = F.linear(x, self.param(w) if trans_b else self.param(w).t(), self.param(b))
            if record is not None:
                record.append(x)
        return x


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding whose gradient passes straight through (Bengio et al., arXiv:1308.3432)."""
    return x + (torch.round(x) - x).detach()


def ste_floor(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


def read_half_up(x: torch.Tensor, step: int, jlo: int, jhi: int) -> torch.Tensor:
    """plan_rounding's read (compiler/passes.hpp): x to the nearest multiple of step (halves
    up), within the table's entries jlo..jhi."""
    return step * torch.clamp(ste_floor(x / step + 0.5), jlo, jhi)


def plan_rounding(lo: int, hi: int, bits: int) -> tuple[int, int, int]:
    """(step, jlo, jhi) as compiler::plan_rounding chooses them for the range [lo, hi]."""
    if hi - lo < 1 << bits:
        return 1, lo, hi
    step = 2
    while (hi + step // 2) // step - (lo + step // 2) // step >= 1 << bits:
        step *= 2
    return step, (lo + step // 2) // step, (hi + step // 2) // step


def channel_view(values, channel_axis: int, rank: int) -> torch.Tensor:
    shape = [1] * rank
    shape[channel_axis] = -1
    return torch.as_tensor(values, dtype=torch.float32).view(shape)


class FheEmulation:
    """fhetensor's clear-integer forward of the model, differentiable: what nn::QuantizedNet
    builds with the options of examples/07_imagenet.cpp (input levels, per-channel weights
    refined by up to `refine`, windowed reads of every Clip with per-channel multipliers up
    to `multiplier`, activation levels, the pooled features' and the logits' requantizing
    reads), plus Gaussian noise of `noise` boxes on every read (the bootstraps' errors).
    Roundings pass gradients straight through. calibrate() recomputes every constant from
    the float model's ranges on the calibration images, as nn::calibrate does."""

    def __init__(self, reads: int, activation_bits: int, weight_bits: int, refine: int, multiplier: int,
                 input_bits: int = 8, output_bits: int = 8, margin: float = 0.1, noise: float = 0.0):
        self.reads, self.activation_bits, self.weight_bits = reads, activation_bits, weight_bits
        self.refine, self.multiplier, self.input_bits, self.output_bits = refine, multiplier, input_bits, output_bits
        self.margin, self.noise = margin, noise
        self.plan: list[dict] = []

    @staticmethod
    def ranges(model: OnnxClassifier, images: torch.Tensor, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-element (min, max) over the images of the input and of every layer's output."""
        found: list = []
        with torch.no_grad():
            for i in range(0, len(images), batch):
                outputs = [images[i:i + batch]]
                model(outputs[0], record=outputs)
                for j, z in enumerate(outputs):
                    lo, hi = z.amin(0), z.amax(0)
                    if j == len(found):
                        found.append((lo, hi))
                    else:
                        found[j] = (torch.minimum(found[j][0], lo), torch.maximum(found[j][1], hi))
        return found

    def levels_quantizer(self, lo: float, hi: float, bits: int, saturating: bool = False) -> tuple[float, int]:
        """Quantizer::for_range's (scale, zero); saturating tables use 2^bits - 2 steps."""
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = (hi - lo) / ((1 << bits) - (2 if saturating else 1)) if hi > lo else 1.0
        return scale, int(np.clip(np.round(-lo / scale), 0, (1 << bits) - 1))

    def weight_scales(self, w: torch.Tensor, axis: int, in_scale: float, out_lo: torch.Tensor, out_hi: torch.Tensor) -> torch.Tensor:
        """QuantizedNet::balanced_weights: symmetric per-channel scales, refined by an integer
        factor (at most `refine`) where the channel's accumulators span fewer levels."""
        dims = [d for d in range(w.dim()) if d != axis]
        scale = w.detach().abs().amax(dims) / ((1 << (self.weight_bits - 1)) - 1)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        reach = torch.maximum(out_lo.abs(), out_hi.abs())
        reach = reach.flatten(1).amax(1) if reach.dim() > 1 else reach
        span = reach / (in_scale * scale)
        factor = torch.clamp(torch.floor(span.max() / span.clamp_min(1e-30)), 1, self.refine)
        return torch.where(span > 0, scale / factor, scale)

    def calibrate(self, model: OnnxClassifier, images: torch.Tensor, batch: int) -> None:
        found = self.ranges(model, images, batch)
        layers = model.layers
        self.plan = []
        in_scale, in_zero = self.levels_quantizer(float(found[0][0].min()), float(found[0][1].max()), self.input_bits)
        self.input = (in_scale, in_zero)
        pooled = 1
        for i, layer in enumerate(layers):
            out_lo, out_hi = found[i + 1]
            step: dict = {"kind": layer[0]}
            if layer[0] in ("conv", "gemm"):
                w = model.param(layer[1])
                axis = 0 if layer[0] == "conv" else (0 if layer[3] else 1)
                step["scale"] = self.weight_scales(w, axis, in_scale, out_lo, out_hi)
                step["axis"], step["in_scale"] = axis, in_scale
                acc_scale = in_scale * step["scale"]  # per output channel
                step["acc_scale"] = acc_scale
            elif layer[0] == "clip":
                a, b = layer[1], layer[2]
                z_lo, z_hi = found[i]  # the accumulator's per-element ranges
                to_scale, to_zero = self.levels_quantizer(float(out_lo.min()), float(out_hi.max()), self.activation_bits, True)
                active_lo = z_lo.clamp(a, b)
                active_hi = torch.maximum(z_hi.clamp(a, b), active_lo)
                needed = torch.maximum(z_hi - active_lo, active_hi - z_lo)
                c_lo, c_hi = active_lo.flatten(1).amin(1), active_hi.flatten(1).amax(1)
                # The channel's table saturates at its active interval (levels of an even sum).
                low = torch.clamp(torch.round(c_lo / to_scale) + to_zero, 0, (1 << self.activation_bits) - 1)
                high = torch.clamp(torch.round(c_hi / to_scale) + to_zero, 0, (1 << self.activation_bits) - 1)
                high = high - torch.remainder(low + high, 2)
                width = torch.maximum(needed.flatten(1).amax(1), c_hi - c_lo) / acc_scale
                width = torch.where(low < high, width, torch.zeros_like(width))  # a constant channel needs no window
                widest = float(width.max())
                grid_step = 1
                while ((1 << self.reads) - 1) * grid_step < widest + 3:
                    grid_step *= 2
                half = (grid_step << self.reads) // 2
                grid = 2 * half - 2 * grid_step - 3
                k = torch.where(width > 0, torch.clamp(torch.floor(grid / width.clamp_min(1e-30)), 1, self.multiplier), torch.ones_like(width))
                o = torch.where(width > 0, -torch.round(k * (c_lo + c_hi) / (2 * acc_scale)), torch.zeros_like(width))
                step.update(acc_scale=acc_scale, k=k, o=o, saturated=(low, high), grid_step=grid_step, j=(-(half // grid_step), half // grid_step - 1),
                            to=(to_scale, to_zero), bounds=(a, b))
                in_scale, levels_top = to_scale, (1 << self.activation_bits) - 2
            elif layer[0] == "gap":
                z_lo, z_hi = found[i]
                pooled = z_lo.shape[1] * z_lo.shape[2]
            elif layer[0] == "flatten" and pooled > 1:
                # The pooled sums, read by a plain table into the features' levels.
                derived = (0, levels_top * pooled)
                calibrated = (min(float(out_lo.min()), 0.0) / in_scale * pooled, max(float(out_hi.max()), 0.0) / in_scale * pooled)
                step["read"] = self.assumed_read(calibrated, derived)
                step["sum_scale"] = in_scale / pooled
                step["to"] = self.levels_quantizer(float(out_lo.min()), float(out_hi.max()), self.activation_bits)
                in_scale = step["to"][0]
            self.plan.append(step)
        # The logits: requantized by a plain table to output_bits.
        logits_lo, logits_hi = found[-1]
        gemm = self.plan[-1]
        levels_lo = torch.minimum(logits_lo / gemm["acc_scale"], logits_hi / gemm["acc_scale"]).min()
        levels_hi = torch.maximum(logits_lo / gemm["acc_scale"], logits_hi / gemm["acc_scale"]).max()
        gemm["read"] = self.assumed_read((min(float(levels_lo), 0.0), max(float(levels_hi), 0.0)), None)
        gemm["to"] = self.levels_quantizer(float(logits_lo.min()), float(logits_hi.max()), self.output_bits)

    def assumed_read(self, calibrated: tuple[float, float], derived) -> tuple[int, int, int]:
        """QuantizedNet::accumulator's assumed range (calibrated, widened by the margin, within
        what the layer can derive), and the read plan_rounding makes of it."""
        lo, hi = calibrated
        margin = self.margin * (hi - lo) + 1
        lo, hi = int(np.floor(lo - margin)), int(np.ceil(hi + margin))
        if derived:
            lo, hi = max(lo, derived[0]), min(hi, derived[1])
        return plan_rounding(lo, hi, self.reads)

    def table_read(self, levels: torch.Tensor, step: int, jlo: int, jhi: int) -> torch.Tensor:
        if self.noise > 0 and step > 1:
            levels = levels + self.noise * step * torch.randn_like(levels)
        return read_half_up(levels, step, jlo, jhi) if step > 1 else torch.clamp(ste_round(levels), jlo, jhi)

    @staticmethod
    def to_levels(real: torch.Tensor, scale: float, zero: int, bits: int) -> torch.Tensor:
        return scale * (torch.clamp(ste_round(real / scale) + zero, 0, (1 << bits) - 1) - zero)

    def forward(self, model: OnnxClassifier, x: torch.Tensor) -> torch.Tensor:
        in_scale, in_zero = self.input
        x = self.to_levels(x, in_scale, in_zero, self.input_bits)
        for layer, step in zip(model.layers, self.plan):
            kind = layer[0]
            if kind in ("conv", "gemm"):
                w, b = model.param(layer[1]), (model.param(layer[2]) if layer[2] else None)
                scale = channel_view(step["scale"], step["axis"], w.dim())
                wq = scale * ste_round(w / scale)
                bq = step["acc_scale"] * ste_round(b / step["acc_scale"]) if b is not None else None
                if kind == "conv":
                    _, _, _, strides, pads, group = layer
                    x = F.conv2d(F.pad(x, (pads[1], pads[3], pads[0], pads[2])), wq, bq, stride=strides, groups=group)
                else:
                    x = F.linear(x, wq if layer[3] else wq.t(), bq)
            elif kind == "clip":
                a, b = step["bounds"]
                s = channel_view(step["acc_scale"], 1, 4)
                k, o = channel_view(step["k"], 1, 4), channel_view(step["o"], 1, 4)
                grid_step, entries = step["grid_step"], 1 << self.reads
                v = k * x / s + o
                if self.noise > 0:
                    v = v + self.noise * grid_step * torch.randn_like(v)
                # The table's entry, past the window's ends negacyclically: entries E..2E-1
                # read the negated entries 0..E-1.
                u = torch.remainder(ste_floor(v / grid_step + 0.5) + entries // 2, 2 * entries)
                negated = u >= entries
                v = grid_step * (u - entries // 2 - torch.where(negated, entries, 0))
                scale, zero = step["to"]
                low, high = (channel_view(t, 1, 4) for t in step["saturated"])
                middle = (low + high) / 2
                level = torch.clamp(ste_round(torch.clamp((v - o) * s / k, a, b) / scale) + zero, low, high)
                x = scale * (torch.where(negated, 2 * middle - level, level) - zero)
            elif kind == "gap":
                x = x.mean(dim=(2, 3), keepdim=True)
            elif kind == "flatten":
                x = x.flatten(1)
                if "read" in step:
                    x = self.to_levels(self.table_read(x / step["sum_scale"], *step["read"]) * step["sum_scale"], *step["to"], self.activation_bits)
        gemm = self.plan[-1]
        s = gemm["acc_scale"].view(1, -1)
        return self.to_levels(self.table_read(x / s, *gemm["read"]) * s, *gemm["to"], self.output_bits)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (logits.argmax(1) == labels).float().mean().item()


def evaluate(forward, images, batch) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([forward(images[i:i + batch]) for i in range(0, len(images), batch)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=pathlib.Path)
    p.add_argument("--data", type=pathlib.Path, default=pathlib.Path("../shared/data/imagenet"))
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--reads", type=int, default=6, help="bits a table reads")
    p.add_argument("--activation-bits", type=int, default=7, help="as example_07's --activation-bits")
    p.add_argument("--weight-bits", type=int, default=8, help="as example_07's --weight-bits")
    p.add_argument("--refine", type=int, default=4, help="as example_07's --refine")
    p.add_argument("--window-multiplier", type=int, default=4, help="as example_07's --window-multiplier")
    p.add_argument("--noise", type=float, default=0.25, help="bootstrap noise, in boxes (standard deviation)")
    p.add_argument("--shift", type=int, default=8, help="training images move by up to this many pixels")
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
    train_x, _ = load_images(args.data / "calib", args.calibration, size)
    val_x, val_y = load_images(args.data / "val", args.val, size)
    print(f"{len(train_x)} calibration and {len(val_x)} validation images at {size} x {size} ({time.time() - t0:.0f} s)", flush=True)

    teacher = OnnxClassifier(source).eval()
    student = copy.deepcopy(teacher)
    fhe = FheEmulation(args.reads, args.activation_bits, args.weight_bits, args.refine, args.window_multiplier, noise=args.noise)
    teacher_val = evaluate(teacher, val_x, args.batch)

    def student_reads(x: torch.Tensor) -> torch.Tensor:
        return fhe.forward(student, x)

    def report(epoch: int) -> None:
        fhe.calibrate(student, train_x, args.batch)  # what fhetensor calibrates: the float model
        noise, fhe.noise = fhe.noise, 0.0
        clear = top1(evaluate(student_reads, val_x, args.batch), val_y)
        fhe.noise = noise
        torch.manual_seed(1)
        noisy = top1(evaluate(student_reads, val_x, args.batch), val_y)
        print(f"epoch {epoch}: validation top-1 float teacher {top1(teacher_val, val_y):.2f}%, student float "
              f"{top1(evaluate(student, val_x, args.batch), val_y):.2f}%, clear integers {clear:.2f}%, "
              f"with bootstrap noise {noisy:.2f}% ({time.time() - t0:.0f} s)", flush=True)

    def augmented(x: torch.Tensor) -> torch.Tensor:
        """A random flip and shift (edges replicated) of the batch."""
        if torch.rand(()) < 0.5:
            x = x.flip(3)
        if args.shift > 0:
            dy, dx = (int(v) for v in torch.randint(-args.shift, args.shift + 1, (2,)))
            m = args.shift
            x = F.pad(x, (m, m, m, m), mode="replicate")[:, :, m + dy:m + dy + size, m + dx:m + dx + size]
        return x

    report(0)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    # Weights that are 0 stay 0: Adam's steps would give a pruned channel tiny weights,
    # hence a tiny scale and an accumulator as many levels wide as its bias.
    kept = {name: (param != 0).float() for name, param in student.params.items()}
    steps = args.epochs * ((len(train_x) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))  # Loshchilov & Hutter, arXiv:1608.03983
    for epoch in range(1, args.epochs + 1):
        student.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), args.batch):
            x = augmented(train_x[order[i:i + args.batch]])
            with torch.no_grad():
                soft = F.softmax(teacher(x) / args.temperature, 1)
            logits = fhe.forward(student, x)
            loss = F.kl_div(F.log_softmax(logits / args.temperature, 1), soft, reduction="batchmean") * args.temperature ** 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                for name, param in student.params.items():
                    param.mul_(kept[name])
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
