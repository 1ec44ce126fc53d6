//! The pool's free list, `SlotAllocator` (lock-free), against a plain `Mutex<Vec<u32>>` free
//! list of slot numbers measured in the same run: alloc+free from one thread (also with the
//! `Arc` clone and drop a `PoolBuffer` adds, on both sides: what `DmaPool` does, without a
//! mapping), and the total rate of 1, 2, 4 and 8 threads sharing one list. Pure: it runs on the
//! host, no VM needed.
//!
//! ```text
//! cargo bench --bench pool -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! After criterion, paired rounds (the two sides alternating, a few milliseconds apart) print
//! the median, min and max of the per-round ratios, the figures to go by on a noisy machine.
//!
//! With `UVFIO_POOL_SYSCALLS=N` it runs no benchmark: it does N alloc+frees on one thread,
//! then N spread over 2 threads, of a real `DmaPool` when a device is there
//! (`UVFIO_TEST_EDU` or `UVFIO_BENCH_DEVICE`, i.e. in the VM) and of a `SlotAllocator`
//! otherwise, and then the same with the mutex baseline, each phase between two marker
//! writes to stderr, for `tests/vm/pool-syscalls.sh` to count the system calls in between
//! under `strace -f`; first a control phase of exactly 1000 `sched_yield` calls.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use uvfio::dma::{DmaPool, SlotAllocator};
use uvfio::{Container, DmaOptions};

#[path = "support/free_list.rs"]
mod free_list;
use free_list::{pairs, FreeList, MutexFreeList, MutexFreeListWithArc, Pool, SlotsWithArc};

const CAPACITY: u32 = 4096;
/// Slots kept taken while measuring, as in a running driver.
const HELD: usize = 64;
const THREADS: [usize; 4] = [1, 2, 4, 8];

/// `threads` threads each doing `per_thread` alloc+free pairs on `list` at once; the time from
/// the common start to the last thread's end (thread creation and exit not included).
fn run_threads<F: FreeList>(list: &F, threads: usize, per_thread: u64) -> Duration {
    let ready = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    let (ready, go) = (&ready, &go);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    pairs(list, per_thread);
                    Instant::now()
                })
            })
            .collect();
        while ready.load(Ordering::Acquire) < threads {
            std::thread::yield_now();
        }
        let start = Instant::now();
        go.store(true, Ordering::Release);
        let end = workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .max()
            .expect("at least one thread");
        end - start
    })
}

/// Takes `HELD` slots, runs `f`, gives them back.
fn with_some_held<F: FreeList, R>(list: &F, f: impl FnOnce() -> R) -> R {
    let held: Vec<_> = (0..HELD).map(|_| list.take().expect("a slot")).collect();
    let r = f();
    for h in held {
        list.give(h);
    }
    r
}

fn bench_single(c: &mut Criterion, lock_free: &SlotAllocator, mutex: &MutexFreeList) {
    let mut g = c.benchmark_group("slot_alloc_free");
    g.throughput(Throughput::Elements(1));
    bench_side(&mut g, "mutex_vec", mutex);
    bench_side(&mut g, "lock_free", lock_free);
    // What DmaPool::alloc and dropping a PoolBuffer do on top of the free list: clone and drop
    // the pool's Arc. On each side.
    bench_side(
        &mut g,
        "mutex_vec_with_arc",
        &MutexFreeListWithArc::new(CAPACITY),
    );
    bench_side(&mut g, "lock_free_with_arc", &SlotsWithArc::new(CAPACITY));
    g.finish();
}

/// One side's alloc+free, with `HELD` slots taken meanwhile.
fn bench_side<F: FreeList>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, list: &F) {
    with_some_held(list, || {
        g.bench_function(name, |b| {
            b.iter(|| {
                let held = list.take().expect("a free slot");
                list.give(black_box(held));
            })
        });
    });
}

fn bench_threads(c: &mut Criterion, lock_free: &SlotAllocator, mutex: &MutexFreeList) {
    let mut g = c.benchmark_group("slot_threads");
    for threads in THREADS {
        // One element per thread and iteration: criterion's rate is the total of all threads.
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_with_input(BenchmarkId::new("mutex_vec", threads), &threads, |b, &t| {
            b.iter_custom(|n| run_threads(mutex, t, n))
        });
        g.bench_with_input(BenchmarkId::new("lock_free", threads), &threads, |b, &t| {
            b.iter_custom(|n| run_threads(lock_free, t, n))
        });
    }
    g.finish();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `rounds` rounds; in each both sides run `op` (alternating which goes first) and the ratio
/// mutex time / lock-free time is kept. Returns (median mutex ns, median lock-free ns,
/// median, min, max of the ratios), times per unit of `units`.
fn paired(rounds: usize, units: f64, mut op: impl FnMut(bool) -> Duration) -> [f64; 5] {
    let (mut m, mut l, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (tm, tl) = if round % 2 == 0 {
            let tm = op(false);
            (tm, op(true))
        } else {
            let tl = op(true);
            (op(false), tl)
        };
        m.push(tm.as_secs_f64() * 1e9 / units);
        l.push(tl.as_secs_f64() * 1e9 / units);
        r.push(tm.as_secs_f64() / tl.as_secs_f64());
    }
    let (min, max) = r
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    [median(&mut m), median(&mut l), median(&mut r), min, max]
}

fn summary(lock_free: &SlotAllocator, mutex: &MutexFreeList) {
    const N: u64 = 200_000;
    let [m, l, r, min, max] = paired(41, N as f64, |lf| {
        let t = Instant::now();
        if lf {
            with_some_held(lock_free, || pairs(lock_free, N));
        } else {
            with_some_held(mutex, || pairs(mutex, N));
        }
        t.elapsed()
    });
    println!(
        "summary alloc+free, one thread, 41 paired rounds of {N}: mutex_vec {m:.2} ns, \
         lock_free {l:.2} ns; speed-up {r:.2}x (min {min:.2}, max {max:.2}; target >= 1.5)"
    );
    let (mutex_arc, slots_arc) = (
        MutexFreeListWithArc::new(CAPACITY),
        SlotsWithArc::new(CAPACITY),
    );
    let [m, l, r, min, max] = paired(41, N as f64, |lf| {
        let t = Instant::now();
        if lf {
            with_some_held(&slots_arc, || pairs(&slots_arc, N));
        } else {
            with_some_held(&mutex_arc, || pairs(&mutex_arc, N));
        }
        t.elapsed()
    });
    println!(
        "summary alloc+free with the PoolBuffer's Arc, one thread, 41 paired rounds of {N}: \
         mutex_vec_with_arc {m:.2} ns, lock_free_with_arc {l:.2} ns; speed-up {r:.2}x (min \
         {min:.2}, max {max:.2})"
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    for threads in THREADS {
        let per_thread = 1_000_000 / threads as u64;
        let ops = (per_thread * threads as u64) as f64;
        let [m, l, r, min, max] = paired(15, ops, |lf| {
            if lf {
                run_threads(lock_free, threads, per_thread)
            } else {
                run_threads(mutex, threads, per_thread)
            }
        });
        println!(
            "summary {threads} thread(s) on {cores} core(s), 15 paired rounds: total \
             mutex_vec {:.1} M/s, lock_free {:.1} M/s; speed-up {r:.2}x (min {min:.2}, max \
             {max:.2})",
            1e3 / m,
            1e3 / l
        );
    }
}

/// The device's container, or `None` outside the VM.
fn container() -> Option<Container> {
    let addr = std::env::var("UVFIO_BENCH_DEVICE")
        .or_else(|_| std::env::var("UVFIO_TEST_EDU"))
        .ok()?;
    let container = Container::new().ok()?;
    let device = container
        .open_pci_device(&addr.parse().expect("a PCI address like 0000:00:01.0"))
        .ok()?;
    // The device is not needed once its group holds the container's IOMMU.
    std::mem::forget(device);
    Some(container)
}

/// Writes `line` to stderr in one system call (`eprintln!` may make one per piece), a marker
/// for `tests/vm/pool-syscalls.sh`.
fn mark(line: String) {
    use std::io::Write;
    std::io::stderr()
        .write_all(format!("{line}\n").as_bytes())
        .expect("stderr");
}

/// One phase of the syscall count: `n` pairs on one thread, then `n` spread over 2 threads.
/// The threads are started before the begin marker and exit after the end marker, waiting in
/// between by spinning (no system call), so that only the pairs run between the markers.
fn syscall_phases<F: FreeList>(name: &str, list: &F, n: u64) {
    with_some_held(list, || {
        pairs(list, 1000); // steady state: everything touched once
        mark(format!("uvfio-syscalls-begin {name} 1-thread {n}"));
        pairs(list, n);
        mark(format!("uvfio-syscalls-end {name} 1-thread"));
        let (ready, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (go, leave) = (AtomicBool::new(false), AtomicBool::new(false));
        let spin_until = |flag: &AtomicBool| {
            while !flag.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        ready.fetch_add(1, Ordering::AcqRel);
                        spin_until(&go);
                        pairs(list, n / 2);
                        done.fetch_add(1, Ordering::AcqRel);
                        spin_until(&leave);
                    })
                })
                .collect();
            while ready.load(Ordering::Acquire) < 2 {
                std::thread::yield_now();
            }
            mark(format!(
                "uvfio-syscalls-begin {name} 2-threads {}",
                n / 2 * 2
            ));
            go.store(true, Ordering::Release);
            while done.load(Ordering::Acquire) < 2 {
                std::hint::spin_loop();
            }
            mark(format!("uvfio-syscalls-end {name} 2-threads"));
            leave.store(true, Ordering::Release);
            // Joined here, not by the scope: the scope's own wait ends before the threads have
            // left the kernel, whose exit calls would then land in the next phase.
            for w in workers {
                w.join().expect("worker");
            }
        });
    });
}

fn count_syscalls(n: u64) {
    // The control: exactly 1000 system calls (sched_yield) between two markers, which the
    // script must count as 1000, or its count is not to be trusted.
    mark("uvfio-syscalls-begin control 1-thread 1000".into());
    for _ in 0..1000 {
        std::thread::yield_now();
    }
    mark("uvfio-syscalls-end control 1-thread".into());
    match container() {
        Some(container) => {
            let pool =
                DmaPool::new(&container, 2048, CAPACITY as usize, DmaOptions::new()).expect("pool");
            syscall_phases("DmaPool", &Pool(pool), n);
        }
        None => syscall_phases("SlotAllocator", &SlotAllocator::new(CAPACITY), n),
    }
    syscall_phases("mutex_vec", &MutexFreeList::new(CAPACITY), n);
}

fn main() {
    if let Ok(n) = std::env::var("UVFIO_POOL_SYSCALLS") {
        count_syscalls(n.parse().expect("UVFIO_POOL_SYSCALLS=<count>"));
        return;
    }
    let lock_free = SlotAllocator::new(CAPACITY);
    let mutex = MutexFreeList::new(CAPACITY);
    let mut c = Criterion::default().configure_from_args();
    bench_single(&mut c, &lock_free, &mutex);
    bench_threads(&mut c, &lock_free, &mutex);
    c.final_summary();
    summary(&lock_free, &mutex);
    assert_eq!(lock_free.available(), CAPACITY as usize);
}
