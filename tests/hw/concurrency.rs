//! Hardware tests of concurrent use (issue 14, item 3), against the VM kernel's real ioctls:
//! many threads mapping and unmapping buffers in one `DmaSpace` while others allocate from one
//! `DmaPool`; an MSI waited for in one thread and raised from another, many times; register
//! reads from several threads on one `Region`; and a `Device` dropped while other threads still
//! hold a `Region` and an `Interrupts` handle of it.
//!
//! Timeouts only turn a hang (a deadlock, a lost wake-up) into a failure; nothing is timed.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::mmio::MapOptions;
use uvfio::{Device, DmaBuffer, DmaMemory, DmaOptions, DmaPool, DmaSpace};

use crate::common::{self, device, fd_count};

/// How long a step that must happen may take before the test calls it a hang.
const ARRIVES: Duration = Duration::from_secs(10);

/// edu's registers (BAR0): identification, liveness (reads back the complement), factorial,
/// status, interrupt status, raise and acknowledge.
const EDU_ID: u64 = 0x00;
const EDU_LIVENESS: u64 = 0x04;
const EDU_FACTORIAL: u64 = 0x08;
const EDU_STATUS: u64 = 0x20;
const EDU_IRQ_STATUS: u64 = 0x24;
const EDU_IRQ_RAISE: u64 = 0x60;
const EDU_IRQ_ACK: u64 = 0x64;

/// The space's books that must come back: live buffers, mapped and leaked bytes, IOVA
/// allocations (none in no-IOMMU mode, where there is no IOVA allocator).
fn books(space: &DmaSpace) -> (u64, u64, u64, usize) {
    let s = space.dma_stats();
    (
        s.buffers,
        s.mapped_bytes,
        s.leaked_bytes,
        s.iova.map_or(0, |i| i.allocations),
    )
}

/// Live ranges of IOVA (or, in no-IOMMU mode, physical addresses), by start: every insert
/// checks that the new range overlaps none of the live ones.
#[derive(Default)]
struct LiveRanges(Mutex<BTreeMap<u64, (u64, String)>>);

impl LiveRanges {
    fn insert(&self, start: u64, len: u64, who: String) {
        let mut live = self.0.lock().unwrap();
        if let Some((&s, (l, w))) = live.range(..=start).next_back() {
            assert!(
                s + l <= start,
                "{who} got [{start:#x}, +{len:#x}), which overlaps live {w} at [{s:#x}, +{l:#x})"
            );
        }
        if let Some((&s, (l, w))) = live.range(start..).next() {
            assert!(
                start + len <= s,
                "{who} got [{start:#x}, +{len:#x}), which overlaps live {w} at [{s:#x}, +{l:#x})"
            );
        }
        live.insert(start, (len, who));
    }

    fn remove(&self, start: u64) {
        assert!(self.0.lock().unwrap().remove(&start).is_some());
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

const MAPPERS: usize = 4;
const MAP_CYCLES: usize = 200;
const POOLERS: usize = 2;
const POOL_CYCLES: usize = 500;
/// The pool's chunks; in no-IOMMU mode two of 2 KiB, one page (several base pages are not
/// physically contiguous, and the VM reserves no huge pages).
fn pool_chunks() -> usize {
    if common::noiommu() {
        2
    } else {
        16
    }
}

/// One mapper thread: `MAP_CYCLES` buffers of 1 to 4 pages (one in no-IOMMU mode), up to three alive at a time, each
/// tagged and checked before it is dropped (a buffer that shared memory with another would
/// show the other's tag).
fn mapper(space: &DmaSpace, live: &LiveRanges, t: usize) {
    let mut held: Vec<(DmaBuffer, u64)> = Vec::new();
    for i in 0..MAP_CYCLES {
        let pages = if common::noiommu() {
            1
        } else {
            1 + (t + i) % 4
        };
        let size = 4096 * pages;
        let mut b = DmaBuffer::new(space, size)
            .unwrap_or_else(|e| panic!("mapper {t}, cycle {i}: DmaBuffer::new({size}): {e}"));
        assert!(b.is_mapped(), "mapper {t}, cycle {i}");
        let tag = ((t as u64) << 32) | i as u64;
        b.write(0, tag).unwrap();
        b.write(size - 8, tag).unwrap();
        live.insert(b.iova(), size as u64, format!("mapper {t} cycle {i}"));
        held.push((b, tag));
        if held.len() > (t + i) % 3 {
            let (b, tag) = held.remove(0);
            release_buffer(live, b, tag);
        }
    }
    for (b, tag) in held {
        release_buffer(live, b, tag);
    }
}

fn release_buffer(live: &LiveRanges, b: DmaBuffer, tag: u64) {
    assert_eq!(b.read::<u64>(0).unwrap(), tag, "buffer at {:#x}", b.iova());
    assert_eq!(b.read::<u64>(b.len() - 8).unwrap(), tag);
    live.remove(b.iova());
    drop(b);
}

/// One pool thread: takes up to four chunks at a time, checks that no chunk is held twice and
/// that each chunk's IOVA is where its index says, tags and checks it, gives them back.
fn pooler(pool: &DmaPool, held_by: &Mutex<Vec<Option<usize>>>, t: usize) {
    for i in 0..POOL_CYCLES {
        let mut mine = Vec::new();
        for _ in 0..1 + (t + i) % 4 {
            let Some(mut b) = pool.alloc() else { break };
            let idx = b.index();
            assert_eq!(pool.index_of_iova(b.iova()), Some(idx));
            assert_eq!(b.iova(), pool.iova() + (idx * pool.stride()) as u64);
            {
                let mut held = held_by.lock().unwrap();
                assert_eq!(held[idx], None, "chunk {idx} handed to pooler {t} twice");
                held[idx] = Some(t);
            }
            let tag = ((t as u64) << 32) | i as u64;
            b.write(0, tag).unwrap();
            mine.push((b, tag));
        }
        std::thread::yield_now();
        for (b, tag) in mine {
            assert_eq!(b.read::<u64>(0).unwrap(), tag, "chunk {}", b.index());
            held_by.lock().unwrap()[b.index()] = None;
            drop(b);
        }
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn many_threads_map_unmap_and_share_a_pool_and_the_books_balance() {
    // A legacy container has its IOMMU model once a group joined: a device is opened first.
    let (space, _edu) = common::open_in_space(&device("UVFIO_TEST_EDU"));
    let fds = fd_count();
    let before = books(&space);
    let chunks = pool_chunks();
    let pool = DmaPool::new(&space, 2048, chunks, DmaOptions::new()).unwrap();
    let with_pool = books(&space);
    assert_eq!(with_pool.0, before.0 + 1, "the pool is one buffer");
    let live = LiveRanges::default();
    // The pool's own range is live throughout: no buffer may land in it.
    let pool_len = (pool.stride() * pool.capacity()) as u64;
    live.insert(pool.iova(), pool_len, "the pool".into());
    let held_by = Mutex::new(vec![None; chunks]);
    let stats0 = space.dma_stats();

    std::thread::scope(|s| {
        for t in 0..MAPPERS {
            let (space, live) = (&space, &live);
            s.spawn(move || mapper(space, live, t));
        }
        for t in 0..POOLERS {
            let (pool, held_by) = (&pool, &held_by);
            s.spawn(move || pooler(pool, held_by, t));
        }
        // A sync point from outside: while the threads run, every live buffer the books count
        // is at least the pool, and nothing is leaked.
        for _ in 0..50 {
            let (buffers, mapped, leaked, _) = books(&space);
            assert!(
                buffers > before.0 && mapped >= with_pool.1 - before.1,
                "{buffers} {mapped}"
            );
            assert_eq!(leaked, before.2);
            std::thread::yield_now();
        }
    });

    live.remove(pool.iova());
    assert!(live.is_empty());
    assert_eq!(pool.available(), chunks, "every chunk back in the pool");
    assert_eq!(books(&space), with_pool, "{:?}", space.dma_stats());
    let stats = space.dma_stats();
    let maps = (MAPPERS * MAP_CYCLES) as u64;
    if space.mode() != uvfio::IommuMode::NoIommu {
        // One map and one unmap ioctl per buffer; the pool's chunks need none.
        assert_eq!(stats.map_ioctls - stats0.map_ioctls, maps, "{stats:?}");
        assert_eq!(stats.unmap_ioctls - stats0.unmap_ioctls, maps, "{stats:?}");
    }
    drop(pool);
    assert_eq!(books(&space), before, "{:?}", space.dma_stats());
    assert_eq!(fd_count(), fds, "no fd left behind");
}

/// edu opened in a fresh space, with memory decoding and bus mastering on (MSI is a DMA
/// write) and no interrupt left pending by an earlier test (edu has no reset).
fn open_edu() -> Device {
    let d = common::open_device(&device("UVFIO_TEST_EDU"));
    let config = d.pci_config().unwrap();
    config.enable_memory_space().unwrap();
    config.set_bus_master(true).unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.read_u32(EDU_ID).unwrap() & 0xff, 0xed);
    bar0.write_u32(EDU_STATUS, 0).unwrap();
    bar0.write_u32(EDU_IRQ_ACK, u32::MAX).unwrap();
    assert_eq!(bar0.read_u32(EDU_IRQ_STATUS).unwrap(), 0);
    d
}

const ROUNDS: u32 = 200;

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn msi_raised_in_one_thread_is_seen_by_a_waiter_in_another_every_time() {
    let d = open_edu();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    let msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    assert_eq!(msi.try_wait(0).unwrap(), None);
    // The raiser sends the value it raises, then raises it; the waiter waits for the MSI
    // (already blocked in `wait` or not yet: both orders happen), checks the status register
    // holds that value, acknowledges it and answers. One raise at a time, so each MSI is
    // counted exactly once: a lost wake-up times the waiter out, a spurious one counts 2.
    let (raised_tx, raised_rx) = mpsc::channel::<u32>();
    let (seen_tx, seen_rx) = mpsc::channel::<u64>();
    std::thread::scope(|s| {
        let (bar0, msi) = (&bar0, &msi);
        s.spawn(move || {
            for i in 0..ROUNDS {
                let n = msi
                    .wait(0, Some(ARRIVES))
                    .unwrap()
                    .unwrap_or_else(|| panic!("round {i}: the MSI never woke the waiter"));
                let v = raised_rx.recv_timeout(ARRIVES).unwrap();
                assert_eq!(bar0.read_u32(EDU_IRQ_STATUS).unwrap(), v, "round {i}");
                bar0.write_u32(EDU_IRQ_ACK, v).unwrap();
                seen_tx.send(n).unwrap();
            }
        });
        let mut counts = Vec::new();
        for i in 0..ROUNDS {
            let v = 1 << (i % 32);
            raised_tx.send(v).unwrap();
            bar0.write_u32(EDU_IRQ_RAISE, v).unwrap();
            let n = seen_rx
                .recv_timeout(ARRIVES)
                .unwrap_or_else(|e| panic!("round {i}: the waiter never answered ({e})"));
            counts.push(n);
        }
        assert!(counts.iter().all(|&n| n == 1), "{counts:?}");
    });
    assert_eq!(bar0.read_u32(EDU_IRQ_STATUS).unwrap(), 0);
    assert_eq!(msi.try_wait(0).unwrap(), None, "nothing left over");
    drop(msi);
    d.pci_config().unwrap().set_bus_master(false).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn registers_read_from_many_threads_on_one_region_give_their_values() {
    let d = open_edu();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0), "{bar0:?}");
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    let id = bar0.read_u32(EDU_ID).unwrap();
    bar0.write_u32(EDU_LIVENESS, 0x1234_5678).unwrap();
    bar0.write_u32(EDU_FACTORIAL, 10).unwrap();
    let t0 = std::time::Instant::now();
    while bar0.read_u32(EDU_STATUS).unwrap() & 1 != 0 {
        assert!(t0.elapsed() < ARRIVES, "the factorial never finished");
        std::thread::yield_now();
    }
    assert_eq!(bar0.read_u32(EDU_FACTORIAL).unwrap(), 3_628_800);
    std::thread::scope(|s| {
        for t in 0..6 {
            // Four threads on the mapping, two through pread (the same Region type).
            let (region, reads) = if t < 4 { (&bar0, 2000) } else { (&slow, 200) };
            s.spawn(move || {
                for i in 0..reads {
                    let what = format!("thread {t}, read {i}");
                    assert_eq!(region.read_u32(EDU_ID).unwrap(), id, "{what}");
                    assert_eq!(
                        region.read_u32(EDU_LIVENESS).unwrap(),
                        !0x1234_5678,
                        "{what}"
                    );
                    assert_eq!(region.read_u32(EDU_FACTORIAL).unwrap(), 3_628_800, "{what}");
                }
            });
        }
    });
}

/// The target of fd `fd` (`/proc/self/fd/<fd>`), or `None` when it is closed.
fn fd_target(fd: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_dropped_device_stays_open_until_its_last_region_and_interrupts_go() {
    let base = fd_count();
    let d = open_edu();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    let msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    let fd = d.as_raw_fd();
    let target = fd_target(fd).expect("the device fd");
    let held = fd_count();

    // The last `Device` handle goes; the region and the interrupts keep the device open.
    drop(d);
    assert_eq!(fd_count(), held);
    assert_eq!(fd_target(fd).as_ref(), Some(&target));

    // Each handle moves to a thread of its own, and both keep working there.
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let (bar0, msi) = std::thread::scope(|s| {
        let raiser = s.spawn(move || {
            for i in 0..20 {
                assert_eq!(bar0.read_u32(EDU_ID).unwrap() & 0xff, 0xed);
                bar0.write_u32(EDU_IRQ_RAISE, 0x4).unwrap();
                seen_rx
                    .recv_timeout(ARRIVES)
                    .unwrap_or_else(|e| panic!("raise {i} was not seen: {e}"));
                bar0.write_u32(EDU_IRQ_ACK, 0x4).unwrap();
            }
            bar0
        });
        let waiter = s.spawn(move || {
            for i in 0..20 {
                let n = msi.wait(0, Some(ARRIVES)).unwrap();
                assert_eq!(n, Some(1), "MSI {i}");
                seen_tx.send(()).unwrap();
            }
            msi
        });
        (raiser.join().unwrap(), waiter.join().unwrap())
    });

    // The region goes first: the interrupts still hold the device.
    drop(bar0);
    assert_eq!(fd_count(), held);
    assert_eq!(fd_target(fd).as_ref(), Some(&target));
    assert_eq!(msi.try_wait(0).unwrap(), None);
    let dup = msi.eventfd(0).unwrap().try_clone().unwrap();
    drop(msi);
    // Now the device, its group or iommufd and its eventfd are closed; only `dup` remains.
    assert_ne!(
        fd_target(fd).as_ref(),
        Some(&target),
        "the device fd is closed"
    );
    assert_eq!(fd_count(), base + 1);
    drop(dup);
    assert_eq!(fd_count(), base);

    // The device opens again and was left with MSI off (INTx is the default again).
    let d = open_edu();
    assert!(d.enable_irqs(IrqIndex::MSI, 1).is_ok());
}
