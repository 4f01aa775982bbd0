#!/usr/bin/env bash
# bench/resnet8/run.sh: ResNet-8 on Fashion-MNIST (examples/resnet8.cpp) next to PyTorch
# (../shared/peers/torch_resnet8.py), one run at a time on this machine. Each run appends one JSON
# line to bench/resnet8/results.jsonl (with the commit, date, CPU and run); bench/summarize_runs.py then
# rewrites bench/RESNET8.md (mean, SD and n of the final test accuracy per run kind, and the
# median training speed, ctnn and PyTorch measured in the same invocation).
#
#   bash bench/resnet8/run.sh [--epochs N] [--own-epochs N] [--seeds "1 2 3"]
#                             [--runs "ctnn:torch pytorch:torch ctnn:own"] [--limit N]
#
# Runs: ctnn:torch   ctnn at the peer's recipe (examples/resnet8_torch: Adam 1e-3, batch 32, no
#                    augmentation), --epochs
#       pytorch:torch the peer itself, --epochs, 2 torch threads with OPENBLAS_NUM_THREADS=1 (its
#                     best configuration here) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset
#       ctnn:own     ctnn's own recipe (examples/resnet8.cpp's header), --own-epochs
# Defaults: 15 epochs (the peer's figures), own 20, seeds 1 2 3, all three runs. Both cores are
# used by each run; run nothing else meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=${CTNN_PEERS:-$root/../shared/peers}
epochs=15
own_epochs=20
seeds="1 2 3"
runs="ctnn:torch pytorch:torch ctnn:own"
limit=60000
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --own-epochs) own_epochs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    *) echo "usage: $0 [--epochs N] [--own-epochs N] [--seeds \"1 2 3\"] [--runs \"...\"] [--limit N]" >&2
       exit 2 ;;
  esac
done

build=$root/build-bench-resnet8
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF \
      -DCTNN_BUILD_BENCH=OFF > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target resnet8 resnet8_torch -j2 > /dev/null
results=$root/bench/resnet8/results.jsonl
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- include examples || echo "+")
cpu=$(grep -m1 -E '^cpu family' /proc/cpuinfo | awk '{print $NF}')/$(grep -m1 -E '^model\s' /proc/cpuinfo | awk '{print $NF}')
invocation=$(date -u +%Y%m%dT%H%M%SZ)

for run in $runs; do
  impl=${run%%:*}
  recipe=${run#*:}
  for seed in $seeds; do
    echo "== $run, seed $seed ($(date -u +%H:%M:%S))"
    case "$impl" in
      ctnn)
        e=$epochs
        [ "$recipe" = own ] && e=$own_epochs
        program=$build/examples/resnet8
        [ "$recipe" = torch ] && program=$build/examples/resnet8_torch
        line=$("$program" --epochs "$e" --seed "$seed" \
                 --limit "$limit" --quiet --json | tail -n 1) ;;
      pytorch)
        [ "$recipe" = torch ] || { echo "pytorch runs only its own (torch) recipe" >&2; exit 2; }
        line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
                 /usr/bin/python3 "$peers/torch_resnet8.py" --epochs "$epochs" --threads 2 \
                 --seed "$seed" --limit "$limit" | tail -n 1) ;;
      *) echo "unknown run $run" >&2; exit 2 ;;
    esac
    echo "$line"
    python3 - "$line" "$run" "$seed" "$commit" "$cpu" "$invocation" >> "$results" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update({"run": sys.argv[2], "seed": int(sys.argv[3]), "commit": sys.argv[4], "cpu": sys.argv[5],
          "invocation": sys.argv[6]})
print(json.dumps(r))
PY
  done
done
python3 "$root/bench/summarize_runs.py" "$results" "$root/bench/RESNET8.md" \
  "ResNet-8 on Fashion-MNIST: ctnn and PyTorch" bench/resnet8/run.sh \
  "each run's best epoch (fastest epoch)"
