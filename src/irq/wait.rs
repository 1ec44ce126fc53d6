//! Waiting for interrupts: one vector with `poll`, many at once with `epoll`.
//!
//! An eventfd counts the signals it receives until it is read, and a read returns the count and
//! resets it. Every wait here reads a ready counter exactly once and reports the count, so
//! interrupts that arrive while nobody waits are never lost (they show up as a count above 1),
//! and one wake-up never consumes the signals of the next.

use std::time::{Duration, Instant};

use crate::errno::IntoErrno;
use crate::error::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use vmm_sys_util::eventfd::EventFd;

use super::fd::{borrow_eventfd, read_counter};
use super::Interrupts;
use crate::error::{Error, Object, Result};

/// When a wait started and how long it may last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// `None` waits forever (as does a timeout too large to represent).
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline(timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// The timeout for the next `poll`/`epoll_wait`, in milliseconds rounded up (so a wait never
    /// ends early), `NONE` for no deadline, capped at `i32::MAX` (the caller loops on).
    pub(crate) fn next_timeout(self) -> PollTimeout {
        let Some(deadline) = self.0 else {
            return PollTimeout::NONE;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_nanos().div_ceil(1_000_000);
        PollTimeout::try_from(ms.min(i32::MAX as u128)).unwrap_or(PollTimeout::MAX)
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }
}

/// Waits until `eventfd` is signalled or `timeout` passes; reads the counter once.
pub(crate) fn wait_eventfd(
    eventfd: &EventFd,
    timeout: Option<Duration>,
    object: impl Fn() -> Object,
) -> Result<Option<u64>> {
    let deadline = Deadline::after(timeout);
    loop {
        let mut fds = [PollFd::new(borrow_eventfd(eventfd), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, deadline.next_timeout()).map_err(Errno::from_nix) {
            Ok(0) => {
                if deadline.passed() {
                    return Ok(None);
                }
            }
            Ok(_) => {
                let revents = fds[0].revents().unwrap_or(PollFlags::empty());
                if revents.contains(PollFlags::POLLNVAL) {
                    return Err(syscall("poll", object(), Errno::EBADF));
                }
                match read_counter(eventfd) {
                    Ok(Some(n)) => return Ok(Some(n)),
                    // Another reader took it first: wait for the next one.
                    Ok(None) => {}
                    Err(errno) => return Err(syscall("read", object(), errno)),
                }
            }
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(syscall("poll", object(), errno)),
        }
        if deadline.passed() {
            return Ok(None);
        }
    }
}

fn syscall(op: &'static str, object: Object, errno: impl IntoErrno) -> Error {
    Error::Syscall {
        op,
        object: object.into(),
        errno: errno.into_errno(),
    }
}

/// A vector that fired, as reported by [`Waiter::wait`] and [`Interrupts::wait_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fired<K = u32> {
    /// The key the vector was added with (the vector number for [`Interrupts::waiter`]).
    pub key: K,
    /// How many times it fired since it was last read (at least 1).
    pub count: u64,
}

struct Entry<'a, K> {
    key: K,
    eventfd: &'a EventFd,
    source: &'a Interrupts,
}

/// Waits on many interrupt vectors at once (one epoll instance), possibly of several handles and
/// devices, and says which fired and how many times.
///
/// Built by [`Interrupts::waiter`] or [`Interrupts::waiter_with`]; more vectors join with
/// [`Waiter::add`]. The waiter borrows the handles, so their vectors cannot change while it
/// exists. Reuse one waiter for repeated waits: building one costs an `epoll_create1` and one
/// `epoll_ctl` per vector.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use uvfio::device::IrqIndex;
/// # let device: uvfio::Device = unimplemented!();
/// let msix = device.enable_irqs(IrqIndex::MSIX, 3)?;
/// let req = device.notify_release_requests()?;
/// let mut waiter = msix.waiter()?;
/// waiter.add(&req, 0, u32::MAX)?;
/// loop {
///     for fired in waiter.wait(Some(Duration::from_millis(100)))? {
///         match fired.key {
///             u32::MAX => return Ok(()), // the host wants the device back
///             vector => println!("vector {vector}: {} interrupts", fired.count),
///         }
///     }
/// }
/// # Ok::<(), uvfio::Error>(())
/// ```
pub struct Waiter<'a, K = u32> {
    epoll: Epoll,
    entries: Vec<Entry<'a, K>>,
    events: Vec<EpollEvent>,
    owner: &'a Interrupts,
}

impl<K: std::fmt::Debug> std::fmt::Debug for Waiter<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field(
                "entries",
                &self
                    .entries
                    .iter()
                    .map(|e| {
                        (
                            &e.key,
                            e.source.index(),
                            std::os::fd::AsRawFd::as_raw_fd(e.eventfd),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<'a, K: Copy> Waiter<'a, K> {
    fn new(owner: &'a Interrupts) -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|errno| syscall("epoll_create1", owner.object(), errno))?;
        Ok(Waiter {
            epoll,
            entries: Vec::new(),
            events: Vec::new(),
            owner,
        })
    }

    /// Adds `vector` of `interrupts` (any handle, of any device), reported as `key`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the vector has no eventfd; [`Error::Syscall`] if
    /// `epoll_ctl` fails (`EEXIST` when the same eventfd was added twice).
    pub fn add(&mut self, interrupts: &'a Interrupts, vector: u32, key: K) -> Result<()> {
        let eventfd = interrupts.bound_eventfd("Waiter::add", vector)?;
        let pos = self.entries.len() as u64;
        self.epoll
            .add(
                borrow_eventfd(eventfd),
                EpollEvent::new(EpollFlags::EPOLLIN, pos),
            )
            .map_err(|errno| syscall("epoll_ctl", interrupts.object(), errno))?;
        self.entries.push(Entry {
            key,
            eventfd,
            source: interrupts,
        });
        self.events.push(EpollEvent::empty());
        Ok(())
    }

    /// The number of vectors waited on.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no vector is waited on (a wait then only times out).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Waits until at least one vector fires or `timeout` passes (`None`: forever), and returns
    /// the vectors that fired, in the order they were added, each read exactly once. An empty
    /// list means the timeout passed.
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] if `epoll_wait` or reading a counter fails.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<Fired<K>>> {
        let mut fired = Vec::new();
        self.wait_into(timeout, &mut fired)?;
        Ok(fired)
    }

    /// [`Waiter::wait`] into a caller's vector (cleared first), so that a loop does not
    /// allocate: a wake makes no allocation once `fired` has room for [`Waiter::len`] entries,
    /// and no system call beyond `epoll_wait` and one `read` per vector that fired. Returns how
    /// many vectors fired.
    ///
    /// # Errors
    ///
    /// As [`Waiter::wait`].
    pub fn wait_into(
        &mut self,
        timeout: Option<Duration>,
        fired: &mut Vec<Fired<K>>,
    ) -> Result<usize> {
        fired.clear();
        let deadline = Deadline::after(timeout);
        loop {
            let ready = if self.events.is_empty() {
                // epoll_wait refuses an empty event buffer; sleep out the timeout instead.
                let mut none = [EpollEvent::empty()];
                self.epoll
                    .wait(&mut none, deadline.next_timeout())
                    .map(|_| 0)
            } else {
                self.epoll.wait(&mut self.events, deadline.next_timeout())
            };
            match ready.map_err(Errno::from_nix) {
                Ok(n) => {
                    // n <= events.len(): epoll_wait fills at most the buffer it is given.
                    // In the order the vectors were added, each once: sorted in place, so a
                    // wake allocates nothing.
                    let events = self.events.get_mut(..n).unwrap_or_default();
                    events.sort_unstable_by_key(EpollEvent::data);
                    let mut last = None;
                    for event in events.iter() {
                        let pos = event.data();
                        if last == Some(pos) {
                            continue;
                        }
                        last = Some(pos);
                        let Some(entry) =
                            usize::try_from(pos).ok().and_then(|p| self.entries.get(p))
                        else {
                            continue;
                        };
                        match read_counter(entry.eventfd) {
                            Ok(Some(count)) => fired.push(Fired {
                                key: entry.key,
                                count,
                            }),
                            Ok(None) => {}
                            Err(errno) => {
                                return Err(syscall("read", entry.source.object(), errno))
                            }
                        }
                    }
                    if !fired.is_empty() {
                        return Ok(fired.len());
                    }
                }
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(syscall("epoll_wait", self.owner.object(), errno)),
            }
            if deadline.passed() {
                return Ok(0);
            }
        }
    }
}

impl Interrupts {
    /// Waits until `vector` fires or `timeout` passes (`None`: forever). Returns how many times
    /// it fired since its counter was last read (read exactly once, so nothing is lost), or
    /// `None` on timeout.
    ///
    /// The count is of eventfd signals, not of device messages: interrupts of one vector that
    /// arrive before the counter is read add up, and a device may itself coalesce several
    /// events into one interrupt. Drivers poll their completion state after each wake rather
    /// than expecting one wake per event.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the vector has no eventfd; [`Error::Syscall`] if `poll`
    /// or `read` fails.
    pub fn wait(&self, vector: u32, timeout: Option<Duration>) -> Result<Option<u64>> {
        let eventfd = self.bound_eventfd("wait", vector)?;
        wait_eventfd(eventfd, timeout, || self.object())
    }

    /// Reads `vector`'s counter without waiting: `Some(n)` if it fired `n` times since the last
    /// read, `None` if it did not fire.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::wait`].
    pub fn try_wait(&self, vector: u32) -> Result<Option<u64>> {
        let eventfd = self.bound_eventfd("try_wait", vector)?;
        read_counter(eventfd).map_err(|errno| syscall("read", self.object(), errno))
    }

    /// A [`Waiter`] on every vector that has an eventfd, keyed by vector number.
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] if `epoll_create1` or `epoll_ctl` fails.
    pub fn waiter(&self) -> Result<Waiter<'_, u32>> {
        let bound: Vec<u32> = self.bound().map(|(v, _)| v).collect();
        self.waiter_with(bound.into_iter().map(|v| (v, v)))
    }

    /// A [`Waiter`] on the given vectors, each reported with its key.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::waiter`], and [`Error::InvalidArgument`] for a vector without an
    /// eventfd.
    pub fn waiter_with<K: Copy>(
        &self,
        vectors: impl IntoIterator<Item = (u32, K)>,
    ) -> Result<Waiter<'_, K>> {
        let mut waiter = Waiter::new(self)?;
        for (vector, key) in vectors {
            waiter.add(self, vector, key)?;
        }
        Ok(waiter)
    }

    /// Waits until any vector fires or `timeout` passes, and returns which fired and how often
    /// (empty on timeout). Builds a [`Waiter`] for the call; keep one from
    /// [`Interrupts::waiter`] to wait repeatedly.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::waiter`] and [`Waiter::wait`].
    pub fn wait_any(&self, timeout: Option<Duration>) -> Result<Vec<Fired>> {
        self.waiter()?.wait(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{handle, intx_info, msix_info};
    use super::*;
    use std::sync::Barrier;
    use std::thread;

    #[test]
    fn deadlines_round_up_and_cap() {
        assert_eq!(Deadline::after(None).next_timeout(), PollTimeout::NONE);
        assert!(!Deadline::after(None).passed());
        let t = Deadline::after(Some(Duration::from_micros(10))).next_timeout();
        assert!(t == PollTimeout::try_from(1u32).unwrap() || t == PollTimeout::ZERO);
        let t = Deadline::after(Some(Duration::from_secs(1 << 40))).next_timeout();
        assert_eq!(t, PollTimeout::MAX);
        // Beyond what Instant can represent: forever.
        assert_eq!(
            Deadline::after(Some(Duration::MAX)).next_timeout(),
            PollTimeout::NONE
        );
        assert!(Deadline::after(Some(Duration::ZERO)).passed());
    }

    #[test]
    fn wait_times_out_then_reads_each_wake_once() {
        let (_, irqs) = handle("wait-one", msix_info(2, true), 2);
        let t0 = Instant::now();
        assert_eq!(irqs.wait(0, Some(Duration::from_millis(30))).unwrap(), None);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert_eq!(irqs.wait(0, Some(Duration::ZERO)).unwrap(), None);

        // Signals that arrive while nobody waits are counted, not lost.
        irqs.eventfd(0).unwrap().write(1).unwrap();
        irqs.eventfd(0).unwrap().write(1).unwrap();
        irqs.eventfd(0).unwrap().write(1).unwrap();
        assert_eq!(irqs.wait(0, None).unwrap(), Some(3));
        // The read reset the counter: the next wait times out.
        assert_eq!(irqs.wait(0, Some(Duration::from_millis(5))).unwrap(), None);
        assert_eq!(irqs.try_wait(0).unwrap(), None);
        // Vector 1 is independent.
        assert_eq!(irqs.try_wait(1).unwrap(), None);
    }

    #[test]
    fn wait_wakes_on_a_signal_from_another_thread() {
        let (_, irqs) = handle("wait-thread", intx_info(), 1);
        let barrier = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                thread::sleep(Duration::from_millis(20));
                irqs.eventfd(0).unwrap().write(1).unwrap();
            });
            barrier.wait();
            assert_eq!(
                irqs.wait(0, Some(Duration::from_secs(10))).unwrap(),
                Some(1)
            );
        });
    }

    #[test]
    fn no_interrupt_is_lost_across_many_wakes() {
        let (_, irqs) = handle("wait-many", msix_info(1, true), 1);
        const N: u64 = 2000;
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..N {
                    irqs.eventfd(0).unwrap().write(1).unwrap();
                }
            });
            let mut total = 0;
            let mut wakes = 0;
            while total < N {
                total += irqs
                    .wait(0, Some(Duration::from_secs(10)))
                    .unwrap()
                    .unwrap();
                wakes += 1;
            }
            assert_eq!(total, N, "every signal counted exactly once");
            assert!(wakes <= N);
        });
        assert_eq!(irqs.try_wait(0).unwrap(), None);
    }

    #[test]
    fn waiting_on_a_hole_is_an_error() {
        let (_, mut irqs) = handle("wait-hole", msix_info(3, true), 3);
        irqs.remove_vector(1).unwrap();
        let err = irqs.wait(1, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
        let err = irqs.try_wait(9).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    }

    #[test]
    fn waiter_reports_which_vectors_fired_and_how_often() {
        let (_, mut irqs) = handle("waiter", msix_info(4, true), 4);
        irqs.remove_vector(2).unwrap();
        let mut waiter = irqs.waiter().unwrap();
        assert_eq!(waiter.len(), 3);
        assert!(waiter
            .wait(Some(Duration::from_millis(10)))
            .unwrap()
            .is_empty());

        irqs.eventfd(3).unwrap().write(2).unwrap();
        irqs.eventfd(0).unwrap().write(1).unwrap();
        assert_eq!(
            waiter.wait(None).unwrap(),
            [Fired { key: 0, count: 1 }, Fired { key: 3, count: 2 }]
        );
        // Each counter was read once: nothing is pending now.
        assert!(waiter.wait(Some(Duration::ZERO)).unwrap().is_empty());

        irqs.eventfd(1).unwrap().write(5).unwrap();
        let mut out = Vec::new();
        assert_eq!(waiter.wait_into(None, &mut out).unwrap(), 1);
        assert_eq!(out, [Fired { key: 1, count: 5 }]);
    }

    #[test]
    fn waiter_combines_handles_with_keys_and_wakes_across_threads() {
        let (_, msix) = handle("waiter-a", msix_info(2, true), 2);
        let (_, req) = handle(
            "waiter-b",
            crate::device::irq::IrqInfo {
                index: crate::device::IrqIndex::REQ,
                flags: crate::device::IrqFlags::EVENTFD,
                count: 1,
            },
            1,
        );
        let mut waiter = msix.waiter_with([(1, "msix-1")]).unwrap();
        waiter.add(&req, 0, "req").unwrap();
        let err = waiter.add(&msix, 7, "nope").unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                req.eventfd(0).unwrap().write(1).unwrap();
            });
            assert_eq!(
                waiter.wait(Some(Duration::from_secs(10))).unwrap(),
                [Fired {
                    key: "req",
                    count: 1
                }]
            );
        });
        // Vector 0 of msix is not in this waiter.
        msix.eventfd(0).unwrap().write(1).unwrap();
        assert!(waiter
            .wait(Some(Duration::from_millis(5)))
            .unwrap()
            .is_empty());
        assert_eq!(msix.try_wait(0).unwrap(), Some(1));
    }

    #[test]
    fn wait_any_after_loopback() {
        let (_, irqs) = handle("wait-any", msix_info(3, true), 3);
        irqs.trigger_many(0, &[false, true, true]).unwrap();
        irqs.trigger(2).unwrap();
        assert_eq!(
            irqs.wait_any(Some(Duration::from_secs(1))).unwrap(),
            [Fired { key: 1, count: 1 }, Fired { key: 2, count: 2 }]
        );
    }

    #[test]
    fn an_empty_waiter_only_times_out() {
        let (_, irqs) = handle("waiter-empty", msix_info(1, true), 1);
        let mut w = irqs.waiter_with(std::iter::empty::<(u32, u8)>()).unwrap();
        assert!(w.is_empty());
        assert!(w.wait(Some(Duration::from_millis(5))).unwrap().is_empty());
    }
}
