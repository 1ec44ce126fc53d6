//! Checks ported from the kernel's VFIO selftests (`tools/testing/selftests/vfio`, Linux
//! 6.18+), named after the selftest and case they mirror, in every IOMMU mode as the kernel
//! runs them (`FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES`). edu plays the selftests' memcpy device.
//!
//! - `vfio_dma_mapping_test`: `dma_map_unmap` (anonymous, hugetlb 2 MiB, hugetlb 1 GiB; the
//!   IOMMU page-table check through debugfs is not ported: the kernels have no IOMMU debugfs);
//! - `vfio_dma_mapping_test`'s `vfio_dma_map_limit_test`: `unmap_range`, `unmap_all`,
//!   `overflow`;
//! - `vfio_dma_mapping_mmio_test`: `map_full_bar`, `map_partial_bar`, `map_bar_misaligned`
//!   (an mmapped BAR maps into the IOMMU on a legacy type1 container; iommufd, compat or not,
//!   pins only pages with a `struct page` and must refuse);
//! - `vfio_pci_driver_test`: `memcpy_to_unmapped_iova`, `memcpy_from_unmapped_iova` (and the
//!   device copies correctly afterwards, as in `mix_and_match`).
//!
//! Huge pages are used only where they are reserved: boot the VM with, e.g.,
//! `UVFIO_VM_CMDLINE="hugepages=8"` for 2 MiB pages, and `UVFIO_VM_MEM=4G
//! UVFIO_VM_CMDLINE="hugepagesz=1G hugepages=1"` for a 1 GiB one (with 3 GiB the boot-time
//! reservation of a 1 GiB page fails: q35 then has only 1 GiB above 4 GiB); otherwise those
//! cases are skipped visibly.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use uvfio::device::RegionIndex;
use uvfio::dma::{AddressLimit, DmaAccess, DmaBuffer, DmaMemory, DmaOptions, PageSize};
use uvfio::Errno;

use super::{
    edu_options, errno_of, huge_pages_free, map_raw, open_edu, random_bytes, round_trip, unmap,
    unmap_all, TestPages, EDU_MAX, PAGE,
};
use crate::common;

/// Reads the guest kernel's log (root in the VM): `None` when it cannot be read.
fn kernel_log() -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut log = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => log.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    Some(log)
}

fn dmar_faults() -> usize {
    kernel_log()
        .map(|l| {
            l.lines()
                .filter(|l| l.contains("DMAR") && l.contains("fault"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits (2 s at most) for the IOMMU to log a fault past the `before` lines, and asserts it
/// did where the log can be read. The fault is reported by an interrupt: the guest kernel
/// needs a moment to log it.
fn assert_fault_logged(before: usize, iova: u64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut after = dmar_faults();
    while after <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = dmar_faults();
    }
    println!("DMAR fault lines in the kernel log: {before} before, {after} after");
    if kernel_log().is_some() {
        assert!(
            after > before,
            "the IOMMU logged no DMAR fault for IOVA {iova:#x}"
        );
    }
}

/// `vfio_pci_driver_test.memcpy_to_unmapped_iova`: the device writes to an IOVA that was
/// unmapped; the memory that was behind it is untouched, the IOMMU reports a fault, and the
/// device copies correctly afterwards.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_pci_driver_test_memcpy_to_unmapped_iova() {
    if !common::needs_iommu(
        "vfio_pci_driver_test_memcpy_to_unmapped_iova",
        "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults",
    ) {
        return;
    }
    let edu = open_edu();
    let mut staging = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let mut victim = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let kept = random_bytes(EDU_MAX);
    victim.write_slice(0, &kept).unwrap();
    // Put other data into edu's buffer.
    staging.write_slice(0, &random_bytes(EDU_MAX)).unwrap();
    edu.ram_to_edu(staging.iova(), 0, EDU_MAX);
    let iova = victim.iova();
    assert_eq!(unmap(&edu.space, iova, 4096).unwrap(), 4096);
    let faults = dmar_faults();
    edu.edu_to_ram(0, iova, EDU_MAX);
    assert_eq!(
        victim.read_to_vec(0, EDU_MAX).unwrap(),
        kept,
        "a DMA to the unmapped IOVA {iova:#x} changed the memory"
    );
    assert_fault_logged(faults, iova);
    // The buffer's own unmap now finds nothing; dropping it must still free everything.
    drop(victim);
    let stats = edu.space.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (1, 0));
    // The device recovers: a copy through mapped memory works.
    let mut other = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    round_trip(&edu, &mut staging, 0, &mut other, 0, EDU_MAX, 0);
}

/// `vfio_pci_driver_test.memcpy_from_unmapped_iova`: the device reads from an IOVA that was
/// unmapped; it gets nothing of the memory that was behind it, the IOMMU reports a fault, and
/// the device copies correctly afterwards.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_pci_driver_test_memcpy_from_unmapped_iova() {
    if !common::needs_iommu(
        "vfio_pci_driver_test_memcpy_from_unmapped_iova",
        "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults",
    ) {
        return;
    }
    let edu = open_edu();
    let mut secret = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let mut check = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let hidden = random_bytes(EDU_MAX);
    secret.write_slice(0, &hidden).unwrap();
    let iova = secret.iova();
    assert_eq!(unmap(&edu.space, iova, 4096).unwrap(), 4096);
    let faults = dmar_faults();
    edu.ram_to_edu(iova, 0, EDU_MAX);
    assert_fault_logged(faults, iova);
    // Whatever edu's buffer holds now, it is not the memory behind the unmapped IOVA.
    check.fill(0, EDU_MAX, 0).unwrap();
    edu.edu_to_ram(0, check.iova(), EDU_MAX);
    assert_ne!(
        check.read_to_vec(0, EDU_MAX).unwrap(),
        hidden,
        "a DMA from the unmapped IOVA {iova:#x} read the memory behind it"
    );
    assert_eq!(secret.read_to_vec(0, EDU_MAX).unwrap(), hidden);
    drop(secret);
    // The device recovers.
    let mut other = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    round_trip(&edu, &mut check, 0, &mut other, 0, EDU_MAX, 0);
    drop((check, other));
    let stats = edu.space.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (0, 0));
}

/// The free huge pages of each size the kernel supports, e.g. `2048kB: 8, 1048576kB: 0`.
fn free_huge_pages_by_size() -> String {
    let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return "no /sys/kernel/mm/hugepages".into();
    };
    let mut sizes: Vec<String> = dir
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let free =
                std::fs::read_to_string(format!("/sys/kernel/mm/hugepages/{name}/free_hugepages"))
                    .ok()?;
            Some(format!(
                "{}: {}",
                name.trim_start_matches("hugepages-"),
                free.trim()
            ))
        })
        .collect();
    sizes.sort();
    sizes.join(", ")
}

/// `vfio_dma_mapping_test.dma_map_unmap`: a buffer of `page`-sized pages maps at an IOVA of
/// the allocator, the library's translation agrees with the mapping, the device copies through
/// it (where it fits edu's 28-bit DMA mask), and the unmap reports exactly the size mapped;
/// afterwards nothing is mapped there.
fn dma_map_unmap(test: &str, page: PageSize, boot: &str) {
    if !common::needs_iommu(test, "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults") {
        return;
    }
    if page != PageSize::Base && huge_pages_free(page) == 0 {
        common::say(&format!(
            "SKIPPED {test}: no free {} MiB huge page (boot the VM with {boot}; free here: {})",
            page.bytes() >> 20,
            free_huge_pages_by_size()
        ));
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let size = page.bytes();
    let len = size as u64;
    let fits_edu = len <= 2 << 20;
    let options = if fits_edu {
        edu_options()
    } else {
        DmaOptions::new()
    };
    let mut buf = DmaBuffer::with_options(s, size, options.page_size(page)).unwrap();
    assert_eq!(buf.page_size(), page);
    assert_eq!(buf.iova() % len, 0, "IOVA {:#x}", buf.iova());
    assert_eq!(buf.iova_at(0, size).unwrap(), buf.iova());
    assert_eq!(buf.iova_at(size - 1, 1).unwrap(), buf.iova() + len - 1);
    if fits_edu {
        let mut small = DmaBuffer::with_options(s, 4096, edu_options()).unwrap();
        round_trip(&edu, &mut buf, size - EDU_MAX, &mut small, 0, EDU_MAX, 0);
        round_trip(&edu, &mut small, 0, &mut buf, 0, EDU_MAX, 0);
    }
    assert_eq!(unmap(s, buf.iova(), len).unwrap(), len, "unmapped != size");
    assert_eq!(errno_of(unmap(s, buf.iova(), len)), Errno::ENOENT);
    drop(buf);
    let stats = s.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (0, 0));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_test_dma_map_unmap_anonymous() {
    dma_map_unmap(
        "vfio_dma_mapping_test_dma_map_unmap_anonymous",
        PageSize::Base,
        "",
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_test_dma_map_unmap_hugetlb_2mb() {
    dma_map_unmap(
        "vfio_dma_mapping_test_dma_map_unmap_hugetlb_2mb",
        PageSize::Huge2M,
        "UVFIO_VM_CMDLINE=hugepages=8",
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_test_dma_map_unmap_hugetlb_1gb() {
    dma_map_unmap(
        "vfio_dma_mapping_test_dma_map_unmap_hugetlb_1gb",
        PageSize::Huge1G,
        "UVFIO_VM_MEM=4G UVFIO_VM_CMDLINE=\"hugepagesz=1G hugepages=1\"",
    );
}

/// The last page of the last valid IOVA range, reserved from the space's allocator.
fn last_page(space: &uvfio::DmaSpace) -> u64 {
    let ranges = space.refresh_iova_ranges().unwrap();
    let last = ranges.iter().map(|r| r.end).max().expect("IOVA ranges");
    assert_eq!(last % PAGE, PAGE - 1, "{ranges:x?}");
    last - (PAGE - 1)
}

/// `vfio_dma_mapping_test.vfio_dma_map_limit_test.unmap_range`: the last page of the last
/// valid IOVA range maps, and unmaps with unmapped = size.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_map_limit_test_unmap_range() {
    if !common::needs_iommu(
        "vfio_dma_map_limit_test_unmap_range",
        "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults",
    ) {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let iova = last_page(s);
    let _taken = s.reserve_iova(iova, PAGE).unwrap();
    let pages = TestPages::new(PAGE as usize);
    // SAFETY: `pages` outlives the mapping: it is unmapped just below.
    unsafe { map_raw(s, pages.ptr, iova, PAGE, DmaAccess::ReadWrite) }.unwrap();
    println!("mapped the last page, IOVA {iova:#x}");
    assert_eq!(unmap(s, iova, PAGE).unwrap(), PAGE);
    assert_eq!(errno_of(unmap(s, iova, PAGE)), Errno::ENOENT);
}

/// `vfio_dma_mapping_test.vfio_dma_map_limit_test.unmap_all`: with the last page mapped,
/// unmap-all reports its size.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_map_limit_test_unmap_all() {
    if !common::needs_iommu(
        "vfio_dma_map_limit_test_unmap_all",
        "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults",
    ) {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let iova = last_page(s);
    let _taken = s.reserve_iova(iova, PAGE).unwrap();
    let pages = TestPages::new(PAGE as usize);
    // SAFETY: `pages` outlives the mapping: unmap_all removes it just below.
    unsafe { map_raw(s, pages.ptr, iova, PAGE, DmaAccess::ReadWrite) }.unwrap();
    assert_eq!(unmap_all(s).unwrap(), PAGE);
    assert_eq!(errno_of(unmap(s, iova, PAGE)), Errno::ENOENT);
}

/// `vfio_dma_mapping_test.vfio_dma_map_limit_test.overflow`: two pages at the last page of the
/// 64-bit IOVA space wrap: map and unmap fail with `EOVERFLOW` (on a container the library
/// refuses before the ioctl; on an IOAS the kernel does).
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_map_limit_test_overflow() {
    if !common::needs_iommu(
        "vfio_dma_map_limit_test_overflow",
        "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults",
    ) {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let iova = !(PAGE - 1);
    let pages = TestPages::new(2 * PAGE as usize);
    // SAFETY: `pages` outlives the call, which fails (asserted).
    let raw = unsafe { map_raw(s, pages.ptr, iova, 2 * PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EOVERFLOW);
    assert_eq!(errno_of(unmap(s, iova, 2 * PAGE)), Errno::EOVERFLOW);
    assert_eq!(unmap_all(s).unwrap(), 0, "the failed map left a mapping");
}

/// An mmap of `len` bytes of edu's BAR0 (from its start), placed `skew` bytes past a boundary
/// aligned to the BAR's size; unmapped on drop.
struct BarMap {
    base: *mut libc::c_void,
    reserved: usize,
    ptr: *mut u8,
}

impl BarMap {
    fn new(device: &uvfio::Device, bar_size: usize, len: usize, skew: usize) -> BarMap {
        let info = device.region_info(RegionIndex::BAR0).expect("BAR0");
        assert!(
            info.flags.contains(uvfio::device::RegionFlags::MMAP),
            "{info:?}"
        );
        // Reserve twice the BAR's size, then put the BAR at an aligned address plus `skew`.
        let reserved = 2 * bar_size + skew;
        // SAFETY: a fresh inaccessible anonymous reservation.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserved,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let at = (base as usize).next_multiple_of(bar_size) + skew;
        // SAFETY: MAP_FIXED inside the test's own reservation; the device fd maps its BAR.
        let ptr = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                device.as_raw_fd(),
                info.offset as libc::off_t,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap BAR0: {}",
            std::io::Error::last_os_error()
        );
        BarMap {
            base,
            reserved,
            ptr: ptr.cast(),
        }
    }
}

impl Drop for BarMap {
    fn drop(&mut self) {
        // SAFETY: the test's own reservation (the BAR mapping inside it goes with it); every
        // test unmaps its IOMMU mapping of the BAR first.
        unsafe { libc::munmap(self.base, self.reserved) };
    }
}

/// `vfio_dma_mapping_mmio_test`: maps `len` bytes of edu's mmapped BAR0 (placed `skew` bytes
/// off a BAR-size boundary) into the IOMMU. A legacy type1 container maps it (and the unmap
/// reports the size); iommufd and its compat container refuse, and nothing stays mapped.
fn map_bar(len_of: impl FnOnce(usize) -> usize, skew: usize) {
    if !common::needs_iommu("vfio_dma_mapping_mmio_test", "a kernel VFIO selftest of IOMMU mappings and faults; the selftests have no no-IOMMU mode, and without an IOMMU nothing is mapped or faults") {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let bar_size = edu
        .device
        .region_info(RegionIndex::BAR0)
        .expect("BAR0")
        .size as usize;
    let len = len_of(bar_size);
    let bar = BarMap::new(&edu.device, bar_size, len, skew);
    let spot = s.allocate_iova(len as u64, AddressLimit::NONE).unwrap();
    // SAFETY: `bar` outlives the mapping: it is unmapped below (or the map fails).
    let r = unsafe { map_raw(s, bar.ptr, spot.start(), len as u64, DmaAccess::ReadWrite) };
    let mode = edu.mode();
    if mode.needs_iommufd() {
        let e = r.expect_err("iommufd mapped an MMIO BAR into the IOMMU");
        println!("{mode}: mapping {len:#x} bytes of BAR0 (skew {skew:#x}) refused: {e}");
        assert_eq!(unmap_all(s).unwrap(), 0, "the refused map left a mapping");
    } else {
        r.unwrap_or_else(|e| panic!("{mode}: mapping {len:#x} bytes of BAR0: {e}"));
        assert_eq!(unmap(s, spot.start(), len as u64).unwrap(), len as u64);
    }
    // The BAR still works for the CPU.
    assert_eq!(edu.read32(0) & 0xff, 0xed);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_mmio_test_map_full_bar() {
    map_bar(|size| size, 0);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_mmio_test_map_partial_bar() {
    map_bar(|size| size / 2, 0);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn vfio_dma_mapping_mmio_test_map_bar_misaligned() {
    map_bar(|size| size, PAGE as usize);
}
