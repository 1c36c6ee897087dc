#!/usr/bin/env bash
# The pipeline order's canary (docs/cluster.md, "Order"): PIPELINE_SHARD_ROUTE
# lets a command of a shard whose leader changed go to the new leader while
# an earlier command of that shard is still in flight on the old route;
# tests/integration/test_pipeline_order.py must catch it (the later write
# is seen before the earlier one is answered).
# Prints `pipeline_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" PIPELINE_SHARD_ROUTE pipeline-canary \
  test_pipeline_order.py test_a_shard_whose_leader_changed_waits_for_its_old_route 300
