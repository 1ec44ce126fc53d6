//! Big mappings (issue 15, item 6): 1 GiB of 2 MiB huge pages mapped for DMA in one ioctl
//! against the per-page baseline (one map and one unmap per 2 MiB page), on the legacy type1v2
//! container and on an iommufd IOAS (with its huge-page option on, the default, and off), all
//! in one run:
//!
//! | case | what one repetition does |
//! |---|---|
//! | `type1 one map` | `VFIO_IOMMU_MAP_DMA` of the whole GiB, then one `VFIO_IOMMU_UNMAP_DMA` |
//! | `type1 per 2 MiB page` | 512 maps of 2 MiB, then 512 unmaps (the baseline) |
//! | `ioas one map` | one `IOMMU_IOAS_MAP` of the GiB, one `IOMMU_IOAS_UNMAP` |
//! | `ioas one map, huge pages off` | the same with `IOMMU_OPTION_HUGE_PAGES` = 0 on the IOAS |
//! | `ioas per 2 MiB page` | 512 `IOMMU_IOAS_MAP`s, then 512 unmaps (the baseline) |
//!
//! Each side has a device attached (edu on the container, pci-testdev's cdev on the IOAS), so
//! the maps program the emulated VT-d. The cases run interleaved, one repetition of each per
//! round, and the table gives the median, min and max per case over the rounds and each
//! one-map case's ratio to its backend's per-page baseline. A repetition takes seconds under
//! TCG (it pins 262 144 base pages), so this is timed by hand, not by criterion.
//!
//! ```text
//! UVFIO_VM_FLAVOR=full UVFIO_VM_MEM=2G UVFIO_VM_CMDLINE="hugepages=520" \
//!   tests/vm/cargo-vm bench --bench bigmap
//! ```
//!
//! `UVFIO_BIGMAP_ROUNDS` (default 5) sets the rounds. Without the `full` flavour's devices and
//! iommufd, or without 512 free huge pages of 2 MiB, it prints why it is skipped and exits 0.

use std::time::{Duration, Instant};

use uvfio::dma::DmaAccess;
use uvfio::iommufd::{Ioas, Iommufd};
use uvfio::{Container, Device, IommuType};

const GIB: u64 = 1 << 30;
const HUGE: u64 = 2 << 20;
/// 1 GiB of IOVA at 1 GiB: inside VT-d's 39-bit space, clear of the MSI window.
const IOVA: u64 = 1 << 30;

/// 1 GiB of 2 MiB huge pages, populated, owned by the bench.
struct HugeGib(*mut u8);

impl HugeGib {
    fn new() -> Result<HugeGib, String> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                GIB as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_HUGETLB
                    | libc::MAP_HUGE_2MB
                    | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "1 GiB of 2 MiB huge pages: {} (reserve 512: UVFIO_VM_MEM=2G \
                 UVFIO_VM_CMDLINE=\"hugepages=520\")",
                std::io::Error::last_os_error()
            ));
        }
        Ok(HugeGib(ptr.cast()))
    }
}

impl Drop for HugeGib {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`; every DMA mapping of it is gone by then
        // (each case unmaps what it mapped, and the sides are dropped first: see `main`).
        unsafe { libc::munmap(self.0.cast(), GIB as usize) };
    }
}

struct Sides {
    ioas: Ioas,
    type1: Container,
    _devices: [Device; 2],
    _iommufd: Iommufd,
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The two sides, or why this is not the `full` emulated host.
fn sides() -> Result<Sides, String> {
    let (Ok(edu), Ok(testdev)) = (
        std::env::var("UVFIO_TEST_EDU"),
        std::env::var("UVFIO_TEST_TESTDEV"),
    ) else {
        return Err("no devices (UVFIO_TEST_EDU, UVFIO_TEST_TESTDEV)".into());
    };
    if !std::path::Path::new(uvfio::iommufd::IOMMUFD_PATH).exists() {
        return Err(format!("{} is missing", uvfio::iommufd::IOMMUFD_PATH));
    }
    let addr = |s: &str| must(s.parse::<uvfio::pci::PciAddress>(), s);
    let iommufd = must(Iommufd::new(), "iommufd");
    let ioas = must(iommufd.alloc_ioas(), "IOMMU_IOAS_ALLOC");
    let ioas_device = must(iommufd.open_pci_device(&addr(&testdev)), &testdev);
    must(ioas_device.attach(&ioas), &testdev);
    let type1 = must(Container::new(), "container");
    let type1_device = must(type1.open_pci_device(&addr(&edu)), &edu);
    assert_eq!(type1.iommu(), Some(IommuType::Type1v2));
    Ok(Sides {
        ioas,
        type1,
        _devices: [ioas_device, type1_device],
        _iommufd: iommufd,
    })
}

type Case<'a> = (&'static str, Box<dyn Fn() -> Duration + 'a>);

fn cases<'a>(s: &'a Sides, mem: &'a HugeGib) -> Vec<Case<'a>> {
    let rw = DmaAccess::ReadWrite;
    let pages = GIB / HUGE;
    let at = move |i: u64| mem.0.wrapping_add((i * HUGE) as usize);
    // SAFETY (every map below): `mem` outlives every mapping, which each case removes before
    // it returns; the device attached never does DMA.
    vec![
        (
            "type1 one map",
            Box::new(move || {
                let t = Instant::now();
                must(
                    unsafe { s.type1.map_dma_raw(mem.0, IOVA, GIB, rw) },
                    "type1 map",
                );
                must(s.type1.unmap_dma(IOVA, GIB), "type1 unmap");
                t.elapsed()
            }),
        ),
        (
            "type1 per 2 MiB page",
            Box::new(move || {
                let t = Instant::now();
                for i in 0..pages {
                    must(
                        unsafe { s.type1.map_dma_raw(at(i), IOVA + i * HUGE, HUGE, rw) },
                        "type1 map 2 MiB",
                    );
                }
                for i in 0..pages {
                    must(
                        s.type1.unmap_dma(IOVA + i * HUGE, HUGE),
                        "type1 unmap 2 MiB",
                    );
                }
                t.elapsed()
            }),
        ),
        ("ioas one map", Box::new(move || ioas_one(s, mem, true))),
        (
            "ioas one map, huge pages off",
            Box::new(move || ioas_one(s, mem, false)),
        ),
        (
            "ioas per 2 MiB page",
            Box::new(move || {
                let t = Instant::now();
                for i in 0..pages {
                    must(
                        unsafe { s.ioas.map_raw(at(i), HUGE, rw, Some(IOVA + i * HUGE)) },
                        "IOAS map 2 MiB",
                    );
                }
                for i in 0..pages {
                    must(s.ioas.unmap(IOVA + i * HUGE, HUGE), "IOAS unmap 2 MiB");
                }
                t.elapsed()
            }),
        ),
    ]
}

/// One IOAS map of the GiB and its unmap, with the IOAS's huge-page option set to `huge`
/// (set while nothing is mapped, untimed; left on afterwards).
fn ioas_one(s: &Sides, mem: &HugeGib, huge: bool) -> Duration {
    must(s.ioas.set_huge_pages(huge), "IOMMU_OPTION_HUGE_PAGES");
    let t = Instant::now();
    // SAFETY: as in `cases`.
    must(
        unsafe { s.ioas.map_raw(mem.0, GIB, DmaAccess::ReadWrite, Some(IOVA)) },
        "IOAS map",
    );
    must(s.ioas.unmap(IOVA, GIB), "IOAS unmap");
    let took = t.elapsed();
    must(s.ioas.set_huge_pages(true), "IOMMU_OPTION_HUGE_PAGES");
    took
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    let sides = match sides() {
        Ok(s) => s,
        Err(why) => {
            println!("bigmap: skipped: needs the full flavour's emulated host: {why}");
            return;
        }
    };
    let mem = match HugeGib::new() {
        Ok(m) => m,
        Err(why) => {
            println!("bigmap: skipped: {why}");
            return;
        }
    };
    let rounds: usize = std::env::var("UVFIO_BIGMAP_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    let cases = cases(&sides, &mem);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        // Rotate the order so that no case always runs first or after the same one.
        for k in 0..cases.len() {
            let which = (k + round) % cases.len();
            times[which].push((cases[which].1)());
        }
    }
    let table: Vec<(&str, (f64, f64, f64))> = cases
        .iter()
        .zip(times)
        .map(|(c, t)| (c.0, stats(t)))
        .collect();
    let median = |name: &str| {
        table
            .iter()
            .find(|r| r.0 == name)
            .map_or(f64::NAN, |r| r.1 .0)
    };
    println!("bigmap: 1 GiB of 2 MiB pages, map + unmap, {rounds} rounds (ms)");
    println!(
        "{:<32} {:>10} {:>10} {:>10}  per-page baseline / this",
        "case", "median", "min", "max"
    );
    for (name, (med, min, max)) in &table {
        let base = if name.starts_with("type1") {
            median("type1 per 2 MiB page")
        } else {
            median("ioas per 2 MiB page")
        };
        println!(
            "{name:<32} {med:>10.1} {min:>10.1} {max:>10.1}  {:.2}x",
            base / med
        );
    }
    drop(cases);
    drop(sides);
    drop(mem);
}
