#!/usr/bin/env bash
# Counts, per request of the cache suite's read-through loop, the instructions, the
# first-level data misses and the misses of a simulated 1 MB second-level cache, for
# perfkit's MemoryCache and quick_cache. Unlike wall time on a shared machine, these do not
# move between runs (fixed keys and hasher, address randomisation off), so a change of a
# few percent shows. Needs valgrind and setarch (util-linux).
#
#   scripts/cache-profile.sh                     # Zipf 0.9, default policy
#   scripts/cache-profile.sh 1.1 sieve           # Zipf 1.1, perfkit with SIEVE
#
# The key generation and the cache's construction are measured alone (`--dry 1`) and
# subtracted.
set -euo pipefail
cd "$(dirname "$0")/.."
zipf="${1:-0.9}"
policy="${2:-wtinylfu}"
requests="${REQUESTS:-4000000}"
cargo build --release --quiet -p perfkit-bench --no-default-features --features cache \
  --example cache_loop
bin="${CARGO_TARGET_DIR:-target}/release/examples/cache_loop"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Prints "instructions L1-misses L2-misses" for one run.
counts() {
  setarch "$(uname -m)" -R valgrind --tool=cachegrind --cache-sim=yes \
    --LL=1048576,16,64 --cachegrind-out-file="$out/cg" "$bin" "$@" >"$out/stdout" 2>"$out/log"
  awk '/I *refs:/ {gsub(",","",$4); i=$4}
       /D1  misses:/ {gsub(",","",$4); d=$4}
       /LLd misses:/ {gsub(",","",$4); l=$4}
       END {print i, d, l}' "$out/log"
}

read -r bi bd bl < <(counts --zipf "$zipf" --requests "$requests" --dry 1)
for subject in perfkit quick_cache; do
  read -r i d l < <(counts --zipf "$zipf" --requests "$requests" --subject "$subject" --policy "$policy")
  awk -v s="$subject" -v n="$requests" -v i="$i" -v d="$d" -v l="$l" \
      -v bi="$bi" -v bd="$bd" -v bl="$bl" -v hit="$(cat "$out/stdout")" \
      'BEGIN {printf "%-12s %7.1f instructions %6.2f L1 misses %6.2f L2 misses per request (%s)\n",
              s, (i-bi)/n, (d-bd)/n, (l-bl)/n, hit}'
done
