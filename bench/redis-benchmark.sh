#!/usr/bin/env bash
# Side by side, one run, same machine: redis-benchmark against a 3-node
# shoal cluster (its leader, and a follower that proxies) and against one
# redis-server with appendonly yes / appendfsync always. Prints a Markdown
# table with ratios. Usage: bench/redis-benchmark.sh [N requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
c=${2:-50}
tmp=$(mktemp -d /tmp/shoal-bench-XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
# INT/TERM end the script (the EXIT trap then cleans up); a trap that
# returned would let the loops below go on with clobbered variables.
trap cleanup EXIT
trap 'exit 130' INT TERM
make -s build/shoal >/dev/null
redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
  --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
cl="1=127.0.0.1:7301:17301,2=127.0.0.1:7302:17302,3=127.0.0.1:7303:17303"
for i in 1 2 3; do
  build/shoal server --id "$i" --dir "$tmp/n$i" --cluster "$cl" >"$tmp/log$i" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  leader=$(redis-cli -p 7301 info raft 2>/dev/null | tr -d '\r' | sed -n 's/^leader://p')
  [ -n "${leader:-}" ] && [ "$leader" != 0 ] && break
  sleep 0.1
done
follower=$(( leader % 3 + 1 ))
run() { # port pipeline test -> requests per second and p50
  echo "  running: port $1 -P $2 -t $3" >&2
  redis-benchmark -p "$1" -n "$n" -c "$c" -P "$2" -t "$3" -r 1000000 -d 64 --csv 2>/dev/null |
    tr -d '"' | awk -F, '$1 ~ /^(SET|GET)$/ {r=$2; p=$5} END {printf "%d %s", r, (p == "" ? "error" : p)}'
}
echo "redis-benchmark -n $n -c $c -r 1000000 -d 64, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
echo
echo "| test | pipeline | redis appendfsync always ops/s (p50 ms) | shoal leader ops/s (p50 ms) | shoal via follower ops/s (p50 ms) | leader/redis |"
echo "|---|---|---|---|---|---|"
for t in set get; do
  for p in 1 16; do
    read -r r rp <<<"$(run 6399 "$p" "$t")"
    read -r s sp <<<"$(run "730$leader" "$p" "$t")"
    read -r f fp <<<"$(run "730$follower" "$p" "$t")"
    ratio=$(awk -v a="$s" -v b="$r" 'BEGIN{printf "%.2f", a/b}')
    echo "| $t | $p | $r ($rp) | $s ($sp) | $f ($fp) | $ratio |"
  done
done
