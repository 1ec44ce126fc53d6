//! VFIO capability chains and the three info structs that carry them.

use proptest::prelude::*;
use uvfio::device::{
    DeviceCap, DeviceFlags, DeviceInfo, RegionCap, RegionFlags, RegionIndex, RegionInfo,
};
use uvfio::iommu::{IommuCap, IommuInfo, IommuInfoFlags, IovaRange};
use uvfio::uapi::caps::{parse_chain, CapChain, SparseArea};

/// The reference walk, straight from the rules in `uvfio::uapi::caps`: the capabilities it
/// reaches as `(offset, id, version, end)` and whether it ended on an error.
fn model_walk(buf: &[u8], first: u32, fixed: usize) -> (Vec<(usize, u16, u16, usize)>, bool) {
    let mut caps = Vec::new();
    if first == 0 {
        return (caps, false);
    }
    let header_ok = |at: usize| at % 4 == 0 && at < buf.len() && buf.len() - at >= 8;
    let mut at = first as usize;
    if at < fixed || !header_ok(at) {
        return (caps, true);
    }
    loop {
        let id = u16::from_ne_bytes([buf[at], buf[at + 1]]);
        let version = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]);
        let next = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap()) as usize;
        if next == 0 {
            caps.push((at, id, version, buf.len()));
            return (caps, false);
        }
        if next < at + 8 || !header_ok(next) {
            return (caps, true);
        }
        caps.push((at, id, version, next));
        at = next;
    }
}

/// A chain after a fixed part: `(fixed_len, first, bytes)`, each capability's payload of
/// `4 * n` bytes, then up to three bytes overwritten anywhere.
fn chains() -> impl Strategy<Value = (usize, u32, Vec<u8>)> {
    (
        prop::sample::select(vec![20usize, 24, 32]),
        prop::collection::vec(
            (0u16..6, 0u16..3, prop::collection::vec(any::<u8>(), 0..10)),
            0..6,
        ),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        0u32..3,
    )
        .prop_map(|(fixed, caps, corruption, first_kind)| {
            let mut buf = vec![0u8; fixed];
            let mut offsets = Vec::new();
            for (id, version, payload) in &caps {
                offsets.push(buf.len());
                buf.extend_from_slice(&id.to_ne_bytes());
                buf.extend_from_slice(&version.to_ne_bytes());
                buf.extend_from_slice(&0u32.to_ne_bytes());
                buf.extend(payload.iter().copied().cycle().take(4 * payload.len()));
            }
            for pair in offsets.windows(2) {
                buf[pair[0] + 4..pair[0] + 8].copy_from_slice(&(pair[1] as u32).to_ne_bytes());
            }
            let len = buf.len();
            for (at, byte) in corruption {
                buf[at.index(len)] = byte;
            }
            let first = match (first_kind, offsets.first()) {
                (0, Some(&o)) => o as u32,
                (1, _) => 0,
                _ => (fixed as u32).wrapping_sub(4),
            };
            (fixed, first, buf)
        })
}

proptest! {
    #[test]
    fn the_chain_walk_matches_the_model((fixed, first, buf) in chains()) {
        let (expect, expect_err) = model_walk(&buf, first, fixed);
        let mut got = Vec::new();
        let mut got_err = false;
        for item in CapChain::new(&buf, first, fixed) {
            match item {
                Ok(c) => got.push((c.offset, c.id, c.version, c.offset + c.data.len())),
                Err(_) => got_err = true,
            }
        }
        prop_assert_eq!(&got, &expect);
        prop_assert_eq!(got_err, expect_err);
        prop_assert_eq!(parse_chain(&buf, first, fixed).is_ok(), !expect_err);
    }
}

/// Appends the capabilities `(id, version, payload)` to `fixed`, links them, and returns the
/// bytes with the first offset (0 for none).
fn encode(mut buf: Vec<u8>, caps: &[(u16, u16, Vec<u8>)]) -> (Vec<u8>, u32) {
    let first = if caps.is_empty() { 0 } else { buf.len() as u32 };
    let mut previous: Option<usize> = None;
    for (id, version, payload) in caps {
        let at = buf.len();
        if let Some(p) = previous {
            buf[p + 4..p + 8].copy_from_slice(&(at as u32).to_ne_bytes());
        }
        buf.extend_from_slice(&id.to_ne_bytes());
        buf.extend_from_slice(&version.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(payload);
        while buf.len() % 8 != 0 {
            buf.push(0);
        }
        previous = Some(at);
    }
    (buf, first)
}

fn words(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

fn sparse_payload(areas: &[SparseArea]) -> Vec<u8> {
    let mut p = (areas.len() as u32).to_ne_bytes().to_vec();
    p.extend_from_slice(&0u32.to_ne_bytes());
    p.extend(words(
        &areas
            .iter()
            .flat_map(|a| [a.offset, a.size])
            .collect::<Vec<_>>(),
    ));
    p
}

proptest! {
    #[test]
    fn region_info_decodes_what_the_kernel_encodes(
        index in 0u32..16,
        flags in 0u32..8,
        size in any::<u64>(),
        offset in any::<u64>(),
        areas in prop::option::of(prop::collection::vec((any::<u64>(), any::<u64>()), 0..5)),
        ty in prop::option::of((any::<u32>(), any::<u32>())),
        msix in any::<bool>(),
    ) {
        let areas: Option<Vec<SparseArea>> =
            areas.map(|a| a.into_iter().map(|(offset, size)| SparseArea { offset, size }).collect());
        let mut caps = Vec::new();
        let mut expect = Vec::new();
        if let Some(areas) = &areas {
            caps.push((1, 1, sparse_payload(areas)));
            expect.push(RegionCap::SparseMmap(areas.clone()));
        }
        if let Some((t, s)) = ty {
            caps.push((2, 1, words(&[u64::from(t) | u64::from(s) << 32])));
            expect.push(RegionCap::Type { ty: t, subtype: s });
        }
        if msix {
            caps.push((3, 1, Vec::new()));
            expect.push(RegionCap::MsixMappable);
        }
        let flags = if caps.is_empty() { flags } else { flags | RegionFlags::CAPS.bits() };
        let (mut buf, first) = encode(vec![0u8; 32], &caps);
        let argsz = buf.len() as u32;
        for (at, v) in [(0, argsz), (4, flags), (8, index), (12, first)] {
            buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        buf[16..24].copy_from_slice(&size.to_ne_bytes());
        buf[24..32].copy_from_slice(&offset.to_ne_bytes());
        let info = RegionInfo::decode(index, &buf).unwrap();
        prop_assert_eq!(info, RegionInfo {
            index: RegionIndex(index),
            flags: RegionFlags::from_bits_retain(flags),
            size,
            offset,
            caps: expect,
        });
        prop_assert!(RegionInfo::decode(index + 1, &buf).is_err());
        prop_assert!(RegionInfo::decode(index, &buf[..31]).is_err());
    }

    #[test]
    fn iommu_info_decodes_what_the_kernel_encodes(
        pgsizes in prop::option::of(any::<u64>()),
        ranges in prop::option::of(prop::collection::vec((any::<u64>(), any::<u64>()), 0..5)),
        migration in prop::option::of((any::<u64>(), any::<u64>())),
        avail in prop::option::of(any::<u32>()),
    ) {
        let ranges: Option<Vec<IovaRange>> = ranges.map(|r| {
            r.into_iter().map(|(a, b)| IovaRange { start: a.min(b), end: a.max(b) }).collect()
        });
        let mut caps = Vec::new();
        let mut expect = Vec::new();
        if let Some(r) = &ranges {
            let mut p = (r.len() as u32).to_ne_bytes().to_vec();
            p.extend_from_slice(&0u32.to_ne_bytes());
            p.extend(words(&r.iter().flat_map(|r| [r.start, r.end]).collect::<Vec<_>>()));
            caps.push((1, 1, p));
            expect.push(IommuCap::IovaRanges(r.clone()));
        }
        if let Some((pgsize_bitmap, max)) = migration {
            caps.push((2, 1, words(&[0, pgsize_bitmap, max])));
            expect.push(IommuCap::Migration { flags: 0, pgsize_bitmap, max_dirty_bitmap_size: max });
        }
        if let Some(n) = avail {
            caps.push((3, 1, n.to_ne_bytes().to_vec()));
            expect.push(IommuCap::DmaAvail(n));
        }
        let mut flags = IommuInfoFlags::empty();
        if pgsizes.is_some() {
            flags |= IommuInfoFlags::PGSIZES;
        }
        if !caps.is_empty() {
            flags |= IommuInfoFlags::CAPS;
        }
        let (mut buf, first) = encode(vec![0u8; 24], &caps);
        let argsz = buf.len() as u32;
        buf[0..4].copy_from_slice(&argsz.to_ne_bytes());
        buf[4..8].copy_from_slice(&flags.bits().to_ne_bytes());
        buf[8..16].copy_from_slice(&pgsizes.unwrap_or(0).to_ne_bytes());
        buf[16..20].copy_from_slice(&first.to_ne_bytes());
        let info = IommuInfo::decode(&buf).unwrap();
        prop_assert_eq!(info.iova_ranges(), ranges.as_deref());
        prop_assert_eq!(info, IommuInfo { flags, iova_pgsizes: pgsizes, caps: expect });
    }

    #[test]
    fn device_info_decodes_what_the_kernel_encodes(
        regions in any::<u32>(),
        irqs in any::<u32>(),
        unknown in prop::collection::vec((5u16..100, any::<u16>(), prop::collection::vec(any::<u8>(), 0..12)), 0..4),
        old_layout in any::<bool>(),
    ) {
        // Before Linux 6.4 the struct is 20 bytes and the chain starts right after it.
        let fixed = if old_layout { 20 } else { 24 };
        let (mut buf, first) = encode(vec![0u8; fixed], &unknown);
        let flags = if unknown.is_empty() { 2 } else { 2 | DeviceFlags::CAPS.bits() };
        for (at, v) in [(0, buf.len() as u32), (4, flags), (8, regions), (12, irqs), (16, first)] {
            buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let info = DeviceInfo::decode(&buf).unwrap();
        let expect: Vec<DeviceCap> = unknown
            .iter()
            .map(|&(id, version, _)| DeviceCap::Unknown { id, version })
            .collect();
        prop_assert_eq!(info, DeviceInfo {
            flags: DeviceFlags::from_bits_retain(flags),
            num_regions: regions,
            num_irqs: irqs,
            caps: expect,
        });
    }
}
