#!/usr/bin/env bash
# Mutant canaries: mutants of src/raft/ that once survived the simulators
# (scripts/mutants.py) and were killed by strengthening them. Each
# tests/mutants/canaries/NAME.patch is applied to a scratch copy of the tree
# (build/mutant-canary/NAME), built as a release simulator, and must be
# caught within the seeds named in the patch's header line
#   # canary: shoal-sim SEEDS     (or shoal-nsim SEEDS)
# Prints `mutant-canaries: N passed, N failed` last; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
for patch in tests/mutants/canaries/*.patch; do
  [ -e "$patch" ] || continue
  name=$(basename "$patch" .patch)
  read -r _ _ sim seeds < <(grep -m1 '^# canary:' "$patch")
  dir=build/mutant-canary/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -r Makefile mk src "$dir"/
  mkdir -p "$dir/tests" && cp -r tests/unit "$dir/tests/"
  if ! patch -s -p1 -d "$dir" <"$patch" ||
     ! make -s --no-print-directory -C "$dir" "build/$sim" >"$dir/build.log" 2>&1; then
    echo "mutant canary $name: does not apply or build (see $dir/build.log)"
    failed=$((failed + 1))
    continue
  fi
  t0=$(date +%s%N)
  out=$("$dir/build/$sim" --seeds "$seeds" --quiet 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ $rc -eq 1 ] && grep -q '^VIOLATION seed' <<<"$out"; then
    what=$(grep -m1 '^VIOLATION seed' <<<"$out" | cut -c1-140)
    echo "mutant canary $name ($sim): caught in ${ms} ms: $what"
    passed=$((passed + 1))
  else
    echo "mutant canary $name ($sim): NOT caught in $seeds seeds (exit $rc)"
    failed=$((failed + 1))
  fi
done
echo "mutant-canaries: $passed passed, $failed failed"
[ $failed -eq 0 ]
