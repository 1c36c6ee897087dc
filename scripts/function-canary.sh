#!/usr/bin/env bash
# Functions' canary (docs/scripting.md, "Functions"): FUNCTION_LOCAL_ONLY
# applies FUNCTION LOAD/DELETE/FLUSH/RESTORE on the receiving node's
# replicas only, not through the log; the replication test of
# tests/integration/test_functions.py must catch it (the other replicas,
# and the leader an FCALL goes to, never get the library).
# Prints `function_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
bin=build/canary/FUNCTION_LOCAL_ONLY/shoal
log=build/test-logs/function-canary-pytest.log
mkdir -p build/test-logs
if [ -x "$bin" ] && ! SHOAL_BIN=$bin timeout 300 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_functions.py \
  -k test_libraries_are_replicated_survive_restart_and_round_trip >"$log" 2>&1 &&
  grep -qE '^E +' "$log"; then
  grep -m1 -E '^E +' "$log"
  echo "function-canary: FUNCTION_LOCAL_ONLY caught"
  passed=$((passed + 1))
else
  tail -n 20 "$log" 2>/dev/null
  echo "function-canary: FUNCTION_LOCAL_ONLY was NOT caught (or $bin is missing; see $log)"
  failed=$((failed + 1))
fi
echo "function_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
