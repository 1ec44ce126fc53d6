//! `.await`ing interrupts with tokio (feature `async`): the vector's eventfd registered with the
//! runtime's reactor through [`tokio::io::unix::AsyncFd`].

use std::os::fd::BorrowedFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vmm_sys_util::eventfd::EventFd;

use super::fd::{borrow_eventfd, io_errno, read_counter};
use super::Interrupts;
use crate::error::{Errno, Error, Object, Result};

/// One interrupt vector registered with the current tokio runtime, to `.await` it.
///
/// It holds a duplicate of the vector's eventfd (sharing its counter), so it is `'static` and
/// can move into a spawned task. It does not keep the index enabled: once the [`Interrupts`]
/// handle is dropped the vector no longer fires, and a pending [`AsyncVector::wait`] simply
/// never completes; drop the `AsyncVector` (or cancel the task) with the handle.
///
/// # Examples
///
/// ```no_run
/// # async fn f(device: uvfio::Device) -> uvfio::Result<()> {
/// use uvfio::device::IrqIndex;
/// let msi = device.enable_irqs(IrqIndex::MSI, 1)?;
/// let vector = msi.async_vector(0)?;
/// let task = tokio::spawn(async move {
///     loop {
///         let n = vector.wait().await?;
///         println!("{n} interrupts");
///     }
///     #[allow(unreachable_code)]
///     Ok::<(), uvfio::Error>(())
/// });
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncVector {
    fd: AsyncFd<EventFd>,
    vector: u32,
    object: Object,
}

/// Registers `fd` for readability with the current runtime's reactor.
fn register<T: std::os::fd::AsRawFd>(fd: T, object: impl Fn() -> Object) -> Result<AsyncFd<T>> {
    // Outside a runtime tokio would panic: say so as an error instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::NotSupported {
            op: "async interrupt wait",
            object: object().into(),
            reason: "called outside a tokio runtime (start one with the I/O driver enabled)".into(),
            errno: Errno::EPERM,
        });
    }
    // tokio 1.51.6/1.53.3 deprecated this constructor in favour of the `unsafe`
    // `register_with_interest`, because an arbitrary `T` could hand out a descriptor that closes
    // or changes while registered. Ours cannot: `T` is an owned `EventFd` (one descriptor, open
    // until the `AsyncFd` drops it) or a `Borrowed<'a>` whose descriptor stays open for `'a`,
    // which outlives the `AsyncFd` holding it. The safe constructor keeps `tokio = "1"` working
    // and the crate free of `unsafe` outside the kernel ABI.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd, Interest::READABLE).map_err(|e| Error::Syscall {
        op: "epoll_ctl (tokio AsyncFd)",
        object: object().into(),
        errno: io_errno(&e),
    })
}

/// Waits for readiness, then reads the counter once; spurious wake-ups wait again.
async fn wait_ready<T: std::os::fd::AsRawFd>(
    fd: &AsyncFd<T>,
    eventfd: impl Fn(&T) -> &EventFd,
    object: impl Fn() -> Object,
) -> Result<u64> {
    loop {
        let mut guard = fd.readable().await.map_err(|e| Error::Syscall {
            op: "epoll_wait (tokio AsyncFd)",
            object: object().into(),
            errno: io_errno(&e),
        })?;
        match read_counter(eventfd(guard.get_inner())) {
            Ok(Some(n)) => return Ok(n),
            Ok(None) => guard.clear_ready(),
            Err(errno) => {
                return Err(Error::Syscall {
                    op: "read",
                    object: object().into(),
                    errno,
                })
            }
        }
    }
}

impl AsyncVector {
    /// The vector number.
    pub fn vector(&self) -> u32 {
        self.vector
    }

    /// Waits until the vector fires, and returns how many times it fired since its counter was
    /// last read (read exactly once per wake). Cancel-safe: dropping the future before it
    /// completes consumes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] if the reactor or the read fails.
    pub async fn wait(&self) -> Result<u64> {
        wait_ready(&self.fd, |e| e, || self.object.clone()).await
    }

    /// Reads the counter without waiting: `Some(n)` if the vector fired, `None` otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] if the read fails.
    pub fn try_wait(&self) -> Result<Option<u64>> {
        read_counter(self.fd.get_ref()).map_err(|errno| Error::Syscall {
            op: "read",
            object: self.object.clone().into(),
            errno,
        })
    }
}

/// The borrowed eventfd of a vector, registered for one [`Interrupts::wait_async`] call.
struct Borrowed<'a> {
    fd: BorrowedFd<'a>,
    eventfd: &'a EventFd,
}

impl std::os::fd::AsRawFd for Borrowed<'_> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Interrupts {
    /// Registers `vector` with the current tokio runtime, for `.await`ing it repeatedly (see
    /// [`AsyncVector`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the vector has no eventfd; [`Error::Syscall`] if the
    /// eventfd cannot be duplicated or registered.
    ///
    /// # Panics
    ///
    /// Tokio panics when this is called in a runtime built without its I/O driver (a builder
    /// without `enable_io()`/`enable_all()`). Outside any runtime it is an
    /// [`Error::NotSupported`] instead.
    pub fn async_vector(&self, vector: u32) -> Result<AsyncVector> {
        let eventfd = self.bound_eventfd("async_vector", vector)?;
        let dup = eventfd.try_clone().map_err(|e| Error::Syscall {
            op: "fcntl(F_DUPFD_CLOEXEC)",
            object: self.object().into(),
            errno: io_errno(&e),
        })?;
        Ok(AsyncVector {
            fd: register(dup, || self.object())?,
            vector,
            object: self.object(),
        })
    }

    /// Waits until `vector` fires, for use in async code; returns how many times it fired since
    /// its counter was last read. Registers the eventfd with the runtime for this one call; for
    /// a loop, keep an [`AsyncVector`] from [`Interrupts::async_vector`].
    ///
    /// # Errors
    ///
    /// As [`Interrupts::async_vector`].
    ///
    /// # Panics
    ///
    /// As [`Interrupts::async_vector`].
    pub async fn wait_async(&self, vector: u32) -> Result<u64> {
        let eventfd = self.bound_eventfd("wait_async", vector)?;
        let fd = register(
            Borrowed {
                fd: borrow_eventfd(eventfd),
                eventfd,
            },
            || self.object(),
        )?;
        wait_ready(&fd, |b| b.eventfd, || self.object()).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{handle, msix_info};
    use std::time::Duration;

    #[test]
    fn registering_outside_a_runtime_is_an_error_not_a_panic() {
        let eventfd = vmm_sys_util::eventfd::EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let err = super::register(eventfd, || crate::Object::Device("test".into())).unwrap_err();
        assert!(matches!(err, crate::Error::NotSupported { .. }), "{err}");
        assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
    }

    #[tokio::test]
    async fn await_reads_each_wake_once() {
        let (_, irqs) = handle("async-wait", msix_info(2, true), 2);
        let v = irqs.async_vector(1).unwrap();
        assert_eq!(v.vector(), 1);
        assert_eq!(v.try_wait().unwrap(), None);
        irqs.trigger(1).unwrap();
        irqs.trigger(1).unwrap();
        assert_eq!(v.wait().await.unwrap(), 2);
        // Nothing pending: the next wait does not complete.
        let pending = tokio::time::timeout(Duration::from_millis(20), v.wait()).await;
        assert!(pending.is_err(), "timed out, nothing consumed");

        // A signal from another thread wakes the task.
        let e = irqs.eventfd(1).unwrap().try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            e.write(1).unwrap();
        });
        assert_eq!(v.wait().await.unwrap(), 1);
        writer.join().unwrap();

        // The one-shot form.
        irqs.trigger(0).unwrap();
        assert_eq!(irqs.wait_async(0).await.unwrap(), 1);
        let err = irqs.wait_async(5).await.unwrap_err();
        assert_eq!(err.errno(), crate::Errno::EINVAL);
    }

    #[tokio::test]
    async fn a_spawned_task_counts_every_interrupt() {
        let (_, irqs) = handle("async-spawn", msix_info(1, true), 1);
        let v = irqs.async_vector(0).unwrap();
        let task = tokio::spawn(async move {
            let mut total = 0;
            while total < 1000 {
                total += v.wait().await.unwrap();
            }
            total
        });
        let e = irqs.eventfd(0).unwrap().try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for _ in 0..1000 {
                e.write(1).unwrap();
            }
        });
        assert_eq!(
            task.await.unwrap(),
            1000,
            "every signal counted exactly once"
        );
        writer.join().unwrap();
        assert_eq!(irqs.try_wait(0).unwrap(), None);
    }
}
