#!/usr/bin/env bash
# One canary of tests/integration/test_many_nodes.py (24 nodes): runs the
# test against build/canary/CANARY/shoal and counts the canary caught only
# if the test fails with an assertion matching PATTERN (a run that fails
# for another reason does not count). Prints `NAME: N passed, N failed`.
# Usage: scripts/many-nodes-canary.sh NAME CANARY PATTERN
set -u
cd "$(dirname "$0")/.."
name=$1 canary=$2 pattern=$3
bin=build/canary/$canary/shoal
log=build/test-logs/${name//_/-}-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "${name//_/-}: $bin is missing"
  echo "$name: 0 passed, 1 failed"
  exit 1
fi
SHOAL_MANY_BIN=$bin timeout 180 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_many_nodes.py >"$log" 2>&1
if grep -qE "^E +AssertionError: $pattern" "$log"; then
  echo "${name//_/-}: $canary caught"
  echo "$name: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log"
echo "${name//_/-}: $canary was NOT caught (see $log)"
echo "$name: 0 passed, 1 failed"
exit 1
