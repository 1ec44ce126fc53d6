//! IOVA range lists, as the kernel reports them (type1's IOVA-range capability, iommufd's
//! `IOMMU_IOAS_IOVA_RANGES`: inclusive ends, any order, possibly overlapping or inverted), fed
//! to `IovaAllocator::new` and `set_ranges`, with allocations, reservations and frees between.
//!
//! Input: page shift (byte; top bit: the byte itself as a page size, usually not a power of
//! two), range count (byte, at most 8), that many `start: u64, end: u64`, then operations of
//! 10 bytes each (kind, then 9 bytes of arguments).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::dma::{AddressLimit, IovaAllocator, IovaBlock};
use uvfio::iommu::IovaRange;
use uvfio_fuzz::Input;

fn read_ranges(input: &mut Input<'_>) -> Vec<IovaRange> {
    let n = input.u8() % 9;
    (0..n)
        .map(|_| IovaRange {
            start: input.u64(),
            end: input.u64(),
        })
        .collect()
}

/// Whether every byte of `[start, last]` is in some range of `ranges` (which `allocator`
/// reports sorted and merged, so one of them holds it all).
fn inside(ranges: &[IovaRange], start: u64, last: u64) -> bool {
    ranges.iter().any(|r| r.start <= start && last <= r.end)
}

/// Checks what the allocator reports about its ranges against the input ranges, and returns
/// them with their total size.
fn check_ranges(alloc: &IovaAllocator, input: &[IovaRange]) -> (Vec<IovaRange>, u128) {
    let page = alloc.page_size();
    let ranges: Vec<IovaRange> = alloc.ranges().collect();
    for (i, r) in ranges.iter().enumerate() {
        // Page-trimmed, past the first page, sorted, disjoint and not adjacent (merged).
        assert!(r.start <= r.end && r.start >= page);
        assert_eq!(r.start % page, 0);
        assert_eq!(r.end.wrapping_add(1) % page, 0);
        if let Some(next) = ranges.get(i + 1) {
            assert!(r.end.checked_add(1).is_some_and(|e| e < next.start));
        }
        // Made of input ranges: both ends lie in one.
        assert!(input.iter().any(|x| x.start <= r.start && r.start <= x.end));
        assert!(input.iter().any(|x| x.start <= r.end && r.end <= x.end));
    }
    // Every whole page past the first that lies in an input range is in the allocator's ranges
    // (sampled at each input range's first and last whole page).
    for x in input {
        let first = x.start.max(page).div_ceil(page).checked_mul(page);
        let last_page = x.end.checked_add(1).map_or(u64::MAX / page, |e| e / page);
        if let Some(first) = first {
            if first / page < last_page {
                assert!(inside(&ranges, first, first + (page - 1)));
                let last = (last_page - 1) * page;
                assert!(inside(&ranges, last, last + (page - 1)));
            }
        }
    }
    let total = ranges.iter().map(IovaRange::size).sum();
    (ranges, total)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let shift_byte = input.u8();
    let page_size = if shift_byte & 0x80 != 0 {
        u64::from(shift_byte & 0x7f)
    } else {
        1u64 << (12 + shift_byte % 20)
    };
    let first_ranges = read_ranges(&mut input);
    let Ok(mut alloc) = IovaAllocator::new(&first_ranges, page_size) else {
        assert!(!page_size.is_power_of_two());
        return;
    };
    let page = alloc.page_size();
    assert_eq!(page, page_size);
    let (mut ranges, mut total) = check_ranges(&alloc, &first_ranges);
    assert_eq!(alloc.stats().free_bytes, total);

    let mut live: Vec<IovaBlock> = Vec::new();
    for _ in 0..32 {
        if input.is_empty() {
            break;
        }
        let kind = input.u8();
        let a = input.u64();
        let b = input.u8();
        match kind % 5 {
            0 | 1 => {
                let size = a >> (b % 64);
                let limit = AddressLimit::bits(u32::from(b) % 65);
                if let Ok(block) = alloc.allocate(size, limit) {
                    // Inside the ranges and the limit, naturally aligned, disjoint from the rest.
                    assert!(size > 0 && block.size() >= size && block.size() % page == 0);
                    assert!(inside(&ranges, block.start(), block.last()));
                    assert!(limit.allows(block.start(), block.size()));
                    let align = block.size().next_power_of_two();
                    assert_eq!(block.start() % align, 0);
                    assert!(live
                        .iter()
                        .all(|l| l.last() < block.start() || block.last() < l.start()));
                    assert_eq!(
                        alloc.lookup(block.last()),
                        Some((block.start(), block.size()))
                    );
                    live.push(block);
                }
            }
            2 => {
                let start = a & !(page - 1);
                let size = u64::from(b).max(1) * page;
                let was_free = alloc.is_free(start, size);
                match alloc.reserve(start, size) {
                    Ok(block) => {
                        assert!(was_free && inside(&ranges, block.start(), block.last()));
                        assert_eq!((block.start(), block.size()), (start, size));
                        live.push(block);
                    }
                    Err(_) => assert!(!was_free),
                }
            }
            3 if !live.is_empty() => {
                let i = usize::try_from(a % live.len() as u64).unwrap();
                let block = live.swap_remove(i);
                let (start, size) = (block.start(), block.size());
                alloc.free(block).expect("a block of this allocator");
                assert_eq!(alloc.lookup(start), None);
                if inside(&ranges, start, start + (size - 1)) {
                    assert!(alloc.is_free(start, size));
                }
            }
            _ => {
                // The kernel reports other ranges (a group joined).
                let new_ranges = read_ranges(&mut input);
                alloc.set_ranges(&new_ranges);
                (ranges, total) = check_ranges(&alloc, &new_ranges);
            }
        }
        // Free + allocated space is the ranges, plus what live blocks hold outside them.
        let stats = alloc.stats();
        assert_eq!(stats.allocations, live.len());
        let held: u128 = live.iter().map(|l| u128::from(l.size())).sum();
        assert_eq!(stats.allocated_bytes, held);
        // Live blocks a set_ranges left (partly) outside the ranges.
        let outside: u128 = live
            .iter()
            .map(|l| {
                let (s, e) = (u128::from(l.start()), u128::from(l.last()) + 1);
                let covered: u128 = ranges
                    .iter()
                    .map(|r| {
                        let (rs, re) = (u128::from(r.start), u128::from(r.end) + 1);
                        re.min(e).saturating_sub(rs.max(s))
                    })
                    .sum();
                (e - s) - covered
            })
            .sum();
        assert!(outside <= held);
        assert_eq!(stats.free_bytes + (held - outside), total);
    }
    for block in live.drain(..) {
        alloc.free(block).expect("a block of this allocator");
    }
    let stats = alloc.stats();
    assert_eq!(
        (stats.allocations, stats.allocated_bytes, stats.free_bytes),
        (0, 0, total)
    );
});
