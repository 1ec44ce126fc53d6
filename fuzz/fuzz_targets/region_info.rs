//! `RegionInfo::decode`: the answer of `VFIO_DEVICE_GET_REGION_INFO`, any bytes.
//!
//! Input: one byte that picks the region index asked for (even: the index the bytes carry, so
//! the decode gets past the index check; odd: that byte / 2), then the answer's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::device::{RegionFlags, RegionInfo};
use uvfio::uapi::caps::{decode_chain, RegionCap};
use uvfio_fuzz::{ne_u32, ne_u64, Input};

/// `struct vfio_region_info`: argsz, flags, index, cap_offset (u32), size, offset (u64).
const FIXED: usize = 32;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let pick = input.u8();
    let bytes = input.rest();
    let index = if pick % 2 == 0 {
        ne_u32(bytes, 8).unwrap_or(0)
    } else {
        u32::from(pick / 2)
    };

    let Ok(info) = RegionInfo::decode(index, bytes) else {
        return;
    };
    // What was decoded is what the bytes say.
    assert!(bytes.len() >= FIXED);
    assert_eq!(info.index.0, index);
    assert_eq!(Some(info.index.0), ne_u32(bytes, 8));
    assert_eq!(Some(info.flags.bits()), ne_u32(bytes, 4));
    assert_eq!(Some(info.size), ne_u64(bytes, 16));
    assert_eq!(Some(info.offset), ne_u64(bytes, 24));
    // The chain is read only when the flags say there is one, and then exactly as the generic
    // walker and decoder read it.
    if info.flags.contains(RegionFlags::CAPS) {
        let first = ne_u32(bytes, 12).unwrap();
        assert_eq!(
            decode_chain(bytes, first, FIXED, RegionCap::decode).as_ref(),
            Ok(&info.caps)
        );
    } else {
        assert!(info.caps.is_empty());
    }
    // The mappable parts: none without MMAP, never an empty one, the sparse areas when there
    // are some, else the whole region.
    let areas = info.mmap_areas();
    if !info.flags.contains(RegionFlags::MMAP) || info.size == 0 {
        assert!(areas.is_empty());
    }
    assert!(areas.iter().all(|&(_, size)| size > 0));
    match info.sparse_areas() {
        Some(sparse) if !areas.is_empty() => {
            assert!(areas.len() <= sparse.len());
        }
        None if !areas.is_empty() => assert_eq!(areas, [(0, info.size)]),
        _ => {}
    }
    let _ = (info.msix_mappable(), info.region_type());
});
