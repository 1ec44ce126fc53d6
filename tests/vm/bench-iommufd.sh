#!/usr/bin/env bash
# The iommufd map+unmap benchmark (benches/iommufd.rs) over several boots of the emulated host:
# one boot of the full flavour per run, the bench with short criterion times in each, then the
# median, min and max over the boots of every ratio the bench prints (uvfio/raw on the IOAS, the
# type1 container and iommufd's compat container; raw IOAS/type1 and raw compat/type1), both as
# criterion's medians give them and as the bench's own paired rounds give them.
#
#   tests/vm/bench-iommufd.sh [--boots N] [-- criterion options]
#
# --boots N: how many boots (default 5). Criterion options default to
# `--warm-up-time 0.5 --measurement-time 1`. Each boot's output is kept in a temporary directory
# whose path is printed; a boot that fails stops the script with the end of its output.
# Under TCG the ratios measure the costs of the emulation (the emulated VT-d, the guest's page
# tables and the syscall path in TCG) as much as the kernel's and uvfio's: compare them between
# runs, not with hardware.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BOOTS=5
CRITERION=(--warm-up-time 0.5 --measurement-time 1)

say() { echo "bench-iommufd: $*" >&2; }
die() {
    echo "bench-iommufd: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --boots)
        [ $# -ge 2 ] || die "--boots needs a number"
        BOOTS=$2
        shift 2
        ;;
    --boots=*)
        BOOTS=${1#--boots=}
        shift
        ;;
    --)
        shift
        [ $# -eq 0 ] || CRITERION=("$@")
        break
        ;;
    -h | --help)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (want --boots N [-- criterion options])" ;;
    esac
done
case $BOOTS in
'' | *[!0-9]* | 0) die "--boots wants a positive number, not '$BOOTS'" ;;
esac

export UVFIO_VM_FLAVOR=full
OUT=$(mktemp -d "${TMPDIR:-/tmp}/bench-iommufd.XXXXXX")
say "$BOOTS boots of the full flavour, criterion ${CRITERION[*]}; logs in $OUT"
# Build once, outside the boots (cargo-vm provisions the full kernel if needed).
"$HERE/cargo-vm" bench --bench iommufd --no-run >"$OUT/build.log" 2>&1 ||
    die "building the bench failed: $(tail -n 20 "$OUT/build.log")"

: >"$OUT/ratios"
for boot in $(seq 1 "$BOOTS"); do
    log="$OUT/boot-$boot.log"
    say "boot $boot/$BOOTS"
    if ! "$HERE/cargo-vm" bench --bench iommufd -- "${CRITERION[@]}" >"$log" 2>&1; then
        die "boot $boot failed:"$'\n'"$(tail -n 30 "$log")"
    fi
    grep -q '^iommufd: skipped' "$log" && die "boot $boot: the bench skipped: $(grep '^iommufd: skipped' "$log")"
    # "ratio <name> criterion=<x> paired=<y>" -> "<name> criterion <x>" and "<name> paired <y>"
    lines=$(sed -n 's/^ratio \([^ ]*\) criterion=\([^ ]*\) paired=\([^ ]*\)$/\1 criterion \2\n\1 paired \3/p' "$log")
    [ -n "$lines" ] || die "boot $boot printed no ratios:"$'\n'"$(tail -n 30 "$log")"
    echo "$lines" >>"$OUT/ratios"
    sed -n 's/^ratio /  /p' "$log" >&2
done

# One line per ratio: median (min-max) of each source over the boots; n/a values are left out.
stats() { # stats <name> <source>
    awk -v n="$1" -v s="$2" '$1 == n && $2 == s && $3 != "n/a" { print $3 }' "$OUT/ratios" |
        sort -g | awk '{ v[NR] = $1 }
            END {
                if (NR == 0) { print "n/a"; exit }
                m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.3f (%.3f-%.3f)\n", m, v[1], v[NR]
            }'
}

echo
echo "iommufd map+unmap 4 KiB, $BOOTS boots of the full flavour (criterion ${CRITERION[*]})"
printf '%-18s %-28s %s\n' ratio "criterion median (min-max)" "paired median (min-max)"
awk '!seen[$1]++ { print $1 }' "$OUT/ratios" | while read -r name; do
    printf '%-18s %-28s %s\n' "$name" "$(stats "$name" criterion)" "$(stats "$name" paired)"
done
