#!/usr/bin/env bash
# Runs every multi-node test binary (tests/numa_*.rs) inside the emulated multi-socket,
# multi-node machine of ../shared/numavm, in three configurations:
#   default     2 sockets x 2 nodes x 2 cores, 1 GiB per node, distances 10/16/32
#   cpuless     the same plus one memory-only node (distance 40)
#   smt         the same with 2 threads per core (16 CPUs)
# Each binary learns what QEMU was told through LOCUS_VM_SPEC. Exit status: 0 when every run
# passed. Options: NUMAVM=path/to/numavm.sh; LOCUS_VM_CONFIGS="default cpuless smt" to choose.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
numavm=${NUMAVM:-$root/../shared/numavm/numavm.sh}
if [[ ! -x $numavm ]] || ! command -v qemu-system-x86_64 >/dev/null; then
    msg="numavm ($numavm) or qemu-system-x86_64 is missing"
    if [[ ${CI:-} == true ]]; then echo "vm-tests: FAIL: $msg" >&2; exit 1; fi
    echo "vm-tests: skipped: $msg (see ../shared/numavm/README.md to install)"; exit 0
fi

echo "vm-tests: building multi-node test binaries (release)"
mapfile -t bins < <(cargo test --release --no-run --test 'numa_*' --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
if ((${#bins[@]} == 0)); then echo "vm-tests: FAIL: no tests/numa_*.rs binary was built" >&2; exit 1; fi

declare -A opts=(
    [default]=""
    [cpuless]="--cpuless-nodes 1"
    [smt]="--threads-per-core 2"
)
declare -A specs=(
    [default]="sockets=2,nodes_per_socket=2,cores_per_node=2,threads_per_core=1,mem_per_node_mib=1024,cpuless_nodes=0,dist_near=16,dist_far=32,dist_cpuless=40"
    [cpuless]="sockets=2,nodes_per_socket=2,cores_per_node=2,threads_per_core=1,mem_per_node_mib=1024,cpuless_nodes=1,dist_near=16,dist_far=32,dist_cpuless=40"
    [smt]="sockets=2,nodes_per_socket=2,cores_per_node=2,threads_per_core=2,mem_per_node_mib=1024,cpuless_nodes=0,dist_near=16,dist_far=32,dist_cpuless=40"
)
configs=${LOCUS_VM_CONFIGS:-default cpuless smt}
# Binaries whose claims (shard placement, cross-shard answers) do not depend on memory-only nodes
# or SMT run in the default machine only, to keep CI short; LOCUS_VM_EVERY_CONFIG=1 runs them in
# every configuration.
default_only=" numa_spread numa_engine numa_engine_recovery "
runs=0 failed=0 tests_passed=0 tests_failed=0
log_dir=${LOCUS_VM_LOG_DIR:-$root/target/vm-tests}
mkdir -p "$log_dir"
for config in $configs; do
    for bin in "${bins[@]}"; do
        name=$(basename "$bin"); name=${name%-*}
        if [[ $config != default && -z ${LOCUS_VM_EVERY_CONFIG:-} && $default_only == *" $name "* ]]; then
            echo "vm-tests: $name [$config]: not run (default machine only; LOCUS_VM_EVERY_CONFIG=1 runs it)"
            continue
        fi
        log=$log_dir/$name.$config.log
        runs=$((runs + 1))
        start=$(date +%s)
        # One TCG thread for all vCPUs: with a thread per vCPU (16 with SMT) on a busy 2-core host
        # the guest was seen not to finish booting in 300 s; single boots in ~7 s. Timings inside
        # mean nothing either way, only placement facts are checked. Exit 125 means the guest
        # never reported a status (a boot failure such as "IO-APIC + timer doesn't work", seen
        # once under load): that boot is retried once, and said so; a test failure never is.
        status=FAIL
        for attempt in 1 2; do
            rc=0
            # shellcheck disable=SC2086
            "$numavm" ${opts[$config]} --tcg-thread single --timeout 300 --env "LOCUS_VM_SPEC=${specs[$config]}" \
                --env RUST_BACKTRACE=1 -- "$bin" --test-threads=1 >"$log" 2>&1 || rc=$?
            if ((rc == 0)); then status=PASS; break; fi
            if ((rc != 125)); then break; fi
            echo "vm-tests: $name [$config]: the guest reported no status (boot failure); retrying once"
            cp "$log" "$log.boot-failure"
        done
        [[ $status == PASS ]] || failed=$((failed + 1))
        p=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
        tests_passed=$((tests_passed + p)); tests_failed=$((tests_failed + f))
        echo "vm-tests: $status $name [$config] ${p} passed, ${f} failed ($(( $(date +%s) - start )) s; log $log)"
        grep -E '^(skipped: |test .* \.\.\. FAILED)' "$log" | sed 's/^/    /' || true
        if [[ $status == FAIL ]]; then sed 's/^/    | /' "$log" | tail -n 60; fi
    done
done
echo "vm-tests: $runs guest runs, $failed failed; tests inside: $tests_passed passed, $tests_failed failed"
((failed == 0))
