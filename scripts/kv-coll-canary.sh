#!/usr/bin/env bash
# The collections' canary: a hash, set, list or sorted set opened for a write without
# first writing its key's bucket into a snapshot walk
# (-DCANARY_KV_COLL_NO_TOUCH) must be caught by test_kv's
# snapshot_walk_holds_collections_at_the_start. See scripts/unit-canary.sh.
UNIT_CANARY_LABEL=kv_coll_canary exec bash "$(dirname "$0")/unit-canary.sh" KV_COLL_NO_TOUCH test_kv \
  snapshot_walk_holds_collections_at_the_start
