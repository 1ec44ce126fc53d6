#!/usr/bin/env bash
# Bounded fuzzing of every parser (fuzz/README.md): builds the cargo-fuzz targets in fuzz/ and
# runs each for UVFIO_FUZZ_SECONDS seconds (default 15) from its seed corpus in
# fuzz/corpus/<target>, or for UVFIO_FUZZ_RUNS executions when that is set (the long run).
# UVFIO_FUZZ_TARGETS="a b" runs only those targets. Prints one line per target with its
# executions, and exits non-zero when any target crashed, naming the input that did it
# (fuzz/artifacts/<target>/; replay with `cargo fuzz run <target> <file>`).
#
# Needs cargo-fuzz (installed here when missing: `cargo install cargo-fuzz --locked`) and a
# nightly compiler for libFuzzer's instrumentation flags: the `nightly` rustup toolchain when
# there is one, else the default toolchain with RUSTC_BOOTSTRAP=1. No sanitizer (`-s none`):
# the parsers are safe Rust, so AddressSanitizer would find nothing that a bounds check does
# not already turn into a panic; without it each target runs several times faster. Debug
# assertions are on, so an arithmetic overflow is a crash.
set -euo pipefail

CRATE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$CRATE"

SECONDS_PER_TARGET=${UVFIO_FUZZ_SECONDS:-15}
RUNS=${UVFIO_FUZZ_RUNS:-}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    echo "fuzz: no nightly toolchain: the default one with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
fi
# The fuzz workspace's own target directory: its flags differ from the root's, sharing one
# would rebuild both every time.
export CARGO_TARGET_DIR="$CRATE/fuzz/target"
build=(cargo "${toolchain[@]}" fuzz build --sanitizer none --debug-assertions)

if [ -n "${UVFIO_FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$UVFIO_FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
"${build[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
total_runs=0
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "fuzz/artifacts/$target" "fuzz/corpus/$target"
    if [ -n "$RUNS" ]; then limit=(-runs="$RUNS"); else limit=(-max_total_time="$SECONDS_PER_TARGET"); fi
    # New inputs go to the scratch corpus (first), the seeds (second) are only read.
    status=0
    cargo "${toolchain[@]}" fuzz run --sanitizer none --debug-assertions "$target" \
        "$work/$target" "fuzz/corpus/$target" -- \
        "${limit[@]}" -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
        >"$work/$target.log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$target.log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/$target.log" | tail -1)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/$target.log" | tail -1)
    if [ "$status" != 0 ] || [ -n "$crash" ]; then
        failed+=("$target")
        tail -n 40 "$work/$target.log"
        printf 'fuzz: %-16s CRASHED after %s executions (exit status %s): input %s\n' \
            "$target" "${runs:-?}" "$status" "${crash:-(none written)}"
    else
        printf 'fuzz: %-16s %10s executions in %4s s (%s exec/s), 0 crashes\n' \
            "$target" "${runs:-?}" "${secs:-?}" "${rate:-?}"
        total_runs=$((total_runs + ${runs:-0}))
    fi
done
echo "fuzz: ${#targets[@]} targets, $total_runs executions without a crash"
if [ "${#failed[@]}" != 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
