#!/usr/bin/env bash
# The WAL unpin rule's canary (docs/node.md, "Quiet groups"):
# SNAP_FORCE_BUSY builds a node that makes a busy group snapshot at once
# when its entries keep the oldest WAL segment, as it does a quiet group;
# test_protocol.py's snapshot-count test must catch it by the count of
# forced snapshots. Prints `snap_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
bin=build/canary/SNAP_FORCE_BUSY/shoal
log=build/test-logs/snap-canary-pytest.log
mkdir -p build/test-logs
# The canary forces 1-11 snapshots of busy groups a run and the test allows
# one: up to three runs, caught if any fails.
caught=0
if [ -x "$bin" ]; then
  for attempt in 1 2 3; do
    if ! SHOAL_BIN=$bin timeout 120 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
      tests/integration/test_protocol.py \
      -k test_busy_groups_sharing_the_wal_snapshot_at_their_own_periods >"$log" 2>&1 &&
      grep -qE '^E +' "$log"; then
      caught=1
      break
    fi
  done
fi
if [ $caught -eq 1 ]; then
  grep -m1 -E '^E +' "$log"
  echo "snap-canary: SNAP_FORCE_BUSY caught (run $attempt)"
  passed=$((passed + 1))
else
  tail -n 20 "$log" 2>/dev/null
  echo "snap-canary: SNAP_FORCE_BUSY was NOT caught (or $bin is missing; see $log)"
  failed=$((failed + 1))
fi
echo "snap_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
