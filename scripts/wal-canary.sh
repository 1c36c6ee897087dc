#!/usr/bin/env bash
# The WAL's canary: a reader that skips the CRC check
# (-DCANARY_WAL_ACCEPT_BAD_CRC) must be caught by test_wal's
# bad_crc_in_the_middle_is_refused. See scripts/unit-canary.sh.
exec bash "$(dirname "$0")/unit-canary.sh" WAL_ACCEPT_BAD_CRC test_wal bad_crc_in_the_middle_is_refused
