#!/usr/bin/env bash
# The map pull's canary (docs/cluster.md, "The meta group"): META_NO_PULL
# makes a node outside group 0 never ask for the map, so it routes by the
# configured map forever; tests/integration/test_many_nodes.py (24 nodes,
# 8 of them outside group 0) must catch it, by their map never being
# installed. A run that fails for another reason does not count as caught.
# Prints `pull_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/META_NO_PULL/shoal
log=build/test-logs/pull-canary-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "pull-canary: $bin is missing"
  echo "pull_canary: 0 passed, 1 failed"
  exit 1
fi
SHOAL_MANY_BIN=$bin timeout 180 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_many_nodes.py >"$log" 2>&1
if grep -qE '^E +AssertionError: the map was not installed everywhere' "$log"; then
  echo "pull-canary: META_NO_PULL caught"
  echo "pull_canary: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log"
echo "pull-canary: META_NO_PULL was NOT caught (see $log)"
echo "pull_canary: 0 passed, 1 failed"
exit 1
