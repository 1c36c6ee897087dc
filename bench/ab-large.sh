#!/bin/bash
# ab-large.sh BIN [KEYS] [PORT_BASE]: one A/B arm for large keyspaces. A fresh
# 3-node cluster of BIN (`shoal server`, defaults) on loopback ports
# PORT_BASE+1..3 (peers PORT_BASE+101..103), KEYS keys of 100 bytes loaded
# on the leader, three 10-s rounds of random SETs and one of GETs at c50 P16
# on the leader (`shoal bench` of this tree), then each node's RSS and
# snapshot figures; everything is stopped and deleted at the end. Run it
# once per binary, one after the other (docs/performance.md, "Snapshots
# without fork"). Every step is bounded in time.
set -u
BIN=$1; K=${2:-5000000}; PB=${3:-29100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOAD=$ROOT/build/shoal
D=$(mktemp -d /tmp/shoal-ab-XXXXXX)
C=1=127.0.0.1:$((PB+1)):$((PB+101)),2=127.0.0.1:$((PB+2)):$((PB+102)),3=127.0.0.1:$((PB+3)):$((PB+103))
pids=()
for i in 1 2 3; do
  setsid "$BIN" server --id $i --dir "$D/n$i" --cluster "$C" >"$D/log$i" 2>&1 &
  pids+=($!)
done
stop() { for p in "${pids[@]}"; do kill -9 -- -"$p" 2>/dev/null; done; rm -rf "$D"; }
trap stop EXIT
leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    redis-cli -p $((PB+i)) info raft 2>/dev/null | grep -q '^raft_role:leader' && leader=$((PB+i))
  done
  [ -n "$leader" ] && break
  sleep 0.2
done
[ -n "$leader" ] || { echo "no leader"; exit 1; }
echo "binary $BIN, $K keys, leader $leader"
timeout 1800 "$LOAD" bench --targets 127.0.0.1:$leader -t set --sequential -n "$K" -r "$K" \
  -d 100 -c 50 -P 16 --duration 1700 2>&1 | grep "requests in" | sed 's/^/load: /'
for r in 1 2 3; do
  timeout 60 "$LOAD" bench --targets 127.0.0.1:$leader -t set -n 1000000000 -r "$K" -d 100 \
    -c 50 -P 16 --duration 10 --seed $r 2>&1 | grep -E "requests in|latency" | sed "s/^/set $r: /"
done
timeout 60 "$LOAD" bench --targets 127.0.0.1:$leader -t get -n 1000000000 -r "$K" -d 100 \
  -c 50 -P 16 --duration 10 2>&1 | grep -E "requests in|latency" | sed 's/^/get: /'
for i in 1 2 3; do
  p=${pids[$((i-1))]}
  echo "node $i: rss_kb $(awk '/VmRSS/{print $2}' /proc/$p/status)" \
       "hwm_kb $(awk '/VmHWM/{print $2}' /proc/$p/status)" \
       "$(redis-cli -p $((PB+i)) info persistence | tr -d '\r' |
          grep -E '^(snapshots_taken|snapshot_last_duration_ms|snapshot_failures):' | tr '\n' ' ')"
done
grep -h "snapshot at" "$D"/log* | tail -6
