#!/usr/bin/env bash
# The project's test command (README): unit, integration and doc tests on this machine, the
# benches once each in test mode (so they are known to run), then the multi-node tests inside
# the emulated multi-node machine (scripts/vm-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage prints its time (CI must stay under 25 minutes; see .ci/run).
stage() {
    local t
    t=$(date +%s)
    "$@"
    echo "test.sh: \`$*\` took $(( $(date +%s) - t )) s"
}
stage cargo test
stage cargo test --benches
stage scripts/vm-tests.sh
