#!/usr/bin/env bash
# bench/lstm/run.sh: LSTM(128) -> Dense(10) on Fashion-MNIST read as 28 rows of 28 pixels
# (examples/lstm_fashion_mnist.cpp) next to PyTorch's nn.LSTM (../shared/peers/torch_lstm_rows.py),
# the same model and recipe (Adam 1e-3, batch 32, no augmentation), one run at a time. Each run
# appends one JSON line to bench/lstm/results.jsonl (with the commit, CPU and invocation);
# bench/summarize_runs.py then rewrites bench/LSTM.md (accuracy mean, SD and n per run kind,
# median training speed, ctnn / fastest PyTorch).
#
#   bash bench/lstm/run.sh [--epochs N] [--seeds "1 2 3"] [--runs "ctnn:rows pytorch:rows:t1 pytorch:rows:t2"]
#
# Runs: ctnn:rows        ctnn, one run per seed, both cores (OpenMP)
#       pytorch:rows:tN  the peer with N torch threads (OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE
#                        and OPENBLAS_L2_SIZE unset for it only); its seed is fixed (42), so it runs
#                        once per thread count
# Speed on both sides: the median epoch's training images/s (whole epochs, the test evaluation
# after each epoch not counted). Defaults: 10 epochs, seeds 1 2 3. Run nothing else meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=${CTNN_PEERS:-$root/../shared/peers}
epochs=10
seeds="1 2 3"
runs="ctnn:rows pytorch:rows:t1 pytorch:rows:t2"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--epochs N] [--seeds \"1 2 3\"] [--runs \"...\"]" >&2; exit 2 ;;
  esac
done

build=$root/build-bench-lstm
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF \
      -DCTNN_BUILD_BENCH=OFF > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target lstm_fashion_mnist -j2 > /dev/null
results=$root/bench/lstm/results.jsonl
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- include examples || echo "+")
cpu=$(grep -m1 -E '^cpu family' /proc/cpuinfo | awk '{print $NF}')/$(grep -m1 -E '^model\s' /proc/cpuinfo | awk '{print $NF}')
invocation=$(date -u +%Y%m%dT%H%M%SZ)

record() {  # record <json line> <run> <seed>
  python3 - "$1" "$2" "$3" "$commit" "$cpu" "$invocation" >> "$results" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update({"run": sys.argv[2], "seed": int(sys.argv[3]), "commit": sys.argv[4], "cpu": sys.argv[5],
          "invocation": sys.argv[6]})
print(json.dumps(r))
PY
}

for run in $runs; do
  case "$run" in
    ctnn:rows)
      for seed in $seeds; do
        echo "== $run, seed $seed ($(date -u +%H:%M:%S))"
        line=$("$build/examples/lstm_fashion_mnist" --epochs "$epochs" --seed "$seed" --quiet --json | tail -n 1)
        echo "$line"
        record "$line" "$run" "$seed"
      done ;;
    pytorch:rows:t*)
      threads=${run##*:t}
      echo "== $run ($(date -u +%H:%M:%S))"
      line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
               /usr/bin/python3 "$peers/torch_lstm_rows.py" --epochs "$epochs" --threads "$threads" | tail -n 1)
      echo "$line"
      record "$line" "$run" 42 ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
  esac
done
python3 "$root/bench/summarize_runs.py" "$results" "$root/bench/LSTM.md" \
  "LSTM on Fashion-MNIST rows: ctnn and PyTorch" bench/lstm/run.sh \
  "each run's median epoch"
