#!/usr/bin/env bash
# Installs every Debian 12 package fhetensor needs to build, test and benchmark.
# Idempotent: apt-get skips what is already installed. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libboost-dev          # Boost.Hana
  libxtensor-dev        # clear tensors
  libfftw3-dev          # reference FFT backend
  libsodium-dev         # CSPRNG (ChaCha20) for keys, masks and noise
  catch2                # unit tests (v2, single header)
  libcereal-dev         # serialization
  libbenchmark-dev      # bench/
  python3               # tools/bench_to_markdown.py
  zlib1g-dev            # fhetensor::io: gzipped idx datasets
  python3-numpy python3-torch python3-onnx   # tools/train_classifier.py
  python3-matplotlib    # tools/plot_accuracy_bits.py
  python3-pil           # tools/imagenet_qat.py: JPEG decoding
  libonnx-testdata      # ONNX operator test cases
  dataset-fashion-mnist # Fashion-MNIST idx files (MNIST itself is in ../shared/data)
  libcli11-dev          # the fhetensor command-line tool
  libpng-dev libjpeg62-turbo-dev   # fhetensor::image: PNG and JPEG inputs
  clang libclang-rt-14-dev         # libFuzzer targets, AddressSanitizer/UBSan builds
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "fhetensor: all build dependencies are installed"
