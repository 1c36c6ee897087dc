#!/usr/bin/env bash
# The fault suite on real processes (docs/chaos.md): builds a private network
# of namespaces, runs tests/chaos/chaos.py inside it, and tears it all down
# on exit, after a failure or on Ctrl-C.
#
#   scripts/chaos.sh [--seconds N] [--seed S] [--bin PATH] [--profile P]
#                    [--nodes N] [--shards S] [--replicas R] [--out DIR]
#                    [--workers N]   (default 5 nodes, 8 shards of 3 replicas)
#
# Network: for a run tag T (0..9, the first free one):
#   bridge  shoalcTbr (no address: the root namespace cannot reach the nodes)
#   node i  namespace shoalc-T-ni, veth shoalcTvi <-> eth0, 10.77.T.(10+i)/24
#   clients namespace shoalc-T-cl, veth shoalcTvc <-> eth0, 10.77.T.100/24
#   data    /tmp/shoalc-T/ni: a tmpfs of DISK_MB (the disk-full nemesis fills it)
# No namespace has a route beyond 10.77.T.0/24, so no packet leaves the bridge.
# The driver and the clients run in shoalc-T-cl; nodes in their own.
# Stale namespaces, links and mounts of dead runs (owner pid gone) are swept
# at start. Exit code: the driver's (0 when the history checked clean).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=shoalc
STATE=/run/shoalc
DISK_MB=${CHAOS_DISK_MB:-96}

nodes=5
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "chaos: needs root (network namespaces, nftables, tmpfs)" >&2
  echo "chaos: ops 0, faults 0, lost acknowledged writes 0, anomalies 1"
  exit 2
fi
for tool in ip nft iptables mount /usr/bin/python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "chaos: $tool is missing (scripts/deps.sh installs it)" >&2
    exit 2
  fi
done

# Removes everything of run tag $1: processes in its namespaces, the
# namespaces, links, mounts and state. Idempotent; every step may fail.
teardown() {
  local t=$1 ns pid m
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-$t-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      [ "$pid" != "$$" ] && kill -CONT "$pid" 2>/dev/null
      [ "$pid" != "$$" ] && kill -KILL "$pid" 2>/dev/null
    done
  done
  sleep 0.2
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-$t-" || true); do
    ip netns del "$ns" 2>/dev/null
  done
  for m in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
    grep -E "^$PREFIX${t}(br|v[0-9c]+)$" || true); do
    ip link del "$m" 2>/dev/null
  done
  for m in $(awk '{print $2}' /proc/mounts | grep -E "^/tmp/$PREFIX-$t/" || true); do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "/tmp/$PREFIX-$t" 2>/dev/null
  rm -f "$STATE/$t.pid"
}

# Sweeps runs whose owner is gone (a killed suite), then claims a free tag.
mkdir -p "$STATE"
exec 9>"$STATE/lock"
flock 9
for t in 0 1 2 3 4 5 6 7 8 9; do
  owner=$(cat "$STATE/$t.pid" 2>/dev/null || true)
  if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
  if [ -n "$owner" ] || ip netns list 2>/dev/null | grep -qE "^$PREFIX-$t-" ||
    ip link show "${PREFIX}${t}br" >/dev/null 2>&1; then
    echo "chaos: sweeping stale run $t (owner ${owner:-unknown})" >&2
    teardown "$t"
  fi
done
tag=
for t in 0 1 2 3 4 5 6 7 8 9; do
  if [ ! -e "$STATE/$t.pid" ]; then tag=$t; break; fi
done
if [ -z "$tag" ]; then
  echo "chaos: ten runs are live; no free tag" >&2
  exit 2
fi
echo $$ >"$STATE/$tag.pid"
flock -u 9

cleaned=0
cleanup() {
  [ $cleaned -eq 1 ] && return
  cleaned=1
  teardown "$tag"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

net=10.77.$tag
br=${PREFIX}${tag}br
set -e
ip link add "$br" type bridge
ip link set "$br" up
veth() { # veth NAMESPACE HOSTSIDE ADDRESS
  ip netns add "$1"
  ip link add "$2" type veth peer name eth0 netns "$1"
  ip link set "$2" master "$br"
  ip link set "$2" up
  ip -n "$1" addr add "$3/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
for i in $(seq 1 "$nodes"); do
  veth "$PREFIX-$tag-n$i" "${PREFIX}${tag}v$i" "$net.$((10 + i))"
  mkdir -p "/tmp/$PREFIX-$tag/n$i"
  mount -t tmpfs -o "size=${DISK_MB}m" "shoalc-$tag-n$i" "/tmp/$PREFIX-$tag/n$i"
done
veth "$PREFIX-$tag-cl" "${PREFIX}${tag}vc" "$net.100"
set +e

ip netns exec "$PREFIX-$tag-cl" /usr/bin/python3 "$ROOT/tests/chaos/chaos.py" \
  --tag "$tag" --net "$net" --data "/tmp/$PREFIX-$tag" --nodes "$nodes" "${args[@]}"
rc=$?
exit $rc
