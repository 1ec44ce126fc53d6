//! e1000e MSI-X: vectors changed, removed and added one at a time.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use uvfio::device::{IrqFlags, IrqIndex, RegionIndex};
use uvfio::irq::Interrupts;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::*;

// ---------------------------------------------------------------------------------------------
// e1000e MSI-X: IVAR maps each cause to a vector; ICS raises causes; ICR is write-1-to-clear.

const E1000_ICR: u64 = 0xc0;
const E1000_ICS: u64 = 0xc8;
const E1000_IMS: u64 = 0xd0;
const E1000_IMC: u64 = 0xd8;
const E1000_IVAR: u64 = 0xe4;
/// RXQ0, RXQ1, TXQ0, TXQ1, OTHER: ICR bits 20..=24, IVAR fields 0..=4.
const CAUSES: [u32; 5] = [1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24];

/// Maps cause k to MSI-X vector k (IVAR field k = valid | k) and unmasks the five causes.
fn e1000e_setup(regs: &Regs<'_>) {
    regs.write32(E1000_IMC, u32::MAX);
    regs.write32(E1000_ICR, u32::MAX);
    let ivar = (0..5u32).fold(0, |acc, k| acc | ((0x8 | k) << (4 * k)));
    regs.write32(E1000_IVAR, ivar);
    assert_eq!(regs.read32(E1000_IVAR) & 0xfffff, ivar);
    regs.write32(E1000_IMS, CAUSES.iter().fold(0, |a, c| a | c));
}

/// Raises cause `k` (vector k) and clears it again once delivered.
fn e1000e_fire(regs: &Regs<'_>, k: usize) {
    regs.write32(E1000_ICS, CAUSES[k]);
}

fn e1000e_clear(regs: &Regs<'_>, k: usize) {
    regs.write32(E1000_ICR, CAUSES[k]);
}

/// Fires vector `k` and checks it arrives exactly once on `e` and on no other vector of
/// `msix`.
fn expect_only(regs: &Regs<'_>, msix: &Interrupts, k: usize, e: &EventFd) {
    e1000e_fire(regs, k);
    let t0 = Instant::now();
    let mut got = 0;
    while got == 0 && t0.elapsed() < ARRIVES {
        got += drain(e);
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    got += drain(e);
    e1000e_clear(regs, k);
    assert_eq!(got, 1, "vector {k}");
    for (v, other) in msix.bound() {
        if !std::ptr::eq(other, e) {
            assert_eq!(drain(other), 0, "vector {v} fired when {k} was raised");
        }
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn e1000e_msix_vectors_change_and_remove_without_disturbing_the_rest() {
    let d = open("UVFIO_TEST_E1000E_A");
    enable_bus_master(&d);
    let regs = Regs::new(&d, RegionIndex::BAR0);
    let info = d.irq_info(IrqIndex::MSIX).unwrap();
    assert_eq!(info.count, 5, "{info:?}");
    eprintln!("MSI-X info: {info:?}");
    e1000e_setup(&regs);

    let mut msix = d.enable_irqs(IrqIndex::MSIX, 5).unwrap();
    assert_eq!(msix.len(), 5);
    for k in 0..5 {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }

    // Change vector 2: the new eventfd gets it, the old one nothing.
    let new2 = EventFd::new(EFD_NONBLOCK).unwrap();
    let new2_fd = new2.as_raw_fd();
    let old2 = msix
        .set_vector(2, Some(new2))
        .unwrap()
        .expect("vector 2 had one");
    assert_eq!(msix.eventfd(2).unwrap().as_raw_fd(), new2_fd);
    expect_only(&regs, &msix, 2, msix.eventfd(2).unwrap());
    assert_eq!(drain(&old2), 0, "the replaced eventfd");

    // Remove vector 3: it stops, the others keep firing.
    let old3 = msix.remove_vector(3).unwrap().expect("vector 3 had one");
    assert!(msix.eventfd(3).is_none());
    e1000e_fire(&regs, 3);
    assert_quiet(&old3, "the removed vector 3");
    for (v, e) in msix.bound() {
        assert_eq!(drain(e), 0, "vector {v} fired for cause 3");
    }
    e1000e_clear(&regs, 3);
    for k in [0, 1, 2, 4] {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }

    // Bind vector 3 again. The message raised while it was unbound may still be pending in
    // the device (MSI-X PBA) and arrive as soon as it is bound: drain it first.
    msix.set_vector(3, Some(old3)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drain(msix.eventfd(3).unwrap());
    for k in 0..5 {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }

    // The loopback trigger reaches every vector, and the waiter says which.
    msix.trigger_many(0, &[true, false, true, true, false])
        .unwrap();
    msix.trigger(4).unwrap();
    let mut waiter = msix.waiter().unwrap();
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while seen.len() < 4 && t0.elapsed() < ARRIVES {
        seen.extend(waiter.wait(Some(ARRIVES)).unwrap());
    }
    seen.sort_by_key(|f| f.key);
    let keys: Vec<u32> = seen.iter().map(|f| f.key).collect();
    assert_eq!(keys, [0, 2, 3, 4]);
    assert!(seen.iter().all(|f| f.count == 1), "{seen:?}");
    drop(waiter);

    regs.write32(E1000_IMC, u32::MAX);
    msix.disable().unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn e1000e_msix_grows_past_the_enabled_range() {
    let d = open("UVFIO_TEST_E1000E_B");
    enable_bus_master(&d);
    let regs = Regs::new(&d, RegionIndex::BAR0);
    e1000e_setup(&regs);
    let info = d.irq_info(IrqIndex::MSIX).unwrap();
    // Vectors 0 and 1 only (vector 1 a hole at first).
    let e0 = EventFd::new(EFD_NONBLOCK).unwrap();
    let mut msix = d
        .enable_irqs_with(IrqIndex::MSIX, [Some(e0), None])
        .unwrap();
    assert_eq!(msix.len(), 2);
    assert!(msix.eventfd(1).is_none());
    expect_only(&regs, &msix, 0, msix.eventfd(0).unwrap());

    // Vector 4 is past the enabled range: with NORESIZE (MSI-X before Linux 6.5) the handle
    // re-arms the index with every vector, without it the kernel grows it in place.
    eprintln!(
        "MSI-X NORESIZE: {} ({info:?})",
        info.flags.contains(IrqFlags::NORESIZE)
    );
    let e4 = EventFd::new(EFD_NONBLOCK).unwrap();
    assert!(msix.set_vector(4, Some(e4)).unwrap().is_none());
    assert_eq!(msix.len(), 5);
    msix.set_vector(1, Some(EventFd::new(EFD_NONBLOCK).unwrap()))
        .unwrap();
    for k in [0, 1, 4] {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }
    // The holes 2 and 3 in one request (start 2, count 2), then 1 and 2 removed in one.
    let old = msix
        .set_vectors(
            2,
            vec![
                Some(EventFd::new(EFD_NONBLOCK).unwrap()),
                Some(EventFd::new(EFD_NONBLOCK).unwrap()),
            ],
        )
        .unwrap();
    assert!(old.iter().all(Option::is_none));
    for k in 0..5 {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }
    let old = msix.set_vectors(1, vec![None, None]).unwrap();
    assert!(old.iter().all(Option::is_some));
    for k in [1, 2] {
        e1000e_fire(&regs, k);
        std::thread::sleep(QUIET);
        e1000e_clear(&regs, k);
        for (v, e) in msix.bound() {
            assert_eq!(drain(e), 0, "vector {v} fired for removed vector {k}");
        }
        assert_eq!(drain(old[k - 1].as_ref().unwrap()), 0, "removed vector {k}");
    }
    for k in [0, 3, 4] {
        expect_only(&regs, &msix, k, msix.eventfd(k as u32).unwrap());
    }
    regs.write32(E1000_IMC, u32::MAX);
}
