#!/usr/bin/env bash
# Lease reads' canary: a node that ticks its Raft once per timer callback,
# however long its loop was held (-DCANARY_LEASE_TICKS_BY_CALLBACK), must
# be caught by tests/integration/test_lease.py: the leader stopped with
# SIGSTOP answers a read from its old lease when it resumes (a stale read).
# A run that fails for another reason does not count as caught. Up to 4
# runs of the test's 3 tries: a resumed leader that reads its peers'
# sockets before the waiting GET steps down and answers TRYAGAIN, so a try
# can miss the bug (all 3 of one run did once, in a fresh-clone CI).
PYTEST_CANARY_MUST='AssertionError: stale read' exec bash "$(dirname "$0")/pytest-canary.sh" \
  LEASE_TICKS_BY_CALLBACK lease-canary test_lease.py \
  test_a_stopped_leader_does_not_serve_from_its_old_lease 180 4
