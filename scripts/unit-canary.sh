#!/usr/bin/env bash
# A unit test's canary: `unit-canary.sh CANARY TEST MUST` runs
# build/canary/CANARY/TEST, the unit test built with -DCANARY_CANARY (a bug
# planted on purpose). It must fail, and the test case MUST must be among
# those that catch it; a canary that is not caught means a test that cannot
# fail. Builds nothing: `make test` builds the binaries (TEST_DEPS).
# Prints `LABEL: N passed, N failed` (LABEL: UNIT_CANARY_LABEL, or the
# test's name less `test_`, then `_canary`); exits non-zero if not caught.
set -u
cd "$(dirname "$0")/.."
canary=$1
test=$2
must=$3
label=${UNIT_CANARY_LABEL:-${test#test_}_canary}
bin=build/canary/$canary/$test
if [ ! -x "$bin" ]; then
  echo "canary $canary: $bin is missing (make $bin)"
  echo "$label: 0 passed, 1 failed"
  exit 1
fi
# A test that fails returns early and may leak: leaks are not the question.
# Only the case that must catch the canary runs (TEST_ONLY, tests/unit/test.h).
out=$(TEST_ONLY=$must ASAN_OPTIONS=detect_leaks=0 "$bin" 2>&1)
rc=$?
caught=$(grep -E '^FAIL ' <<<"$out" | sed -E "s/^FAIL $test\\.//" | tr '\n' ' ')
if [ $rc -ne 0 ] && grep -qE "^FAIL $test\\.$must\$" <<<"$out"; then
  echo "canary $canary: caught by $caught"
  echo "$label: 1 passed, 0 failed"
  exit 0
fi
echo "canary $canary: NOT caught by $must (exit $rc; failed: ${caught:-none})"
echo "$label: 0 passed, 1 failed"
exit 1
