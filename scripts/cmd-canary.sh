#!/usr/bin/env bash
# The command layer's canary: SHOAL.EXEC ignoring the watched digests
# (-DCANARY_WATCH_IGNORED) must be caught by test_cmd's
# transactions_check_watched_digests_then_run_in_order.
# See scripts/unit-canary.sh.
exec bash "$(dirname "$0")/unit-canary.sh" WATCH_IGNORED test_cmd \
  transactions_check_watched_digests_then_run_in_order
