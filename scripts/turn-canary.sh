#!/usr/bin/env bash
# The per-turn budget's canary (docs/node.md, "Clients"): NO_TURN_BUDGET
# lets a connection run its whole input in one loop turn;
# tests/integration/test_pipeline_order.py must catch it.
# Prints `turn_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" NO_TURN_BUDGET turn-canary \
  test_pipeline_order.py test_a_long_pipeline_runs_over_several_loop_turns 300
