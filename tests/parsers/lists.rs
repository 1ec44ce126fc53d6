//! PCI capability lists in config space, and IOVA range lists.

use std::collections::BTreeSet;

use proptest::prelude::*;
use uvfio::dma::{AddressLimit, IovaAllocator};
use uvfio::iommu::IovaRange;
use uvfio::pci::config::ConfigSpace;

/// The reference walk of the standard list: `(offset, id)` of each entry and whether it ended
/// on an error (a pointer into the header or past the snapshot, a cycle, more than 48
/// entries, an entry of all ones).
fn model_std(cfg: &[u8]) -> (Vec<(u8, u8)>, bool) {
    let mut out = Vec::new();
    let status = cfg.get(6..8).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let Some(header_type) = cfg.get(0x0e) else {
        return (out, false);
    };
    if status.is_none_or(|s| s & 0x10 == 0) {
        return (out, false);
    }
    let mut from = if header_type & 0x7f == 2 { 0x14 } else { 0x34 };
    let mut seen = BTreeSet::new();
    loop {
        let Some(&pointer) = cfg.get(from) else {
            return (out, true);
        };
        let to = usize::from(pointer & 0xfc);
        if to == 0 {
            return (out, false);
        }
        if to < 0x40 || out.len() >= 48 || !seen.insert(to) || to + 2 > cfg.len() {
            return (out, true);
        }
        if cfg[to] == 0xff && cfg[to + 1] == 0xff {
            return (out, true);
        }
        out.push((to as u8, cfg[to]));
        from = to + 1;
    }
}

/// The reference walk of the extended list: `(offset, id, version)` of each entry.
fn model_ext(cfg: &[u8]) -> (Vec<(u16, u16, u8)>, bool) {
    let mut out = Vec::new();
    let header = |at: usize| {
        cfg.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    if header(0x100).is_none_or(|h| h == 0) {
        return (out, false);
    }
    let mut at = 0x100;
    let mut seen = BTreeSet::new();
    loop {
        if out.len() >= 960 || !seen.insert(at) {
            return (out, true);
        }
        let Some(h) = header(at).filter(|&h| h != u32::MAX) else {
            return (out, true);
        };
        let next = ((h >> 20) & 0xffc) as usize;
        if next != 0 && next < 0x100 {
            return (out, true);
        }
        out.push((at as u16, (h & 0xffff) as u16, ((h >> 16) & 0xf) as u8));
        if next == 0 {
            return (out, false);
        }
        at = next;
    }
}

/// Config space with a linked standard list (and, when 4 KiB, an extended one) at random
/// places, then up to four bytes overwritten anywhere.
fn configs() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![64usize, 256, 4096]),
        any::<bool>(),
        prop::collection::btree_set(0x10usize..0x40, 0..8),
        prop::collection::btree_set(0x40usize..0x400, 0..8),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..5),
        any::<u64>(),
    )
        .prop_map(|(len, cardbus, std, ext, corruption, seed)| {
            let mut cfg = vec![0u8; len];
            cfg[6] = 0x10;
            cfg[0x0e] = if cardbus { 2 } else { 0 };
            let head = if cardbus { 0x14 } else { 0x34 };
            // Shuffle the order the offsets are linked in with the seed.
            let mut std: Vec<usize> = std.into_iter().map(|d| d * 4).collect();
            std.sort_by_key(|&o| (o as u64).wrapping_mul(seed | 1).rotate_left(17));
            let mut from = head;
            for (i, &o) in std.iter().enumerate() {
                if o + 2 <= len && from < len {
                    cfg[from] = o as u8;
                    cfg[o] = (seed >> (i % 8 * 8)) as u8 | 1;
                    from = o + 1;
                }
            }
            if len == 4096 {
                let ext: Vec<usize> = ext.into_iter().map(|d| d * 4).collect();
                let mut at = 0x100;
                cfg[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
                for &o in &ext {
                    let h = u32::from_le_bytes(cfg[at..at + 4].try_into().unwrap());
                    cfg[at..at + 4].copy_from_slice(&(h | (o as u32) << 20).to_le_bytes());
                    cfg[o..o + 4].copy_from_slice(&(0x1_0000 | (o as u32 & 0xffff)).to_le_bytes());
                    at = o;
                }
            }
            for (at, byte) in corruption {
                cfg[at.index(len)] = byte;
            }
            cfg
        })
}

proptest! {
    #[test]
    fn pci_capability_lists_match_the_model(cfg in configs()) {
        let space = ConfigSpace::from_bytes(cfg.clone());
        let (expect, expect_err) = model_std(&cfg);
        let mut got = Vec::new();
        let mut got_err = false;
        for item in space.capabilities() {
            match item {
                Ok(c) => got.push((c.offset, c.id.0)),
                Err(_) => got_err = true,
            }
        }
        prop_assert_eq!((got, got_err), (expect, expect_err));

        let (expect, expect_err) = model_ext(&cfg);
        let mut got = Vec::new();
        let mut got_err = false;
        for item in space.ext_capabilities() {
            match item {
                Ok(c) => got.push((c.offset, c.id.0, c.version)),
                Err(_) => got_err = true,
            }
        }
        prop_assert_eq!((got, got_err), (expect, expect_err));
    }
}

/// The reference for the allocator's ranges, on a small space of 4 KiB pages: the set of
/// whole pages, page 0 excluded, that some input range covers.
fn model_pages(ranges: &[IovaRange]) -> BTreeSet<u64> {
    let mut pages = BTreeSet::new();
    for page in 1..64u64 {
        let (first, last) = (page * 4096, page * 4096 + 4095);
        if ranges.iter().any(|r| r.start <= first && last <= r.end) {
            pages.insert(page);
        }
    }
    pages
}

fn small_ranges() -> impl Strategy<Value = Vec<IovaRange>> {
    prop::collection::vec((0u64..64 * 4096 + 10, 0u64..64 * 4096 + 10), 0..6).prop_map(|r| {
        r.into_iter()
            .map(|(start, end)| IovaRange { start, end })
            .collect()
    })
}

proptest! {
    #[test]
    fn iova_ranges_are_the_covered_pages(
        first in small_ranges(),
        second in small_ranges(),
        sizes in prop::collection::vec(1u64..5 * 4096, 0..12),
    ) {
        let mut alloc = IovaAllocator::new(&first, 4096).unwrap();
        for input in [&first, &second] {
            alloc.set_ranges(input);
            let expect = model_pages(input);
            let ranges: Vec<IovaRange> = alloc.ranges().collect();
            let got: BTreeSet<u64> = ranges
                .iter()
                .flat_map(|r| r.start / 4096..=r.end / 4096)
                .collect();
            prop_assert_eq!(&got, &expect);
            // Merged: no two ranges touch.
            prop_assert!(ranges.windows(2).all(|w| w[0].end + 1 < w[1].start));
            prop_assert_eq!(alloc.stats().free_bytes, expect.len() as u128 * 4096);
        }
        // Allocations take free pages of the ranges, naturally aligned, never twice.
        let expect = model_pages(&second);
        let mut taken = BTreeSet::new();
        let mut blocks = Vec::new();
        for size in sizes {
            if let Ok(b) = alloc.allocate(size, AddressLimit::NONE) {
                prop_assert_eq!(b.start() % b.size().next_power_of_two(), 0);
                for page in b.start() / 4096..=b.last() / 4096 {
                    prop_assert!(expect.contains(&page) && taken.insert(page));
                }
                blocks.push(b);
            }
        }
        for b in blocks {
            alloc.free(b).unwrap();
        }
        prop_assert_eq!(alloc.stats().free_bytes, expect.len() as u128 * 4096);
    }
}
