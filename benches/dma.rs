//! DMA benchmarks: the IOVA allocator (anywhere), and, in the emulated IOMMU host, map+unmap
//! against raw ioctls, `DmaPool` alloc+free against a `Mutex<Vec<u32>>` free list, and 512 MiB
//! of huge pages mapped with one ioctl against one per page. Every uvfio figure has its
//! baseline in the same criterion group; the pool's free list alone, with thread scaling, is
//! `benches/pool.rs`.
//!
//! ```text
//! # everything, in the VM (the huge page part needs the memory and the reservation):
//! UVFIO_VM_MEM=2G UVFIO_VM_CMDLINE="hugepages=300" \
//!     tests/vm/cargo-vm bench --bench dma -- --warm-up-time 1 --measurement-time 3
//! # the pure parts on the host (the rest says it is skipped):
//! cargo bench --bench dma -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The device is the edu of `UVFIO_TEST_EDU` (or the PCI address in `UVFIO_BENCH_DEVICE`);
//! no DMA is started, it only provides a group for the container. After criterion, an
//! interleaved run prints the ratios and rates the acceptance criteria are about.

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use uvfio::dma::{AddressLimit, DmaAccess, DmaBuffer, DmaPool, IovaAllocator};
use uvfio::iommu::{DmaRun, IovaRange};
use uvfio::uapi::vfio;
use uvfio::{Container, DmaOptions};

#[path = "support/first_fit.rs"]
mod first_fit;
use first_fit::FirstFit;
#[path = "support/free_list.rs"]
mod free_list;
use free_list::{pairs, FreeList, MutexFreeList, MutexFreeListWithArc, Pool};

const PAGE: u64 = 4096;
const HUGE: u64 = 2 << 20;
const HUGE_TOTAL: u64 = 512 << 20;
/// Alloc+frees per side and round in the pool's paired rounds.
const POOL_PAIRS: u64 = 100_000;

/// x86's valid IOVA ranges with a 39-bit IOMMU.
fn x86_ranges() -> [IovaRange; 2] {
    [
        IovaRange {
            start: 0,
            end: 0xfedf_ffff,
        },
        IovaRange {
            start: 0xfef0_0000,
            end: (1 << 39) - 1,
        },
    ]
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// 4, 8, 16 or 64 KiB.
    fn size(&mut self) -> u64 {
        [PAGE, 2 * PAGE, 4 * PAGE, 16 * PAGE][(self.next() % 4) as usize]
    }
}

/// An allocator with `live` blocks of mixed sizes, fragmented (every other one of twice as
/// many freed).
fn populated(live: usize) -> IovaAllocator {
    let mut a = IovaAllocator::new(&x86_ranges(), PAGE).expect("allocator");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut blocks = Vec::with_capacity(2 * live);
    for _ in 0..2 * live {
        blocks.push(a.allocate(rng.size(), AddressLimit::NONE).expect("space"));
    }
    // Every other block is freed; the rest stay allocated for the whole benchmark (dropping
    // an IovaBlock keeps its space allocated).
    for b in blocks.into_iter().step_by(2) {
        a.free(b).expect("free");
    }
    assert_eq!(a.stats().allocations, live);
    a
}

/// The baseline with the same `live` blocks as [`populated`] (same sizes, same frees).
fn populated_first_fit(live: usize) -> FirstFit {
    let mut a = FirstFit::new(1 << 39, PAGE);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut blocks = Vec::with_capacity(2 * live);
    for _ in 0..2 * live {
        let size = rng.size();
        blocks.push((a.allocate(size).expect("space"), size));
    }
    for &(at, size) in blocks.iter().step_by(2) {
        a.free(at, size);
    }
    a
}

fn bench_allocator(c: &mut Criterion) {
    let mut g = c.benchmark_group("iova_alloc_free");
    for live in [1_000usize, 10_000, 100_000] {
        let mut a = populated(live);
        let mut rng = Rng(42);
        g.bench_with_input(BenchmarkId::new("uvfio", live), &live, |b, _| {
            b.iter(|| {
                let block = a.allocate(rng.size(), AddressLimit::NONE).expect("space");
                a.free(black_box(block)).expect("free");
            })
        });
        let mut f = populated_first_fit(live);
        let mut rng = Rng(42);
        g.bench_with_input(
            BenchmarkId::new("btreemap_first_fit", live),
            &live,
            |b, _| {
                b.iter(|| {
                    let size = rng.size();
                    let at = f.allocate(size).expect("space");
                    f.free(black_box(at), size);
                })
            },
        );
    }
    g.finish();
}

/// The device's container, or `None` (with a note) outside the VM.
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

/// Owned anonymous memory for the raw paths.
struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Pages {
    fn new(len: usize, huge: bool) -> Option<Pages> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        if huge {
            flags |= libc::MAP_HUGETLB | libc::MAP_HUGE_2MB;
        }
        // SAFETY: a fresh private anonymous mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Pages {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the benchmark's own mapping; every IOMMU mapping of it is gone by now.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Runs `a` and `b` alternately `n` times each; returns the time spent in each.
fn interleaved(n: u64, a: &dyn Fn(), b: &dyn Fn()) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        a();
        ta += t.elapsed();
        let t = Instant::now();
        b();
        tb += t.elapsed();
    }
    (ta, tb)
}

/// `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` by hand: the baseline.
fn raw_map_unmap(fd: i32, vaddr: *mut u8, iova: u64, size: u64) {
    let mut map = vfio::vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<vfio::vfio_iommu_type1_dma_map>() as u32,
        flags: vfio::VFIO_DMA_MAP_FLAG_READ | vfio::VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: vaddr as u64,
        iova,
        size,
    };
    // SAFETY: the memory outlives the mapping, which is removed right below.
    let r = unsafe { libc::ioctl(fd, vfio::VFIO_IOMMU_MAP_DMA, &mut map) };
    assert_eq!(r, 0, "raw map: {}", std::io::Error::last_os_error());
    let mut unmap = vfio::vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<vfio::vfio_iommu_type1_dma_unmap>() as u32,
        flags: 0,
        iova,
        size,
    };
    // SAFETY: a plain unmap request.
    let r = unsafe { libc::ioctl(fd, vfio::VFIO_IOMMU_UNMAP_DMA, &mut unmap) };
    assert_eq!(r, 0, "raw unmap: {}", std::io::Error::last_os_error());
}

fn uvfio_map_unmap(c: &Container, vaddr: *mut u8, iova: u64, size: u64) {
    // SAFETY: the memory outlives the mapping, which is removed right below.
    unsafe { c.map_dma_raw(vaddr, iova, size, DmaAccess::ReadWrite) }.expect("map");
    c.unmap_dma(iova, size).expect("unmap");
}

fn bench_device(c: &mut Criterion, container: &Container) {
    let page = Pages::new(PAGE as usize, false).expect("a page");
    let spot = container
        .allocate_iova(PAGE, AddressLimit::NONE)
        .expect("an IOVA");
    let fd = container.as_raw_fd();
    let mut g = c.benchmark_group("map_unmap_4k");
    // The two paths run alternately inside every sample, each timing only its own calls, so
    // that both see the same conditions (the emulated host drifts a lot between samples).
    let raw = || raw_map_unmap(fd, page.ptr, spot.start(), PAGE);
    let ours = || uvfio_map_unmap(container, page.ptr, spot.start(), PAGE);
    g.bench_function("raw_ioctl", |b| {
        b.iter_custom(|n| interleaved(n, &raw, &ours).0)
    });
    g.bench_function("uvfio", |b| {
        b.iter_custom(|n| interleaved(n, &raw, &ours).1)
    });
    g.bench_function("raw_mmap_ioctl_munmap", |b| {
        b.iter(|| {
            let p = Pages::new(PAGE as usize, false).expect("a page");
            raw_map_unmap(fd, p.ptr, spot.start(), PAGE);
        })
    });
    g.bench_function("dma_buffer", |b| {
        b.iter(|| black_box(DmaBuffer::new(container, PAGE as usize).expect("buffer")))
    });
    g.finish();

    // DmaPool::alloc + dropping the PoolBuffer beside the baseline free list, bare and with
    // the Arc clone and drop a PoolBuffer makes on top of its free list; the same loop for each.
    let pool = Pool(DmaPool::new(container, 2048, 4096, DmaOptions::new()).expect("pool"));
    let before = container.dma_stats();
    let mut g = c.benchmark_group("pool_alloc_free");
    bench_pair(&mut g, "mutex_vec", &MutexFreeList::new(4096));
    bench_pair(
        &mut g,
        "mutex_vec_with_arc",
        &MutexFreeListWithArc::new(4096),
    );
    bench_pair(&mut g, "dma_pool", &pool);
    g.finish();
    let after = container.dma_stats();
    let ioctls =
        (after.map_ioctls - before.map_ioctls) + (after.unmap_ioctls - before.unmap_ioctls);
    println!("pool_alloc_free/dma_pool: {ioctls} map/unmap ioctls during the benchmark");
    assert_eq!(ioctls, 0, "the pool made ioctls after warm-up");
}

fn bench_pair<F: FreeList>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, list: &F) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let held = list.take().expect("a free slot");
            list.give(black_box(held));
        })
    });
}

/// `N` alloc+frees of `list`, timed.
fn time_pairs<F: FreeList>(list: &F) -> f64 {
    let t = Instant::now();
    pairs(list, POOL_PAIRS);
    t.elapsed().as_secs_f64()
}

/// 512 MiB of 2 MiB huge pages: one ioctl per contiguous run (here 1) against one per page.
fn bench_huge(c: &mut Criterion, container: &Container) {
    let Some(mem) = Pages::new(HUGE_TOTAL as usize, true) else {
        println!(
            "huge_512m: skipped, 256 huge pages of 2 MiB are not available (run the VM with \
             UVFIO_VM_MEM=2G UVFIO_VM_CMDLINE=hugepages=300)"
        );
        return;
    };
    let spot = container
        .allocate_iova(HUGE_TOTAL, AddressLimit::NONE)
        .expect("512 MiB of IOVA");
    let runs: Vec<DmaRun> = (0..HUGE_TOTAL / HUGE)
        .map(|i| DmaRun {
            vaddr: mem.ptr as usize + (i * HUGE) as usize,
            iova: spot.start() + i * HUGE,
            size: HUGE,
        })
        .collect();
    let mut g = c.benchmark_group("huge_512m");
    g.sample_size(10);
    g.bench_function("one_ioctl_per_run", |b| {
        b.iter(|| {
            // SAFETY: `mem` outlives the mapping, removed right below.
            let n = unsafe { container.map_dma_runs(&runs, DmaAccess::ReadWrite) }.expect("map");
            assert_eq!(n, 1);
            container
                .unmap_dma(spot.start(), HUGE_TOTAL)
                .expect("unmap");
        })
    });
    g.bench_function("per_page_loop", |b| {
        b.iter(|| {
            for r in &runs {
                // SAFETY: as above.
                unsafe {
                    container.map_dma_raw(
                        r.vaddr as *const u8,
                        r.iova,
                        r.size,
                        DmaAccess::ReadWrite,
                    )
                }
                .expect("map");
            }
            for r in &runs {
                container.unmap_dma(r.iova, r.size).expect("unmap");
            }
        })
    });
    g.finish();
    summary_huge(container, &runs, spot.start());
}

/// Paired rounds of the two map paths: per round, 200 map+unmaps each, in alternating order;
/// the median per-round ratio, and each side's median time.
fn summary_map(container: &Container) {
    const ROUNDS: usize = 41;
    const PER_ROUND: u32 = 200;
    let page = Pages::new(PAGE as usize, false).expect("a page");
    let spot = container
        .allocate_iova(PAGE, AddressLimit::NONE)
        .expect("an IOVA");
    let fd = container.as_raw_fd();
    let time_raw = || {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            raw_map_unmap(fd, page.ptr, spot.start(), PAGE);
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND)
    };
    let time_ours = || {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            uvfio_map_unmap(container, page.ptr, spot.start(), PAGE);
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND)
    };
    let (ours_us, raw_us, r) = paired_rounds(ROUNDS, time_ours, time_raw);
    println!(
        "summary map+unmap 4 KiB, {ROUNDS} paired rounds of {PER_ROUND}: raw {raw_us:.2} us, \
         uvfio {ours_us:.2} us, median per-round ratio {r:.3} (must be <= 1.05)"
    );
    println!("result dma/map_unmap_4k/raw_us {raw_us:.3}");
    println!("result dma/map_unmap_4k/uvfio_us {ours_us:.3}");
    println!("result dma/map_unmap_4k/uvfio_over_raw {r:.4}");

    summary_pool(container);
}

/// Paired rounds of `DmaPool` alloc+free against the baseline free list: per round, each side
/// runs `POOL_PAIRS` alloc+frees, in rotating order; the median, min and max of the per-round
/// ratios.
fn summary_pool(container: &Container) {
    const ROUNDS: usize = 21;
    let pool = Pool(DmaPool::new(container, 2048, 4096, DmaOptions::new()).expect("pool"));
    let mutex = MutexFreeList::new(4096);
    let with_arc = MutexFreeListWithArc::new(4096);
    let before = container.dma_stats();
    let mut secs: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..3 {
            let side = (round + k) % 3;
            secs[side].push(match side {
                0 => time_pairs(&mutex),
                1 => time_pairs(&with_arc),
                _ => time_pairs(&pool),
            });
        }
    }
    let after = container.dma_stats();
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let ns = |v: &Vec<f64>| stats(v.clone()).0 * 1e9 / POOL_PAIRS as f64;
    let ratio = |base: &Vec<f64>| stats(base.iter().zip(&secs[2]).map(|(b, p)| b / p).collect());
    let (r0, min0, max0) = ratio(&secs[0]);
    let (r1, min1, max1) = ratio(&secs[1]);
    println!(
        "summary DmaPool alloc+free, {ROUNDS} paired rounds of {POOL_PAIRS}: dma_pool {:.1} ns, \
         mutex_vec {:.1} ns, mutex_vec_with_arc {:.1} ns; speed-up over mutex_vec {r0:.2}x \
         ({min0:.2}-{max0:.2}), over mutex_vec_with_arc {r1:.2}x ({min1:.2}-{max1:.2}); {} ioctls",
        ns(&secs[2]),
        ns(&secs[0]),
        ns(&secs[1]),
        (after.map_ioctls - before.map_ioctls) + (after.unmap_ioctls - before.unmap_ioctls)
    );
    println!("result dma/pool/dma_pool_ns {:.2}", ns(&secs[2]));
    println!("result dma/pool/mutex_vec_ns {:.2}", ns(&secs[0]));
    println!("result dma/pool/speedup_over_mutex_vec {r0:.3}");
}

fn summary_huge(container: &Container, runs: &[DmaRun], start: u64) {
    let avail = |c: &Container| c.iommu_info().ok().and_then(|i| i.dma_avail());
    let before = avail(container);
    // SAFETY: the runs' memory outlives the mappings, removed below.
    unsafe { container.map_dma_runs(runs, DmaAccess::ReadWrite) }.expect("map");
    let coalesced = avail(container);
    container.unmap_dma(start, HUGE_TOTAL).expect("unmap");
    for r in runs {
        // SAFETY: as above.
        unsafe {
            container.map_dma_raw(r.vaddr as *const u8, r.iova, r.size, DmaAccess::ReadWrite)
        }
        .expect("map");
    }
    let per_page = avail(container);
    container.unmap_dma(start, HUGE_TOTAL).expect("unmap");
    let used = |after: Option<u32>| before.zip(after).map(|(b, a)| b - a);
    println!(
        "summary huge_512m: mapping entries used (dma_avail): coalesced {:?}, per page {:?}",
        used(coalesced),
        used(per_page)
    );
}

/// Paired rounds of the IOVA allocator against the first-fit baseline at 1k, 10k and 100k live
/// blocks: per round, `PER_ROUND` alloc+frees each, alternating which goes first.
fn summary_pure() {
    const ROUNDS: usize = 21;
    const PER_ROUND: u32 = 20_000;
    let mut per_op = Vec::new();
    for live in [1_000usize, 10_000, 100_000] {
        let mut a = populated(live);
        let mut f = populated_first_fit(live);
        let (mut ra, mut rf) = (Rng(7), Rng(7));
        let ours = || {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                let block = a.allocate(ra.size(), AddressLimit::NONE).expect("space");
                a.free(black_box(block)).expect("free");
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(PER_ROUND)
        };
        let base = || {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                let size = rf.size();
                let at = f.allocate(size).expect("space");
                f.free(black_box(at), size);
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(PER_ROUND)
        };
        let (o, b, r) = paired_rounds(ROUNDS, ours, base);
        println!(
            "summary IOVA alloc+free at {live} live, {ROUNDS} paired rounds of {PER_ROUND}: \
             uvfio {o:.0} ns, BTreeMap first fit {b:.0} ns, median per-round ratio {r:.3}"
        );
        println!("result dma/iova/{live}_live/uvfio_ns {o:.1}");
        println!("result dma/iova/{live}_live/first_fit_ns {b:.1}");
        println!("result dma/iova/{live}_live/uvfio_over_first_fit {r:.4}");
        per_op.push(o);
    }
    println!(
        "summary IOVA alloc+free: growth 1k -> 100k live {:.2}x (must be <= 2)",
        per_op[2] / per_op[0]
    );
    println!(
        "result dma/iova/growth_1k_to_100k {:.3}",
        per_op[2] / per_op[0]
    );
}

/// `rounds` paired rounds of two timed sides (each closure returns its time for one round),
/// alternating which goes first: the median time of `a`, of `b`, and of the per-round `a / b`.
fn paired_rounds(
    rounds: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (f64, f64, f64) {
    let (mut ta, mut tb, mut ratio) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    (median(&mut ta), median(&mut tb), median(&mut ratio))
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_allocator(&mut c);
    let device = container();
    match &device {
        Some(container) => {
            bench_device(&mut c, container);
            bench_huge(&mut c, container);
        }
        None => println!(
            "map_unmap_4k, pool, huge_512m: skipped, no device (UVFIO_TEST_EDU or \
             UVFIO_BENCH_DEVICE); run them with tests/vm/cargo-vm bench --bench dma"
        ),
    }
    c.final_summary();
    summary_pure();
    if let Some(container) = &device {
        summary_map(container);
    }
}
