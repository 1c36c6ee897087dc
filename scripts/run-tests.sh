#!/usr/bin/env bash
# Runs every suite of `make test`, prints each suite's summary line, and ends
# with the total `tests: N passed, N failed`; exits non-zero on any failure.
# Usage: scripts/run-tests.sh SEEDS "SIM_CANARY ..." "UNIT_CANARY ..."
set -u
seeds=${1:-2000}
canaries=${2:-}
unit_canaries=${3:-}
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs"
total_passed=0
total_failed=0

# Adds the counts of a line `NAME: N passed, N failed` (last one in a log).
count() {
  local name=$1 log=$2 line p f
  line=$(grep -E '^[a-z_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$name: 0 passed, 1 failed (no summary line; see $log)"
    total_failed=$((total_failed + 1))
    return
  fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  echo "$line"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
}

# UNIT_TESTS (from the Makefile): the sanitized unit-test binaries.
# EXTRA_CHECKS: further commands, each ending with `NAME: N passed, N failed`.
unit_tests=${UNIT_TESTS:-build/test/test_raft build/test/test_lin build/test/test_sim_disk}
for bin in $unit_tests; do
  t=$(basename "$bin")
  "$bin" >"$logs/$t.log" 2>&1
  rc=$?
  count "$t" "$logs/$t.log"
  if [ $rc -ne 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$logs/$t.log"; then
    echo "$t: exited $rc (see $logs/$t.log)"
    total_failed=$((total_failed + 1))
  fi
  grep -E '^FAIL|CHECK failed|ERROR' "$logs/$t.log" | head -n 20
done

for check in ${EXTRA_CHECKS:-}; do
  t=$(basename "$check" | sed -E 's/\.[a-z]+$//')
  bash "$check" >"$logs/$t.log" 2>&1
  rc=$?
  count "$t" "$logs/$t.log"
  if [ $rc -ne 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$logs/$t.log"; then
    echo "$t: exited $rc (see $logs/$t.log)"
    total_failed=$((total_failed + 1))
  fi
done

# Simulator seeds, each run split over two processes (two cores): SEEDS of
# the optimized build (the search for protocol bugs), then SIM_ASAN_SEEDS of
# the ASan/UBSan build (memory and undefined behaviour; about 6x slower).
sim_passed=0
sim_failed=0
sim_run() { # BINARY SEEDS START TAG
  local bin=$1 n=$2 first=$3 tag=$4 half ra rb part log line k v
  half=$((n / 2))
  "$bin" --seeds "$half" --start "$first" >"$logs/sim-$tag-a.log" 2>&1 &
  local pa=$!
  "$bin" --seeds $((n - half)) --start $((first + half)) >"$logs/sim-$tag-b.log" 2>&1 &
  local pb=$!
  wait $pa; ra=$?
  wait $pb; rb=$?
  local before=$sim_failed
  for part in a b; do
    log="$logs/sim-$tag-$part.log"
    grep -vE '^seeds:' "$log" | tail -n 3
    line=$(grep -E '^seeds: [0-9]+, violations: [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
      sim_failed=$((sim_failed + 1))
      echo "sim-$tag-$part: no summary line (see $log)"
      continue
    fi
    k=$(sed -E 's/seeds: ([0-9]+),.*/\1/' <<<"$line")
    v=$(sed -E 's/.*violations: ([0-9]+)/\1/' <<<"$line")
    sim_passed=$((sim_passed + k - v))
    sim_failed=$((sim_failed + v))
  done
  if { [ $ra -ne 0 ] || [ $rb -ne 0 ]; } && [ $sim_failed -eq $before ]; then
    sim_failed=$((sim_failed + 1))
  fi
}
sim_run build/shoal-sim "$seeds" 1 release
# the sanitized seeds start past the optimized ones: more distinct schedules
sim_run build/test/shoal-sim "${SIM_ASAN_SEEDS:-300}" $((seeds + 1)) asan
echo "sim: $sim_passed passed, $sim_failed failed"
total_passed=$((total_passed + sim_passed))
total_failed=$((total_failed + sim_failed))

if [ -n "$canaries" ]; then
  bash scripts/canaries.sh "$canaries" "$unit_canaries" "$seeds" >"$logs/canaries.log" 2>&1
  grep -vE '^canaries:' "$logs/canaries.log"
  count canaries "$logs/canaries.log"
fi

echo "tests: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
