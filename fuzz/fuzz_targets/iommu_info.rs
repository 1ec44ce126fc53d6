//! `IommuInfo::decode`: the answer of `VFIO_IOMMU_GET_INFO` (type1), any bytes; then an IOVA
//! allocator made from what it reports, as `DmaSpace` makes one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::dma::IovaAllocator;
use uvfio::iommu::{IommuInfo, IommuInfoFlags};
use uvfio::uapi::caps::{decode_chain, IommuCap};
use uvfio_fuzz::{ne_u32, ne_u64};

/// `struct vfio_iommu_type1_info`: argsz, flags (u32), iova_pgsizes (u64), cap_offset, pad.
const FIXED: usize = 24;

fuzz_target!(|bytes: &[u8]| {
    let Ok(info) = IommuInfo::decode(bytes) else {
        return;
    };
    assert!(bytes.len() >= FIXED);
    assert_eq!(Some(info.flags.bits()), ne_u32(bytes, 4));
    if info.flags.contains(IommuInfoFlags::PGSIZES) {
        assert_eq!(info.iova_pgsizes, ne_u64(bytes, 8));
    } else {
        assert_eq!(info.iova_pgsizes, None);
    }
    if info.flags.contains(IommuInfoFlags::CAPS) {
        let first = ne_u32(bytes, 16).unwrap();
        assert_eq!(
            decode_chain(bytes, first, FIXED, IommuCap::decode).as_ref(),
            Ok(&info.caps)
        );
    } else {
        assert!(info.caps.is_empty());
    }
    // The smallest page size is a power of two, the lowest bit of the bitmap.
    if let Some(page) = info.min_page_size() {
        assert!(page.is_power_of_two());
        assert_eq!(info.iova_pgsizes.map(|p| p & p.wrapping_neg()), Some(page));
    }
    let ranges = info.iova_ranges();
    assert!(ranges.unwrap_or(&[]).iter().all(|r| r.start <= r.end));
    let _ = (info.dirty_tracking(), info.dma_avail());

    // The allocator over what the kernel reported: only inside the reported ranges.
    if let Ok(alloc) = IovaAllocator::from_iommu_info(&info) {
        let page = alloc.page_size();
        for r in alloc.ranges() {
            assert!(r.start >= page && r.start % page == 0 && r.end.wrapping_add(1) % page == 0);
            // Merged ranges are unions of reported ones: both ends lie in a reported range.
            if let Some(reported) = ranges {
                assert!(reported.iter().any(|x| x.contains(r.start)));
                assert!(reported.iter().any(|x| x.contains(r.end)));
            }
        }
    }
});
