//! The baseline of the IOVA allocator's benchmark: the plain design, free ranges in one
//! `BTreeMap` (start → end) searched first-fit in address order, with the same guarantees as
//! `IovaAllocator` (the lowest naturally aligned block: the size rounded up to a power of two,
//! never address 0, whole pages) and neighbours merged on free.

use std::collections::BTreeMap;

/// Free space as ranges, searched from the lowest address.
pub struct FirstFit {
    /// start → end (exclusive) of each free range; ranges never touch (merged on free).
    free: BTreeMap<u64, u64>,
    page: u64,
}

impl FirstFit {
    /// Free space `[page, end)` (address 0's page is never handed out).
    pub fn new(end: u64, page: u64) -> FirstFit {
        FirstFit {
            free: BTreeMap::from([(page, end)]),
            page,
        }
    }

    /// The lowest free block of `size` bytes (rounded to pages), aligned to `size` rounded up
    /// to a power of two.
    pub fn allocate(&mut self, size: u64) -> Option<u64> {
        let size = size.next_multiple_of(self.page);
        let align = size.next_power_of_two();
        let (start, end, at) = self.free.iter().find_map(|(&s, &e)| {
            let at = s.next_multiple_of(align);
            (at.checked_add(size)? <= e).then_some((s, e, at))
        })?;
        self.free.remove(&start);
        if start < at {
            self.free.insert(start, at);
        }
        if at + size < end {
            self.free.insert(at + size, end);
        }
        Some(at)
    }

    /// Gives `[at, at + size)` back, merging it with free neighbours.
    pub fn free(&mut self, at: u64, size: u64) {
        let size = size.next_multiple_of(self.page);
        let (mut start, mut end) = (at, at + size);
        if let Some((&s, &e)) = self.free.range(..at).next_back() {
            if e == at {
                self.free.remove(&s);
                start = s;
            }
        }
        if let Some(e) = self.free.remove(&end) {
            end = e;
        }
        self.free.insert(start, end);
    }
}
