#!/usr/bin/env bash
# The map pull's canary (docs/cluster.md, "The meta group"): META_NO_PULL
# makes a node outside group 0 never ask for the map, so it routes by the
# configured map forever; tests/integration/test_many_nodes.py (24 nodes,
# 8 of them outside group 0) must catch it, by their map never being
# installed. Prints `pull_canary: N passed, N failed`.
exec bash "$(dirname "$0")/many-nodes-canary.sh" pull_canary META_NO_PULL \
  'the map was not installed everywhere'
