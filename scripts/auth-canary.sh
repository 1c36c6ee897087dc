#!/usr/bin/env bash
# requirepass's canary: a node that runs commands before AUTH
# (-DCANARY_AUTH_SKIPPED) must be caught by tests/integration/test_auth.py's
# test_commands_before_auth_are_refused_as_by_redis (a reply that differs
# from redis-server's NOAUTH, or a key written before AUTH). A run that
# fails for another reason (no cluster) does not count as caught. Prints
# `auth_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
bin=build/canary/AUTH_SKIPPED/shoal
log=build/test-logs/auth-canary-pytest.log
mkdir -p build/test-logs
if [ ! -x "$bin" ]; then
  echo "auth-canary: $bin is missing"
  echo "auth_canary: 0 passed, 1 failed"
  exit 1
fi
SHOAL_BIN=$bin timeout 120 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration/test_auth.py -k test_commands_before_auth_are_refused_as_by_redis >"$log" 2>&1
if grep -qE 'AssertionError: .*shoal .*redis-server' "$log"; then
  grep -m1 -E '^E +AssertionError' "$log" | cut -c1-200
  echo "auth-canary: AUTH_SKIPPED caught"
  echo "auth_canary: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log"
echo "auth-canary: AUTH_SKIPPED was NOT caught (see $log)"
echo "auth_canary: 0 passed, 1 failed"
exit 1
