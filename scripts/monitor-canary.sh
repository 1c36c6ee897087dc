#!/usr/bin/env bash
# MONITOR's canary (docs/node.md, "MONITOR"): MONITOR_NO_REDACT shows the
# passwords of AUTH and HELLO ... AUTH; the comparison with a real
# redis-server in tests/integration/test_monitor.py must catch it.
# Prints `monitor_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" MONITOR_NO_REDACT monitor-canary \
  test_monitor.py test_monitor_shows_what_redis_shows 300
