#!/usr/bin/env bash
# The beat rule's canary (docs/cluster.md, "Idle links"): BEAT_EVERYONE
# makes every node beat all of its peers, as before a node beat only the
# nodes it shares a group with; tests/integration/test_many_nodes.py (24
# nodes) must catch it, by the beats INFO peers counts on links of no
# shared group. A run that fails for another reason does not count as
# caught. Prints `beat_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/BEAT_EVERYONE/shoal
log=build/test-logs/beat-canary-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "beat-canary: $bin is missing"
  echo "beat_canary: 0 passed, 1 failed"
  exit 1
fi
SHOAL_MANY_BIN=$bin timeout 180 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_many_nodes.py >"$log" 2>&1
if grep -qE '^E +AssertionError: node [0-9]+: beats to nodes sharing no group' "$log"; then
  echo "beat-canary: BEAT_EVERYONE caught"
  echo "beat_canary: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log"
echo "beat-canary: BEAT_EVERYONE was NOT caught (see $log)"
echo "beat_canary: 0 passed, 1 failed"
exit 1
