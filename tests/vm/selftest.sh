#!/usr/bin/env bash
# Self-test of the emulated host's provisioning (no VM is booted; a few seconds): each failure
# a user meets must stop provisioning with an error that names what failed.
#   1. a missing kernel build tool (kernel/build.sh, with bison hidden from PATH);
#   2. a cache on a full disk (kernel/build.sh, output on a 16 MiB tmpfs; root only);
#   3. a failed download of the kernel source (provision.sh, full flavour, apt-get failing);
#   4. an unknown flavour and IOMMU mode, and the debian flavour asked for no-IOMMU mode.
# Exits non-zero if any check fails; prints SKIPPED with the reason for a check it cannot run.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d)
MNT=""
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    [ -z "$MNT" ] || umount "$MNT" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
FAILED=0

# expect <name> <wanted text in stderr> <command...>: the command must fail and say the text.
expect() {
    local name=$1 want=$2 rc=0
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
    if [ "$rc" != 0 ] && grep -qF -- "$want" "$TMP/err"; then
        echo "selftest: ok: $name: $(grep -F -- "$want" "$TMP/err" | head -n1)"
    else
        echo "selftest: FAILED: $name: exit status $rc, wanted an error saying '$want'; stderr:"
        sed 's/^/  | /' "$TMP/err"
        FAILED=1
    fi
}

# 1. A PATH with everything of /usr/bin but bison.
mkdir -p "$TMP/path" "$TMP/src"
for f in /usr/bin/*; do ln -s "$f" "$TMP/path/"; done
rm -f "$TMP/path/bison"
: >"$TMP/src/linux-source.tar.xz"
expect "missing build tool" "missing build tools: bison (Debian: bison)" \
    env PATH="$TMP/path:/usr/sbin" "$HERE/kernel/build.sh" "$TMP/src/linux-source.tar.xz" "$TMP/out1"

# 2. Too little free disk where the kernel would be built.
if [ "$(id -u)" = 0 ] && command -v gcc bison flex bc >/dev/null &&
    echo '#include <gelf.h>' | gcc -E -x c - >/dev/null 2>&1 &&
    echo '#include <openssl/opensslv.h>' | gcc -E -x c - >/dev/null 2>&1; then
    MNT="$TMP/small"
    mkdir -p "$MNT"
    if mount -t tmpfs -o size=16m tmpfs "$MNT" 2>/dev/null; then
        expect "full disk" "not enough free disk in $MNT" \
            "$HERE/kernel/build.sh" "$TMP/src/linux-source.tar.xz" "$MNT/out"
        umount "$MNT" && MNT=""
    else
        echo "selftest: SKIPPED full disk: cannot mount a tmpfs here"
    fi
else
    echo "selftest: SKIPPED full disk: needs root and the kernel build tools (provision.sh installs them)"
fi

# 3. apt-get download failing (no network, say) on a fresh cache, full flavour.
if command -v apt-get >/dev/null && compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null &&
    [ "$(id -u)" = 0 ]; then
    mkdir -p "$TMP/apt"
    cat >"$TMP/apt/apt-get" <<'EOF'
#!/bin/sh
# apt-get whose downloads fail, as without a network
[ "$1" = download ] || [ "$2" = download ] && { echo "E: Failed to fetch (selftest)" >&2; exit 100; }
exec /usr/bin/apt-get "$@"
EOF
    chmod +x "$TMP/apt/apt-get"
    expect "failed download" "apt-get download linux-source-6.12=" \
        env PATH="$TMP/apt:$PATH" UVFIO_VM_CACHE="$TMP/cache" UVFIO_VM_FLAVOR=full "$HERE/provision.sh"
else
    echo "selftest: SKIPPED failed download: needs root on Debian with apt lists"
fi

# 4. Asking for what does not exist.
expect "unknown flavour" "UVFIO_VM_FLAVOR=fedora: want debian or full" \
    env UVFIO_VM_FLAVOR=fedora UVFIO_VM_CACHE="$TMP/cache" "$HERE/provision.sh"
expect "unknown IOMMU mode" "UVFIO_VM_IOMMU=amd: want vtd" \
    env UVFIO_VM_IOMMU=amd UVFIO_VM_CACHE="$TMP/cache" "$HERE/runner.sh" /bin/true
if [ -n "$(find "${UVFIO_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uvfio/vm}" -maxdepth 2 -path '*/kernel-debian-*/.done' 2>/dev/null)" ] ||
    [ "$(id -u)" = 0 ]; then
    expect "debian without no-IOMMU mode" "Debian's kernel does not have" \
        env UVFIO_VM_FLAVOR=debian UVFIO_VM_IOMMU=none "$HERE/runner.sh" /bin/true
fi

[ "$FAILED" = 0 ] || exit 1
echo "selftest: all checks passed"
