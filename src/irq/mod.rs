//! Interrupts as eventfds: RAII handles per IRQ index, waiting, async, ioeventfd.
//!
//! A VFIO device delivers each interrupt vector to an eventfd: the kernel adds 1 to the
//! eventfd's counter when the vector fires, and the driver reads (and so resets) the counter.
//! This module wraps the whole `VFIO_DEVICE_SET_IRQS` contract of `<linux/vfio.h>` in owned
//! handles:
//!
//! - [`Interrupts`], from [`Device::enable_irqs`](crate::Device::enable_irqs): one enabled index
//!   (INTx, MSI, MSI-X, ... ) owning its eventfds. Vectors are changed or removed one at a time
//!   ([`Interrupts::set_vector`], with the full re-arm where NORESIZE demands it), masked and
//!   unmasked ([`Interrupts::mask`], [`Interrupts::unmask`], the INTx resample eventfd
//!   [`Interrupts::set_unmask_eventfd`]) and fired from the kernel for tests
//!   ([`Interrupts::trigger`]). Dropping it disables the index, then closes the eventfds.
//! - Waiting: [`Interrupts::wait`] (one vector, with a timeout), [`Waiter`] and
//!   [`Interrupts::wait_any`] (many vectors, of several handles, with epoll; reports which fired
//!   and how often), and with the `async` feature `AsyncVector` /
//!   `Interrupts::wait_async` for tokio. Every wake reads the counter exactly once, so no
//!   interrupt is lost and none is counted twice.
//!
//!   A [`Waiter`] borrows the [`Interrupts`] it watches: keep the handles beside the driver
//!   state that needs `&mut`, not inside it (`examples/nic` keeps them in their own struct).
//! - [`Device::notify_errors`](crate::Device::notify_errors) and
//!   [`Device::notify_release_requests`](crate::Device::notify_release_requests): vfio-pci's ERR
//!   (AER error) and REQ (give the device back) notifications.
//! - [`IoEventFd`], from [`Device::ioeventfd`](crate::Device::ioeventfd): the reverse direction,
//!   an eventfd that makes the kernel write a value to a device register; dropping it
//!   unregisters it.
//!
//! The checked raw ioctl is [`Device::set_irqs`](crate::Device::set_irqs); it takes
//! [`BorrowedFd`](std::os::fd::BorrowedFd)s, and [`borrow_eventfd`] bridges vmm-sys-util's
//! [`EventFd`].
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use uvfio::device::IrqIndex;
//! # let device: uvfio::Device = unimplemented!();
//! let info = device.irq_info(IrqIndex::MSIX)?;
//! let mut msix = device.enable_irqs(IrqIndex::MSIX, info.count.min(4))?;
//!
//! // Wait for any of them.
//! let mut waiter = msix.waiter()?;
//! for fired in waiter.wait(Some(Duration::from_secs(1)))? {
//!     println!("vector {} fired {} times", fired.key, fired.count);
//! }
//! drop(waiter);
//!
//! // Stop vector 1 without disturbing the others.
//! msix.remove_vector(1)?;
//!
//! // Level-triggered INTx is masked by the kernel each time it fires.
//! drop(msix);
//! let intx = device.enable_irqs(IrqIndex::INTX, 1)?;
//! while let Some(_n) = intx.wait(0, Some(Duration::from_secs(1)))? {
//!     // ... service the device so it deasserts the line ...
//!     intx.unmask(0)?;
//! }
//! # Ok::<(), uvfio::Error>(())
//! ```
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_SET_IRQS`, `VFIO_DEVICE_IOEVENTFD`
//! - `drivers/vfio/pci/vfio_pci_intrs.c` (what vfio-pci accepts per index)
//! - <https://docs.kernel.org/driver-api/vfio.html>
//!
//! [`EventFd`]: vmm_sys_util::eventfd::EventFd

#[cfg(feature = "async")]
mod asyncfd;
pub(crate) mod claim;
mod enable;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod fd;
mod interrupts;
mod ioeventfd;
mod wait;

#[cfg(test)]
mod tests;

#[cfg(feature = "async")]
pub use asyncfd::AsyncVector;
pub use fd::borrow_eventfd;
pub use interrupts::Interrupts;
pub use ioeventfd::{IoEventFd, IoValue};
pub use wait::{Fired, Waiter};
