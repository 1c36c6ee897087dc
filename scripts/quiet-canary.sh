#!/usr/bin/env bash
# The quiet leader's step-down rule's canary (docs/node.md, "Quiet
# groups", failure detection): QUIET_LEADER_NO_WAKE builds a node whose
# lost link wakes only the groups that peer led here, so a quiet leader
# whose followers died is never woken and leads on alone; the
# quiet-leader test of test_sharding.py must catch it by its bound on the
# step-down. Prints `quiet_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" QUIET_LEADER_NO_WAKE quiet-canary test_sharding.py \
  test_a_quiet_leader_that_lost_its_quorum_steps_down 120
