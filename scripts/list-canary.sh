#!/usr/bin/env bash
# The lists' canary (mk/kv.mk): a packed node split one item late; test_kv's
# model test of large items must catch it. Prints `list_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
UNIT_CANARY_LABEL=list_canary exec bash scripts/unit-canary.sh LIST_SPLIT_OFF_BY_ONE test_kv \
  lists_of_large_items_against_model
