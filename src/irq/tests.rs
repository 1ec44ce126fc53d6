//! Unit tests of [`Interrupts`] against the recording kernel double.

use std::os::fd::AsRawFd;

use vmm_sys_util::eventfd::EventFd;

use super::fake::*;
use super::fd::{borrow_eventfd, new_eventfd};
use super::Interrupts;
use crate::device::irq::{IrqFlags, IrqIndex, IrqInfo};
use crate::error::{Errno, Error};

#[test]
fn enable_binds_every_vector_from_zero_with_holes() {
    let kernel = Kernel::new("enable-holes");
    let mut fds = eventfds(3);
    fds[1] = None;
    let irqs = Interrupts::enable(Box::new(kernel.clone()), msix_info(5, true), fds).unwrap();
    let n = numbers(&irqs);
    assert_eq!(n[1], -1);
    assert_eq!(kernel.calls(), vec![Call::Bind(0, n)]);
    assert_eq!(irqs.len(), 3);
    assert_eq!(irqs.bound().map(|(v, _)| v).collect::<Vec<_>>(), [0, 2]);
    assert!(irqs.eventfd(1).is_none() && irqs.eventfd(7).is_none());
}

#[test]
fn enable_checks_the_count() {
    let kernel = Kernel::new("enable-count");
    for n in [0, 6] {
        let err = Interrupts::enable(Box::new(kernel.clone()), msix_info(5, true), eventfds(n))
            .unwrap_err();
        assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    }
    assert!(kernel.calls().is_empty(), "nothing reached the kernel");
}

#[test]
fn drop_disables_the_index_before_closing_the_eventfds() {
    let (kernel, irqs) = handle("drop-order", msix_info(4, true), 4);
    let fds = numbers(&irqs);
    assert!(fds.iter().all(|&fd| fd_is_open(fd)));
    drop(irqs);
    assert_eq!(kernel.calls().last(), Some(&Call::Disable));
    assert_eq!(
        *kernel.open_at_disable.lock().unwrap(),
        Some(true),
        "the eventfds were still open when the index was disabled"
    );
    // Disabled exactly once, and the claim is released.
    assert_eq!(
        kernel
            .calls()
            .iter()
            .filter(|c| **c == Call::Disable)
            .count(),
        1
    );
    let again = Interrupts::enable(Box::new(kernel.clone()), msix_info(4, true), eventfds(1));
    assert!(again.is_ok(), "the claim is released on drop");
}

#[test]
fn drop_closes_the_eventfds_after_disabling() {
    // High descriptor numbers, so no other test thread reuses them after they close.
    let kernel = Kernel::new("drop-close");
    let high: Vec<Option<EventFd>> = (0..2)
        .map(|i| {
            let e = new_eventfd().unwrap();
            let fd = nix::fcntl::fcntl(
                borrow_eventfd(&e),
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(4000 + i),
            )
            .unwrap();
            // SAFETY: test only: F_DUPFD_CLOEXEC returned a new descriptor that nothing
            // else owns; the EventFd takes it over.
            #[allow(unsafe_code)]
            Some(unsafe { <EventFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        })
        .collect();
    let nums: Vec<i32> = high.iter().flatten().map(AsRawFd::as_raw_fd).collect();
    assert!(nums.iter().all(|&fd| fd >= 4000));
    let irqs = Interrupts::enable(Box::new(kernel.clone()), msix_info(2, true), high).unwrap();
    drop(irqs);
    assert_eq!(*kernel.open_at_disable.lock().unwrap(), Some(true));
    assert!(
        nums.iter().all(|&fd| !fd_is_open(fd)),
        "the eventfds are closed after the handle is dropped"
    );
}

#[test]
fn drop_ignores_kernel_errors_and_disable_reports_them() {
    let (kernel, irqs) = handle("drop-errors", msix_info(2, true), 2);
    kernel.fail_next(&[Some(Errno::EIO)]);
    drop(irqs); // no panic
    let (kernel, irqs) = handle("disable-errors", msix_info(2, true), 2);
    kernel.fail_next(&[Some(Errno::EIO)]);
    let err = irqs.disable().unwrap_err();
    assert_eq!(err.errno(), Errno::EIO);
    assert_eq!(kernel.calls().last(), Some(&Call::Disable));
}

#[test]
fn one_handle_per_index_and_one_pci_interrupt_type() {
    let (kernel, msix) = handle("claims", msix_info(2, true), 1);
    let again = Interrupts::enable(Box::new(kernel.clone()), msix_info(2, true), eventfds(1));
    let err = again.unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let err = Interrupts::enable(Box::new(kernel.clone()), intx_info(), eventfds(1)).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("MSI-X is enabled"), "{err}");
    // ERR and REQ coexist with any of them.
    let req = IrqInfo {
        index: IrqIndex::REQ,
        flags: IrqFlags::EVENTFD,
        count: 1,
    };
    let r = Interrupts::enable(Box::new(kernel.clone()), req, eventfds(1)).unwrap();
    // Another device is independent.
    let (_, _other) = handle("claims-other", intx_info(), 1);
    drop(msix);
    let _intx = Interrupts::enable(Box::new(kernel.clone()), intx_info(), eventfds(1)).unwrap();
    drop(r);
}

#[test]
fn changing_and_removing_one_vector_touches_only_that_vector() {
    let (kernel, mut irqs) = handle("one-vector", msix_info(5, true), 5);
    let before = numbers(&irqs);
    let new = new_eventfd().unwrap();
    let new_fd = new.as_raw_fd();
    let old = irqs.set_vector(2, Some(new)).unwrap().unwrap();
    assert_eq!(old.as_raw_fd(), before[2]);
    let old3 = irqs.remove_vector(3).unwrap().unwrap();
    assert_eq!(old3.as_raw_fd(), before[3]);
    assert_eq!(
        kernel.calls()[1..],
        [Call::Bind(2, vec![new_fd]), Call::Bind(3, vec![-1])]
    );
    assert_eq!(
        numbers(&irqs),
        [before[0], before[1], new_fd, -1, before[4]]
    );
    // Removing a hole, or past the enabled range, asks nothing of the kernel.
    assert!(irqs.remove_vector(3).unwrap().is_none());
    assert_eq!(kernel.calls().len(), 4);
    // Out of the index's range.
    let err = irqs.set_vector(5, None).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
}

#[test]
fn noresize_growth_is_a_full_rearm_and_dynamic_growth_is_not() {
    let (kernel, mut irqs) = handle("rearm", msix_info(5, true), 2);
    let before = numbers(&irqs);
    let e = new_eventfd().unwrap();
    let fd = e.as_raw_fd();
    assert!(irqs.set_vector(4, Some(e)).unwrap().is_none());
    assert_eq!(
        kernel.calls()[1..],
        [
            Call::Disable,
            Call::Bind(0, vec![before[0], before[1], -1, -1, fd])
        ]
    );
    assert_eq!(irqs.len(), 5);

    let (kernel, mut irqs) = handle("dynamic", msix_info(5, false), 2);
    let e = new_eventfd().unwrap();
    let fd = e.as_raw_fd();
    irqs.set_vector(4, Some(e)).unwrap();
    assert_eq!(kernel.calls()[1..], [Call::Bind(4, vec![fd])]);
    assert_eq!(irqs.len(), 5);
    assert!(irqs.eventfd(3).is_none());
}

#[test]
fn a_range_with_holes_is_one_request() {
    let (kernel, mut irqs) = handle("range", msix_info(6, true), 6);
    let before = numbers(&irqs);
    let mut new = eventfds(3);
    new[1] = None;
    let new_fds: Vec<i32> = new
        .iter()
        .map(|e| e.as_ref().map_or(-1, AsRawFd::as_raw_fd))
        .collect();
    let old = irqs.set_vectors(2, new).unwrap();
    let old_fds: Vec<i32> = old
        .iter()
        .map(|e| e.as_ref().map_or(-1, AsRawFd::as_raw_fd))
        .collect();
    assert_eq!(old_fds, before[2..5]);
    assert_eq!(kernel.calls()[1..], [Call::Bind(2, new_fds.clone())]);
    assert_eq!(numbers(&irqs)[2..5], new_fds);
    assert_eq!(numbers(&irqs)[..2], before[..2]);
    assert_eq!(numbers(&irqs)[5], before[5]);
    // Empty or out of range.
    assert_eq!(
        irqs.set_vectors(0, Vec::new()).unwrap_err().errno(),
        Errno::ERANGE
    );
    assert_eq!(
        irqs.set_vectors(5, eventfds(2)).unwrap_err().errno(),
        Errno::ERANGE
    );
    assert_eq!(kernel.calls().len(), 2);
}

#[test]
fn a_range_past_the_enabled_part_rearms_and_trailing_holes_are_free() {
    let (kernel, mut irqs) = handle("range-rearm", msix_info(8, true), 2);
    let before = numbers(&irqs);
    // Vectors 1..6: one new eventfd at 3, holes elsewhere; the trailing holes (4, 5) lie
    // past the enabled range and are dropped from the request.
    let mut new: Vec<Option<EventFd>> = (0..5).map(|_| None).collect();
    new[2] = Some(new_eventfd().unwrap());
    let fd3 = new[2].as_ref().unwrap().as_raw_fd();
    let old = irqs.set_vectors(1, new).unwrap();
    assert_eq!(old.len(), 5);
    assert_eq!(old[0].as_ref().map(AsRawFd::as_raw_fd), Some(before[1]));
    assert!(old[1..].iter().all(Option::is_none));
    assert_eq!(
        kernel.calls()[1..],
        [Call::Disable, Call::Bind(0, vec![before[0], -1, -1, fd3])]
    );
    assert_eq!(irqs.len(), 4);
    assert_eq!(numbers(&irqs), [before[0], -1, -1, fd3]);
    // Only holes past the enabled range: nothing to do.
    let old = irqs.set_vectors(5, (0..3).map(|_| None).collect()).unwrap();
    assert_eq!(old.len(), 3);
    assert_eq!(kernel.calls().len(), 3);
}

#[test]
fn a_refused_range_puts_the_old_eventfds_back() {
    let (kernel, mut irqs) = handle("range-rollback", msix_info(4, false), 3);
    let before = numbers(&irqs);
    kernel.fail_next(&[Some(Errno::ENOSPC)]);
    let new = eventfds(3);
    let new_fds: Vec<i32> = new.iter().flatten().map(AsRawFd::as_raw_fd).collect();
    let err = irqs.set_vectors(1, new).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOSPC);
    // Dynamic MSI-X grows in place; the enabled part (1, 2) is restored.
    assert_eq!(
        kernel.calls()[1..],
        [
            Call::Bind(1, new_fds),
            Call::Bind(1, vec![before[1], before[2]])
        ]
    );
    assert_eq!(numbers(&irqs), before);
}

#[test]
fn a_refused_change_puts_the_old_eventfd_back() {
    let (kernel, mut irqs) = handle("rollback", msix_info(3, true), 3);
    let before = numbers(&irqs);
    kernel.fail_next(&[Some(Errno::EINVAL)]);
    let new = new_eventfd().unwrap();
    let new_fd = new.as_raw_fd();
    let err = irqs.set_vector(1, Some(new)).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(
        kernel.calls()[1..],
        [Call::Bind(1, vec![new_fd]), Call::Bind(1, vec![before[1]])]
    );
    assert_eq!(numbers(&irqs), before, "the handle is unchanged");
}

#[test]
fn a_refused_rearm_restores_the_old_set() {
    let (kernel, mut irqs) = handle("rearm-rollback", msix_info(4, true), 2);
    let before = numbers(&irqs);
    kernel.fail_next(&[None, Some(Errno::ENOSPC)]);
    let e = new_eventfd().unwrap();
    let fd = e.as_raw_fd();
    let err = irqs.set_vector(3, Some(e)).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOSPC);
    assert_eq!(
        kernel.calls()[1..],
        [
            Call::Disable,
            Call::Bind(0, vec![before[0], before[1], -1, fd]),
            Call::Bind(0, before.clone()),
        ]
    );
    assert_eq!(numbers(&irqs), before);
    assert_eq!(irqs.len(), 2);
}

#[test]
fn loopback_mask_and_unmask_requests() {
    let (kernel, irqs) = handle("loopback", msix_info(4, true), 3);
    irqs.trigger(1).unwrap();
    irqs.trigger_many(0, &[true, false, true]).unwrap();
    assert_eq!(
        kernel.calls()[1..],
        [
            Call::Fire(1, vec![true]),
            Call::Fire(0, vec![true, false, true])
        ]
    );
    // The double fires the eventfds like the kernel.
    assert_eq!(irqs.try_wait(0).unwrap(), Some(1));
    assert_eq!(irqs.try_wait(1).unwrap(), Some(1));
    assert_eq!(irqs.try_wait(2).unwrap(), Some(1));
    // Vector 3 is not enabled: the kernel would refuse, the handle says why.
    let err = irqs.trigger(3).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let err = irqs.trigger_many(2, &[true, true]).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    // MSI-X is not maskable.
    let err = irqs.mask(0).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    assert_eq!(kernel.calls().len(), 3);

    let (kernel, mut intx) = handle("intx-mask", intx_info(), 1);
    intx.mask(0).unwrap();
    intx.unmask(0).unwrap();
    intx.mask_many(0, &[true]).unwrap();
    intx.unmask_many(0, &[false]).unwrap();
    let resample = new_eventfd().unwrap();
    let rfd = resample.as_raw_fd();
    assert!(intx
        .set_unmask_eventfd(0, Some(resample))
        .unwrap()
        .is_none());
    assert_eq!(intx.unmask_eventfd(0).map(AsRawFd::as_raw_fd), Some(rfd));
    let err = intx.unmask(1).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    drop(intx);
    assert_eq!(
        kernel.calls()[1..],
        [
            Call::Mask(0, vec![true]),
            Call::Unmask(0, vec![true]),
            Call::Mask(0, vec![true]),
            Call::Unmask(0, vec![false]),
            Call::UnmaskFd(0, vec![rfd]),
            // Teardown: the unmask eventfd, then the triggers.
            Call::UnmaskFd(0, vec![-1]),
            Call::Disable,
        ]
    );
}

#[test]
fn interrupts_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Interrupts>();
}

#[test]
fn claims_belong_to_the_device_not_to_its_name() {
    // Two devices that report the same name (the old process-wide registry keyed claims by
    // "group/name" and aliased them): each has its own claims.
    let (_a, _msix_a) = handle("same-name", msix_info(2, true), 1);
    let b = Kernel::new("same-name");
    let msix_b = Interrupts::enable(Box::new(b.clone()), msix_info(2, true), eventfds(1));
    assert!(msix_b.is_ok(), "{:?}", msix_b.err());
    // A forgotten handle keeps its own device's index claimed (its device stays open and the
    // kernel keeps the index enabled) but blocks no other device.
    let (c, intx) = handle("forgotten", intx_info(), 1);
    std::mem::forget(intx);
    let err = Interrupts::enable(Box::new(c.clone()), intx_info(), eventfds(1)).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let d = Kernel::new("forgotten");
    let intx_d = Interrupts::enable(Box::new(d.clone()), intx_info(), eventfds(1));
    assert!(intx_d.is_ok(), "{:?}", intx_d.err());
}

#[test]
fn waiting_and_reading_counters_allocate_nothing() {
    use crate::test_alloc::allocations;
    let (_kernel, irqs) = handle("no-alloc", msix_info(4, true), 4);
    let mut waiter = irqs.waiter().unwrap();
    let mut fired = Vec::with_capacity(waiter.len());
    for round in 0..3 {
        irqs.eventfd(1).unwrap().write(1).unwrap();
        irqs.eventfd(3).unwrap().write(2).unwrap();
        let (n, got) =
            allocations(|| waiter.wait_into(Some(std::time::Duration::ZERO), &mut fired));
        assert_eq!(got.unwrap(), 2);
        assert_eq!(n, 0, "round {round}: Waiter::wait_into allocated {n} times");
        assert_eq!(
            fired.iter().map(|f| (f.key, f.count)).collect::<Vec<_>>(),
            [(1, 1), (3, 2)]
        );
    }
    drop(waiter);
    irqs.eventfd(0).unwrap().write(1).unwrap();
    let (n, got) = allocations(|| irqs.try_wait(0));
    assert_eq!((n, got.unwrap()), (0, Some(1)));
    irqs.eventfd(2).unwrap().write(1).unwrap();
    let (n, got) = allocations(|| irqs.wait(2, Some(std::time::Duration::ZERO)));
    assert_eq!((n, got.unwrap()), (0, Some(1)));
}

#[test]
fn a_callers_blocking_eventfd_is_refused_and_left_as_it_was() {
    let kernel = Kernel::new("blocking");
    let blocking = EventFd::new(0).unwrap();
    let dup = blocking.try_clone().unwrap();
    let err = Interrupts::enable(
        Box::new(kernel.clone()),
        msix_info(2, true),
        vec![Some(blocking)],
    )
    .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert!(err.to_string().contains("EFD_NONBLOCK"), "{err}");
    assert!(kernel.calls().is_empty(), "nothing reached the kernel");
    let flags = nix::fcntl::fcntl(borrow_eventfd(&dup), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(
        flags & nix::fcntl::OFlag::O_NONBLOCK.bits(),
        0,
        "the caller's open file (shared with its duplicates) was not changed"
    );
    // The same for a vector bound later.
    let (kernel, mut irqs) = handle("blocking-later", msix_info(2, true), 2);
    let blocking = EventFd::new(0).unwrap();
    let err = irqs.set_vector(1, Some(blocking)).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert_eq!(
        kernel.calls().len(),
        1,
        "only the enable reached the kernel"
    );
}

/// A host stress test of the wait path (issue 14.3): signallers write each vector's eventfd
/// from threads of their own while waiters on other threads read the counts. An eventfd adds
/// up what it is written, so the counts must sum to the writes exactly: a lost wake-up times
/// a waiter out (the timeout only turns that hang into a failure), a double count overshoots.
#[test]
fn waits_on_many_threads_count_every_signal_from_many_threads() {
    use std::time::Duration;
    const VECTORS: u32 = 4;
    const SIGNALS: u64 = 5_000;
    const HANG: Duration = Duration::from_secs(30);
    let (_kernel, irqs) = handle("stress", msix_info(VECTORS, true), VECTORS as usize);
    let irqs = &irqs;
    // One waiter per vector (`wait`), each against its own signaller.
    std::thread::scope(|s| {
        for v in 0..VECTORS {
            s.spawn(move || {
                for i in 0..SIGNALS {
                    irqs.eventfd(v).unwrap().write(1).unwrap();
                    if i % 97 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
            s.spawn(move || {
                let mut seen = 0;
                while seen < SIGNALS {
                    let n = irqs.wait(v, Some(HANG)).unwrap();
                    seen += n.unwrap_or_else(|| panic!("vector {v}: lost wake-up at {seen}"));
                }
                assert_eq!(seen, SIGNALS, "vector {v}");
            });
        }
    });
    for v in 0..VECTORS {
        assert_eq!(
            irqs.try_wait(v).unwrap(),
            None,
            "vector {v}: nothing left over"
        );
    }
    // One waiter for all vectors (`wait_any`) against a signaller per vector.
    let mut seen = [0u64; VECTORS as usize];
    std::thread::scope(|s| {
        for v in 0..VECTORS {
            s.spawn(move || {
                for _ in 0..SIGNALS {
                    irqs.eventfd(v).unwrap().write(1).unwrap();
                }
            });
        }
        while seen.iter().sum::<u64>() < SIGNALS * u64::from(VECTORS) {
            let fired = irqs.wait_any(Some(HANG)).unwrap();
            assert!(!fired.is_empty(), "lost wake-up at {seen:?}");
            for f in fired {
                assert!(f.count >= 1);
                seen[f.key as usize] += f.count;
            }
        }
    });
    assert_eq!(seen, [SIGNALS; VECTORS as usize]);
    for v in 0..VECTORS {
        assert_eq!(
            irqs.try_wait(v).unwrap(),
            None,
            "vector {v}: nothing left over"
        );
    }
}
