#!/usr/bin/env bash
# Mutant canaries: mutants of src/raft/ (and src/shard/shard.c) that once survived the simulators
# (scripts/mutants.py) and were killed by strengthening them. Each
# tests/mutants/canaries/NAME.patch is applied to a scratch copy of the tree
# (build/mutant-canary/NAME), built as a release simulator, and must be
# caught within the seeds named in the patch's header line
#   # canary: shoal-sim SEEDS     (or shoal-nsim SEEDS)
# or, for a mutant the scenario tests must catch (a release test_raft fails),
#   # canary: test_raft
# or, for one the whole-node simulator's scenarios must catch (a release
# shoal-nsim --scenarios prints a FAIL line),
#   # canary: nsim-scenarios
# Prints `mutant-canaries: N passed, N failed` last; exits non-zero on any failure.
set -u
# the release build of the scenario tests a `canary: test_raft` mutant runs
RAFT_TEST_SRC=(tests/unit/test_raft.c src/raft/raft.c src/raft/raft_log.c src/raft/raft_conf.c)
RAFT_TEST_FLAGS=(-std=c11 -D_GNU_SOURCE -Isrc -Itests/unit -O2)
# The release test_raft of a mutant: the sources its patch touches are
# compiled from the mutant's tree (the current directory), the others are
# linked as compiled once for all of them (OBJDIR); a patch that touches a
# header compiles every source.
# Usage: mutant-canaries.sh --build-test-raft OBJDIR PATCH  (in the tree)
if [ "${1:-}" = --build-test-raft ]; then
  objdir=$2
  patch=$3
  objs=()
  all=0
  if grep -qE '^\+\+\+ b/.*\.h' "$patch"; then all=1; fi
  for src in "${RAFT_TEST_SRC[@]}"; do
    if [ "$all" = 1 ] || grep -qE "^\+\+\+ b/$src" "$patch"; then
      o=build/$(basename "${src%.c}").o
      gcc "${RAFT_TEST_FLAGS[@]}" -c -o "$o" "$src" || exit 1
      objs+=("$o")
    else
      objs+=("$objdir/$(basename "${src%.c}").o")
    fi
  done
  exec gcc -o build/test_raft "${objs[@]}"
fi
cd "$(dirname "$0")/.."
jobs=${MUTANT_CANARY_JOBS:-2}
# One canary: prints its result line, the last word of which is PASS or FAIL.
one() {
  local patch=$1 name sim seeds dir build out rc caught t0 ms what
  name=$(basename "$patch" .patch)
  read -r _ _ sim seeds < <(grep -m1 '^# canary:' "$patch")
  dir=build/mutant-canary/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  # mtimes kept, and the release objects with them: make rebuilds only
  # what the patch touched (and what is stale here too), so a shoal-nsim
  # canary costs one compile and a link rather than the whole node
  cp -rp Makefile mk src "$dir"/
  mkdir -p "$dir/tests" && cp -rp tests/unit "$dir/tests/"
  if [ "$sim" != test_raft ] && [ -d build/obj/release ]; then
    mkdir -p "$dir/build/obj" && cp -rp build/obj/release "$dir/build/obj/"
  fi
  local bin=$sim
  [ "$sim" = nsim-scenarios ] && bin=shoal-nsim
  if [ "$sim" = test_raft ]; then
    build=(bash "$ROOT/scripts/mutant-canaries.sh" --build-test-raft "$ROOT/$raft_obj"
           "$ROOT/$patch")
  else
    build=(make -s --no-print-directory "build/$bin")
  fi
  if ! patch -s -p1 -d "$dir" <"$patch" ||
     ! (cd "$dir" && mkdir -p build && "${build[@]}") >"$dir/build.log" 2>&1; then
    echo "mutant canary $name: does not apply or build (see $dir/build.log) FAIL"
    return
  fi
  if [ "$sim" = test_raft ]; then
    out=$("$dir/build/test_raft" 2>&1)
    rc=$?
    caught=$(grep -E '^FAIL ' <<<"$out" | sed -E 's/^FAIL //' | tr '\n' ' ')
    if [ $rc -ne 0 ] && [ -n "$caught" ]; then
      echo "mutant canary $name (test_raft): caught by ${caught}PASS"
    else
      echo "mutant canary $name (test_raft): NOT caught (exit $rc) FAIL"
    fi
    return
  fi
  if [ "$sim" = nsim-scenarios ]; then
    out=$("$dir/build/shoal-nsim" --scenarios 2>&1)
    rc=$?
    caught=$(grep -m1 -E '^FAIL ' <<<"$out" | sed -E 's/^FAIL //' | cut -c1-120)
    if [ $rc -ne 0 ] && [ -n "$caught" ]; then
      echo "mutant canary $name (nsim-scenarios): caught by $caught PASS"
    else
      echo "mutant canary $name (nsim-scenarios): NOT caught (exit $rc) FAIL"
    fi
    return
  fi
  t0=$(date +%s%N)
  out=$("$dir/build/$sim" --seeds "$seeds" --quiet 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ $rc -eq 1 ] && grep -q '^VIOLATION seed' <<<"$out"; then
    what=$(grep -m1 '^VIOLATION seed' <<<"$out" | cut -c1-140)
    echo "mutant canary $name ($sim): caught in ${ms} ms: $what PASS"
  else
    echo "mutant canary $name ($sim): NOT caught in $seeds seeds (exit $rc) FAIL"
  fi
}
ROOT=$(pwd)
raft_obj=build/mutant-canary/test_raft-obj
rm -rf "$raft_obj"
mkdir -p "$raft_obj"
for src in "${RAFT_TEST_SRC[@]}"; do
  o=$raft_obj/$(basename "${src%.c}")
  gcc "${RAFT_TEST_FLAGS[@]}" -c -o "$o.o" "$src" >"$o.log" 2>&1 &
done
wait
# MUTANT_CANARY_JOBS at a time (two cores: two builds, then two runs)
results=build/mutant-canary/results
mkdir -p "$results"
rm -f "$results"/*
running=0
for patch in tests/mutants/canaries/*.patch; do
  [ -e "$patch" ] || continue
  one "$patch" >"$results/$(basename "$patch" .patch)" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
passed=0
failed=0
for r in "$results"/*; do
  [ -e "$r" ] || continue
  line=$(cat "$r")
  echo "${line% *}"
  case $line in
    *PASS) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done
echo "mutant-canaries: $passed passed, $failed failed"
[ $failed -eq 0 ]
