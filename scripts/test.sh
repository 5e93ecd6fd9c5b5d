#!/usr/bin/env bash
# The README's test command: installs what the tests need and is missing, then runs the
# whole test suite (unit, integration and doc tests of every crate).
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p perfkit-cache   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
install_test_deps

data="${PERFKIT_DATA:-../shared/data}"
if [ -d "$data" ]; then
  echo "test.sh: real-data tests WILL run (data: $data)"
else
  echo "test.sh: real-data tests will be SKIPPED (no $data; set PERFKIT_DATA to run them)"
fi

cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked "$@"
