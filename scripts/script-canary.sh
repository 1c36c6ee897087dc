#!/usr/bin/env bash
# Scripting's canaries (docs/scripting.md):
#  - SCRIPT_DIGEST_IGNORED: SHOAL.SCRIPT runs a script's writes whatever
#    happened to its keys since the leader's run; test_cmd's
#    scripts_check_digests_then_run_the_writes must catch it;
#  - SCRIPT_NO_UNDO: the leader keeps what its run wrote (the writes are
#    applied before the entry commits, and again when it applies); the
#    replica comparisons of tests/integration/test_scripting.py (a script's,
#    a transaction's with a script) must each catch it.
# Prints `script_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
if UNIT_CANARY_LABEL=script_digest_canary bash scripts/unit-canary.sh SCRIPT_DIGEST_IGNORED \
  test_cmd scripts_check_digests_then_run_the_writes; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
# SCRIPT_NO_UNDO must be caught by each test that compares the replicas
# with the leader: a lone script's, and a transaction's that holds one.
bin=build/canary/SCRIPT_NO_UNDO/shoal
mkdir -p build/test-logs
for t in test_script_writes_are_one_entry_on_every_replica \
  test_a_transaction_with_a_script_is_one_entry_on_every_replica; do
  log=build/test-logs/script-canary-$t.log
  if [ -x "$bin" ] && ! SHOAL_BIN=$bin timeout 300 /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider tests/integration/test_scripting.py -k "$t" >"$log" 2>&1 &&
    grep -qE 'AssertionError' "$log"; then
    grep -m1 -E '^E +AssertionError' "$log"
    echo "script-canary: SCRIPT_NO_UNDO caught by $t"
    passed=$((passed + 1))
  else
    tail -n 20 "$log" 2>/dev/null
    echo "script-canary: SCRIPT_NO_UNDO was NOT caught by $t (or $bin is missing; see $log)"
    failed=$((failed + 1))
  fi
done
echo "script_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
