#!/usr/bin/env bash
# A live canary: `pytest-canary.sh CANARY NAME FILE TEST [TIMEOUT] [RUNS]`
# runs integration test TEST of tests/integration/FILE against
# build/canary/CANARY/shoal (the node built with -DCANARY_CANARY, a bug
# planted on purpose), up to RUNS times (default 1, for a canary that is
# caught only most of the time); it must fail with an assertion (`E ...`)
# in at least one (with PYTEST_CANARY_MUST set, a line matching that
# extended regex: a run that fails for another reason is not caught). Builds nothing: `make test` builds the binaries
# (TEST_DEPS). Logs to build/test-logs/NAME-pytest.log. Prints
# `NAME: N passed, N failed` (NAME with - as _); exits non-zero if not caught.
set -u
cd "$(dirname "$0")/.."
canary=$1
name=$2
file=$3
test=$4
timeout_s=${5:-300}
runs=${6:-1}
must=${PYTEST_CANARY_MUST:-'^E +'}
bin=build/canary/$canary/shoal
log=build/test-logs/$name-pytest.log
mkdir -p build/test-logs
caught=0
run=0
if [ -x "$bin" ]; then
  while [ $run -lt "$runs" ] && [ $caught -eq 0 ]; do
    run=$((run + 1))
    if ! SHOAL_BIN=$bin timeout "$timeout_s" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
      "tests/integration/$file" -k "$test" >"$log" 2>&1 && grep -qE "$must" "$log"; then
      caught=1
    fi
  done
fi
if [ $caught -eq 1 ]; then
  grep -m1 -E "$must" "$log"
  [ "$runs" -gt 1 ] && echo "$name: $canary caught (run $run)" || echo "$name: $canary caught"
  echo "${name//-/_}: 1 passed, 0 failed"
  exit 0
fi
tail -n 20 "$log" 2>/dev/null
echo "$name: $canary was NOT caught (or $bin is missing; see $log)"
echo "${name//-/_}: 0 passed, 1 failed"
exit 1
