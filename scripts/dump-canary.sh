#!/usr/bin/env bash
# The DUMP payload's canary: RESTORE that skips the checksum
# (-DCANARY_DUMP_NO_CRC) must be caught by test_kv's
# dump_payload_corruption_is_refused. See scripts/unit-canary.sh.
UNIT_CANARY_LABEL=dump_canary exec bash "$(dirname "$0")/unit-canary.sh" DUMP_NO_CRC test_kv dump_payload_corruption_is_refused
