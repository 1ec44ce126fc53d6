//! The iommufd path: devices opened through their cdev, bound to `/dev/iommu`, attached to an
//! IOAS. Each test that mirrors a kernel selftest says which (`tools/testing/selftests/vfio`
//! `iommufd_setup`, `dma_map_limit`; `tools/testing/selftests/iommu` `iommufd_ioas`,
//! `iommufd.cmd_length`). They need the `full` flavour in VT-d mode (`debian` has no iommufd:
//! each test says SKIPPED there; no-IOMMU devices have no cdev).

use std::os::fd::AsRawFd;
use std::path::Path;

use uvfio::device::RegionIndex;
use uvfio::iommu::{DmaAccess, IovaRange};
use uvfio::iommufd::{HwInfo, Ioas, Iommufd};
use uvfio::{Device, Errno};

use crate::common;
use crate::vfio_io;

const PAGE: u64 = 4096;

/// Whether the iommufd tests run here (prints the SKIPPED line when not).
fn runs(test: &str) -> bool {
    common::needs_full_in_mode(
        test,
        "iommufd and the VFIO device cdev",
        Path::new("/dev/iommu").exists(),
        "vtd",
    )
}

fn errno_of<T: std::fmt::Debug>(r: uvfio::Result<T>) -> Errno {
    r.expect_err("the kernel should refuse this").errno()
}

/// The edu device opened through its cdev, bound to a fresh iommufd, attached to a fresh IOAS.
fn edu_on_ioas() -> (Iommufd, Ioas, Device) {
    let iommufd = Iommufd::new().expect("open /dev/iommu");
    let ioas = iommufd.alloc_ioas().expect("IOAS");
    let addr = common::device("UVFIO_TEST_EDU");
    let device = iommufd
        .open_pci_device(&addr.parse().expect("address"))
        .expect("open edu's cdev");
    device.attach(&ioas).expect("attach");
    (iommufd, ioas, device)
}

/// Anonymous, page-aligned memory for raw IOAS mappings; unmapped from the process on drop
/// (after the IOAS mapping is gone: callers unmap first or drop the IOAS first).
struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Pages {
    fn new(len: usize) -> Pages {
        // SAFETY: an anonymous private mapping; no existing memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap {len} bytes");
        Pages {
            ptr: ptr.cast(),
            len,
        }
    }

    fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        // SAFETY: in bounds of the mapping; volatile because the device writes it by DMA.
        (0..len)
            .map(|i| unsafe { self.ptr.add(offset + i).read_volatile() })
            .collect()
    }

    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds of the mapping.
            unsafe { self.ptr.add(offset + i).write_volatile(*b) };
        }
    }

    /// Maps the pages into `ioas`.
    fn map(&self, ioas: &Ioas, iova: Option<u64>) -> uvfio::Result<u64> {
        // SAFETY: the tests unmap (or drop the IOAS) before the Pages are dropped.
        unsafe { ioas.map_raw(self.ptr, self.len as u64, DmaAccess::ReadWrite, iova) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_setup_bind_and_the_device_works_as_through_a_group() {
    if !runs("iommufd_setup_bind_and_the_device_works_as_through_a_group") {
        return;
    }
    let (iommufd, ioas, device) = edu_on_ioas();
    let (bound, dev_id) = device.iommufd().expect("bound to an iommufd");
    assert!(bound.same_as(&iommufd));
    assert_ne!(dev_id, 0, "a device id is never 0");
    assert!(device.group().is_none(), "a cdev device has no group");
    let (attached, hwpt) = device.attached_ioas().expect("attached");
    assert!(attached.same_as(&ioas));
    assert_ne!(
        hwpt,
        ioas.id(),
        "attaching to an IOAS goes through a HWPT the kernel makes"
    );
    // Regions, config space and registers work as for a group-opened device.
    let addr = common::device("UVFIO_TEST_EDU");
    let config = device.pci_config().expect("config");
    assert_eq!(config.vendor_id().unwrap(), 0x1234);
    let bar0 = device.region(RegionIndex::BAR0).expect("BAR0");
    assert_eq!(
        bar0.read_u32(0).unwrap() & 0xff,
        0xed,
        "edu's id register at {addr}"
    );
    bar0.write_u32(4, 0x1234_5678).unwrap();
    assert_eq!(
        bar0.read_u32(4).unwrap(),
        !0x1234_5678,
        "edu's liveness register inverts"
    );
    // The IOMMU behind it is the emulated VT-d.
    match iommufd.hw_info(&device).expect("hw_info") {
        HwInfo::IntelVtd { cap, .. } => assert_ne!(cap, 0, "VT-d CAP_REG"),
        other => panic!("expected VT-d, got {other:?}"),
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn edu_dma_round_trip_through_an_ioas() {
    if !runs("edu_dma_round_trip_through_an_ioas") {
        return;
    }
    let (_iommufd, ioas, device) = edu_on_ioas();
    let config = device.pci_config().expect("config");
    config.set_bus_master(true).expect("bus master");
    let pages = Pages::new(2 * PAGE as usize);
    let iova = pages
        .map(&ioas, Some(0x10_0000))
        .expect("map at a fixed IOVA");
    assert_eq!(iova, 0x10_0000);
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7 + 3) as u8).collect();
    pages.write(0, &data);
    common::edu_dma(&device, iova, data.len() as u64, false);
    common::edu_dma(&device, iova + PAGE, data.len() as u64, true);
    assert_eq!(
        pages.read(PAGE as usize, data.len()),
        data,
        "RAM -> edu -> RAM through the IOAS"
    );
    assert_eq!(ioas.unmap(iova, 2 * PAGE).expect("unmap"), 2 * PAGE);
    config.set_bus_master(false).expect("bus master off");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_setup_get_info_without_bind_fails() {
    if !runs("iommufd_setup_get_info_without_bind_fails") {
        return;
    }
    let addr = common::device("UVFIO_TEST_TESTDEV");
    let cdev = cdev_path(&addr);
    let file = open_raw(&cdev);
    let mut info = [0u32; 6];
    info[0] = 24;
    // SAFETY: VFIO_DEVICE_GET_INFO on a VFIO device fd with a 24-byte buffer.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), vfio_io(7), info.as_mut_ptr()) };
    assert_eq!(rc, -1, "GET_INFO before BIND_IOMMUFD must fail");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_setup_bind_bad_iommufd_and_repeated_bind_fail() {
    if !runs("iommufd_setup_bind_bad_iommufd_and_repeated_bind_fail") {
        return;
    }
    let addr = common::device("UVFIO_TEST_TESTDEV");
    let cdev = cdev_path(&addr);
    // A bad iommufd: not an iommufd at all.
    let file = open_raw(&cdev);
    let null = std::fs::File::open("/dev/null").unwrap();
    assert!(
        raw_bind(&file, null.as_raw_fd()).is_err(),
        "binding to /dev/null"
    );
    assert!(raw_bind(&file, -1).is_err(), "binding to fd -1");
    drop(file);
    // Bound through the API; a second bind of the same fd fails.
    let iommufd = Iommufd::new().unwrap();
    let device = iommufd.open_cdev(&cdev).expect("open and bind");
    assert!(
        raw_bind_fd(device.as_raw_fd(), iommufd.as_raw_fd()).is_err(),
        "a second bind"
    );
    // One bound open at a time: a second open binds into EINVAL, and leaks no fd.
    let fds = common::fd_count();
    let again = iommufd
        .open_cdev(&cdev)
        .expect_err("a second open of the cdev");
    assert_eq!(again.errno(), Errno::EINVAL, "{again}");
    assert!(
        again.to_string().contains("VFIO_DEVICE_BIND_IOMMUFD"),
        "{again}"
    );
    assert_eq!(common::fd_count(), fds, "the failed open closed its fd");
    drop(device);
    iommufd
        .open_cdev(&cdev)
        .expect("open again once the first is closed");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_setup_attach_detach_and_invalid_pt_fails() {
    if !runs("iommufd_setup_attach_detach_and_invalid_pt_fails") {
        return;
    }
    let (iommufd, ioas, device) = edu_on_ioas();
    device.detach().expect("detach");
    assert!(device.attached_ioas().is_none());
    device.attach(&ioas).expect("attach again");
    // Replace: move to a second IOAS without detaching.
    let other = iommufd.alloc_ioas().expect("second IOAS");
    device.attach(&other).expect("replace");
    assert!(device.attached_ioas().unwrap().0.same_as(&other));
    // The API only takes IOAS objects; the kernel's check of a bad id, through the raw ioctl.
    let mut arg = [12u32, 0, u32::MAX];
    // SAFETY: VFIO_DEVICE_ATTACH_IOMMUFD_PT with a 12-byte vfio_device_attach_iommufd_pt.
    let rc = unsafe { libc::ioctl(device.as_raw_fd(), vfio_io(19), arg.as_mut_ptr()) };
    assert_eq!(rc, -1, "attaching to pt_id u32::MAX must fail");
    // An IOAS of another iommufd is refused before the kernel is asked.
    let foreign = Iommufd::new().unwrap().alloc_ioas().unwrap();
    let err = device.attach(&foreign).expect_err("foreign IOAS");
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_ioas_iova_ranges_leave_out_the_msi_window() {
    if !runs("iommufd_ioas_iova_ranges_leave_out_the_msi_window") {
        return;
    }
    let (_iommufd, ioas, _device) = edu_on_ioas();
    let ranges = ioas.iova_ranges().expect("IOVA ranges");
    assert_eq!(ranges.alignment, PAGE, "{ranges:?}");
    assert!(!ranges.ranges.is_empty());
    for r in &ranges.ranges {
        assert!(
            r.end < 0xfee0_0000 || r.start > 0xfeef_ffff,
            "{r:?} overlaps the MSI window"
        );
    }
    // ALLOW_IOVAS: kernel-chosen IOVAs stay inside the allowed range.
    ioas.allow_iovas(&[IovaRange {
        start: 0x20_0000,
        end: 0x2f_ffff,
    }])
    .expect("allow");
    let pages = Pages::new(PAGE as usize);
    let iova = pages.map(&ioas, None).expect("map anywhere");
    assert!((0x20_0000..0x30_0000).contains(&iova), "{iova:#x}");
    ioas.unmap(iova, PAGE).unwrap();
    // An inverted range is refused by the library.
    let bad = ioas
        .allow_iovas(&[IovaRange { start: 2, end: 1 }])
        .unwrap_err();
    assert_eq!(bad.errno(), Errno::EINVAL, "{bad}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_ioas_area_overlap_split_and_unmap_all() {
    if !runs("iommufd_ioas_area_overlap_split_and_unmap_all") {
        return;
    }
    let (_iommufd, ioas, _device) = edu_on_ioas();
    let a = Pages::new(4 * PAGE as usize);
    let b = Pages::new(PAGE as usize);
    let base = 0x40_0000;
    assert_eq!(a.map(&ioas, Some(base)).unwrap(), base);
    // Overlap: EEXIST.
    assert_eq!(errno_of(b.map(&ioas, Some(base + PAGE))), Errno::EEXIST);
    // Unmapping part of a mapping would split it: ENOENT. Nothing mapped there: ENOENT.
    assert_eq!(errno_of(ioas.unmap(base, PAGE)), Errno::ENOENT);
    assert_eq!(errno_of(ioas.unmap(0x80_0000, PAGE)), Errno::ENOENT);
    // Unmap-all reports the total of two mappings.
    assert_eq!(b.map(&ioas, Some(0x80_0000)).unwrap(), 0x80_0000);
    assert_eq!(ioas.unmap_all().unwrap(), 5 * PAGE);
    assert_eq!(ioas.unmap_all().unwrap(), 0, "unmap-all of nothing");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_map_limit_last_page_and_overflow() {
    if !runs("dma_map_limit_last_page_and_overflow") {
        return;
    }
    let (_iommufd, ioas, _device) = edu_on_ioas();
    let pages = Pages::new(2 * PAGE as usize);
    // unmap_range: the last page of the last range maps and unmaps whole.
    let last = *ioas.iova_ranges().unwrap().ranges.last().expect("a range");
    let top = (last.end - (PAGE - 1)) & !(PAGE - 1);
    assert_eq!(
        top + PAGE - 1,
        last.end,
        "the last range ends at a page end: {last:?}"
    );
    // SAFETY: unmapped below before `pages` is dropped.
    let got = unsafe { ioas.map_raw(pages.ptr, PAGE, DmaAccess::ReadWrite, Some(top)) }
        .expect("map the last page");
    assert_eq!(got, top);
    assert_eq!(ioas.unmap(top, PAGE).unwrap(), PAGE);
    // overflow: two pages at the last page of the 64-bit space wrap: EOVERFLOW both ways.
    let wrap = !(PAGE - 1);
    assert_eq!(errno_of(pages.map(&ioas, Some(wrap))), Errno::EOVERFLOW);
    assert_eq!(errno_of(ioas.unmap(wrap, 2 * PAGE)), Errno::EOVERFLOW);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_ioas_copy_area_serves_a_device_after_the_source_unmaps() {
    if !runs("iommufd_ioas_copy_area_serves_a_device_after_the_source_unmaps") {
        return;
    }
    let iommufd = Iommufd::new().unwrap();
    let src = iommufd.alloc_ioas().unwrap();
    let dst = iommufd.alloc_ioas().unwrap();
    let device = iommufd
        .open_pci_device(&common::device("UVFIO_TEST_EDU").parse().unwrap())
        .unwrap();
    device.attach(&dst).unwrap();
    let config = device.pci_config().unwrap();
    config.set_bus_master(true).unwrap();
    let pages = Pages::new(PAGE as usize);
    let s = pages.map(&src, Some(0x50_0000)).unwrap();
    let d = dst
        .copy_from(&src, s, PAGE, DmaAccess::ReadWrite, Some(0x60_0000))
        .expect("IOAS copy");
    assert_eq!(d, 0x60_0000);
    assert_eq!(src.unmap(s, PAGE).unwrap(), PAGE);
    // The device on `dst` still reaches the pages through the copy.
    pages.write(0, b"copied mapping");
    common::edu_dma(&device, d, 14, false);
    pages.write(0, &[0; 14]);
    common::edu_dma(&device, d, 14, true);
    assert_eq!(pages.read(0, 14), b"copied mapping");
    assert_eq!(dst.unmap_all().unwrap(), PAGE);
    config.set_bus_master(false).unwrap();
    // Copy from another iommufd's IOAS is refused by the library.
    let foreign = Iommufd::new().unwrap().alloc_ioas().unwrap();
    let err = dst
        .copy_from(&foreign, 0, PAGE, DmaAccess::ReadWrite, None)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_ioas_option_huge_pages() {
    if !runs("iommufd_ioas_option_huge_pages") {
        return;
    }
    let iommufd = Iommufd::new().unwrap();
    let ioas = iommufd.alloc_ioas().unwrap();
    assert!(ioas.huge_pages().unwrap(), "huge pages are on by default");
    ioas.set_huge_pages(false).unwrap();
    assert!(!ioas.huge_pages().unwrap());
    ioas.set_huge_pages(true).unwrap();
    assert!(ioas.huge_pages().unwrap());
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_cmd_length_abi() {
    if !runs("iommufd_cmd_length_abi") {
        return;
    }
    // IOMMU_IOAS_ALLOC with size - 1: EINVAL; a longer struct with a non-zero tail: E2BIG; with
    // a zero tail: accepted (the kernel's forward-compatibility rule every struct relies on).
    let iommufd = Iommufd::new().unwrap();
    let alloc = ((b';' as libc::c_ulong) << 8) | 0x81;
    let mut arg = [0u32; 6];
    for (size, tail, want) in [
        (11u32, 0u32, Some(libc::EINVAL)),
        (16, 1, Some(libc::E2BIG)),
        (16, 0, None),
    ] {
        arg = [size, 0, 0, tail, 0, 0];
        // SAFETY: IOMMU_IOAS_ALLOC reads and writes at most `size` (<= 24) bytes of `arg`.
        let rc = unsafe { libc::ioctl(iommufd.as_raw_fd(), alloc, arg.as_mut_ptr()) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        match want {
            Some(e) => assert_eq!((rc, errno), (-1, Some(e)), "size {size}, tail {tail}"),
            None => assert_eq!(rc, 0, "size {size} with a zero tail: {errno:?}"),
        }
    }
    assert_ne!(arg[2], 0, "the accepted call returned an IOAS id");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn each_mdev_opens_through_its_cdev() {
    let present = std::env::var("UVFIO_TEST_MTTY_A").is_ok();
    if !common::needs_full_in_mode(
        "each_mdev_opens_through_its_cdev",
        "mdev cdevs",
        present,
        "vtd",
    ) {
        return;
    }
    let iommufd = Iommufd::new().unwrap();
    let ioas = iommufd.alloc_ioas().unwrap();
    for var in ["UVFIO_TEST_MTTY_A", "UVFIO_TEST_MDPY", "UVFIO_TEST_MBOCHS"] {
        let sysfs = std::env::var(var).expect(var);
        let dir = Path::new(&sysfs).join("vfio-dev");
        let name = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{var}: {}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name())
            .find(|n| n.to_string_lossy().starts_with("vfio"))
            .unwrap_or_else(|| panic!("{var}: no vfioN in {}", dir.display()));
        let device = iommufd
            .open_cdev(Path::new("/dev/vfio/devices").join(name))
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        device
            .attach(&ioas)
            .unwrap_or_else(|e| panic!("{var}: attach: {e}"));
        assert!(device.info().num_regions > 0, "{var}");
        // An mdev has no IOMMU of its own: GET_HW_INFO says so.
        let err = iommufd.hw_info(&device).unwrap_err();
        assert_eq!(err.errno(), Errno::ENOENT, "{var}: {err}");
    }
}

/// `/dev/vfio/devices/vfioN` of a PCI device, from sysfs.
fn cdev_path(addr: &str) -> std::path::PathBuf {
    let dir = common::sysfs_path(addr).join("vfio-dev");
    let name = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name())
        .find(|n| n.to_string_lossy().starts_with("vfio"))
        .expect("vfioN");
    Path::new("/dev/vfio/devices").join(name)
}

/// The cdev opened as a plain file, not bound to anything (for the raw ioctl checks).
fn open_raw(cdev: &Path) -> std::fs::File {
    std::fs::File::options()
        .read(true)
        .write(true)
        .open(cdev)
        .unwrap_or_else(|e| panic!("open {}: {e}", cdev.display()))
}

fn raw_bind(file: &std::fs::File, iommufd: i32) -> std::io::Result<u32> {
    raw_bind_fd(file.as_raw_fd(), iommufd)
}

fn raw_bind_fd(fd: i32, iommufd: i32) -> std::io::Result<u32> {
    let mut arg = [16u32, 0, iommufd as u32, 0];
    // SAFETY: VFIO_DEVICE_BIND_IOMMUFD with a 16-byte vfio_device_bind_iommufd.
    let rc = unsafe { libc::ioctl(fd, vfio_io(18), arg.as_mut_ptr()) };
    if rc == 0 {
        Ok(arg[3])
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_compat_type1v2_runs_dma_buffers_unchanged() {
    // The kernel selftests' iommufd_compat_type1v2 mode: a /dev/iommu fd as the container.
    if !runs("iommufd_compat_type1v2_runs_dma_buffers_unchanged") {
        return;
    }
    use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions};
    use uvfio::{Container, Extension, Group, IommuType};

    let container = Container::iommufd_compat().expect("the iommufd compat container");
    assert_eq!(container.api_version().unwrap(), 0);
    assert!(container.check_extension(Extension::Type1v2Iommu).unwrap());
    let addr = common::device("UVFIO_TEST_EDU");
    let group = Group::open_pci(&addr.parse().unwrap()).unwrap();
    group
        .set_container(&container)
        .expect("a group joins an iommufd compat container");
    container.set_iommu(IommuType::Type1v2).expect("set_iommu");
    let device = group.open_device(&addr).expect("open edu");
    let info = container.iommu_info().expect("type1 info from iommufd");
    assert!(
        !info
            .iova_ranges()
            .expect("iommufd reports IOVA ranges")
            .is_empty(),
        "{info:?}"
    );
    // The same DmaBuffer as on a type1 container: an edu round trip through it.
    let options = DmaOptions::new().address_bits(28);
    let mut src = DmaBuffer::with_options(&container, 4096, options).unwrap();
    let dst = DmaBuffer::with_options(&container, 4096, options).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 13 + 1) as u8).collect();
    src.write_slice(0, &data).unwrap();
    let config = device.pci_config().unwrap();
    config.set_bus_master(true).unwrap();
    common::edu_dma(&device, src.iova(), data.len() as u64, false);
    common::edu_dma(&device, dst.iova(), data.len() as u64, true);
    let mut back = vec![0u8; data.len()];
    dst.read_slice(0, &mut back).unwrap();
    assert_eq!(
        back, data,
        "RAM -> edu -> RAM through iommufd's type1 emulation"
    );
    config.set_bus_master(false).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn cdev_hot_reset_proves_ownership_by_iommufd_and_resets_the_nvme() {
    if !runs("cdev_hot_reset_proves_ownership_by_iommufd_and_resets_the_nvme") {
        return;
    }
    use uvfio::device::HotResetOwner;

    let iommufd = Iommufd::new().unwrap();
    let ioas = iommufd.alloc_ioas().unwrap();
    let nvme = iommufd
        .open_pci_device(&common::device("UVFIO_TEST_HOTRESET").parse().unwrap())
        .expect("open the NVMe through its cdev");
    nvme.attach(&ioas).unwrap();
    let (_, dev_id) = nvme.iommufd().unwrap();
    // The info of a cdev device names device ids, not groups.
    let info = nvme.pci_hot_reset_info().expect("hot reset info");
    assert!(info.groups().is_empty(), "{info:?}");
    assert!(info.all_owned, "{info:?}");
    assert_eq!(info.devices.len(), 1, "{info:?}");
    assert_eq!(info.devices[0].owner, HotResetOwner::Device(dev_id));
    // Groups are no proof here.
    let edu_container = uvfio::Container::new().unwrap();
    let edu = edu_container
        .open_pci_device(&common::device("UVFIO_TEST_EDU").parse().unwrap())
        .unwrap();
    let err = nvme.pci_hot_reset(&[edu.group().unwrap()]).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    // The reset itself: CC (0x14) written before reads back 0 after.
    let bar0 = nvme.region(RegionIndex::BAR0).unwrap();
    const CC: u64 = 0x14;
    bar0.write_u32(CC, (6 << 16) | (4 << 20)).unwrap();
    assert_eq!(bar0.read_u32(CC).unwrap(), (6 << 16) | (4 << 20));
    nvme.pci_hot_reset(&[]).expect("cdev hot reset");
    assert_eq!(bar0.read_u32(CC).unwrap(), 0, "CC back to its reset value");
}
