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

# Simulator seeds under ASan/UBSan, split over two processes (two cores).
half=$((seeds / 2))
rest=$((seeds - half))
build/test/shoal-sim --seeds "$half" --start 1 >"$logs/sim-a.log" 2>&1 &
pa=$!
build/test/shoal-sim --seeds "$rest" --start $((half + 1)) >"$logs/sim-b.log" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
sim_passed=0
sim_failed=0
for part in a b; do
  log="$logs/sim-$part.log"
  cat "$log" | grep -vE '^seeds:' | tail -n 5
  line=$(grep -E '^seeds: [0-9]+, violations: [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    sim_failed=$((sim_failed + 1))
    echo "sim-$part: no summary line (see $log)"
    continue
  fi
  n=$(sed -E 's/seeds: ([0-9]+),.*/\1/' <<<"$line")
  v=$(sed -E 's/.*violations: ([0-9]+)/\1/' <<<"$line")
  sim_passed=$((sim_passed + n - v))
  sim_failed=$((sim_failed + v))
done
[ $ra -ne 0 ] || [ $rb -ne 0 ] && [ $sim_failed -eq 0 ] && sim_failed=1
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
