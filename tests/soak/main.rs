//! The soak test (issue 14, item 4): the library's create/drop cycles repeated until a leak of
//! one byte or one fd per cycle would show, in the IOMMU mode of `UVFIO_IOMMU_MODE`
//! (tests/hw/common.rs), in the emulated IOMMU host:
//!
//! - `DmaPool`: 1 000 000 alloc + free of one chunk;
//! - `DmaBuffer`: 100 000 create (allocate, map) + drop (unmap, free) of 4 KiB;
//! - the whole stack: 10 000 cycles of DMA space (container or iommufd) → edu device → BAR0
//!   mapped and read → MSI enabled → all dropped.
//!
//! After each phase the process's fds, `VmPin`, `VmLck`, the DMA space's books (live buffers,
//! mapped and leaked bytes, IOVA allocations) and the legacy container's mapping budget
//! (`DMA_AVAIL`) must equal the baseline taken before it exactly, and the kernel log must
//! show no new warning. `UVFIO_SOAK_SCALE=N` divides every count by N (for a quick look);
//! the suite runs the full counts.
//!
//! Like the fault-injection sweep it measures the whole process, so it runs alone in its own
//! binary (`harness = false`) and is ignored unless asked for:
//!
//! ```text
//! tests/vm/cargo-vm test --release --test soak -- --include-ignored
//! ```

#[path = "../hw/common.rs"]
mod common;
#[path = "../faults/inject.rs"]
#[allow(dead_code)] // the sweep's fail-nth half is not used here
mod inject;

use std::process::ExitCode;
use std::time::Instant;

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions, DmaPool};
use uvfio::{DmaSpace, IommuMode};

use inject::{kernel_log, kernel_problems, Footprint};

/// One phase's outcome: its name, cycles run, seconds taken, and what did not come back.
struct Phase {
    name: &'static str,
    cycles: u64,
    secs: f64,
    leaks: Option<String>,
}

fn main() -> ExitCode {
    let asked = std::env::args().any(|a| a == "--include-ignored" || a == "--ignored");
    if !asked {
        println!(
            "soak: ignored (it needs the emulated IOMMU host): \
             tests/vm/cargo-vm test --release --test soak -- --include-ignored"
        );
        return ExitCode::SUCCESS;
    }
    let scale: u64 = std::env::var("UVFIO_SOAK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1);
    let mode = common::mode();
    let log_from = kernel_log().len();
    println!("soak: mode {mode}, counts divided by {scale}");

    let phases = vec![
        pool_phase(mode, 1_000_000 / scale),
        buffer_phase(mode, 100_000 / scale),
        stack_phase(mode, 10_000 / scale),
    ];
    let warnings = kernel_problems(&kernel_log(), log_from);

    println!(
        "{:<44} {:>9} {:>8} {:>10}  result",
        "phase", "cycles", "s", "µs/cycle"
    );
    for p in &phases {
        println!(
            "{:<44} {:>9} {:>8.1} {:>10.1}  {}",
            p.name,
            p.cycles,
            p.secs,
            p.secs * 1e6 / p.cycles.max(1) as f64,
            p.leaks.as_deref().unwrap_or("back to baseline")
        );
    }
    for w in &warnings {
        println!("kernel: {w}");
    }
    let leaks = phases.iter().filter(|p| p.leaks.is_some()).count();
    println!(
        "soak ({mode}): {} cycles, leaks: {leaks}, kernel warnings: {}",
        phases.iter().map(|p| p.cycles).sum::<u64>(),
        warnings.len()
    );
    if leaks == 0 && warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A DMA space of `mode` with edu open in it (a legacy container has no IOMMU model before
/// its first device), for the phases that keep one space.
fn space_with_edu(mode: IommuMode) -> (DmaSpace, uvfio::Device) {
    let space = space(mode);
    let device = space.open_pci_device(&edu()).expect("edu");
    (space, device)
}

fn edu() -> uvfio::pci::PciAddress {
    common::device("UVFIO_TEST_EDU")
        .parse()
        .expect("a PCI address")
}

/// The DMA space of `mode` (in no-IOMMU mode the unsafe one: see `common::space`).
fn space(mode: IommuMode) -> DmaSpace {
    if mode == IommuMode::NoIommu {
        // SAFETY: the soak runs as root in a throwaway VM booted for no-IOMMU mode; the only
        // device it opens (edu) is never told to do DMA.
        return unsafe { DmaSpace::open_noiommu() }.expect("the no-IOMMU DMA space");
    }
    DmaSpace::open(mode).expect("the DMA space")
}

/// Runs `cycle` `cycles` times between two footprints taken by `books`.
fn run(
    name: &'static str,
    cycles: u64,
    books: &dyn Fn() -> Footprint,
    cycle: &mut dyn FnMut(u64),
) -> Phase {
    let before = books();
    let start = Instant::now();
    for i in 0..cycles {
        cycle(i);
    }
    let secs = start.elapsed().as_secs_f64();
    let after = books();
    let leaks = (before != after).then(|| format!("LEAK: {before:?} -> {after:?}"));
    Phase {
        name,
        cycles,
        secs,
        leaks,
    }
}

fn pool_phase(mode: IommuMode, cycles: u64) -> Phase {
    let (space, _edu) = space_with_edu(mode);
    // Without an IOMMU a pool's memory must be physically contiguous: one page of base
    // pages is, more needs huge pages (the suite reserves none in no-IOMMU mode).
    let chunks = if mode == IommuMode::NoIommu { 2 } else { 64 };
    let pool = DmaPool::new(&space, 2048, chunks, DmaOptions::new()).expect("the soak's pool");
    let books = || Footprint::process().with_space(&space);
    let phase = run(
        "DmaPool alloc + free (2 KiB chunks)",
        cycles,
        &books,
        &mut |i| {
            let mut chunk = pool.alloc().expect("a free chunk");
            chunk.write::<u64>(0, i).expect("a write inside the chunk");
        },
    );
    assert_eq!(pool.available(), chunks, "every chunk is back in the pool");
    phase
}

fn buffer_phase(mode: IommuMode, cycles: u64) -> Phase {
    let (space, _edu) = space_with_edu(mode);
    let books = || Footprint::process().with_space(&space);
    run(
        "DmaBuffer create + drop (4 KiB)",
        cycles,
        &books,
        &mut |i| {
            let mut buf = DmaBuffer::new(&space, 4096).expect("a 4 KiB DMA buffer");
            buf.write::<u64>(0, i).expect("a write inside the buffer");
        },
    )
}

fn stack_phase(mode: IommuMode, cycles: u64) -> Phase {
    let edu = edu();
    // The process's books only: each cycle's space is gone when it ends.
    let books = Footprint::process;
    run(
        "space + edu + BAR0 + MSI, opened + dropped",
        cycles,
        &books,
        &mut |_| {
            let space = space(mode);
            let device = space.open_pci_device(&edu).expect("edu");
            let bar0 = device.region(RegionIndex::BAR0).expect("edu's BAR0");
            // edu's identification register: 0xRRmm00ed.
            let id = bar0.read_u32(0).expect("a read of BAR0");
            assert_eq!(id & 0xffff, 0x00ed, "edu's identification register");
            let msi = device.enable_irqs(IrqIndex::MSI, 1).expect("MSI enabled");
            drop(msi);
            drop(bar0);
            drop(device);
            drop(space);
        },
    )
}
