#!/usr/bin/env bash
# requirepass's canary: a node that runs commands before AUTH
# (-DCANARY_AUTH_SKIPPED) must be caught by tests/integration/test_auth.py's
# test_commands_before_auth_are_refused_as_by_redis (a reply that differs
# from redis-server's NOAUTH, or a key written before AUTH). A run that
# fails for another reason (no cluster) does not count as caught.
PYTEST_CANARY_MUST='AssertionError: .*shoal .*redis-server' exec bash \
  "$(dirname "$0")/pytest-canary.sh" AUTH_SKIPPED auth-canary test_auth.py \
  test_commands_before_auth_are_refused_as_by_redis 120
