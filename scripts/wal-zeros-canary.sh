#!/usr/bin/env bash
# The WAL's zeros-ahead canary: a WAL that writes no zeros ahead of its
# records (-DCANARY_WAL_NO_ZEROS) must be caught by test_wal's
# zeros_ahead_of_the_records. See scripts/unit-canary.sh.
UNIT_CANARY_LABEL=wal_zeros_canary exec bash "$(dirname "$0")/unit-canary.sh" WAL_NO_ZEROS test_wal zeros_ahead_of_the_records
