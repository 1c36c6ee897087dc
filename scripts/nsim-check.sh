#!/usr/bin/env bash
# The whole-node simulator in `make test`:
#  - NSIM_SEEDS seeds of build/test/shoal-nsim (ASan/UBSan), split over two
#    processes; each seed counts as one test;
#  - the scenarios (shoal-nsim --scenarios, ASan/UBSan), one test each;
#  - the seeds that once found a bug (see src/shard/shard.c), one test each;
#  - each canary in NSIM_CANARIES (a release build with one deliberate
#    bug, build/canary/NAME/shoal-nsim) must report a violation within
#    NSIM_CANARY_SEEDS seeds; each counts as one test;
#  - each canary in NSIM_SCENARIO_CANARIES must fail a scenario.
# Prints `nsim: N passed, N failed` last; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
seeds=${NSIM_SEEDS:-300}
canaries=${NSIM_CANARIES:-ACK_BEFORE_FSYNC ACK_UNSYNCED ADVANCE_BEFORE_FSYNC WAL_ACCEPT_BAD_CRC SNAPSHOT_SILENT_FAIL WRONG_SHARD QUIET_NO_WAKE ZADD_KEEPS_SCORE BLOCK_POP_WITHOUT_LOG XREADGROUP_NO_PEL META_NO_INSTALL META_STALE READ_PAST_WAITING_WRITES BEAT_EVERYONE QUIET_LEADER_NO_WAKE QUIET_WAKE_TRUSTS_OLD}
max=${NSIM_CANARY_SEEDS:-1000}
scenario_canaries=${NSIM_SCENARIO_CANARIES:-ORPHANS_FAIL_AT_ONCE}
regressions="309 439"
logs=build/test-logs
mkdir -p "$logs"
passed=0
failed=0
half=$((seeds / 2))
start=$(date +%s%N)
build/test/shoal-nsim --seeds "$half" --start 1 --quiet >"$logs/nsim-a.log" 2>&1 &
pa=$!
build/test/shoal-nsim --seeds $((seeds - half)) --start $((half + 1)) --quiet \
  >"$logs/nsim-b.log" 2>&1 &
pb=$!
wait $pa
wait $pb
ms=$(( ($(date +%s%N) - start) / 1000000 ))
for part in a b; do
  log="$logs/nsim-$part.log"
  grep -E '^VIOLATION|^replay' "$log"
  grep -E 'seeds/s' "$log"
  line=$(grep -E '^seeds: [0-9]+, violations: [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "nsim-$part: no summary line (see $log)"
    failed=$((failed + 1))
    continue
  fi
  # a sanitizer report (a leak at exit, a runtime error) fails the run too
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY' "$log" | head -n 5
    echo "nsim-$part: sanitizer report (see $log)"
    failed=$((failed + 1))
  fi
  n=$(sed -E 's/seeds: ([0-9]+),.*/\1/' <<<"$line")
  v=$(sed -E 's/.*violations: ([0-9]+)/\1/' <<<"$line")
  passed=$((passed + n - v))
  failed=$((failed + v))
done
echo "whole-node seeds (ASan/UBSan, 2 processes): $seeds in ${ms} ms"
# The scenarios (src/nsim/nsim_scenario.c): one test each
build/test/shoal-nsim --scenarios >"$logs/nsim-scenarios.log" 2>&1
rc=$?
grep -E '^FAIL ' "$logs/nsim-scenarios.log"
line=$(grep -E '^scenarios: [0-9]+ passed, [0-9]+ failed' "$logs/nsim-scenarios.log" | tail -n 1)
if [ -z "$line" ]; then
  echo "nsim scenarios: no summary line (see $logs/nsim-scenarios.log)"
  failed=$((failed + 1))
else
  echo "nsim $line"
  passed=$((passed + $(sed -E 's/scenarios: ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"$line")))
  if [ $rc -ne 0 ] && grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
       "$logs/nsim-scenarios.log"; then
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY' \
      "$logs/nsim-scenarios.log" | head -n 5
    echo "nsim scenarios: sanitizer report (see $logs/nsim-scenarios.log)"
    failed=$((failed + 1))
  fi
fi
# Seeds that once found a bug (the fix names the seed), replayed every time,
# with the one-shard layout and the string-only workload they had then
# (--shards 1 --strings-only replays them bit for bit).
for seed in $regressions; do
  if build/test/shoal-nsim --seed "$seed" --shards 1 --strings-only >"$logs/nsim-seed-$seed.log" 2>&1; then
    passed=$((passed + 1))
  else
    grep -E '^VIOLATION' "$logs/nsim-seed-$seed.log"
    failed=$((failed + 1))
  fi
done
echo "regression seeds replayed: $regressions"
for name in $canaries; do
  bin=build/canary/$name/shoal-nsim
  t0=$(date +%s%N)
  out=$("$bin" --seeds "$max" --quiet 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ $rc -eq 1 ] && grep -q '^VIOLATION seed' <<<"$out"; then
    what=$(grep '^VIOLATION seed' <<<"$out" | head -n 1 | cut -c1-150)
    echo "canary $name (whole-node simulator): caught in ${ms} ms: $what"
    passed=$((passed + 1))
  else
    echo "canary $name (whole-node simulator): NOT caught in $max seeds (exit $rc)"
    failed=$((failed + 1))
  fi
done
for name in $scenario_canaries; do
  out=$("build/canary/$name/shoal-nsim" --scenarios 2>&1)
  rc=$?
  if [ $rc -eq 1 ] && grep -q '^FAIL ' <<<"$out"; then
    echo "canary $name (scenarios): caught: $(grep '^FAIL ' <<<"$out" | head -n 1 | cut -c1-150)"
    passed=$((passed + 1))
  else
    echo "canary $name (scenarios): NOT caught (exit $rc)"
    failed=$((failed + 1))
  fi
done
echo "nsim: $passed passed, $failed failed"
[ $failed -eq 0 ]
