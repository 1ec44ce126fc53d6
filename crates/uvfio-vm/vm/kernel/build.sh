#!/usr/bin/env bash
# Builds the "full" kernel flavour of the emulated IOMMU host (tests/vm/README.md).
#
#   tests/vm/kernel/build.sh <linux-source .tar.xz or .deb> <output directory>
#
# `make tinyconfig`, then the fragment tests/vm/kernel/full.config appended and `make
# olddefconfig`; every line of the fragment is then checked in the final .config (olddefconfig
# silently drops an option whose dependencies do not hold: that fails the build with its name).
# Then `make bzImage` and `make headers_install`. The output directory gets:
#   vmlinuz     arch/x86/boot/bzImage
#   config      the final .config
#   release     `make kernelrelease`
#   headers/    the uapi headers of the same source (include/linux/vfio.h, iommufd.h, ...)
#   build.log   the configure and build output
# The build tree lives in a temporary directory next to the output and is removed afterwards
# (about 2 GiB while it builds). provision.sh calls this into a temporary directory and renames
# it into the cache when it succeeded; nothing here touches the cache itself.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENT="$HERE/full.config"

say() { echo "kernel: $*" >&2; }
die() {
    echo "kernel: error: $*" >&2
    exit 1
}

[ $# -eq 2 ] || die "usage: $0 <linux-source .tar.xz or .deb> <output directory>"
SRC=$1
OUT=$2
[ -f "$SRC" ] || die "no kernel source at $SRC"
[ -r "$FRAGMENT" ] || die "no config fragment at $FRAGMENT"

# Tools: say every missing one at once, with the Debian package that has it.
missing=()
for t in gcc:gcc make:make bison:bison flex:flex bc:bc xz:xz-utils tar:tar perl:perl; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t%%:*} (Debian: ${t#*:})")
done
if command -v gcc >/dev/null; then
    echo '#include <gelf.h>' | gcc -E -x c - >/dev/null 2>&1 || missing+=("libelf headers (Debian: libelf-dev)")
    echo '#include <openssl/opensslv.h>' | gcc -E -x c - >/dev/null 2>&1 || missing+=("OpenSSL headers (Debian: libssl-dev)")
fi
[ ${#missing[@]} -eq 0 ] || die "missing build tools: ${missing[*]}"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "$(dirname "$OUT")/kbuild.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/build.log"
: >"$LOG"

# About 1.5 GiB of source and 0.5 GiB of objects.
need_kb=$((2600 * 1024))
free_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
[ "${free_kb:-0}" -ge "$need_kb" ] ||
    die "not enough free disk in $(dirname "$OUT"): $((free_kb / 1024)) MiB free, the kernel build needs about $((need_kb / 1024)) MiB (set UVFIO_VM_CACHE to a roomier place)"

run() { # run <what> <command...>: output to the log; on failure its tail and the log's path
    local what=$1
    shift
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" | sed 's/^/  | /' >&2
        die "$what failed (whole log: $LOG)"
    fi
}

# run_progress <what> <command...>: `run` for a step of minutes (make bzImage), with a line every
# minute saying how far it is (the objects compiled so far: the log's CC lines since the step
# began), so a build is never minutes of silence.
run_progress() {
    local what=$1 from start=$SECONDS next pid n
    shift
    from=$(($(wc -l <"$LOG") + 1))
    "$@" >>"$LOG" 2>&1 &
    pid=$!
    next=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        if [ "$SECONDS" -ge "$next" ]; then
            n=$(tail -n +"$from" "$LOG" | grep -c '^ *CC ' || true)
            say "$what: still building after $((SECONDS - start)) s, $n files compiled"
            next=$((SECONDS + 60))
        fi
    done
    if ! wait "$pid"; then
        tail -n 30 "$LOG" | sed 's/^/  | /' >&2
        die "$what failed (whole log: $LOG)"
    fi
    say "$what: done in $((SECONDS - start)) s"
}

say "unpacking $(basename "$SRC")"
case $SRC in
*.deb)
    # linux-source-X.deb carries usr/src/linux-source-X.tar.xz
    dpkg-deb --fsys-tarfile "$SRC" | tar -x -C "$WORK" --wildcards './usr/src/linux-source-*.tar.xz' ||
        die "cannot extract the source tarball from $SRC (disk full?)"
    tarball=$(echo "$WORK"/usr/src/linux-source-*.tar.xz)
    [ -f "$tarball" ] || die "$SRC has no usr/src/linux-source-*.tar.xz"
    tar -xJf "$tarball" -C "$WORK" || die "cannot unpack $tarball (disk full?)"
    rm -rf "${WORK:?}/usr"
    ;;
*.tar.xz) tar -xJf "$SRC" -C "$WORK" || die "cannot unpack $SRC (disk full?)" ;;
*) die "$SRC: want a .deb or .tar.xz" ;;
esac
TREE=$(find "$WORK" -mindepth 2 -maxdepth 2 -name Makefile -printf '%h\n' | head -n1)
[ -n "$TREE" ] || die "no kernel tree (Makefile) in $SRC"

JOBS=$(nproc 2>/dev/null || echo 2)
say "configuring (tinyconfig + $(basename "$FRAGMENT"))"
run "make tinyconfig" make -C "$TREE" tinyconfig
cat "$FRAGMENT" >>"$TREE/.config"
run "make olddefconfig" make -C "$TREE" olddefconfig

# Every line of the fragment must hold.
dropped=()
while IFS= read -r line; do
    case $line in
    CONFIG_*=*)
        grep -qxF "$line" "$TREE/.config" ||
            dropped+=("$line (final: $(grep -E "^(# )?${line%%=*}[= ]" "$TREE/.config" || echo "absent"))")
        ;;
    "# CONFIG_"*" is not set")
        sym=${line#\# }
        sym=${sym%% *}
        if grep -qE "^$sym=" "$TREE/.config"; then
            dropped+=("$line (final: $(grep -E "^$sym=" "$TREE/.config"))")
        fi
        ;;
    esac
done <"$FRAGMENT"
if [ ${#dropped[@]} -gt 0 ]; then
    printf '  %s\n' "${dropped[@]}" >&2
    die "${#dropped[@]} option(s) of $FRAGMENT do not hold after make olddefconfig (a dependency is off or the option no longer exists in this source)"
fi

say "make -j$JOBS bzImage (about 6 minutes on 2 cores)"
start=$SECONDS
run_progress "make bzImage" make -C "$TREE" -j"$JOBS" bzImage
say "built in $((SECONDS - start)) s"
run "make headers_install" make -C "$TREE" headers_install INSTALL_HDR_PATH="$OUT/headers"
make -s -C "$TREE" kernelrelease >"$OUT/release" 2>>"$LOG" || die "make kernelrelease failed"
cp "$TREE/arch/x86/boot/bzImage" "$OUT/vmlinuz"
cp "$TREE/.config" "$OUT/config"
