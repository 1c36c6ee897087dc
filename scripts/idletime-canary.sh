#!/usr/bin/env bash
# The access clock's canary (docs/kv.md, "The access clock"): NO_TOUCH
# builds a node whose commands never touch their keys, so OBJECT IDLETIME
# never drops on an access; test_idletime.py's leader-and-follower test
# must catch it. Prints `idletime_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
bin=build/canary/NO_TOUCH/shoal
log=build/test-logs/idletime-canary-pytest.log
mkdir -p build/test-logs
if [ -x "$bin" ] && ! SHOAL_BIN=$bin timeout 120 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_idletime.py \
  -k test_idletime_counts_from_the_last_access_through_leader_and_follower >"$log" 2>&1 &&
  grep -qE '^E +' "$log"; then
  grep -m1 -E '^E +' "$log"
  echo "idletime-canary: NO_TOUCH caught"
  passed=$((passed + 1))
else
  tail -n 20 "$log" 2>/dev/null
  echo "idletime-canary: NO_TOUCH was NOT caught (or $bin is missing; see $log)"
  failed=$((failed + 1))
fi
echo "idletime_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
