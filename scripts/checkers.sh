#!/usr/bin/env bash
# The checkers beside the tests: the loom models, Miri on the pure-memory unsafe code, and each
# cargo-fuzz target for a short run. Each runs where the toolchain allows it and otherwise prints
# `skipped: <checker>: <reason>`; a checker that runs and fails fails the script. Every stage
# prints its time.
#
#   LOOM_MAX_PREEMPTIONS  preemption bound of the loom models (default 6: ~20 s of models;
#                         unbounded takes minutes)
#   FUZZ_SECONDS          seconds per fuzz target (default 20)
#   MIRI_FILTER           the unit tests Miri runs: names containing it (default `miri_`)
#   CHECKERS_NO_INSTALL=1 never `cargo install cargo-fuzz` when it is missing
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${FUZZ_SECONDS:-20}
miri_filter=${MIRI_FILTER:-miri_}
t0=$(date +%s)
took() { echo "checkers: $1 took $(( $(date +%s) - $2 )) s"; }

# Loom: its own target dir, so the `--cfg loom` build does not invalidate the normal one.
t=$(date +%s)
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-6} \
    cargo test --release --lib --target-dir target/loom loom
took loom "$t"

# Miri, on nightly with the miri component (rustup's server may be unreachable: no download).
t=$(date +%s)
if ! miri_version=$(cargo +nightly miri --version 2>&1); then
    echo "skipped: miri: $(head -n1 <<<"$miri_version")"
else
    echo "checkers: $miri_version"
    out=$(cargo +nightly miri test --lib --target-dir target/miri -- "$miri_filter" 2>&1) \
        || { echo "$out"; echo "checkers: miri FAILED" >&2; exit 1; }
    echo "$out" | grep -E '^test |^test result' || true
    if grep -q 'running 0 tests' <<<"$out"; then
        echo "checkers: miri: no unit test named *${miri_filter}* yet: nothing checked"
    fi
fi
took miri "$t"

# Fuzzing: nightly and cargo-fuzz (installed from crates.io when missing).
t=$(date +%s)
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "skipped: fuzz: no nightly toolchain (cargo-fuzz needs -Z sanitizer)"
else
    if ! cargo fuzz --version >/dev/null 2>&1 && [[ ${CHECKERS_NO_INSTALL:-} != 1 ]]; then
        echo "checkers: installing cargo-fuzz"
        timeout 600 cargo install cargo-fuzz --locked >/dev/null 2>&1 || true
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "skipped: fuzz: cargo-fuzz is not installed and could not be (cargo install cargo-fuzz --locked)"
    else
        mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
        if ((${#targets[@]} == 0)); then echo "checkers: fuzz: FAIL: no target listed" >&2; exit 1; fi
        cargo +nightly fuzz build -O
        for target in "${targets[@]}"; do
            echo "checkers: fuzzing $target for ${fuzz_seconds} s"
            # Only libFuzzer's summary lines are shown; with pipefail the run's status decides.
            if ! cargo +nightly fuzz run -O "$target" -- -max_total_time="$fuzz_seconds" 2>&1 \
                | { grep -E '^Done|ERROR|panicked|SUMMARY' || true; }; then
                echo "checkers: fuzz target $target FAILED (see fuzz/artifacts/$target)" >&2
                exit 1
            fi
        done
    fi
fi
took fuzz "$t"
took all "$t0"
