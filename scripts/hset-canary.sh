#!/usr/bin/env bash
# The hashes and sets' canaries (mk/kv.mk): test_hset must catch each, by the
# test case named. Prints `hset_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
for pair in HSET_INTSET_NO_WIDEN:hset_against_model; do
  if out=$(bash scripts/unit-canary.sh "${pair%%:*}" test_hset "${pair#*:}"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  grep -v '_canary: ' <<<"$out"
done
echo "hset_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
