//! A u32 register read and write through a uvfio mapping, against a raw volatile pointer into
//! the same mapping and against `pread`/`pwrite` (uvfio's fallback path), in one run.
//!
//! It needs a real BAR, so it runs in the emulated IOMMU host:
//!
//! ```text
//! tests/vm/cargo-vm bench --bench mmio -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The device is the e1000e of `UVFIO_TEST_E1000E_A` (or the PCI address in
//! `UVFIO_BENCH_DEVICE`); the registers are STATUS (0x8, read) and TDBAL (0x3800, written;
//! harmless while transmit is off). Without a device the benchmark says so and exits.
//!
//! After criterion, an interleaved run of the three paths prints the ratios directly: the
//! mapped path must cost the same as the raw pointer (ratio at most 1.05).

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use uvfio::device::RegionIndex;
use uvfio::mmio::{MapOptions, Region};
use uvfio::Container;

const STATUS: u64 = 0x8;
const TDBAL: u64 = 0x3800;

struct Paths {
    mapped: Region,
    slow: Region,
    raw_status: *const u32,
    raw_tdbal: *mut u32,
}

fn setup(addr: &str) -> uvfio::Result<Paths> {
    let container = Container::new()?;
    let address = addr.parse().expect("a PCI address like 0000:00:04.0");
    let device = container.open_pci_device(&address)?;
    device.pci_config()?.enable_memory_space()?;
    let mapped = device.region(RegionIndex::BAR0)?;
    let slow = device.region_with(RegionIndex::BAR0, MapOptions::new().never_map())?;
    let raw_status = mapped
        .mapped_ptr(STATUS)
        .expect("STATUS is mapped")
        .cast::<u32>();
    let raw_tdbal = mapped
        .mapped_ptr(TDBAL)
        .expect("TDBAL is mapped")
        .cast::<u32>();
    Ok(Paths {
        mapped,
        slow,
        raw_status,
        raw_tdbal,
    })
}

fn raw_read(p: *const u32) -> u32 {
    // SAFETY: `p` points at a 4-byte aligned register inside the live BAR0 mapping of
    // `Paths::mapped`, which outlives every use; volatile, no reference created.
    unsafe { p.read_volatile() }
}

fn raw_write(p: *mut u32, v: u32) {
    // SAFETY: as in `raw_read`.
    unsafe { p.write_volatile(v) }
}

/// Runs `f` `n` times and returns the mean time per call, in nanoseconds.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// One loop per path, each its own function, so each gets the same clean register allocation.

#[inline(never)]
fn loop_mapped_read(r: &Region, n: u32) -> f64 {
    time(n, || {
        black_box(r.read_u32(black_box(STATUS)).unwrap());
    })
}

#[inline(never)]
fn loop_raw_read(p: *const u32, n: u32) -> f64 {
    time(n, || {
        black_box(raw_read(black_box(p)));
    })
}

#[inline(never)]
fn loop_mapped_write(r: &Region, n: u32) -> f64 {
    time(n, || r.write_u32(black_box(TDBAL), black_box(0)).unwrap())
}

#[inline(never)]
fn loop_raw_write(p: *mut u32, n: u32) -> f64 {
    time(n, || raw_write(black_box(p), black_box(0)))
}

/// Many short interleaved batches of the three paths, alternating which goes first, so that
/// all see the same machine state. Under TCG on a shared host the noise is large and only ever
/// adds time, so the fastest batch of each path is the best estimate of its cost; the median of
/// the per-batch ratios is printed too.
fn interleaved(p: &Paths) {
    const ROUNDS: usize = 401;
    const N: u32 = 1000;
    for (what, slow_what) in [("read_u32", "pread"), ("write_u32", "pwrite")] {
        let read = what == "read_u32";
        let m = || {
            if read {
                loop_mapped_read(&p.mapped, N)
            } else {
                loop_mapped_write(&p.mapped, N)
            }
        };
        let r = || {
            if read {
                loop_raw_read(p.raw_status, N)
            } else {
                loop_raw_write(p.raw_tdbal, N)
            }
        };
        let (mut mapped, mut raw, mut slow, mut ratio) = (vec![], vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            let (tm, tr) = if round % 2 == 0 {
                let tm = m();
                (tm, r())
            } else {
                let tr = r();
                (m(), tr)
            };
            if round % 8 == 0 {
                slow.push(if read {
                    loop_mapped_read(&p.slow, N / 10)
                } else {
                    loop_mapped_write(&p.slow, N / 10)
                });
            }
            mapped.push(tm);
            raw.push(tr);
            ratio.push(tm / tr);
        }
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (m_min, r_min, s_min) = (min(&mapped), min(&raw), min(&slow));
        println!(
            "interleaved {what}: fastest of {ROUNDS} batches of {N}: uvfio mapped {m_min:.1} ns, \
             raw volatile {r_min:.1} ns, {slow_what} {s_min:.1} ns; mapped/raw = {:.3}, \
             {slow_what}/raw = {:.1}; medians {:.1} / {:.1} / {:.1} ns, median per-batch \
             mapped/raw = {:.3}",
            m_min / r_min,
            s_min / r_min,
            median(&mut mapped),
            median(&mut raw),
            median(&mut slow),
            median(&mut ratio),
        );
    }
}

fn main() {
    let addr = std::env::var("UVFIO_BENCH_DEVICE")
        .or_else(|_| std::env::var("UVFIO_TEST_E1000E_A"))
        .ok();
    let Some(addr) = addr else {
        eprintln!(
            "mmio bench: no device (UVFIO_TEST_E1000E_A / UVFIO_BENCH_DEVICE); run it in the \
             emulated IOMMU host: tests/vm/cargo-vm bench --bench mmio"
        );
        return;
    };
    let paths = match setup(&addr) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mmio bench: cannot open {addr}: {e}");
            std::process::exit(1);
        }
    };
    let p = &paths;
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("read_u32");
        g.bench_function("uvfio_mapped", |b| {
            b.iter(|| p.mapped.read_u32(black_box(STATUS)).unwrap())
        });
        g.bench_function("raw_volatile", |b| {
            b.iter(|| raw_read(black_box(p.raw_status)))
        });
        g.bench_function("pread", |b| {
            b.iter(|| p.slow.read_u32(black_box(STATUS)).unwrap())
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("write_u32");
        g.bench_function("uvfio_mapped", |b| {
            b.iter(|| p.mapped.write_u32(black_box(TDBAL), black_box(0)).unwrap())
        });
        g.bench_function("raw_volatile", |b| {
            b.iter(|| raw_write(black_box(p.raw_tdbal), black_box(0)))
        });
        g.bench_function("pwrite", |b| {
            b.iter(|| p.slow.write_u32(black_box(TDBAL), black_box(0)).unwrap())
        });
        g.finish();
    }
    c.final_summary();
    interleaved(p);
}
