//! The [`Device`] methods that enable an IRQ index and return its [`Interrupts`] handle.

use vmm_sys_util::eventfd::EventFd;

use super::fd::new_eventfd;
use super::Interrupts;
use crate::device::irq::{IrqFlags, IrqIndex, IrqInfo};
use crate::error::{Errno, Error, Result};
use crate::Device;

impl Device {
    /// Enables `count` vectors of `index` (`0 .. count`), each with a new eventfd, and returns
    /// the handle that owns them.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use uvfio::device::IrqIndex;
    /// # let device: uvfio::Device = unimplemented!();
    /// let msix = device.enable_irqs(IrqIndex::MSIX, 4)?;
    /// if let Some(n) = msix.wait(2, Some(Duration::from_secs(1)))? {
    ///     println!("vector 2 fired {n} times");
    /// }
    /// // Dropping `msix` disables MSI-X, then closes the eventfds.
    /// # Ok::<(), uvfio::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for an index the device does not have or a `count`
    /// of 0 or more than the index has, (`EBUSY`) when a handle for this index (or, on vfio-pci,
    /// another of INTx/MSI/MSI-X) already exists in this process; [`Error::NotSupported`] for an
    /// index without vectors or eventfds; [`Error::Syscall`] when an eventfd cannot be created;
    /// [`Error::Ioctl`] when the kernel refuses (`EINVAL` when another interrupt type is enabled
    /// outside this API, `ENOSPC`/`ENOMEM` when the host is out of interrupt vectors).
    #[doc(alias = "VFIO_DEVICE_SET_IRQS")]
    pub fn enable_irqs(&self, index: impl Into<IrqIndex>, count: u32) -> Result<Interrupts> {
        let info = self.irq_info(index)?;
        if info.count == 0 {
            return Err(crate::device::irq::IrqRequestError::NoVectors
                .into_error(self.irq_object(info.index.0)));
        }
        if count == 0 || count > info.count {
            return Err(crate::device::irq::IrqRequestError::OutOfRange {
                start: 0,
                count: count.into(),
                have: info.count,
            }
            .into_error(self.irq_object(info.index.0)));
        }
        let mut eventfds = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let e = new_eventfd().map_err(|errno| Error::Syscall {
                op: "eventfd",
                object: self.irq_object(info.index.0).into(),
                errno,
            })?;
            eventfds.push(Some(e));
        }
        Interrupts::enable_own(Box::new(self.clone()), info, eventfds)
    }

    /// Enables vectors `0 .. eventfds.len()` of `index` with the given eventfds (`None` leaves a
    /// hole: the kernel enables the vector but it signals nothing until one is bound with
    /// [`Interrupts::set_vector`]), and returns the handle, which now owns them.
    ///
    /// # Errors
    ///
    /// As [`Device::enable_irqs`], plus [`Error::InvalidArgument`] (`EBADF`, `EINVAL`) for a
    /// descriptor that is not an open eventfd, and (`EINVAL`) for a blocking one: create them
    /// with `EFD_NONBLOCK` (the handle no longer sets `O_NONBLOCK` on a caller's descriptor,
    /// which every duplicate of it would see).
    #[doc(alias = "VFIO_DEVICE_SET_IRQS")]
    pub fn enable_irqs_with(
        &self,
        index: impl Into<IrqIndex>,
        eventfds: impl IntoIterator<Item = Option<EventFd>>,
    ) -> Result<Interrupts> {
        let info = self.irq_info(index)?;
        Interrupts::enable(Box::new(self.clone()), info, eventfds.into_iter().collect())
    }

    fn notifier(&self, index: IrqIndex, what: &str) -> Result<Interrupts> {
        if !self.flags().contains(crate::device::DeviceFlags::PCI)
            || index.0 >= self.info().num_irqs
        {
            return Err(Error::NotSupported {
                op: "enable_irqs",
                object: self.irq_object(index.0).into(),
                reason: format!("{what} notification is a vfio-pci interrupt index").into(),
                errno: Errno::ENOTSUP,
            });
        }
        let info = match self.irq_info(index) {
            // vfio-pci answers EINVAL for ERR on a device without a PCI Express capability.
            Err(Error::Ioctl {
                errno: Errno::EINVAL,
                ..
            }) => IrqInfo {
                index,
                flags: IrqFlags::empty(),
                count: 0,
            },
            other => other?,
        };
        if info.count == 0 {
            return Err(Error::NotSupported {
                op: "enable_irqs",
                object: self.irq_object(index.0).into(),
                reason: format!(
                    "the kernel offers no {what} notification for this device{}",
                    if index == IrqIndex::ERR {
                        " (it has no PCI Express capability, so no AER)"
                    } else {
                        ""
                    }
                )
                .into(),
                errno: Errno::ENOTSUP,
            });
        }
        self.enable_irqs(index, 1)
    }

    /// Asks vfio-pci to signal an eventfd when the device reports an uncorrectable (AER) error:
    /// a one-vector handle on [`IrqIndex::ERR`]. Wait on it like any interrupt; the loopback
    /// [`Interrupts::trigger`] fires it for testing.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] when the device is not a vfio-pci device or has no ERR vector
    /// (conventional PCI devices have none: the kernel offers it only with a PCI Express
    /// capability); otherwise as [`Device::enable_irqs`].
    #[doc(alias = "VFIO_PCI_ERR_IRQ_INDEX")]
    pub fn notify_errors(&self) -> Result<Interrupts> {
        self.notifier(IrqIndex::ERR, "AER error")
    }

    /// Asks vfio-pci to signal an eventfd when the host wants the device back (an unbind from
    /// vfio-pci, a hot-unplug): a one-vector handle on [`IrqIndex::REQ`]. A driver that sees it
    /// should quiesce the device and drop every handle to it; the kernel waits for that.
    ///
    /// # Errors
    ///
    /// As [`Device::notify_errors`].
    #[doc(alias = "VFIO_PCI_REQ_IRQ_INDEX")]
    pub fn notify_release_requests(&self) -> Result<Interrupts> {
        self.notifier(IrqIndex::REQ, "release request")
    }
}
