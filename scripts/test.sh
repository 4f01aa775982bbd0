#!/usr/bin/env bash
# test.sh: what CI runs (.ci/run). Builds ctnn's tests and examples three ways and runs ctest on
# each build:
#   g++      Release                                              build/
#   clang++  Release                                              build-clang/
#   asan     g++, -fsanitize=address,undefined, RelWithDebInfo,   build-asan/
#            no examples
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
    -h|--help) sed -n '2,14p' scripts/test.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# phase <name> <build dir> <cmake configure options...>: configure, build (-j2), ctest (-j2).
phase() {
  local name=$1 dir=$2
  shift 2
  local start=$SECONDS step=""
  echo
  echo "==== $name: $dir ===="
  if ! cmake -S "$root" -B "$dir" "$@"; then
    step=configure
  elif ! cmake --build "$dir" -j2; then
    step=build
  elif ! (cd "$dir" && ctest --output-on-failure -j2 --timeout 900); then
    step=ctest
  fi
  local seconds=$((SECONDS - start)) status="passed"
  if [ -n "$step" ]; then
    status="FAILED ($step)"
    failures=$((failures + 1))
  fi
  summary+=("$(printf '  %-8s %-17s %5ds  %s' "$name" "$status" "$seconds" "$dir")")
  echo "==== $name: $status in ${seconds}s ===="
}

phase g++ "$build_root/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++

if [ $quick -eq 0 ]; then
  # The bench and the cross-compiled deployment tests are built once, in the g++ phase.
  phase clang++ "$build_root/build-clang" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DCTNN_BUILD_BENCH=OFF -DCTNN_CROSS_TESTS=OFF

  # Sanitizer findings must fail the test that hit them, not scroll past.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  phase asan "$build_root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCH=OFF -DCTNN_CROSS_TESTS=OFF
fi

echo
echo "==== ctnn test summary ($((SECONDS - total_start))s in all) ===="
printf '%s\n' "${summary[@]}"
if [ $failures -ne 0 ]; then
  echo "$failures of ${#summary[@]} phases FAILED."
  exit 1
fi
echo "All ${#summary[@]} phases passed."
