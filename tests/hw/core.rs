//! Hardware tests of the kernel objects: container, group, device, in the emulated IOMMU host.

use uvfio::device::{DeviceFlags, IrqIndex, RegionFlags, RegionIndex};
use uvfio::pci::PciAddress;
use uvfio::{Container, Errno, Error, Extension, Group, IommuType};

use crate::common::{
    self, device, devices, fd_count, iommu_group as group_of, open_device as open,
};

/// Whether the test mode's container is iommufd's compatibility container, which differs from
/// `/dev/vfio/vfio` where these tests say so.
fn compat() -> bool {
    common::mode().needs_iommufd()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn container_reports_version_and_type1v2() {
    let Some((c, _)) = common::container("container_reports_version_and_type1v2") else {
        return;
    };
    assert_eq!(c.is_iommufd_compat(), compat());
    assert_eq!(c.api_version().unwrap(), 0);
    if compat() {
        // Cache coherence is a property of the compat IOAS, which a group's joining creates:
        // before, the kernel answers ENODEV (and `extensions` leaves it out).
        let err = c.check_extension(Extension::DmaCcIommu).unwrap_err();
        assert_eq!(err.errno(), Errno::ENODEV, "{err}");
    }
    let ext = c.extensions().unwrap();
    assert!(ext.contains(Extension::Type1v2Iommu), "{ext:?}");
    assert!(ext.contains(Extension::Type1Iommu), "{ext:?}");
    assert!(!ext.contains(Extension::SpaprTceIommu), "{ext:?}");
    assert_eq!(ext.preferred_iommu(), Some(IommuType::Type1v2));
    assert_eq!(c.iommu(), None);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn set_iommu_needs_a_group_first_and_only_once() {
    let Some((c, iommu)) = common::container("set_iommu_needs_a_group_first_and_only_once") else {
        return;
    };
    let edu = device("UVFIO_TEST_EDU");
    let err = c.set_iommu(iommu).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");

    let g = Group::open(group_of(&edu)).unwrap();
    // A device cannot be opened before the group is in a container.
    let err = g.open_device(&edu).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    g.set_container(&c).unwrap();
    if compat() {
        // iommufd binds the device and attaches it to the compat IOAS when it opens: no
        // VFIO_SET_IOMMU is needed first (vfio_df_group_open).
        drop(g.open_device(&edu).unwrap());
    } else {
        // ... nor before the IOMMU type is set: the kernel says EINVAL and the message says why.
        let err = g.open_device(&edu).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
        assert!(err.to_string().contains("Container::set_iommu"), "{err}");
    }

    // No-IOMMU mode is never selected by the safe call (before: the kernel's answer decided,
    // NotSupported here, success on a no-IOMMU host).
    let err = c.set_iommu(IommuType::NoIommu).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("set_iommu_unchecked"), "{err}");
    assert_eq!(c.iommu(), None);

    c.set_iommu(iommu).unwrap();
    assert_eq!(c.iommu(), Some(iommu));
    // Now the model answers: iommufd's type1 emulation has no VFIO_UPDATE_VADDR (vfio_compat.c:
    // "hard to see how this could be implemented safely"), type1 has it; both unmap all.
    assert_eq!(
        c.check_extension(Extension::UpdateVaddr).unwrap(),
        !compat()
    );
    assert!(c.check_extension(Extension::UnmapAll).unwrap());
    for again in [IommuType::Type1, IommuType::Type1v2] {
        let err = c.set_iommu(again).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    assert!(g.open_device(&edu).is_ok());
}

/// Expected facts per device, from the emulated host's notes (`VFIO_DEVICE_GET_INFO` and
/// `GET_IRQ_INFO` as seen in the guest).
struct Expect {
    var: &'static str,
    reset: bool,
    intx: u32,
    msi: u32,
    msix: u32,
    bar0: u64,
    /// PCI Express (has the ERR IRQ index) rather than conventional PCI.
    pcie: bool,
}

const EXPECT: &[Expect] = &[
    Expect {
        var: "UVFIO_TEST_EDU",
        reset: false,
        intx: 1,
        msi: 1,
        msix: 0,
        bar0: 1 << 20,
        pcie: false,
    },
    Expect {
        var: "UVFIO_TEST_E1000_A",
        reset: false,
        intx: 1,
        msi: 0,
        msix: 0,
        bar0: 128 << 10,
        pcie: false,
    },
    Expect {
        var: "UVFIO_TEST_E1000E_A",
        reset: true,
        intx: 1,
        msi: 1,
        msix: 5,
        bar0: 128 << 10,
        pcie: true,
    },
    Expect {
        var: "UVFIO_TEST_NVME",
        reset: true,
        intx: 1,
        msi: 0,
        msix: 65,
        bar0: 16 << 10,
        pcie: true,
    },
];

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn device_info_regions_and_irqs_match_the_emulated_devices() {
    for e in EXPECT {
        let addr = device(e.var);
        let d = open(&addr);
        let info = d.info();
        assert!(info.flags.contains(DeviceFlags::PCI), "{addr}: {info:?}");
        assert_eq!(
            info.flags.contains(DeviceFlags::RESET),
            e.reset,
            "{addr}: {info:?}"
        );
        assert_eq!(info.num_regions, 9, "{addr}: vfio-pci has 9 fixed regions");
        assert_eq!(info.num_irqs, 5, "{addr}: vfio-pci has 5 IRQ indexes");

        let bar0 = d.region_info(RegionIndex::BAR0).unwrap();
        assert_eq!(bar0.size, e.bar0, "{addr}: BAR0 {bar0:?}");
        assert!(
            bar0.flags
                .contains(RegionFlags::READ | RegionFlags::WRITE | RegionFlags::MMAP),
            "{addr}: {bar0:?}"
        );
        let config = d.region_info(RegionIndex::CONFIG).unwrap();
        assert!(config.size >= 256, "{addr}: {config:?}");
        assert!(
            !config.flags.contains(RegionFlags::MMAP),
            "{addr}: config space is never mmappable"
        );

        // Regions are keyed by the kernel's index, even with holes (VGA is absent).
        let regions = d.regions().unwrap();
        assert!(
            regions.iter().all(|r| r.index != RegionIndex::VGA),
            "{addr}"
        );
        for r in &regions {
            assert_eq!(d.region_info(r.index).unwrap(), *r);
        }

        let count = |i: IrqIndex| d.irq_info(i).unwrap().count;
        assert_eq!(count(IrqIndex::INTX), e.intx, "{addr}");
        assert_eq!(count(IrqIndex::MSI), e.msi, "{addr}");
        assert_eq!(count(IrqIndex::MSIX), e.msix, "{addr}");
        // ERR exists only on PCI Express devices: vfio-pci answers EINVAL for the others, and
        // irqs() leaves it out while keeping every entry at its kernel index.
        let err_index = d.irq_info(IrqIndex::ERR);
        assert_eq!(err_index.is_ok(), e.pcie, "{addr}: {err_index:?}");
        let irqs = d.irqs().unwrap();
        assert_eq!(irqs.len(), if e.pcie { 5 } else { 4 }, "{addr}: {irqs:?}");
        for q in &irqs {
            assert_eq!(d.irq_info(q.index).unwrap(), *q, "{addr}");
        }
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bad_indexes_are_typed_errors() {
    let d = open(&device("UVFIO_TEST_EDU"));
    let err = d.region_info(9).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let err = d.region_info(u32::MAX).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let err = d.region_info(RegionIndex::VGA).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    let err = d.irq_info(5).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    // edu has no reset: a typed "not supported", not an ioctl error.
    let err = d.reset().unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn reset_works_where_the_device_offers_it() {
    let d = open(&device("UVFIO_TEST_E1000E_A"));
    d.reset().unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn open_close_cycles_leave_no_fd_behind() {
    let all = devices();
    let addrs: Vec<&str> = all.iter().map(String::as_str).collect();
    assert!(
        addrs.len() >= 7,
        "expected every test device, got {addrs:?}"
    );
    // Warm up (lazy statics in std, the first /proc read) before counting.
    drop(open(addrs[0]));
    let before = fd_count();
    for _ in 0..10 {
        for a in &addrs {
            let d = open(a);
            assert!(fd_count() > before);
            drop(d);
        }
    }
    assert_eq!(fd_count(), before);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dropping_the_device_last_releases_group_and_container() {
    let test = "dropping_the_device_last_releases_group_and_container";
    let Some((c, iommu)) = common::container(test) else {
        return;
    };
    drop(c);
    let edu = device("UVFIO_TEST_EDU");
    let before = fd_count();
    let d = {
        let (c, _) = common::container(test).unwrap();
        let g = Group::open(group_of(&edu)).unwrap();
        g.set_container(&c).unwrap();
        c.set_iommu(iommu).unwrap();
        g.open_device(&edu).unwrap()
        // c and g go out of scope here; the device keeps them alive.
    };
    assert_eq!(fd_count(), before + 3);
    let c = d
        .group()
        .unwrap()
        .container()
        .expect("the device keeps its group in the container");
    assert_eq!(c.groups(), vec![d.group().unwrap().id()]);
    drop(c);
    drop(d);
    assert_eq!(fd_count(), before);
    // The group was released: it can be opened again.
    let g = Group::open(group_of(&edu)).unwrap();
    assert!(g.container().is_none());
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn two_groups_share_one_container() {
    let Some((c, iommu)) = common::container("two_groups_share_one_container") else {
        return;
    };
    let a = device("UVFIO_TEST_EDU");
    let b = device("UVFIO_TEST_E1000_A");
    let ga = Group::open(group_of(&a)).unwrap();
    let gb = Group::open(group_of(&b)).unwrap();
    ga.set_container(&c).unwrap();
    c.set_iommu(iommu).unwrap();
    // The second group joins a container whose IOMMU is already set.
    gb.set_container(&c).unwrap();
    let mut groups = vec![ga.id(), gb.id()];
    groups.sort_unstable();
    assert_eq!(c.groups(), groups);
    let da = ga.open_device(&a).unwrap();
    let db = gb.open_device(&b).unwrap();
    assert!(da.group().unwrap().container().unwrap().same_as(&c));
    assert!(db.group().unwrap().container().unwrap().same_as(&c));
    if compat() {
        // iommufd lets a group leave with a device open (vfio_group_ioctl_unset_container
        // checks container users only for a real container): the device stays bound to the
        // iommufd and attached to the compat IOAS until it closes.
        gb.unset_container().unwrap();
        assert!(gb.container().is_none());
        drop(db);
    } else {
        // A group with an open device cannot leave.
        let err = gb.unset_container().unwrap_err();
        assert_eq!(err.errno(), Errno::EBUSY, "{err}");
        drop(db);
        gb.unset_container().unwrap();
    }
    assert_eq!(c.groups(), vec![ga.id()]);
    assert_eq!(c.iommu(), Some(iommu));
    // Joining the same container twice is a no-op.
    ga.set_container(&c).unwrap();
    drop(da);
    ga.unset_container().unwrap();
    assert!(c.groups().is_empty());
    if compat() {
        // iommufd's compat IOAS outlives its last group, with the model: a group rejoins and
        // its devices open without another VFIO_SET_IOMMU.
        assert_eq!(c.iommu(), Some(iommu));
        ga.set_container(&c).unwrap();
    } else {
        // When the last group leaves, the kernel drops the IOMMU context: the type must be set
        // again after a group rejoins, and devices open again after that.
        assert_eq!(c.iommu(), None);
        ga.set_container(&c).unwrap();
        c.set_iommu(iommu).unwrap();
    }
    assert!(ga.open_device(&a).is_ok());
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn open_pci_device_finds_and_reuses_the_group() {
    let Some((c, _)) = common::container("open_pci_device_finds_and_reuses_the_group") else {
        return;
    };
    let a: PciAddress = device("UVFIO_TEST_E1000E_A").parse().unwrap();
    let b: PciAddress = device("UVFIO_TEST_E1000E_B").parse().unwrap();
    let da = c.open_pci_device(&a).unwrap();
    // Without a model given, the preferred one of the host.
    assert_eq!(c.iommu(), Some(IommuType::Type1v2));
    let db = c.open_pci_device(&b).unwrap();
    assert_eq!(c.groups().len(), 2);
    // The same device twice: the group is reused and the kernel hands out a second fd.
    let da2 = c.open_pci_device(&a).unwrap();
    assert_eq!(da2.group().unwrap().id(), da.group().unwrap().id());
    assert!(!da2.same_as(&da));
    drop((da, db, da2));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn an_already_open_group_is_a_typed_busy_error() {
    let edu = device("UVFIO_TEST_EDU");
    let id = group_of(&edu);
    let g = Group::open(id).unwrap();
    let before = fd_count();
    let err = Group::open(id).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Open {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("already open"), "{err}");
    assert_eq!(fd_count(), before, "the failed open leaked an fd");
    drop(g);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_device_not_in_the_group_is_a_typed_error() {
    let Some((c, iommu)) = common::container("a_device_not_in_the_group_is_a_typed_error") else {
        return;
    };
    let edu = device("UVFIO_TEST_EDU");
    let nic = device("UVFIO_TEST_E1000_A");
    let g = Group::open(group_of(&edu)).unwrap();
    g.set_container(&c).unwrap();
    c.set_iommu(iommu).unwrap();
    let before = fd_count();
    for name in [nic.as_str(), "0000:ff:1f.7", "not-a-device", ""] {
        let err = g.open_device(name).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Ioctl {
                    ioctl: "VFIO_GROUP_GET_DEVICE_FD",
                    ..
                }
            ),
            "{name}: {err}"
        );
    }
    let err = g.open_device("bad\0name").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(fd_count(), before);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn type1_iommu_info_has_page_sizes_and_ranges() {
    let Some((c, iommu)) = common::container("type1_iommu_info_has_page_sizes_and_ranges") else {
        return;
    };
    let edu = device("UVFIO_TEST_EDU");
    let g = Group::open(group_of(&edu)).unwrap();
    g.set_container(&c).unwrap();
    c.set_iommu(iommu).unwrap();
    let _d = g.open_device(&edu).unwrap();
    let info = c.iommu_info().unwrap();
    assert_eq!(info.min_page_size(), Some(4096), "{info:?}");
    let ranges = info.iova_ranges().expect("the IOVA range capability");
    assert!(!ranges.is_empty());
    // VT-d reserves the MSI window at 0xfee00000: no valid range contains it.
    assert!(
        ranges.iter().all(|r| !r.contains(0xfee0_0000)),
        "{ranges:?}"
    );
    assert!(ranges.iter().any(|r| r.contains(0x10_0000)), "{ranges:?}");
    assert!(info.dma_avail().is_some_and(|n| n > 0), "{info:?}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn sysfs_binding_moves_a_device_to_vfio_pci_and_gives_it_back() {
    use uvfio::pci::sysfs::Sysfs;
    let addr = device("UVFIO_TEST_TESTDEV");
    let a: PciAddress = addr.parse().unwrap();
    let sysfs = Sysfs::new();
    let driver = || sysfs.driver(&a).unwrap();
    let write = |path: String, value: &str| {
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("writing {value:?} to {path}: {e}"))
    };
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    assert_eq!(sysfs.vendor_device(&a).unwrap(), (0x1b36, 0x0005));

    // Already on vfio-pci: binding changes nothing and restores nothing.
    let binding = sysfs.bind_vfio_pci(&a).unwrap();
    assert!(!binding.restores());
    drop(binding);
    assert_eq!(driver().as_deref(), Some("vfio-pci"));

    // Take it away from vfio-pci by hand: its group node disappears.
    write(format!("/sys/bus/pci/devices/{addr}/driver_override"), "\n");
    write("/sys/bus/pci/drivers/vfio-pci/unbind".to_string(), &addr);
    assert_eq!(driver(), None);
    assert_group_node_gone(&addr);

    // The RAII binding moves it to vfio-pci: the group and the device open again.
    let binding = sysfs.bind_vfio_pci(&a).unwrap();
    assert_eq!(binding.previous_driver(), None);
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    // While a VFIO fd of the device is open, giving it back is refused (the kernel's unbind
    // would wait for the fd to close, forever here): an error, and the device stays.
    let held = open(&addr);
    let err = binding.release().unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("VFIO fd"), "{err}");
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    drop(held);
    // Take it away by hand again for a binding of its own.
    write(format!("/sys/bus/pci/devices/{addr}/driver_override"), "\n");
    write("/sys/bus/pci/drivers/vfio-pci/unbind".to_string(), &addr);
    let binding = sysfs.bind_vfio_pci(&a).unwrap();
    drop(open(&addr));
    // Dropping it gives the device back to what it had: no driver.
    drop(binding);
    assert_eq!(driver(), None);
    assert_group_node_gone(&addr);

    // Leave it as the other tests expect it.
    sysfs.bind_vfio_pci(&a).unwrap().keep();
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    drop(open(&addr));
}

/// Checks that the group node of `addr`, just taken away from vfio-pci, is gone: with an IOMMU
/// the group stays (sysfs still links it) but its `/dev/vfio/N` node disappears; a no-IOMMU
/// group exists only while vfio-pci holds the device, so the kernel removes it with its link.
fn assert_group_node_gone(addr: &str) {
    if common::noiommu() {
        let link = common::sysfs_path(addr).join("iommu_group");
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "{addr}: the no-IOMMU group outlived vfio-pci's binding ({})",
            link.display()
        );
        return;
    }
    let err = Group::open(group_of(addr)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Open {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_binding_gives_a_device_back_to_its_own_host_driver() {
    use uvfio::pci::sysfs::Sysfs;
    if !common::needs_iommu(
        "a_binding_gives_a_device_back_to_its_own_host_driver",
        "it lends the host device of a non-viable group; without an IOMMU there are no shared \
         groups (each vfio-pci device gets a no-IOMMU group of its own, the host device none)",
    ) {
        return;
    }
    // The i6300esb of the non-viable group sits on its host (watchdog) driver; lending it to
    // vfio-pci makes the group viable, and dropping the binding must give it back to exactly
    // that driver, making the group non-viable again.
    let host = device("UVFIO_TEST_NONVIABLE_HOST");
    let a: PciAddress = host.parse().unwrap();
    let sysfs = Sysfs::new();
    let driver = || sysfs.driver(&a).unwrap();
    let original = driver().expect("the host device is bound to its driver");
    assert_ne!(original, "vfio-pci");
    let id = group_of(&host);
    assert!(!Group::open(id).unwrap().is_viable().unwrap());

    let binding = sysfs.bind_vfio_pci(&a).unwrap();
    assert_eq!(binding.previous_driver(), Some(original.as_str()));
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    assert!(Group::open(id).unwrap().is_viable().unwrap());
    assert!(sysfs.non_vfio_members(id).unwrap().is_empty());

    binding.release().unwrap();
    assert_eq!(driver().as_deref(), Some(original.as_str()));
    assert!(!Group::open(id).unwrap().is_viable().unwrap());
    let override_ =
        std::fs::read_to_string(format!("/sys/bus/pci/devices/{host}/driver_override")).unwrap();
    assert_eq!(
        override_.trim(),
        "(null)",
        "the override is put back as it was"
    );

    // The other way round, as a benchmark lends a vfio-pci device to its kernel driver: on
    // vfio-pci with the override set, lent to the host driver, and given back. Re-probing
    // without pinning vfio-pci would hand it to the host driver (its native one).
    sysfs.bind_vfio_pci(&a).unwrap().keep();
    let lent = sysfs.bind_driver(&a, &original).unwrap();
    assert_eq!(lent.previous_driver(), Some("vfio-pci"));
    assert_eq!(driver().as_deref(), Some(original.as_str()));
    drop(lent);
    assert_eq!(driver().as_deref(), Some("vfio-pci"));
    let override_path = format!("/sys/bus/pci/devices/{host}/driver_override");
    assert_eq!(
        std::fs::read_to_string(&override_path).unwrap().trim(),
        "vfio-pci"
    );

    // Leave it as the other tests expect it: on its host driver, no override.
    sysfs.bind_driver(&a, &original).unwrap().keep();
    std::fs::write(&override_path, "\n").unwrap();
    assert_eq!(driver().as_deref(), Some(original.as_str()));
    assert!(!Group::open(id).unwrap().is_viable().unwrap());
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn nodes_are_checked_before_any_vfio_request() {
    let edu = device("UVFIO_TEST_EDU");
    let nic = device("UVFIO_TEST_E1000_A");
    let (id, other) = (group_of(&edu), group_of(&nic));
    assert_ne!(id, other);
    let node = if common::noiommu() {
        format!("/dev/vfio/noiommu-{id}")
    } else {
        format!("/dev/vfio/{id}")
    };
    // The right number opens; another group's number is refused (before: the group was
    // known under the number the caller made up).
    drop(Group::open_path(id, &node).unwrap());
    let err = Group::open_path(other, &node).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "node of VFIO group {id} ({}), not of group {other}",
            node.trim_start_matches("/dev/vfio/")
        )),
        "{err}"
    );
    // The container node is not a group, a group node is not the container.
    let err = Group::open_path(id, "/dev/vfio/vfio").unwrap_err();
    assert!(err.to_string().contains("not a VFIO group node"), "{err}");
    let err = Container::open(&node).unwrap_err();
    assert!(
        err.to_string().contains("not the VFIO container node"),
        "{err}"
    );
    // A symlink to the container node is the container node.
    let link = std::env::temp_dir().join("uvfio-container-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/dev/vfio/vfio", &link).unwrap();
    assert_eq!(Container::open(&link).unwrap().api_version().unwrap(), 0);
    std::fs::remove_file(&link).unwrap();
}

/// The kernel selftest `vfio_pci_device_init_perf` (`init`): every device of the VM opened at
/// once, a thread each behind a barrier, into one DMA space of the test mode; prints the wall
/// time and the min/max/avg per device (the selftest has no threshold either). Each device is
/// then checked to be the one asked for.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn pci_device_init_perf_opens_every_device_in_parallel() {
    use std::time::{Duration, Instant};
    let all = devices();
    let space = common::space();
    let barrier = std::sync::Barrier::new(all.len());
    let t0 = Instant::now();
    let opened: Vec<(String, Duration, uvfio::Device)> = std::thread::scope(|s| {
        let threads: Vec<_> = all
            .iter()
            .map(|addr| {
                let (space, barrier) = (&space, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let d = space
                        .open_pci_device(&addr.parse().unwrap())
                        .unwrap_or_else(|e| panic!("{addr} in {}: {e}", space.mode()));
                    (addr.clone(), start.elapsed(), d)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let wall = t0.elapsed();
    assert_eq!(opened.len(), all.len());
    for (addr, _, d) in &opened {
        assert_eq!(d.name(), addr);
        assert_eq!(d.group().is_some(), common::mode().uses_groups(), "{addr}");
        let vendor = d.pci_config().unwrap().vendor_id().unwrap();
        let sysfs = std::fs::read_to_string(common::sysfs_path(addr).join("vendor")).unwrap();
        assert_eq!(format!("{vendor:#06x}"), sysfs.trim(), "{addr}");
    }
    if let Some(c) = space.container() {
        let mut groups: Vec<u32> = all.iter().map(|a| group_of(a)).collect();
        groups.sort_unstable();
        assert_eq!(
            c.groups(),
            groups,
            "each device's group joined the one container"
        );
    }
    let times: Vec<Duration> = opened.iter().map(|(_, t, _)| *t).collect();
    let avg = times.iter().sum::<Duration>() / times.len() as u32;
    common::say(&format!(
        "pci_device_init_perf in mode {}: {} devices in parallel, wall {wall:?}, per device min \
         {:?} max {:?} avg {avg:?}",
        space.mode(),
        times.len(),
        times.iter().min().unwrap(),
        times.iter().max().unwrap(),
    ));
}
