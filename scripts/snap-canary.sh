#!/usr/bin/env bash
# The WAL unpin rule's canary (docs/node.md, "Quiet groups"):
# SNAP_FORCE_BUSY builds a node that makes a busy group snapshot at once
# when its entries keep the oldest WAL segment, as it does a quiet group;
# test_protocol.py's snapshot-count test must catch it by the count of
# forced snapshots. The canary forces 1-11 snapshots of busy groups a run
# and the test allows one: up to three runs, caught if any fails.
# Prints `snap_canary: N passed, N failed`.
exec bash "$(dirname "$0")/pytest-canary.sh" SNAP_FORCE_BUSY snap-canary test_protocol.py \
  test_busy_groups_sharing_the_wal_snapshot_at_their_own_periods 120 3
