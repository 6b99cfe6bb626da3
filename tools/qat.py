#!/usr/bin/python3
"""Quantization-aware training (QAT) for fhetensor's post-training quantizer.

The model trains through fake-quant operations that compute exactly what the C++ side
will compute: nn::QuantizedNet's integer model (per-channel symmetric weights, calibrated
input and activation quantizers, accumulators with calibrated assumed ranges) and the
compiler's rounding of each table's input to `rounding_bits` bits (compiler/passes.hpp,
plan_rounding). Rounding is std::round's (half away from zero), the table index rounds
half up, and out-of-range accumulators wrap around the torus as encrypted execution does.
Gradients pass the roundings straight through (Bengio et al. 2013, "Estimating or
propagating gradients through stochastic neurons"), as in Concrete-ML's Brevitas QAT.
With --error-probability P, training also draws each table's bootstrap noise as
simulate does (runtime/clear_modes.hpp): Gaussian, in table steps, at the largest level
the compiler allows at P.

It fine-tunes a float model (tools/train_classifier.py's ONNX export, same architecture)
and writes, beside the ONNX export:
  <name>.onnx, .weights        the float weights, imported by tools/onnx_import.py (the
                               graph is the float model's: C++ keeps its header)
  <name>.quantization          the recipe: calibrated ranges and bit widths, read by
                               nn::QuantizationRecipe::load (a weight file: "range/<node>"
                               [2], "element_ranges/<node>" [E, 2], "option/<name>" [1])
  <name>.json                  the integer model's test accuracy, and a digest of every
                               test image's integer outputs that C++'s run_clear reproduces
                               (tests/test_qat.cpp)

  /usr/bin/python3 tools/qat.py --dataset fashion --rounding-bits 7 --activation-bits 6 --error-probability 0.25
  /usr/bin/python3 tools/qat.py --dataset mnist --rounding-bits 5 --epochs 4
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fhe_datasets  # noqa: E402
import onnx_import  # noqa: E402
import train_classifier as tc  # noqa: E402

FLOAT_MODELS = {"mnist": ("conv8s4_fc128", "models/mnist/mnist_cnn.onnx"),
                "fashion": ("conv8s4w20_fc200", "models/fashion/fashion_cnn.onnx")}
DEFAULT_OUTPUTS = {"mnist": "models/mnist/mnist_qat.onnx", "fashion": "models/fashion/fashion_qat.onnx"}


# ---- C++ arithmetic, exactly --------------------------------------------------------------

class _RoundAway(torch.autograd.Function):
    """std::round: half away from zero; the gradient passes straight through."""

    @staticmethod
    def forward(ctx, x):
        t = torch.trunc(x)
        return t + torch.where((x - t).abs() >= 0.5, torch.sign(x), torch.zeros_like(x))

    @staticmethod
    def backward(ctx, g):
        return g


def round_away(x: torch.Tensor) -> torch.Tensor:
    return _RoundAway.apply(x)


def round_away_scalar(x: float) -> float:
    t = float(math.trunc(x))
    return t + (math.copysign(1.0, x) if abs(x - t) >= 0.5 else 0.0)


def straight_through(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`value` forward, the gradient of x backward."""
    return x + (value - x).detach()


def fma(a: float, b: float, c: float) -> float:
    """std::fma: a * b + c rounded once."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@dataclass(frozen=True)
class Quantizer:
    """nn::Quantizer::for_range: real = scale * (q - zero), q in [0, 2^bits - 1]."""
    scale: float
    zero: int
    bits: int

    @staticmethod
    def for_range(lo: float, hi: float, bits: int) -> "Quantizer":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        top = float((1 << bits) - 1)
        scale = (hi - lo) / top if hi > lo else 1.0
        zero = int(min(max(round_away_scalar(-lo / scale), 0.0), top))
        return Quantizer(scale, zero, bits)

    @property
    def top(self) -> int:
        return (1 << self.bits) - 1

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(round_away(x / self.scale) + self.zero, 0, self.top)


@dataclass(frozen=True)
class LookupPlan:
    """compiler plan_rounding: index j = round_half_up((x - offset) / 2^shift), `precision`
    bits, `used` reachable entries."""
    shift: int
    precision: int
    offset: int
    used: int

    @staticmethod
    def for_range(lo: int, hi: int, bits: int) -> "LookupPlan":
        bits_for_span = lambda span: max(1, int(span).bit_length())  # noqa: E731
        if hi - lo < (1 << bits):
            return LookupPlan(0, bits_for_span(hi - lo), lo, hi - lo + 1)
        for k in range(1, 63):
            half, step = 1 << (k - 1), 1 << k
            jlo, jhi = (lo + half) // step, (hi + half) // step
            if jhi - jlo < (1 << bits):
                return LookupPlan(k, bits_for_span(jhi - jlo), jlo * step, jhi - jlo + 1)
        raise ValueError(f"no rounding fits [{lo}, {hi}]")

    def index(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """noise: in units of a box, added to the phase at the blind rotation (where x sits
        in its box matters: SimulateDomain::lookup)."""
        d = x - self.offset
        if noise is None:
            return d if self.shift == 0 else torch.floor((d + (1 << (self.shift - 1))) / (1 << self.shift))
        # The noiseless phase sits half a box in, plus half an input step when rounding.
        centre = 0.5 + (0.5 / (1 << self.shift) if self.shift else 0.0)
        return torch.floor(d / (1 << self.shift) + centre + noise)

    def input_of(self, j: torch.Tensor) -> torch.Tensor:
        """The rounded input that index j stands for."""
        return self.offset + j * (1 << self.shift)


# ---- The integer model ---------------------------------------------------------------------

@dataclass
class Options:
    """nn::QuantizationOptions and CompileOptions::rounding_bits."""
    input_bits: int = 8
    weight_bits: int = 5
    activation_bits: int = 6
    output_bits: int = 8
    rounding_bits: int = 6
    range_margin: float = 0.125  # exact in float32, as the recipe file stores it
    error_probability: float = 0.0  # CompileOptions::error_probability; 0: trained without noise

    def as_recipe(self) -> dict[str, int | float]:
        keys = ["input_bits", "weight_bits", "activation_bits", "output_bits", "rounding_bits", "range_margin"]
        return {k: getattr(self, k) for k in keys + (["error_probability"] if self.error_probability else [])}

    @property
    def noise_sigma(self) -> float:
        """The largest noise, in boxes, that the compiler allows a table at the error
        probability: a value at the centre of its box leaves it with probability p."""
        p = self.error_probability
        return 0.5 / NormalDist().inv_cdf(1 - p / 2) if p else 0.0


@dataclass
class Ranges:
    """nn::Calibration: whole-tensor and per-element real ranges by node name. Stored as
    float32 (the recipe file's type), rounded outwards."""
    whole: dict[str, tuple[float, float]] = field(default_factory=dict)
    elements: dict[str, np.ndarray] = field(default_factory=dict)  # [E, 2]

    def record(self, name: str, values: torch.Tensor) -> None:
        v = values.detach().double().reshape(values.shape[0], -1)
        lo, hi = v.min(0).values.numpy(), v.max(0).values.numpy()
        lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        lo32 = np.where(lo32 > lo, np.nextafter(lo32, np.float32(-np.inf)), lo32)
        hi32 = np.where(hi32 < hi, np.nextafter(hi32, np.float32(np.inf)), hi32)
        self.elements[name] = np.stack([lo32, hi32], 1)
        self.whole[name] = (float(lo32.min()), float(hi32.max()))


@dataclass
class Value:
    """nn::QValue: real = scale * (q - zero). `scale` is a float or a float64 array of the
    element shape; `range` is the compiler's range of q (int lo, hi)."""
    q: torch.Tensor
    scale: float | np.ndarray
    zero: int
    levels: bool
    name: str
    range: tuple[int, int]


class IntegerModel:
    """nn::QuantizedNet over a chain of Conv2d / Linear / ReLU / Flatten modules, with
    the compiler's table rounding. exact=True: float64, wraps emulated (what run_clear
    computes); exact=False: the model's dtype, gradients straight through."""

    def __init__(self, model: nn.Module, options: Options):
        self.model, self.options = model, options
        self.layers = list(model.named_children())
        for name, m in self.layers:
            if not isinstance(m, (nn.Conv2d, nn.Linear, nn.ReLU, nn.Flatten)):
                raise ValueError(f"{name}: {type(m).__name__} is not supported by QAT yet")

    def forward(self, x: torch.Tensor, ranges: Ranges, exact: bool, calibrate: bool = False,
                noise: torch.Generator | None = None) -> tuple[torch.Tensor, Value]:
        """Real outputs and the output Value. calibrate=True records every range as it goes
        (into `ranges`), layer by layer over the whole batch, as nn::calibrate does.
        noise: draw each table's bootstrap noise (Options.noise_sigma) from it, as
        simulate does; None: run_clear's noiseless tables."""
        if exact:
            x = x.double()
        if calibrate:
            ranges.record("input", x)
        inq = Quantizer.for_range(*ranges.whole["input"], self.options.input_bits)
        v = Value(inq.quantize(x).detach(), inq.scale, inq.zero, True, "input", (0, inq.top))
        for name, m in self.layers:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                v = self._linear(name, m, v, ranges, exact, calibrate)
            elif isinstance(m, nn.ReLU):
                v = self._table(v, name, self.options.activation_bits, torch.relu, ranges, exact, calibrate, noise)
            else:
                scale = v.scale if np.isscalar(v.scale) else v.scale.reshape(-1)
                v = Value(v.q.flatten(1), scale, v.zero, v.levels, name, v.range)
        if not (v.levels and np.isscalar(v.scale)):
            v = self._table(v, v.name, self.options.output_bits, lambda t: t, ranges, exact, False, noise)
        if exact:
            v.q = self._decrypted(v.q, v.range)
        return v.scale * (v.q - v.zero), v

    @staticmethod
    def _decrypted(q: torch.Tensor, r: tuple[int, int]) -> torch.Tensor:
        """CompiledModel::decoded: an output beyond its range (a negated table entry after
        a wrap) decodes modulo the output's encoding, around the range's centre."""
        span = r[1] - r[0]
        centre, modulus = r[0] + span // 2, 1 << (max(1, span.bit_length()) + 1)
        d = torch.remainder(q - centre, modulus)
        return centre + torch.where(d >= modulus // 2, d - modulus, d)

    # nn::QuantizedNet::conv / dense_layer
    def _linear(self, name, m, v: Value, ranges: Ranges, exact: bool, calibrate: bool) -> Value:
        if not (v.levels and np.isscalar(v.scale)):
            raise ValueError(f"{name}: QAT supports linear layers on levels (after the input or a table) only")
        dtype = torch.float64 if exact else v.q.dtype
        w = m.weight.to(dtype)
        channels = w.shape[0]
        top = float((1 << (self.options.weight_bits - 1)) - 1)
        largest = w.detach().abs().reshape(channels, -1).max(1).values
        w_scale = torch.where(largest > 0, largest.double() / top, torch.ones_like(largest.double()))  # per channel
        wq = round_away(w / w_scale.to(dtype).reshape(-1, *[1] * (w.dim() - 1)))
        acc_scale = w_scale * v.scale  # C++: in.scale * q.scale[c]
        bias = round_away(m.bias.to(dtype) / acc_scale.to(dtype)) if m.bias is not None else torch.zeros(channels, dtype=dtype)
        weight_sums = wq.reshape(channels, -1).sum(1)
        src, x_lo, x_hi = v.q, v.range[0], v.range[1]
        if isinstance(m, nn.Conv2d):
            padded = any(p > 0 for p in m.padding)
            if padded and v.zero != 0:
                src, x_lo, x_hi = src - v.zero, x_lo - v.zero, x_hi - v.zero
            else:
                bias = bias - v.zero * weight_sums
            acc = F.conv2d(src.to(dtype), wq, bias, m.stride, m.padding, m.dilation, m.groups)
            element_scale = np.broadcast_to(acc_scale.numpy()[:, None, None], acc.shape[1:]).copy()
        else:
            bias = bias - v.zero * weight_sums
            # A 1x1 convolution: Debian torch's matrix product is the slow reference BLAS.
            acc = F.conv2d(src.to(dtype)[:, :, None, None], wq[:, :, None, None], bias).flatten(1)
            element_scale = acc_scale.numpy().copy()
        if calibrate:
            ranges.record(name, acc.detach().double() * torch.from_numpy(element_scale))
        # The compiler's range: the worst case over inputs, cut to the calibrated one.
        wd = wq.detach().double().reshape(channels, -1)
        bd = bias.detach().double()
        lo = int((bd + torch.minimum(wd * x_lo, wd * x_hi).sum(1)).min())
        hi = int((bd + torch.maximum(wd * x_lo, wd * x_hi).sum(1)).max())
        a_lo, a_hi = self._assumed_range(name, element_scale, ranges)
        return Value(acc, element_scale, 0, False, name, (max(lo, a_lo), min(hi, a_hi)))

    # QuantizedNet::accumulator
    def _assumed_range(self, name: str, element_scale: np.ndarray, ranges: Ranges) -> tuple[int, int]:
        r = ranges.elements[name].astype(np.float64)
        s = element_scale.reshape(-1)
        ok = (s != 0) & (r[:, 0] <= r[:, 1])
        ends = np.concatenate([r[ok, 0] / s[ok], r[ok, 1] / s[ok]])
        lo, hi = min(0.0, float(ends.min())), max(0.0, float(ends.max()))
        margin = fma(self.options.range_margin, hi - lo, 1.0)
        return math.floor(lo - margin), math.ceil(hi + margin)

    # QuantizedNet::apply_tables with the compiler's LookupPlan (rounding, wrap)
    def _table(self, v: Value, range_of: str, bits: int, f, ranges: Ranges, exact: bool, calibrate: bool,
               noise: torch.Generator | None) -> Value:
        plan = LookupPlan.for_range(v.range[0], v.range[1], self.options.rounding_bits)
        s = torch.as_tensor(v.scale, dtype=torch.float64 if exact else v.q.dtype)
        sigma = self.options.noise_sigma if noise is not None else 0.0
        j = plan.index(v.q.detach(), sigma * torch.randn(v.q.shape, generator=noise, dtype=v.q.dtype) if sigma else None)
        if exact:
            boxes = 1 << plan.precision
            box = torch.remainder(j, 2 * boxes)
            negated = box >= boxes
            j = torch.clamp(torch.where(negated, box - boxes, box), max=plan.used - 1)
            y = f(s * (plan.input_of(j) - v.zero))
        else:
            j = torch.clamp(j, 0, plan.used - 1)
            y = f(s * (straight_through(v.q, plan.input_of(j)) - v.zero))
        if calibrate:
            ranges.record(range_of, y)
        to = Quantizer.for_range(*ranges.whole[range_of], bits)
        out = to.quantize(y)
        if exact:
            out = torch.where(negated, -out, out)
        # The table's output range: every entry of every table (one per distinct scale).
        entries = plan.input_of(torch.arange(plan.used, dtype=torch.float64))
        table = to.quantize(f(torch.as_tensor(np.unique(np.asarray(v.scale, dtype=np.float64)))[:, None] * (entries - v.zero)))
        return Value(out, to.scale, to.zero, True, range_of, (int(table.min()), int(table.max())))


def output_digest(levels: np.ndarray) -> str:
    """FNV-1a (64-bit) over the outputs as little-endian int64, image by image: what
    tests/test_qat.cpp computes from run_clear."""
    h = 0xcbf29ce484222325
    for byte in levels.astype("<i8").tobytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# ---- Training --------------------------------------------------------------------------

def load_float_weights(model: nn.Module, path: Path) -> None:
    """The float model's initializers, by name (train_classifier.py names them after the
    parameters)."""
    initializers = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = set(state) - set(initializers)
    if missing:
        raise SystemExit(f"{path}: no initializers for {sorted(missing)}: train it with tools/train_classifier.py")
    model.load_state_dict({k: initializers[k] for k in state})


@torch.no_grad()
def calibrate(qm: IntegerModel, x: torch.Tensor) -> Ranges:
    ranges = Ranges()
    qm.forward(x, ranges, exact=True, calibrate=True)
    return ranges


@torch.no_grad()
def integer_outputs(qm: IntegerModel, x: torch.Tensor, ranges: Ranges, noise: torch.Generator | None = None) -> np.ndarray:
    return torch.cat([qm.forward(x[i:i + 2000], ranges, exact=True, noise=noise)[1].q
                      for i in range(0, len(x), 2000)]).long().numpy()


def train(qm: IntegerModel, x, y, calibration_x, args, log) -> Ranges:
    gen = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.AdamW(qm.model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    total = args.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(1, total))))
    ranges = calibrate(qm, calibration_x)
    if total == 0:
        return ranges
    step = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=gen)
        loss_sum, start = 0.0, time.time()
        for i in range(0, len(x), args.batch_size):
            if step % args.recalibrate_every == 0:
                ranges = calibrate(qm, calibration_x)  # the ranges export will use, kept current
            idx = order[i:i + args.batch_size]
            batch = tc.augment(x[idx], args.augment, gen)
            logits, _ = qm.forward(batch, ranges, exact=False, noise=gen)
            loss = F.cross_entropy(logits, y[idx], label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss) * len(idx)
            step += 1
        log(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / len(x):.4f} ({time.time() - start:.1f} s)")
    return calibrate(qm, calibration_x)


def import_weights(out: Path, source: Path) -> None:
    """<out>.weights by tools/onnx_import.py. QAT changes weights, not the graph: the import
    must give the float model's header byte for byte, so C++ code keeps using it."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "onnx_import.py"), str(out), "--name",
                        source.stem, "--out-dir", tmp], check=True, stdout=subprocess.DEVNULL)
        # Past its first line, which names the ONNX file.
        graph = lambda path: path.read_text().split("\n", 1)[1]  # noqa: E731
        if graph(Path(tmp) / (source.stem + ".hpp")) != graph(source.with_suffix(".hpp")):
            raise SystemExit(f"{out}: its graph differs from {source}'s: QAT must keep the architecture")
        shutil.copyfile(Path(tmp) / (source.stem + ".weights"), out.with_suffix(".weights"))


def write_recipe(path: Path, ranges: Ranges, options: Options, samples: int) -> None:
    tensors = {}
    for name, (lo, hi) in ranges.whole.items():
        tensors[f"range/{name}"] = np.array([lo, hi], dtype=np.float32)
        tensors[f"element_ranges/{name}"] = ranges.elements[name].astype(np.float32)
    for key, value in options.as_recipe().items():
        if float(np.float32(value)) != float(value):
            raise SystemExit(f"--{key.replace('_', '-')} {value} is not exact in float32")
        tensors[f"option/{key}"] = np.array([value], dtype=np.float32)
    tensors["calibration/samples"] = np.array([samples], dtype=np.float32)
    onnx_import.write_weight_file(str(path), tensors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(FLOAT_MODELS), required=True)
    parser.add_argument("--from", dest="source", help="the float ONNX model to fine-tune "
                        "(default: the committed one of the dataset)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", help="default models/<dataset>/<dataset>_qat.onnx; the rest goes beside it")
    parser.add_argument("--input-bits", type=int, default=8)
    parser.add_argument("--weight-bits", type=int, default=5)
    parser.add_argument("--activation-bits", type=int, default=6)
    parser.add_argument("--output-bits", type=int, default=8)
    parser.add_argument("--rounding-bits", type=int, default=6, help="bits each bootstrap reads (CompileOptions)")
    parser.add_argument("--error-probability", type=float, default=0.0,
                        help="CompileOptions::error_probability the model will compile with: training draws each "
                             "table's noise at the largest level the compiler allows there (0: no noise); stored "
                             "in the recipe")
    parser.add_argument("--range-margin", type=float, default=0.125)
    parser.add_argument("--calibration", type=int, default=10000, help="first N training images")
    parser.add_argument("--recalibrate-every", type=int, default=50, help="steps between range updates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--augment", choices=sorted(tc.AUGMENTATIONS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    arch, default_source = FLOAT_MODELS[args.dataset]
    args.augment = args.augment or tc.DEFAULT_AUGMENTATION[args.dataset]
    if args.label_smoothing is None:
        args.label_smoothing = tc.DEFAULT_LABEL_SMOOTHING[args.dataset]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    repo = fhe_datasets.REPO_ROOT
    source = Path(args.source) if args.source else repo / default_source
    out = Path(args.out) if args.out else repo / DEFAULT_OUTPUTS[args.dataset]
    log = lambda message: print(f"[qat {args.dataset}] {message}", flush=True)  # noqa: E731
    if not 0 <= args.error_probability < 0.5:
        raise SystemExit("--error-probability must be in [0, 0.5)")
    options = Options(args.input_bits, args.weight_bits, args.activation_bits, args.output_bits, args.rounding_bits,
                      args.range_margin, args.error_probability)

    train_images, train_labels = fhe_datasets.load_split(args.dataset, "train", args.data_dir)
    test_images, test_labels = fhe_datasets.load_split(args.dataset, "t10k", args.data_dir)
    x, y = tc.to_tensor(train_images), torch.from_numpy(train_labels.astype(np.int64))
    x_test = tc.to_tensor(test_images)
    calibration_x = x[:args.calibration]

    model = tc.ARCHITECTURES[arch][0]()
    load_float_weights(model, source)
    model.eval()
    qm = IntegerModel(model, options)
    float_accuracy = tc.accuracy(model, x_test, torch.from_numpy(test_labels.astype(np.int64)))
    ptq = integer_outputs(qm, x_test, calibrate(qm, calibration_x))
    ptq_accuracy = float((ptq.argmax(1) == test_labels).mean())
    log(f"{source.name}: float {float_accuracy:.4f}, integer before QAT {ptq_accuracy:.4f} ({options})")

    start = time.time()
    ranges = train(qm, x, y, calibration_x, args, log)
    train_seconds = time.time() - start
    model.eval()
    outputs = integer_outputs(qm, x_test, ranges)
    qat_accuracy = float((outputs.argmax(1) == test_labels).mean())
    float_after = tc.accuracy(model, x_test, torch.from_numpy(test_labels.astype(np.int64)))
    log(f"integer test accuracy after QAT {qat_accuracy:.4f} (its float weights alone: {float_after:.4f}, "
        f"{train_seconds:.0f} s)")
    noisy_accuracy = None
    if options.error_probability:
        noisy = integer_outputs(qm, x_test, ranges, torch.Generator().manual_seed(args.seed + 1))
        noisy_accuracy = float((noisy.argmax(1) == test_labels).mean())
        log(f"with every table at the largest noise p = {options.error_probability} allows "
            f"({options.noise_sigma:.3f} of a box): {noisy_accuracy:.4f}")

    tc.export_onnx(model, out)
    tc.check_onnx_graph(out)
    import_weights(out, repo / default_source)
    write_recipe(out.with_suffix(".quantization"), ranges, options, len(calibration_x))
    command = "/usr/bin/python3 tools/qat.py " + shlex.join(sys.argv[1:])
    summary = {
        "dataset": args.dataset,
        "architecture": arch,
        "fine_tuned_from": str(source.relative_to(repo)) if source.is_relative_to(repo) else str(source),
        "header": Path(default_source).stem + ".hpp",
        "quantization": options.as_recipe(),
        "calibration_images": len(calibration_x),
        "epochs": args.epochs,
        "optimizer": f"AdamW lr {args.lr} weight decay {args.weight_decay}, cosine to 0",
        "augmentation": tc.AUGMENTATIONS[args.augment],
        "label_smoothing": args.label_smoothing,
        "seed": args.seed,
        "float_test_accuracy_before": float_accuracy,
        "integer_test_accuracy_before": ptq_accuracy,
        "float_test_accuracy": float_after,
        "clear_test_accuracy": qat_accuracy,
        "test_images": len(test_labels),
        "clear_output_digest": output_digest(outputs),
        "torch_version": torch.__version__,
        "threads": args.threads,
        "train_seconds": round(train_seconds),
        "command": command,
    }
    if noisy_accuracy is not None:
        summary["worst_noise_test_accuracy"] = noisy_accuracy
    summary_path = out.with_suffix(".json")
    if args.epochs == 0 and summary_path.exists():
        # A re-export: the training it records is the one that made these weights.
        previous = json.loads(summary_path.read_text())
        for key in ("fine_tuned_from", "epochs", "optimizer", "augmentation", "label_smoothing", "seed",
                    "float_test_accuracy_before", "integer_test_accuracy_before", "threads", "train_seconds", "command"):
            if key in previous:
                summary[key] = previous[key]
        summary["reexported_by"] = command
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {out.with_suffix('')}.{{onnx,weights,quantization,json}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
