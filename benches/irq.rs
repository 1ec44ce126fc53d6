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
//! reports means; the summary printed at the end has the median of every measured wake-up and
//! the device/floor ratios.

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

/// One blocking round trip per iteration: a waiter thread blocks in `wait`, the main thread
/// fires, the waiter stamps its wake-up.
fn blocking(
    iters: u64,
    name: &'static str,
    wait: &(dyn Fn() + Sync),
    fire: &dyn Fn(),
    after: &dyn Fn(),
) -> Duration {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (woke_tx, woke_rx) = mpsc::channel::<Instant>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..iters {
                ready_tx.send(()).unwrap();
                wait();
                woke_tx.send(Instant::now()).unwrap();
            }
        });
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            ready_rx.recv().unwrap();
            std::thread::sleep(SETTLE);
            let t0 = Instant::now();
            fire();
            let woke = woke_rx.recv().unwrap();
            let d = woke.saturating_duration_since(t0);
            record(name, d);
            total += d;
            after();
        }
        total
    })
}

/// The same with the waiter `.await`ing in a current-thread tokio runtime.
#[cfg(feature = "async")]
fn asynchronous(
    iters: u64,
    name: &'static str,
    irqs: &Interrupts,
    fire: &dyn Fn(),
    after: &dyn Fn(),
) -> Duration {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (woke_tx, woke_rx) = mpsc::channel::<Instant>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let vector = irqs.async_vector(0).unwrap();
                for _ in 0..iters {
                    ready_tx.send(()).unwrap();
                    vector.wait().await.unwrap();
                    woke_tx.send(Instant::now()).unwrap();
                }
            });
        });
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            ready_rx.recv().unwrap();
            std::thread::sleep(SETTLE);
            let t0 = Instant::now();
            fire();
            let woke = woke_rx.recv().unwrap();
            let d = woke.saturating_duration_since(t0);
            record(name, d);
            total += d;
            after();
        }
        total
    })
}

fn with_device(c: &mut Criterion, edu: &Edu) {
    let msi: Interrupts = edu
        .device
        .enable_irqs(IrqIndex::MSI, 1)
        .expect("enable MSI");
    // The floor writes the very eventfd the device signals, through a duplicate.
    let floor_writer = msi.eventfd(0).unwrap().try_clone().unwrap();
    let wait = || {
        msi.wait(0, Some(TIMEOUT))
            .unwrap()
            .expect("interrupt within 5 s");
    };
    let mut g = c.benchmark_group("irq");
    g.bench_function("blocking/edu-msi", |b| {
        b.iter_custom(|iters| {
            blocking(iters, "blocking/edu-msi", &wait, &|| edu.raise(), &|| {
                edu.ack()
            })
        })
    });
    g.bench_function("blocking/eventfd-floor", |b| {
        b.iter_custom(|iters| {
            blocking(
                iters,
                "blocking/eventfd-floor",
                &wait,
                &|| floor_writer.write(1).unwrap(),
                &|| {},
            )
        })
    });
    #[cfg(feature = "async")]
    {
        g.bench_function("async/edu-msi", |b| {
            b.iter_custom(|iters| {
                asynchronous(iters, "async/edu-msi", &msi, &|| edu.raise(), &|| edu.ack())
            })
        });
        g.bench_function("async/eventfd-floor", |b| {
            b.iter_custom(|iters| {
                asynchronous(
                    iters,
                    "async/eventfd-floor",
                    &msi,
                    &|| floor_writer.write(1).unwrap(),
                    &|| {},
                )
            })
        });
    }
    g.finish();
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
    c.bench_function("irq/blocking/eventfd-floor", |b| {
        b.iter_custom(|iters| {
            blocking(
                iters,
                "blocking/eventfd-floor",
                &wait,
                &|| writer.write(1).unwrap(),
                &|| {},
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
    println!("\nwake-up latency (every measured iteration, warm-up included):");
    println!(
        "{:<26} {:>9} {:>11} {:>11} {:>11}",
        "benchmark", "samples", "p10", "median", "p90"
    );
    for (name, v) in samples.iter_mut() {
        let m = median(v);
        let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        println!(
            "irq/{name:<22} {:>9} {:>11.1?} {:>11.1?} {:>11.1?}",
            v.len(),
            p(0.1),
            m,
            p(0.9)
        );
        medians.insert(*name, m);
    }
    for kind in ["blocking", "async"] {
        let dev = medians.get(format!("{kind}/edu-msi").as_str());
        let floor = medians.get(format!("{kind}/eventfd-floor").as_str());
        if let (Some(dev), Some(floor)) = (dev, floor) {
            println!(
                "{kind}: edu MSI median {dev:.1?} / eventfd floor median {floor:.1?} = {:.2}x",
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
