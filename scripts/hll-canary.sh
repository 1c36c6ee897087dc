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
if PYTEST_CANARY_MUST='^E +AssertionError: node [0-9]+ key .*: 12304 bytes \(encoding 0\), redis [0-9]+ bytes \(encoding 1\)' \
    bash scripts/pytest-canary.sh HLL_ALWAYS_DENSE hll-canary test_hll.py \
    test_hll_bytes_match_redis 180; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "hll_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
