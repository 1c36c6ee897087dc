#!/usr/bin/env bash
# Builds one canary binary (a deliberate bug, -DCANARY_NAME) from the
# release objects: only the sources that name CANARY_NAME are compiled
# again, with the flag; the others are linked as built for the release
# binaries (OBJDIR/<source>.o). A canary named in a header recompiles every
# source. A name found nowhere is an error: its build would be the release
# build, and a checker that "catches" it would prove nothing.
# Usage: scripts/canary-build.sh NAME OUT OBJDIR "CC CFLAGS" "LIBS" SOURCE...
set -eu
name=$1
out=$2
objdir=$3
cc=$4
libs=$5
shift 5
mark="CANARY_$name"
# objects of their own per binary: a canary may be built into several
# binaries (a node and a unit test) with different flags
own=$(dirname "$out")/obj-$(basename "$out")
mkdir -p "$own"
all=0
if grep -rqw --include='*.h' "$mark" src; then all=1; fi
objs=()
named=0
for src in "$@"; do
  if [ "$all" = 1 ] || grep -qw "$mark" "$src"; then
    o=$own/$(tr '/' '_' <<<"${src%.c}").o
    # shellcheck disable=SC2086 # cc holds the compiler and its flags
    $cc -D"$mark" -c -o "$o" "$src"
    objs+=("$o")
    named=1
  else
    objs+=("$objdir/${src%.c}.o")
  fi
done
if [ "$named" = 0 ]; then
  echo "canary-build: $mark appears in none of the sources of $out" >&2
  exit 1
fi
# shellcheck disable=SC2086
$cc -o "$out" "${objs[@]}" $libs
