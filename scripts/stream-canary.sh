#!/usr/bin/env bash
# The streams' canaries. A node search by first ids rather than last ids
# (-DCANARY_STREAM_SEEK_BY_MASTER) must be caught by test_stream's
# stream_against_model. XREADGROUP that hands out entries without
# recording them as pending (-DCANARY_XREADGROUP_NO_PEL) must be caught by
# test_cmd's replies_match_redis_byte_for_byte (XPENDING, XACK and XCLAIM
# then answer otherwise than redis-server) and by the consumer group check
# of tests/integration/test_stream.py across a leader kill; a leader that
# serves blocked XREADGROUP clients from its own keyspace, outside the log
# (-DCANARY_BLOCK_POP_WITHOUT_LOG), must be caught by the same check (an
# entry delivered twice by the next leader). Up to 3 runs of each; a run
# that fails for another reason does not count as caught. Prints
# `stream_canary: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
if UNIT_CANARY_LABEL=stream_unit_canary bash scripts/unit-canary.sh XREADGROUP_NO_PEL test_cmd \
    replies_match_redis_byte_for_byte; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
if UNIT_CANARY_LABEL=stream_unit_canary bash scripts/unit-canary.sh STREAM_SEEK_BY_MASTER \
    test_stream stream_against_model; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
mkdir -p build/test-logs
for canary in XREADGROUP_NO_PEL BLOCK_POP_WITHOUT_LOG; do
  bin=build/canary/$canary/shoal
  log=build/test-logs/stream-canary-$canary.log
  caught=0
  if [ -x "$bin" ]; then
    for run in 1 2 3; do
      SHOAL_BIN=$bin timeout 180 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        tests/integration/test_stream.py -k test_consumer_group_across_a_leader_kill >"$log" 2>&1
      if grep -qE 'AssertionError: .*(delivered twice|never delivered|delivered again|not pending)' \
          "$log"; then
        grep -m1 -E '^E +AssertionError' "$log"
        echo "stream-canary: $canary caught on run $run"
        caught=1
        break
      fi
    done
  else
    echo "stream-canary: $bin is missing"
  fi
  if [ $caught -eq 1 ]; then
    passed=$((passed + 1))
  else
    echo "stream-canary: $canary was NOT caught (see $log)"
    failed=$((failed + 1))
  fi
done
echo "stream_canary: $passed passed, $failed failed"
[ $failed -eq 0 ]
