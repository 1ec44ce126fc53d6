# shellcheck shell=bash
# The default device set of the emulated IOMMU host: sourced by runner.sh (the functions dev,
# alias_dev, dev_env, guest_env, guest_list and mdev are runner.sh's and documented there) when
# no other table is given (UVFIO_VM_DEVICES: uvfio-vm writes one from a crate's uvfio-vm.toml).

# edu: QEMU 7.2 silently masks DMA addresses to edu's dma_mask (28 bits by default); keep it at
# the default but explicit, and tell the tests (IOVAs must stay below 256 MiB for edu DMA).
EDU_DMA_MASK=0xfffffff
dev EDU 1234:11e8 at=root -device "edu,dma_mask=$EDU_DMA_MASK"
guest_env UVFIO_TEST_EDU_DMA_MASK "$EDU_DMA_MASK"
# Two e1000 on hub 0 and two e1000e on hub 1: frames only go between the NICs of a pair.
dev E1000_A 8086:100e -netdev hubport,id=hub0a,hubid=0 -device e1000,netdev=hub0a,mac=52:54:00:12:00:01
dev E1000_B 8086:100e -netdev hubport,id=hub0b,hubid=0 -device e1000,netdev=hub0b,mac=52:54:00:12:00:02
dev E1000E_A 8086:10d3 -netdev hubport,id=hub1a,hubid=1 -device e1000e,netdev=hub1a,mac=52:54:00:12:00:03
dev E1000E_B 8086:10d3 -netdev hubport,id=hub1b,hubid=1 -device e1000e,netdev=hub1b,mac=52:54:00:12:00:04
alias_dev NIC_A E1000_A
alias_dev NIC_B E1000_B
# NVMe alone behind a PCIe root port, so a secondary bus reset (PCI hot reset) can target it.
# x-speed=5 makes the port report its link as active, which Linux 6.1 waits for after the
# bus reset; with QEMU 7.2's default it never does and the hot reset fails with ENOTTY.
# Its drive: 1 GiB of zeros (null-co) under snapshot=on, a copy-on-write overlay QEMU keeps
# in an unlinked temporary file, so writes read back until the VM exits (the nvme example
# checks that) and every run starts from zeros again; nothing is left on the host.
dev NVME 1b36:0010 \
    -device pcie-root-port,id=rp0,chassis=1,x-speed=5 \
    -drive id=nvm0,if=none,format=raw,file=null-co://,file.read-zeroes=on,snapshot=on \
    -device nvme,serial=deadbeef,drive=nvm0,bus=rp0
alias_dev HOTRESET NVME
dev TESTDEV 1b36:0005 at=root -device pci-testdev
# Behind a conventional PCI-to-PCI bridge every device shares the bridge's requester ID, so Linux
# puts the bridge and all devices behind it into one IOMMU group. The bridge itself stays without
# a driver, which the kernel does not count against viability (shpc=off: no hot-plug controller
# a driver could ever claim). The bridges have fixed slots (0x10, 0x11) so that the guest can
# check what sits behind which.
# One group, two devices on vfio-pci (two more edu: the EDU above stays the root-bus one).
dev SHARED_A 1234:11e8 at=00:10.0 group=shared unlisted \
    -device pci-bridge,id=br_shared,chassis_nr=2,shpc=off,addr=0x10 \
    -device "edu,dma_mask=$EDU_DMA_MASK,bus=br_shared,addr=0x1"
dev SHARED_B 1234:11e8 at=00:10.0 group=shared unlisted \
    -device "edu,dma_mask=$EDU_DMA_MASK,bus=br_shared,addr=0x2"
guest_list UVFIO_TEST_SHARED_GROUP SHARED_A SHARED_B
# A group that is not viable: a pci-testdev on vfio-pci next to an i6300esb watchdog claimed by
# its host driver (i6300esb.ko; the watchdog only runs once /dev/watchdog is opened).
dev NONVIABLE 1b36:0005 at=00:11.0 group=nonviable unlisted \
    -device pci-bridge,id=br_nonviable,chassis_nr=3,shpc=off,addr=0x11 \
    -device pci-testdev,bus=br_nonviable,addr=0x1
dev NONVIABLE_HOST 8086:25ab at=00:11.0 group=nonviable host=i6300esb \
    -device i6300esb,bus=br_nonviable,addr=0x2

# Mediated devices (full flavour). Fixed UUIDs keep runs alike.
# Two dual-port serial ports with VFIO migration (STOP_COPY, PRE_COPY, P2P): migrate A into B.
mdev MTTY_A mtty-2 0f3b29a6-7a1b-4c1e-9e6a-000000000001
mdev MTTY_B mtty-2 0f3b29a6-7a1b-4c1e-9e6a-000000000002
# A display with a region graphics plane, and one with a dma-buf plane.
mdev MDPY mdpy-xga 0f3b29a6-7a1b-4c1e-9e6a-000000000003
mdev MBOCHS mbochs-medium 0f3b29a6-7a1b-4c1e-9e6a-000000000004
