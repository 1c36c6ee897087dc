#!/usr/bin/env bash
# Installs the Debian packages shoal needs to build and test, when missing.
# Called by `make deps` (and so by `make demo` and `make test`). Idempotent:
# on a machine that has everything it changes nothing and runs no apt-get.
set -euo pipefail

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Libraries and tools by package: libuv (the production io backend),
# jemalloc (the release binary's allocator: mk/shoal.mk), Lua 5.1
# with cjson and bitop (scripting: EVAL; pkg-config finds them),
# clang-14 (libFuzzer targets), redis-server and redis-tools (the reference
# the integration tests compare with, redis-cli for users), redis-py,
# pytest and pytest-xdist (the integration tests, on two workers), bc (test
# scripts); for the fault suite (docs/chaos.md): iproute2 (namespaces, veth,
# bridge), nftables (partitions, loss), iptables (its NFQUEUE target: delay),
# python3-matplotlib (timeline).
for pkg in libuv1-dev libjemalloc-dev liblua5.1-0-dev lua-cjson-dev lua-bitop-dev pkg-config clang-14 redis-server redis-tools python3-redis python3-pytest \
  python3-pytest-xdist bc iproute2 nftables iptables python3-matplotlib; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    need+=("$pkg")
done
# ASan/UBSan runtimes ship with gcc on Debian (libasan8, libubsan1); check
# that a sanitized program actually links.
if command -v gcc >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  printf 'int main(void){return 0;}\n' >"$tmp/t.c"
  if ! gcc -fsanitize=address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1; then
    need+=(libasan8 libubsan1 libgcc-12-dev)
  fi
  rm -rf "$tmp"
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: need root to apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}"
