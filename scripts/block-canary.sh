#!/usr/bin/env bash
# The blocking pops' canary: a leader that pops for a blocked client from
# its own keyspace, with no log entry (-DCANARY_BLOCK_POP_WITHOUT_LOG),
# must be caught by the work-queue check of tests/integration/
# test_blocking.py (an element delivered twice, or lost, across a leader
# kill). Up to 3 runs; a run that fails for another reason (no cluster)
# does not count as caught. Prints `block_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/BLOCK_POP_WITHOUT_LOG/shoal
log=build/test-logs/block-canary-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "block-canary: $bin is missing"
  echo "block_canary: 0 passed, 1 failed"
  exit 1
fi
for run in 1 2 3; do
  SHOAL_BIN=$bin timeout 120 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    tests/integration/test_blocking.py -k test_work_queue_across_a_leader_failover >"$log" 2>&1
  if grep -qE 'AssertionError: .*(delivered twice|still in|acknowledged but lost|left in the queue| in [a-z0-9]+ and )' "$log"; then
    grep -m1 -E '^E +AssertionError' "$log"
    echo "block-canary: BLOCK_POP_WITHOUT_LOG caught on run $run"
    echo "block_canary: 1 passed, 0 failed"
    exit 0
  fi
done
tail -n 20 "$log"
echo "block-canary: BLOCK_POP_WITHOUT_LOG was NOT caught in 3 runs (see $log)"
echo "block_canary: 0 passed, 1 failed"
exit 1
