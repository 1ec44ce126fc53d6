//! Tests of the IOVA allocator: examples, edge cases, and a model check against a brute-force
//! model (random operation sequences, fixed seeds, plus proptest).

use super::*;
use proptest::prelude::*;

const PAGE: u64 = 4096;

fn r(start: u64, end: u64) -> IovaRange {
    IovaRange { start, end }
}

fn errno(e: Error) -> Errno {
    e.errno()
}

#[test]
fn never_hands_out_the_first_page_and_aligns_naturally() {
    let mut a = IovaAllocator::new(&[r(0, u64::MAX)], PAGE).unwrap();
    let first = a.allocate(1, AddressLimit::NONE).unwrap();
    assert_eq!((first.start(), first.size()), (0x1000, 0x1000));
    let two = a.allocate(0x2000, AddressLimit::NONE).unwrap();
    assert_eq!(two.start(), 0x2000);
    let three = a.allocate(0x3000, AddressLimit::NONE).unwrap();
    assert_eq!((three.start(), three.size()), (0x4000, 0x3000));
    let huge = a.allocate(2 << 20, AddressLimit::NONE).unwrap();
    assert_eq!(huge.start(), 2 << 20);
    let gig = a.allocate(1 << 30, AddressLimit::NONE).unwrap();
    assert_eq!(gig.start(), 1 << 30);
    // The 4 KiB hole left at 0x7000 by the three-page block is used next.
    let small = a.allocate(100, AddressLimit::NONE).unwrap();
    assert_eq!(small.start(), 0x7000);
    let aligned = a
        .allocate_aligned(PAGE, 1 << 16, AddressLimit::NONE)
        .unwrap();
    assert_eq!(aligned.start() % (1 << 16), 0);
    for b in [first, two, three, huge, gig, small, aligned] {
        a.free(b).unwrap();
    }
    let s = a.stats();
    assert_eq!((s.allocations, s.allocated_bytes), (0, 0));
    assert_eq!(s.free_bytes, (1u128 << 64) - u128::from(PAGE));
    // Fully merged again: one block per order from the first page up.
    assert_eq!(s.free_blocks, 64 - 12);
}

#[test]
fn honours_holes_in_the_ranges() {
    // x86 with the MSI window removed, and a 39-bit aperture.
    let ranges = [r(0, 0xfedf_ffff), r(0xfef0_0000, (1 << 39) - 1)];
    let mut a = IovaAllocator::new(&ranges, PAGE).unwrap();
    let mut blocks = Vec::new();
    // 4 GiB in 1 GiB blocks: the fourth cannot straddle the MSI window, so it goes above 4 GiB.
    for _ in 0..4 {
        blocks.push(a.allocate(1 << 30, AddressLimit::NONE).unwrap());
    }
    let starts: Vec<u64> = blocks.iter().map(IovaBlock::start).collect();
    assert_eq!(starts, vec![1 << 30, 2 << 30, 4 << 30, 5 << 30]);
    for b in &blocks {
        assert!(b.last() < 0xfee0_0000 || b.start() > 0xfeef_ffff);
    }
    // The reserved window itself cannot be taken.
    assert_eq!(
        errno(a.reserve(0xfee0_0000, PAGE).unwrap_err()),
        Errno::ERANGE
    );
    // Nor anything past the aperture.
    assert_eq!(errno(a.reserve(1 << 39, PAGE).unwrap_err()), Errno::ERANGE);
    let top = a.reserve((1 << 39) - PAGE, PAGE).unwrap();
    assert_eq!(top.last(), (1 << 39) - 1);
    blocks.push(top);
    for b in blocks {
        a.free(b).unwrap();
    }
}

#[test]
fn device_limits_are_honoured() {
    let mut a = IovaAllocator::new(&[r(0, (1 << 39) - 1)], PAGE).unwrap();
    let edu = AddressLimit::bits(28);
    let big = a.allocate(1 << 27, edu).unwrap();
    assert_eq!(big.start(), 1 << 27);
    // [4K, 128M) is still free, but a 128 MiB aligned block no longer fits below 256 MiB.
    let err = a.allocate(1 << 27, edu).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOSPC);
    assert!(err.to_string().contains("address limit 0xfffffff"), "{err}");
    // Without the limit it goes higher.
    let free = a.allocate(1 << 27, AddressLimit::NONE).unwrap();
    assert_eq!(free.start(), 1 << 28);
    // A tiny device: only [4K, 8K) is reachable.
    let tiny = AddressLimit::bits(13);
    let one = a.allocate(PAGE, tiny).unwrap();
    assert_eq!(one.start(), 0x1000);
    assert_eq!(a.allocate(PAGE, tiny).unwrap_err().errno(), Errno::ENOSPC);
    assert!(AddressLimit::from_mask(0xffff_ffff).allows(0, 1 << 32));
    assert!(!AddressLimit::from_mask(0xffff_ffff).allows(1, 1 << 32));
    assert!(!AddressLimit::NONE.allows(u64::MAX, 2));
    assert!(!AddressLimit::NONE.allows(0, 0));
    assert_eq!(AddressLimit::bits(64), AddressLimit::NONE);
    assert_eq!(
        AddressLimit::bits(32).min(AddressLimit::bits(28)),
        AddressLimit::bits(28)
    );
    for b in [big, free, one] {
        a.free(b).unwrap();
    }
}

#[test]
fn reserve_reports_each_problem() {
    let mut a = IovaAllocator::new(&[r(0, 0xffff_ffff)], PAGE).unwrap();
    let b = a.reserve(0x10_0000, 0x4000).unwrap();
    assert_eq!(
        errno(a.reserve(0x10_2000, 0x4000).unwrap_err()),
        Errno::EEXIST
    );
    assert_eq!(
        errno(a.reserve(0xf_f000, 0x2000).unwrap_err()),
        Errno::EEXIST
    );
    assert_eq!(
        errno(a.reserve(0x10_0800, 0x1000).unwrap_err()),
        Errno::EINVAL
    );
    assert_eq!(
        errno(a.reserve(0x20_0000, 0x800).unwrap_err()),
        Errno::EINVAL
    );
    assert_eq!(errno(a.reserve(0x20_0000, 0).unwrap_err()), Errno::EINVAL);
    assert_eq!(errno(a.reserve(0, 0x1000).unwrap_err()), Errno::ERANGE);
    assert_eq!(
        errno(a.reserve(0xffff_f000, 0x2000).unwrap_err()),
        Errno::ERANGE
    );
    assert_eq!(
        errno(a.reserve(u64::MAX - 0xfff, 0x2000).unwrap_err()),
        Errno::EOVERFLOW
    );
    // Nothing changed by the failures.
    assert_eq!(a.stats().allocations, 1);
    assert_eq!(a.lookup(0x10_3fff), Some((0x10_0000, 0x4000)));
    assert_eq!(a.lookup(0x10_4000), None);
    assert!(!a.is_free(0x10_0000, 1));
    assert!(a.is_free(0x10_4000, 0x1000));
    // The next allocation avoids the reserved block.
    let c = a.allocate(1 << 20, AddressLimit::NONE).unwrap();
    assert_eq!(c.start(), 0x20_0000);
    a.free(b).unwrap();
    a.free(c).unwrap();
    assert_eq!(a.stats().free_bytes, (1u128 << 32) - u128::from(PAGE));
}

#[test]
fn foreign_and_bad_arguments_are_refused() {
    let mut a = IovaAllocator::new(&[r(0, 0xffff_ffff)], PAGE).unwrap();
    let mut b = IovaAllocator::new(&[r(0, 0xffff_ffff)], PAGE).unwrap();
    let x = a.allocate(PAGE, AddressLimit::NONE).unwrap();
    let err = b.free(x).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(a.stats().allocations, 1);
    assert_eq!(
        errno(a.allocate(0, AddressLimit::NONE).unwrap_err()),
        Errno::EINVAL
    );
    assert_eq!(
        errno(a.allocate_aligned(PAGE, 3, AddressLimit::NONE).unwrap_err()),
        Errno::EINVAL
    );
    assert_eq!(
        errno(a.allocate(u64::MAX, AddressLimit::NONE).unwrap_err()),
        Errno::ENOSPC
    );
    assert_eq!(
        errno(a.allocate(1 << 33, AddressLimit::NONE).unwrap_err()),
        Errno::ENOSPC
    );
    assert!(IovaAllocator::new(&[], 3000).is_err());
    let empty = IovaAllocator::new(&[r(0, 0xfff)], PAGE).unwrap();
    assert_eq!(empty.stats().free_bytes, 0);
    assert_eq!(empty.ranges().count(), 0);
}

#[test]
fn the_whole_space_and_its_top_edge() {
    let mut a = IovaAllocator::new(&[r(0, u64::MAX)], PAGE).unwrap();
    let top = a.reserve(u64::MAX - 0xfff, PAGE).unwrap();
    assert_eq!(top.last(), u64::MAX);
    let half = a.allocate(1 << 62, AddressLimit::NONE).unwrap();
    assert_eq!(half.start(), 1 << 62);
    let upper = a.allocate(1 << 62, AddressLimit::NONE).unwrap();
    assert_eq!(upper.start(), 2 << 62);
    assert!(upper.contains(2 << 62, 1 << 62));
    assert!(!upper.contains(2 << 62, (1 << 62) + 1));
    assert!(!upper.contains(3 << 62, 1));
    assert!(!top.contains(u64::MAX - 5, 10));
    assert!(top.contains(u64::MAX, 1));
    for b in [top, half, upper] {
        a.free(b).unwrap();
    }
    assert_eq!(a.stats().free_blocks, 64 - 12);
}

#[test]
fn ranges_can_shrink_under_live_blocks() {
    let mut a = IovaAllocator::new(&[r(0, 0xffff_ffff)], PAGE).unwrap();
    let low = a.allocate(0x10_0000, AddressLimit::NONE).unwrap();
    let high = a.reserve(0x8000_0000, 0x10_0000).unwrap();
    // A group with a reserved region at 2 GiB joined: the kernel now reports less.
    a.set_ranges(&[r(0, 0x7fff_ffff)]);
    assert_eq!(a.stats().allocations, 2);
    assert!(!a.is_free(0x8000_0000, PAGE));
    assert_eq!(
        a.stats().free_bytes,
        0x8000_0000u128 - u128::from(PAGE) - 0x10_0000
    );
    a.free(high).unwrap();
    // Its space is outside the ranges now, so it does not come back.
    assert!(!a.is_free(0x8000_0000, PAGE));
    a.free(low).unwrap();
    assert_eq!(a.stats().free_bytes, 0x8000_0000u128 - u128::from(PAGE));
    // The ranges can also widen again, and overlapping input ranges are merged.
    a.set_ranges(&[r(0x1000, 0x7fff_ffff), r(0x4000_0000, 0xffff_ffff)]);
    assert_eq!(a.ranges().collect::<Vec<_>>(), vec![r(0x1000, 0xffff_ffff)]);
    assert!(a.is_free(0x8000_0000, PAGE));
}

#[test]
fn from_iommu_info_without_ranges_uses_the_whole_space() {
    let info = IommuInfo {
        flags: crate::iommu::IommuInfoFlags::PGSIZES,
        iova_pgsizes: Some(0x4020_1000),
        caps: vec![],
    };
    let a = IovaAllocator::from_iommu_info(&info).unwrap();
    assert_eq!(a.page_size(), 4096);
    assert_eq!(a.ranges().collect::<Vec<_>>(), vec![r(0x1000, u64::MAX)]);
}

// --- model check ------------------------------------------------------------------------------

/// A brute-force model: lists of ranges and live blocks, exhaustive slot search.
struct Model {
    page: u64,
    ranges: Vec<(u128, u128)>,
    live: Vec<(u64, u64)>,
}

impl Model {
    fn new(ranges: &[IovaRange], page: u64) -> Model {
        let mut m = Model {
            page,
            ranges: vec![],
            live: vec![],
        };
        m.set_ranges(ranges);
        m
    }

    fn set_ranges(&mut self, ranges: &[IovaRange]) {
        // Page-granular membership, computed the slow way.
        let page = u128::from(self.page);
        let mut pages: Vec<u128> = Vec::new();
        for r in ranges {
            let mut p = u128::from(r.start).div_ceil(page) * page;
            while p + page <= u128::from(r.end) + 1 {
                if p >= page {
                    pages.push(p);
                }
                p += page;
            }
        }
        pages.sort_unstable();
        pages.dedup();
        self.ranges.clear();
        for p in pages {
            match self.ranges.last_mut() {
                Some(last) if last.1 == p => last.1 = p + page,
                _ => self.ranges.push((p, p + page)),
            }
        }
    }

    fn valid(&self, s: u128, e: u128) -> bool {
        self.ranges.iter().any(|&(rs, re)| rs <= s && e <= re)
    }

    fn free(&self, s: u128, e: u128) -> bool {
        self.valid(s, e)
            && self.live.iter().all(|&(ls, ln)| {
                let (ls, le) = (u128::from(ls), u128::from(ls) + u128::from(ln));
                le <= s || e <= ls
            })
    }

    /// The lowest free slot of 2^order bytes, aligned to it.
    fn lowest_slot(&self, order: u32) -> Option<u64> {
        let step = 1u128 << order;
        for &(rs, re) in &self.ranges {
            let mut a = rs.div_ceil(step) * step;
            while a + step <= re {
                if self.free(a, a + step) {
                    return Some(a as u64);
                }
                a += step;
            }
        }
        None
    }

    fn free_bytes(&self) -> u128 {
        let total: u128 = self.ranges.iter().map(|&(s, e)| e - s).sum();
        let mut used = 0u128;
        for &(ls, ln) in &self.live {
            for &(rs, re) in &self.ranges {
                let s = u128::from(ls).max(rs);
                let e = (u128::from(ls) + u128::from(ln)).min(re);
                if s < e {
                    used += e - s;
                }
            }
        }
        total - used
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: u64,
        align_shift: u32,
        limit_bits: u32,
    },
    Reserve {
        page: u64,
        pages: u64,
    },
    Free {
        index: usize,
    },
    SetRanges {
        ranges: Vec<(u64, u64)>,
    },
}

/// Runs `ops` on the allocator and the model, checking every answer. The address space is
/// `[0, 2^22)` with 4 KiB pages, small enough for exhaustive search.
fn run(initial: &[(u64, u64)], ops: &[Op]) {
    let to_ranges = |v: &[(u64, u64)]| -> Vec<IovaRange> {
        v.iter()
            .map(|&(s, len)| r(s, s.saturating_add(len).saturating_sub(1).max(s)))
            .collect()
    };
    let ranges = to_ranges(initial);
    let mut a = IovaAllocator::new(&ranges, PAGE).unwrap();
    let mut m = Model::new(&ranges, PAGE);
    let mut blocks: Vec<IovaBlock> = Vec::new();
    for op in ops {
        match op {
            Op::Alloc {
                size,
                align_shift,
                limit_bits,
            } => {
                let align = if *align_shift == 0 {
                    0
                } else {
                    1u64 << align_shift
                };
                let limit = AddressLimit::bits(*limit_bits);
                let rounded = size.next_multiple_of(PAGE);
                let order = ceil_log2(rounded).max(12).max(align.trailing_zeros() % 64);
                let expect = m.lowest_slot(order).filter(|&s| limit.allows(s, rounded));
                match a.allocate_aligned(*size, align, limit) {
                    Ok(b) => {
                        assert_eq!(Some(b.start()), expect, "{op:?}");
                        assert_eq!(b.size(), rounded);
                        assert_ne!(b.start(), 0);
                        assert_eq!(b.start() % (1 << order), 0);
                        assert!(limit.allows(b.start(), b.size()));
                        m.live.push((b.start(), b.size()));
                        blocks.push(b);
                    }
                    Err(e) => {
                        assert_eq!(expect, None, "{op:?}: {e}");
                        assert_eq!(e.errno(), Errno::ENOSPC);
                    }
                }
            }
            Op::Reserve { page, pages } => {
                let (s, n) = (page * PAGE, pages * PAGE);
                let ok = s >= PAGE && m.free(u128::from(s), u128::from(s) + u128::from(n));
                match a.reserve(s, n) {
                    Ok(b) => {
                        assert!(ok, "{op:?}");
                        m.live.push((b.start(), b.size()));
                        blocks.push(b);
                    }
                    Err(e) => {
                        assert!(!ok, "{op:?}: {e}");
                        assert!(
                            matches!(e.errno(), Errno::EEXIST | Errno::ERANGE),
                            "{op:?}: {e}"
                        );
                    }
                }
            }
            Op::Free { index } => {
                if blocks.is_empty() {
                    continue;
                }
                let b = blocks.swap_remove(index % blocks.len());
                let pos = m.live.iter().position(|&(s, _)| s == b.start()).unwrap();
                m.live.swap_remove(pos);
                a.free(b).unwrap();
            }
            Op::SetRanges { ranges } => {
                let ranges = to_ranges(ranges);
                a.set_ranges(&ranges);
                m.set_ranges(&ranges);
            }
        }
        let stats = a.stats();
        assert_eq!(stats.free_bytes, m.free_bytes(), "after {op:?}");
        assert_eq!(stats.allocations, m.live.len());
        for b in &blocks {
            assert_eq!(a.lookup(b.start()), Some((b.start(), b.size())));
            assert_eq!(a.lookup(b.last()), Some((b.start(), b.size())));
        }
    }
    for b in blocks {
        a.free(b).unwrap();
    }
    assert_eq!(a.stats().allocations, 0);
}

/// A small deterministic generator (xorshift), so the model check needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_ranges(rng: &mut Rng) -> Vec<(u64, u64)> {
    (0..1 + rng.below(3))
        .map(|_| (rng.below(1 << 22), 1 + rng.below(1 << 21)))
        .collect()
}

fn random_op(rng: &mut Rng) -> Op {
    match rng.below(20) {
        0..=9 => Op::Alloc {
            size: 1 + (rng.next() % (1 << (12 + rng.below(8)))),
            align_shift: if rng.below(4) == 0 {
                12 + rng.below(6) as u32
            } else {
                0
            },
            limit_bits: [0, 0, 0, 20, 21, 22][rng.below(6) as usize],
        },
        10..=11 => Op::Reserve {
            page: rng.below(1 << 10),
            pages: 1 + rng.below(16),
        },
        12..=18 => Op::Free {
            index: rng.below(1 << 16) as usize,
        },
        _ => Op::SetRanges {
            ranges: random_ranges(rng),
        },
    }
}

#[test]
fn model_check_random_sequences() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let initial = random_ranges(&mut rng);
        let ops: Vec<Op> = (0..300).map(|_| random_op(&mut rng)).collect();
        run(&initial, &ops);
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..(1 << 19), prop_oneof![Just(0u32), 12u32..18], prop_oneof![Just(0u32), 19u32..23])
            .prop_map(|(size, align_shift, limit_bits)| Op::Alloc { size, align_shift, limit_bits }),
        1 => (0u64..1024, 1u64..32).prop_map(|(page, pages)| Op::Reserve { page, pages }),
        4 => any::<usize>().prop_map(|index| Op::Free { index }),
        1 => proptest::collection::vec((0u64..(1 << 22), 1u64..(1 << 21)), 0..3)
            .prop_map(|ranges| Op::SetRanges { ranges }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_matches_the_model(
        initial in proptest::collection::vec((0u64..(1 << 22), 1u64..(1 << 22)), 1..4),
        ops in proptest::collection::vec(op_strategy(), 1..200),
    ) {
        run(&initial, &ops);
    }

    #[test]
    fn prop_blocks_never_overlap_and_respect_everything(
        sizes in proptest::collection::vec((1u64..(1 << 24), 0u32..40), 1..100),
    ) {
        let ranges = [r(0, 0xfedf_ffff), r(0xfef0_0000, (1 << 39) - 1)];
        let mut a = IovaAllocator::new(&ranges, PAGE).unwrap();
        let mut live: Vec<IovaBlock> = Vec::new();
        for (size, bits) in sizes {
            let limit = AddressLimit::bits(bits);
            if let Ok(b) = a.allocate(size, limit) {
                prop_assert!(b.start() != 0);
                prop_assert!(limit.allows(b.start(), b.size()));
                prop_assert_eq!(b.start() % b.size().next_power_of_two(), 0);
                prop_assert!(ranges.iter().any(|r| r.contains_span(b.start(), b.size())));
                for o in &live {
                    prop_assert!(b.last() < o.start() || o.last() < b.start());
                }
                live.push(b);
            }
        }
        for b in live {
            a.free(b).unwrap();
        }
        prop_assert_eq!(a.stats().allocated_bytes, 0);
    }
}
