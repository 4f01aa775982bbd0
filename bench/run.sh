#!/usr/bin/env bash
# run.sh: ctnn's seed model next to its peers (PyTorch, dlib, OpenBLAS), in one sequential run on
# this machine, written up in bench/RESULTS.md.
#
#   bash bench/run.sh           the full run (about 16 minutes on 2 cores, plus any wait)
#   bash bench/run.sh --quick   a smoke test of the script: short runs, no wait for a quiet
#                               machine, written to build-bench/RESULTS.quick.md instead
#   bash bench/run.sh --report  only rewrites the results file from the last run's logs
#                               (build-bench/logs), e.g. after a change to the report's layout
#
# Steps: install the missing Debian packages (apt-get, only when some are missing); build the
# dlib and sgemm peers into /tmp; wait until the machine is quiet (no fashion_mnist process and a
# 1-minute load below 0.8, polled every 30 s for up to 25 minutes, then run anyway and say so);
# build seed_bench, quantize_bench and cost_bench in Release into build-bench/ (after the wait, so
# they measure the headers as they are then, and the commit is recorded); then, one at a time:
# ctnn at 1 and 2 threads (step loop with Adam fused and separate, whole fit() epochs, inference,
# kernels), PyTorch at 1 and 2 threads (OPENBLAS_NUM_THREADS=1, its best training config, plus
# OpenBLAS at its default for comparison) and dlib with OpenBLAS at 1 and default threads, each
# one whole epoch of the 60,000 training images; int8 (quantize_bench) at 1 and 2 threads; the
# machine's ceilings (OpenBLAS sgemm at 1 and 2 threads, reading a cached 3 MB and 11 MB array,
# and an uncached 64 MB one); the cost rows (cost_bench beside bench/peers/torch_cost.py and
# bench/peers/dlib_cost.cpp, measured the same way: warm windows, medians) for the seed model at
# batch 8, 32, 128 and 512, a wider CNN and ResNet-8; and the compile times of
# examples/fashion_mnist.cpp, examples/resnet8.cpp and a one-layer program on the single header.
# The machine is shared and noisy: only figures from the same run are compared.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
peers=${CTNN_PEERS:-$root/../shared/peers}  # ../shared beside the clone, as in CI
build=$root/build-bench
logs=$build/logs
quick=0
report_only=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  --report) report_only=1; source "$logs/meta.sh" ;;  # sets quick and the run's times
  *) echo "usage: $0 [--quick | --report]" >&2; exit 2 ;;
esac
if [ $quick -eq 1 ]; then
  logs=$build/logs-quick  # a smoke test never overwrites the logs of a full run
  out=$build/RESULTS.quick.md
  bench_args=(--quick)
  train_limit=2000      # PyTorch and dlib: training images per (single) epoch
  cost_windows=1        # cost rows: windows per run
else
  out=$root/bench/RESULTS.md
  bench_args=()
  train_limit=60000
  cost_windows=5
fi

if [ $report_only -eq 0 ]; then  # the measured run (--report skips to the write-up)
t_start=$(date +%s)

# ---- packages ----
packages=(cmake g++ make pkg-config time python3 libhwy-dev zlib1g-dev dataset-fashion-mnist
          python3-torch python3-numpy libdlib-dev libopenblas-dev)
missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg -s "$p" 2>/dev/null || true) != *"Status: install ok installed"* ]]; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  echo "run.sh: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# ---- the peers, built as the peers' README says ----
mkdir -p "$logs"
rm -f "$logs"/*
g++ -std=c++17 -O3 -march=native "$peers/dlib_seed_cnn.cpp" -o /tmp/dlib_seed_cnn \
  $(pkg-config --cflags --libs dlib-1) -lz
cc -O2 "$peers/sgemm_ceiling.c" -o /tmp/sgemm_ceiling -lopenblas
gcc -O3 -march=native -ffast-math -funroll-loops -fvariable-expansion-in-unroller -fopenmp \
  "$peers/cache_read_floor.c" -o /tmp/cache_read_floor
g++ -std=c++17 -O3 -march=native "$root/bench/peers/dlib_cost.cpp" -o /tmp/dlib_cost \
  $(pkg-config --cflags --libs dlib-1) -lz

# ---- wait for a quiet machine ----
wait_note="none needed"
if [ $quick -eq 0 ]; then
  t_wait=$(date +%s)
  while :; do
    busy=$(pgrep -f fashion_mnist | tr '\n' ' ' || true)
    load=$(cut -d' ' -f1 /proc/loadavg)
    if [ -z "$busy" ] && awk -v l="$load" 'BEGIN { exit !(l < 0.8) }'; then
      waited=$(( $(date +%s) - t_wait ))
      [ $waited -gt 0 ] && wait_note="waited ${waited} s for a quiet machine (load then $load)"
      break
    fi
    if [ $(( $(date +%s) - t_wait )) -ge 1500 ]; then
      wait_note="machine still busy after 25 min (1-min load $load; fashion_mnist pids: ${busy:-none}); ran anyway"
      break
    fi
    echo "run.sh: waiting for a quiet machine (load $load, fashion_mnist pids: ${busy:-none})"
    sleep 30
  done
fi
echo "run.sh: $wait_note"

# ---- seed_bench, built after the wait so that it measures the headers as they are now ----
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF \
  -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=ON >"$logs/cmake.log"
cmake --build "$build" --target seed_bench quantize_bench cost_bench -j 2 >>"$logs/cmake.log" 2>&1 ||
  { tail -40 "$logs/cmake.log"; exit 1; }
ctnn_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
ctnn_dirty=$(git -C "$root" status --porcelain -- include bench/seed_bench.cpp bench/cost_bench.cpp bench/quantize_bench.cpp bench/CMakeLists.txt 2>/dev/null | wc -l)
t_measure=$(date +%s)

# ---- measurements, strictly one at a time ----
# step NAME COMMAND: runs COMMAND with bash, stdout/stderr to logs/NAME.{out,err}, and appends to
# steps.tsv: name, wall seconds, exit code, 1-minute load before and after (which include this
# run's own previous step), fashion_mnist pids seen, the share of the machine's CPU time used by
# other processes during the step (all busy time in /proc/stat minus the step's own user+sys) and
# the share stolen by the hypervisor, in percent, and the exact command.
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }  # busy, steal
# User + sys seconds of this shell's finished children. `times` must run in this shell, not in a
# $(...) subshell (whose counts start at zero), hence the file.
child_cpu() {
  times >"$logs/times.txt"
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; ++i) { split($i, a, "m"); t += a[1] * 60 + a[2] } print t }' \
    "$logs/times.txt"
}
step() {
  local name=$1 cmd=$2 t0 t1 rc load0 others ticks0 ticks1 own0 own1
  load0=$(cut -d' ' -f1 /proc/loadavg)
  others=$(pgrep -f fashion_mnist | tr '\n' ' ' || true)
  echo "run.sh: [$name] $cmd"
  child_cpu >"$logs/own.txt"
  own0=$(<"$logs/own.txt")
  ticks0=$(cpu_ticks)
  t0=$(date +%s%N)
  set +e
  (cd "$root" && bash -c "$cmd") >"$logs/$name.out" 2>"$logs/$name.err"
  rc=$?
  set -e
  t1=$(date +%s%N)
  ticks1=$(cpu_ticks)
  child_cpu >"$logs/own.txt"
  own1=$(<"$logs/own.txt")
  local wall other steal
  read -r wall other steal < <(awk -v t0="$t0" -v t1="$t1" -v a="$ticks0" -v b="$ticks1" \
    -v o0="$own0" -v o1="$own1" -v hz="$hz" -v n="$ncpu" 'BEGIN {
      split(a, x, " "); split(b, y, " "); wall = (t1 - t0) / 1e9
      other = ((y[1] - x[1]) / hz - (o1 - o0)) / (wall * n) * 100; if (other < 0) other = 0
      printf "%.1f %.1f %.1f\n", wall, other, (y[2] - x[2]) / hz / (wall * n) * 100 }')
  printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$wall" "$rc" "$load0" \
    "$(cut -d' ' -f1 /proc/loadavg)" "${others:-}" "$other" "$steal" "$cmd" >>"$logs/steps.tsv"
  [ $rc -eq 0 ] || echo "run.sh: [$name] failed with exit code $rc (see $logs/$name.err)"
}
sb=build-bench/bench/seed_bench
# Peers and ceilings run with OpenBLAS's own core detection: this environment's OPENBLAS_CORETYPE
# (and OPENBLAS_L2_SIZE) would hold it to its Haswell kernels on an AVX-512 machine. Only these
# commands lose them (seed_bench's kernel table uses OpenBLAS as a yardstick too); tests and CI
# never change them.
ob="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
step ctnn_t1 "$ob OMP_NUM_THREADS=1 $sb --threads 1 ${bench_args[*]:-}"
step ctnn_t2 "$ob OMP_NUM_THREADS=2 $sb --threads 2 ${bench_args[*]:-}"
tp="/usr/bin/python3 $peers/torch_seed_cnn.py --epochs 1 --limit $train_limit"
step torch_t1_ob1 "$ob OPENBLAS_NUM_THREADS=1 $tp --threads 1"
step torch_t2_ob1 "$ob OPENBLAS_NUM_THREADS=1 $tp --threads 2"
step torch_t1_obdef "$ob $tp --threads 1"
step dlib_ob1 "$ob OPENBLAS_NUM_THREADS=1 /tmp/dlib_seed_cnn 1 $train_limit"
step dlib_obdef "$ob /tmp/dlib_seed_cnn 1 $train_limit"
qb=build-bench/bench/quantize_bench
step int8_t1 "OMP_NUM_THREADS=1 $qb --threads 1"
step int8_t2 "OMP_NUM_THREADS=2 $qb --threads 2"
step sgemm_t1 "$ob OPENBLAS_NUM_THREADS=1 /tmp/sgemm_ceiling 2048"
step sgemm_t2 "$ob OPENBLAS_NUM_THREADS=2 /tmp/sgemm_ceiling 2048"
for t in 1 2; do
  step floor3_t$t "OMP_NUM_THREADS=$t /tmp/cache_read_floor 3"
  step floor11_t$t "OMP_NUM_THREADS=$t /tmp/cache_read_floor 11"
done
step bw64_t2 "OMP_NUM_THREADS=2 /tmp/cache_read_floor 64"
# Cost rows: model, batch, images per window, threads. PyTorch at its best training setting
# (OPENBLAS_NUM_THREADS=1), dlib at its best (OPENBLAS_NUM_THREADS=1).
cb=build-bench/bench/cost_bench
tc="/usr/bin/python3 bench/peers/torch_cost.py --peers $peers"
for row in "seed 32 3200 1" "seed 8 3200 2" "seed 32 3200 2" "seed 128 3200 2" "seed 512 6144 2" \
           "wide 32 1600 2" "resnet8 32 3200 2"; do
  read -r m b wi t <<<"$row"
  tag=${m}_b${b}_t${t}
  step cost_ctnn_$tag "$ob OMP_NUM_THREADS=$t $cb --model $m --batch $b --threads $t --windows $cost_windows --window-images $wi"
  step cost_torch_$tag "$ob OPENBLAS_NUM_THREADS=1 $tc --model $m --batch $b --threads $t --windows $cost_windows --window-images $wi"
  if [ "$m" != resnet8 ]; then
    step cost_dlib_$tag "$ob OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$t /tmp/dlib_cost $m $b $cost_windows $wi"
  fi
done
compile="g++ -std=c++20 -O2 -march=native -fopenmp -DHWY_COMPILE_ONLY_STATIC=1 -I include examples/fashion_mnist.cpp -o /tmp/ctnn_fashion_mnist_compile -lz"
step compile "/usr/bin/time -f '%e s wall, %U s user, %M KB max RSS' $compile"
compile_resnet8="g++ -std=c++20 -O2 -march=native -fopenmp -DHWY_COMPILE_ONLY_STATIC=1 -I include examples/resnet8.cpp -o /tmp/ctnn_resnet8_compile -lz"
step compile_resnet8 "/usr/bin/time -f '%e s wall, %U s user, %M KB max RSS' $compile_resnet8"
compile_single="g++ -std=c++20 -O2 -march=native -fopenmp -DHWY_COMPILE_ONLY_STATIC=1 -I single_include bench/one_layer.cpp -o /tmp/ctnn_one_layer_compile -lz"
step compile_single "/usr/bin/time -f '%e s wall, %U s user, %M KB max RSS' $compile_single"
t_end=$(date +%s)
printf 'quick=%q t_start=%q t_measure=%q t_end=%q wait_note=%q ctnn_commit=%q ctnn_dirty=%q\n' \
  "$quick" "$t_start" "$t_measure" "$t_end" "$wait_note" "$ctnn_commit" "$ctnn_dirty" >"$logs/meta.sh"
fi

# ---- RESULTS.md ----
python3 - "$logs" "$out" "$t_start" "$t_measure" "$t_end" "$wait_note" "$quick" "$train_limit" \
  "$ctnn_commit" "$ctnn_dirty" <<'PY'
import datetime, json, os, re, subprocess, sys

logs, out, t_start, t_measure, t_end, wait_note, quick, limit, commit, dirty = sys.argv[1:]
t_start, t_measure, t_end = int(t_start), int(t_measure), int(t_end)

steps = {}
for line in open(os.path.join(logs, "steps.tsv")):
    fields = line.rstrip("\n").split("\t")
    other_pct = steal_pct = None
    if len(fields) == 9:
        name, secs, rc, load0, load1, others, other_pct, steal_pct, cmd = fields
        other_pct, steal_pct = float(other_pct), float(steal_pct)
    else:  # logs written before run.sh measured the other processes' CPU share
        name, secs, rc, load0, load1, others, cmd = fields
    steps[name] = dict(secs=float(secs), rc=int(rc), load0=load0, load1=load1, others=others,
                       other_pct=other_pct, steal_pct=steal_pct, cmd=cmd)

def last_json(name):
    try:
        lines = [l for l in open(os.path.join(logs, name + ".out")) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None

J = {n: last_json(n) for n in steps}
ct1, ct2 = J.get("ctnn_t1"), J.get("ctnn_t2")
torch_runs = {n: J[n] for n in ("torch_t1_ob1", "torch_t2_ob1", "torch_t1_obdef") if J.get(n)}
dlib_runs = {n: J[n] for n in ("dlib_ob1", "dlib_obdef") if J.get(n)}

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""

cpu = {}
for line in open("/proc/cpuinfo"):
    if ":" in line:
        k, v = (s.strip() for s in line.split(":", 1))
        cpu.setdefault(k, v)
flags = set(cpu.get("flags", "").split())
fam, mod = int(cpu.get("cpu family", "0")), int(cpu.get("model", "0"))
if fam == 25:
    uarch = "Zen 3" if mod < 0x10 or 0x20 <= mod < 0x60 else "Zen 4"
elif fam == 26:
    uarch = "Zen 5"
else:
    uarch = "unknown"

def dpkg_version(pkg):
    return sh(f"dpkg-query -W -f='${{Version}}' {pkg}") or "?"

hwy_v, torch_v, dlib_v, ob_v = (dpkg_version(p) for p in
                                ("libhwy-dev", "python3-torch", "libdlib-dev", "libopenblas0-pthread"))
gxx = sh("g++ --version | head -1")
torch_peer = (next(iter(torch_runs.values()), None) or {}).get("peer", "?")

def f(v, fmt="{:,.0f}"):
    return "n/a" if v is None else fmt.format(v)

def ratio(a, b, fmt="{:.2f}x"):
    return "n/a" if a is None or b is None or b == 0 else fmt.format(a / b)

def get(d, k):
    return None if d is None else d.get(k)

def best(runs, key, lower=False):
    vals = [(r[key], n) for n, r in runs.items() if r.get(key) is not None]
    if not vals:
        return None, None
    return (min if lower else max)(vals)

torch_label = {"torch_t1_ob1": "PyTorch 1 thr, OB=1", "torch_t2_ob1": "PyTorch 2 thr, OB=1",
               "torch_t1_obdef": "PyTorch 1 thr, OB default"}
dlib_label = {"dlib_ob1": "dlib, OB=1", "dlib_obdef": "dlib, OB default"}

tr1, tr2 = get(ct1, "train_images_per_s"), get(ct2, "train_images_per_s")
pt1 = get(torch_runs.get("torch_t1_ob1"), "train_images_per_s")
pt_best, pt_best_n = best(torch_runs, "train_images_per_s")
pt_b1, pt_b1_n = best(torch_runs, "infer_b1_median_us", lower=True)
pt_b256, pt_b256_n = best(torch_runs, "infer_b256_images_per_s")
dl_tr, dl_tr_n = best(dlib_runs, "train_images_per_s")
dl_b1, dl_b1_n = best(dlib_runs, "infer_b1_median_us", lower=True)
dl_b256, dl_b256_n = best(dlib_runs, "infer_b256_images_per_s")
dl1 = get(dlib_runs.get("dlib_ob1"), "train_images_per_s")
dldef = get(dlib_runs.get("dlib_obdef"), "train_images_per_s")
pt2 = get(torch_runs.get("torch_t2_ob1"), "train_images_per_s")
c_b1 = min([v for v in (get(ct1, "infer_b1_median_us"), get(ct2, "infer_b1_median_us")) if v], default=None)
c_b256 = max([v for v in (get(ct1, "infer_b256_images_per_s"), get(ct2, "infer_b256_images_per_s")) if v], default=None)
scaling = None if not tr1 or not tr2 else tr2 / tr1

L = []
w = L.append
w("# Seed model benchmark: ctnn vs PyTorch vs dlib" + (" (QUICK smoke run, not a result)" if quick == "1" else ""))
w("")
w("Written by `bench/run.sh` (do not edit by hand; rerun it). One sequential run on one machine: "
  "only figures from the same run are compared, since the machine is shared and noisy.")
w("")
w(f"- Date: {datetime.datetime.fromtimestamp(t_start).strftime('%Y-%m-%d %H:%M')} (local), "
  f"run.sh total {t_end - t_start} s, of which measurements {t_end - t_measure} s; wait: {wait_note}")
w(f"- CPU: {cpu.get('model name', '?')}, {os.cpu_count()} cores, CPUID family {fam} model {mod} "
  f"stepping {cpu.get('stepping', '?')} ({uarch}); flags: avx2 {'yes' if 'avx2' in flags else 'no'}, "
  f"fma {'yes' if 'fma' in flags else 'no'}, avx512f {'yes' if 'avx512f' in flags else 'no'}")
w(f"- ctnn at commit {commit}" + (f" plus uncommitted changes in {dirty} of the files it is built from (include/, bench/seed_bench.cpp, bench/CMakeLists.txt)"
  if dirty != "0" else " (the files it is built from unmodified)") + " when seed_bench was built")
w(f"- ctnn: Highway target {get(ct1, 'simd_target') or '?'} (libhwy-dev {hwy_v}), "
  f"{gxx}, seed_bench built with CMake Release (-O3 -march=native)")
w(f"- Peers: {torch_peer} (python3-torch {torch_v}), dlib (libdlib-dev {dlib_v}), "
  f"OpenBLAS {ob_v} (core {get(ct1, 'openblas_core') or '?'}). "
  f"In the table below PyTorch and dlib train one whole epoch of the first {int(limit):,} training images "
  f"(the peers' own programs, a cold epoch: their statistic, not ctnn's); their batch-1 and "
  f"batch-256 figures come from the same runs (the scripts' own inference measurements, unchanged). "
  f"The cost rows further down measure all three the same way (warm windows, medians).")
loads = ", ".join(f"{n} {s['load0']}" for n, s in steps.items())
w(f"- 1-minute load average before each step: {loads}")
others = {n: s["others"] for n, s in steps.items() if s["others"].strip()}
if others:
    w(f"- **fashion_mnist processes were running during**: " + ", ".join(f"{n} (pids {o.strip()})" for n, o in others.items()))
measured = all(s["other_pct"] is not None for s in steps.values())
if measured:
    w("- CPU time taken by other processes during each step (share of both cores) / stolen by the "
      "hypervisor: " + ", ".join(f"{n} {s['other_pct']:.0f}% / {s['steal_pct']:.0f}%" for n, s in steps.items()))
    busy = [n for n, s in steps.items() if s["other_pct"] + s["steal_pct"] >= 10]
    if busy:
        w(f"- **Warning: the machine was busy** (other processes or the hypervisor took 10% or more "
          f"of the CPU during {', '.join(busy)}): those figures are lowered by other work, the "
          "2-thread ones most (an OpenMP barrier waits for a descheduled thread).")
else:
    busy = [n for n, s in steps.items() if float(s["load0"]) >= 0.8]
    if busy:
        w(f"- **Warning**: the 1-minute load average was at or above 0.8 before {len(busy)} of "
          f"{len(steps)} steps. It includes this run's own previous step (a 2-thread step alone "
          "raises it by up to 2), and this run did not yet measure other processes' CPU share, so "
          "how much other work lowered these figures is not known.")
failed = [n for n, s in steps.items() if s["rc"] != 0]
if failed:
    w(f"- **Failed steps**: {', '.join(failed)} (see build-bench/logs/<step>.err)")
w("")

w("## ctnn vs peers")
w("")
w("PyTorch best = the best of its runs below for that figure; OB = OPENBLAS_NUM_THREADS. "
  "ctnn's inference columns are the better of its 1- and 2-thread runs.")
w("")
w("| Figure | ctnn | PyTorch | dlib | ctnn / PyTorch | ctnn / dlib |")
w("|---|---|---|---|---|---|")
w(f"| Training img/s, 1 thread | {f(tr1)} | {f(pt1)} (1 thr, OB=1) | {f(dl1)} (OB=1) | {ratio(tr1, pt1)} | {ratio(tr1, dl1)} |")
w(f"| Training img/s, 2 threads | {f(tr2)} | {f(pt_best)} (best: {torch_label.get(pt_best_n, '?')}) | {f(dldef)} (OB default = 2) | {ratio(tr2, pt_best)} | {ratio(tr2, dldef)} |")
w(f"| Scaling 1 -> 2 threads | {ratio(tr2, tr1)} | {ratio(pt2, pt1)} (OB=1) | {ratio(dldef, dl1)} | | |")
w(f"| Batch-1 latency, median µs (lower is better) | {f(get(ct1, 'infer_b1_median_us'), '{:.1f}')} (1 thr), {f(get(ct2, 'infer_b1_median_us'), '{:.1f}')} (2 thr) | {f(pt_b1, '{:.1f}')} ({torch_label.get(pt_b1_n, '?')}) | {f(dl_b1, '{:.1f}')} ({dlib_label.get(dl_b1_n, '?')}) | {ratio(pt_b1, c_b1, '{:.1f}x lower')} | {ratio(dl_b1, c_b1, '{:.1f}x lower')} |")
w(f"| Batch-256 inference img/s | {f(get(ct1, 'infer_b256_images_per_s'))} (1 thr), {f(get(ct2, 'infer_b256_images_per_s'))} (2 thr) | {f(pt_b256)} ({torch_label.get(pt_b256_n, '?')}) | {f(dl_b256)} ({dlib_label.get(dl_b256_n, '?')}) | {ratio(c_b256, pt_b256)} | {ratio(c_b256, dl_b256)} |")
w("")

w("Every peer run:")
w("")
w("| Run | train images | s/epoch | train img/s | test acc. (1 epoch) | b1 median µs | b256 img/s |")
w("|---|---|---|---|---|---|---|")
for n, r in list(torch_runs.items()) + list(dlib_runs.items()):
    lab = torch_label.get(n) or dlib_label.get(n)
    w(f"| {lab} | {r.get('train_images', 'n/a')} | {r.get('seconds_per_epoch', 'n/a')} | {f(r.get('train_images_per_s'))} | {r.get('test_accuracy', 'n/a')} | {f(r.get('infer_b1_median_us'), '{:.1f}')} | {f(r.get('infer_b256_images_per_s'))} |")
for n, r in (("ctnn 1 thr", ct1), ("ctnn 2 thr", ct2)):
    if r:
        wins = ", ".join(f"{v:,.0f}" for v in r.get("train_windows_images_per_s", []))
        w(f"| {n} | {len(r.get('train_windows_images_per_s', []))} windows x {r.get('train_steps_per_window')} steps x 32 ({wins}) | | {f(r.get('train_images_per_s'))} | (last window's training acc. {r.get('train_last_window_accuracy')}) | {f(r.get('infer_b1_median_us'), '{:.1f}')} | {f(r.get('infer_b256_images_per_s'))} |")
w("")

w("## The issue's targets")
w("")
def target(desc, val, goal, fmt="{:.2f}x"):
    state = "n/a" if val is None else ("**met**" if val >= goal else "**missed**")
    return f"| {desc} | {fmt.format(goal)} | {'n/a' if val is None else fmt.format(val)} | {state} |"
w("| Target | Goal | Measured | |")
w("|---|---|---|---|")
w(target("Training at 2 threads vs PyTorch's best", None if not tr2 or not pt_best else tr2 / pt_best, 3.5))
w(target("Training at 1 thread vs PyTorch 1 thread (OB=1)", None if not tr1 or not pt1 else tr1 / pt1, 2.5))
w(target("ctnn scaling 1 -> 2 threads", scaling, 1.8))
w(target("Batch-1 latency below PyTorch's best (times lower)", None if not c_b1 or not pt_b1 else pt_b1 / c_b1, 5.0))
w(target("Batch-256 img/s vs PyTorch's best", None if not c_b256 or not pt_b256 else c_b256 / pt_b256, 3.0))
w(target("Batch-256 img/s vs dlib's best", None if not c_b256 or not dl_b256 else c_b256 / dl_b256, 1.5))
w("")

# ---- issue 15: the same statistic on both sides, fit(), int8, the machine limit, cost rows ----
C = {n[len("cost_"):]: r for n, r in J.items() if n.startswith("cost_") and r}
def cost(who, tag):
    return get(C.get(f"{who}_{tag}"), "train_images_per_s")
s1, s2 = J.get("sgemm_t1"), J.get("sgemm_t2")
ceil1, ceil2 = get(s1, "gflops"), get(s2, "gflops")
bw = get(J.get("bw64_t2"), "gb_per_s")
arena = get(ct2, "arena_floats")
seed_flops = get(C.get("ctnn_seed_b32_t2"), "train_flops_per_image")
seed_fwd_flops = 2.0 * (26 * 26 * 32 * 9 + 21632 * 128 + 128 * 10)
limit_ips = limit_text = None
if seed_flops and ceil2 and bw and arena:
    t_flop = seed_flops / (ceil2 * 1e9)
    opt_bytes = 6 * 4 * arena / 32  # w, m, v read and written once per step, per image of a batch of 32
    t_opt = opt_bytes / (bw * 1e9)
    limit_ips = 1.0 / (t_flop + t_opt)
    limit_text = (f"{seed_flops / 1e6:.1f} MFLOP per training image at the 2-thread sgemm ceiling "
                  f"({ceil2:.1f} GFLOP/s): {t_flop * 1e6:.1f} µs; plus the optimizer's unavoidable traffic "
                  f"(w, m, v read and written once per step: 6 x 4 B x {arena:,} / 32 = {opt_bytes / 1e6:.2f} MB "
                  f"per image) at the uncached read bandwidth measured here ({bw:.1f} GB/s, 64 MB array, "
                  f"2 threads): {t_opt * 1e6:.1f} µs; so at most {limit_ips:,.0f} training images/s")
fit1, fit2 = get(ct1, "fit_images_per_s"), get(ct2, "fit_images_per_s")
loop1, loop2 = get(ct1, "epoch_loop_images_per_s_median"), get(ct2, "epoch_loop_images_per_s_median")
sep1, sep2 = get(ct1, "train_separate_update_images_per_s"), get(ct2, "train_separate_update_images_per_s")
q1, q2 = J.get("int8_t1"), J.get("int8_t2")
def qrow(q, k, field):
    return get(get(get(q, "rows"), k), field)
int8_b1 = {t: qrow(q, "int8", "b1_us") for t, q in ((1, q1), (2, q2))}
int8_bytes = get(q2, "int8_weight_bytes") or get(q1, "int8_weight_bytes")
floor_us = {}
for t in (1, 2):
    fl = J.get(f"floor3_t{t}")
    if fl and int8_bytes:
        floor_us[t] = fl["best_us"] * int8_bytes / (fl["mb"] * 1024 * 1024)
b1_pairs = [(int8_b1[t] / floor_us[t], t) for t in (1, 2) if int8_b1.get(t) and floor_us.get(t)]
b1_ratio, b1_t = min(b1_pairs) if b1_pairs else (None, None)
int8_b256 = {t: qrow(q, "int8", "b256_images_per_s") for t, q in ((1, q1), (2, q2))}
fp32_b256q = {t: qrow(q, "fp32", "b256_images_per_s") for t, q in ((1, q1), (2, q2))}
b256_pairs = [(int8_b256[t] / fp32_b256q[t], t) for t in (1, 2) if int8_b256.get(t) and fp32_b256q.get(t)]
b256_ratio, b256_t = max(b256_pairs) if b256_pairs else (None, None)
b256_share = None if not get(ct2, "infer_b256_images_per_s") or not ceil2 else \
    get(ct2, "infer_b256_images_per_s") * seed_fwd_flops / (ceil2 * 1e9)

w("## Issue 15: the second performance step")
w("")
w("Measured the same way on every side: warm windows after a warm-up, the median of the windows "
  "(ctnn's seed_bench and cost_bench, PyTorch's and dlib's cost programs in bench/peers/); peers at "
  "their best settings (OPENBLAS_NUM_THREADS=1 for both, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
  "unset for every peer and ceiling command).")
w("")
if limit_text:
    w(f"**Machine limit (seed model, 2 threads)**: {limit_text}. ctnn's step loop reaches {f(tr2)} "
      f"images/s = **{tr2 / limit_ips * 100:.0f}%** of it.")
    adam_bw = get(ct2, "adam_gbps")
    if adam_bw:  # a stricter limit: the 11 MB streams partly fit the L3, as Adam's own pass shows
        strict = 1.0 / (seed_flops / (ceil2 * 1e9) + 6 * 4 * arena / 32 / (adam_bw * 1e9))
        w(f"A stricter limit takes the bandwidth ctnn's own Adam pass reaches over its 7 arena-sized "
          f"streams ({adam_bw:.1f} GB/s, above the uncached figure because part of the 11 MB arrays "
          f"stays in the L3): {strict:,.0f} images/s, of which ctnn reaches {tr2 / strict * 100:.0f}%.")
    w("")
w("| Goal | Target | Measured | |")
w("|---|---|---|---|")
def goal(desc, val, target, shown, ok):
    state = "n/a" if val is None else ("**met**" if ok else "**missed**")
    return f"| {desc} | {target} | {shown if val is not None else 'n/a'} | {state} |"
share = None if not tr2 or not limit_ips else tr2 / limit_ips
w(goal("Training at 2 threads, share of the machine limit", share, ">= 80%", f"{(share or 0) * 100:.0f}% ({f(tr2)} of {f(limit_ips)} img/s)", share is not None and share >= 0.8))
w(goal("Scaling 1 -> 2 threads (step loop)", scaling, ">= 1.90x", f"{(scaling or 0):.2f}x", scaling is not None and scaling >= 1.9))
fr = None if not fit2 or not loop2 else fit2 / loop2
w(goal("Whole fit() epoch vs the step loop (2 threads; same run, interleaved)", fr, ">= 0.95", f"{(fr or 0):.3f} ({f(fit2)} vs {f(loop2)} img/s; {60000 / fit2 if fit2 else 0:.2f} s per epoch)", fr is not None and fr >= 0.95))
fr1 = None if not fit1 or not loop1 else fit1 / loop1
w(goal("Whole fit() epoch vs the step loop (1 thread)", fr1, ">= 0.95", f"{(fr1 or 0):.3f} ({f(fit1)} vs {f(loop1)} img/s)", fr1 is not None and fr1 >= 0.95))
w(goal("int8 batch-1 vs the cache-read time of its weights", b1_ratio, "<= 1.5x", f"{(b1_ratio or 0):.2f}x ({int8_b1.get(b1_t) or 0:.1f} µs vs {floor_us.get(b1_t, 0):.1f} µs for {int8_bytes or 0:,} bytes, {b1_t} thr)", b1_ratio is not None and b1_ratio <= 1.5))
w(goal("int8 batch-256 vs fp32 batch-256 (quantize_bench, same run)", b256_ratio, ">= 2.5x", f"{(b256_ratio or 0):.2f}x ({f(int8_b256.get(b256_t))} vs {f(fp32_b256q.get(b256_t))} img/s, {b256_t} thr)", b256_ratio is not None and b256_ratio >= 2.5))
w(goal("Batch-256 fp32 inference, share of the sgemm ceiling (2 threads)", b256_share, ">= 60%", f"{(b256_share or 0) * 100:.0f}% ({f(get(ct2, 'infer_b256_images_per_s'))} img/s x {seed_fwd_flops / 1e6:.2f} MFLOP = {(b256_share or 0) * (ceil2 or 0):.0f} of {f(ceil2, '{:.0f}')} GFLOP/s)", b256_share is not None and b256_share >= 0.6))
rows = [r for r in ("seed_b32_t1", "seed_b8_t2", "seed_b32_t2", "seed_b128_t2", "seed_b512_t2", "wide_b32_t2", "resnet8_b32_t2")]
worst = [(cost("ctnn", r) / cost("torch", r), r) for r in rows if cost("ctnn", r) and cost("torch", r)]
wr, wn = min(worst) if worst else (None, None)
w(goal("Every cost row at least 3x PyTorch", wr, ">= 3.00x on each", f"lowest {(wr or 0):.2f}x ({wn})", wr is not None and wr >= 3.0))
fu = None if not tr2 or not sep2 else tr2 / sep2
w(f"| Adam fused into backward vs a separate pass (2 threads, interleaved windows) | faster | {(fu or 0):.3f} ({f(tr2)} vs {f(sep2)} img/s; 1 thread {ratio(tr1, sep1, '{:.3f}')}) | {'**met**' if fu and fu > 1.0 else '**not faster**'} |")
w("")
w("### Cost as the work grows (training images/s, medians of warm windows)")
w("")
w("Each row: ctnn's `cost_bench`, PyTorch's `bench/peers/torch_cost.py` and dlib's "
  "`bench/peers/dlib_cost.cpp`, one after the other, the same model, batch, data order, optimizer "
  "and statistic. GFLOP/s counts the training FLOPs per image (forward, weight gradient, input "
  "gradient but the first layer's); the ceiling is the OpenBLAS sgemm 2048³ at that thread count.")
w("")
w("| Model | batch | threads | ctnn | PyTorch | dlib | ctnn / PyTorch | ctnn / dlib | ctnn GFLOP/s | % of ceiling |")
w("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    c, t, d = cost("ctnn", r), cost("torch", r), cost("dlib", r)
    cr = C.get(f"ctnn_{r}") or {}
    if not (c or t or d):
        continue
    m, b, th = r.split("_")
    th = int(th[1:])
    gf = None if not c or not cr.get("train_flops_per_image") else c * cr["train_flops_per_image"] / 1e9
    ce = ceil1 if th == 1 else ceil2
    w(f"| {m} | {b[1:]} | {th} | {f(c)} | {f(t)} | {f(d) if m != 'resnet8' else 'cannot express'} | {ratio(c, t)} | {ratio(c, d)} | {f(gf, '{:.0f}')} | {ratio(gf, ce, '{:.0%}') if gf and ce else 'n/a'} |")
w("")

w("## Kernels at the seed shapes (GFLOP/s, medians)")
w("")
w("ctnn's kernel next to OpenBLAS `cblas_sgemm` at the same M, N, K and transposes, at the same "
  "thread count (measured after ctnn's, in the same process). ctnn's dense forward includes its fused "
  "bias + ReLU epilogue; OpenBLAS's does not. The conv rows time the whole bound layer "
  "`Model::layer<0>::forward/backward` on a batch of 32 (im2col, GEMM, bias/ReLU, per-sample "
  "weight-gradient sums; backward has no dx at layer 0), counted as 2 M N K with M = 32 x 676, "
  "N = 32, K = 9; OpenBLAS there is the bare im2col GEMM on all 32 samples at once.")
w("")
w("Roofline: each kernel's achieved GFLOP/s against the ceiling (the sgemm 2048³ figure at the same thread count) in the \"% of ceiling\" columns.")
w("")
w("| Kernel | M | N | K | ctnn 1 thr | OpenBLAS 1 thr | ratio | % of ceiling | ctnn 2 thr | OpenBLAS 2 thr | ratio | % of ceiling |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|")
k1, k2 = (get(ct1, "kernels") or {}), (get(ct2, "kernels") or {})
for name in (k1 or k2):
    a, b = k1.get(name, {}), k2.get(name, {})
    r = a or b
    w(f"| {name} | {r['m']} | {r['n']} | {r['k']} | {f(a.get('ctnn_gflops'), '{:.1f}')} | {f(a.get('openblas_gflops'), '{:.1f}')} | {ratio(a.get('ctnn_gflops'), a.get('openblas_gflops'))} | {ratio(a.get('ctnn_gflops'), ceil1, '{:.0%}')} | {f(b.get('ctnn_gflops'), '{:.1f}')} | {f(b.get('openblas_gflops'), '{:.1f}')} | {ratio(b.get('ctnn_gflops'), b.get('openblas_gflops'))} | {ratio(b.get('ctnn_gflops'), ceil2, '{:.0%}')} |")
w(f"| OpenBLAS sgemm 2048³ (ceiling) | 2048 | 2048 | 2048 | | {f(ceil1, '{:.1f}')} | | | | {f(ceil2, '{:.1f}')} | | |")
w("")
w(f"Adam over the {f(get(ct1, 'arena_floats'))}-float arena (7 streams: reads w, g, m, v; writes w, m, v): "
  f"{f(get(ct1, 'adam_us'), '{:.0f}')} µs = {f(get(ct1, 'adam_gbps'), '{:.1f}')} GB/s at 1 thread, "
  f"{f(get(ct2, 'adam_us'), '{:.0f}')} µs = {f(get(ct2, 'adam_gbps'), '{:.1f}')} GB/s at 2 threads "
  f"(memory-bound: against the read bandwidth of a cached 11 MB array, {f(get(J.get('floor11_t1'), 'gb_per_s'), '{:.0f}')} / {f(get(J.get('floor11_t2'), 'gb_per_s'), '{:.0f}')} GB/s at 1 / 2 threads, and of an uncached 64 MB one, {f(bw, '{:.0f}')} GB/s at 2).")
w("")
w(f"Batch-1 inference floors (reading the weights once from cache): fp32's 11 MB {f(get(J.get('floor11_t1'), 'best_us'), '{:.1f}')} / {f(get(J.get('floor11_t2'), 'best_us'), '{:.1f}')} µs at 1 / 2 threads (ctnn {f(get(ct1, 'infer_b1_median_us'), '{:.1f}')} / {f(get(ct2, 'infer_b1_median_us'), '{:.1f}')} µs); int8's {int8_bytes or 0:,} bytes {floor_us.get(1, 0):.1f} / {floor_us.get(2, 0):.1f} µs (ctnn int8 {int8_b1.get(1) or 0:.1f} / {int8_b1.get(2) or 0:.1f} µs).")
w("")

w("## Compile time")
w("")
def compile_time(name):
    cs = steps.get(name)
    if not cs:
        return "not run"
    try:
        return [l.strip() for l in open(os.path.join(logs, name + ".err")) if "wall" in l][-1]
    except (OSError, IndexError):
        return f"failed (exit {cs['rc']})"
w(f"`examples/fashion_mnist.cpp`, one g++ -O2 compile and link: {compile_time('compile')}.")
w("")
w(f"`examples/resnet8.cpp` (the own recipe's program: one ResNet-8 type, training, evaluation, int8), one g++ -O2 compile and link: {compile_time('compile_resnet8')}.")
w("")
w(f"`bench/one_layer.cpp` (a one-layer program on the single header `single_include/ctnn.hpp`), one g++ -O2 compile and link: {compile_time('compile_single')}.")
w("")

w("## Commands (in this order, from the repository root, one at a time)")
w("")
w("```sh")
w("g++ -std=c++17 -O3 -march=native $PEERS/dlib_seed_cnn.cpp -o /tmp/dlib_seed_cnn $(pkg-config --cflags --libs dlib-1) -lz")
w("cc -O2 $PEERS/sgemm_ceiling.c -o /tmp/sgemm_ceiling -lopenblas")
w("gcc -O3 -march=native -ffast-math -funroll-loops -fvariable-expansion-in-unroller -fopenmp $PEERS/cache_read_floor.c -o /tmp/cache_read_floor")
w("g++ -std=c++17 -O3 -march=native bench/peers/dlib_cost.cpp -o /tmp/dlib_cost $(pkg-config --cflags --libs dlib-1) -lz")
w("# (wait for a quiet machine)")
w("cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=ON")
w("cmake --build build-bench --target seed_bench quantize_bench cost_bench -j 2")
for n, s in steps.items():
    w(f"{s['cmd']}    # {n}: {s['secs']:.0f} s, exit {s['rc']}")
w("```")
w("")
w("## Raw JSON lines")
w("")
w("```")
for n, r in J.items():
    if r is not None:
        w(f"{n}: {json.dumps(r)}")
w("```")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L[:60]))
PY
echo "run.sh: wrote $out; total $(( t_end - t_start )) s"
