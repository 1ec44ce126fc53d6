#!/usr/bin/env bash
# The criterion benches that have a same-run baseline (benches/mmio.rs, dma.rs, irq.rs) over
# several boots of the emulated IOMMU host: each boot runs every bench once, one after the
# other, and each bench prints its paired-round figures as `result <name> <value>` lines; at the
# end, one table of every figure's median, min and max over the boots.
#
#   tests/vm/bench-boots.sh [--boots N] [--benches "mmio dma irq"] [-- criterion options]
#
# --boots N (default 5); --benches: which of mmio, dma and irq (default all three); criterion
# options default to `--warm-up-time 0.3 --measurement-time 1` (criterion's own estimates are in
# each boot's log; the table is built from the paired rounds, which compare both sides
# milliseconds apart and are the figures to go by). The flavour is UVFIO_VM_FLAVOR's (default
# debian). Each boot's whole output is kept in a temporary directory whose path is printed; a
# boot that fails stops the script with the end of its output. With UVFIO_BENCH_LOCK=FILE each
# build and boot runs under `flock FILE` (a machine shared with other VM runs: one at a time,
# released between boots).
#
# Under TCG the ratios measure the costs of the emulation (an MMIO access is a call into QEMU's
# device model, a map is the emulated VT-d's invalidation, an interrupt an emulated MSI through
# interrupt remapping) as much as uvfio's: compare them between runs, not with hardware.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../.."
BOOTS=5
BENCHES=(mmio dma irq)
CRITERION=(--warm-up-time 0.3 --measurement-time 1)

# locked <command...>: the command, under UVFIO_BENCH_LOCK's flock when that is set.
locked() {
    if [ -n "${UVFIO_BENCH_LOCK:-}" ]; then
        flock "$UVFIO_BENCH_LOCK" "$@"
    else
        "$@"
    fi
}
say() { echo "bench-boots: $*" >&2; }
die() {
    echo "bench-boots: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --boots)
        [ $# -ge 2 ] || die "--boots needs a number"
        BOOTS=$2
        shift 2
        ;;
    --benches)
        [ $# -ge 2 ] || die "--benches needs a list"
        read -r -a BENCHES <<<"$2"
        shift 2
        ;;
    --)
        shift
        [ $# -eq 0 ] || CRITERION=("$@")
        break
        ;;
    -h | --help)
        sed -n "2,20p" "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (want --boots N, --benches LIST, -- criterion options)" ;;
    esac
done
case $BOOTS in
'' | *[!0-9]* | 0) die "--boots wants a positive number, not '$BOOTS'" ;;
esac
for b in "${BENCHES[@]}"; do
    case $b in mmio | dma | irq) ;; *) die "--benches: unknown bench '$b' (want mmio, dma, irq)" ;; esac
done

locked "$HERE/provision.sh" >/dev/null || die "provisioning the VM failed (tests/vm/provision.sh)"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/bench-boots.XXXXXX")
say "$BOOTS boots of the ${UVFIO_VM_FLAVOR:-debian} flavour, benches ${BENCHES[*]}, criterion ${CRITERION[*]}; logs in $OUT"

# Build once, outside the boots; `cargo bench --no-run` names each binary.
args=()
for b in "${BENCHES[@]}"; do args+=(--bench "$b"); done
locked env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo bench --features async --no-run "${args[@]}" \
    >"$OUT/build.log" 2>&1 || die "building the benches failed: $(tail -n 20 "$OUT/build.log")"
SHIP=()
{
    echo '#!/bin/sh'
    echo '# written by tests/vm/bench-boots.sh'
    echo 'failed=0'
    for b in "${BENCHES[@]}"; do
        bin=$(sed -n "s|^ *Executable benches/$b.rs (\(.*\))$|\1|p" "$OUT/build.log" | tail -n 1)
        if [ -z "$bin" ] || [ ! -f "$bin" ]; then die "cargo bench --no-run gave no binary for $b"; fi
        SHIP+=("$bin")
        echo "echo '=== bench $b'"
        echo "/test/$(basename "$bin") --bench ${CRITERION[*]} || { echo '=== bench $b FAILED'; failed=1; }"
    done
    # shellcheck disable=SC2016 # for the guest's shell
    echo 'exit "$failed"'
} >"$OUT/guest.sh"
chmod 0755 "$OUT/guest.sh"
SHIP_LIST=$(
    IFS=:
    echo "${SHIP[*]}"
)

# The dma bench maps 512 MiB of 2 MiB pages.
export UVFIO_VM_MEM=${UVFIO_VM_MEM:-2G}
export UVFIO_VM_CMDLINE="${UVFIO_VM_CMDLINE:+$UVFIO_VM_CMDLINE }hugepages=300"
export UVFIO_VM_TIMEOUT=${UVFIO_VM_TIMEOUT:-1200}
: >"$OUT/results"
for boot in $(seq 1 "$BOOTS"); do
    log="$OUT/boot-$boot.log"
    say "boot $boot/$BOOTS"
    start=$(date +%s)
    UVFIO_VM_SHIP=$SHIP_LIST locked "$HERE/runner.sh" "$OUT/guest.sh" >"$log" 2>&1 ||
        die "boot $boot failed:"$'\n'"$(tail -n 30 "$log")"
    lines=$(tr -d '\r' <"$log" | sed -n 's/^result \([^ ]*\) \([^ ]*\)$/\1 \2/p')
    [ -n "$lines" ] || die "boot $boot printed no results:"$'\n'"$(tail -n 30 "$log")"
    echo "$lines" >>"$OUT/results"
    say "boot $boot/$BOOTS: $(echo "$lines" | wc -l) figures in $(($(date +%s) - start)) s"
done

echo
echo "benches ${BENCHES[*]}: $BOOTS boots of the ${UVFIO_VM_FLAVOR:-debian} flavour (paired rounds; criterion ${CRITERION[*]})"
printf '%-44s %10s %10s %10s %6s\n' figure median min max boots
awk '!seen[$1]++ { print $1 }' "$OUT/results" | while read -r name; do
    awk -v n="$name" '$1 == n { print $2 }' "$OUT/results" | sort -g | awk -v n="$name" '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-44s %10.4g %10.4g %10.4g %6d\n", n, m, v[1], v[NR], NR
        }'
done
