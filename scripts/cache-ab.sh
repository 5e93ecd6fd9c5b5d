#!/usr/bin/env bash
# Two builds of perfkit-cache's MemoryCache compared in one process (`scripts/cache-ab/`):
# the suite's Zipf loop, in alternating chunks, over ROUNDS runs that alternate which cache
# is allocated first; prints each run's B/A (new over old) and their mean.
#
#   scripts/cache-ab.sh OLD NEW [ROUNDS] [ZIPF] [THREADS]
#
# OLD and NEW are git revisions, or `wt` for the working tree. A run of one build against
# itself reads 0.98-1.03, depending on the day (the cache allocated second or first is
# favoured by a percent or two): compare B/A with such an A/A run, made the same day.
# `POLICY=sieve` etc. and `SALT=N` pass through; `SHARDS_B=N` gives the new build's cache N
# shards (with OLD = NEW, shard counts compared).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
old="$1"; new="$2"; rounds="${3:-6}"; zipf="${4:-0.9}"; threads="${5:-1}"
snap() { # snap SLOT REV
  local dir="$root/target/cache-ab/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  if [ "$2" = wt ]; then cp -r "$root/crates/cache/src" "$dir/src"
  else (cd "$root" && git archive "$2" crates/cache/src) | tar -x -C "$dir" --strip-components=2; fi
  # The workspace's dependency versions, written out (a snapshot is not a member).
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "perfkit-cache-$1"
version = "0.1.0"
edition = "2024"
[dependencies]
perfkit-core = { path = "$root/crates/core" }
thiserror = "2"
parking_lot = "0.12"
parking_lot_core = "0.9"
hashbrown = { version = "0.16", default-features = false, features = ["inline-more"] }
flate2 = { version = "1", default-features = false, features = ["rust_backend"] }
lzma-rs = { version = "0.3", default-features = false }
ruzstd = { version = "0.8", default-features = false, features = ["std"] }
[features]
tiered = []
redis = []
TOML
}
snap old "$old"
snap new "$new"
cd "$root/scripts/cache-ab"
[ -f Cargo.lock ] || cp "$root/Cargo.lock" Cargo.lock
CARGO_TARGET_DIR="$root/target/cache-ab/target" cargo build --release --quiet
bin="$root/target/cache-ab/target/release/cache-ab"
for i in $(seq "$rounds"); do
  if [ $((i % 2)) = 0 ]; then SWAP=1 "$bin" "$zipf" 3000000 64 "$threads"; else "$bin" "$zipf" 3000000 64 "$threads"; fi
done | awk '{print} {for (i = 1; i <= NF; i++) if ($i == "B/A") {s += $(i+1); n++}} END {printf "mean B/A %.4f over %d runs\n", s/n, n}'
