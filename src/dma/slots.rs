//! [`SlotAllocator`]: the lock-free free list of [`DmaPool`](super::DmaPool); its docs
//! describe the design and why it is safe from the ABA problem.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Object, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A thread-safe allocator of `capacity` numbered slots, handing out the most recently freed
/// first. It is the free list of [`DmaPool`](super::DmaPool), usable on its own to
/// sub-allocate any fixed-size array (for example chunks of a
/// [`DmaBuffer`](super::DmaBuffer) you manage yourself).
///
/// It is lock-free: [`SlotAllocator::acquire`] and [`SlotAllocator::release`] are one
/// compare-and-swap each when uncontended, never block, and make no system call.
///
/// # Examples
///
/// ```
/// use uvfio::dma::SlotAllocator;
///
/// let slots = SlotAllocator::new(2);
/// let a = slots.acquire().unwrap();
/// let b = slots.acquire().unwrap();
/// assert!(slots.acquire().is_none());
/// assert_ne!(a.index(), b.index());
/// slots.release(a)?;
/// assert_eq!(slots.available(), 1);
/// # slots.release(b)?;
/// # Ok::<(), uvfio::Error>(())
/// ```
///
/// # The design
///
/// A Treiber stack of slot numbers, without a lock and without `unsafe`:
///
/// - `head` is one `AtomicU64`: the number of the slot on top of the stack in its low
///   `index_bits` bits (all ones there when the stack is empty) and a generation tag in the
///   bits above, which every successful change of `head` increments.
/// - `links[i]` is one `AtomicU64` per slot, written only while slot `i` is being pushed:
///   the slot below it (low 32 bits) and the stack's depth with `i` on top (high 32 bits), so
///   that [`SlotAllocator::available`] reads one entry instead of walking the stack.
/// - Taking a slot: read `head`, read the top slot's link, and compare-and-swap `head` to
///   (that link, tag + 1). Giving one back: read `head`, write the slot's link (the current
///   top and its depth + 1), and compare-and-swap `head` to (the slot, tag + 1). A failed
///   compare-and-swap means another thread changed the stack in between: start again. Some
///   thread's compare-and-swap always succeeds, so the stack is lock-free: a thread that is
///   preempted holds nothing up, where a preempted mutex holder stalls every other thread.
///
/// # Why the tag makes it ABA-safe
///
/// Without the tag a pop could go wrong like this: thread 1 reads top = A and A's link = B,
/// and stalls; thread 2 takes A, takes B, gives A back (its link now says C). Top is A again,
/// so thread 1's compare-and-swap would succeed and make B, which thread 2 still owns, the
/// top: B would be handed out twice. With the tag, thread 2's three changes moved the tag on
/// by 3, so thread 1's compare-and-swap (which compares the whole word, index and tag) fails
/// and it retries with fresh values. In general a link is written only while its slot is off
/// the stack, a slot gets off the stack only by a pop, and every pop moves the tag on: so a
/// compare-and-swap that succeeds proves no other change happened since `head` was read, and
/// the link (and depth) read in between is the one that was current. The loads that follow
/// `head` are `Acquire` and the link stores `Release`: a thread that read a link written after
/// such a pop is ordered after that pop, and its compare-and-swap sees the newer tag.
///
/// The tag has `64 - index_bits` bits (index_bits is the bit length of the capacity: 51 tag
/// bits for 4096 slots, 32 at the 2^32 - 1 maximum). The only remaining failure is a thread
/// stalled between its read of `head` and its compare-and-swap while other threads make an
/// exact multiple of 2^(tag bits) changes and leave the same slot on top: with 4096 slots,
/// 2^51 changes at 100 million a second take 260 days.
///
/// The stack is LIFO: the most recently freed slot, whose memory is still warm in
/// the cache, is handed out next. Neither taking nor giving back makes a system call.
pub struct SlotAllocator {
    id: u64,
    capacity: u32,
    /// The low bits of `head` that hold a slot number; `index_mask` itself means "empty".
    index_bits: u32,
    index_mask: u64,
    /// Top slot number | generation tag << index_bits.
    head: AtomicU64,
    /// Per slot: the slot below it | the depth with it on top << 32.
    links: Box<[AtomicU64]>,
}

/// A slot taken from a [`SlotAllocator`]; give it back with [`SlotAllocator::release`].
#[must_use = "a dropped Slot is never handed out again; give it back with SlotAllocator::release"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub(super) index: u32,
    owner: u64,
}

impl Slot {
    /// The slot's number, below the allocator's capacity.
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for SlotAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotAllocator")
            .field("capacity", &self.capacity)
            .field("available", &self.available())
            .finish()
    }
}

fn link(below: u64, depth: u64) -> u64 {
    below | depth << 32
}

fn link_below(link: u64) -> u64 {
    link & u64::from(u32::MAX)
}

fn link_depth(link: u64) -> u64 {
    link >> 32
}

impl SlotAllocator {
    /// `capacity` free slots, numbered from 0; slot 0 is handed out first.
    pub fn new(capacity: u32) -> SlotAllocator {
        // Enough bits for every slot number and one more value, all ones, for "empty".
        let index_bits = (u32::BITS - capacity.leading_zeros()).max(1);
        let index_mask = (1u64 << index_bits) - 1;
        let top = u64::from(capacity);
        // Slot i lies on slot i + 1 (the last on nothing), with capacity - i slots from it down.
        let links = (0..top)
            .map(|i| {
                let below = if i + 1 == top { index_mask } else { i + 1 };
                AtomicU64::new(link(below, top - i))
            })
            .collect();
        SlotAllocator {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            capacity,
            index_bits,
            index_mask,
            head: AtomicU64::new(if capacity == 0 { index_mask } else { 0 }),
            links,
        }
    }

    /// `head` with `top` on the stack and the tag moved on by one.
    #[inline]
    fn next_head(&self, head: u64, top: u64) -> u64 {
        ((head & !self.index_mask).wrapping_add(1 << self.index_bits)) | top
    }

    /// What taking the top slot of the stack whose head is `head` makes the head, and that
    /// slot; `None` when the stack is empty. Only the compare-and-swap of `head` from `head`
    /// to that value takes the slot.
    #[inline]
    fn plan_pop(&self, head: u64) -> Option<(u64, u32)> {
        let top = head & self.index_mask;
        if top == self.index_mask {
            return None;
        }
        // Stale when another thread popped `top` in the meantime: the exchange then fails.
        let below = link_below(self.links[top as usize].load(Ordering::Acquire));
        // `top` < capacity <= u32::MAX: it was pushed as a slot number.
        Some((self.next_head(head, below), top as u32))
    }

    /// Takes a free slot, or `None` when all are in use.
    #[inline]
    pub fn acquire(&self) -> Option<Slot> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (next, index) = self.plan_pop(head)?;
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Slot {
                        index,
                        owner: self.id,
                    });
                }
                Err(now) => head = now,
            }
        }
    }

    /// Gives a slot back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EINVAL`) when the slot belongs to another allocator; it is
    /// then dropped and nothing changes here.
    pub fn release(&self, slot: Slot) -> Result<()> {
        if slot.owner != self.id {
            return Err(Error::invalid(
                "SlotAllocator::release",
                Object::DmaMemory,
                format!("slot {} was not handed out by this allocator", slot.index),
            ));
        }
        self.release_index(slot.index);
        Ok(())
    }

    /// Pushes `index`, which the caller owns (taken by `acquire` and not given back since).
    #[inline]
    pub(super) fn release_index(&self, index: u32) {
        let own = &self.links[index as usize];
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let top = head & self.index_mask;
            let depth = if top == self.index_mask {
                0
            } else {
                // Stale when `top` was popped in the meantime: the exchange then fails.
                link_depth(self.links[top as usize].load(Ordering::Acquire))
            };
            // Another thread reads this link only through a head from before `index` was
            // taken, and its exchange then fails on the tag.
            own.store(link(top, depth.wrapping_add(1)), Ordering::Release);
            match self.head.compare_exchange_weak(
                head,
                self.next_head(head, u64::from(index)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// The number of free slots: exact when no other thread is taking or giving back slots,
    /// else a value the stack had at one instant during the call.
    pub fn available(&self) -> usize {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let top = head & self.index_mask;
            if top == self.index_mask {
                return 0;
            }
            let depth = link_depth(self.links[top as usize].load(Ordering::Acquire));
            // The same head (index and tag) after the read: nothing changed in between, so
            // `depth` is the depth of that stack.
            let again = self.head.load(Ordering::Acquire);
            if again == head {
                // At most the capacity, a u32.
                return depth as usize;
            }
            head = again;
        }
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
