//! Hardware tests of the mapping calls under the DMA layer: typed errors, unmap-all, the
//! mapping budget, bad parameters, IOVA ranges re-read as devices come and go, dirty
//! tracking, and the process's footprint after many cycles. Calls a mode lacks are skipped
//! visibly, saying why.

use std::time::Instant;

use uvfio::dma::{AddressLimit, DmaAccess, DmaBuffer, DmaMemory, DmaOptions, DmaPool};
use uvfio::iommu::DmaRun;
use uvfio::{Container, Errno, Error, Group, IommuMode};

use super::{
    edu_options, errno_of, footprint, map_raw, open_edu, unmap, unmap_all, TestPages, EDU_BITS,
    PAGE,
};
use crate::common::{self, device};

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mapping_errors_are_typed_and_leave_nothing_mapped() {
    if !common::needs_iommu(
        "mapping_errors_are_typed_and_leave_nothing_mapped",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    let edu = open_edu();
    let c = &edu.space;
    let avail = edu.dma_avail();
    println!(
        "dma_avail {avail:?}, ranges {:x?}",
        c.refresh_iova_ranges().unwrap()
    );
    let ranges = c.refresh_iova_ranges().unwrap();
    let pages = TestPages::new(2 * PAGE as usize);

    let a = DmaBuffer::with_options(c, 8192, edu_options()).unwrap();
    // Overlap: the allocator refuses before the kernel sees it...
    let e = DmaBuffer::with_options(c, 4096, edu_options().iova(a.iova() + PAGE)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert_eq!(e.errno(), Errno::EEXIST, "{e}");
    // ...and the kernel refuses a raw overlapping map.
    // SAFETY: if the map succeeded, it is unmapped below before `pages` goes; it fails.
    let raw = unsafe { map_raw(c, pages.ptr, a.iova() + PAGE, PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EEXIST);

    // Unaligned.
    let free = c
        .allocate_iova(2 * PAGE, AddressLimit::bits(EDU_BITS))
        .unwrap();
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            edu_options().iova(0x20_0800)
        )),
        Errno::EINVAL
    );
    // SAFETY: as above (fails).
    let raw = unsafe {
        map_raw(
            c,
            pages.ptr,
            free.start() + 0x800,
            PAGE,
            DmaAccess::ReadWrite,
        )
    };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // SAFETY: as above (fails).
    let raw = unsafe { map_raw(c, pages.ptr, free.start(), 100, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // SAFETY: as above (fails: the vaddr is unaligned).
    let raw = unsafe {
        map_raw(
            c,
            pages.ptr.wrapping_add(8),
            free.start(),
            PAGE,
            DmaAccess::ReadWrite,
        )
    };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // Past 2^64.
    // SAFETY: as above (refused: before the ioctl on a container, by the kernel on an IOAS).
    let raw = unsafe { map_raw(c, pages.ptr, !0xfff_u64, 2 * PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EOVERFLOW);

    // Outside the valid ranges: the x86 MSI window, and past the IOMMU's aperture.
    let msi = 0xfee0_0000u64;
    assert!(!ranges.iter().any(|r| r.contains(msi)), "{ranges:x?}");
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            DmaOptions::new().iova(msi)
        )),
        Errno::ERANGE
    );
    // SAFETY: as above (fails).
    let raw = unsafe { map_raw(c, pages.ptr, msi, PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    let top = ranges.iter().map(|r| r.end).max().unwrap();
    if top < u64::MAX - PAGE {
        let beyond = (top + 1).next_multiple_of(PAGE);
        assert_eq!(
            errno_of(DmaBuffer::with_options(
                c,
                4096,
                DmaOptions::new().iova(beyond)
            )),
            Errno::ERANGE
        );
        // SAFETY: as above (fails).
        let raw = unsafe { map_raw(c, pages.ptr, beyond, PAGE, DmaAccess::ReadWrite) };
        assert_eq!(errno_of(raw), Errno::EINVAL);
    }

    // Past the device's address limit.
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            edu_options().iova(1 << EDU_BITS)
        )),
        Errno::ERANGE
    );
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            8192,
            DmaOptions::new().address_bits(13)
        )),
        Errno::ENOSPC
    );
    assert_eq!(
        errno_of(DmaBuffer::with_options(c, 512 << 20, edu_options())),
        Errno::ENOSPC
    );

    // An unmap that cuts a mapping in two, then a double unmap. type1v2 refuses the cut
    // (EINVAL; iommufd, compat or not: ENOENT), legacy type1 (v1) unmaps the whole mapping
    // the range starts in, and iommufd's compat type1 cuts it (it turns off large IOMMU pages
    // for that).
    // SAFETY: `pages` outlives the mapping: it is unmapped below.
    unsafe { map_raw(c, pages.ptr, free.start(), 2 * PAGE, DmaAccess::ReadWrite) }.unwrap();
    match edu.mode() {
        IommuMode::VfioType1v2 => {
            assert_eq!(errno_of(unmap(c, free.start(), PAGE)), Errno::EINVAL);
            assert_eq!(unmap(c, free.start(), 2 * PAGE).unwrap(), 2 * PAGE);
        }
        IommuMode::IommufdCompatType1v2 | IommuMode::Iommufd => {
            assert_eq!(errno_of(unmap(c, free.start(), PAGE)), Errno::ENOENT);
            assert_eq!(unmap(c, free.start(), 2 * PAGE).unwrap(), 2 * PAGE);
        }
        IommuMode::VfioType1 => {
            assert_eq!(unmap(c, free.start(), PAGE).unwrap(), 2 * PAGE);
        }
        IommuMode::IommufdCompatType1 => {
            assert_eq!(unmap(c, free.start(), PAGE).unwrap(), PAGE);
            assert_eq!(unmap(c, free.start(), 2 * PAGE).unwrap(), PAGE);
        }
        IommuMode::NoIommu => unreachable!("the DMA tests do not run in no-IOMMU mode"),
    }
    let e = unmap(c, free.start(), 2 * PAGE).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");

    drop(a);
    drop(free);
    let stats = c.dma_stats();
    assert_eq!(
        (stats.buffers, stats.mapped_bytes, stats.leaked_bytes),
        (0, 0, 0)
    );
    assert_eq!(stats.iova.unwrap().allocations, 0);
    assert_eq!(edu.dma_avail(), avail, "a mapping was left behind");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn cycles_leave_the_process_where_it_started() {
    if !common::needs_iommu(
        "cycles_leave_the_process_where_it_started",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    let edu = open_edu();
    let pool = DmaPool::new(&edu.space, 2048, 256, edu_options()).unwrap();
    let before = footprint(&edu);
    let ioctls = edu.space.dma_stats();

    // 100,000 allocate/free cycles of pool buffers and of IOVA blocks.
    let start = Instant::now();
    for i in 0..100_000u32 {
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        assert_ne!(a.iova(), b.iova());
        drop(a);
        let iova = edu
            .space
            .allocate_iova(PAGE << (i % 5), AddressLimit::bits(EDU_BITS))
            .unwrap();
        assert!(iova.start() != 0);
    }
    let allocs = start.elapsed();
    let after_allocs = edu.space.dma_stats();
    assert_eq!(
        (after_allocs.map_ioctls, after_allocs.unmap_ioctls),
        (ioctls.map_ioctls, ioctls.unmap_ioctls),
        "allocations made ioctls"
    );

    // 10,000 map/unmap cycles.
    let start = Instant::now();
    for i in 0..10_000usize {
        let mut buf =
            DmaBuffer::with_options(&edu.space, (PAGE as usize) << (i % 3), edu_options()).unwrap();
        buf.write::<u64>(0, i as u64).unwrap();
    }
    let maps = start.elapsed();
    let after = footprint(&edu);
    println!(
        "100000 alloc/free cycles: {allocs:?}; 10000 map/unmap cycles: {maps:?}; footprint \
         {after:?}"
    );
    assert_eq!(before, after);
    let stats = edu.space.dma_stats();
    assert_eq!(stats.map_ioctls - after_allocs.map_ioctls, 10_000);
    assert_eq!(stats.unmap_ioctls - after_allocs.unmap_ioctls, 10_000);
    assert_eq!(stats.leaked_bytes, 0);
    drop(pool);
    let last = edu.space.dma_stats();
    assert_eq!((last.buffers, last.mapped_bytes), (0, 0));
}

/// The test mode's container with no IOMMU model set: `/dev/vfio/vfio` or iommufd's compat
/// container; `None` in iommufd mode, which has no container.
fn bare_container() -> Option<Container> {
    let mode = common::mode();
    mode.iommu_type()?;
    Some(if mode.needs_iommufd() {
        Container::iommufd_compat().expect("iommufd's compat container")
    } else {
        Container::new().expect("container")
    })
}

fn group_of(addr: &str) -> Group {
    Group::open_pci(&addr.parse().expect("PCI address")).expect("open the group")
}

/// The valid IOVA ranges are read again before the next allocation when the space's devices
/// change: a group joins or leaves the container, a device attaches to or detaches from the
/// IOAS.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iova_ranges_are_reread_when_a_group_joins() {
    if !common::needs_iommu(
        "iova_ranges_are_reread_when_a_group_joins",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let first = s.refresh_iova_ranges().unwrap();
    assert!(
        first.iter().all(|r| r.start >= PAGE),
        "IOVA 0 is usable: {first:x?}"
    );
    let a = DmaBuffer::new(s, 4096).unwrap();
    let reads = s.dma_stats().range_reads;
    // A second group joins (a second device attaches): the next allocation reads the ranges
    // again (intel-iommu gives the same answer; what matters is that the kernel is asked).
    let testdev = device("UVFIO_TEST_TESTDEV");
    enum Other {
        Group(Group),
        Device(uvfio::Device),
    }
    let other = if let Some(c) = s.container() {
        let g = group_of(&testdev);
        g.set_container(c).unwrap();
        Other::Group(g)
    } else {
        Other::Device(s.open_pci_device(&testdev.parse().unwrap()).unwrap())
    };
    let b = DmaBuffer::new(s, 4096).unwrap();
    assert_eq!(s.dma_stats().range_reads, reads + 1);
    let c = DmaBuffer::new(s, 4096).unwrap();
    assert_eq!(
        s.dma_stats().range_reads,
        reads + 1,
        "read again without cause"
    );
    assert_ne!(a.iova(), b.iova());
    assert_eq!(s.refresh_iova_ranges().unwrap(), first);
    // And when it leaves.
    match &other {
        Other::Group(g) => g.unset_container().unwrap(),
        Other::Device(d) => d.detach().unwrap(),
    }
    let d = DmaBuffer::new(s, 4096).unwrap();
    assert_eq!(s.dma_stats().range_reads, reads + 3);
    drop((a, b, c, d));
    drop(other);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dirty_tracking_reports_device_writable_pages() {
    const TEST: &str = "dirty_tracking_reports_device_writable_pages";
    if !common::runs_in_mode(
        TEST,
        |m| m.iommu_type().is_some(),
        "VFIO_IOMMU_DIRTY_PAGES is a container call; an IOAS tracks dirty pages through a \
         HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (tests/hw/iommufd.rs)",
    ) {
        return;
    }
    let edu = open_edu();
    let c = edu.space.container().unwrap();
    match edu.mode() {
        IommuMode::VfioType1v2 => {}
        IommuMode::VfioType1 => {
            // type1 (v1) refuses: dirty tracking is a type1v2 feature.
            assert_eq!(errno_of(c.start_dirty_tracking()), Errno::EACCES);
            common::say(&format!(
                "SKIPPED {TEST} in mode {}: type1 (v1) refuses dirty tracking (EACCES, checked)",
                edu.mode()
            ));
            return;
        }
        mode => {
            // iommufd's compat container does not implement VFIO_IOMMU_DIRTY_PAGES.
            assert_eq!(errno_of(c.start_dirty_tracking()), Errno::ENOTTY);
            common::say(&format!(
                "SKIPPED {TEST} in mode {mode}: iommufd's compat container has no \
                 VFIO_IOMMU_DIRTY_PAGES (ENOTTY, checked)"
            ));
            return;
        }
    }
    let info = c.iommu_info().unwrap();
    let page = info.min_page_size().unwrap();
    println!("IOMMU caps: {:?}", info.caps);
    let buf = DmaBuffer::with_options(c, 16 * page as usize, edu_options()).unwrap();
    c.start_dirty_tracking().unwrap();
    let bitmap = c.dirty_bitmap(buf.iova(), buf.len() as u64, page).unwrap();
    // Without hardware dirty bits type1 reports every pinned writable page.
    assert_eq!(bitmap.pages(), 16);
    assert_eq!(bitmap.dirty_count(), 16, "{:x?}", bitmap.words());
    assert!(bitmap.is_dirty(buf.iova() + 5 * page));
    // Wrong page size: refused.
    assert_eq!(
        errno_of(c.dirty_bitmap(buf.iova(), buf.len() as u64, page * 2)),
        Errno::EINVAL
    );
    // Unmap with the final bitmap.
    let pages = TestPages::new(4 * page as usize);
    let spot = c
        .allocate_iova(4 * page, AddressLimit::bits(EDU_BITS))
        .unwrap();
    // SAFETY: `pages` outlives the mapping, which is removed by unmap_dma_dirty below.
    unsafe { c.map_dma_raw(pages.ptr, spot.start(), 4 * page, DmaAccess::ReadWrite) }.unwrap();
    let (unmapped, last) = c.unmap_dma_dirty(spot.start(), 4 * page, page).unwrap();
    assert_eq!(unmapped, 4 * page);
    assert_eq!(last.dirty_count(), 4);
    c.stop_dirty_tracking().unwrap();
    drop(buf);
}

/// Unmap-all in every mode (`VFIO_DMA_UNMAP_FLAG_ALL`, or `IOMMU_IOAS_UNMAP` of the whole
/// IOVA space): raw mappings and buffers' mappings go, the bytes are counted, and a second
/// unmap-all finds nothing.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn unmap_all_takes_every_mapping() {
    if !common::needs_iommu(
        "unmap_all_takes_every_mapping",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    let edu = open_edu();
    let s = &edu.space;
    let avail = edu.dma_avail();
    let pages = TestPages::new(8 * PAGE as usize);
    let spot = s
        .allocate_iova(8 * PAGE, AddressLimit::bits(EDU_BITS))
        .unwrap();
    // SAFETY: `pages` outlives the mappings: unmap_all removes them below.
    unsafe { map_raw(s, pages.ptr, spot.start(), 4 * PAGE, DmaAccess::ReadWrite) }.unwrap();
    // SAFETY: as above.
    unsafe {
        map_raw(
            s,
            pages.ptr.wrapping_add(6 * PAGE as usize),
            spot.start() + 5 * PAGE,
            PAGE,
            DmaAccess::ReadOnly,
        )
    }
    .unwrap();
    if let (Some(a), Some(now)) = (avail, edu.dma_avail()) {
        assert_eq!(a - now, 2);
    }
    let buf = DmaBuffer::with_options(s, 8192, edu_options()).unwrap();
    assert!(buf.is_mapped());
    assert_eq!(unmap_all(s).unwrap(), 5 * PAGE + 8192);
    assert!(
        !buf.is_mapped(),
        "the buffer claims a mapping unmap-all took"
    );
    assert_eq!(unmap_all(s).unwrap(), 0);
    assert_eq!(errno_of(unmap(s, spot.start(), 8 * PAGE)), Errno::ENOENT);
    assert_eq!(edu.dma_avail(), avail);
    drop(buf);
    let stats = s.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (0, 0));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn unmap_all_runs_and_vaddr_update() {
    const TEST: &str = "unmap_all_runs_and_vaddr_update";
    if !common::runs_in_mode(
        TEST,
        |m| m.iommu_type().is_some(),
        "map_dma_runs and VFIO_UPDATE_VADDR are container calls (the IOAS's unmap-all is \
         unmap_all_takes_every_mapping)",
    ) {
        return;
    }
    let edu = open_edu();
    let c = edu.space.container().unwrap();
    let avail = edu.dma_avail();
    let exts = c.extensions().unwrap();
    println!("extensions: {:?}", exts.iter().collect::<Vec<_>>());
    let pages = TestPages::new(8 * PAGE as usize);
    let spot = c
        .allocate_iova(8 * PAGE, AddressLimit::bits(EDU_BITS))
        .unwrap();
    // Four contiguous pages and one apart: two mappings, not five.
    let runs: Vec<DmaRun> = (0..4)
        .map(|i| DmaRun {
            vaddr: pages.ptr as usize + i * PAGE as usize,
            iova: spot.start() + i as u64 * PAGE,
            size: PAGE,
        })
        .chain([DmaRun {
            vaddr: pages.ptr as usize + 6 * PAGE as usize,
            iova: spot.start() + 5 * PAGE,
            size: PAGE,
        }])
        .collect();
    // SAFETY: `pages` outlives the mappings: unmap_all_dma removes them below.
    let n = unsafe { c.map_dma_runs(&runs, DmaAccess::ReadWrite) }.unwrap();
    assert_eq!(n, 2);
    if let (Some(a), Some(now)) = (avail, edu.dma_avail()) {
        assert_eq!(a - now, 2);
    }
    // A DmaBuffer's mapping goes too; its own unmap later finds nothing.
    let buf = DmaBuffer::with_options(c, 4096, edu_options()).unwrap();
    assert_eq!(c.unmap_all_dma().unwrap(), 5 * PAGE + 4096);
    assert_eq!(c.unmap_all_dma().unwrap(), 0);
    drop(buf);

    // A run that fails rolls back the ones before it.
    let bad = [
        runs[0],
        DmaRun {
            vaddr: pages.ptr as usize + 5 * PAGE as usize,
            iova: 0xfee0_0000,
            size: PAGE,
        },
    ];
    // SAFETY: as above; the failed call leaves nothing mapped (asserted).
    assert_eq!(
        errno_of(unsafe { c.map_dma_runs(&bad, DmaAccess::ReadWrite) }),
        Errno::EINVAL
    );
    assert_eq!(edu.dma_avail(), avail);
    assert_eq!(
        c.unmap_all_dma().unwrap(),
        0,
        "the failed runs left a mapping"
    );

    if exts.contains(uvfio::Extension::UpdateVaddr) {
        // SAFETY: as above; unmapped below.
        unsafe { c.map_dma_raw(pages.ptr, spot.start(), PAGE, DmaAccess::ReadWrite) }.unwrap();
        // SAFETY: nothing maps, pins or joins the container before the update just below.
        let invalidated = unsafe { c.invalidate_dma_vaddr(spot.start(), PAGE) };
        assert_eq!(invalidated.unwrap(), PAGE);
        // SAFETY: the new address is another page of `pages`, which outlives the mapping.
        unsafe { c.update_dma_vaddr(pages.ptr.wrapping_add(PAGE as usize), spot.start(), PAGE) }
            .unwrap();
        assert_eq!(c.unmap_dma(spot.start(), PAGE).unwrap(), PAGE);
    } else {
        // iommufd's compat container does not offer it ("hard to see how this could be
        // implemented safely", drivers/iommu/iommufd/vfio_compat.c).
        assert!(
            c.is_iommufd_compat(),
            "a legacy container without UPDATE_VADDR"
        );
        common::say(&format!(
            "SKIPPED {TEST}, its VFIO_UPDATE_VADDR part, in mode {}: iommufd's compat \
             container has no VFIO_UPDATE_VADDR",
            edu.mode()
        ));
    }
    assert_eq!(edu.dma_avail(), avail);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_mapping_budget_runs_out_with_a_typed_error_and_a_rollback() {
    if !common::needs_iommu(
        "the_mapping_budget_runs_out_with_a_typed_error_and_a_rollback",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    const TEST: &str = "the_mapping_budget_runs_out_with_a_typed_error_and_a_rollback";
    if !common::runs_in_mode(
        TEST,
        |m| !m.needs_iommufd(),
        "type1's dma_entry_limit budget is a legacy container's: iommufd's compat container \
         reports DMA_AVAIL as a constant U32_MAX (checked) and an IOAS has no such budget \
         (its limit is RLIMIT_MEMLOCK)",
    ) {
        let mode = common::mode();
        if mode.needs_iommufd() && mode.uses_groups() {
            let edu = open_edu();
            let info = edu.space.container().unwrap().iommu_info().unwrap();
            assert_eq!(info.dma_avail(), Some(u32::MAX));
        }
        return;
    }
    let edu = open_edu();
    let c = edu.space.container().unwrap();
    let avail = u64::from(edu.dma_avail().expect("DMA_AVAIL is reported"));
    // Use up the budget: one page mapped at `avail` IOVAs (type1 allows a page at many IOVAs).
    let page = TestPages::new(PAGE as usize);
    let area = c.allocate_iova(avail * PAGE, AddressLimit::NONE).unwrap();
    let start = Instant::now();
    for i in 0..avail {
        // SAFETY: `page` outlives the mappings: they are all unmapped below.
        unsafe {
            c.map_dma_raw(
                page.ptr,
                area.start() + i * PAGE,
                PAGE,
                DmaAccess::ReadWrite,
            )
        }
        .unwrap();
    }
    println!("{avail} mappings in {:?}", start.elapsed());
    assert_eq!(edu.dma_avail(), Some(0));
    let before = c.dma_stats();
    let e = DmaBuffer::with_options(c, 4096, edu_options()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Ioctl {
                ioctl: "VFIO_IOMMU_MAP_DMA",
                errno: Errno::ENOSPC,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("dma_entry_limit"), "{e}");
    // Rolled back: the IOVA went back to the allocator, no buffer exists.
    let after = c.dma_stats();
    assert_eq!(
        after.iova.unwrap().allocations,
        before.iova.unwrap().allocations
    );
    assert_eq!(
        (after.buffers, after.mapped_bytes),
        (before.buffers, before.mapped_bytes)
    );
    // One unmap covering them all gives the budget back.
    assert_eq!(
        c.unmap_dma(area.start(), avail * PAGE).unwrap(),
        avail * PAGE
    );
    assert_eq!(edu.dma_avail(), Some(avail as u32));
    drop(area);
    let ok = DmaBuffer::with_options(c, 4096, edu_options()).unwrap();
    drop(ok);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bad_parameters_are_refused_before_anything_is_taken() {
    if !common::needs_iommu(
        "bad_parameters_are_refused_before_anything_is_taken",
        "a test of the IOMMU's mapping calls; no-IOMMU mode has none (its container refuses VFIO_IOMMU_MAP_DMA and buffers sit at their physical addresses)",
    ) {
        return;
    }
    // No IOMMU type yet: buffers are refused without touching the kernel. An IOAS has no such
    // state: it maps as soon as it exists.
    if let Some(bare) = bare_container() {
        let e = DmaBuffer::new(&bare, 4096).unwrap_err();
        assert!(matches!(e, Error::NotSupported { .. }), "{e}");
        assert!(matches!(
            DmaPool::new(&bare, 2048, 8, DmaOptions::new()).unwrap_err(),
            Error::NotSupported { .. }
        ));
        assert_eq!(bare.dma_stats().map_ioctls, 0);
    } else {
        common::say(&format!(
            "SKIPPED bad_parameters_are_refused_before_anything_is_taken, its \
             container-without-a-model part, in mode {}: an IOAS maps as soon as it exists",
            common::mode()
        ));
    }
    let edu = open_edu();
    let c = &edu.space;
    assert_eq!(errno_of(DmaBuffer::new(c, 0)), Errno::EINVAL);
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            DmaOptions::new().align(3 << 12)
        )),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 0, 8, DmaOptions::new())),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 2048, 0, DmaOptions::new())),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 2048, 8, DmaOptions::new().align(100))),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, usize::MAX / 2, 8, DmaOptions::new())),
        Errno::EINVAL
    );
    // An explicit alignment is honoured by the buffer and the pool's chunks.
    let aligned = DmaBuffer::with_options(c, 4096, DmaOptions::new().align(1 << 20)).unwrap();
    assert_eq!(aligned.iova() % (1 << 20), 0);
    let pool = DmaPool::new(c, 100, 8, DmaOptions::new().align(256)).unwrap();
    assert_eq!((pool.stride(), pool.chunk_size()), (256, 100));
    let chunk = pool.alloc_zeroed().unwrap();
    assert_eq!(chunk.len(), 100);
    assert_eq!(chunk.iova() % 256, 0);
    assert_eq!(
        pool.index_of_iova(chunk.iova() + 100),
        None,
        "in the gap between chunks"
    );
    let stats = c.dma_stats();
    assert_eq!(stats.buffers, 2);
    drop((aligned, chunk, pool));
    assert_eq!(c.dma_stats().buffers, 0);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn spapr_calls_are_refused_on_a_type1_container() {
    if !common::runs_in_mode(
        "spapr_calls_are_refused_on_a_type1_container",
        |m| m.iommu_type().is_some(),
        "the sPAPR and EEH calls are container calls; an IOAS has none",
    ) {
        return;
    }
    let edu = open_edu();
    let c = edu.space.container().unwrap();
    let before = c.dma_stats();
    for e in [
        c.spapr_tce_info().map(drop).unwrap_err(),
        c.spapr_enable().unwrap_err(),
        c.spapr_remove_window(0).unwrap_err(),
        c.eeh_pe_state().map(drop).unwrap_err(),
        c.eeh_pe_op(uvfio::iommu::EehPeOp::Enable).unwrap_err(),
    ] {
        assert!(matches!(e, Error::NotSupported { .. }), "{e}");
    }
    assert_eq!(c.dma_stats(), before);
}
