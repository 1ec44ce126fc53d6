#!/usr/bin/env bash
# Counts the system calls the DMA pool's free list makes in steady state: runs benches/pool.rs
# with UVFIO_POOL_SYSCALLS=N under `strace -f` and counts every system call of every thread
# between the bench's begin and end markers (a write to stderr each) of each phase:
#
#   - a control: exactly 1000 sched_yield calls, which must be counted as 1000;
#   - N alloc+frees on one thread, then N over 2 threads at once, of `SlotAllocator` (on the
#     host) or of a real `DmaPool` mapped in a container (in the VM, `--vm`);
#   - the same with the bench's `Mutex<Vec<u32>>` baseline (its contended phase may make
#     `futex` calls, or not: that depends on the scheduling).
#
#   tests/vm/pool-syscalls.sh [--vm] [N]      (N: default 1000000)
#
# Prints one line per phase, "syscalls: <phase> <count> in <N> alloc+free = <per alloc>", and
# exits 1 when an uvfio phase (SlotAllocator or DmaPool) made any, or the control is
# miscounted. The VM run ships the host's strace (and its libraries) into the guest with the
# bench binary (tests/vm/runner.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VM=0
N=1000000

die() {
    echo "pool-syscalls: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --vm) VM=1 ;;
    -h | --help)
        sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *[!0-9]* | '') die "unknown argument $1 (want [--vm] [N])" ;;
    *) N=$1 ;;
    esac
    shift
done
STRACE=$(command -v strace) || die "strace is not installed (Debian: apt-get install strace)"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/pool-syscalls.XXXXXX")
(cd "$ROOT" && cargo bench --bench pool --no-run --message-format=json) >"$OUT/build.json" 2>"$OUT/build.log" ||
    die "building benches/pool.rs failed: $(tail -n 20 "$OUT/build.log")"
BIN=$(grep -o '"executable":"[^"]*/pool-[0-9a-f]*"' "$OUT/build.json" | tail -n 1 | cut -d'"' -f4)
[ -x "$BIN" ] || die "no bench binary in cargo's output ($OUT/build.json)"

if [ "$VM" = 1 ]; then
    "$HERE/provision.sh" >/dev/null || die "provisioning the VM failed (tests/vm/provision.sh)"
    where="in the VM ($(uname -m) guest, ${UVFIO_VM_FLAVOR:-debian} kernel)"
    UVFIO_POOL_SYSCALLS=$N UVFIO_VM_SHIP=$BIN "$HERE/runner.sh" "$STRACE" -f -qq -s 256 -o /proc/self/fd/1 \
        "/test/$(basename "$BIN")" >"$OUT/trace" 2>"$OUT/stderr" ||
        die "the VM run failed: $(tail -n 20 "$OUT/stderr")"
else
    where="on the host"
    UVFIO_POOL_SYSCALLS=$N "$STRACE" -f -qq -s 256 -o "$OUT/trace" "$BIN" 2>"$OUT/stderr" ||
        die "the run failed: $(tail -n 20 "$OUT/stderr")"
fi

# Every line of strace's between a begin marker and its end marker is one system call, except
# signals (---), exits (+++) and the second half of a call another thread's line interrupted.
awk -v where="$where" '
    /write\(2, "uvfio-syscalls-begin / {
        split(substr($0, index($0, "uvfio-syscalls-begin ") + 21), f, /[ \\"]/)
        phase = f[1] " " f[2]; n = f[3]; count = 0; inside = 1; calls = ""; next
    }
    /write\(2, "uvfio-syscalls-end / {
        if (!inside) next
        inside = 0; phases++
        if (!phases_shown++) print "pool-syscalls: system calls per alloc+free in steady state, " where
        if (phase ~ /^control/)
            printf "syscalls: %-24s %8d counted of the %d sched_yield it made\n", phase, count, n
        else
            printf "syscalls: %-24s %8d in %d alloc+free = %.6f per alloc%s\n", phase, count, n,
                count / n, calls == "" ? "" : " (" substr(calls, 2) ")"
        if (phase ~ /^control/) { if (count != n) { print "pool-syscalls: error: the control phase made " n " calls, counted " count > "/dev/stderr"; bad = 1 } }
        else if (phase !~ /^mutex_vec/ && count > 0) bad = 1
        next
    }
    !inside && / ioctl\(/ { outside_ioctls++ }
    inside && !/ (---|\+\+\+) / && !/<\.\.\. [a-z0-9_]+ resumed>/ {
        count++
        match($0, /[a-z0-9_]+\(/)
        if (RSTART) { name = substr($0, RSTART, RLENGTH - 1); if (!(phase SUBSEP name in seen)) { seen[phase, name] = 1; calls = calls " " name } }
    }
    END {
        print "pool-syscalls: ioctls outside the phases (opening the device, mapping the pool): " outside_ioctls + 0
        if (phases != 5) { print "pool-syscalls: error: expected 5 phases, found " phases > "/dev/stderr"; exit 1 }
        exit bad
    }
' "$OUT/trace" || {
    echo "pool-syscalls: the trace is $OUT/trace" >&2
    exit 1
}
rm -rf "$OUT"
