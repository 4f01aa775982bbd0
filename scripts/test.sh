#!/usr/bin/env bash
# test.sh: what CI runs (.ci/run). Builds ctnn's tests three ways and runs ctest on each build:
#   g++      Release: every test, the long ones (label long:            build/
#            Fashion-MNIST training) included; the examples, the bench,
#            the aarch64 (qemu) and Cortex-M4 cross builds
#   clang    clang++ with -fsanitize=address,undefined, -O1, without     build-clang/
#            the long tests, no examples: every other test (compile-fail
#            cases with clang's diagnostics too) and the fuzz targets'
#            short runs (ctest -L fuzz)
#   tsan     g++, -fsanitize=thread, -O1: only the tests labelled tsan   build-tsan/
# (Until 2026-12 clang++ Release and g++ ASan were two phases; one clang build with the
# sanitizers keeps both checks, each test compiled by clang and run under ASan+UBSan, in one
# build instead of two.)
#
#   scripts/test.sh           all three
#   scripts/test.sh --quick   the g++ build only
#
# CTNN_BUILD_ROOT=<dir> puts the build directories under <dir> instead of the repository root.
# Every phase runs even when an earlier one failed; the summary at the end lists each phase, and
# the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
build_root=${CTNN_BUILD_ROOT:-$root}

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,19p' scripts/test.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $arg (use --quick)" >&2; exit 2 ;;
  esac
done

if [ $quick -eq 1 ]; then setup_args=(--no-clang); else setup_args=(); fi
if ! bash scripts/setup.sh "${setup_args[@]}"; then
  echo "test.sh: scripts/setup.sh failed; not building." >&2
  exit 1
fi

summary=()
failures=0
total_start=$SECONDS

# CPU seconds (user + system) of the finished child processes of this script, from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($16 + $17) / hz }' "/proc/$$/stat" 2>/dev/null ||
    echo 0
}

# phase <name> <build dir> <ctest options...> -- <cmake configure options...>: configure,
# build (-j2), ctest (-j2). A phase whose ctest selects no test fails. Its line in the summary
# gives the wall time and the CPU time (which a loaded machine inflates less).
phase() {
  local name=$1 dir=$2
  shift 2
  local ctest_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
  shift
  local start=$SECONDS start_cpu step=""
  start_cpu=$(cpu_seconds)
  echo
  echo "==== $name: $dir ===="
  if ! cmake -S "$root" -B "$dir" "$@"; then
    step=configure
  elif ! cmake --build "$dir" -j2; then
    step=build
  elif ! (cd "$dir" && ctest --output-on-failure -j2 --timeout 900 --no-tests=error \
                             "${ctest_args[@]}"); then
    step=ctest
  fi
  # A fuzz run cut short by its time limit passes: say so here, not only in the test's log.
  if [ -f "$dir/Testing/Temporary/LastTest.log" ]; then
    grep -h '^fuzz summary:' "$dir/Testing/Temporary/LastTest.log" || true
  fi
  local seconds=$((SECONDS - start)) cpu=$(($(cpu_seconds) - start_cpu)) status="passed"
  if [ -n "$step" ]; then
    status="FAILED ($step)"
    failures=$((failures + 1))
  fi
  summary+=("$(printf '  %-8s %-17s %5ds  cpu %5ds  %s' "$name" "$status" "$seconds" "$cpu" "$dir")")
  echo "==== $name: $status in ${seconds}s (cpu ${cpu}s) ===="
}

# The long tests, the bench and the cross-compiled deployment tests run once, in the g++ phase.
# ctest runs two tests at once (-j2) and each runs OpenMP teams of up to max_threads(): with
# libgomp's default waiting (spinning before sleeping) the idle threads of one test take the
# cores the other needs. Passive waiting measured 16 s instead of 42-48 s for 73 training,
# graph, quantization and concurrency tests on the 2-core machine (set OMP_WAIT_POLICY to override).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

phase g++ "$build_root/build" -- -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++

if [ $quick -eq 0 ]; then
  # Sanitizer findings must fail the test that hit them, not scroll past. -O1 -g1: the
  # sanitizers' usual optimization, line numbers in the reports, and a much shorter build than
  # RelWithDebInfo. The packaging and single-header tests compile programs of their own with the
  # g++ phase's compiler and flags: they ran there already.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  phase clang "$build_root/build-clang" -E '^(cmake_import|single_include)' -- \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    -DCTNN_LONG_TESTS=OFF -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=OFF -DCTNN_CROSS_TESTS=OFF

  # ThreadSanitizer: only the tests labelled tsan are built and run (libgomp is not instrumented,
  # so they run ctnn with one OpenMP thread and make their own std::threads). A report stops the
  # test with exit code 66.
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1}
  phase tsan "$build_root/build-tsan" -L tsan -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=g++ "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer" -DCTNN_ONLY_LABEL=tsan \
    -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=OFF -DCTNN_CROSS_TESTS=OFF
fi

echo
echo "==== ctnn test summary ($((SECONDS - total_start))s in all, cpu $(cpu_seconds)s; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)) ===="
printf '%s\n' "${summary[@]}"
if [ $failures -ne 0 ]; then
  echo "$failures of ${#summary[@]} phases FAILED."
  exit 1
fi
echo "All ${#summary[@]} phases passed."
