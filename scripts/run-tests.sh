#!/usr/bin/env bash
# Runs every suite of `make test`, prints each suite's summary line, and ends
# with the total `tests: N passed, N failed`; exits non-zero on any failure.
# Usage: scripts/run-tests.sh SEEDS "SIM_CANARY ..." "UNIT_CANARY ..."
set -u
seeds=${1:-2000}
canaries=${2:-}
unit_canaries=${3:-}
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs"
total_passed=0
total_failed=0

# Adds the counts of a line `NAME: N passed, N failed` (last one in a log).
count() {
  local name=$1 log=$2 line p f
  line=$(grep -E '^[a-z_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$name: 0 passed, 1 failed (no summary line; see $log)"
    total_failed=$((total_failed + 1))
    return
  fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  echo "$line"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  if [ "$f" -ne 0 ]; then failed_suites+=("$name ($log)"); fi
}
failed_suites=()

# UNIT_TESTS (from the Makefile): the sanitized unit-test binaries.
# EXTRA_CHECKS: further commands, each ending with `NAME: N passed, N failed`.
# LIVE_CHECKS: the EXTRA_CHECKS that run real nodes on loopback (integration,
# the fault suite, the node canaries). They mostly wait on elections,
# restarts and timeouts (integration: about 100 CPU seconds in 230 s, the
# fault suite 20 in 120), so they run in a lane of their own, LIVE_JOBS
# (2) at a time, while the CPU-bound suites run in the other lane, CPU_JOBS
# (2) at a time, at a lower priority (nice) so that the nodes' timing is
# not disturbed. Each lane takes its suites in order, the next one as soon
# as a slot is free. Each suite's log and exit code go to $logs/NAME.log
# and $logs/NAME.rc; the counts are added up in one order once both lanes
# are done.
unit_tests=${UNIT_TESTS:-build/test/test_raft build/test/test_lin build/test/test_sim_disk}
live_checks=${LIVE_CHECKS:-}
cpu_checks=""
for check in ${EXTRA_CHECKS:-}; do
  case " $live_checks " in
    *" $check "*) ;;
    *) cpu_checks="$cpu_checks $check" ;;
  esac
done
name_of() { basename "$1" | sed -E 's/\.[a-z]+$//'; }
# $logs/times: one line per suite, `NAME WALL_SECONDS CPU_SECONDS`. The CPU
# seconds are those of the suite's processes (user + system, from bash's
# `times` in a subshell that ran only the suite): on two cores the wall time
# of `make test` cannot drop below half the sum of them.
cpu_of() { # FILE: the children's user + system seconds in `times` output
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] }
                 printf "%d", s + 0.5 }' "$1"
}
timed() { # NAME COMMAND...: runs it in a subshell, appends NAME WALL CPU to $logs/times
  local t=$1 start
  shift
  start=$(date +%s)
  ( "$@"; times >"$logs/$t.cpu" )
  echo "$t $(( $(date +%s) - start )) $(cpu_of "$logs/$t.cpu")" >>"$logs/times"
}
run_check() { # NICENESS SCRIPT: runs it, timed, into $logs/NAME.{log,rc}
  local t
  t=$(name_of "$2")
  timed "$t" run_check_ "$@"
}
run_check_() {
  local t
  t=$(name_of "$2")
  nice -n "$1" bash "$2" >"$logs/$t.log" 2>&1
  echo $? >"$logs/$t.rc"
}
rm -f "$logs/times"
run_start=$(date +%s)
if [ -n "${BUILD_SECONDS:-}" ]; then echo "build $BUILD_SECONDS -" >>"$logs/times"; fi
unit_test() { # BINARY: runs it into $logs/NAME.{log,rc}
  local t
  t=$(basename "$1")
  nice -n 10 "$1" >"$logs/$t.log" 2>&1
  echo $? >"$logs/$t.rc"
}
# Simulator seeds, each run split over two processes (two cores): SEEDS of
# the optimized build (the search for protocol bugs), then SIM_ASAN_SEEDS of
# the ASan/UBSan build (memory and undefined behaviour; about 6x slower).
sim_passed=0
sim_failed=0
sim_run() { # BINARY SEEDS START TAG
  local bin=$1 n=$2 first=$3 tag=$4 half ra rb part log line k v
  half=$((n / 2))
  nice -n 10 "$bin" --seeds "$half" --start "$first" >"$logs/sim-$tag-a.log" 2>&1 &
  local pa=$!
  nice -n 10 "$bin" --seeds $((n - half)) --start $((first + half)) >"$logs/sim-$tag-b.log" 2>&1 &
  local pb=$!
  wait $pa; ra=$?
  wait $pb; rb=$?
  local before=$sim_failed
  for part in a b; do
    log="$logs/sim-$tag-$part.log"
    grep -vE '^seeds:' "$log" | tail -n 3
    line=$(grep -E '^seeds: [0-9]+, violations: [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
      sim_failed=$((sim_failed + 1))
      echo "sim-$tag-$part: no summary line (see $log)"
      continue
    fi
    k=$(sed -E 's/seeds: ([0-9]+),.*/\1/' <<<"$line")
    v=$(sed -E 's/.*violations: ([0-9]+)/\1/' <<<"$line")
    sim_passed=$((sim_passed + k - v))
    sim_failed=$((sim_failed + v))
  done
  if { [ $ra -ne 0 ] || [ $rb -ne 0 ]; } && [ $sim_failed -eq $before ]; then
    sim_failed=$((sim_failed + 1))
  fi
}
sims() { # in a subshell (timed): the counts go to $logs/sim-counts
  sim_run build/shoal-sim "$seeds" 1 release >"$logs/sim-summary"
  # the sanitized seeds start past the optimized ones: more distinct schedules
  sim_run build/test/shoal-sim "${SIM_ASAN_SEEDS:-300}" $((seeds + 1)) asan >>"$logs/sim-summary"
  echo "$sim_passed $sim_failed" >"$logs/sim-counts"
}
echo "0 1" >"$logs/sim-counts"

canaries_run() {
  nice -n 10 bash scripts/canaries.sh "$canaries" "$unit_canaries" "$seeds" >"$logs/canaries.log" 2>&1
}
run_job() { # JOB: one entry of a lane (live:SCRIPT, cpu:SCRIPT, unit:BINARY, sim, canaries)
  case $1 in
    live:*) run_check 0 "${1#live:}" ;;
    cpu:*) run_check 10 "${1#cpu:}" ;;
    unit:*) timed "$(basename "${1#unit:}")" unit_test "${1#unit:}" ;;
    sim) timed sim sims ;;
    canaries) timed canaries canaries_run ;;
  esac
}
lane() { # SLOTS JOB...: the jobs in order, SLOTS at a time (run in a subshell of its own)
  local slots=$1 running=0 job
  shift
  for job in "$@"; do
    run_job "$job" &
    running=$((running + 1))
    if [ "$running" -ge "$slots" ]; then
      wait -n
      running=$((running - 1))
    fi
  done
  wait
}
live_jobs=()
for check in $live_checks; do live_jobs+=("live:$check"); done
# the simulator first (the longest), the unit tests last (the shortest)
cpu_jobs=(sim)
for check in $cpu_checks; do cpu_jobs+=("cpu:$check"); done
if [ -n "$canaries" ]; then cpu_jobs+=(canaries); fi
for bin in $unit_tests; do cpu_jobs+=("unit:$bin"); done
( lane "${LIVE_JOBS:-2}" "${live_jobs[@]}" ) &
live_pid=$!
( lane "${CPU_JOBS:-2}" "${cpu_jobs[@]}" )
wait "$live_pid"
read -r sim_passed sim_failed <"$logs/sim-counts"
# the counts, in one order: unit tests, checks, simulators, canaries
report() { # NAME: the summary line of $logs/NAME.log, and a non-zero exit without one
  local t=$1 rc
  count "$t" "$logs/$t.log"
  rc=$(cat "$logs/$t.rc" 2>/dev/null || echo 1)
  if [ "$rc" -ne 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$logs/$t.log"; then
    echo "$t: exited $rc (see $logs/$t.log)"
    total_failed=$((total_failed + 1))
    failed_suites+=("$t ($logs/$t.log)")
  fi
}
for bin in $unit_tests; do
  t=$(basename "$bin")
  report "$t"
  grep -E '^FAIL|CHECK failed|ERROR' "$logs/$t.log" | head -n 20
done
for check in ${EXTRA_CHECKS:-}; do report "$(name_of "$check")"; done
cat "$logs/sim-summary"
echo "sim: $sim_passed passed, $sim_failed failed"
total_passed=$((total_passed + sim_passed))
total_failed=$((total_failed + sim_failed))
if [ -n "$canaries" ]; then
  grep -vE '^canaries:' "$logs/canaries.log"
  count canaries "$logs/canaries.log"
fi
# What failed, again, next to the summary: a CI log often keeps only its end.
if [ "$sim_failed" -ne 0 ]; then failed_suites+=("sim ($logs/sim-*.log)"); fi
for f in "${failed_suites[@]}"; do
  log=${f#*(}
  log=${log%)}
  echo "FAILED suite: $f"
  # shellcheck disable=SC2086 # the sim's logs are a pattern
  grep -hE 'FAIL|FAILED|VIOLATION|NOT caught|CHECK failed|Error|ERROR|assert' $log 2>/dev/null |
    grep -vE ' 0 failed|^canary .* caught' | head -n 6 | cut -c1-240
done
times >"$logs/all.cpu"
echo "seconds per suite, wall/cpu (the two lanes overlap): $(sort -k2 -nr "$logs/times" |
  awk '{printf "%s%s %s/%s", (NR>1?", ":""), $1, $2, $3}')"
echo "seconds in all: ${BUILD_SECONDS:+build $BUILD_SECONDS wall, }tests" \
  "$(( $(date +%s) - run_start )) wall, $(cpu_of "$logs/all.cpu") cpu" \
  "(load average now $(cut -d' ' -f1-3 /proc/loadavg))"

echo "tests: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
