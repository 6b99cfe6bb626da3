#!/usr/bin/env python3
"""Turns Google Benchmark JSON (bench_ops --benchmark_format=json with repetitions) into
the Markdown tables of docs/benchmarks.md: one row per benchmark with its median time, and
the side-by-side comparisons the project tracks (our FFT against FFTW, PBS throughput on
one and two threads).

    python3 tools/bench_to_markdown.py results.json > table.md
"""
import json
import re
import sys


def medians(data):
    """name -> (real_time, cpu_time, unit, counters) of each benchmark's median."""
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name", "median") != "median":
            continue
        name = b.get("run_name", b["name"])
        name = re.sub(r"/iterations:\d+", "", name)
        counters = {k: v for k, v in b.items() if k in ("items_per_second", "bootstrap_key_MiB", "keyswitch_key_MiB")}
        out[name] = (b["real_time"], b["cpu_time"], b["time_unit"], counters)
    return out


def fmt_time(t, unit):
    ns = t * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
    for name, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {name}"
    return f"{ns:.3g} ns"


def main():
    data = json.load(open(sys.argv[1]))
    m = medians(data)
    ctx = data["context"]
    print(f"Machine: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz; "
          f"{ctx.get('date', '')}; medians of the repetitions.\n")

    print("| benchmark | median (wall) | median (CPU) | notes |\n|---|---|---|---|")
    for name, (real, cpu, unit, counters) in m.items():
        notes = []
        if "items_per_second" in counters:
            notes.append(f"{counters['items_per_second']:.1f} PBS/s")
        for key in ("bootstrap_key_MiB", "keyswitch_key_MiB"):
            if key in counters:
                notes.append(f"{key.replace('_MiB', '')} {counters[key]:.1f} MiB")
        print(f"| {name} | {fmt_time(real, unit)} | {fmt_time(cpu, unit)} | {', '.join(notes)} |")

    ratios = []
    for name in m:
        hit = re.fullmatch(r"polymul/ours/(\d+)", name)
        if hit and f"polymul/fftw/{hit[1]}" in m:
            ratios.append((int(hit[1]), m[name][0] / m[f"polymul/fftw/{hit[1]}"][0]))
    if ratios:
        print("\n| N | polymul ours / FFTW (same run) |\n|---|---|")
        for n, r in sorted(ratios):
            print(f"| {n} | {r:.3f} |")

    scaling = []
    for name in m:
        hit = re.fullmatch(r"pbs_throughput/(\d+)/real_time/threads:1", name)
        two = f"pbs_throughput/{hit[1]}/real_time/threads:2" if hit else None
        if hit and two in m:
            one_rate = m[name][3].get("items_per_second")
            two_rate = m[two][3].get("items_per_second")
            if one_rate and two_rate:
                scaling.append((int(hit[1]), one_rate, two_rate))
    if scaling:
        print("\n| precision | PBS/s, 1 thread | PBS/s, 2 threads | speed-up |\n|---|---|---|---|")
        for p, one, two in sorted(scaling):
            print(f"| {p} | {one:.1f} | {two:.1f} | {two / one:.2f} |")


if __name__ == "__main__":
    main()
