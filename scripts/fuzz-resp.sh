#!/usr/bin/env bash
# Fuzzes the RESP parser (tests/fuzz/fuzz_resp.c) with libFuzzer, two checks:
#  1. fuzz: build/fuzz/fuzz_resp runs for SECONDS (default 20) on the seeds in
#     tests/fuzz/corpus/resp plus what earlier runs kept in
#     build/fuzz/corpus-resp; passes if it finds nothing (no crash, leak,
#     invariant failure, allocation over 64 MiB or timeout);
#  2. canary: build/fuzz/fuzz_resp_canary (-DCANARY_RESP_OVERREAD, an
#     off-by-one read past the caller's buffer) must crash with an ASan
#     report within 60 s, starting from the same seeds.
# Prints `fuzz_resp: N passed, N failed` last; exits non-zero on a failure.
# A crashing input is kept as build/fuzz/resp-crash-*; replay it with
# `build/fuzz/fuzz_resp FILE`.
# Usage: scripts/fuzz-resp.sh [SECONDS]
set -u
seconds=${1:-20}
canary_seconds=60
cd "$(dirname "$0")/.."
out=build/fuzz
seeds=tests/fuzz/corpus/resp
cc=${FUZZ_CC:-clang-14}
flags=(-std=c11 -D_GNU_SOURCE -Isrc -g -O1 -Wall -Wextra -Wshadow -Wformat=2
       -Wimplicit-fallthrough -Werror -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -fno-omit-frame-pointer)
srcs=(tests/fuzz/fuzz_resp.c src/resp/resp.c)
fuzz_opts=(-timeout=10 -malloc_limit_mb=64 -rss_limit_mb=1024 -max_len=4096
           -print_final_stats=1)
passed=0
failed=0
mkdir -p "$out/corpus-resp"

# stat NAME LOG: a `stat::NAME: value` line of -print_final_stats.
stat() { grep -E "^stat::$1:" "$2" | tail -n 1 | awk '{print $2}'; }

build() {
  local bin=$1
  shift
  if ! "$cc" "${flags[@]}" "$@" -o "$bin" "${srcs[@]}" -lm >"$bin.build.log" 2>&1; then
    cat "$bin.build.log"
    return 1
  fi
}

# 1. the fuzzer on the real parser
log=$out/fuzz_resp.log
if ! build "$out/fuzz_resp"; then
  echo "fuzz: build failed"
  failed=$((failed + 1))
else
  "$out/fuzz_resp" "${fuzz_opts[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$out/resp-" "$out/corpus-resp" "$seeds" >"$log" 2>&1
  rc=$?
  runs=$(stat number_of_executed_units "$log")
  speed=$(stat average_exec_per_sec "$log")
  corpus=$(ls "$out/corpus-resp" | wc -l)
  if [ $rc -eq 0 ] && [ -n "$runs" ]; then
    echo "fuzz: ${runs} runs in ${seconds} s (${speed} exec/s), corpus ${corpus}: nothing found"
    passed=$((passed + 1))
  else
    echo "fuzz: FAILED (exit $rc) after ${runs:-?} runs; see $log"
    grep -E 'ERROR|invariant failed|runtime error|Test unit written' "$log" | head -n 5
    failed=$((failed + 1))
  fi
fi

# 2. the canary: the fuzzer must catch a deliberate overread
log=$out/fuzz_resp_canary.log
work=$(mktemp -d)
if ! build "$out/fuzz_resp_canary" -DCANARY_RESP_OVERREAD; then
  echo "canary RESP_OVERREAD: build failed"
  failed=$((failed + 1))
else
  start=$(date +%s%N)
  "$out/fuzz_resp_canary" "${fuzz_opts[@]}" -max_total_time="$canary_seconds" \
    -artifact_prefix="$work/" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  runs=$(stat number_of_executed_units "$log")
  if [ $rc -ne 0 ] && grep -q 'AddressSanitizer: heap-buffer-overflow' "$log"; then
    echo "canary RESP_OVERREAD: caught in ${ms} ms after ${runs:-?} runs"
    passed=$((passed + 1))
  else
    echo "canary RESP_OVERREAD: NOT caught in ${canary_seconds} s (exit $rc); see $log"
    failed=$((failed + 1))
  fi
fi
rm -rf "$work"

echo "fuzz_resp: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
