//! Hardware tests of interrupts (`uvfio::irq`) in the emulated IOMMU host: edu's MSI and INTx
//! (raise register, factorial completion, automask and unmask, the resample eventfd), e1000e's
//! MSI-X vectors changed and removed one at a time, the loopback trigger, ERR/REQ, ioeventfd
//! with pci-testdev, and bad input.
//!
//! Device registers are reached with pread/pwrite on the device fd (a small test-only helper,
//! independent of the crate's MMIO layer).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::time::{Duration, Instant};

use uvfio::device::irq::{IrqAction, IrqData};
use uvfio::device::{IrqFlags, IrqIndex, RegionIndex};
use uvfio::irq::{borrow_eventfd, Fired, Interrupts, IoValue};
use uvfio::{Device, Errno, Error};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::common::{device, open_device};

/// How long an interrupt that must arrive may take (TCG is slow, but MSI is milliseconds).
const ARRIVES: Duration = Duration::from_secs(5);
/// How long to watch for an interrupt that must not arrive.
const QUIET: Duration = Duration::from_millis(300);

/// Opens the device in the test variable `var` in a fresh container with type1v2.
fn open(var: &str) -> Device {
    open_device(&device(var))
}

/// Register access through pread/pwrite on the device fd, at a region's file offset.
struct Regs<'d> {
    device: &'d Device,
    base: u64,
    size: u64,
}

impl<'d> Regs<'d> {
    fn new(device: &'d Device, region: RegionIndex) -> Regs<'d> {
        let info = device.region_info(region).expect("region info");
        Regs {
            device,
            base: info.offset,
            size: info.size,
        }
    }

    fn read<const N: usize>(&self, off: u64) -> [u8; N] {
        assert!(off + N as u64 <= self.size, "read past the region");
        let mut b = [0u8; N];
        let n = nix::sys::uio::pread(self.device.as_fd(), &mut b, (self.base + off) as i64)
            .unwrap_or_else(|e| panic!("pread {N} bytes at {off:#x}: {e}"));
        assert_eq!(n, N);
        b
    }

    fn write(&self, off: u64, b: &[u8]) {
        assert!(off + b.len() as u64 <= self.size, "write past the region");
        let n = nix::sys::uio::pwrite(self.device.as_fd(), b, (self.base + off) as i64)
            .unwrap_or_else(|e| panic!("pwrite {} bytes at {off:#x}: {e}", b.len()));
        assert_eq!(n, b.len());
    }

    fn read8(&self, off: u64) -> u8 {
        self.read::<1>(off)[0]
    }
    fn write8(&self, off: u64, v: u8) {
        self.write(off, &[v]);
    }
    fn read16(&self, off: u64) -> u16 {
        u16::from_le_bytes(self.read(off))
    }
    fn write16(&self, off: u64, v: u16) {
        self.write(off, &v.to_le_bytes());
    }
    fn read32(&self, off: u64) -> u32 {
        u32::from_le_bytes(self.read(off))
    }
    fn write32(&self, off: u64, v: u32) {
        self.write(off, &v.to_le_bytes());
    }
}

/// Sets Memory Space and Bus Master in the PCI command register: MSI/MSI-X messages are DMA
/// writes, which QEMU (and real hardware) drop without bus mastering.
fn enable_bus_master(device: &Device) {
    let config = Regs::new(device, RegionIndex::CONFIG);
    let cmd = config.read16(4);
    config.write16(4, cmd | 0x2 | 0x4);
    assert_eq!(config.read16(4) & 0x6, 0x6, "command register kept MEM|BME");
}

/// Reads whatever is pending on an eventfd without blocking (0 if nothing).
fn drain(e: &EventFd) -> u64 {
    let mut fds = [nix::poll::PollFd::new(
        borrow_eventfd(e),
        nix::poll::PollFlags::POLLIN,
    )];
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
        Ok(1) => e.read().unwrap_or(0),
        _ => 0,
    }
}

/// Waits up to `QUIET` and asserts nothing arrives on `e`.
fn assert_quiet(e: &EventFd, what: &str) {
    std::thread::sleep(QUIET);
    assert_eq!(drain(e), 0, "{what}: an interrupt arrived that must not");
}

// ---------------------------------------------------------------------------------------------
// edu: 0x60 raises (value ORed into 0x24), 0x64 acks; factorial at 0x08 raises 0x1 when 0x20
// has 0x80. MSI when MSI is enabled, INTx (level) otherwise.

const EDU_FACTORIAL: u64 = 0x08;
const EDU_STATUS: u64 = 0x20;
const EDU_IRQ_STATUS: u64 = 0x24;
const EDU_IRQ_RAISE: u64 = 0x60;
const EDU_IRQ_ACK: u64 = 0x64;
const EDU_STATUS_IRQFACT: u32 = 0x80;

/// Opens edu with bus mastering and no interrupt left pending from an earlier test (edu has no
/// reset, so its state survives between tests).
fn open_edu() -> Device {
    let d = open("UVFIO_TEST_EDU");
    enable_bus_master(&d);
    let regs = Regs::new(&d, RegionIndex::BAR0);
    assert_eq!(regs.read32(0) & 0xff, 0xed, "edu identification");
    regs.write32(EDU_STATUS, 0);
    regs.write32(EDU_IRQ_ACK, u32::MAX);
    assert_eq!(regs.read32(EDU_IRQ_STATUS), 0);
    d
}

fn edu_factorial(regs: &Regs<'_>, n: u32) {
    regs.write32(EDU_STATUS, EDU_STATUS_IRQFACT);
    regs.write32(EDU_FACTORIAL, n);
}

fn edu_wait_factorial(regs: &Regs<'_>) -> u32 {
    let t0 = Instant::now();
    while regs.read32(EDU_STATUS) & 1 != 0 {
        assert!(t0.elapsed() < ARRIVES, "factorial never finished");
        std::thread::yield_now();
    }
    regs.read32(EDU_FACTORIAL)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn edu_msi_raise_and_factorial_deliver_to_the_eventfd() {
    let d = open_edu();
    let regs = Regs::new(&d, RegionIndex::BAR0);
    let info = d.irq_info(IrqIndex::MSI).unwrap();
    assert_eq!(info.count, 1, "{info:?}");
    assert!(
        info.flags.contains(IrqFlags::EVENTFD | IrqFlags::NORESIZE),
        "{info:?}"
    );
    assert!(!info.flags.contains(IrqFlags::MASKABLE), "{info:?}");

    let msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    assert_eq!((msi.index(), msi.len()), (IrqIndex::MSI, 1));
    assert_eq!(msi.try_wait(0).unwrap(), None, "nothing pending at enable");

    // The raise register.
    regs.write32(EDU_IRQ_RAISE, 0x1234);
    assert_eq!(msi.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    assert_eq!(regs.read32(EDU_IRQ_STATUS), 0x1234);
    regs.write32(EDU_IRQ_ACK, 0x1234);
    assert_eq!(regs.read32(EDU_IRQ_STATUS), 0);
    assert_eq!(
        msi.wait(0, Some(QUIET)).unwrap(),
        None,
        "one raise, one MSI"
    );

    // Factorial completion.
    edu_factorial(&regs, 5);
    assert_eq!(msi.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    assert_eq!(edu_wait_factorial(&regs), 120);
    assert_eq!(regs.read32(EDU_IRQ_STATUS), 0x1, "FACT_IRQ");
    regs.write32(EDU_IRQ_ACK, 0x1);
    regs.write32(EDU_STATUS, 0);

    // Three MSIs while nobody waits: counted, not lost, read at once. They are spaced out: an
    // edge interrupt that arrives while the kernel still handles the previous one on another
    // CPU is folded into it (handle_edge_irq replays it once), which is seen with 6.12 guests.
    for v in [0x10, 0x20, 0x40] {
        regs.write32(EDU_IRQ_RAISE, v);
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut total = 0;
    let t0 = Instant::now();
    while total < 3 && t0.elapsed() < ARRIVES {
        total += msi.wait(0, Some(ARRIVES)).unwrap().unwrap_or(0);
    }
    assert_eq!(total, 3);
    regs.write32(EDU_IRQ_ACK, 0x70);

    // wait_any and the Waiter see the same vector.
    regs.write32(EDU_IRQ_RAISE, 0x2);
    assert_eq!(
        msi.wait_any(Some(ARRIVES)).unwrap(),
        [Fired { key: 0, count: 1 }]
    );
    regs.write32(EDU_IRQ_ACK, 0x2);

    // Dropping the handle disables MSI before the eventfd closes: a duplicate sees nothing.
    let dup = msi.eventfd(0).unwrap().try_clone().unwrap();
    drop(msi);
    regs.write32(EDU_IRQ_RAISE, 0x4);
    assert_quiet(&dup, "MSI after the handle was dropped");
    regs.write32(EDU_IRQ_ACK, 0x4);
    // ... and the index is free again, for any interrupt type.
    let intx = d.enable_irqs(IrqIndex::INTX, 1).unwrap();
    intx.disable().unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn edu_intx_is_automasked_until_unmasked() {
    let d = open_edu();
    let regs = Regs::new(&d, RegionIndex::BAR0);
    let info = d.irq_info(IrqIndex::INTX).unwrap();
    assert_eq!(info.count, 1);
    assert!(
        info.flags
            .contains(IrqFlags::EVENTFD | IrqFlags::MASKABLE | IrqFlags::AUTOMASKED),
        "{info:?}"
    );
    let intx = d.enable_irqs(IrqIndex::INTX, 1).unwrap();
    let e = intx.eventfd(0).unwrap();
    assert_quiet(e, "INTx right after enable");

    // First interrupt: delivered, and the kernel masks the line.
    regs.write32(EDU_IRQ_RAISE, 0x1);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x1);
    // Second: the line is asserted again, but masked: nothing until unmask.
    regs.write32(EDU_IRQ_RAISE, 0x2);
    assert_quiet(e, "INTx while automasked");
    intx.unmask(0).unwrap();
    assert_eq!(
        intx.wait(0, Some(ARRIVES)).unwrap(),
        Some(1),
        "after unmask"
    );
    regs.write32(EDU_IRQ_ACK, 0x2);
    intx.unmask(0).unwrap();
    assert_quiet(e, "unmask with the line deasserted");

    // Acknowledged and unmasked: the next raise arrives at once.
    regs.write32(EDU_IRQ_RAISE, 0x4);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x4);
    intx.unmask(0).unwrap();

    // Explicit mask (DATA_NONE), then unmask (DATA_BOOL).
    intx.mask(0).unwrap();
    regs.write32(EDU_IRQ_RAISE, 0x8);
    assert_quiet(e, "INTx while masked");
    intx.unmask_many(0, &[true]).unwrap();
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x8);
    intx.unmask(0).unwrap();
    // DATA_BOOL false does nothing; true masks.
    intx.mask_many(0, &[false]).unwrap();
    regs.write32(EDU_IRQ_RAISE, 0x10);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1), "not masked");
    regs.write32(EDU_IRQ_ACK, 0x10);
    intx.mask_many(0, &[true]).unwrap();
    intx.unmask(0).unwrap();

    // Factorial completion over INTx.
    edu_factorial(&regs, 4);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    assert_eq!(edu_wait_factorial(&regs), 24);
    regs.write32(EDU_IRQ_ACK, 0x1);
    regs.write32(EDU_STATUS, 0);
    intx.unmask(0).unwrap();

    // The loopback trigger fires the eventfd without the device.
    intx.trigger(0).unwrap();
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    assert_eq!(regs.read32(EDU_IRQ_STATUS), 0);
    drop(intx);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn edu_intx_unmask_eventfd_unmasks_when_written() {
    let d = open_edu();
    let regs = Regs::new(&d, RegionIndex::BAR0);
    let mut intx = d.enable_irqs(IrqIndex::INTX, 1).unwrap();
    let resample = EventFd::new(EFD_NONBLOCK).unwrap();
    let resample_writer = resample.try_clone().unwrap();
    assert!(intx
        .set_unmask_eventfd(0, Some(resample))
        .unwrap()
        .is_none());
    assert!(intx.unmask_eventfd(0).is_some());

    regs.write32(EDU_IRQ_RAISE, 0x1);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x1);
    regs.write32(EDU_IRQ_RAISE, 0x2);
    assert_quiet(intx.eventfd(0).unwrap(), "automasked");
    // Writing the resample eventfd unmasks in the kernel, no ioctl: the pending line fires.
    resample_writer.write(1).unwrap();
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x2);
    resample_writer.write(1).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    regs.write32(EDU_IRQ_RAISE, 0x4);
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x4);

    // The mask eventfd (DATA_EVENTFD | ACTION_MASK) is in the header, but vfio-pci does not
    // implement it: the kernel's ENOTTY, typed, and INTx unharmed.
    let mask_fd = EventFd::new(EFD_NONBLOCK).unwrap();
    let err = d
        .set_irqs(
            IrqIndex::INTX,
            IrqAction::Mask,
            0,
            IrqData::Eventfd(&[Some(borrow_eventfd(&mask_fd))]),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::ENOTTY,
                ..
            }
        ),
        "{err}"
    );
    intx.trigger(0).unwrap();
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));

    // Removing it: writes no longer unmask.
    let old = intx.set_unmask_eventfd(0, None).unwrap();
    assert!(old.is_some());
    regs.write32(EDU_IRQ_RAISE, 0x8);
    resample_writer.write(1).unwrap();
    assert_quiet(intx.eventfd(0).unwrap(), "the removed resample eventfd");
    intx.unmask(0).unwrap();
    assert_eq!(intx.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    regs.write32(EDU_IRQ_ACK, 0x8);
    intx.disable().unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn loopback_trigger_fires_without_the_device() {
    let d = open_edu();
    let msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    msi.trigger(0).unwrap();
    assert_eq!(msi.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    msi.trigger_many(0, &[false]).unwrap();
    assert_eq!(msi.wait(0, Some(QUIET)).unwrap(), None, "DATA_BOOL false");
    msi.trigger_many(0, &[true]).unwrap();
    msi.trigger(0).unwrap();
    assert_eq!(msi.wait(0, Some(ARRIVES)).unwrap(), Some(2));
    // The raw form, DATA_NONE and DATA_BOOL with ACTION_TRIGGER.
    d.set_irqs(
        IrqIndex::MSI,
        IrqAction::Trigger,
        0,
        IrqData::None { count: 1 },
    )
    .unwrap();
    d.set_irqs(IrqIndex::MSI, IrqAction::Trigger, 0, IrqData::Bool(&[true]))
        .unwrap();
    assert_eq!(msi.wait(0, Some(ARRIVES)).unwrap(), Some(2));
    assert_eq!(
        Regs::new(&d, RegionIndex::BAR0).read32(EDU_IRQ_STATUS),
        0,
        "the device raised nothing"
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn err_and_req_notifications() {
    // REQ exists on every vfio-pci device; ERR only with a PCI Express capability.
    let edu = open_edu();
    let req = edu.notify_release_requests().unwrap();
    assert_eq!((req.index(), req.len()), (IrqIndex::REQ, 1));
    req.trigger(0).unwrap();
    assert_eq!(req.wait(0, Some(ARRIVES)).unwrap(), Some(1));
    let err = edu.notify_errors().unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    // REQ coexists with MSI.
    let msi = edu.enable_irqs(IrqIndex::MSI, 1).unwrap();
    drop((req, msi));

    let nic = open("UVFIO_TEST_E1000E_A");
    let errs = nic.notify_errors().unwrap();
    assert_eq!((errs.index(), errs.len()), (IrqIndex::ERR, 1));
    errs.trigger(0).unwrap();
    let req = nic.notify_release_requests().unwrap();
    req.trigger(0).unwrap();
    // One waiter over both handles, each with its own key.
    let mut waiter = errs.waiter_with([(0, "err")]).unwrap();
    waiter.add(&req, 0, "req").unwrap();
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while seen.len() < 2 && t0.elapsed() < ARRIVES {
        seen.extend(waiter.wait(Some(ARRIVES)).unwrap());
    }
    seen.sort_by_key(|f| f.key);
    assert_eq!(
        seen,
        [
            Fired {
                key: "err",
                count: 1
            },
            Fired {
                key: "req",
                count: 1
            }
        ]
    );
}

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

// ---------------------------------------------------------------------------------------------
// ioeventfd with pci-testdev: with a no-eventfd test selected (its index written at offset 0 of
// the BAR), each write of the test's data byte at its offset increments its count.

/// Selects the no-eventfd test of `regs`'s BAR and returns (offset, data, count).
fn testdev_select(regs: &Regs<'_>) -> (u64, u8, u32) {
    regs.write8(0, 0);
    let width = regs.read8(1);
    let offset = u64::from(regs.read32(4));
    let data = regs.read8(8);
    let count = regs.read32(12);
    let name: Vec<u8> = (16..40)
        .map(|i| regs.read8(i))
        .take_while(|&b| b != 0)
        .collect();
    let name = String::from_utf8_lossy(&name).into_owned();
    assert!(name.ends_with("no-eventfd"), "selected test {name:?}");
    assert_eq!(width, 1, "{name}: width");
    eprintln!("pci-testdev {name}: offset {offset:#x} data {data:#x} count {count}");
    (offset, data, count)
}

fn testdev_count(regs: &Regs<'_>) -> u32 {
    regs.read32(12)
}

/// Polls the count until it reaches `want` (the kernel performs ioeventfd writes
/// asynchronously, possibly in a worker).
fn wait_count(regs: &Regs<'_>, want: u32) -> u32 {
    let t0 = Instant::now();
    loop {
        let c = testdev_count(regs);
        if c >= want || t0.elapsed() > ARRIVES {
            return c;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn ioeventfd_writes_pci_testdev_registers() {
    let d = open("UVFIO_TEST_TESTDEV");
    // BAR1 is the I/O-port BAR ("portio-no-eventfd"), BAR0 the MMIO one ("mmio-no-eventfd").
    for bar in [RegionIndex::BAR1, RegionIndex::BAR0] {
        let regs = Regs::new(&d, bar);
        let (offset, data, count0) = testdev_select(&regs);
        // A direct write counts, as a sanity check of the protocol.
        regs.write8(offset, data);
        assert_eq!(testdev_count(&regs), count0 + 1, "{bar:?}: direct write");

        let io = d.ioeventfd(bar, offset, IoValue::U8(data)).unwrap();
        assert_eq!(
            (io.region(), io.offset(), io.value()),
            (bar, offset, IoValue::U8(data))
        );
        for i in 1..=3 {
            io.signal().unwrap();
            assert_eq!(
                wait_count(&regs, count0 + 1 + i),
                count0 + 1 + i,
                "{bar:?}: signal {i}"
            );
        }
        // The same registration twice is refused by the kernel.
        let err = d.ioeventfd(bar, offset, IoValue::U8(data)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Ioctl {
                    errno: Errno::EEXIST,
                    ..
                }
            ),
            "{err}"
        );
        // A wrong value is written too, but the device only counts its data byte.
        let other = d.ioeventfd(bar, offset, IoValue::U8(!data)).unwrap();
        other.signal().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            testdev_count(&regs),
            count0 + 4,
            "{bar:?}: wrong data ignored"
        );
        other.unregister().unwrap();

        // Dropping unregisters: signals through a duplicate do nothing any more.
        let dup = io.eventfd().try_clone().unwrap();
        drop(io);
        dup.write(1).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(testdev_count(&regs), count0 + 4, "{bar:?}: after drop");
        // ... and the same registration is possible again. The signal left pending in the
        // eventfd meanwhile is performed as soon as it is registered (the kernel checks for
        // one), then the new one.
        let again = d
            .ioeventfd_with(bar, offset, IoValue::U8(data), dup)
            .unwrap();
        assert_eq!(
            wait_count(&regs, count0 + 5),
            count0 + 5,
            "{bar:?}: pending signal"
        );
        again.signal().unwrap();
        assert_eq!(
            wait_count(&regs, count0 + 6),
            count0 + 6,
            "{bar:?}: after re-registering"
        );
        again.unregister().unwrap();
    }

    // Bad input: past the region's end, a region vfio-pci does not support, not an eventfd.
    let bar1 = d.region_info(RegionIndex::BAR1).unwrap();
    let err = d
        .ioeventfd(RegionIndex::BAR1, bar1.size - 1, IoValue::U16(0))
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let err = d
        .ioeventfd(RegionIndex::CONFIG, 0, IoValue::U8(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    let err = d.ioeventfd(12, 0, IoValue::U8(0)).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let (r, _w) = nix::unistd::pipe().unwrap();
    // SAFETY: test only: the pipe's read end is a fresh descriptor nothing else owns; the
    // EventFd takes it over and closes it on drop.
    let not_eventfd = unsafe { EventFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(r)) };
    let err = d
        .ioeventfd_with(RegionIndex::BAR0, 0, IoValue::U8(0), not_eventfd)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: typed errors, and the index left as it was.

/// Checks that edu's MSI still works end to end on `msi`: loopback and a device raise.
fn assert_msi_intact(d: &Device, msi: &Interrupts, what: &str) {
    let regs = Regs::new(d, RegionIndex::BAR0);
    msi.trigger(0).unwrap();
    assert_eq!(
        msi.wait(0, Some(ARRIVES)).unwrap(),
        Some(1),
        "{what}: loopback"
    );
    regs.write32(EDU_IRQ_RAISE, 0x100);
    assert_eq!(
        msi.wait(0, Some(ARRIVES)).unwrap(),
        Some(1),
        "{what}: device MSI"
    );
    regs.write32(EDU_IRQ_ACK, 0x100);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bad_input_is_a_typed_error_and_leaves_the_index_as_it_was() {
    let d = open_edu();
    let range =
        |e: &Error| e.errno() == Errno::ERANGE && matches!(e, Error::InvalidArgument { .. });

    // Before anything is enabled: index out of range, count too large, an index without
    // vectors, an index the kernel does not offer (ERR on conventional PCI).
    let err = d.enable_irqs(IrqIndex(7), 1).unwrap_err();
    assert!(range(&err), "{err}");
    let err = d.enable_irqs(IrqIndex::MSI, 2).unwrap_err();
    assert!(range(&err), "{err}");
    let err = d.enable_irqs(IrqIndex::MSI, 0).unwrap_err();
    assert!(range(&err), "{err}");
    let err = d.enable_irqs(IrqIndex::MSIX, 1).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    let err = d
        .set_irqs(
            IrqIndex::MSI,
            IrqAction::Trigger,
            0,
            IrqData::None { count: 2 },
        )
        .unwrap_err();
    assert!(range(&err), "{err}");

    let mut msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    let fd0 = msi.eventfd(0).unwrap().as_raw_fd();
    assert_msi_intact(&d, &msi, "fresh");

    // Vector out of range.
    let err = msi
        .set_vector(1, Some(EventFd::new(EFD_NONBLOCK).unwrap()))
        .unwrap_err();
    assert!(range(&err), "{err}");
    let err = msi.trigger(1).unwrap_err();
    assert!(range(&err), "{err}");
    let err = msi.wait(1, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    let err = d
        .set_irqs(
            IrqIndex::MSI,
            IrqAction::Trigger,
            1,
            IrqData::None { count: 1 },
        )
        .unwrap_err();
    assert!(range(&err), "{err}");
    // Mask on a non-maskable index: the handle and the raw form.
    let err = msi.mask(0).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    let err = d
        .set_irqs(
            IrqIndex::MSI,
            IrqAction::Mask,
            0,
            IrqData::None { count: 1 },
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    assert_msi_intact(&d, &msi, "after range and mask errors");

    // A closed eventfd through the raw form: refused before the kernel, which would otherwise
    // have dropped the vector's current eventfd first.
    let closed = EventFd::new(EFD_NONBLOCK).unwrap().as_raw_fd();
    // (The EventFd was dropped: `closed` is a closed number; the tests run single-threaded.)
    // SAFETY: test only: deliberately an I/O-safety violation, to check the crate refuses it;
    // the BorrowedFd is never used for I/O and closes nothing.
    let closed = unsafe { BorrowedFd::borrow_raw(closed) };
    let err = d
        .set_irqs(
            IrqIndex::MSI,
            IrqAction::Trigger,
            0,
            IrqData::Eventfd(&[Some(closed)]),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                errno: Errno::EBADF,
                ..
            }
        ),
        "{err}"
    );
    assert_msi_intact(&d, &msi, "after a closed eventfd");
    // A descriptor that is not an eventfd, raw and through the handle.
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = d
        .set_irqs(
            IrqIndex::MSI,
            IrqAction::Trigger,
            0,
            IrqData::Eventfd(&[Some(null.as_fd())]),
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    let (r, _w) = nix::unistd::pipe().unwrap();
    // SAFETY: test only: the pipe's read end is a fresh descriptor nothing else owns; the
    // EventFd takes it over and closes it on drop.
    let pipe = unsafe { EventFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(r)) };
    let err = msi.set_vector(0, Some(pipe)).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert_eq!(
        msi.eventfd(0).unwrap().as_raw_fd(),
        fd0,
        "the handle kept its eventfd"
    );
    assert_msi_intact(&d, &msi, "after a non-eventfd");

    // A second handle on the same index, or INTx while MSI is on: EBUSY from the crate.
    let err = d.enable_irqs(IrqIndex::MSI, 1).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let err = d.enable_irqs(IrqIndex::INTX, 1).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    // The raw form reaches the kernel, which refuses INTx while MSI is enabled.
    let e = EventFd::new(EFD_NONBLOCK).unwrap();
    let err = d
        .set_irqs(
            IrqIndex::INTX,
            IrqAction::Trigger,
            0,
            IrqData::Eventfd(&[Some(borrow_eventfd(&e))]),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    assert_msi_intact(&d, &msi, "after the refused INTx");
    msi.disable().unwrap();
}

#[cfg(feature = "async")]
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn edu_msi_can_be_awaited() {
    let d = open_edu();
    let regs = Regs::new(&d, RegionIndex::BAR0);
    let msi = d.enable_irqs(IrqIndex::MSI, 1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let vector = msi.async_vector(0).unwrap();
        regs.write32(EDU_IRQ_RAISE, 0x1);
        let n = tokio::time::timeout(ARRIVES, vector.wait())
            .await
            .expect("MSI within the timeout")
            .unwrap();
        assert_eq!(n, 1);
        regs.write32(EDU_IRQ_ACK, 0x1);
        regs.write32(EDU_IRQ_RAISE, 0x2);
        let n = tokio::time::timeout(ARRIVES, msi.wait_async(0))
            .await
            .expect("MSI within the timeout")
            .unwrap();
        assert_eq!(n, 1);
        regs.write32(EDU_IRQ_ACK, 0x2);
    });
}

/// The kernel selftest `vfio_pci_irq_test` (`msi` and `msix` × `enable_trigger_disable`): up to
/// 16 vectors enabled; each eventfd reads `EAGAIN` before its vector is triggered and exactly 1
/// (8 bytes) after a `DATA_NONE` trigger of that vector alone; then the index is disabled, and
/// a trigger of it is refused. edu's MSI, e1000e's and nvme's MSI-X.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn pci_irq_msi_msix_enable_trigger_disable() {
    for (var, index) in [
        ("UVFIO_TEST_EDU", IrqIndex::MSI),
        ("UVFIO_TEST_E1000E_A", IrqIndex::MSIX),
        ("UVFIO_TEST_NVME", IrqIndex::MSIX),
    ] {
        let d = open(var);
        let count = d.irq_info(index).unwrap().count.min(16);
        assert!(count > 0, "{var}: {index:?}");
        let irqs = d.enable_irqs(index, count).unwrap();
        let read = |v: u32| irqs.eventfd(v).expect("every vector has an eventfd").read();
        for v in 0..count {
            let before = read(v).expect_err("nothing fired yet");
            assert_eq!(
                before.raw_os_error(),
                Some(libc::EAGAIN),
                "{var} {index:?} vector {v} before its trigger: {before}"
            );
            d.set_irqs(index, IrqAction::Trigger, v, IrqData::None { count: 1 })
                .unwrap();
            assert_eq!(read(v).unwrap(), 1, "{var} {index:?} vector {v}");
            // Only that vector fired.
            for other in (0..count).filter(|&o| o != v) {
                assert!(
                    read(other).is_err(),
                    "{var} {index:?}: {other} fired with {v}"
                );
            }
        }
        irqs.disable().unwrap();
        let err = d
            .set_irqs(index, IrqAction::Trigger, 0, IrqData::None { count: 1 })
            .unwrap_err();
        assert_eq!(
            err.errno(),
            Errno::EINVAL,
            "{var} {index:?} disabled: {err}"
        );
    }
}
