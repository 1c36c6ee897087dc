#!/usr/bin/env bash
# Each canary is a build with one deliberate bug (-DCANARY_NAME). The
# simulator must report a violation within MAX seeds; a canary it does not
# catch means a checker that cannot fail. Prints how many seeds each took.
# Usage: scripts/canaries.sh "NAME ..." [MAX]
set -u
names=$1
max=${2:-2000}
cd "$(dirname "$0")/.."
passed=0
failed=0
for name in $names; do
  bin=build/canary/$name/shoal-sim
  start=$(date +%s%N)
  out=$("$bin" --seeds "$max" --quiet 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ $rc -eq 1 ] && grep -q '^VIOLATION seed' <<<"$out"; then
    seed=$(grep '^VIOLATION seed' <<<"$out" | sed -E 's/VIOLATION seed ([0-9]+):.*/\1/')
    what=$(grep '^VIOLATION seed' <<<"$out" | sed -E 's/VIOLATION seed [0-9]+: //' | cut -c1-90)
    echo "canary $name: caught after $seed seeds (${ms} ms): $what"
    passed=$((passed + 1))
  else
    echo "canary $name: NOT caught in $max seeds (exit $rc)"
    failed=$((failed + 1))
  fi
done
echo "canaries: $passed passed, $failed failed"
[ $failed -eq 0 ]
