//! Hardware tests of PCI config space (`uvfio::pci::config`), resets, hot reset, device
//! features and the graphics ioctls, in the emulated IOMMU host.

use std::os::fd::AsRawFd;

use uvfio::device::HotResetOwner;
use uvfio::device::{DrmPlaneType, Feature, FeatureAccess, GfxPlaneKind, MigState, RegionIndex};
use uvfio::pci::caps::{CapabilityId, ExtCapabilityId};
use uvfio::pci::config::{BarKind, Command, ConfigSpace};
use uvfio::{Errno, Error, Group};

use crate::common::{self, device, devices, sysfs_path};
use crate::regions::open;

fn sysfs_hex(addr: &str, file: &str) -> u64 {
    let s = std::fs::read_to_string(sysfs_path(addr).join(file)).unwrap();
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
}

/// The config space the host kernel sees (root reads all of it).
fn sysfs_config(addr: &str) -> ConfigSpace {
    ConfigSpace::from_bytes(std::fs::read(sysfs_path(addr).join("config")).unwrap())
}

/// An independent, minimal walk of the standard list (the sysfs bytes, Linux's rules), to
/// check the crate's walker against something other than itself.
fn reference_caps(b: &[u8]) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    if b[6] & 0x10 == 0 {
        return out;
    }
    let mut pos = b[0x34] & 0xfc;
    for _ in 0..48 {
        if pos < 0x40 {
            break;
        }
        out.push((b[pos as usize], pos));
        pos = b[pos as usize + 1] & 0xfc;
    }
    out
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn config_space_of_every_device_matches_sysfs() {
    for addr in devices() {
        let d = open(&addr);
        let config = d.pci_config().unwrap();
        let host = sysfs_config(&addr);
        assert_eq!(
            config.size(),
            host.as_bytes().len() as u64,
            "{addr}: config size"
        );
        assert_eq!(
            u64::from(config.vendor_id().unwrap()),
            sysfs_hex(&addr, "vendor"),
            "{addr}"
        );
        assert_eq!(
            u64::from(config.device_id().unwrap()),
            sysfs_hex(&addr, "device"),
            "{addr}"
        );
        let (base, sub, prog) = config.class().unwrap();
        assert_eq!(
            (u64::from(base) << 16) | (u64::from(sub) << 8) | u64::from(prog),
            sysfs_hex(&addr, "class"),
            "{addr}"
        );
        assert_eq!(
            config.subsystem().unwrap(),
            (
                sysfs_hex(&addr, "subsystem_vendor") as u16,
                sysfs_hex(&addr, "subsystem_device") as u16
            ),
            "{addr}"
        );

        // The standard list: as the host sees it, by the crate's walker and by a reference
        // walk of the sysfs bytes.
        let ours: Vec<(u8, u8)> = config
            .capabilities()
            .unwrap()
            .iter()
            .map(|c| (c.id.0, c.offset))
            .collect();
        let theirs = reference_caps(host.as_bytes());
        assert_eq!(ours, theirs, "{addr}: standard capabilities");

        // The extended list: vfio-pci hides the capabilities it does not know (and writes a
        // null header at 0x100 if the first one is hidden), so ours is the host's minus
        // hidden ones, in order.
        let ours: Vec<(u16, u16)> = config
            .ext_capabilities()
            .unwrap()
            .iter()
            .filter(|c| c.id != ExtCapabilityId::NULL)
            .map(|c| (c.id.0, c.offset))
            .collect();
        let theirs: Vec<(u16, u16)> = host
            .ext_capabilities()
            .map(|c| c.unwrap())
            .map(|c| (c.id.0, c.offset))
            .collect();
        let mut rest = theirs.iter();
        for c in &ours {
            assert!(
                rest.any(|t| t == c),
                "{addr}: ext cap {c:x?} is not in the host's list {theirs:x?}"
            );
        }
        eprintln!(
            "{addr}: caps {:x?}, ext caps {ours:x?} (host {theirs:x?})",
            config.capabilities().unwrap()
        );
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bars_decode_as_the_host_sees_them() {
    // sysfs `resource`: "start end flags" per BAR; IORESOURCE_IO 0x100, IORESOURCE_MEM 0x200,
    // IORESOURCE_PREFETCH 0x2000, IORESOURCE_MEM_64 0x100000.
    for addr in devices() {
        let d = open(&addr);
        let config = d.pci_config().unwrap();
        let resources = std::fs::read_to_string(sysfs_path(&addr).join("resource")).unwrap();
        let lines: Vec<(u64, u64, u64)> = resources
            .lines()
            .take(6)
            .map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).unwrap())
                    .collect();
                (v[0], v[1], v[2])
            })
            .collect();
        let bars = config.bars().unwrap();
        for (n, &(start, end, flags)) in lines.iter().enumerate() {
            let bar = bars.iter().find(|b| usize::from(b.index) == n);
            if flags == 0 || end == 0 {
                assert!(bar.is_none(), "{addr}: BAR{n} {bar:?} is not in sysfs");
                continue;
            }
            let bar = bar.unwrap_or_else(|| panic!("{addr}: BAR{n} missing from {bars:?}"));
            assert_eq!(bar.size, end - start + 1, "{addr}: BAR{n}");
            let kind = if flags & 0x100 != 0 {
                BarKind::Io
            } else if flags & 0x10_0000 != 0 {
                BarKind::Memory64
            } else {
                BarKind::Memory32
            };
            assert_eq!(bar.kind, kind, "{addr}: BAR{n} flags {flags:#x}");
            assert_eq!(bar.prefetchable, flags & 0x2000 != 0, "{addr}: BAR{n}");
        }
        eprintln!("{addr}: {bars:?}");
    }
    // The known layouts.
    let nvme = open(&device("UVFIO_TEST_NVME"))
        .pci_config()
        .unwrap()
        .bars()
        .unwrap();
    assert_eq!(nvme[0].kind, BarKind::Memory64);
    assert_eq!((nvme[0].index, nvme[0].size), (0, 16 << 10));
    let testdev = open(&device("UVFIO_TEST_TESTDEV")).pci_config().unwrap();
    let io = testdev.bar(1).unwrap().unwrap();
    assert_eq!((io.kind, io.size), (BarKind::Io, 256));
    let err = testdev.bar(6).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn msix_and_msi_capabilities_are_where_the_notes_say() {
    let nvme = open(&device("UVFIO_TEST_NVME")).pci_config().unwrap();
    let msix = nvme.msix().unwrap().unwrap();
    assert_eq!(msix.table_size, 65);
    assert_eq!(msix.table_range(), 0x2000..0x2410);
    assert_eq!(msix.pba_range(), 0x3000..0x3010);
    assert!(!msix.enabled);
    assert!(nvme.msi().unwrap().is_none());

    let e1000e = open(&device("UVFIO_TEST_E1000E_A")).pci_config().unwrap();
    let msix = e1000e.msix().unwrap().unwrap();
    assert_eq!((msix.table_size, msix.table.bar, msix.pba.bar), (5, 3, 3));
    let msi = e1000e.msi().unwrap().unwrap();
    assert!(!msi.enabled);
    let caps = e1000e.capabilities().unwrap();
    assert!(caps.iter().any(|c| c.id == CapabilityId::EXP), "{caps:?}");

    let edu = open(&device("UVFIO_TEST_EDU")).pci_config().unwrap();
    assert!(edu.msix().unwrap().is_none());
    assert_eq!(edu.msi().unwrap().unwrap().vectors_capable, 1);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn command_register_memory_and_bus_master() {
    let d = open(&device("UVFIO_TEST_E1000E_B"));
    let config = d.pci_config().unwrap();
    assert!(config.command().unwrap().contains(Command::MEMORY));
    config.set_bus_master(true).unwrap();
    assert!(config.command().unwrap().contains(Command::BUS_MASTER));
    config.set_bus_master(false).unwrap();
    assert!(!config.command().unwrap().contains(Command::BUS_MASTER));
    let c = config
        .update_command(|c| c | Command::BUS_MASTER | Command::MEMORY)
        .unwrap();
    assert_eq!(config.command().unwrap(), c);
    config.set_bus_master(false).unwrap();
    // The guard: on while it lives, off when dropped or released.
    {
        let _on = config.bus_master().unwrap();
        assert!(config.command().unwrap().contains(Command::BUS_MASTER));
    }
    assert!(!config.command().unwrap().contains(Command::BUS_MASTER));
    let on = config.bus_master().unwrap();
    assert!(config.command().unwrap().contains(Command::BUS_MASTER));
    on.release().unwrap();
    assert!(!config.command().unwrap().contains(Command::BUS_MASTER));
    // Typed accessors check alignment and range like any region.
    assert_eq!(config.read_u16(3).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        config.read_u32(config.size()).unwrap_err().errno(),
        Errno::ERANGE
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn rom_and_vga_are_read_where_present() {
    for addr in devices() {
        let d = open(&addr);
        let rom = d.region_info(RegionIndex::ROM).unwrap();
        if rom.size == 0 {
            let err = d.read_rom().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::NotSupported {
                        errno: Errno::ENXIO,
                        ..
                    }
                ),
                "{addr}: {err}"
            );
        } else {
            let image = d.read_rom().unwrap();
            assert_eq!(image.len() as u64, rom.size);
            assert_eq!(&image[..2], &[0x55, 0xaa], "{addr}: ROM signature");
            eprintln!("{addr}: ROM of {} bytes", image.len());
        }
        // No test device has VGA: the kernel reports the index absent.
        let err = d.region(RegionIndex::VGA).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{addr}: {err}");
    }
}

/// The reset methods the host kernel offers for `addr` (sysfs `reset_method`).
fn reset_methods(addr: &str) -> String {
    std::fs::read_to_string(sysfs_path(addr).join("reset_method"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn reset_puts_registers_back() {
    // nvme: VFIO_DEVICE_RESET is a function-level reset, and QEMU resets the controller: CC
    // (0x14), holding the queue entry sizes written before, is 0 again.
    let addr = device("UVFIO_TEST_NVME");
    assert!(
        reset_methods(&addr).contains("flr"),
        "{}",
        reset_methods(&addr)
    );
    let nvme = open(&addr);
    let bar0 = nvme.region(RegionIndex::BAR0).unwrap();
    const CC: u64 = 0x14;
    bar0.write_u32(CC, (6 << 16) | (4 << 20)).unwrap();
    assert_eq!(bar0.read_u32(CC).unwrap(), (6 << 16) | (4 << 20));
    nvme.reset().unwrap();
    // vfio-pci restored config space (memory decoding stays on); the mapping, zapped for the
    // reset, faults back in on the next access.
    assert!(nvme
        .pci_config()
        .unwrap()
        .command()
        .unwrap()
        .contains(Command::MEMORY));
    assert_eq!(bar0.read_u32(CC).unwrap(), 0, "CC back to its reset value");
    assert_eq!(bar0.read_u32(0x8).unwrap(), 0x0001_0400);

    // e1000e: the kernel's only reset method is a PM reset (D3hot and back), which QEMU 7.2's
    // e1000e does not turn into a device reset: the reset succeeds, the mapping works after
    // it, and the registers keep their values.
    let addr = device("UVFIO_TEST_E1000E_A");
    assert_eq!(reset_methods(&addr), "pm");
    let d = open(&addr);
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    const TDBAL: u64 = 0x3800;
    bar0.write_u32(TDBAL, 0x1234_5670).unwrap();
    d.reset().unwrap();
    assert!(d
        .pci_config()
        .unwrap()
        .command()
        .unwrap()
        .contains(Command::MEMORY));
    assert_eq!(bar0.read_u32(0x8).unwrap(), 0x0008_0283);
    assert_eq!(
        bar0.read_u32(TDBAL).unwrap(),
        0x1234_5670,
        "QEMU's PM reset"
    );
    bar0.write_u32(TDBAL, 0).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn hot_reset_info_lists_the_nvme_behind_the_root_port() {
    let addr = device("UVFIO_TEST_HOTRESET");
    let d = open(&addr);
    let info = d.pci_hot_reset_info().unwrap();
    eprintln!("{addr}: {info:?}");
    let me = info
        .devices
        .iter()
        .find(|x| x.address.map(|a| a.to_string()).as_deref() == Some(addr.as_str()))
        .unwrap_or_else(|| panic!("{addr} is not in its own hot reset info {info:?}"));
    assert_eq!(
        info.devices.len(),
        1,
        "alone behind its root port: {info:?}"
    );
    match (d.group(), d.iommufd()) {
        (Some(group), _) => {
            assert_eq!(me.group(), Some(group.id()));
            assert_eq!(
                info.groups(),
                vec![group.id()],
                "alone behind its root port"
            );
        }
        // A cdev device's info names device ids in its iommufd, not groups.
        (None, Some((_, dev_id))) => {
            assert_eq!(me.owner, HotResetOwner::Device(dev_id), "{info:?}");
            assert!(info.groups().is_empty(), "{info:?}");
            assert!(info.all_owned, "{info:?}");
        }
        (None, None) => panic!("{addr} has neither a group nor an iommufd"),
    }

    // A device on the root bus cannot be hot reset.
    let e1000e = open(&device("UVFIO_TEST_E1000E_A"));
    let err = e1000e.pci_hot_reset_info().unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotSupported {
                errno: Errno::ENODEV,
                ..
            }
        ),
        "{err}"
    );
    let groups: Vec<&Group> = e1000e.group().into_iter().collect();
    let err = e1000e.pci_hot_reset(&groups).unwrap_err();
    assert_eq!(err.errno(), Errno::ENODEV, "{err}");
}

/// `VFIO_DEVICE_PCI_HOT_RESET` by hand, to see what the kernel itself says.
fn raw_hot_reset(device: &uvfio::Device, group_fds: &[i32]) -> std::io::Result<()> {
    let mut buf: Vec<u32> = vec![(12 + 4 * group_fds.len()) as u32, 0, group_fds.len() as u32];
    buf.extend(group_fds.iter().map(|&fd| fd as u32));
    const VFIO_DEVICE_PCI_HOT_RESET: libc::c_ulong = ((b';' as libc::c_ulong) << 8) | (100 + 13);
    // SAFETY: VFIO_DEVICE_PCI_HOT_RESET reads a struct vfio_pci_hot_reset (argsz, flags, count)
    // followed by `count` i32 group fds: exactly `buf`, which outlives the call.
    let r = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            VFIO_DEVICE_PCI_HOT_RESET,
            buf.as_mut_ptr(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes CC (0x14) of the NVMe, runs `reset`, and checks CC reads back 0 (its reset value).
fn nvme_cc_cleared_by(nvme: &uvfio::Device, reset: impl FnOnce() -> uvfio::Result<()>) {
    let bar0 = nvme.region(RegionIndex::BAR0).unwrap();
    const CC: u64 = 0x14;
    bar0.write_u32(CC, (6 << 16) | (4 << 20)).unwrap();
    assert_eq!(bar0.read_u32(CC).unwrap(), (6 << 16) | (4 << 20));
    match reset() {
        Ok(()) => {}
        Err(e) if e.errno() == Errno::ENOTTY => panic!(
            "{e}: Linux waits for Data Link Layer Link Active on the root port after a bus \
             reset of a link faster than 5 GT/s, and QEMU 7.2's pcie-root-port never sets it; \
             give the root port x-speed=5 (tests/vm/devices.sh), or run with \
             UVFIO_VM_EXTRA_ARGS='-global pcie-root-port.x-speed=5'"
        ),
        Err(e) => panic!("{e}"),
    }
    assert!(nvme
        .pci_config()
        .unwrap()
        .command()
        .unwrap()
        .contains(Command::MEMORY));
    assert_eq!(bar0.read_u32(CC).unwrap(), 0, "CC back to its reset value");
    assert_eq!(bar0.read_u32(0x8).unwrap(), 0x0001_0400);
}

/// The hot reset of the mode's form: with group fds as proof for a device opened through its
/// group (the four container modes), with the iommufd as proof for one opened through its cdev
/// (`iommufd` mode; tests/hw/iommufd.rs checks that form on its own iommufd in every mode).
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn hot_reset_needs_the_right_groups_and_resets_the_nvme() {
    let nvme = open(&device("UVFIO_TEST_HOTRESET"));
    let Some(own) = nvme.group().map(Group::id) else {
        // The cdev form: groups are no proof (the edu's group, opened outside this mode's
        // space, is refused before the kernel is asked), the shared iommufd is.
        let edu_group = Group::open(common::iommu_group(&device("UVFIO_TEST_EDU"))).unwrap();
        let err = nvme.pci_hot_reset(&[&edu_group]).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
        assert!(err.to_string().contains("cdev"), "{err}");
        // The kernel agrees that a group-fd reset is no proof for a cdev device.
        let raw = raw_hot_reset(&nvme, &[edu_group.as_raw_fd()]).unwrap_err();
        assert_eq!(raw.raw_os_error(), Some(libc::EINVAL), "{raw}");
        nvme_cc_cleared_by(&nvme, || nvme.pci_hot_reset(&[]));
        return;
    };

    // Without proof: refused before the kernel is asked, naming the missing group.
    let err = nvme.pci_hot_reset(&[]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(err.errno(), Errno::EINVAL);
    let msg = err.to_string();
    assert!(msg.contains(&format!("group {own}")), "{msg}");
    // An unrelated group is no proof either.
    let edu = common::open_device(&device("UVFIO_TEST_EDU"));
    let err = nvme.pci_hot_reset(&[edu.group().unwrap()]).unwrap_err();
    assert!(err.to_string().contains(&format!("group {own}")), "{err}");
    // The kernel agrees: no group, or the wrong one, is EINVAL.
    let raw = raw_hot_reset(&nvme, &[]).unwrap_err();
    assert_eq!(raw.raw_os_error(), Some(libc::EINVAL), "{raw}");
    let raw = raw_hot_reset(&nvme, &[edu.group().unwrap().as_raw_fd()]).unwrap_err();
    assert_eq!(raw.raw_os_error(), Some(libc::EINVAL), "{raw}");

    // With its group: the controller is reset. CC (0x14) holds the queue entry sizes written
    // before; a reset clears it.
    let groups: [&Group; 2] = [edu.group().unwrap(), nvme.group().unwrap()];
    nvme_cc_cleared_by(&nvme, || nvme.pci_hot_reset(&groups));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn features_probe_and_typed_not_supported() {
    for var in ["UVFIO_TEST_E1000E_A", "UVFIO_TEST_NVME", "UVFIO_TEST_EDU"] {
        let d = open(&device(var));
        let features = d.features().unwrap();
        eprintln!("{var}: {features:?}");
        // Linux 6.1 vfio-pci: low power entry/exit (SET only); no migration, no DMA logging,
        // no VF token (not an SR-IOV PF), no bus-master feature (6.7).
        for f in [
            Feature::LOW_POWER_ENTRY,
            Feature::LOW_POWER_ENTRY_WITH_WAKEUP,
            Feature::LOW_POWER_EXIT,
        ] {
            assert_eq!(
                d.feature_probe(f).unwrap(),
                Some(FeatureAccess::SET),
                "{var}: {f}"
            );
        }
        for f in [
            Feature::PCI_VF_TOKEN,
            Feature::MIGRATION,
            Feature::MIG_DEVICE_STATE,
            Feature::DMA_LOGGING_START,
            Feature::DMA_LOGGING_STOP,
            Feature::DMA_LOGGING_REPORT,
            Feature::MIG_DATA_SIZE,
            Feature::BUS_MASTER,
            Feature(0x7777),
        ] {
            assert_eq!(d.feature_probe(f).unwrap(), None, "{var}: {f}");
        }
        let not_supported = |r: uvfio::Result<()>, what: &str| {
            let err = r.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::NotSupported {
                        errno: Errno::ENOTTY,
                        ..
                    }
                ),
                "{var} {what}: {err}"
            );
        };
        not_supported(d.set_bus_master_feature(true), "bus master");
        not_supported(d.migration_flags().map(drop), "migration");
        not_supported(d.mig_state().map(drop), "mig state");
        not_supported(d.set_mig_state(MigState::STOP).map(drop), "set mig state");
        not_supported(d.mig_data_size().map(drop), "mig data size");
        not_supported(
            d.dma_logging_start(4096, &[(0, 1 << 20)]).map(drop),
            "logging",
        );
        not_supported(d.dma_logging_stop(), "logging stop");
        not_supported(d.dma_logging_report(0, 1 << 20, 4096).map(drop), "report");
        not_supported(d.set_vf_token([0; 16]), "vf token");
        let err = d.dma_logging_report(0, 0, 4096).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    }

    // The largest report the crate accepts (2^34 pages: a 2 GiB bitmap) cannot be allocated in
    // the default 1 GiB guest: an error, where a `vec!` aborted the whole process before. (In a
    // guest with more memory the bitmap fits and the device's answer, NotSupported, comes back.)
    let d = open(&device("UVFIO_TEST_EDU"));
    let err = d.dma_logging_report(0, 1 << 46, 4096).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfMemory {
                errno: Errno::ENOMEM,
                ..
            } | Error::NotSupported { .. }
        ),
        "{err}"
    );
    drop(d);

    // Low power is refused while a mapped BAR exists (its accesses would raise SIGBUS, see
    // decoding::low_power_under_a_mapped_bar_is_a_typed_error_not_sigbus); without one, in and
    // out, and the device works afterwards.
    let d = open(&device("UVFIO_TEST_E1000E_B"));
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0));
    let err = d.low_power_entry().unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    drop(bar0);
    d.low_power_entry().unwrap();
    d.low_power_exit().unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.read_u32(0x8).unwrap(), 0x0008_0283);
    drop(bar0);
    // Entry with a wake-up eventfd; a plain file is refused by the kernel.
    let efd = nix::sys::eventfd::EventFd::new().unwrap();
    d.low_power_entry_with_wakeup(std::os::fd::AsFd::as_fd(&efd))
        .unwrap();
    d.low_power_exit().unwrap();
    let file = std::fs::File::open("/proc/self/maps").unwrap();
    let err = d
        .low_power_entry_with_wakeup(std::os::fd::AsFd::as_fd(&file))
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    d.low_power_exit().unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.read_u32(0x8).unwrap(), 0x0008_0283);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn graphics_ioctls_are_not_supported_on_pci_devices() {
    let d = open(&device("UVFIO_TEST_E1000E_A"));
    for kind in [GfxPlaneKind::DmaBuf, GfxPlaneKind::Region] {
        let err = d
            .gfx_plane_supported(kind, DrmPlaneType::PRIMARY)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotSupported {
                    errno: Errno::ENOTTY,
                    ..
                }
            ),
            "{err}"
        );
        let err = d.gfx_plane(kind, DrmPlaneType::CURSOR).unwrap_err();
        assert!(matches!(err, Error::NotSupported { .. }), "{err}");
        let err = d.gfx_plane_once(kind, DrmPlaneType::PRIMARY).unwrap_err();
        assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    }
    let err = d.gfx_dmabuf(0).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    // No Bochs dispi registers either (e1000e's BAR2 is a 32-byte I/O BAR).
    let err = uvfio::device::gfx::BochsDispi::new(&d).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
}
