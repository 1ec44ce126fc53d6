#!/usr/bin/env bash
# uvfio-vm as any crate uses it, end to end:
#   1. installs crates/uvfio-vm with cargo install (debug profile) into a temporary root;
#   2. makes a crate outside this checkout from tests/downstream/template (its own
#      uvfio-vm.toml: an edu and an e1000e under variables of its own; a path dependency on this
#      checkout), and checks that `uvfio-vm devices` shows its devices and that a broken config
#      is refused with the key named;
#   3. runs `uvfio-vm --timings test` in it: its tests open the edu through uvfio in the VM;
#   4. checks that nothing was written into this checkout (git status) or the crate (besides
#      cargo's own Cargo.lock).
# The builds go to target/downstream-install and target/downstream of this checkout (ignored by
# git), so a second run compiles nothing. The flavour and IOMMU mode are the environment's
# (UVFIO_VM_FLAVOR, UVFIO_VM_IOMMU: tests/vm/README.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
die() {
    echo "downstream: error: $*" >&2
    exit 1
}
say() { echo "downstream: $*"; }

command -v git >/dev/null || die "git is needed (to check that the checkout is left alone)"
BEFORE=$(git status --porcelain --untracked-files=all)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uvfio-downstream.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# Nothing of a caller's VM setup may leak in: the tool sets up its own.
unset CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER UVFIO_VM_CONFIG UVFIO_VM_DEVICES

say "cargo install --debug --path crates/uvfio-vm --root $TMP/root"
CARGO_TARGET_DIR="$REPO/target/downstream-install" \
    cargo install --quiet --locked --debug --path crates/uvfio-vm --root "$TMP/root"
TOOL="$TMP/root/bin/uvfio-vm"
[ -x "$TOOL" ] || die "cargo install left no $TOOL"

CRATE="$TMP/crate"
cp -R tests/downstream/template "$CRATE"
sed "s|@UVFIO_PATH@|$REPO|" "$CRATE/Cargo.toml.in" >"$CRATE/Cargo.toml"
rm "$CRATE/Cargo.toml.in"
# The same dependency versions as this checkout (and no registry look-up for them).
cp Cargo.lock "$CRATE/Cargo.lock"
snapshot() { (cd "$CRATE" && find . -path ./Cargo.lock -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
CRATE_BEFORE=$(snapshot)

say "uvfio-vm devices (from a subdirectory: the config is found upwards)"
DEVICES=$(cd "$CRATE/tests" && "$TOOL" devices) || die "uvfio-vm devices failed"
printf '  | %s\n' "${DEVICES//$'\n'/$'\n'  | }"
for want in "$CRATE/uvfio-vm.toml:" "EDU (1234:11e8, vfio-pci) -> UVFIO_TEST_EDU, DOWNSTREAM_EDU" \
    "NIC (8086:10d3, vfio-pci) -> UVFIO_TEST_NIC, DOWNSTREAM_NIC" "hubport,id=uvfio-net-nic,hubid=0"; do
    grep -qF -- "$want" <<<"$DEVICES" || die "uvfio-vm devices does not say: $want"
done

say "a broken config is refused, with the key and line"
printf '[[device]]\nname = "edu"\nqemu = "edu"\nbus = "x"\n' >"$TMP/bad.toml"
if ERR=$(cd "$CRATE" && "$TOOL" --config "$TMP/bad.toml" devices 2>&1); then
    die "uvfio-vm accepted $TMP/bad.toml"
fi
printf '  | %s\n' "${ERR//$'\n'/$'\n'  | }"
# shellcheck disable=SC2016 # backquotes of the message, not a command
if ! grep -qF 'unknown field `bus`' <<<"$ERR" || ! grep -q 'line 4' <<<"$ERR"; then
    die "the error does not name the unknown key and its line"
fi

say "uvfio-vm --timings test, in the crate"
LOG="$TMP/test.log"
status=0
(cd "$CRATE" && CARGO_TARGET_DIR="$REPO/target/downstream" "$TOOL" --timings test 2>&1) | tee "$LOG" || status=$?
[ "$status" = 0 ] || die "uvfio-vm test failed (status $status)"
grep -q 'test result: ok. 2 passed' "$LOG" || die "the crate's two device tests did not both run and pass"
grep -q 'uvfio-vm: timings: provision' "$LOG" || die "--timings printed no timings"

[ "$(snapshot)" = "$CRATE_BEFORE" ] || die "files in the crate changed (besides Cargo.lock)"
[ "$(git status --porcelain --untracked-files=all)" = "$BEFORE" ] ||
    die "the run changed this checkout: $(git status --porcelain --untracked-files=all)"
say "ok: the crate's tests passed in the VM through the installed uvfio-vm; the checkout is unchanged"
