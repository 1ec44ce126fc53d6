//! Hardware tests of IOMMU groups with more than one device, in the emulated IOMMU host.
//!
//! tests/vm/devices.sh puts two conventional PCI-to-PCI bridges on the root bus. Everything behind
//! such a bridge shares the bridge's requester ID, so the bridge and its devices form one group:
//! - `UVFIO_TEST_SHARED_GROUP`: two `edu` behind the first bridge, both on vfio-pci;
//! - `UVFIO_TEST_NONVIABLE`: a `pci-testdev` on vfio-pci behind the second bridge, next to an
//!   i6300esb watchdog (`UVFIO_TEST_NONVIABLE_HOST`) claimed by its host driver, which makes
//!   that group non-viable.
//!
//! The bridges themselves have no driver, which the kernel does not hold against viability.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use uvfio::device::RegionIndex;
use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions};
use uvfio::error::GroupMember;
use uvfio::group::GroupFlags;
use uvfio::pci::PciAddress;
use uvfio::{Device, Errno, Error, Group, IommuType};

use crate::common::{self, device, driver, fd_count, iommu_group, sysfs_path, HOW_TO_RUN};

/// Whether the test mode's container is iommufd's compatibility container.
fn compat() -> bool {
    common::mode().needs_iommufd()
}

/// The two devices of the shared group (`UVFIO_TEST_SHARED_GROUP`, space-separated).
fn shared_pair() -> (String, String) {
    let var = "UVFIO_TEST_SHARED_GROUP";
    let list = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set; {HOW_TO_RUN}"));
    let addrs: Vec<&str> = list.split_whitespace().collect();
    assert_eq!(addrs.len(), 2, "{var}={list:?} should name two PCI devices");
    for a in &addrs {
        assert!(
            a.parse::<PciAddress>().is_ok() && sysfs_path(a).exists(),
            "{var}: {a:?} is not a PCI device of this host"
        );
    }
    let (a, b) = (addrs[0].to_string(), addrs[1].to_string());
    assert_ne!(a, b, "{var} names one device twice");
    assert_eq!(
        iommu_group(&a),
        iommu_group(&b),
        "{var}: {a} and {b} are not in one IOMMU group"
    );
    (a, b)
}

fn pci(addr: &str) -> PciAddress {
    addr.parse().expect("PCI address")
}

/// The region offset of `index` on `device`.
fn offset(device: &Device, index: RegionIndex) -> u64 {
    device
        .region_info(index)
        .unwrap_or_else(|e| panic!("{}: {index:?}: {e}", device.name()))
        .offset
}

fn pread(device: &Device, buf: &mut [u8], offset: u64) {
    let n = nix::sys::uio::pread(device.as_fd(), buf, offset as i64)
        .unwrap_or_else(|e| panic!("{}: pread at {offset:#x}: {e}", device.name()));
    assert_eq!(
        n,
        buf.len(),
        "{}: short pread at {offset:#x}",
        device.name()
    );
}

fn pwrite(device: &Device, buf: &[u8], offset: u64) {
    let n = nix::sys::uio::pwrite(device.as_fd(), buf, offset as i64)
        .unwrap_or_else(|e| panic!("{}: pwrite at {offset:#x}: {e}", device.name()));
    assert_eq!(
        n,
        buf.len(),
        "{}: short pwrite at {offset:#x}",
        device.name()
    );
}

/// edu registers through VFIO region reads and writes (BAR0).
struct Edu<'a>(&'a Device);

impl Edu<'_> {
    /// Turns on memory decoding and bus mastering, and checks the identification register.
    fn enable(device: &Device) -> Edu<'_> {
        let config = offset(device, RegionIndex::CONFIG);
        let mut cmd = [0u8; 2];
        pread(device, &mut cmd, config + 4);
        let cmd = u16::from_le_bytes(cmd) | 0x2 | 0x4; // Memory Space, Bus Master
        pwrite(device, &cmd.to_le_bytes(), config + 4);
        let edu = Edu(device);
        assert_eq!(
            edu.read32(0) & 0xff,
            0xed,
            "{}: not an edu device",
            device.name()
        );
        edu
    }

    fn read32(&self, reg: u64) -> u32 {
        let mut b = [0u8; 4];
        pread(self.0, &mut b, offset(self.0, RegionIndex::BAR0) + reg);
        u32::from_le_bytes(b)
    }

    fn write32(&self, reg: u64, value: u32) {
        pwrite(
            self.0,
            &value.to_le_bytes(),
            offset(self.0, RegionIndex::BAR0) + reg,
        );
    }

    fn read64(&self, reg: u64) -> u64 {
        let mut b = [0u8; 8];
        pread(self.0, &mut b, offset(self.0, RegionIndex::BAR0) + reg);
        u64::from_le_bytes(b)
    }

    fn write64(&self, reg: u64, value: u64) {
        pwrite(
            self.0,
            &value.to_le_bytes(),
            offset(self.0, RegionIndex::BAR0) + reg,
        );
    }

    /// The liveness register answers the complement of what was written.
    fn assert_alive(&self, value: u32) {
        self.write32(0x04, value);
        assert_eq!(
            self.read32(0x04),
            !value,
            "{}: edu liveness check",
            self.0.name()
        );
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.read64(0x98) & 1 != 0 {
            assert!(
                Instant::now() < deadline,
                "{}: edu DMA did not finish in 10 s",
                self.0.name()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One DMA of `len` bytes between `iova` and the start of edu's buffer (0x40000). Kept well
    /// inside the buffer: QEMU 7.2 aborts on an edu DMA that leaves it.
    fn dma(&self, iova: u64, len: u64, to_ram: bool) {
        assert!(len > 0 && len < 0x1000 && iova + len <= 1 << 28);
        self.wait_idle();
        let (src, dst) = if to_ram {
            (0x40000, iova)
        } else {
            (iova, 0x40000)
        };
        self.write64(0x80, src);
        self.write64(0x88, dst);
        self.write64(0x90, len);
        self.write64(0x98, 1 | (u64::from(to_ram) << 1));
        self.wait_idle();
    }
}

/// `src` -> edu -> `dst` through the IOMMU: the bytes must arrive unchanged.
fn edu_round_trip(edu: &Edu<'_>, src: &mut DmaBuffer, dst: &mut DmaBuffer, seed: u8) {
    let len = 512;
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect();
    src.write_slice(0, &data).unwrap();
    dst.fill(0, len, 0).unwrap();
    edu.dma(src.iova_at(0, len).unwrap(), len as u64, false);
    edu.dma(dst.iova_at(0, len).unwrap(), len as u64, true);
    assert_eq!(
        dst.read_to_vec(0, len).unwrap(),
        data,
        "{}: DMA round trip through IOVAs {:#x} and {:#x}",
        edu.0.name(),
        src.iova(),
        dst.iova()
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_shared_group_lists_both_devices_and_is_viable() {
    if !common::needs_iommu(
        "the_shared_group_lists_both_devices_and_is_viable",
        "without an IOMMU each vfio-pci device has a no-IOMMU group of its own: there are no shared groups",
    ) {
        return;
    }
    let (a, b) = shared_pair();
    let id = iommu_group(&a);
    let g = Group::open(id).unwrap();
    assert!(g.is_viable().unwrap(), "group {id} of {a} and {b}");
    assert_eq!(g.status().unwrap(), GroupFlags::VIABLE);
    let members = g.devices().unwrap();
    assert!(
        members.contains(&a) && members.contains(&b),
        "group {id}: {members:?}"
    );
    // The rest of the group (the bridge) has no driver: harmless for viability.
    for m in members.iter().filter(|m| **m != a && **m != b) {
        assert_eq!(driver(m), None, "group {id}: {m} has a driver");
    }
    // The same group through either device's sysfs entry; a second open is refused.
    assert_eq!(Group::open_pci(&pci(&b)).unwrap_err().errno(), Errno::EBUSY);
    drop(g);
    let g = Group::open_pci(&pci(&b)).unwrap();
    assert_eq!(g.id(), id);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn two_devices_of_one_group_open_and_work_in_one_container() {
    let test = "two_devices_of_one_group_open_and_work_in_one_container";
    let Some((c, iommu)) = common::container(test) else {
        return;
    };
    let (a, b) = shared_pair();
    let g = Group::open(iommu_group(&a)).unwrap();
    g.set_container(&c).unwrap();
    c.set_iommu(iommu).unwrap();
    let da = g.open_device(&a).unwrap();
    let db = g.open_device(&b).unwrap();
    assert!(!da.same_as(&db));
    assert_eq!((da.name(), db.name()), (a.as_str(), b.as_str()));
    assert_eq!(da.group().unwrap().id(), g.id());
    assert_eq!(db.group().unwrap().id(), g.id());
    assert_eq!(c.groups(), vec![g.id()], "one group in the container");
    for d in [&da, &db] {
        let bar0 = d.region_info(RegionIndex::BAR0).unwrap();
        assert_eq!(bar0.size, 1 << 20, "{}: edu BAR0 {bar0:?}", d.name());
        assert!(d.region_info(RegionIndex::CONFIG).unwrap().size >= 256);
    }
    // Both really reach their own device: each edu keeps its own liveness register.
    let (ea, eb) = (Edu::enable(&da), Edu::enable(&db));
    ea.assert_alive(0x1234_5678);
    eb.assert_alive(0x0bad_cafe);
    assert_eq!(ea.read32(0x04), !0x1234_5678);
    // A device can be opened a second time from the same group.
    let da2 = g.open_device(&a).unwrap();
    assert!(!da2.same_as(&da));
    Edu::enable(&da2).assert_alive(7);
    if compat() {
        // iommufd lets the group leave with its devices open: they stay bound to the iommufd
        // and attached to the compat IOAS, and keep working.
        g.unset_container().unwrap();
        Edu::enable(&db).assert_alive(8);
    } else {
        // The open devices keep the group in its container.
        let err = g.unset_container().unwrap_err();
        assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn one_mapping_serves_both_devices_of_the_group() {
    // A group has one IOMMU domain: what the container maps, every device of it can reach.
    let Some((c, iommu)) = common::container("one_mapping_serves_both_devices_of_the_group") else {
        return;
    };
    let (a, b) = shared_pair();
    let g = Group::open(iommu_group(&a)).unwrap();
    g.set_container(&c).unwrap();
    c.set_iommu(iommu).unwrap();
    let da = g.open_device(&a).unwrap();
    let db = g.open_device(&b).unwrap();
    let options = DmaOptions::new().address_bits(28); // edu's DMA mask
    let mut src = DmaBuffer::with_options(&c, 4096, options).unwrap();
    let mut dst = DmaBuffer::with_options(&c, 4096, options).unwrap();
    let (ea, eb) = (Edu::enable(&da), Edu::enable(&db));
    edu_round_trip(&ea, &mut src, &mut dst, 0xa5);
    edu_round_trip(&eb, &mut src, &mut dst, 0x5a);
    // Without its sibling the remaining device still DMAs through the group's mappings.
    drop(da);
    edu_round_trip(&eb, &mut src, &mut dst, 0x3c);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_group_leaves_the_container_only_after_both_devices_are_dropped() {
    let test = "the_group_leaves_the_container_only_after_both_devices_are_dropped";
    let Some((c, iommu)) = common::container(test) else {
        return;
    };
    drop(c);
    let (a, b) = shared_pair();
    let id = iommu_group(&a);
    let before = fd_count();
    let (da, db) = {
        let (c, _) = common::container(test).unwrap();
        let g = Group::open(id).unwrap();
        g.set_container(&c).unwrap();
        c.set_iommu(iommu).unwrap();
        (g.open_device(&a).unwrap(), g.open_device(&b).unwrap())
        // c and g go out of scope: the devices keep them alive.
    };
    // container + group + two devices
    assert_eq!(fd_count(), before + 4);

    drop(da);
    assert_eq!(fd_count(), before + 3, "only the first device's fd closed");
    let g = db.group().unwrap().clone();
    assert_eq!(
        g.status().unwrap(),
        GroupFlags::VIABLE | GroupFlags::CONTAINER_SET,
        "the group stays in the container while {b} is open"
    );
    let c = g.container().expect("the group is still in its container");
    assert_eq!(c.groups(), vec![id]);
    // The remaining device still works.
    assert_eq!(
        db.region_info(RegionIndex::BAR0).unwrap().size,
        1 << 20,
        "{b}"
    );
    Edu::enable(&db).assert_alive(0x600d_f00d);
    drop((g, c));
    assert_eq!(
        fd_count(),
        before + 3,
        "the device holds group and container"
    );

    drop(db);
    assert_eq!(
        fd_count(),
        before,
        "group and container closed with the last device"
    );
    // The group was released and left its container: it opens again, outside any container.
    let g = Group::open(id).unwrap();
    assert!(g.container().is_none());
    assert_eq!(g.status().unwrap(), GroupFlags::VIABLE);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn open_pci_device_reuses_the_group_for_the_second_device() {
    let test = "open_pci_device_reuses_the_group_for_the_second_device";
    let Some((c, _)) = common::container(test) else {
        return;
    };
    let (a, b) = shared_pair();
    let id = iommu_group(&a);
    let before = fd_count();
    let da = c.open_pci_device(&pci(&a)).unwrap();
    assert_eq!(fd_count(), before + 2, "group + device");
    assert_eq!(c.iommu(), Some(IommuType::Type1v2));
    // The group is open (and in the container): opening it anew would be EBUSY, so the second
    // device must come from the same Group.
    let db = c.open_pci_device(&pci(&b)).unwrap();
    assert_eq!(
        fd_count(),
        before + 3,
        "only a device fd more: the group was reused"
    );
    assert_eq!(c.groups(), vec![id]);
    assert_eq!(da.group().unwrap().id(), id);
    assert_eq!(db.group().unwrap().id(), id);
    assert_eq!(
        da.group().unwrap().as_raw_fd(),
        db.group().unwrap().as_raw_fd(),
        "both devices hold the same group fd"
    );
    assert!(c.group(id).is_some());
    Edu::enable(&db).assert_alive(42);
    drop(da);
    assert_eq!(c.groups(), vec![id], "{b} keeps the group in");
    drop(db);
    assert_eq!(fd_count(), before);
    assert!(c.groups().is_empty(), "{:?}", c.groups());
    assert!(c.group(id).is_none());
}

/// The vfio-pci device and the host-driver device of the non-viable group, and the group.
fn nonviable() -> (String, String, u32) {
    let vfio = device("UVFIO_TEST_NONVIABLE");
    let host = device("UVFIO_TEST_NONVIABLE_HOST");
    let id = iommu_group(&vfio);
    assert_eq!(
        iommu_group(&host),
        id,
        "{vfio} and {host} are not in one group"
    );
    assert_eq!(driver(&vfio).as_deref(), Some("vfio-pci"), "{vfio}");
    let host_driver = driver(&host);
    assert!(
        host_driver.is_some() && host_driver.as_deref() != Some("vfio-pci"),
        "{host} should be bound to a host driver, has {host_driver:?}"
    );
    (vfio, host, id)
}

/// Checks `err` is the non-viable error of group `id` naming `host` and its driver.
fn assert_not_viable(err: &Error, id: u32, vfio: &str, host: &str) {
    let Error::GroupNotViable {
        group,
        members,
        errno,
    } = err
    else {
        panic!("expected Error::GroupNotViable, got {err:?} ({err})");
    };
    assert_eq!(*group, id, "{err}");
    assert_eq!(*errno, Errno::EPERM, "{err}");
    assert_eq!(err.errno(), Errno::EPERM);
    let expected = GroupMember {
        device: host.to_string(),
        driver: driver(host),
    };
    // Exactly the device on a host driver: not the driverless bridge, which is harmless.
    assert_eq!(
        members,
        &vec![expected.clone()],
        "{err}: only {host} keeps the group from being viable"
    );
    assert!(
        members.iter().all(|m| m.device != vfio),
        "{err}: the vfio-pci device {vfio} is listed: {members:?}"
    );
    let text = err.to_string();
    assert!(text.contains(host), "{text}");
    assert!(text.contains(expected.driver.as_deref().unwrap()), "{text}");
    assert!(text.contains(&format!("group {id}")), "{text}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_non_viable_group_opens_but_cannot_join_a_container() {
    let test = "a_non_viable_group_opens_but_cannot_join_a_container";
    let Some((c, iommu)) = common::container(test) else {
        return;
    };
    drop(c);
    let (vfio, host, id) = nonviable();
    let host_driver = driver(&host);
    let before = fd_count();
    {
        let (c, _) = common::container(test).unwrap();
        // The node exists (one device is on vfio-pci) and opens ...
        let g = Group::open(id).unwrap();
        assert_eq!(g.id(), id);
        let members = g.devices().unwrap();
        assert!(
            members.contains(&vfio) && members.contains(&host),
            "group {id}: {members:?}"
        );
        // ... but the kernel says it is not viable: VFIO_GROUP_GET_STATUS has no flag set.
        assert!(!g.is_viable().unwrap());
        assert_eq!(g.status().unwrap(), GroupFlags::empty());
        let fds = fd_count();
        let err = g.set_container(&c).unwrap_err();
        eprintln!("set_container on the non-viable group: {err}");
        assert_not_viable(&err, id, &vfio, &host);
        assert_eq!(fd_count(), fds, "the failed set_container leaked an fd");
        // Nothing changed: the group is in no container, the container has no group.
        assert!(g.container().is_none());
        assert!(c.groups().is_empty());
        assert_eq!(g.status().unwrap(), GroupFlags::empty());
        let err = c.set_iommu(iommu).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let err = g.open_device(&vfio).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        // Asking again gives the same answer.
        assert_not_viable(&g.set_container(&c).unwrap_err(), id, &vfio, &host);
    }
    assert_eq!(fd_count(), before, "container and group fds closed");
    // The host driver still has its device.
    assert_eq!(driver(&host), host_driver, "{host} changed its driver");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn open_pci_device_on_a_non_viable_group_fails_without_leaking() {
    let test = "open_pci_device_on_a_non_viable_group_fails_without_leaking";
    let Some((c, _)) = common::container(test) else {
        return;
    };
    let (vfio, host, id) = nonviable();
    let before = fd_count();
    let err = c.open_pci_device(&pci(&vfio)).unwrap_err();
    assert_not_viable(&err, id, &vfio, &host);
    assert_eq!(
        fd_count(),
        before,
        "the group opened on the way was not closed"
    );
    assert!(c.groups().is_empty());
    assert_eq!(c.iommu(), None);
    // The group was closed again: it opens.
    drop(Group::open(id).unwrap());
    // The host-driver device is not a VFIO device at all.
    let err = c.open_pci_device(&pci(&host)).unwrap_err();
    assert_not_viable(&err, id, &vfio, &host);
    assert_eq!(fd_count(), before);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_dup_of_a_device_fd_keeps_the_group_and_its_mappings_in_the_container() {
    let test = "a_dup_of_a_device_fd_keeps_the_group_and_its_mappings_in_the_container";
    let Some((c, _)) = common::container(test) else {
        return;
    };
    let addr = device("UVFIO_TEST_EDU");
    let dev = c.open_pci_device(&pci(&addr)).unwrap();
    let id = dev.group().unwrap().id();
    let freed_while_attached = DmaBuffer::new(&c, 4096).unwrap();
    let freed_after_release = DmaBuffer::new(&c, 4096).unwrap();
    // A dup of the device fd outside the crate's handles: the kernel keeps the group (and the
    // IOMMU with every mapping) in the container until it closes.
    let dup = dev.as_fd().try_clone_to_owned().unwrap();
    drop(dev);
    if compat() {
        // iommufd lets the group leave with the dup open (the device stays bound and attached
        // to the compat IOAS, which outlives its groups with every mapping).
        assert_eq!(c.groups(), Vec::<u32>::new(), "the group left");
    } else {
        // UNSET_CONTAINER failed (EBUSY): the crate must not claim the group left.
        assert_eq!(c.groups(), vec![id], "the kernel still has the group");
    }
    assert_eq!(c.iommu(), Some(IommuType::Type1v2));
    // The IOMMU is still there, so the buffer's own unmap works and it is freed.
    drop(freed_while_attached);
    assert_eq!(c.dma_stats().leaked_bytes, 0);

    // The last fd closes: the kernel lets the group go and drops the IOMMU with its mappings.
    // The remaining buffer's unmap fails, and VFIO_IOMMU_GET_INFO proves there is nothing
    // left to unmap: it is freed, not leaked.
    drop(dup);
    drop(freed_after_release);
    let stats = c.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (0, 0), "{stats:?}");
    // The container sees the group gone too, and the type can be set again (compat: the IOAS
    // keeps its model).
    assert_eq!(c.groups(), Vec::<u32>::new());
    let expected = if compat() {
        Some(IommuType::Type1v2)
    } else {
        None
    };
    assert_eq!(c.iommu(), expected);
}
