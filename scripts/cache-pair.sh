#!/usr/bin/env bash
# Wall time of the cache suite's loop for two builds of `cache_loop`, run at the same time
# (one per core, swapping cores every round) so that a slow spell of a shared machine falls
# on both; prints each run's ratio B/A and their median (use an even number of rounds). Build each version with
#   cargo build --release -p perfkit-bench --no-default-features --features cache --example cache_loop
# and copy `target/release/examples/cache_loop` aside (the base from a separate target
# directory: path dependencies of two checkouts share artifact names in one).
#
#   scripts/cache-pair.sh /tmp/cache_loop.base /tmp/cache_loop.new [ROUNDS] [ARGS...]
#
# Pinned, each run sees one CPU, and `MemoryCache`'s default sharding follows the CPUs the
# process may use: 32 shards, where the suite on two CPUs has 64. Pass `--shards 64` to
# time what the suite runs (the hit ratio printed first tells the two apart).
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-8}"; shift 3 || shift $#
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ratios=()
# A and B swap CPUs every round (with taskset, when there is one), so that an even number
# of rounds gives each build each CPU equally. Even so, two copies of one build give a
# median of 0.96-1.04 over 8 rounds on this machine: a smaller ratio is not a result.
pin() { if command -v taskset > /dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
for round in $(seq "$rounds"); do
  ca=$((round % 2)); cb=$((1 - ca))
  CACHE_LOOP_TIME=1 pin "$ca" "$a" "$@" > "$out/a" &
  CACHE_LOOP_TIME=1 pin "$cb" "$b" "$@" > "$out/b" &
  wait
  ta=$(awk '/ns per request/ {print $4}' "$out/a")
  tb=$(awk '/ns per request/ {print $4}' "$out/b")
  ratios+=("$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.3f", b/a}')")
  echo "A $ta ns  B $tb ns  B/A ${ratios[-1]}"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "median B/A %.3f over %d rounds\n", m, NR}'
