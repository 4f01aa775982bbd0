#!/usr/bin/env bash
# bench/accuracy/run.sh: the seed model's test accuracy over many seeds, ctnn next to PyTorch, to
# tell the spread between seeds from a difference between implementations. Each run is a full
# 10-epoch training on the 60,000 Fashion-MNIST training images, scored on the 10,000 test images.
#
#   bench/accuracy/run.sh [--seeds "1 2 3"] [--runs "ctnn:keras ctnn:torch pytorch:torch pytorch:keras"]
#                         [--threads N] [--out FILE]
# A run is IMPL:INIT: ctnn or pytorch; keras (Glorot uniform kernels, zero biases: Keras's defaults,
# ctnn's defaults, the seed example) or torch (PyTorch's defaults). Every result is appended to
# FILE (default bench/accuracy/results.jsonl) as one JSON line; bench/accuracy/summarize.py turns
# the file into bench/ACCURACY.md. Runs are sequential; give each a core of its own (accuracy does
# not depend on timing: ctnn's training is bitwise the same at any thread count).
# Costs on a 2-core Zen 3, 1 thread: ctnn ~5 min per run, PyTorch ~13 min per run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seeds="1 2 3"
runs="ctnn:keras ctnn:torch pytorch:torch pytorch:keras"
threads=1
out=bench/accuracy/results.jsonl
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "run.sh: unknown option $1 (use --seeds, --runs, --threads, --out)" >&2; exit 2 ;;
  esac
done

need_ctnn=0; need_torch=0
for r in $runs; do
  case "$r" in
    ctnn:keras|ctnn:torch) need_ctnn=1 ;;
    pytorch:keras|pytorch:torch) need_torch=1 ;;
    *) echo "run.sh: unknown run '$r' (ctnn:keras, ctnn:torch, pytorch:keras, pytorch:torch)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh --no-clang
if [[ $need_torch == 1 ]]; then
  for p in python3-torch python3-numpy; do
    dpkg -s "$p" >/dev/null 2>&1 || { echo "run.sh: installing $p" >&2; sudo_cmd=""; [[ $(id -u) == 0 ]] || sudo_cmd=sudo; $sudo_cmd apt-get install -y "$p"; }
  done
  [[ -f ../shared/peers/torch_seed_cnn.py ]] || { echo "run.sh: ../shared/peers/torch_seed_cnn.py is missing (PyTorch runs import it)" >&2; exit 1; }
fi
if [[ $need_ctnn == 1 ]]; then
  cmake -S . -B build-accuracy -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF \
    -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=ON >/dev/null
  cmake --build build-accuracy --target seed_accuracy -j2
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
for s in $seeds; do
  for r in $runs; do
    impl=${r%%:*}; init=${r##*:}
    if [[ $impl == ctnn ]]; then
      line=$(OMP_NUM_THREADS=$threads build-accuracy/bench/seed_accuracy --seed "$s" --init "$init" --threads "$threads")
    else
      line=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads /usr/bin/python3 bench/accuracy/torch_seed_runs.py \
               --seed "$s" --init "$init" --threads "$threads")
    fi
    line="${line%\}}, \"commit\": \"$commit\", \"cpu\": \"$cpu\", \"date\": \"$(date -u +%Y-%m-%dT%H:%M)\"}"
    echo "$line" | tee -a "$out"
  done
done
