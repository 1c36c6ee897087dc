#!/usr/bin/env bash
# The beat rule's canary (docs/cluster.md, "Idle links"): BEAT_EVERYONE
# makes every node beat all of its peers, as before a node beat only the
# nodes it shares a group with; tests/integration/test_many_nodes.py (24
# nodes) must catch it, by the beats INFO peers counts on links of no
# shared group. Prints `beat_canary: N passed, N failed`.
exec bash "$(dirname "$0")/many-nodes-canary.sh" beat_canary BEAT_EVERYONE \
  'node [0-9]+: beats to nodes sharing no group'
