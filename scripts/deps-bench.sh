#!/usr/bin/env bash
# Installs the Debian packages `make bench` needs, when missing (the peers,
# the chart and the profiler). Idempotent: runs no apt-get when all are
# present. `make test` does not need any of them (scripts/deps.sh).
set -euo pipefail

need=()
# redis-server and redis-tools: the durability reference, Redis Cluster and
# redis-benchmark; etcd-server and etcd-client: the consensus peer;
# python3-matplotlib: the chart; linux-perf: the profiles in
# docs/performance.md.
for pkg in redis-server redis-tools etcd-server etcd-client python3-matplotlib linux-perf \
           libuv1-dev gcc make; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    need+=("$pkg")
done
[ -x /usr/bin/python3 ] || need+=(python3)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps-bench: installing ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps-bench: need root to apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq || true
# Debian's etcd-server starts a service on 2379/2380 when a service manager
# runs; the bench uses its own ports and members, so it does not care.
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}"
