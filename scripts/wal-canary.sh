#!/usr/bin/env bash
# The WAL's canary: build/canary/WAL_ACCEPT_BAD_CRC/test_wal is test_wal with
# a reader that skips the CRC check (-DCANARY_WAL_ACCEPT_BAD_CRC). It must
# fail, and bad_crc_in_the_middle_is_refused must be among the tests that
# catch it; a canary that is not caught means a test that cannot fail.
# Builds nothing: `make test` builds the binary (TEST_DEPS in mk/wal.mk).
# Prints `wal_canary: N passed, N failed`; exits non-zero if not caught.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/WAL_ACCEPT_BAD_CRC/test_wal
must=bad_crc_in_the_middle_is_refused
if [ ! -x "$bin" ]; then
  echo "canary WAL_ACCEPT_BAD_CRC: $bin is missing (make $bin)"
  echo "wal_canary: 0 passed, 1 failed"
  exit 1
fi
# A test that fails returns early and may leak: leaks are not the question.
out=$(ASAN_OPTIONS=detect_leaks=0 "$bin" 2>&1)
rc=$?
caught=$(grep -E '^FAIL ' <<<"$out" | sed -E 's/^FAIL test_wal\.//' | tr '\n' ' ')
if [ $rc -ne 0 ] && grep -qE "^FAIL test_wal\.$must\$" <<<"$out"; then
  echo "canary WAL_ACCEPT_BAD_CRC: caught by $caught"
  echo "wal_canary: 1 passed, 0 failed"
  exit 0
fi
echo "canary WAL_ACCEPT_BAD_CRC: NOT caught by $must (exit $rc; failed: ${caught:-none})"
echo "wal_canary: 0 passed, 1 failed"
exit 1
