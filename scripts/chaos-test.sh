#!/usr/bin/env bash
# The fault suite's share of `make test` (about 2 minutes; docs/chaos.md):
#  - the checkers' unit tests (synthetic histories, known anomalies);
#  - a short run of the release node under the 'quick' schedule (partitions,
#    kill -9, a paused and cut-off leader, packet loss, NFQUEUE delay, a full
#    disk), which must check clean;
#  - the three node canaries in short runs (ACK_BEFORE_FSYNC,
#    FOLLOWER_READS, SKIP_READ_INDEX), each of which must be caught.
# All on 5 nodes holding CHAOS_SHARDS Raft groups (default 8, of 3 replicas;
# CHAOS_SHARDS=1: one group on every node, the layout before sharding).
# Seeds are fixed so that a failure replays (the schedule; timing varies).
# Prints `chaos: N passed, N failed` last.
set -u
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs" build/chaos
passed=0
failed=0

/usr/bin/python3 tests/chaos/test_checker.py >"$logs/chaos-checker.log" 2>&1
line=$(grep -E '^chaos-checker: [0-9]+ passed' "$logs/chaos-checker.log" | tail -n 1)
if [ -n "$line" ]; then
  echo "$line"
  passed=$((passed + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
  grep -E '^FAIL' "$logs/chaos-checker.log"
else
  echo "chaos-checker: no summary (see $logs/chaos-checker.log)"
  failed=$((failed + 1))
fi

secs=${CHAOS_TEST_SECONDS:-50}
seed=${CHAOS_TEST_SEED:-134}
shards=${CHAOS_SHARDS:-8}
start=$(date +%s)
bash scripts/chaos.sh --seconds "$secs" --seed "$seed" --profile quick --shards "$shards" \
  --out build/chaos/make-test >"$logs/chaos-run.log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
last=$(grep -E '^chaos: ops [0-9]+' "$logs/chaos-run.log" | tail -n 1)
faults=$(grep -E '^faults by type:' "$logs/chaos-run.log" | tail -n 1)
if [ "$rc" -eq 0 ] && grep -qE 'lost acknowledged writes 0, anomalies 0$' <<<"$last"; then
  echo "chaos run (seed $seed, $secs s, $shards shards, ${took} s wall): $last; $faults"
  passed=$((passed + 1))
else
  echo "chaos run (seed $seed, $secs s, $shards shards) FAILED (exit $rc; see $logs/chaos-run.log):" \
    "${last:-no summary}"
  grep -E '^  [a-z-]+ [^ ]+: ' "$logs/chaos-run.log" | head -n 10
  failed=$((failed + 1))
fi

CHAOS_CANARY_SHORT=1 CHAOS_SHARDS=$shards bash scripts/chaos-canaries.sh ACK_BEFORE_FSYNC FOLLOWER_READS SKIP_READ_INDEX \
  >"$logs/chaos-canaries.log" 2>&1
grep -E '^canary ' "$logs/chaos-canaries.log"
line=$(grep -E '^chaos-canaries: [0-9]+ passed' "$logs/chaos-canaries.log" | tail -n 1)
if [ -n "$line" ]; then
  passed=$((passed + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
else
  failed=$((failed + 1))
fi
echo "chaos: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
