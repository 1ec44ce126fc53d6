//! A recording stand-in for the kernel's `VFIO_DEVICE_SET_IRQS`, for the unit tests of the
//! interrupt handles.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Mutex;

use vmm_sys_util::eventfd::EventFd;

use super::fd::new_eventfd;
use super::interrupts::Target;
use super::Interrupts;
use crate::device::irq::{check_request, IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo};
use crate::device::shared::DeviceShared;
use crate::error::{Errno, Error, Object, Result};
use std::collections::VecDeque;
use std::sync::Arc;

/// What the double saw, with eventfds by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// Trigger + eventfds.
    Bind(u32, Vec<i32>),
    /// Trigger + none, count 0.
    Disable,
    /// Trigger + none/bool: the loopback.
    Fire(u32, Vec<bool>),
    Mask(u32, Vec<bool>),
    Unmask(u32, Vec<bool>),
    UnmaskFd(u32, Vec<i32>),
    MaskFd(u32, Vec<i32>),
}

/// A recording stand-in for the kernel: logs each request, fails the ones it is told to,
/// and on disable notes whether the eventfds it was given are still open.
#[derive(Debug, Default)]
pub(crate) struct Kernel {
    pub(crate) key: String,
    /// The device's shared state, where the claims live.
    pub(crate) shared: Arc<DeviceShared>,
    pub(crate) log: Mutex<Vec<Call>>,
    /// Errors for the next calls, in order (`None` = succeed).
    pub(crate) fail: Mutex<VecDeque<Option<Errno>>>,
    /// Whether every bound eventfd was open at the last disable.
    pub(crate) open_at_disable: Mutex<Option<bool>>,
    /// The bound eventfds by vector (-1: none), to fire them on loopback like the kernel.
    pub(crate) bound: Mutex<Vec<i32>>,
}

pub(crate) fn fd_is_open(fd: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

impl Kernel {
    pub(crate) fn new(key: &str) -> Arc<Kernel> {
        Arc::new(Kernel {
            key: key.to_string(),
            ..Default::default()
        })
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn fail_next(&self, results: &[Option<Errno>]) {
        self.fail.lock().unwrap().extend(results.iter().copied());
    }
}

impl Target for Arc<Kernel> {
    fn set_irqs(
        &self,
        info: &IrqInfo,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        check_request(info, action, start, &data)
            .map_err(|r| r.into_error(self.object(info.index)))?;
        let raw = |f: &[Option<BorrowedFd<'_>>]| -> Vec<i32> {
            f.iter()
                .map(|fd| fd.map_or(-1, |fd| fd.as_raw_fd()))
                .collect()
        };
        let call = match (action, data) {
            (IrqAction::Trigger, IrqData::Eventfd(f)) => Call::Bind(start, raw(f)),
            (IrqAction::Trigger, IrqData::None { count: 0 }) => Call::Disable,
            (IrqAction::Trigger, IrqData::None { count }) => {
                Call::Fire(start, vec![true; count as usize])
            }
            (IrqAction::Trigger, IrqData::Bool(b)) => Call::Fire(start, b.to_vec()),
            (IrqAction::Mask, IrqData::None { count }) => {
                Call::Mask(start, vec![true; count as usize])
            }
            (IrqAction::Mask, IrqData::Bool(b)) => Call::Mask(start, b.to_vec()),
            (IrqAction::Unmask, IrqData::None { count }) => {
                Call::Unmask(start, vec![true; count as usize])
            }
            (IrqAction::Unmask, IrqData::Bool(b)) => Call::Unmask(start, b.to_vec()),
            (IrqAction::Unmask, IrqData::Eventfd(f)) => Call::UnmaskFd(start, raw(f)),
            (IrqAction::Mask, IrqData::Eventfd(f)) => Call::MaskFd(start, raw(f)),
        };
        self.log.lock().unwrap().push(call.clone());
        if let Some(Some(errno)) = self.fail.lock().unwrap().pop_front() {
            return Err(Error::ioctl(
                "VFIO_DEVICE_SET_IRQS",
                self.object(info.index),
                errno,
            ));
        }
        match call {
            Call::Bind(start, fds) => {
                let mut bound = self.bound.lock().unwrap();
                let end = start as usize + fds.len();
                if bound.len() < end {
                    bound.resize(end, -1);
                }
                bound[start as usize..end].copy_from_slice(&fds);
            }
            Call::Disable => {
                let mut bound = self.bound.lock().unwrap();
                let open = bound
                    .iter()
                    .filter(|&&fd| fd >= 0)
                    .all(|&fd| fd_is_open(fd));
                *self.open_at_disable.lock().unwrap() = Some(open);
                bound.clear();
            }
            Call::Fire(start, which) => {
                let bound = self.bound.lock().unwrap();
                for (i, fire) in which.iter().enumerate() {
                    let fd = bound.get(start as usize + i).copied().unwrap_or(-1);
                    if *fire && fd >= 0 {
                        // SAFETY: test only: `fd` is an eventfd of the handle that is making
                        // this call, so it is open for the duration of the borrow.
                        #[allow(unsafe_code)]
                        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                        // Like the kernel's eventfd_signal.
                        nix::unistd::write(fd, &1u64.to_ne_bytes()).unwrap();
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn object(&self, index: IrqIndex) -> Object {
        Object::Irq {
            device: self.key.clone(),
            index: index.0,
        }
    }

    fn shared(&self) -> Arc<DeviceShared> {
        self.shared.clone()
    }

    fn is_pci(&self) -> bool {
        true
    }
}

pub(crate) fn msix_info(count: u32, noresize: bool) -> IrqInfo {
    let mut flags = IrqFlags::EVENTFD;
    if noresize {
        flags |= IrqFlags::NORESIZE;
    }
    IrqInfo {
        index: IrqIndex::MSIX,
        flags,
        count,
    }
}

pub(crate) fn intx_info() -> IrqInfo {
    IrqInfo {
        index: IrqIndex::INTX,
        flags: IrqFlags::EVENTFD | IrqFlags::MASKABLE | IrqFlags::AUTOMASKED,
        count: 1,
    }
}

pub(crate) fn eventfds(n: usize) -> Vec<Option<EventFd>> {
    (0..n).map(|_| Some(new_eventfd().unwrap())).collect()
}

pub(crate) fn numbers(irqs: &Interrupts) -> Vec<i32> {
    (0..irqs.len())
        .map(|v| irqs.eventfd(v).map_or(-1, AsRawFd::as_raw_fd))
        .collect()
}

/// A handle over a fresh double, enabled with `n` new eventfds.
pub(crate) fn handle(key: &str, info: IrqInfo, n: usize) -> (Arc<Kernel>, Interrupts) {
    let kernel = Kernel::new(key);
    let irqs = Interrupts::enable(Box::new(kernel.clone()), info, eventfds(n)).unwrap();
    (kernel, irqs)
}
