#!/usr/bin/env bash
# The blocked pipeline's canary (docs/cluster.md, "Order"): BLOCKED_OVERTAKEN
# lets a connection's later command run while its BLPOP, forwarded to
# another node's leader, is still blocked there;
# tests/integration/test_pipeline_order.py must catch it.
# Prints `blocked_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" BLOCKED_OVERTAKEN blocked-canary \
  test_pipeline_order.py test_nothing_overtakes_a_blocked_command_of_another_shard 300
