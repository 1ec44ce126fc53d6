#!/bin/sh
# The `uvfio` command in the emulated IOMMU host (busybox sh, as root, in the guest).
# tests/vm/suite.sh ships /test/uvfio (crates/uvfio-cli) and this script, and runs it as the
# last stage of one boot per flavour and of the no-IOMMU boot, so it changes no binding another
# stage relies on (and puts every one back anyway). It checks:
#   - `uvfio ls` (table and --json): the usable devices, the non-viable group, the mdevs;
#   - `uvfio diagnose` (text and --json): a usable device (exit status 0, opened), the device of
#     a non-viable group, a device on a host driver, a tiny RLIMIT_MEMLOCK and a non-root user
#     (and that the fixes it names make it pass), no IOMMU and no-IOMMU mode without
#     CAP_SYS_RAWIO (UVFIO_VM_IOMMU=none), each failure with its message;
#   - `uvfio bind/unbind/restore`: --dry-run changes nothing; a bridge is refused; a device on a
#     host driver goes to vfio-pci and back to exactly that driver, through the state file; a
#     device in use (its group open) is refused and left alone; --group; a driverless device;
#   - `uvfio mdev` (full flavour): types, create, remove, and their errors;
#   - `--trace`: `-tt` prints the library's ioctls, `-t` only its opens and other set-up calls.
# Prints "ok: ..." or "FAILED: ..." per check and exits with the number of failures.

U=/test/uvfio
export UVFIO_STATE=/tmp/uvfio-bindings
fails=0
checks=0

# run STATUS NAME CMD...: runs CMD, keeps its output in OUT, checks its exit status.
run() {
    want=$1
    NAME=$2
    shift 2
    checks=$((checks + 1))
    OUT=$("$@" 2>&1)
    status=$?
    if [ "$status" = "$want" ]; then
        echo "ok: $NAME (exit status $status)"
    else
        echo "FAILED: $NAME: exit status $status, want $want; output:"
        echo "$OUT"
        fails=$((fails + 1))
    fi
}

# has TEXT...: the last run's output contains each TEXT.
has() {
    for text in "$@"; do
        checks=$((checks + 1))
        case $OUT in
        *"$text"*) ;;
        *)
            echo "FAILED: $NAME: the output lacks '$text'; output:"
            echo "$OUT"
            fails=$((fails + 1))
            ;;
        esac
    done
}

# driver_is ADDRESS DRIVER ("-" for none).
driver_is() {
    checks=$((checks + 1))
    d=-
    [ -e "/sys/bus/pci/devices/$1/driver" ] && d=$(basename "$(readlink "/sys/bus/pci/devices/$1/driver")")
    if [ "$d" != "$2" ]; then
        echo "FAILED: $NAME: $1 is on $d, want $2"
        fails=$((fails + 1))
    fi
}

group_of() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }

# A user without privileges for the non-root checks (busybox su, as root, asks no password).
mkdir -p /etc
echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
echo 'tester:x:1000:1000:tester:/tmp:/bin/sh' >>/etc/passwd
printf 'root:x:0:\ntester:x:1000:\n' >/etc/group
# shellcheck disable=SC2317 # called through run
as_user() { su -s /bin/sh tester -c "$1"; }

EDU=$UVFIO_TEST_EDU
NV=$UVFIO_TEST_NONVIABLE
HOSTDEV=$UVFIO_TEST_NONVIABLE_HOST
# The watchdog's driver: "i6300ESB timer" (driver names may hold spaces).
HOSTDRV=$(basename "$(readlink "/sys/bus/pci/devices/$HOSTDEV/driver")")

if [ "${UVFIO_VM_IOMMU:-vtd}" = none ]; then
    EDU_NODE=/dev/vfio/noiommu-$(group_of "$EDU")
    run 0 "ls shows no-IOMMU devices" "$U" ls
    has "$EDU" "usable (no-IOMMU)"
    run 0 "diagnose a no-IOMMU device" "$U" diagnose "$EDU"
    has "warn  iommu" "VFIO's no-IOMMU mode" "warn  noiommu" "taint" "pass  open" "usable through VFIO"
    run 1 "diagnose a device without an IOMMU" "$U" diagnose "$HOSTDEV"
    has "FAIL  iommu" "no IOMMU is on" "intel_iommu=on" "FAIL  iommu-group"
    chown 1000 "$EDU_NODE"
    run 1 "diagnose no-IOMMU without CAP_SYS_RAWIO" as_user "ulimit -l 131072 2>/dev/null; $U diagnose $EDU"
    has "FAIL  noiommu" "needs CAP_SYS_RAWIO" "run as root"
    chown 0 "$EDU_NODE"
    echo "cli-check: $checks checks, $fails failed"
    exit "$fails"
fi

BRIDGE=$(basename "$(dirname "$(readlink -f "/sys/bus/pci/devices/$NV")")")
NVG=$(group_of "$NV")

# --- ls -----------------------------------------------------------------------------------
run 0 "ls" "$U" ls
has "ADDRESS" "usable through VFIO"
checks=$((checks + 2))
echo "$OUT" | grep "^$EDU " | grep -q ' usable$' || { echo "FAILED: ls: $EDU not usable"; fails=$((fails + 1)); }
echo "$OUT" | grep "^$NV " | grep -q "group not viable: $HOSTDEV on $HOSTDRV" ||
    { echo "FAILED: ls: $NV not shown as not viable"; fails=$((fails + 1)); }
if [ "$UVFIO_VM_FLAVOR" = full ]; then has "mediated device parents" "mtty-2"; fi
run 0 "ls --json" "$U" ls --json
has '"functions": [' "\"address\": \"$EDU\"" '"status": "usable"' '"status": "not-viable"' \
    "\"device\": \"$HOSTDEV\"" "\"driver\": \"$HOSTDRV\"" '"group_node": "/dev/vfio/' '"mdev_parents": ['

# --- diagnose -------------------------------------------------------------------------------
run 0 "diagnose a usable device" "$U" diagnose "$EDU"
has "pass  iommu " "pass  viability" "pass  driver" "pass  group-node" "pass  open" "usable through VFIO"
if [ "$UVFIO_VM_FLAVOR" = full ]; then has "pass  iommufd" "opened through VFIO (iommufd)"; fi
run 0 "diagnose --json" "$U" diagnose "$EDU" --json
has '"usable": true' '"name": "open"' '"verdict": "pass"' '"fix": null'
# --trace: the library's kernel calls on stderr (-t set-up calls, -tt every ioctl too).
run 0 "diagnose -tt traces every kernel call" "$U" -tt diagnose "$EDU"
has "open on /dev/vfio/" " -> ok fd " "VFIO_DEVICE_GET_INFO on device fd " "TRACE" "DEBUG"
run 0 "diagnose -t traces the opens" "$U" diagnose "$EDU" --trace
has "open on /dev/vfio/" "DEBUG"
case $OUT in
*VFIO_DEVICE_GET_INFO*) echo "FAILED: $NAME: -t printed ioctls"; fails=$((fails + 1)) ;;
esac
run 1 "diagnose a device in a non-viable group" "$U" diagnose "$NV"
has "FAIL  viability" "is not viable: $HOSTDEV (on $HOSTDRV)" "fix: uvfio bind --group $NV" \
    "skip  open" "cannot be used through VFIO"
run 1 "diagnose a device on a host driver" "$U" diagnose "$HOSTDEV"
has "FAIL  driver" "bound to the host driver $HOSTDRV" "fix: uvfio bind $HOSTDEV"
run 1 "diagnose --json of a failure" "$U" diagnose "$HOSTDEV" --json
has '"usable": false' '"verdict": "fail"' "\"fix\": \"uvfio bind $HOSTDEV\""
run 2 "diagnose: a usage error" "$U" diagnose 00:99 --pin 1X
has "invalid"
run 0 "diagnose as root with a tiny memlock limit (CAP_IPC_LOCK)" sh -c "ulimit -l 64; $U diagnose $EDU"
has "pass  memlock" "CAP_IPC_LOCK"
run 1 "diagnose as a user, tiny memlock limit" as_user "ulimit -l 64; $U diagnose $EDU"
has "FAIL  memlock" "RLIMIT_MEMLOCK is 64 KiB, less than the 64 MiB" "ulimit -l 65536" \
    "FAIL  group-node" "may not open it" "chown \$USER /dev/vfio/$(group_of "$EDU")"
# The fixes it names: the node for the user, a larger limit.
chown 1000 "/dev/vfio/$(group_of "$EDU")"
# shellcheck disable=SC3045 # busybox ash has ulimit -l
ulimit -l 131072
run 0 "diagnose as a user after the fixes" as_user "$U diagnose $EDU"
has "pass  memlock" "pass  group-node" "pass  open" "opened through VFIO (vfio_type1v2_iommu)"
chown 0 "/dev/vfio/$(group_of "$EDU")"

# --- bind / unbind / restore ----------------------------------------------------------------
run 0 "bind --dry-run" "$U" bind --dry-run "$HOSTDEV"
has "would bind $HOSTDEV: $HOSTDRV -> vfio-pci"
driver_is "$HOSTDEV" "$HOSTDRV"
run 1 "bind refuses a bridge" "$U" bind "$BRIDGE"
has "PCI bridge" "vfio-pci does not take"
driver_is "$BRIDGE" -
run 0 "bind a device on a host driver" "$U" bind "$HOSTDEV"
has "bind $HOSTDEV: $HOSTDRV -> vfio-pci" "recorded in $UVFIO_STATE"
driver_is "$HOSTDEV" vfio-pci
run 0 "state file" cat "$UVFIO_STATE"
has "$(printf '%s\t%s\t' "$HOSTDEV" "$HOSTDRV")"
run 0 "the group is viable now" "$U" diagnose "$NV"
has "pass  viability"
exec 3<>"/dev/vfio/$NVG"
run 1 "unbind refuses a device in use (its group open)" "$U" unbind "$HOSTDEV"
has "a VFIO fd of the device is open"
driver_is "$HOSTDEV" vfio-pci
exec 3>&-
run 0 "unbind gives the device back" "$U" unbind "$HOSTDEV"
has "unbind $HOSTDEV: vfio-pci -> $HOSTDRV"
driver_is "$HOSTDEV" "$HOSTDRV"
checks=$((checks + 1))
[ ! -e "$UVFIO_STATE" ] || { echo "FAILED: the state file outlives its last binding"; fails=$((fails + 1)); }
run 1 "unbind a device not on vfio-pci" "$U" unbind "$HOSTDEV"
has "not bound to vfio-pci"
run 0 "bind --group" "$U" bind --group "$NV"
has "left alone: $BRIDGE: a bridge" "bind $NV: already on vfio-pci" "bind $HOSTDEV: $HOSTDRV -> vfio-pci"
driver_is "$HOSTDEV" vfio-pci
run 0 "restore --dry-run" "$U" restore --dry-run
has "would unbind $HOSTDEV: vfio-pci -> $HOSTDRV (recorded)"
driver_is "$HOSTDEV" vfio-pci
run 0 "restore" "$U" restore
has "unbind $HOSTDEV: vfio-pci -> $HOSTDRV"
driver_is "$HOSTDEV" "$HOSTDRV"
driver_is "$NV" vfio-pci
run 0 "restore with nothing recorded" "$U" restore
has "nothing to restore"
# A device that had no driver gets none back.
A=$UVFIO_TEST_SHARED_A
echo "$A" >/sys/bus/pci/drivers/vfio-pci/unbind
NAME="unbind $A by hand"
driver_is "$A" -
run 0 "bind a driverless device" "$U" bind "$A"
has "bind $A: - -> vfio-pci"
driver_is "$A" vfio-pci
run 0 "unbind it" "$U" unbind "$A"
has "unbind $A: vfio-pci -> -"
driver_is "$A" -
echo "$A" >/sys/bus/pci/drivers_probe
NAME="probe $A again"
driver_is "$A" vfio-pci

# --- mdev (the full flavour's sample drivers) -----------------------------------------------
if [ "$UVFIO_VM_FLAVOR" = full ]; then
    UUID=0f3b29a6-7a1b-4c1e-9e6a-0000000000c1
    run 0 "mdev types" "$U" mdev types
    has "mtty" "mtty-1" "mtty-2" "vfio-pci" "instance $(basename "$UVFIO_TEST_MTTY_A")" "mdpy-xga"
    run 0 "mdev types --json" "$U" mdev types --json
    has '"id": "mtty-1"' '"available_instances": ' "\"$(basename "$UVFIO_TEST_MTTY_A")\""
    run 0 "mdev create" "$U" mdev create mtty mtty-1 --uuid "$UUID"
    has "$UUID"
    checks=$((checks + 1))
    [ -e "/sys/bus/mdev/devices/$UUID" ] || { echo "FAILED: mdev create made no $UUID"; fails=$((fails + 1)); }
    run 1 "mdev create twice" "$U" mdev create mtty mtty-1 --uuid "$UUID"
    run 0 "mdev remove" "$U" mdev remove "$UUID"
    has "removed $UUID"
    checks=$((checks + 1))
    [ ! -e "/sys/bus/mdev/devices/$UUID" ] || { echo "FAILED: mdev remove left $UUID"; fails=$((fails + 1)); }
    run 1 "mdev remove an unknown instance" "$U" mdev remove "$UUID"
    run 2 "mdev create with a bad UUID" "$U" mdev create mtty mtty-1 --uuid nope
fi

echo "cli-check: $checks checks, $fails failed"
exit "$fails"
