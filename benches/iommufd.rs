//! Map + unmap of 4 KiB at a fixed IOVA through iommufd against the legacy type1 container, in
//! one run (one boot of the emulated host), raw ioctls against uvfio on each side:
//!
//! | bench | what |
//! |---|---|
//! | `ioas_raw` | `IOMMU_IOAS_MAP` + `IOMMU_IOAS_UNMAP` by hand on an IOAS of `/dev/iommu` |
//! | `ioas_uvfio` | [`Ioas::map_raw`] + [`Ioas::unmap`] on that IOAS |
//! | `type1_raw` | `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` by hand on a type1v2 `/dev/vfio/vfio` |
//! | `type1_uvfio` | [`Container::map_dma_raw`] + [`Container::unmap_dma`] on that container |
//! | `compat_raw` | the type1 ioctls by hand on iommufd's compat container (`/dev/iommu`) |
//! | `compat_uvfio` | the uvfio calls on [`Container::iommufd_compat`] |
//!
//! ```text
//! UVFIO_VM_FLAVOR=full tests/vm/cargo-vm bench --bench iommufd -- --warm-up-time 1 --measurement-time 3
//! tests/vm/bench-iommufd.sh --boots 5     # N boots, median / min / max of each ratio
//! ```
//!
//! It needs the `full` flavour (iommufd and the device cdev); elsewhere it prints why it is
//! skipped and exits 0.
//!
//! Each side has a device attached, so that the IOAS and the containers have an IOMMU domain
//! behind them (the map really programs the emulated VT-d). The three sides are open at the
//! same time, with three different devices, since one device cannot be in two places at once:
//! the IOAS gets the pci-testdev of `UVFIO_TEST_TESTDEV` through its cdev
//! ([`Iommufd::open_pci_device`] + [`Device::attach`](uvfio::Device::attach)), the type1
//! container the edu of `UVFIO_TEST_EDU`, the compat container the e1000 of
//! `UVFIO_TEST_E1000_A` (`UVFIO_BENCH_IOAS_DEVICE`, `UVFIO_BENCH_TYPE1_DEVICE` and
//! `UVFIO_BENCH_COMPAT_DEVICE` override them). No DMA is started.
//!
//! All six benches are in one criterion group and interleaved: every iteration of every bench
//! runs all six sides, in an order that rotates, and each bench's time is only its own side's,
//! so that all see the same kind of work. After the group, the bench reads criterion's median
//! estimates back (`<criterion dir>/iommufd_map_unmap_4k/<bench>/new/estimates.json`), then
//! times the sides itself in paired rounds (per round, `PER_ROUND` map+unmaps per side in
//! rotating order; the median of the per-round ratios), and prints both as a table, with one
//! machine-readable `ratio <name> criterion=<x> paired=<y>` line each for
//! `tests/vm/bench-iommufd.sh`. The paired ratios are the ones to go by: criterion measures the
//! benches one after the other, each in a window of seconds, and on a shared host the load
//! drifts between windows (its uvfio/raw ratios spread 0.6-1.45 over boots where the paired
//! ones stayed within 0.91-1.05); the paired rounds compare the sides milliseconds apart.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use uvfio::dma::DmaAccess;
use uvfio::iommufd::{Ioas, Iommufd};
use uvfio::uapi::{iommufd as iuapi, vfio};
use uvfio::{Container, Device, IommuType};

const PAGE: u64 = 4096;
/// The fixed IOVA of every map: 16 MiB, inside the usable ranges of VT-d and clear of the MSI
/// window, on every side.
const IOVA: u64 = 16 << 20;
const GROUP: &str = "iommufd_map_unmap_4k";
/// Paired rounds after criterion, and map+unmaps per side per round.
const ROUNDS: usize = 60;
const PER_ROUND: u32 = 200;

const SKIP: &str =
    "iommufd: skipped: needs the emulated host, run tests/vm/cargo-vm bench --bench \
                    iommufd (with UVFIO_VM_FLAVOR=full: iommufd and the device cdev)";

/// One page of anonymous memory, owned by the benchmark.
struct Page(*mut u8);

impl Page {
    fn new() -> Page {
        // SAFETY: a fresh private anonymous mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap of a page");
        Page(ptr.cast())
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the benchmark's own mapping; every IOMMU mapping of it is gone by now (each
        // map below is undone before its call returns, and the sides are dropped first).
        unsafe { libc::munmap(self.0.cast(), PAGE as usize) };
    }
}

/// Everything the six sides need, open at the same time.
struct Sides {
    iommufd: Iommufd,
    ioas: Ioas,
    type1: Container,
    compat: Container,
    // The devices keep the IOAS's and the containers' IOMMU domains alive.
    _devices: [Device; 3],
    // Declared last: dropped after the sides, whose mappings are all undone anyway.
    pages: [Page; 3],
}

fn device_var(own: &str, default: &str) -> Option<String> {
    std::env::var(own).or_else(|_| std::env::var(default)).ok()
}

/// `Ok(v)`, or a panic naming `what`: in the emulated host every step must work.
fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The three sides, or why this is not the `full` emulated host (no devices, or no iommufd).
/// Past those two checks every failure panics: a broken setup must not pass as a skip.
fn sides() -> Result<Sides, String> {
    let (Some(ioas_dev), Some(type1_dev), Some(compat_dev)) = (
        device_var("UVFIO_BENCH_IOAS_DEVICE", "UVFIO_TEST_TESTDEV"),
        device_var("UVFIO_BENCH_TYPE1_DEVICE", "UVFIO_TEST_EDU"),
        device_var("UVFIO_BENCH_COMPAT_DEVICE", "UVFIO_TEST_E1000_A"),
    ) else {
        return Err("no devices (UVFIO_TEST_TESTDEV, UVFIO_TEST_EDU, UVFIO_TEST_E1000_A)".into());
    };
    if !std::path::Path::new(uvfio::iommufd::IOMMUFD_PATH).exists() {
        return Err(format!(
            "{} is missing (a kernel without iommufd, like the debian flavour's)",
            uvfio::iommufd::IOMMUFD_PATH
        ));
    }
    let addr = |s: &str| must(s.parse::<uvfio::pci::PciAddress>(), s);
    let iommufd = must(Iommufd::new(), "iommufd");
    let ioas = must(iommufd.alloc_ioas(), "IOMMU_IOAS_ALLOC");
    let ioas_device = must(iommufd.open_pci_device(&addr(&ioas_dev)), &ioas_dev);
    must(ioas_device.attach(&ioas), &ioas_dev);
    let ranges = must(ioas.iova_ranges(), "IOAS IOVA ranges");
    assert!(
        ranges
            .ranges
            .iter()
            .any(|r| r.start <= IOVA && IOVA + PAGE - 1 <= r.end),
        "IOVA {IOVA:#x} is outside the IOAS's ranges {ranges:?}"
    );
    let open = |container: Container, dev: &str| {
        let device = must(container.open_pci_device(&addr(dev)), dev);
        assert_eq!(container.iommu(), Some(IommuType::Type1v2), "{dev}");
        (container, device)
    };
    let (type1, type1_device) = open(must(Container::new(), "container"), &type1_dev);
    let (compat, compat_device) = open(
        must(Container::iommufd_compat(), "compat container"),
        &compat_dev,
    );
    Ok(Sides {
        iommufd,
        ioas,
        type1,
        compat,
        _devices: [ioas_device, type1_device, compat_device],
        pages: [Page::new(), Page::new(), Page::new()],
    })
}

/// `IOMMU_IOAS_MAP` + `IOMMU_IOAS_UNMAP` by hand: the IOAS baseline.
fn ioas_raw(fd: i32, ioas_id: u32, vaddr: *mut u8) {
    let mut map = iuapi::iommu_ioas_map {
        size: std::mem::size_of::<iuapi::iommu_ioas_map>() as u32,
        flags: iuapi::IOMMU_IOAS_MAP_FIXED_IOVA
            | iuapi::IOMMU_IOAS_MAP_READABLE
            | iuapi::IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id,
        __reserved: 0,
        user_va: vaddr as u64,
        length: PAGE,
        iova: IOVA,
    };
    // SAFETY: the page outlives the mapping, which is removed right below.
    let r = unsafe { libc::ioctl(fd, iuapi::IOMMU_IOAS_MAP, &mut map) };
    assert_eq!(r, 0, "raw IOAS map: {}", std::io::Error::last_os_error());
    let mut unmap = iuapi::iommu_ioas_unmap {
        size: std::mem::size_of::<iuapi::iommu_ioas_unmap>() as u32,
        ioas_id,
        iova: IOVA,
        length: PAGE,
    };
    // SAFETY: a plain unmap request.
    let r = unsafe { libc::ioctl(fd, iuapi::IOMMU_IOAS_UNMAP, &mut unmap) };
    assert_eq!(r, 0, "raw IOAS unmap: {}", std::io::Error::last_os_error());
}

fn ioas_uvfio(ioas: &Ioas, vaddr: *mut u8) {
    // SAFETY: the page outlives the mapping, which is removed right below.
    let iova =
        unsafe { ioas.map_raw(vaddr, PAGE, DmaAccess::ReadWrite, Some(IOVA)) }.expect("IOAS map");
    assert_eq!(iova, IOVA);
    ioas.unmap(IOVA, PAGE).expect("IOAS unmap");
}

/// `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` by hand: the container baseline.
fn type1_raw(fd: i32, vaddr: *mut u8) {
    let mut map = vfio::vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<vfio::vfio_iommu_type1_dma_map>() as u32,
        flags: vfio::VFIO_DMA_MAP_FLAG_READ | vfio::VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: vaddr as u64,
        iova: IOVA,
        size: PAGE,
    };
    // SAFETY: the page outlives the mapping, which is removed right below.
    let r = unsafe { libc::ioctl(fd, vfio::VFIO_IOMMU_MAP_DMA, &mut map) };
    assert_eq!(r, 0, "raw map: {}", std::io::Error::last_os_error());
    let mut unmap = vfio::vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<vfio::vfio_iommu_type1_dma_unmap>() as u32,
        flags: 0,
        iova: IOVA,
        size: PAGE,
    };
    // SAFETY: a plain unmap request.
    let r = unsafe { libc::ioctl(fd, vfio::VFIO_IOMMU_UNMAP_DMA, &mut unmap) };
    assert_eq!(r, 0, "raw unmap: {}", std::io::Error::last_os_error());
}

fn type1_uvfio(c: &Container, vaddr: *mut u8) {
    // SAFETY: the page outlives the mapping, which is removed right below.
    unsafe { c.map_dma_raw(vaddr, IOVA, PAGE, DmaAccess::ReadWrite) }.expect("map");
    c.unmap_dma(IOVA, PAGE).expect("unmap");
}

/// The benches, in group order: name and one map+unmap.
type Side<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn side_fns(s: &Sides) -> Vec<Side<'_>> {
    let (ifd, ioas_id) = (s.iommufd.as_raw_fd(), s.ioas.id());
    let (t1fd, cfd) = (s.type1.as_raw_fd(), s.compat.as_raw_fd());
    let [p_ioas, p_type1, p_compat] = [s.pages[0].0, s.pages[1].0, s.pages[2].0];
    vec![
        ("ioas_raw", Box::new(move || ioas_raw(ifd, ioas_id, p_ioas))),
        ("ioas_uvfio", Box::new(move || ioas_uvfio(&s.ioas, p_ioas))),
        ("type1_raw", Box::new(move || type1_raw(t1fd, p_type1))),
        (
            "type1_uvfio",
            Box::new(move || type1_uvfio(&s.type1, p_type1)),
        ),
        ("compat_raw", Box::new(move || type1_raw(cfd, p_compat))),
        (
            "compat_uvfio",
            Box::new(move || type1_uvfio(&s.compat, p_compat)),
        ),
    ]
}

/// Runs every side `n` times, interleaved (iteration `i` starts at side `i mod 6`); returns
/// the time spent in side `which`.
fn interleaved(sides: &[Side<'_>], which: usize, n: u64) -> Duration {
    let mut mine = Duration::ZERO;
    for i in 0..n as usize {
        for k in 0..sides.len() {
            let j = (i + k) % sides.len();
            let t = Instant::now();
            (sides[j].1)();
            let d = t.elapsed();
            if j == which {
                mine += d;
            }
        }
    }
    mine
}

/// Where criterion writes: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, the target
/// directory of this binary (`<target>/release/deps/iommufd-*`), else `target/criterion` (in
/// the emulated host: under the guest's `/test`). Set explicitly so that the estimates can be
/// read back from the same place.
fn criterion_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CRITERION_HOME") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("criterion");
    }
    let exe = std::env::current_exe().ok();
    let target = exe.as_deref().and_then(|e| {
        let deps = e.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent()?.parent())?
    });
    match target {
        Some(t) => t.join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

/// The median point estimate (ns) of `bench` from this run, if criterion wrote one.
fn estimate(dir: &std::path::Path, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(GROUP).join(bench).join("new/estimates.json");
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...},...}
    let median = &text[text.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Paired rounds: every side does `PER_ROUND` map+unmaps per round, in an order that rotates;
/// returns each round's time per side (ns per map+unmap).
fn paired(sides: &[Side<'_>], rounds: usize) -> Vec<Vec<f64>> {
    let mut per_round = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut times = vec![0.0; sides.len()];
        for k in 0..sides.len() {
            let j = (round + k) % sides.len();
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                (sides[j].1)();
            }
            times[j] = t.elapsed().as_secs_f64() * 1e9 / f64::from(PER_ROUND);
        }
        per_round.push(times);
    }
    per_round
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The ratios reported: name, numerator side, denominator side.
const RATIOS: [(&str, usize, usize); 5] = [
    ("ioas_uvfio/raw", 1, 0),
    ("type1_uvfio/raw", 3, 2),
    ("compat_uvfio/raw", 5, 4),
    ("raw_ioas/type1", 0, 2),
    ("raw_compat/type1", 4, 2),
];

fn report(names: &[&str], crit: &[Option<f64>], rounds: &[Vec<f64>]) {
    let us = |ns: Option<f64>| ns.map_or("n/a".to_string(), |ns| format!("{:.2} us", ns / 1e3));
    println!();
    println!("{GROUP}: map + unmap of 4 KiB at IOVA {IOVA:#x}, same run");
    println!("  {:<14} {:>14} {:>14}", "side", "criterion", "paired");
    for (j, name) in names.iter().enumerate() {
        let p = (!rounds.is_empty()).then(|| median(rounds.iter().map(|r| r[j]).collect()));
        println!("  {:<14} {:>14} {:>14}", name, us(crit[j]), us(p));
    }
    println!(
        "  {:<18} {:>10} {:>10}   (criterion: ratio of the medians; paired: median of {} \
         per-round ratios)",
        "ratio",
        "criterion",
        "paired",
        rounds.len()
    );
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    let mut lines = Vec::new();
    for (name, a, b) in RATIOS {
        let c = crit[a].zip(crit[b]).map(|(x, y)| x / y);
        let p = (!rounds.is_empty()).then(|| median(rounds.iter().map(|r| r[a] / r[b]).collect()));
        println!("  {:<18} {:>10} {:>10}", name, fmt(c), fmt(p));
        lines.push(format!(
            "ratio {name} criterion={} paired={}",
            fmt(c),
            fmt(p)
        ));
    }
    for l in lines {
        println!("{l}");
    }
}

fn main() {
    let sides = match sides() {
        Ok(s) => s,
        Err(why) => {
            println!("{SKIP}: {why}");
            return;
        }
    };
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    let test_mode = std::env::args().any(|a| a == "--test");
    let fns = side_fns(&sides);
    let names: Vec<&str> = fns.iter().map(|s| s.0).collect();
    let since = SystemTime::now();
    let mut g = c.benchmark_group(GROUP);
    for (which, name) in names.iter().enumerate() {
        g.bench_function(*name, |b| b.iter_custom(|n| interleaved(&fns, which, n)));
    }
    g.finish();
    c.final_summary();
    let crit: Vec<Option<f64>> = names.iter().map(|n| estimate(&dir, n, since)).collect();
    let rounds = paired(&fns, if test_mode { 1 } else { ROUNDS });
    report(&names, &crit, &rounds);
}
