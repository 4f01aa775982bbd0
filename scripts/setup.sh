#!/usr/bin/env bash
# setup.sh: installs the Debian 12 packages ctnn needs to build, test and run its example, and
# only those that are missing (apt-get update runs only when something must be installed).
#
#   scripts/setup.sh            everything the tests need: also clang and libomp-dev (the clang
#                               build), and the cross tools of the deployment tests (aarch64 g++
#                               and qemu-user, arm-none-eabi g++ with newlib's libstdc++, and
#                               qemu-system-arm to run Cortex-M4 images)
#   scripts/setup.sh --no-clang the build tools and data only (what the examples need)
set -euo pipefail

packages=(cmake g++ make python3 libhwy-dev catch2 zlib1g-dev dataset-fashion-mnist
          libonnx-dev libprotobuf-dev libonnx-testdata)  # ONNX import and export (ctnn-onnx)
clang_packages=(clang libomp-dev)  # clang's OpenMP runtime
cross_packages=(g++-aarch64-linux-gnu qemu-user gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib
                qemu-system-arm)  # runs the Cortex-M4 images (an MPS2 AN386 board)

case "${1:-}" in
  "") packages+=("${clang_packages[@]}" "${cross_packages[@]}") ;;
  --no-clang) ;;
  *) echo "usage: $0 [--no-clang]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg -s "$p" 2>/dev/null || true)
  if [[ $status != *"Status: install ok installed"* ]]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed."
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: missing packages: ${missing[*]}; run as root or install sudo." >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
