#!/usr/bin/env bash
# Shared by the benchmark scripts (nvme-bench.sh): sourced, not run.

# vm_bench_boots NAME BOOTS MARKER EACH SUMMARIZE COMMAND...: the benchmark scripts' boots.
# Runs COMMAND (one boot of a benchmark) BOOTS times, each boot's whole output kept in a fresh
# directory (printed); a boot that fails, or prints no line matching the grep pattern MARKER,
# stops the run with its last lines. After each boot the function EACH gets that boot's log
# (":" for nothing); at the end SUMMARIZE gets all the logs, in boot order.
vm_bench_boots() {
    local name=$1 boots=$2 marker=$3 each=$4 summarize=$5 out boot log logs=()
    shift 5
    out=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
    echo "$name: $boots boot(s); each boot's output in $out" >&2
    for boot in $(seq 1 "$boots"); do
        echo "$name: boot $boot/$boots" >&2
        log=$out/boot-$boot.log
        if ! "$@" >"$log" 2>&1; then
            echo "$name: error: boot $boot failed:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        if ! grep -q -- "$marker" "$log"; then
            echo "$name: error: boot $boot printed no '$marker':" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        logs+=("$log")
        "$each" "$log"
    done
    "$summarize" "${logs[@]}"
}
