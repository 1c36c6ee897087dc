#!/usr/bin/env bash
# The access clock's canary (docs/kv.md, "The access clock"): NO_TOUCH
# builds a node whose commands never touch their keys, so OBJECT IDLETIME
# never drops on an access; test_idletime.py's leader-and-follower test
# must catch it. Prints `idletime_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" NO_TOUCH idletime-canary test_idletime.py \
  test_idletime_counts_from_the_last_access_through_leader_and_follower 120
