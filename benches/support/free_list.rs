//! The baseline free lists the pool benches measure `SlotAllocator` and `DmaPool` against: a
//! plain `Mutex<Vec<u32>>` stack of slot numbers (what `SlotAllocator` was before it became
//! lock-free), bare and with the `Arc` clone a `PoolBuffer` makes, and one trait over all of
//! them so that every timed loop is the same code for each side.

// Each bench uses a part of this file.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use uvfio::dma::{DmaPool, PoolBuffer, Slot, SlotAllocator};

/// A free list of slot numbers: take one, give it back.
pub trait FreeList: Sync {
    /// What a taker holds.
    type Held: Send;
    /// Takes a slot, `None` when none is free.
    fn take(&self) -> Option<Self::Held>;
    /// Gives a slot back.
    fn give(&self, held: Self::Held);
}

/// `n` alloc+free pairs on this thread.
#[inline]
pub fn pairs<F: FreeList>(list: &F, n: u64) {
    for _ in 0..n {
        let held = list.take().expect("a free slot");
        list.give(black_box(held));
    }
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

/// The baseline with what a `PoolBuffer` adds on top of its free list: a clone of the pool's
/// `Arc`, held with the slot and dropped when it is given back.
pub struct MutexFreeListWithArc(MutexFreeList, Arc<u64>);

impl MutexFreeListWithArc {
    /// `capacity` free slots, 0 on top.
    pub fn new(capacity: u32) -> MutexFreeListWithArc {
        MutexFreeListWithArc(MutexFreeList::new(capacity), Arc::new(0))
    }
}

impl FreeList for MutexFreeListWithArc {
    type Held = (u32, Arc<u64>);
    #[inline]
    fn take(&self) -> Option<(u32, Arc<u64>)> {
        Some((self.0.take()?, self.1.clone()))
    }
    #[inline]
    fn give(&self, (index, handle): (u32, Arc<u64>)) {
        drop(handle);
        self.0.give(index);
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

/// What `DmaPool::alloc` and dropping the `PoolBuffer` do, without a mapping (so anywhere):
/// a slot of a `SlotAllocator` and a clone of an `Arc`, held together.
pub struct SlotsWithArc(pub SlotAllocator, Arc<u64>);

impl SlotsWithArc {
    /// `capacity` free slots, 0 on top.
    pub fn new(capacity: u32) -> SlotsWithArc {
        SlotsWithArc(SlotAllocator::new(capacity), Arc::new(0))
    }
}

impl FreeList for SlotsWithArc {
    type Held = (Slot, Arc<u64>);
    #[inline]
    fn take(&self) -> Option<(Slot, Arc<u64>)> {
        Some((self.0.acquire()?, self.1.clone()))
    }
    #[inline]
    fn give(&self, (slot, handle): (Slot, Arc<u64>)) {
        drop(handle);
        self.0.give(slot);
    }
}

/// A real pool: `take` is `DmaPool::alloc`, `give` drops the buffer.
pub struct Pool(pub DmaPool);

impl FreeList for Pool {
    type Held = PoolBuffer;
    #[inline]
    fn take(&self) -> Option<PoolBuffer> {
        self.0.alloc()
    }
    #[inline]
    fn give(&self, held: PoolBuffer) {
        drop(held);
    }
}
