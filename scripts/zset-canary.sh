#!/usr/bin/env bash
# The sorted sets' canaries (mk/kv.mk): test_zset must catch each, by the
# test case named. Prints `zset_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
for pair in ZSET_INT16_LOW_BYTE:zset_against_model \
  ZSET_SEARCH_LINEAR:searches_depend_on_the_elements_only; do
  if out=$(bash scripts/unit-canary.sh "${pair%%:*}" test_zset "${pair#*:}"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  grep -v '_canary: ' <<<"$out"
done
echo "zset_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
