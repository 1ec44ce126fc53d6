//! ioeventfd with pci-testdev, bad input to the IRQ calls, awaiting an MSI, and the MSI/MSI-X
//! enable-trigger-disable cycle of the kernel selftests.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::time::{Duration, Instant};

use uvfio::device::irq::{IrqAction, IrqData};
use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::irq::{borrow_eventfd, Interrupts, IoValue};
use uvfio::{Device, Errno, Error};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::*;

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
