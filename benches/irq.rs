//! Interrupt latency: from the write to edu's raise register (0x60) to the wake of the thread
//! waiting on the MSI eventfd, blocking ([`Interrupts::wait`]) and async
//! ([`uvfio::irq::AsyncVector`], feature `async`), against the floor measured in the same run:
//! the same eventfd, waited on the same way, written by another thread of the process.
//!
//! Run it in the emulated IOMMU host:
//!
//! ```text
//! tests/vm/cargo-vm bench --bench irq --features async -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Outside the VM (no `UVFIO_TEST_EDU`) only the floor runs, on a plain eventfd. Criterion
//! reports means, which TCG's long tail dominates; the summary printed at the end has the
//! median of every measured wake-up. After criterion's runs, device and floor are measured once
//! more interleaved in one run (`paired/*`, `UVFIO_BENCH_PAIRS` round trips each), so that both
//! see the same host load, and the device/floor ratios come from those medians.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::irq::Interrupts;
use uvfio::{Container, Device, Group, IommuType};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Every measured latency, by benchmark, for the medians.
static SAMPLES: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, d: Duration) {
    SAMPLES.lock().unwrap().entry(name).or_default().push(d);
}

/// Lets the waiting thread get into its blocking call before the interrupt is raised, so the
/// measurement includes a real wake-up (not an already-pending counter).
const SETTLE: Duration = Duration::from_micros(200);
const TIMEOUT: Duration = Duration::from_secs(5);

struct Edu {
    device: Device,
    bar0: u64,
}

impl Edu {
    fn open() -> Option<Edu> {
        let addr = std::env::var("UVFIO_TEST_EDU").ok()?;
        let pci: uvfio::pci::PciAddress = addr.parse().expect("UVFIO_TEST_EDU");
        let group = uvfio::pci::sysfs::Sysfs::new()
            .iommu_group(&pci)
            .expect("iommu group");
        let container = Container::new().expect("container");
        let group = Group::open(group).expect("group");
        group.set_container(&container).expect("set_container");
        container.set_iommu(IommuType::Type1v2).expect("set_iommu");
        let device = group.open_device(&addr).expect("open edu");
        let config = device
            .region_info(RegionIndex::CONFIG)
            .expect("config")
            .offset;
        let mut cmd = [0u8; 2];
        nix::sys::uio::pread(device.as_fd(), &mut cmd, config as i64 + 4).expect("pread");
        let cmd = u16::from_le_bytes(cmd) | 0x6; // memory space + bus master, for MSI
        nix::sys::uio::pwrite(device.as_fd(), &cmd.to_le_bytes(), config as i64 + 4)
            .expect("pwrite");
        let bar0 = device.region_info(RegionIndex::BAR0).expect("BAR0").offset;
        let edu = Edu { device, bar0 };
        edu.write32(0x64, u32::MAX);
        Some(edu)
    }

    fn write32(&self, off: u64, v: u32) {
        nix::sys::uio::pwrite(
            self.device.as_fd(),
            &v.to_le_bytes(),
            (self.bar0 + off) as i64,
        )
        .expect("pwrite edu");
    }

    fn raise(&self) {
        self.write32(0x60, 1);
    }

    fn ack(&self) {
        self.write32(0x64, 1);
    }
}

/// What fires the interrupt in one iteration, and what to do after the wake-up.
struct Source<'a> {
    name: &'static str,
    fire: &'a (dyn Fn() + Sync),
    after: &'a (dyn Fn() + Sync),
}

/// Runs `iters` round trips with the waiter `wait_loop` running in its own thread: before each
/// wait it says it is ready, after each wake it sends the instant it woke. Iteration `i` fires
/// with `sources[i % len]`, so several sources share one run and see the same conditions.
fn round_trips(
    iters: u64,
    sources: &[Source<'_>],
    wait_loop: &(dyn Fn(u64, mpsc::Sender<()>, mpsc::Sender<Instant>) + Sync),
) -> Duration {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (woke_tx, woke_rx) = mpsc::channel::<Instant>();
    std::thread::scope(|s| {
        s.spawn(move || wait_loop(iters, ready_tx, woke_tx));
        let mut total = Duration::ZERO;
        for i in 0..iters {
            let source = &sources[(i % sources.len() as u64) as usize];
            ready_rx.recv().unwrap();
            std::thread::sleep(SETTLE);
            let t0 = Instant::now();
            (source.fire)();
            let woke = woke_rx.recv().unwrap();
            let d = woke.saturating_duration_since(t0);
            record(source.name, d);
            total += d;
            (source.after)();
        }
        total
    })
}

/// The blocking waiter: `Interrupts::wait` (or the floor's plain poll without a device).
fn blocking_waiter(
    wait: &(dyn Fn() + Sync),
) -> impl Fn(u64, mpsc::Sender<()>, mpsc::Sender<Instant>) + Sync + '_ {
    move |iters, ready, woke| {
        for _ in 0..iters {
            ready.send(()).unwrap();
            wait();
            woke.send(Instant::now()).unwrap();
        }
    }
}

/// The async waiter: `AsyncVector::wait` in a current-thread tokio runtime.
#[cfg(feature = "async")]
fn async_waiter(
    irqs: &Interrupts,
) -> impl Fn(u64, mpsc::Sender<()>, mpsc::Sender<Instant>) + Sync + '_ {
    move |iters, ready, woke| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let vector = irqs.async_vector(0).unwrap();
            for _ in 0..iters {
                ready.send(()).unwrap();
                vector.wait().await.unwrap();
                woke.send(Instant::now()).unwrap();
            }
        });
    }
}

/// Round trips per source in the interleaved run (`UVFIO_BENCH_PAIRS`, default 2000).
fn pairs() -> u64 {
    std::env::var("UVFIO_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn with_device(c: &mut Criterion, edu: &Edu) {
    let msi: Interrupts = edu
        .device
        .enable_irqs(IrqIndex::MSI, 1)
        .expect("enable MSI");
    // The floor writes the very eventfd the device signals, through a duplicate, so both are
    // waited on with the same code.
    let floor_writer = msi.eventfd(0).unwrap().try_clone().unwrap();
    let wait = || {
        msi.wait(0, Some(TIMEOUT))
            .unwrap()
            .expect("interrupt within 5 s");
    };
    let raise = || edu.raise();
    let ack = || edu.ack();
    let write = || floor_writer.write(1).unwrap();
    let nothing = || {};
    let source = |name, fire, after| Source { name, fire, after };
    let blocking = blocking_waiter(&wait);
    #[cfg(feature = "async")]
    let asynchronous = async_waiter(&msi);

    let mut g = c.benchmark_group("irq");
    g.bench_function("blocking/edu-msi", |b| {
        b.iter_custom(|iters| {
            round_trips(
                iters,
                &[source("blocking/edu-msi", &raise, &ack)],
                &blocking,
            )
        })
    });
    g.bench_function("blocking/eventfd-floor", |b| {
        b.iter_custom(|iters| {
            round_trips(
                iters,
                &[source("blocking/eventfd-floor", &write, &nothing)],
                &blocking,
            )
        })
    });
    #[cfg(feature = "async")]
    {
        g.bench_function("async/edu-msi", |b| {
            b.iter_custom(|iters| {
                round_trips(
                    iters,
                    &[source("async/edu-msi", &raise, &ack)],
                    &asynchronous,
                )
            })
        });
        g.bench_function("async/eventfd-floor", |b| {
            b.iter_custom(|iters| {
                round_trips(
                    iters,
                    &[source("async/eventfd-floor", &write, &nothing)],
                    &asynchronous,
                )
            })
        });
    }
    g.finish();

    // The same, interleaved (device, floor, device, ...) in one run each, so that both see the
    // same load: the ratios in the summary come from these.
    let n = 2 * pairs();
    round_trips(
        n,
        &[
            source("paired/blocking/edu-msi", &raise, &ack),
            source("paired/blocking/eventfd-floor", &write, &nothing),
        ],
        &blocking,
    );
    #[cfg(feature = "async")]
    round_trips(
        n,
        &[
            source("paired/async/edu-msi", &raise, &ack),
            source("paired/async/eventfd-floor", &write, &nothing),
        ],
        &asynchronous,
    );
    drop(blocking);
    #[cfg(feature = "async")]
    drop(asynchronous);
    msi.disable().expect("disable MSI");
}

/// Without a device: the floor only, polling a plain eventfd the way `Interrupts::wait` does.
fn without_device(c: &mut Criterion) {
    let e = EventFd::new(EFD_NONBLOCK).unwrap();
    let writer = e.try_clone().unwrap();
    let wait = || {
        let mut fds = [nix::poll::PollFd::new(
            uvfio::irq::borrow_eventfd(&e),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).unwrap();
        e.read().unwrap();
    };
    let write = || writer.write(1).unwrap();
    let nothing = || {};
    let blocking = blocking_waiter(&wait);
    c.bench_function("irq/blocking/eventfd-floor", |b| {
        b.iter_custom(|iters| {
            round_trips(
                iters,
                &[Source {
                    name: "blocking/eventfd-floor",
                    fire: &write,
                    after: &nothing,
                }],
                &blocking,
            )
        })
    });
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn summary() {
    let mut samples = SAMPLES.lock().unwrap();
    let mut medians = BTreeMap::new();
    println!(
        "\nwake-up latency, every iteration (criterion's warm-up included; paired/* is the \
         interleaved run):"
    );
    println!(
        "{:<37} {:>8} {:>10} {:>10} {:>10}",
        "benchmark", "samples", "p10", "median", "p90"
    );
    for (name, v) in samples.iter_mut() {
        let m = median(v);
        let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        println!(
            "irq/{name:<33} {:>8} {:>10.1?} {:>10.1?} {:>10.1?}",
            v.len(),
            p(0.1),
            m,
            p(0.9)
        );
        medians.insert(*name, m);
    }
    for kind in ["blocking", "async"] {
        let dev = medians.get(format!("paired/{kind}/edu-msi").as_str());
        let floor = medians.get(format!("paired/{kind}/eventfd-floor").as_str());
        if let (Some(dev), Some(floor)) = (dev, floor) {
            println!(
                "{kind} (interleaved run): edu MSI median {dev:.1?} / eventfd floor median \
                 {floor:.1?} = {:.2}x",
                dev.as_secs_f64() / floor.as_secs_f64()
            );
            println!(
                "result irq/{kind}/edu_msi_us {:.2}",
                dev.as_secs_f64() * 1e6
            );
            println!(
                "result irq/{kind}/eventfd_floor_us {:.2}",
                floor.as_secs_f64() * 1e6
            );
            println!(
                "result irq/{kind}/msi_over_floor {:.4}",
                dev.as_secs_f64() / floor.as_secs_f64()
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    match Edu::open() {
        Some(edu) => with_device(&mut c, &edu),
        None => {
            eprintln!(
                "UVFIO_TEST_EDU is not set: measuring the eventfd floor only (run \
                 `tests/vm/cargo-vm bench --bench irq --features async` for the device)"
            );
            without_device(&mut c);
        }
    }
    c.final_summary();
    summary();
}
