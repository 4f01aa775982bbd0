#!/usr/bin/env bash
# run.sh: ctnn's seed model next to its peers (PyTorch, dlib, OpenBLAS), in one sequential run on
# this machine, written up in bench/RESULTS.md.
#
#   bash bench/run.sh           the full run (about 6 minutes on 2 cores, plus any wait)
#   bash bench/run.sh --quick   a smoke test of the script: short runs, no wait for a quiet
#                               machine, written to build-bench/RESULTS.quick.md instead
#   bash bench/run.sh --report  only rewrites the results file from the last run's logs
#                               (build-bench/logs), e.g. after a change to the report's layout
#
# Steps: install the missing Debian packages (apt-get, only when some are missing); build the
# dlib and sgemm peers into /tmp; wait until the machine is quiet (no fashion_mnist process and a
# 1-minute load below 0.8, polled every 30 s for up to 25 minutes, then run anyway and say so);
# build seed_bench in Release into build-bench/ (after the wait, so it measures the headers as
# they are then, and the commit is recorded); then, one at a time: ctnn at 1 and 2 threads,
# PyTorch at 1 and 2 threads (OPENBLAS_NUM_THREADS=1, its best training config, plus OpenBLAS at
# its default for comparison), dlib with OpenBLAS at 1 and default threads, the OpenBLAS sgemm
# ceiling at 1 and 2 threads, and the compile times of examples/fashion_mnist.cpp,
# examples/resnet8.cpp and a one-layer program on the single header (bench/one_layer.cpp).
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
else
  out=$root/bench/RESULTS.md
  bench_args=()
  train_limit=20000
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
cmake --build "$build" --target seed_bench -j 2 >>"$logs/cmake.log" 2>&1 ||
  { tail -40 "$logs/cmake.log"; exit 1; }
ctnn_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
ctnn_dirty=$(git -C "$root" status --porcelain -- include bench/seed_bench.cpp bench/CMakeLists.txt 2>/dev/null | wc -l)
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
step sgemm_t1 "$ob OPENBLAS_NUM_THREADS=1 /tmp/sgemm_ceiling 2048"
step sgemm_t2 "$ob OPENBLAS_NUM_THREADS=2 /tmp/sgemm_ceiling 2048"
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
  f"PyTorch and dlib train one epoch on the first {int(limit):,} training images; their batch-1 and "
  f"batch-256 figures come from the same runs (the scripts' own inference measurements, unchanged).")
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

w("## Kernels at the seed shapes (GFLOP/s, medians)")
w("")
w("ctnn's kernel next to OpenBLAS `cblas_sgemm` at the same M, N, K and transposes, at the same "
  "thread count (measured after ctnn's, in the same process). ctnn's dense forward includes its fused "
  "bias + ReLU epilogue; OpenBLAS's does not. The conv rows time the whole bound layer "
  "`Model::layer<0>::forward/backward` on a batch of 32 (im2col, GEMM, bias/ReLU, per-sample "
  "weight-gradient sums; backward has no dx at layer 0), counted as 2 M N K with M = 32 x 676, "
  "N = 32, K = 9; OpenBLAS there is the bare im2col GEMM on all 32 samples at once.")
w("")
w("| Kernel | M | N | K | ctnn 1 thr | OpenBLAS 1 thr | ratio | ctnn 2 thr | OpenBLAS 2 thr | ratio |")
w("|---|---|---|---|---|---|---|---|---|---|")
k1, k2 = (get(ct1, "kernels") or {}), (get(ct2, "kernels") or {})
for name in (k1 or k2):
    a, b = k1.get(name, {}), k2.get(name, {})
    r = a or b
    w(f"| {name} | {r['m']} | {r['n']} | {r['k']} | {f(a.get('ctnn_gflops'), '{:.1f}')} | {f(a.get('openblas_gflops'), '{:.1f}')} | {ratio(a.get('ctnn_gflops'), a.get('openblas_gflops'))} | {f(b.get('ctnn_gflops'), '{:.1f}')} | {f(b.get('openblas_gflops'), '{:.1f}')} | {ratio(b.get('ctnn_gflops'), b.get('openblas_gflops'))} |")
s1, s2 = J.get("sgemm_t1"), J.get("sgemm_t2")
w(f"| OpenBLAS sgemm 2048³ (ceiling) | 2048 | 2048 | 2048 | | {f(get(s1, 'gflops'), '{:.1f}')} | | | {f(get(s2, 'gflops'), '{:.1f}')} | |")
w("")
w(f"Adam over the {f(get(ct1, 'arena_floats'))}-float arena (7 streams: reads w, g, m, v; writes w, m, v): "
  f"{f(get(ct1, 'adam_us'), '{:.0f}')} µs = {f(get(ct1, 'adam_gbps'), '{:.1f}')} GB/s at 1 thread, "
  f"{f(get(ct2, 'adam_us'), '{:.0f}')} µs = {f(get(ct2, 'adam_gbps'), '{:.1f}')} GB/s at 2 threads.")
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
w(f"`examples/resnet8.cpp` (two ResNet-8 model types, training, evaluation, int8), one g++ -O2 compile and link: {compile_time('compile_resnet8')}.")
w("")
w(f"`bench/one_layer.cpp` (a one-layer program on the single header `single_include/ctnn.hpp`), one g++ -O2 compile and link: {compile_time('compile_single')}.")
w("")

w("## Commands (in this order, from the repository root, one at a time)")
w("")
w("```sh")
w("g++ -std=c++17 -O3 -march=native $PEERS/dlib_seed_cnn.cpp -o /tmp/dlib_seed_cnn $(pkg-config --cflags --libs dlib-1) -lz")
w("cc -O2 $PEERS/sgemm_ceiling.c -o /tmp/sgemm_ceiling -lopenblas")
w("# (wait for a quiet machine)")
w("cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCTNN_BUILD_TESTS=OFF -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=ON")
w("cmake --build build-bench --target seed_bench -j 2")
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
