#!/usr/bin/env bash
# make soak SECONDS=N: runs simulator seeds on every core for N seconds,
# each core on its own seed range (a random base, printed, so a later soak
# covers new seeds). Stops at the first violation and names its seed.
set -u
secs=${1:-600}
cd "$(dirname "$0")/.."
cores=$(nproc)
base=${SOAK_START:-$(( (RANDOM << 15 | RANDOM) * 1000 ))}
echo "soak: $secs s on $cores cores from seed $base"
pids=()
for i in $(seq 0 $((cores - 1))); do
  build/shoal-sim --seconds "$secs" --start $((base + i * 100000000)) \
    >"build/soak-$i.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
cat build/soak-*.log
exit $rc
