#!/usr/bin/env bash
# Accuracy of the tutorial-04 models against the bits a bootstrap reads (rounding_bits), in
# float, clear integers and simulate over the full test sets, then the plot:
#   tools/accuracy_vs_bits.sh [build-dir] [out.png]
set -euo pipefail
build=${1:-build}
png=${2:-docs/accuracy_vs_bits.png}
csv=$(mktemp --suffix=.csv)
trap 'rm -f "$csv"' EXIT
echo "dataset,bits,mode,accuracy" > "$csv"
for dataset in mnist fashion; do
  for bits in 3 4 5 6 7 8; do
    "$build/examples/example_04_mnist" "$dataset" --encrypted 0 --rounding-bits "$bits" --csv "$csv" |
      grep -E "^over" | sed "s/^/$dataset, $bits bits: /"
  done
done
/usr/bin/python3 tools/plot_accuracy_bits.py "$csv" "$png"
