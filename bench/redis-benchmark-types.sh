#!/usr/bin/env bash
# Side by side, one run, same machine: redis-benchmark's data-type tests
# (LPUSH, LPOP, SADD, HSET, ZADD, XADD) against a 3-node shoal cluster's
# leader and against one redis-server with appendonly yes / appendfsync
# always, at C connections and pipeline P, in ROUNDS interleaved rounds;
# prints a Markdown table of medians and ratios.
# Usage: bench/redis-benchmark-types.sh [N requests] [clients] [pipeline] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
c=${2:-50}
p=${3:-16}
rounds=${4:-3}
tests=lpush,lpop,sadd,hset,zadd,xadd
tmp=$(mktemp -d /tmp/shoal-bench-types-XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
make -s build/shoal >/dev/null
rport=${SHOAL_BENCH_REDIS_PORT:-6398}
base=${SHOAL_BENCH_PORT:-7311}
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
  --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
cl=""
for i in 1 2 3; do cl="$cl${cl:+,}$i=127.0.0.1:$((base + i - 1)):$((base + 10000 + i - 1))"; done
for i in 1 2 3; do
  build/shoal server --id "$i" --dir "$tmp/n$i" --cluster "$cl" >"$tmp/log$i" 2>&1 &
  pids+=($!)
done
leader=""
for _ in $(seq 100); do
  leader=$(redis-cli -p "$base" info raft 2>/dev/null | tr -d '\r' | sed -n 's/^leader://p')
  [ -n "${leader:-}" ] && [ "$leader" != 0 ] && break
  sleep 0.1
done
lport=$((base + leader - 1))
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
run() { # port round -> lines "TEST rps p50"
  redis-benchmark -p "$1" -n "$n" -c "$c" -P "$p" -t "$tests" -r 1000000 -d 64 --csv 2>/dev/null |
    tr -d '"' | awk -F, 'NR > 1 && $2 ~ /^[0-9.]+$/ {print $1, $2, $5}'
  # redis-benchmark 7.0 has no XADD test: the same load as a custom command
  redis-benchmark -p "$1" -n "$n" -c "$c" -P "$p" -r 1000000 --csv \
    XADD mystream '*' field __rand_int__ 2>/dev/null |
    tr -d '"' | awk -F, 'NR > 1 && $2 ~ /^[0-9.]+$/ {print "XADD", $2, $5}'
}
for r in $(seq "$rounds"); do
  echo "  round $r" >&2
  # each round starts from empty data on both, so LPOP pops what LPUSH pushed
  redis-cli -p "$rport" flushall >/dev/null
  redis-cli -p "$lport" flushall >/dev/null
  run "$rport" | sed "s/^/redis /" >>"$tmp/results"
  run "$lport" | sed "s/^/shoal /" >>"$tmp/results"
done
echo "redis-benchmark -n $n -c $c -P $p -t $tests -r 1000000 -d 64, $rounds interleaved rounds, medians; $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| test | redis appendfsync always ops/s (p50 ms) | shoal leader ops/s (p50 ms) | shoal/redis |"
echo "|---|---|---|---|"
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for t in LPUSH LPOP SADD HSET ZADD XADD; do
  rr=$(awk -v t="$t" '$1=="redis" && $2==t {print $3}' "$tmp/results" | median)
  rp=$(awk -v t="$t" '$1=="redis" && $2==t {print $4}' "$tmp/results" | median)
  sr=$(awk -v t="$t" '$1=="shoal" && $2==t {print $3}' "$tmp/results" | median)
  sp=$(awk -v t="$t" '$1=="shoal" && $2==t {print $4}' "$tmp/results" | median)
  ratio=$(awk -v a="$sr" -v b="$rr" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a"}')
  echo "| $t | ${rr%.*} ($rp) | ${sr%.*} ($sp) | ${ratio}x |"
done
