#!/usr/bin/env bash
# maxmemory's canary (docs/node.md, "maxmemory"): OOM_LOCAL_ONLY makes a
# leader look at its own node's memory only, not at the nodes that hold
# the shard's other replicas; the sharded test of
# tests/integration/test_maxmemory.py must catch it (writes of a shard led
# elsewhere keep landing on the node past its maxmemory).
# Prints `oom_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" OOM_LOCAL_ONLY oom-canary \
  test_maxmemory.py test_a_replica_past_maxmemory_stops_its_shards_writes 300
