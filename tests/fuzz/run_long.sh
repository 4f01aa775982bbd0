#!/usr/bin/env bash
# run_long.sh: the long fuzzing runs that README.md records. Runs each fuzz target, one after
# another in one process each, for RUNS inputs (default 1000000) on a fresh copy of its seeds,
# and prints execs, time and outcome per target.
#   tests/fuzz/run_long.sh <clang build dir> [runs] [targets...]
# Work directories (corpus, artifacts, logs) go to <build dir>/tests/fuzz/long/<target>/.
set -uo pipefail
build=${1:?usage: run_long.sh <clang build dir> [runs] [targets...]}
runs=${2:-1000000}
shift $(( $# >= 2 ? 2 : 1 ))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(idx csv model_file preprocess)
dir=$build/tests/fuzz
status=0
for t in "${targets[@]}"; do
  work=$dir/long/$t
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
  cp "$dir/seeds/$t/"* "$work/corpus/"
  start=$SECONDS
  nice "$dir/fuzz_$t" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" > "$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  outcome=$([ $rc -eq 0 ] && echo "no finding" || echo "FAILED (exit $rc, see $work/log)")
  [ $rc -eq 0 ] || status=1
  printf 'fuzz_%-11s %9s execs %6ds  %s\n' "$t" "${execs:-?}" $((SECONDS - start)) "$outcome"
done
exit $status
