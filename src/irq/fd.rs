//! Eventfd plumbing: borrowing a vmm-sys-util [`EventFd`] as a [`BorrowedFd`], non-blocking
//! counter reads, and the checks that keep a bad descriptor from reaching `VFIO_DEVICE_SET_IRQS`.
//!
//! # Safety
//!
//! vmm-sys-util's `EventFd` (0.15) implements `AsRawFd` but not `AsFd`, although it owns its
//! descriptor: it holds a `std::fs::File` that is only closed when the `EventFd` is dropped.
//! [`borrow_eventfd`] therefore makes the one `unsafe` call of this module,
//! `BorrowedFd::borrow_raw`, on the descriptor of a live `EventFd`, with the `BorrowedFd`'s
//! lifetime tied to the borrow of that `EventFd`: the descriptor stays open for as long as the
//! `BorrowedFd` exists, which is all `borrow_raw` requires. Nothing here closes, duplicates into
//! an owner, or otherwise takes ownership of a descriptor it does not own.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::Errno;
use crate::trace::{self, Level};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use vmm_sys_util::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK};

/// Borrows the descriptor of a vmm-sys-util [`EventFd`], for the APIs that take a
/// [`BorrowedFd`] (such as [`Device::set_irqs`](crate::Device::set_irqs) with
/// [`IrqData::Eventfd`](crate::device::irq::IrqData::Eventfd)).
///
/// `EventFd` owns its descriptor but does not implement `AsFd`; this is the safe bridge.
///
/// # Examples
///
/// ```
/// use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
///
/// let evt = EventFd::new(EFD_NONBLOCK)?;
/// let fd = uvfio::irq::borrow_eventfd(&evt);
/// # let _ = fd;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn borrow_eventfd(eventfd: &EventFd) -> BorrowedFd<'_> {
    // SAFETY: `EventFd` owns an open descriptor (a `File`) that it closes only on drop; the
    // returned `BorrowedFd` borrows `eventfd`, so it cannot outlive that descriptor.
    unsafe { BorrowedFd::borrow_raw(eventfd.as_raw_fd()) }
}

/// A new eventfd with a zero counter, non-blocking and close-on-exec: the kind every handle of
/// this module creates for itself.
pub(crate) fn new_eventfd() -> Result<EventFd, Errno> {
    let args = |f: &mut std::fmt::Formatter<'_>| f.write_str("EFD_NONBLOCK|EFD_CLOEXEC");
    trace::call(Level::Debug, "eventfd", "a new eventfd", args, || {
        EventFd::new(EFD_NONBLOCK | EFD_CLOEXEC)
    })
    .map_err(|e| io_errno(&e))
}

/// Whether the eventfd's open file description is non-blocking (one `fcntl(F_GETFL)`).
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).map_err(Errno::from_nix)?);
    Ok(flags.contains(OFlag::O_NONBLOCK))
}

/// Reads (and so resets) the counter: `Some(n)` with the number of signals since the last read,
/// `None` when it was zero. The eventfd must be non-blocking.
pub(crate) fn read_counter(eventfd: &EventFd) -> Result<Option<u64>, Errno> {
    loop {
        match eventfd.read() {
            Ok(n) => return Ok(Some(n)),
            Err(e) => match io_errno(&e) {
                Errno::EAGAIN => return Ok(None),
                Errno::EINTR => continue,
                errno => return Err(errno),
            },
        }
    }
}

/// Why a descriptor cannot be an interrupt's eventfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAnEventfd {
    /// The descriptor is not open (`EBADF`).
    Closed,
    /// It is open but `/proc/self/fdinfo` shows another kind of file (`EINVAL`).
    OtherFile,
    /// It is an eventfd without `O_NONBLOCK`, where one is needed (`EINVAL`).
    Blocking,
}

impl NotAnEventfd {
    pub(crate) fn errno(self) -> Errno {
        match self {
            NotAnEventfd::Closed => Errno::EBADF,
            NotAnEventfd::OtherFile | NotAnEventfd::Blocking => Errno::EINVAL,
        }
    }
}

/// Checks that `fd` is an open eventfd before the kernel sees it.
///
/// The kernel tears down a vector's old trigger *before* it looks the new descriptor up, so a bad
/// descriptor in `VFIO_DEVICE_SET_IRQS` would leave the vector without any eventfd; checking
/// first keeps the index as it was. Openness is checked with `fcntl(F_GETFD)`; the kind of file
/// with `/proc/self/fdinfo/<fd>` (an eventfd shows an `eventfd-count:` line) when `/proc` is
/// readable, and is not checked otherwise.
pub(crate) fn check_eventfd(fd: BorrowedFd<'_>) -> Result<(), NotAnEventfd> {
    if let Err(nix::errno::Errno::EBADF) = fcntl(fd, FcntlArg::F_GETFD) {
        return Err(NotAnEventfd::Closed);
    }
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    match std::fs::read_to_string(path) {
        Ok(info) if is_eventfd_fdinfo(&info) => Ok(()),
        Ok(_) => Err(NotAnEventfd::OtherFile),
        // No /proc (or a kernel without fdinfo): leave the check to the kernel.
        Err(_) => Ok(()),
    }
}

/// Checks an eventfd a caller hands to an interrupt handle: an open, non-blocking eventfd
/// (the handle reads its counter without blocking; it never changes the flags, which the
/// descriptor shares with every duplicate of it). Done once, when the handle takes it.
pub(crate) fn check_adopted(fd: BorrowedFd<'_>) -> Result<(), NotAnEventfd> {
    check_eventfd(fd)?;
    match is_nonblocking(fd) {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotAnEventfd::Blocking),
        Err(_) => Err(NotAnEventfd::Closed),
    }
}

fn is_eventfd_fdinfo(info: &str) -> bool {
    info.lines().any(|l| l.starts_with("eventfd-count:"))
}

/// The errno of an `io::Error` from a system call (`EIO` for the impossible other kind).
pub(crate) fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn counters_read_once_and_reset() {
        let e = new_eventfd().unwrap();
        assert_eq!(read_counter(&e).unwrap(), None);
        e.write(3).unwrap();
        e.write(4).unwrap();
        assert_eq!(read_counter(&e).unwrap(), Some(7));
        assert_eq!(read_counter(&e).unwrap(), None);
    }

    #[test]
    fn adopted_eventfds_must_be_non_blocking_and_are_left_alone() {
        let blocking = EventFd::new(0).unwrap();
        assert_eq!(
            check_adopted(borrow_eventfd(&blocking)),
            Err(NotAnEventfd::Blocking)
        );
        assert_eq!(
            is_nonblocking(borrow_eventfd(&blocking)),
            Ok(false),
            "unchanged"
        );
        let e = new_eventfd().unwrap();
        assert_eq!(check_adopted(borrow_eventfd(&e)), Ok(()));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(check_adopted(file.as_fd()), Err(NotAnEventfd::OtherFile));
    }

    #[test]
    fn only_open_eventfds_pass_the_check() {
        let e = new_eventfd().unwrap();
        assert_eq!(check_eventfd(borrow_eventfd(&e)), Ok(()));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            check_eventfd(file.as_fd()),
            Err(NotAnEventfd::OtherFile),
            "/dev/null is not an eventfd"
        );
        assert_eq!(NotAnEventfd::OtherFile.errno(), Errno::EINVAL);
        assert_eq!(NotAnEventfd::Closed.errno(), Errno::EBADF);
        assert!(is_eventfd_fdinfo("pos:\t0\neventfd-count:    0\n"));
        assert!(!is_eventfd_fdinfo("pos:\t0\nflags:\t02\n"));
    }

    #[test]
    fn a_closed_descriptor_is_reported_as_closed() {
        // A number far above anything this process opens; never valid.
        // SAFETY: test only: the number is never an open descriptor here, and the BorrowedFd is
        // only passed to fcntl, which reports EBADF; it is never used for I/O or closed.
        #[allow(unsafe_code)]
        let fd = unsafe { BorrowedFd::borrow_raw(1 << 29) };
        assert_eq!(check_eventfd(fd), Err(NotAnEventfd::Closed));
    }
}
