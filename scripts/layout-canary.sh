#!/usr/bin/env bash
# The layout parameters' canary: packed hashes and sets that keep the fixed
# thresholds whatever CONFIG SET says (-DCANARY_LAYOUT_FIXED) must be caught
# by test_kv's layout_thresholds_follow_the_config. See scripts/unit-canary.sh.
UNIT_CANARY_LABEL=layout_canary exec bash "$(dirname "$0")/unit-canary.sh" LAYOUT_FIXED test_kv \
  layout_thresholds_follow_the_config
