#!/usr/bin/python3
"""Plots accuracy against bit width from a CSV with columns dataset, bits, mode, accuracy
(one row per measurement; other columns are ignored): one panel per dataset, one line per
mode (e.g. float, quantized, simulated, encrypted).

  /usr/bin/python3 tools/plot_accuracy_bits.py results.csv accuracy_bits.png

Baseline modes (--baseline, default "float"), whose bit width means nothing, are drawn as
a horizontal dashed line at their accuracy. Accuracy given in [0, 1] is shown in percent.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on build machines
import matplotlib.pyplot as plt  # noqa: E402

REQUIRED_COLUMNS = ("dataset", "bits", "mode", "accuracy")


def read_rows(path: Path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{path}: missing column(s) {', '.join(missing)} (have {reader.fieldnames})")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((row["dataset"].strip(), int(row["bits"]), row["mode"].strip(), float(row["accuracy"])))
            except (TypeError, ValueError) as error:
                raise SystemExit(f"{path}:{line}: {error}") from None
    if not rows:
        raise SystemExit(f"{path}: no data rows")
    return rows


def plot(rows, out: Path, title: str | None, baselines: set[str]) -> None:
    percent = all(0.0 <= r[3] <= 1.0 for r in rows)
    by_dataset: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for dataset, bits, mode, acc in rows:
        by_dataset[dataset][mode].append((bits, acc * 100 if percent else acc))
    datasets = list(by_dataset)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    all_bits = sorted({r[1] for r in rows if r[2] not in baselines} or {r[1] for r in rows})
    # One colour per mode, the same in every panel.
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    modes = list(dict.fromkeys(r[2] for r in rows))
    color = {mode: cycle[i % len(cycle)] for i, mode in enumerate(modes)}
    for ax, dataset in zip(axes[0], datasets):
        for mode, points in by_dataset[dataset].items():
            points.sort()
            bits = [p[0] for p in points]
            acc = [p[1] for p in points]
            if mode in baselines:
                ax.axhline(acc[-1], linestyle="--", linewidth=1.2, label=mode, color=color[mode])
            else:
                ax.plot(bits, acc, marker="o", label=mode, color=color[mode])
        ax.set_title(dataset)
        ax.set_xlabel("bit width")
        ax.set_ylabel("accuracy (%)" if percent else "accuracy")
        ax.set_xticks(all_bits)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--title")
    parser.add_argument("--baseline", action="append", help="a mode drawn as a horizontal line "
                        "(repeatable; default: float)")
    args = parser.parse_args()
    plot(read_rows(args.csv), args.png, args.title, set(args.baseline or ["float"]))
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
