//! The baseline free list the pool benches measure `SlotAllocator` against: a plain
//! `Mutex<Vec<u32>>` stack of slot numbers (what `SlotAllocator` was before it became
//! lock-free), and one trait over both so that every loop is the same code for each side.

use std::sync::Mutex;

use uvfio::dma::{Slot, SlotAllocator};

/// A free list of slot numbers: take one, give it back.
pub trait FreeList: Sync {
    /// What a taker holds.
    type Held: Send;
    /// Takes a slot, `None` when none is free.
    fn take(&self) -> Option<Self::Held>;
    /// Gives a slot back.
    fn give(&self, held: Self::Held);
}

/// The baseline: a LIFO stack of slot numbers behind a mutex.
pub struct MutexFreeList(Mutex<Vec<u32>>);

impl MutexFreeList {
    /// `capacity` free slots, 0 on top.
    pub fn new(capacity: u32) -> MutexFreeList {
        MutexFreeList(Mutex::new((0..capacity).rev().collect()))
    }
}

impl FreeList for MutexFreeList {
    type Held = u32;
    #[inline]
    fn take(&self) -> Option<u32> {
        self.0.lock().unwrap().pop()
    }
    #[inline]
    fn give(&self, held: u32) {
        self.0.lock().unwrap().push(held);
    }
}

impl FreeList for SlotAllocator {
    type Held = Slot;
    #[inline]
    fn take(&self) -> Option<Slot> {
        self.acquire()
    }
    #[inline]
    fn give(&self, held: Slot) {
        self.release(held).expect("a slot of this allocator");
    }
}
