#!/usr/bin/env bash
# The project's test command (README): unit, integration and doc tests on this machine, the
# benches once each in test mode (so they are known to run), then the multi-node tests inside
# the emulated multi-node machine (scripts/vm-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
cargo test --benches
scripts/vm-tests.sh
