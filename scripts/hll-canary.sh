#!/usr/bin/env bash
# The HyperLogLog canary: every HLL written dense, shoal's behaviour before
# it wrote Redis's sparse encoding (-DCANARY_HLL_ALWAYS_DENSE). test_cmd's
# hll_sparse_until_redis_limits must catch it, and so must
# tests/integration/test_hll.py's test_hll_bytes_match_redis (a key's
# bytes on a replica differ from redis-server's: 12,304 dense bytes where
# Redis has a sparse value); a run that fails for another reason does not
# count as caught. Prints `hll_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
if UNIT_CANARY_LABEL=hll_unit_canary bash scripts/unit-canary.sh HLL_ALWAYS_DENSE test_cmd \
    hll_sparse_until_redis_limits; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
bin=build/canary/HLL_ALWAYS_DENSE/shoal
log=build/test-logs/hll-canary-pytest.log
mkdir -p build/test-logs
if [ -x "$bin" ]; then
  SHOAL_BIN=$bin timeout 180 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    tests/integration/test_hll.py -k test_hll_bytes_match_redis >"$log" 2>&1
fi
if grep -qE '^E +AssertionError: node [0-9]+ key .*: 12304 bytes \(encoding 0\), redis [0-9]+ bytes \(encoding 1\)' \
    "$log" 2>/dev/null; then
  grep -m1 -E '^E +AssertionError' "$log"
  echo "hll-canary: HLL_ALWAYS_DENSE caught by test_hll_bytes_match_redis"
  passed=$((passed + 1))
else
  tail -n 20 "$log" 2>/dev/null
  echo "hll-canary: HLL_ALWAYS_DENSE was NOT caught (or $bin is missing; see $log)"
  failed=$((failed + 1))
fi
echo "hll_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
