#!/usr/bin/env bash
# run_example.sh: builds the Fashion-MNIST example (Release, in build/) and runs it; arguments go
# to the example, e.g. scripts/run_example.sh --epochs 1 --limit 10000.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --no-clang
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target fashion_mnist
exec build/examples/fashion_mnist "$@"
