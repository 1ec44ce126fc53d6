//! Unit tests of `slots.rs`: the free list's order, bounds and ownership against a model,
//! the tag's wrap-around, and many threads taking and giving back slots at once.

use super::*;
use proptest::prelude::*;
use std::sync::atomic::AtomicU32;
use std::sync::mpsc;

/// Takes every free slot; returns their numbers in the order they came.
fn drain(s: &SlotAllocator) -> Vec<Slot> {
    std::iter::from_fn(|| s.acquire()).collect()
}

#[test]
fn slots_are_unique_lifo_and_owned() {
    let s = SlotAllocator::new(3);
    let a = s.acquire().unwrap();
    assert_eq!(a.index(), 0);
    let b = s.acquire().unwrap();
    let c = s.acquire().unwrap();
    assert!(s.acquire().is_none());
    assert_eq!((b.index(), c.index()), (1, 2));
    s.release(b).unwrap();
    let again = s.acquire().unwrap();
    assert_eq!(again.index(), 1);
    let other = SlotAllocator::new(3);
    let err = other.release(again).unwrap_err();
    assert!(
        err.to_string().contains("not handed out by this allocator"),
        "{err}"
    );
    assert_eq!(other.available(), 3);
    s.release(a).unwrap();
    s.release(c).unwrap();
    assert_eq!((s.available(), s.capacity()), (2, 3));
}

#[test]
fn every_capacity_hands_out_each_slot_once_in_order() {
    // Around the boundaries where the index field grows by a bit (3 → 4, 7 → 8, ...).
    for capacity in (0..=17).chain([255, 256, 1023, 1024, 1025]) {
        let s = SlotAllocator::new(capacity);
        assert_eq!(s.available(), capacity as usize);
        let all = drain(&s);
        let got: Vec<usize> = all.iter().map(Slot::index).collect();
        assert_eq!(
            got,
            (0..capacity as usize).collect::<Vec<_>>(),
            "{capacity}"
        );
        assert_eq!(s.available(), 0);
        assert!(s.acquire().is_none());
        // Given back in order: the last given back comes out first.
        for slot in all {
            s.release(slot).unwrap();
        }
        assert_eq!(s.available(), capacity as usize);
        let again: Vec<usize> = drain(&s).iter().map(Slot::index).collect();
        assert_eq!(
            again,
            got.iter().rev().copied().collect::<Vec<_>>(),
            "{capacity}"
        );
    }
}

#[test]
fn debug_shows_capacity_and_available() {
    let s = SlotAllocator::new(3);
    let a = s.acquire().unwrap();
    assert_eq!(
        format!("{s:?}"),
        "SlotAllocator { capacity: 3, available: 2 }"
    );
    s.release(a).unwrap();
    assert_eq!(
        format!("{:?}", SlotAllocator::new(0)),
        "SlotAllocator { capacity: 0, available: 0 }"
    );
}

#[test]
fn the_tag_wraps_around() {
    let s = SlotAllocator::new(4);
    // index_bits = 3: put the tag one step below its wrap-around, slot 0 on top.
    assert_eq!(s.index_bits, 3);
    s.head.store(!s.index_mask, Ordering::Relaxed);
    let a = s.acquire().unwrap();
    assert_eq!(a.index(), 0);
    // The tag went from all ones to 0 and the index field was not touched by the carry.
    assert_eq!(s.head.load(Ordering::Relaxed), 1);
    let b = s.acquire().unwrap();
    assert_eq!(s.head.load(Ordering::Relaxed) >> s.index_bits, 1);
    s.release(b).unwrap();
    s.release(a).unwrap();
    assert_eq!(s.available(), 4);
    let got: Vec<usize> = drain(&s).iter().map(Slot::index).collect();
    assert_eq!(got, [0, 1, 2, 3]);
}

#[test]
fn every_change_moves_the_tag_on() {
    let s = SlotAllocator::new(2);
    let tag = |s: &SlotAllocator| s.head.load(Ordering::Relaxed) >> s.index_bits;
    let a = s.acquire().unwrap();
    let b = s.acquire().unwrap();
    s.release(b).unwrap();
    // Slot 1 on top again, as after the first pop: only the tag tells the two apart.
    assert_eq!(s.head.load(Ordering::Relaxed) & s.index_mask, 1);
    assert_eq!(tag(&s), 3);
    assert!(s.acquire().is_some_and(|b| s.release(b).is_ok()));
    assert_eq!(tag(&s), 5);
    // A failed acquire changes nothing.
    let b = s.acquire().unwrap();
    assert!(s.acquire().is_none());
    assert_eq!(tag(&s), 6);
    s.release(a).unwrap();
    s.release(b).unwrap();
}

#[test]
fn a_stalled_pop_fails_after_aba() {
    // Stack 0, 1, 2. Thread 1 reads the head and slot 0's link (1 below it), and stalls before
    // its compare-and-swap.
    let s = SlotAllocator::new(3);
    let seen = s.head.load(Ordering::Acquire);
    let (planned, index) = s.plan_pop(seen).unwrap();
    assert_eq!(index, 0);
    // Thread 2 takes 0 and 1 and gives 0 back: 0 is on top again, now over 2.
    let a = s.acquire().unwrap();
    let b = s.acquire().unwrap();
    s.release(a).unwrap();
    assert_eq!(s.head.load(Ordering::Acquire) & s.index_mask, 0);
    // Without the tag thread 1's exchange would succeed and put 1, which thread 2 holds, on
    // top. With it, it fails, and thread 1 tries again with what is there now.
    assert!(s
        .head
        .compare_exchange(seen, planned, Ordering::AcqRel, Ordering::Acquire)
        .is_err());
    let got: Vec<usize> = drain(&s).iter().map(Slot::index).collect();
    assert_eq!(got, [0, 2]);
    assert_eq!(b.index(), 1);
}

proptest! {
    /// Any sequence of takes and give-backs matches a plain LIFO stack of numbers.
    #[test]
    fn matches_a_stack(capacity in 0u32..40, ops in prop::collection::vec(any::<(bool, u8)>(), 0..200)) {
        let s = SlotAllocator::new(capacity);
        let mut model: Vec<u32> = (0..capacity).rev().collect();
        let mut held: Vec<Slot> = Vec::new();
        for (take, pick) in ops {
            if take || held.is_empty() {
                let got = s.acquire();
                prop_assert_eq!(got.as_ref().map(|slot| slot.index), model.pop());
                held.extend(got);
            } else {
                let slot = held.swap_remove(usize::from(pick) % held.len());
                model.push(slot.index);
                s.release(slot).unwrap();
            }
            prop_assert_eq!(s.available(), model.len());
        }
    }
}

/// Marks slot `index` as held by `me`, checking nobody holds it.
fn claim(owners: &[AtomicU32], index: usize, me: u32) {
    let before = owners[index].swap(me, Ordering::Relaxed);
    assert_eq!(
        before, 0,
        "slot {index} handed to thread {me} while thread {before} held it"
    );
}

fn unclaim(owners: &[AtomicU32], index: usize, me: u32) {
    let before = owners[index].swap(0, Ordering::Relaxed);
    assert_eq!(
        before, me,
        "slot {index} changed hands while thread {me} held it"
    );
}

#[test]
fn many_threads_never_share_a_slot() {
    // Few slots for many threads: the stack is empty often and the head contended.
    const SLOTS: u32 = 16;
    const THREADS: u32 = 8;
    const ROUNDS: usize = 20_000;
    let s = SlotAllocator::new(SLOTS);
    let owners: Vec<AtomicU32> = (0..SLOTS).map(|_| AtomicU32::new(0)).collect();
    let taken = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for me in 1..=THREADS {
            let (s, owners, taken) = (&s, &owners, &taken);
            scope.spawn(move || {
                let mut mine = Vec::new();
                for round in 0..ROUNDS {
                    // Take 1 to 3, give back in a varying order (the ABA pattern: take two,
                    // give back the first, so a slot returns to the top over another).
                    for _ in 0..1 + round % 3 {
                        if let Some(slot) = s.acquire() {
                            claim(owners, slot.index(), me);
                            mine.push(slot);
                        }
                    }
                    taken.fetch_add(mine.len() as u64, Ordering::Relaxed);
                    if round % 2 == 0 {
                        mine.reverse();
                    }
                    for slot in mine.drain(..) {
                        unclaim(owners, slot.index(), me);
                        s.release(slot).unwrap();
                    }
                }
            });
        }
    });
    assert!(taken.load(Ordering::Relaxed) > 0);
    assert_eq!(s.available(), SLOTS as usize);
    assert!(owners.iter().all(|o| o.load(Ordering::Relaxed) == 0));
    // The stack is whole: each slot exactly once.
    let mut all: Vec<usize> = drain(&s).iter().map(Slot::index).collect();
    all.sort_unstable();
    assert_eq!(all, (0..SLOTS as usize).collect::<Vec<_>>());
}

#[test]
fn slots_given_back_by_other_threads() {
    // Producers take slots and hand them to one consumer thread, which gives them back: every
    // give-back races with the producers' takes.
    const SLOTS: u32 = 8;
    const PRODUCERS: u32 = 3;
    const PER_PRODUCER: usize = 20_000;
    let s = SlotAllocator::new(SLOTS);
    let owners: Vec<AtomicU32> = (0..SLOTS).map(|_| AtomicU32::new(0)).collect();
    let (tx, rx) = mpsc::sync_channel::<(u32, Slot)>(4);
    std::thread::scope(|scope| {
        let (s, owners) = (&s, &owners);
        scope.spawn(move || {
            for (me, slot) in rx {
                unclaim(owners, slot.index(), me);
                s.release(slot).unwrap();
            }
        });
        for me in 1..=PRODUCERS {
            let tx = tx.clone();
            scope.spawn(move || {
                let mut sent = 0;
                while sent < PER_PRODUCER {
                    match s.acquire() {
                        Some(slot) => {
                            claim(owners, slot.index(), me);
                            tx.send((me, slot)).unwrap();
                            sent += 1;
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
        }
        drop(tx);
    });
    assert_eq!(s.available(), SLOTS as usize);
    let mut all: Vec<usize> = drain(&s).iter().map(Slot::index).collect();
    all.sort_unstable();
    assert_eq!(all, (0..SLOTS as usize).collect::<Vec<_>>());
}

#[test]
fn available_is_a_snapshot_under_contention() {
    const SLOTS: u32 = 32;
    let s = SlotAllocator::new(SLOTS);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let held: Vec<Slot> = (0..5).map_while(|_| s.acquire()).collect();
                    for slot in held {
                        s.release(slot).unwrap();
                    }
                }
            });
        }
        for _ in 0..100_000 {
            assert!(s.available() <= SLOTS as usize);
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(s.available(), SLOTS as usize);
}
