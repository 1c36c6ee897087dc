#!/usr/bin/env bash
# Integration tests: real `shoal server` processes (the ASan/UBSan build) on
# loopback, driven by redis-py and compared with a real redis-server.
# Prints `integration: N passed, N failed` and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.."
export SHOAL_BIN=${SHOAL_BIN:-build/test/shoal}
log=build/test-logs/integration-pytest.log
mkdir -p build/test-logs
# Two workers (pytest-xdist): the tests mostly wait on elections, restarts
# and timeouts, so two at once halve the wall time on two cores. Each
# worker scans its own port range (conftest.py). INTEGRATION_WORKERS=0 runs
# them one after the other.
workers=${INTEGRATION_WORKERS:-2}
xdist=()
[ "$workers" -gt 0 ] && xdist=(-n "$workers" --dist load)
timeout 900 /usr/bin/python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" --durations 40 \
  tests/integration >"$log" 2>&1
rc=$?
summary=$(tail -n 1 "$log")
passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || true)
failed=$(grep -oE '[0-9]+ (failed|error|errors)' <<<"$summary" | grep -oE '[0-9]+' |
  paste -sd+ | bc 2>/dev/null || true)
passed=${passed:-0}
failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
grep -E '^(FAILED|ERROR)' "$log" | head -n 20
grep -E '^failover:' "$log" || true
echo "integration: $passed passed, $failed failed"
[ "$rc" -eq 0 ]
