#!/usr/bin/env bash
# bench/gather.sh: latency of one command over several shards through a
# plain client. Starts `shoal demo` (3 nodes, 3 shards, one leader each),
# loads 100 keys spread over the three shards and runs redis-benchmark with
# `MGET` of all 100 against node 1 (which leads one of the shards, so two
# of every three parts go to another node), with 1 and with 10 connections.
#
#   bench/gather.sh [BIN] [PORT] [REQUESTS]
#
# BIN defaults to build/shoal (release), PORT (node 1's client port; peers
# at PORT+10000..) to 27101, REQUESTS to 20000. Prints redis-benchmark's CSV
# line per connection count: requests/s, then avg, min, p50, p95, p99, max
# latency in ms. The demo is stopped by its process group at the end.
set -euo pipefail
bin=${1:-build/shoal}
port=${2:-27101}
requests=${3:-20000}
dir=$(mktemp -d /tmp/shoal-gather-XXXXXX)
setsid "$bin" demo --port "$port" --dir "$dir/d" >"$dir/demo.log" 2>&1 &
demo=$!
stop() {
    kill -INT -- "-$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT
for _ in $(seq 600); do
    grep -q "node 1:" "$dir/demo.log" && break
    sleep 0.1
done
grep -q "node 1:" "$dir/demo.log" || { cat "$dir/demo.log"; exit 1; }
keys=()
for i in $(seq 0 99); do keys+=("k$i"); done
for k in "${keys[@]}"; do redis-cli -p "$port" set "$k" "value-$k" >/dev/null; done
shards=$(for k in "${keys[@]}"; do redis-cli -p "$port" cluster keyslot "$k"; done |
         awk '{print ($1 < 5461) ? 1 : ($1 < 10922) ? 2 : 3}' | sort -u | wc -l)
[ "$shards" = 3 ] || { echo "the keys span $shards shards, not 3"; exit 1; }
got=$(redis-cli -p "$port" mget "${keys[@]}" | grep -c '^value-')
[ "$got" = 100 ] || { echo "MGET returned $got of 100 values"; exit 1; }
echo "MGET of 100 keys over 3 shards, node 1 of a 3-node demo ($bin, $requests requests)"
for c in 1 10; do
    line=$(redis-benchmark -p "$port" -c "$c" -n "$requests" --csv mget "${keys[@]}" | tail -1 |
           cut -d, -f2-)
    echo "c$c: $line"
done
