#!/usr/bin/env bash
# A short fuzzing pass over perfkit-bundle's parsers (webpack stats, esbuild metafile,
# source maps), for CI: about a minute in all. Installs cargo-fuzz when it is missing.
#
#   scripts/fuzz-smoke.sh            # 8 s per target (about a minute with the build)
#   FUZZ_SECS=60 scripts/fuzz-smoke.sh
#
# Fuzzing needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them (see DESIGN.md). The seed corpus is written fresh each time from small
# valid and malformed inputs.
set -euo pipefail
cd "$(dirname "$0")/../crates/bundle/fuzz"
secs="${FUZZ_SECS:-8}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
seed() { mkdir -p "corpus/$1"; printf '%s' "$3" > "corpus/$1/$2"; }
seed stats valid '{"assets":[{"name":"a.js","size":10}],"chunks":[{"id":1,"names":["main"],"initial":true,"files":["a.js"]}],"entrypoints":{"main":{"chunks":[1]}},"modules":[{"name":"./src/a.js + 1 modules","size":3,"chunks":[1],"modules":[{"name":"./node_modules/x/i.js","size":2,"usedExports":true,"providedExports":["a"]}]}]}'
seed stats children '{"children":[{"name":"c","chunks":[{"id":"x","modules":[{"name":"m","size":1}]}]}]}'
seed metafile valid '{"inputs":{"a.js":{"bytes":5,"format":"esm"}},"outputs":{"out/a.js":{"imports":[{"path":"out/b.js","kind":"dynamic-import"}],"entryPoint":"a.js","inputs":{"a.js":{"bytesInOutput":4}},"bytes":9}}}'
mkdir -p corpus/sourcemap
printf '{"version":3,"sources":["a.js","b.js"],"mappings":"AAAA,ECAA;CDAA"}\000abcdef\nghij\n' > corpus/sourcemap/valid
seed sourcemap hostile '{"version":3,"sources":["a"],"mappings":"gggggggggggggggggg,AZZZ,//////,;;;;A"}'
# The targets build once (in release with debug assertions, as cargo fuzz does).
RUSTC_BOOTSTRAP=1 cargo fuzz build -O 2>&1 | tail -n 2
for target in stats metafile sourcemap; do
  echo "fuzz-smoke: $target for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=5 -print_final_stats=0 2>&1 | tail -n 3
done
echo "fuzz-smoke: no crash"
