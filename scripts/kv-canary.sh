#!/usr/bin/env bash
# The keyspace's canary: a snapshot walk whose keyspace changes do not
# write the bucket first (-DCANARY_KV_WALK_NO_TOUCH) must be caught by
# test_kv's snapshot_walk_holds_the_start_while_the_keyspace_changes.
# See scripts/unit-canary.sh.
exec bash "$(dirname "$0")/unit-canary.sh" KV_WALK_NO_TOUCH test_kv \
  snapshot_walk_holds_the_start_while_the_keyspace_changes
