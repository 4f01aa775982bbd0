#!/usr/bin/env bash
# run_example.sh: builds an example (Release, in build/) and runs it; other arguments go to the
# example. Default: the Fashion-MNIST seed program, e.g. scripts/run_example.sh --epochs 1 --limit 10000.
#   --target NAME   another example: breast_cancer, diabetes (see examples/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=fashion_mnist
if [[ "${1:-}" == "--target" ]]; then
  [[ -n "${2:-}" ]] || { echo "run_example.sh: --target needs an example name" >&2; exit 2; }
  target=$2
  shift 2
fi
case "$target" in
  fashion_mnist|breast_cancer|diabetes) ;;
  *) echo "run_example.sh: unknown example '$target' (fashion_mnist, breast_cancer, diabetes)" >&2; exit 2 ;;
esac

bash scripts/setup.sh --no-clang
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target "$target"
exec "build/examples/$target" "$@"
