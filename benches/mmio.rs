//! A u32 register read and write through a uvfio mapping, against a raw volatile pointer into
//! the same mapping and against `pread`/`pwrite` (uvfio's fallback path), on every device of
//! the emulated IOMMU host that has a memory BAR, in one run.
//!
//! It needs real BARs, so it runs in the emulated IOMMU host:
//!
//! ```text
//! tests/vm/cargo-vm bench --bench mmio -- --warm-up-time 1 --measurement-time 3
//! tests/vm/bench-boots.sh --boots 5      # with dma and irq, median / min / max over 5 boots
//! ```
//!
//! The devices and registers (BAR0 of each; the writes are harmless in the state vfio-pci
//! hands the devices over in):
//!
//! | device | env | read | write |
//! |---|---|---|---|
//! | edu | `UVFIO_TEST_EDU` | 0x00 identification | 0x04 liveness check |
//! | e1000 | `UVFIO_TEST_E1000_A` | 0x08 STATUS | 0x3800 TDBAL (transmit is off) |
//! | e1000e | `UVFIO_TEST_E1000E_A` | 0x08 STATUS | 0x3800 TDBAL (transmit is off) |
//! | nvme | `UVFIO_TEST_NVME` | 0x1c CSTS | 0x28 ASQ (the controller is disabled) |
//!
//! `UVFIO_BENCH_DEVICES=edu,nvme` limits the run to some of them; a device whose variable is
//! unset is skipped, saying so, and without any device the benchmark says so and exits.
//!
//! After criterion, paired rounds of the three paths (`ROUNDS` batches of `BATCH` accesses per
//! path, alternating which goes first) print the ratios directly, as `result` lines that
//! `tests/vm/bench-boots.sh` collects over boots: the per-round ratio mapped/raw, its median
//! over the rounds, must stay at or below 1.05. The `Register` rows are a
//! [`uvfio::mmio::Register`], checked once when made; `Region` rows check every access.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use uvfio::device::RegionIndex;
use uvfio::mmio::{MapOptions, Region, Register};
use uvfio::{Container, Device};

/// One device of the run: where it is and which registers the loops touch.
struct Target {
    name: &'static str,
    env: &'static str,
    read: u64,
    write: u64,
}

const TARGETS: [Target; 4] = [
    Target {
        name: "edu",
        env: "UVFIO_TEST_EDU",
        read: 0x00,
        write: 0x04,
    },
    Target {
        name: "e1000",
        env: "UVFIO_TEST_E1000_A",
        read: 0x08,
        write: 0x3800,
    },
    Target {
        name: "e1000e",
        env: "UVFIO_TEST_E1000E_A",
        read: 0x08,
        write: 0x3800,
    },
    Target {
        name: "nvme",
        env: "UVFIO_TEST_NVME",
        read: 0x1c,
        write: 0x28,
    },
];

/// Batches per path in the paired rounds.
const ROUNDS: usize = 301;
/// Accesses per batch.
const BATCH: u32 = 1000;

/// The paths to one device's two registers.
struct Paths {
    name: &'static str,
    read: u64,
    write: u64,
    mapped: Region,
    slow: Region,
    raw_read: *const u32,
    raw_write: *mut u32,
    _device: Device,
}

fn setup(container: &Container, t: &Target, addr: &str) -> Result<Paths, String> {
    let address = addr
        .parse()
        .map_err(|e| format!("{}={addr:?}: {e}", t.env))?;
    let device = container
        .open_pci_device(&address)
        .map_err(|e| e.to_string())?;
    device
        .pci_config()
        .and_then(|c| c.enable_memory_space())
        .map_err(|e| e.to_string())?;
    let mapped = device
        .region(RegionIndex::BAR0)
        .map_err(|e| e.to_string())?;
    let slow = device
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .map_err(|e| e.to_string())?;
    let ptr = |offset: u64| {
        mapped
            .mapped_ptr(offset)
            .ok_or_else(|| format!("{}: BAR0 offset {offset:#x} is not mapped", t.name))
    };
    let raw_read = ptr(t.read)?.cast::<u32>().cast_const();
    let raw_write = ptr(t.write)?.cast::<u32>();
    Ok(Paths {
        name: t.name,
        read: t.read,
        write: t.write,
        mapped,
        slow,
        raw_read,
        raw_write,
        _device: device,
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
fn loop_region_read(r: &Region, offset: u64, n: u32) -> f64 {
    time(n, || {
        black_box(r.read_u32(black_box(offset)).unwrap());
    })
}

#[inline(never)]
fn loop_register_read(r: &Register<'_, u32>, n: u32) -> f64 {
    time(n, || {
        black_box(black_box(r).read());
    })
}

#[inline(never)]
fn loop_raw_read(p: *const u32, n: u32) -> f64 {
    time(n, || {
        black_box(raw_read(black_box(p)));
    })
}

#[inline(never)]
fn loop_region_write(r: &Region, offset: u64, v: u32, n: u32) -> f64 {
    time(n, || {
        r.write_u32(black_box(offset), black_box(v)).unwrap();
    })
}

#[inline(never)]
fn loop_register_write(r: &Register<'_, u32>, v: u32, n: u32) -> f64 {
    time(n, || black_box(r).write(black_box(v)))
}

#[inline(never)]
fn loop_raw_write(p: *mut u32, v: u32, n: u32) -> f64 {
    time(n, || raw_write(black_box(p), black_box(v)))
}

/// The paired rounds of one device and direction: `Region`, `Register` and raw pointer in
/// rotating order, and every eighth round the `pread`/`pwrite` path.
fn paired(p: &Paths, write: bool) -> uvfio::Result<()> {
    let (what, slow_what) = if write {
        ("write", "pwrite")
    } else {
        ("read", "pread")
    };
    let reg_read = p.mapped.register_u32(p.read)?;
    let reg_write = p.mapped.register_u32(p.write)?;
    let region = || {
        if write {
            loop_region_write(&p.mapped, p.write, 0, BATCH)
        } else {
            loop_region_read(&p.mapped, p.read, BATCH)
        }
    };
    let register = || {
        if write {
            loop_register_write(&reg_write, 0, BATCH)
        } else {
            loop_register_read(&reg_read, BATCH)
        }
    };
    let raw = || {
        if write {
            loop_raw_write(p.raw_write, 0, BATCH)
        } else {
            loop_raw_read(p.raw_read, BATCH)
        }
    };
    let mut t: [Vec<f64>; 3] = Default::default();
    let (mut slow, mut r_region, mut r_register) = (vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut one = [0.0; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            one[which] = match which {
                0 => region(),
                1 => register(),
                _ => raw(),
            };
        }
        if round % 8 == 0 {
            slow.push(if write {
                loop_region_write(&p.slow, p.write, 0, BATCH / 10)
            } else {
                loop_region_read(&p.slow, p.read, BATCH / 10)
            });
        }
        r_region.push(one[0] / one[2]);
        r_register.push(one[1] / one[2]);
        for k in 0..3 {
            t[k].push(one[k]);
        }
    }
    let name = p.name;
    let [region_ns, register_ns, raw_ns] = t.map(|mut v| median(&mut v));
    let slow_ns = median(&mut slow);
    let (rr, rg) = (median(&mut r_region), median(&mut r_register));
    println!(
        "paired {name} {what}_u32, {ROUNDS} rounds of {BATCH}: Region {region_ns:.1} ns, \
         Register {register_ns:.1} ns, raw volatile {raw_ns:.1} ns, {slow_what} \
         {slow_ns:.1} ns; median per-round Region/raw {rr:.3}, Register/raw {rg:.3}"
    );
    println!("result mmio/{name}/{what}/raw_ns {raw_ns:.2}");
    println!("result mmio/{name}/{what}/region_ns {region_ns:.2}");
    println!("result mmio/{name}/{what}/{slow_what}_ns {slow_ns:.1}");
    println!("result mmio/{name}/{what}/region_over_raw {rr:.4}");
    println!("result mmio/{name}/{what}/register_over_raw {rg:.4}");
    Ok(())
}

fn criterion_groups(c: &mut Criterion, p: &Paths) -> uvfio::Result<()> {
    let reg_read = p.mapped.register_u32(p.read)?;
    let reg_write = p.mapped.register_u32(p.write)?;
    let mut g = c.benchmark_group(format!("{}/read_u32", p.name));
    g.bench_function("region", |b| {
        b.iter(|| p.mapped.read_u32(black_box(p.read)).unwrap())
    });
    g.bench_function("register", |b| b.iter(|| black_box(&reg_read).read()));
    g.bench_function("raw_volatile", |b| {
        b.iter(|| raw_read(black_box(p.raw_read)))
    });
    g.bench_function("pread", |b| {
        b.iter(|| p.slow.read_u32(black_box(p.read)).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group(format!("{}/write_u32", p.name));
    g.bench_function("region", |b| {
        b.iter(|| {
            p.mapped
                .write_u32(black_box(p.write), black_box(0))
                .unwrap()
        })
    });
    g.bench_function("register", |b| {
        b.iter(|| black_box(&reg_write).write(black_box(0)))
    });
    g.bench_function("raw_volatile", |b| {
        b.iter(|| raw_write(black_box(p.raw_write), black_box(0)))
    });
    g.bench_function("pwrite", |b| {
        b.iter(|| p.slow.write_u32(black_box(p.write), black_box(0)).unwrap())
    });
    g.finish();
    Ok(())
}

fn main() {
    let only = std::env::var("UVFIO_BENCH_DEVICES").ok();
    let container = match Container::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "mmio bench: no VFIO here ({e}); run it in the emulated IOMMU host: \
                 tests/vm/cargo-vm bench --bench mmio"
            );
            return;
        }
    };
    let mut devices = Vec::new();
    for t in &TARGETS {
        if let Some(only) = &only {
            if !only.split(',').any(|n| n.trim() == t.name) {
                continue;
            }
        }
        let Ok(addr) = std::env::var(t.env) else {
            println!("mmio bench: skipped {}: {} is not set", t.name, t.env);
            continue;
        };
        match setup(&container, t, &addr) {
            Ok(p) => devices.push(p),
            Err(e) => {
                eprintln!("mmio bench: cannot open {} at {addr}: {e}", t.name);
                std::process::exit(1);
            }
        }
    }
    if devices.is_empty() {
        eprintln!(
            "mmio bench: no device (UVFIO_TEST_EDU, _E1000_A, _E1000E_A, _NVME); run it in the \
             emulated IOMMU host: tests/vm/cargo-vm bench --bench mmio"
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for p in &devices {
        if let Err(e) = criterion_groups(&mut c, p) {
            eprintln!("mmio bench: {}: {e}", p.name);
            std::process::exit(1);
        }
    }
    c.final_summary();
    for p in &devices {
        for write in [false, true] {
            if let Err(e) = paired(p, write) {
                eprintln!("mmio bench: {}: {e}", p.name);
                std::process::exit(1);
            }
        }
    }
}
