#!/usr/bin/env bash
# Idle cost of a cluster of many nodes: starts NODES `shoal server`
# processes on loopback with SHARDS shards of 3 replicas (group 0 on the
# first 16 nodes by id, the others pulling the map: docs/cluster.md, "The
# meta group"), waits SETTLE seconds for elections and quiescence, checks
# every node reports cluster_state:ok and an installed map, then measures
# each node's CPU (user + system, from /proc/PID/stat) over SECONDS.
# Usage: bench/idle-nodes.sh [BIN] [NODES] [SHARDS] [SECONDS] [SETTLE] [PORT]
# e.g.   bench/idle-nodes.sh build/shoal 24 24 30 20 29000
# Node i serves clients on PORT+i and peers on PORT+500+i.
set -u
bin=${1:-build/shoal}
nodes=${2:-24}
shards=${3:-24}
secs=${4:-30}
settle=${5:-20}
port=${6:-29000}
dir=$(mktemp -d /tmp/shoal-idle-nodes-XXXXXX)
members=""
for i in $(seq 1 "$nodes"); do
  members="$members${members:+,}$i=127.0.0.1:$((port + i)):$((port + 500 + i))"
done
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for i in $(seq 1 "$nodes"); do
  "$bin" server --id "$i" --dir "$dir/n$i" --cluster "$members" --shards "$shards" \
    --replicas 3 >"$dir/log$i" 2>&1 &
  pids+=($!)
done
sleep "$settle"
ok=0
for i in $(seq 1 "$nodes"); do
  info=$(redis-cli -p $((port + i)) cluster info)
  grep -q cluster_state:ok <<<"$info" && grep -q shoal_map_installed:yes <<<"$info" &&
    ok=$((ok + 1))
done
echo "nodes=$nodes shards=$shards: $ok nodes with cluster_state:ok and the map installed"
tick=$(getconf CLK_TCK)
declare -A before
for p in "${pids[@]}"; do before[$p]=$(awk '{print $14 + $15}' "/proc/$p/stat"); done
sleep "$secs"
all=()
for i in $(seq 0 $((nodes - 1))); do
  p=${pids[$i]}
  after=$(awk '{print $14 + $15}' "/proc/$p/stat")
  all+=("$(echo "scale=2; ($after - ${before[$p]}) * 100 / $tick / $secs" | bc)")
done
echo "cpu% per node (node 1..$nodes): ${all[*]}"
printf '%s\n' "${all[@]}" | sort -n | awk -v n="$nodes" \
  '{v[NR] = $1; s += $1} END {printf "cpu%% min %s median %s max %s total %.2f\n", v[1], v[int((n + 1) / 2)], v[n], s}'
