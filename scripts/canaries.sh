#!/usr/bin/env bash
# Each canary is a build with one deliberate bug (-DCANARY_NAME).
#  - simulator canaries: build/canary/NAME/shoal-sim must report a violation
#    within MAX seeds (prints how many seeds it took);
#  - unit canaries: build/canary/NAME/test_raft must fail (prints which
#    scenario caught it).
# A canary that is not caught means a checker that cannot fail.
# Usage: scripts/canaries.sh "SIM_NAME ..." "UNIT_NAME ..." [MAX]
set -u
sim_names=$1
unit_names=${2:-}
max=${3:-2000}
cd "$(dirname "$0")/.."
passed=0
failed=0
# Simulator canaries two at a time (two cores); each prints its line.
sim_one() {
  local name=$1 bin start out rc ms seed what
  bin=build/canary/$name/shoal-sim
  start=$(date +%s%N)
  out=$("$bin" --seeds "$max" --quiet 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ $rc -eq 1 ] && grep -q '^VIOLATION seed' <<<"$out"; then
    seed=$(grep '^VIOLATION seed' <<<"$out" | sed -E 's/VIOLATION seed ([0-9]+):.*/\1/')
    what=$(grep '^VIOLATION seed' <<<"$out" | sed -E 's/VIOLATION seed [0-9]+: //' | cut -c1-90)
    echo "canary $name (simulator): caught after $seed seeds (${ms} ms): $what"
  else
    echo "canary $name (simulator): NOT caught in $max seeds (exit $rc)"
  fi
}
results=$(mktemp -d)
running=0
for name in $sim_names; do
  sim_one "$name" >"$results/$name" &
  running=$((running + 1))
  if [ "$running" -ge "${CANARY_JOBS:-2}" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
for name in $sim_names; do
  line=$(cat "$results/$name")
  echo "$line"
  case $line in
    *"NOT caught"*) failed=$((failed + 1)) ;;
    *) passed=$((passed + 1)) ;;
  esac
done
rm -rf "$results"
for name in $unit_names; do
  bin=build/canary/$name/test_raft
  out=$(ASAN_OPTIONS=detect_leaks=0 "$bin" 2>&1)
  rc=$?
  caught=$(grep -E '^FAIL ' <<<"$out" | sed -E 's/^FAIL //' | tr '\n' ' ')
  if [ $rc -ne 0 ] && [ -n "$caught" ]; then
    echo "canary $name (unit): caught by $caught"
    passed=$((passed + 1))
  else
    echo "canary $name (unit): NOT caught by test_raft (exit $rc)"
    failed=$((failed + 1))
  fi
done
echo "canaries: $passed passed, $failed failed"
[ $failed -eq 0 ]
