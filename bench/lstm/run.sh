#!/usr/bin/env bash
# bench/lstm/run.sh: LSTM(128) -> Dense(10) on Fashion-MNIST read as 28 rows of 28 pixels
# (examples/lstm_fashion_mnist.cpp) next to PyTorch's nn.LSTM (../shared/peers/torch_lstm_rows.py),
# the same model and recipe (Adam 1e-3, batch 32, no augmentation), one run at a time. Each run
# appends one JSON line to bench/lstm/results.jsonl (with the commit, CPU and invocation);
# bench/summarize_runs.py then rewrites bench/LSTM.md (accuracy mean, SD and n per run kind,
# median training speed, ctnn / fastest PyTorch).
#
#   bash bench/lstm/run.sh [--epochs N] [--seeds "1 2 3"]
#                          [--runs "ctnn:rows pytorch:rows:t1 pytorch:rows:t2 latency"]
#
# Runs: ctnn:rows        ctnn, one run per seed, both cores (OpenMP)
#       pytorch:rows:tN  the peer with N torch threads (OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE
#                        and OPENBLAS_L2_SIZE unset for it only); its seed is fixed (42), so it runs
#                        once per thread count
#       pytorch:rows:tNenv  the same with the environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
#                        kept: on the Zen 5 here the unset run took 148 s per epoch and this one
#                        far less, so the comparison takes the faster (summarize_runs.py does)
#       latency          inference at RTNeural's sizes: bench/lstm_latency.cpp and the peer
#                        ../shared/peers/rtneural_lstm.cpp (its Eigen backend, Debian's
#                        libeigen3-dev and nlohmann-json3-dev; built with the flags its header
#                        gives), one thread each,
#                        alternating, 3 runs each; lines go to bench/lstm/latency.jsonl
# Speed on both sides: the median epoch's training images/s (whole epochs, the test evaluation
# after each epoch not counted). Defaults: 10 epochs, seeds 1 2 3. Run nothing else meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=${CTNN_PEERS:-$root/../shared/peers}
epochs=10
seeds="1 2 3"
runs="ctnn:rows pytorch:rows:t1 pytorch:rows:t2 latency"
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
      -DCTNN_BUILD_BENCH=ON > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target lstm_fashion_mnist lstm_latency -j2 > /dev/null
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
      unset_env=(-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
      if [[ $threads == *env ]]; then threads=${threads%env}; unset_env=(); fi
      echo "== $run ($(date -u +%H:%M:%S))"
      line=$(env "${unset_env[@]}" OPENBLAS_NUM_THREADS=1 \
               /usr/bin/python3 "$peers/torch_lstm_rows.py" --epochs "$epochs" --threads "$threads" | tail -n 1)
      echo "$line"
      record "$line" "$run" 42 ;;
    latency)
      if [ ! -x "$build/rtneural_lstm" ]; then
        g++ -std=c++17 -O3 -march=native -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=32 \
            -DEIGEN_STACK_ALLOCATION_LIMIT=0 -I "$peers/rtneural/RTNeural" -I /usr/include/eigen3 \
            "$peers/rtneural_lstm.cpp" -o "$build/rtneural_lstm"
      fi
      for rep in 1 2 3; do
        echo "== latency, run $rep ($(date -u +%H:%M:%S))"
        for prog in lstm_latency rtneural_lstm; do
          exe=$build/$prog
          [ "$prog" = lstm_latency ] && exe=$build/bench/lstm_latency
          line=$(OMP_NUM_THREADS=1 "$exe" | tail -n 1)
          echo "$line"
          python3 - "$line" "$rep" "$commit" "$cpu" "$invocation" >> "$root/bench/lstm/latency.jsonl" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update({"rep": int(sys.argv[2]), "commit": sys.argv[3], "cpu": sys.argv[4], "invocation": sys.argv[5]})
print(json.dumps(r))
PY
        done
      done ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
  esac
done
python3 "$root/bench/summarize_runs.py" "$results" "$root/bench/LSTM.md" \
  "LSTM on Fashion-MNIST rows: ctnn and PyTorch" bench/lstm/run.sh \
  "each run's median epoch"
# Inference beside RTNeural: per invocation, the median over its runs of each figure.
[ -f "$root/bench/lstm/latency.jsonl" ] && python3 - "$root/bench/lstm/latency.jsonl" >> "$root/bench/LSTM.md" <<'PY'
import json, statistics as st, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
inv = defaultdict(list)
for r in rows:
    inv[r["invocation"]].append(r)
print("\n# Inference beside RTNeural (one thread; bench/lstm_latency.cpp and ../shared/peers/rtneural_lstm.cpp)\n")
print("Median over the runs of each program's figure; the ratio is RTNeural's time over ctnn's.\n")
for k in sorted(inv):
    rs = inv[k]
    ours = [r for r in rs if r.get("impl") == "ctnn"]
    peer = [r for r in rs if "peer" in r]
    if not ours or not peer:
        continue
    m = lambda rows, key: st.median(r[key] for r in rows)
    seq_rt, step_rt = m(peer, "lstm128_seq28_median_us"), m(peer, "lstm16_step_ns")
    seq_s, seq_w, step_c = (m(ours, "lstm128_seq28_stream_median_us"),
                            m(ours, "lstm128_seq28_whole_median_us"), m(ours, "lstm16_step_ns"))
    print(f"## {k} (commit {rs[0]['commit']}, CPU family/model {rs[0]['cpu']}, ctnn {ours[0]['simd']}, "
          f"{len(ours)} + {len(peer)} runs)\n")
    print("| case | RTNeural | ctnn streamed | ctnn whole sequence | RTNeural / ctnn |")
    print("|---|---|---|---|---|")
    print(f"| LSTM(28->128) + Dense(10), 28-step sequence, median us | {seq_rt:.1f} | {seq_s:.1f} | "
          f"{seq_w:.1f} | {seq_rt / seq_s:.2f}x streamed, {seq_rt / seq_w:.2f}x whole |")
    print(f"| LSTM(16->16), one step, mean ns | {step_rt:.1f} | {step_c:.1f} | - | {step_rt / step_c:.2f}x |")
    print()
PY
