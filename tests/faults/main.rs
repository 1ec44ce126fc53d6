//! The fault-injection sweep (issue 14): every public operation that reaches the kernel, run
//! with the kernel's `fail-nth` = 1, 2, … until it runs without an injected fault, in the
//! emulated IOMMU host's project kernel (`full` flavour), in the IOMMU mode of
//! `UVFIO_IOMMU_MODE` (tests/hw/common.rs).
//!
//! At every N: no panic; a typed error that names its operation; the process's fds, pinned
//! and locked memory, the DMA space's buffers, mapped and leaked bytes, IOVA allocations and
//! the legacy container's mapping budget back where they were (so no mapping stays in the
//! IOMMU either: the budget counts them, and the next run maps the same IOVA again); no new
//! WARN, BUG or oops in the kernel log; and the operation then succeeds. It prints a table
//! per operation and a total line
//! `fault points: N, leaks: 0, panics: 0, kernel warnings: 0`.
//!
//! The process's footprint is process-wide, so the sweep runs alone in its own binary (no
//! libtest harness: `harness = false`), on one thread. Like the hw tests it is ignored
//! unless asked for: `tests/vm/suite.sh` runs it in every mode of the full flavour; by hand:
//!
//! ```text
//! UVFIO_VM_FLAVOR=full [UVFIO_IOMMU_MODE=iommufd] tests/vm/cargo-vm test --test faults -- --include-ignored
//! ```

#[path = "../hw/common.rs"]
mod common;
mod inject;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use uvfio::device::{DeviceFlags, IrqIndex, RegionIndex};
use uvfio::dma::{DmaAccess, DmaBuffer, DmaMemory, DmaOptions, DmaPool};
use uvfio::irq::IoValue;
use uvfio::mdev::{MdevInstance, Mdevs};
use uvfio::{Device, DmaSpace, Group, IommuMode};

use inject::{FailNth, Footprint};
use sweep::{sweep, Report};

/// A fixed IOVA for the buffers of the sweep (below edu's 28-bit limit), so that a mapping
/// left behind makes the next run fail with `EEXIST`.
const IOVA: u64 = 0x0800_0000;

fn main() -> ExitCode {
    let asked = std::env::args().any(|a| a == "--include-ignored" || a == "--ignored");
    if !asked {
        println!(
            "faults: the fault-injection sweep is ignored (it needs the emulated IOMMU host's \
             full kernel): UVFIO_VM_FLAVOR=full tests/vm/cargo-vm test --test faults -- --include-ignored"
        );
        return ExitCode::SUCCESS;
    }
    let present = std::path::Path::new("/proc/thread-self/fail-nth").exists();
    if !common::needs_full(
        "faults::sweep",
        "kernel fault injection (fail-nth)",
        present,
    ) {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = inject::configure() {
        eprintln!("faults: setting up fault injection: {e}");
        return ExitCode::FAILURE;
    }
    let fail = FailNth::open().expect("/proc/thread-self/fail-nth");
    let mode = common::mode();
    println!("faults: sweeping every operation in mode {mode}");
    let reports = run_all(mode, &fail);
    print_table(mode, &reports);
    if reports.iter().all(Report::clean) {
        ExitCode::SUCCESS
    } else {
        for r in reports.iter().filter(|r| !r.clean()) {
            eprintln!("faults: {} is not clean:", r.name);
            for l in r.leaks.iter().take(5) {
                eprintln!("  leak {l}");
            }
            if r.panics > 0 {
                eprintln!("  {} panics", r.panics);
            }
            for u in &r.unnamed {
                eprintln!("  an error that names no operation: {u}");
            }
            for w in r.warnings.iter().take(10) {
                eprintln!("  kernel: {w}");
            }
            if let Some(u) = &r.unfinished {
                eprintln!("  unfinished: {u}");
            }
        }
        ExitCode::FAILURE
    }
}

/// A fresh DMA space of `mode`, fallible (the sweep's operations return errors, not panics).
fn open_space(mode: IommuMode) -> uvfio::Result<DmaSpace> {
    if mode == IommuMode::NoIommu {
        // SAFETY: the sweep runs as root in a throwaway VM booted for no-IOMMU mode, and the
        // only DMA it could start is none: it programs no device to do DMA.
        return unsafe { DmaSpace::open_noiommu() };
    }
    DmaSpace::open(mode)
}

fn pci(var: &str) -> uvfio::pci::PciAddress {
    common::device(var).parse().expect("a PCI address")
}

/// Options for the sweep's buffers: edu's 28-bit reach, at the fixed IOVA where there is an
/// IOMMU.
fn options(mode: IommuMode) -> DmaOptions {
    let opts = DmaOptions::new().address_bits(28);
    if mode == IommuMode::NoIommu {
        opts
    } else {
        opts.iova(IOVA)
    }
}

fn run_all(mode: IommuMode, fail: &FailNth) -> Vec<Report> {
    let process = || Footprint::process();
    let mut reports = Vec::new();

    reports.push(sweep("open DMA space", fail, &process, &mut || {
        open_space(mode).map(drop)
    }));

    let edu = pci("UVFIO_TEST_EDU");
    reports.push(sweep(
        "open device (space, group or cdev, attach)",
        fail,
        &process,
        &mut || {
            let space = open_space(mode)?;
            let device = space.open_pci_device(&edu)?;
            drop(device);
            drop(space);
            Ok(())
        },
    ));

    // The operations on an open device share one space and device, opened without faults.
    let space = open_space(mode).expect("the sweep's DMA space");
    let device = space.open_pci_device(&edu).expect("edu");
    let books = || Footprint::process().with_space(&space);

    reports.push(sweep("region info + mmap BAR0", fail, &books, &mut || {
        let bar0 = device.region(RegionIndex::BAR0)?;
        bar0.read_u32(0).map(drop)
    }));
    reports.push(sweep(
        "device features (probe all)",
        fail,
        &books,
        &mut || device.features().map(drop),
    ));
    reports.push(sweep("enable + disable MSI", fail, &books, &mut || {
        device.enable_irqs(IrqIndex::MSI, 1)?.disable()
    }));
    reports.push(sweep(
        "DmaBuffer map + unmap (64 KiB)",
        fail,
        &books,
        &mut || {
            let mut buf = DmaBuffer::with_options(&space, 64 << 10, options(mode))?;
            buf.write::<u64>(0, 0x5a)?;
            drop(buf);
            Ok(())
        },
    ));
    reports.push(sweep(
        "DmaPool create + alloc + drop",
        fail,
        &books,
        &mut || {
            let pool = DmaPool::new(&space, 2048, 16, options(mode))?;
            let chunk = pool.alloc();
            drop(chunk);
            drop(pool);
            Ok(())
        },
    ));
    if mode != IommuMode::NoIommu {
        reports.push(raw_map_sweep(&space, fail, &books));
    }

    let testdev = space
        .open_pci_device(&pci("UVFIO_TEST_TESTDEV"))
        .expect("pci-testdev");
    reports.push(sweep(
        "ioeventfd register + unregister",
        fail,
        &books,
        &mut || {
            testdev
                .ioeventfd(RegionIndex::BAR0, 0, IoValue::U8(1))?
                .unregister()
        },
    ));
    drop(testdev);

    let nvme = space
        .open_pci_device(&pci("UVFIO_TEST_NVME"))
        .expect("nvme");
    if nvme.flags().contains(DeviceFlags::RESET) {
        reports.push(sweep("device reset (nvme)", fail, &books, &mut || {
            nvme.reset()
        }));
    }
    reports.push(sweep("PCI hot reset (nvme)", fail, &books, &mut || {
        let groups: Vec<&Group> = nvme.group().into_iter().collect();
        nvme.pci_hot_reset(&groups)
    }));
    drop(nvme);
    drop(device);
    drop(space);

    if mode != IommuMode::NoIommu && std::env::var("UVFIO_TEST_MTTY_A").is_ok() {
        reports.extend(mdev_sweeps(mode, fail));
    }
    reports
}

/// Raw mappings of caller memory: `VFIO_IOMMU_MAP_DMA` or `IOMMU_IOAS_MAP` at the fixed IOVA,
/// then the unmap.
fn raw_map_sweep(space: &DmaSpace, fail: &FailNth, books: &dyn Fn() -> Footprint) -> Report {
    const LEN: usize = 16 << 10;
    // Page-aligned, as the kernel wants it.
    let mut memory = memmap2::MmapMut::map_anon(LEN).expect("16 KiB of anonymous memory");
    let ptr = memory.as_mut_ptr();
    let report = sweep("raw map + unmap (16 KiB)", fail, books, &mut || {
        match (space.container(), space.ioas()) {
            // The raw calls leave the cleanup to their caller: like a careful one, the sweep
            // tries a failed unmap once more (the first error is the operation's result).
            (Some(c), _) => {
                // SAFETY: `memory` outlives the mapping, which is removed before this returns
                // (or was never made: the map failed).
                unsafe { c.map_dma_raw(ptr, IOVA, LEN as u64, DmaAccess::ReadWrite) }?;
                c.unmap_dma(IOVA, LEN as u64)
                    .inspect_err(|_| drop(c.unmap_dma(IOVA, LEN as u64)))
                    .map(drop)
            }
            (None, Some(ioas)) => {
                // SAFETY: as above.
                let at =
                    unsafe { ioas.map_raw(ptr, LEN as u64, DmaAccess::ReadWrite, Some(IOVA)) }?;
                ioas.unmap(at, LEN as u64)
                    .inspect_err(|_| drop(ioas.unmap(at, LEN as u64)))
                    .map(drop)
            }
            (None, None) => unreachable!("a DMA space is a container or an IOAS"),
        }
    });
    drop(memory);
    report
}

/// The mediated-device operations: an mtty instance created and removed, and mtty A's
/// migration arcs RUNNING -> STOP -> RUNNING.
fn mdev_sweeps(mode: IommuMode, fail: &FailNth) -> Vec<Report> {
    let mdevs = Mdevs::new();
    let parent = mdevs
        .parents()
        .expect("mdev parents")
        .into_iter()
        .find(|p| p.types.iter().any(|t| t.id == "mtty-2"))
        .expect("a parent offering mtty-2")
        .name;
    // The mdev books: instances on the bus, and what the type still offers.
    let mdev_books = || {
        let mut f = Footprint::process();
        let on_bus = std::fs::read_dir("/sys/bus/mdev/devices").map_or(0, |d| d.count() as u64);
        f.0.insert("mdevs", on_bus);
        let avail = mdevs
            .mdev_type(&parent, "mtty-2")
            .map_or(u64::MAX, |t| u64::from(t.available_instances));
        f.0.insert("mtty-2 available", avail);
        f
    };
    let mut reports = vec![sweep(
        "mdev create + remove (mtty-2)",
        fail,
        &mdev_books,
        &mut || MdevInstance::create(&parent, "mtty-2", None)?.remove(),
    )];

    let dir = PathBuf::from(std::env::var("UVFIO_TEST_MTTY_A").expect("UVFIO_TEST_MTTY_A"));
    let space = open_space(mode).expect("a space for mtty");
    let mtty: Device = space.open_device_at(&dir).expect("mtty A");
    let books = || Footprint::process().with_space(&space);
    let mig = mtty.migration().expect("mtty's migration");
    mig.recover().expect("mtty A to RUNNING");
    reports.push(sweep(
        "migration arcs RUNNING -> STOP -> RUNNING",
        fail,
        &books,
        &mut || {
            mig.set_state(uvfio::device::MigState::STOP)?;
            mig.set_state(uvfio::device::MigState::RUNNING).map(drop)
        },
    ));
    reports.push(sweep(
        "migration save (STOP_COPY, data fd)",
        fail,
        &books,
        &mut || {
            mig.recover()?;
            mig.save().map(drop)?;
            mig.recover().map(drop)
        },
    ));
    reports
}

fn print_table(mode: IommuMode, reports: &[Report]) {
    println!();
    println!("fault-injection sweep, mode {mode}");
    println!(
        "{:<44} {:>6} {:>8} {:>5} {:>6} {:>5} {:>5}  errnos",
        "operation", "points", "absorbed", "leaks", "panics", "warns", "known"
    );
    for r in reports {
        let errnos: Vec<String> = r
            .errnos
            .iter()
            .map(|(e, (n, _))| format!("{e}x{n}"))
            .collect();
        println!(
            "{:<44} {:>6} {:>8} {:>5} {:>6} {:>5} {:>5}  {}{}",
            r.name,
            r.points,
            r.absorbed,
            r.leaks.len(),
            r.panics,
            r.warnings.len(),
            r.known_bugs.len(),
            errnos.join(" "),
            if r.unfinished.is_some() {
                "  UNFINISHED"
            } else {
                ""
            }
        );
    }
    println!("examples of the errors seen:");
    for r in reports {
        for (e, (_, msg)) in &r.errnos {
            println!("  {} / {e}: {msg}", r.name);
        }
    }
    let mut known: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.known_bugs.iter().map(String::as_str))
        .collect();
    known.sort_unstable();
    known.dedup();
    if !known.is_empty() {
        println!("known kernel bugs hit (\"known\": not counted as kernel warnings):");
        for k in &known {
            println!("  {k}");
        }
    }
    let total = |f: &dyn Fn(&Report) -> usize| reports.iter().map(f).sum::<usize>();
    println!(
        "fault points: {}, leaks: {}, panics: {}, kernel warnings: {} (known kernel bugs hit: {})",
        total(&|r| r.points as usize),
        total(&|r| r.leaks.len()),
        total(&|r| r.panics as usize),
        total(&|r| r.warnings.len()),
        total(&|r| r.known_bugs.len())
    );
}
