#!/usr/bin/env bash
# WAIT's canary: a leader that counts every follower whatever its match
# index (-DCANARY_WAIT_ANY_MATCH) must be caught by tests/integration/
# test_generic.py's WAIT test (a paused follower counted). A run that fails
# for another reason does not count as caught. Prints
# `wait_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/WAIT_ANY_MATCH/shoal
log=build/test-logs/wait-canary-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "wait-canary: $bin is missing"
  echo "wait_canary: 0 passed, 1 failed"
  exit 1
fi
SHOAL_BIN=$bin timeout 120 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_generic.py -k test_wait_counts_the_followers_holding_the_last_write \
  >"$log" 2>&1
if grep -qE '^E +assert 2 == 1' "$log"; then
  echo "wait-canary: WAIT_ANY_MATCH caught"
  echo "wait_canary: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log"
echo "wait-canary: WAIT_ANY_MATCH was NOT caught (see $log)"
echo "wait_canary: 0 passed, 1 failed"
exit 1
