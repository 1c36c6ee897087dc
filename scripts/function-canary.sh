#!/usr/bin/env bash
# Functions' canary (docs/scripting.md, "Functions"): FUNCTION_LOCAL_ONLY
# applies FUNCTION LOAD/DELETE/FLUSH/RESTORE on the receiving node's
# replicas only, not through the log; the replication test of
# tests/integration/test_functions.py must catch it (the other replicas,
# and the leader an FCALL goes to, never get the library).
# Prints `function_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" FUNCTION_LOCAL_ONLY function-canary \
  test_functions.py test_libraries_are_replicated_survive_restart_and_round_trip 300
