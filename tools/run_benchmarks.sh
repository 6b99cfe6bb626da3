#!/usr/bin/env bash
# Runs bench_ops (5 repetitions, medians) and prints the Markdown tables of
# docs/benchmarks.md. Usage: tools/run_benchmarks.sh [build-dir] [benchmark-filter-regex]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
filter=${2:-.}
out=${build}/bench_results.json
"${build}/bench/bench_ops" --benchmark_filter="${filter}" --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_out="${out}" --benchmark_out_format=json >&2
python3 tools/bench_to_markdown.py "${out}"
