#!/usr/bin/env bash
# Recaptures the kernel's answers in the seed corpora: runs the ignored unit test
# `fuzz_seeds::capture_fuzz_seeds` (src/fuzz_seeds.rs) in the emulated IOMMU host, once per kernel
# flavour (UVFIO_VM_FLAVORS, default "debian full"), and writes each `UVFIO-SEED <target> <name>
# <hex>` line it prints to fuzz/corpus/<target>/vm-<flavour>-<name>, skipping answers already
# written under another name (many devices answer alike).
set -euo pipefail

CRATE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$CRATE"

read -r -a flavors <<<"${UVFIO_VM_FLAVORS:-debian full}"
declare -A seen=()
for flavor in "${flavors[@]}"; do
    log=$(mktemp)
    UVFIO_VM_FLAVOR=$flavor tests/vm/cargo-vm test --lib fuzz_seeds -- --ignored --nocapture \
        --test-threads=1 | tee "$log" | grep -v '^UVFIO-SEED '
    count=0
    while read -r _ target name hex; do
        [ -z "${seen["$target $hex"]:-}" ] || continue
        seen["$target $hex"]=1
        mkdir -p "fuzz/corpus/$target"
        # shellcheck disable=SC2001,SC2059 # the format is the bytes, as \xNN escapes
        printf "$(sed 's/../\\x&/g' <<<"$hex")" >"fuzz/corpus/$target/vm-$flavor-$name"
        count=$((count + 1))
    done < <(tr -d '\r' <"$log" | grep '^UVFIO-SEED ')
    rm -f "$log"
    echo "capture-seeds: $flavor: $count answers"
done
