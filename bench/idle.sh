#!/usr/bin/env bash
# Idle cost of many shard replicas: starts 3 `shoal server` processes on
# loopback with SHARDS shards of 3 replicas (every node holds every shard),
# waits SETTLE seconds for elections and quiescence, then measures each
# node's CPU (user + system, from /proc) over SECONDS and its RSS.
# Usage: bench/idle.sh [BIN] [SHARDS] [SECONDS] [SETTLE]
# e.g.   bench/idle.sh build/shoal 1000 20 20
# (docs/node.md, "Quiet groups"). Ports 28101-28103 and 28201-28203.
set -u
bin=${1:-build/shoal}
shards=${2:-1000}
secs=${3:-20}
settle=${4:-20}
dir=$(mktemp -d /tmp/shoal-idle-XXXXXX)
members=1=127.0.0.1:28101:28201,2=127.0.0.1:28102:28202,3=127.0.0.1:28103:28203
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for i in 1 2 3; do
  "$bin" server --id "$i" --dir "$dir/n$i" --cluster "$members" --shards "$shards" \
    --replicas 3 >"$dir/log$i" 2>&1 &
  pids+=($!)
done
sleep "$settle"
tick=$(getconf CLK_TCK)
declare -A before
for p in "${pids[@]}"; do before[$p]=$(awk '{print $14 + $15}' "/proc/$p/stat"); done
sleep "$secs"
for i in 0 1 2; do
  p=${pids[$i]}
  after=$(awk '{print $14 + $15}' "/proc/$p/stat")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$p/status")
  cpu=$(echo "scale=2; ($after - ${before[$p]}) * 100 / $tick / $secs" | bc)
  echo "shards=$shards node=$((i + 1)) cpu=${cpu}% rss=$((rss / 1024))MB"
done
redis-cli -p 28101 cluster info | grep -E 'cluster_state' || true
