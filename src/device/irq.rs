//! Interrupts: `VFIO_DEVICE_GET_IRQ_INFO` and `VFIO_DEVICE_SET_IRQS`.
//!
//! Each IRQ index (INTx, MSI, MSI-X, ERR, REQ for PCI) has a number of vectors. `SET_IRQS`
//! combines an action (mask, unmask, trigger) with a data kind (none, bool per vector, eventfd per
//! vector) over a range of vectors `start .. start + count`. [`Device::set_irqs`] is the checked,
//! typed form of that one ioctl.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::irq::fd::{check_eventfd, NotAnEventfd};
use crate::uapi::buf::{self, IrqSetData};
use crate::uapi::vfio;

bitflags::bitflags! {
    /// `vfio_irq_info.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct IrqFlags: u32 {
        /// `VFIO_IRQ_INFO_EVENTFD`: vectors can signal an eventfd.
        const EVENTFD = vfio::VFIO_IRQ_INFO_EVENTFD;
        /// `VFIO_IRQ_INFO_MASKABLE`: vectors can be masked and unmasked.
        const MASKABLE = vfio::VFIO_IRQ_INFO_MASKABLE;
        /// `VFIO_IRQ_INFO_AUTOMASKED`: the kernel masks the vector when it fires (level-triggered
        /// INTx); it must be unmasked after servicing.
        const AUTOMASKED = vfio::VFIO_IRQ_INFO_AUTOMASKED;
        /// `VFIO_IRQ_INFO_NORESIZE`: the set of enabled vectors cannot change without disabling
        /// the index first.
        const NORESIZE = vfio::VFIO_IRQ_INFO_NORESIZE;
        // Flags a newer kernel may add are kept, not dropped.
        const _ = !0;
    }
}

/// An IRQ index, as the kernel numbers them; the named constants are vfio-pci's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrqIndex(pub u32);

impl IrqIndex {
    /// `VFIO_PCI_INTX_IRQ_INDEX`: the legacy level-triggered interrupt.
    pub const INTX: IrqIndex = IrqIndex(vfio::VFIO_PCI_INTX_IRQ_INDEX);
    /// `VFIO_PCI_MSI_IRQ_INDEX`.
    pub const MSI: IrqIndex = IrqIndex(vfio::VFIO_PCI_MSI_IRQ_INDEX);
    /// `VFIO_PCI_MSIX_IRQ_INDEX`.
    pub const MSIX: IrqIndex = IrqIndex(vfio::VFIO_PCI_MSIX_IRQ_INDEX);
    /// `VFIO_PCI_ERR_IRQ_INDEX`: AER error notification.
    pub const ERR: IrqIndex = IrqIndex(vfio::VFIO_PCI_ERR_IRQ_INDEX);
    /// `VFIO_PCI_REQ_IRQ_INDEX`: the kernel asks the user to release the device.
    pub const REQ: IrqIndex = IrqIndex(vfio::VFIO_PCI_REQ_IRQ_INDEX);

    /// The vfio-pci name of this index (`"INTx"`, `"MSI-X"`, ...).
    pub fn pci_name(self) -> Option<&'static str> {
        const NAMES: [&str; 5] = ["INTx", "MSI", "MSI-X", "ERR", "REQ"];
        NAMES.get(self.0 as usize).copied()
    }
}

impl From<u32> for IrqIndex {
    fn from(i: u32) -> Self {
        IrqIndex(i)
    }
}

impl fmt::Display for IrqIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `VFIO_DEVICE_GET_IRQ_INFO`: one IRQ index of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfo {
    /// The index.
    pub index: IrqIndex,
    /// What the index supports.
    pub flags: IrqFlags,
    /// How many vectors it has (0 when the device does not implement it).
    pub count: u32,
}

/// What `VFIO_DEVICE_SET_IRQS` does to the selected vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrqAction {
    /// `VFIO_IRQ_SET_ACTION_MASK`.
    Mask,
    /// `VFIO_IRQ_SET_ACTION_UNMASK`.
    Unmask,
    /// `VFIO_IRQ_SET_ACTION_TRIGGER`: with eventfds, binds them as the vectors' triggers; with no
    /// data or `true`, fires the vectors (loopback, no device involved).
    Trigger,
}

impl IrqAction {
    fn raw(self) -> u32 {
        match self {
            IrqAction::Mask => vfio::VFIO_IRQ_SET_ACTION_MASK,
            IrqAction::Unmask => vfio::VFIO_IRQ_SET_ACTION_UNMASK,
            IrqAction::Trigger => vfio::VFIO_IRQ_SET_ACTION_TRIGGER,
        }
    }
}

/// The data of a `VFIO_DEVICE_SET_IRQS` request, one entry per vector from `start` on.
#[derive(Debug, Clone, Copy)]
pub enum IrqData<'a> {
    /// `VFIO_IRQ_SET_DATA_NONE`: act on `count` vectors unconditionally. `Trigger` with
    /// `count == 0` (and `start == 0`) disables the whole index.
    None {
        /// The number of vectors.
        count: u32,
    },
    /// `VFIO_IRQ_SET_DATA_BOOL`: act on the vectors whose entry is `true`.
    Bool(&'a [bool]),
    /// `VFIO_IRQ_SET_DATA_EVENTFD`: for `Trigger`, the eventfd each vector signals (`None`
    /// leaves that vector without one / removes it); for `Unmask` on INTx, the eventfd that
    /// unmasks when written (the "resample" fd).
    Eventfd(&'a [Option<BorrowedFd<'a>>]),
}

impl IrqData<'_> {
    /// The number of vectors the data covers (`count` of the request).
    pub fn len(&self) -> u64 {
        match self {
            IrqData::None { count } => u64::from(*count),
            IrqData::Bool(b) => b.len() as u64,
            IrqData::Eventfd(f) => f.len() as u64,
        }
    }

    /// Whether the data covers no vector (only meaningful to disable an index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What is wrong with a `VFIO_DEVICE_SET_IRQS` request, found without asking the kernel
/// ([`IrqInfo::check_request`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IrqRequestError {
    /// The index has no vectors on this device.
    #[error("the device implements no vector at this index")]
    NoVectors,
    /// `start .. start + count` is empty or does not fit in the index.
    #[error("vectors {start}..{} requested, the index has {have} (and at least one must be given)", u64::from(*start) + count)]
    OutOfRange {
        /// The first vector asked for.
        start: u32,
        /// How many vectors the data covers.
        count: u64,
        /// How many the index has.
        have: u32,
    },
    /// Disabling (trigger with no data and no vectors) must start at 0.
    #[error("disabling an index (trigger with no vectors) needs start 0")]
    DisableNeedsStartZero,
    /// Mask or unmask on an index without `VFIO_IRQ_INFO_MASKABLE`.
    #[error("the index is not maskable (no VFIO_IRQ_INFO_MASKABLE)")]
    NotMaskable,
    /// Eventfds for an index without `VFIO_IRQ_INFO_EVENTFD`.
    #[error("the index does not signal eventfds (no VFIO_IRQ_INFO_EVENTFD)")]
    NoEventfds,
}

impl IrqRequestError {
    /// The crate's error for this rejection of a request on `object`.
    pub(crate) fn into_error(self, object: Object) -> Error {
        let op = "set_irqs";
        let reason = self.to_string();
        match self {
            IrqRequestError::OutOfRange { .. } => Error::out_of_range(op, object, reason),
            IrqRequestError::DisableNeedsStartZero => Error::invalid(op, object, reason),
            IrqRequestError::NoVectors
            | IrqRequestError::NotMaskable
            | IrqRequestError::NoEventfds => Error::NotSupported {
                op,
                object: object.into(),
                reason: reason.into(),
                errno: Errno::EINVAL,
            },
        }
    }
}

/// The error for a descriptor bound to `vector` that is not an open eventfd.
pub(crate) fn not_an_eventfd(
    object: Object,
    vector: u32,
    fd: BorrowedFd<'_>,
    why: NotAnEventfd,
) -> Error {
    Error::InvalidArgument {
        op: "set_irqs",
        object: object.into(),
        reason: match why {
            NotAnEventfd::Closed => format!(
                "the eventfd for vector {vector} (fd {}) is not open",
                fd.as_raw_fd()
            )
            .into(),
            NotAnEventfd::OtherFile => format!(
                "fd {} for vector {vector} is not an eventfd",
                fd.as_raw_fd()
            )
            .into(),
            NotAnEventfd::Blocking => format!(
                "the eventfd for vector {vector} (fd {}) is blocking: create it with \
                 EFD_NONBLOCK (the handle reads counters without blocking, and does not change \
                 the flags of a descriptor it shares with its duplicates)",
                fd.as_raw_fd()
            )
            .into(),
        },
        errno: why.errno(),
    }
}

impl IrqInfo {
    /// Checks a `VFIO_DEVICE_SET_IRQS` request for this index the way the kernel's
    /// `vfio_set_irqs_validate_and_prepare` and the bus drivers would, without asking the
    /// kernel: [`Device::set_irqs`] and the [`Interrupts`](crate::Interrupts) handles check
    /// every request with this first, so the kernel never sees (and half-applies) a request it
    /// refuses. It looks at the shape of the request only (vectors, action, kind of data), not
    /// at the eventfds themselves.
    ///
    /// ```
    /// use uvfio::device::irq::{IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo, IrqRequestError};
    ///
    /// let msix = IrqInfo { index: IrqIndex::MSIX, flags: IrqFlags::EVENTFD, count: 4 };
    /// assert_eq!(msix.check_request(IrqAction::Trigger, 2, &IrqData::None { count: 2 }), Ok(()));
    /// assert_eq!(
    ///     msix.check_request(IrqAction::Trigger, 3, &IrqData::None { count: 2 }),
    ///     Err(IrqRequestError::OutOfRange { start: 3, count: 2, have: 4 })
    /// );
    /// assert_eq!(
    ///     msix.check_request(IrqAction::Mask, 0, &IrqData::None { count: 1 }),
    ///     Err(IrqRequestError::NotMaskable)
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`IrqRequestError`] that applies, in the order of its variants.
    pub fn check_request(
        &self,
        action: IrqAction,
        start: u32,
        data: &IrqData<'_>,
    ) -> std::result::Result<(), IrqRequestError> {
        check_request(self, action, start, data)
    }
}

/// Checks a request against the index's info, the way `vfio_set_irqs_validate_and_prepare` and
/// the bus drivers would, so the kernel never sees (and half-applies) a request it refuses.
pub(crate) fn check_request(
    info: &IrqInfo,
    action: IrqAction,
    start: u32,
    data: &IrqData<'_>,
) -> std::result::Result<(), IrqRequestError> {
    let count = data.len();
    let disable = action == IrqAction::Trigger && matches!(data, IrqData::None { count: 0 });
    if info.count == 0 {
        return Err(IrqRequestError::NoVectors);
    }
    if disable {
        if start != 0 {
            return Err(IrqRequestError::DisableNeedsStartZero);
        }
    } else if count == 0 || u64::from(start) + count > u64::from(info.count) {
        return Err(IrqRequestError::OutOfRange {
            start,
            count,
            have: info.count,
        });
    }
    if matches!(action, IrqAction::Mask | IrqAction::Unmask)
        && !info.flags.contains(IrqFlags::MASKABLE)
    {
        return Err(IrqRequestError::NotMaskable);
    }
    if matches!(data, IrqData::Eventfd(_)) && !info.flags.contains(IrqFlags::EVENTFD) {
        return Err(IrqRequestError::NoEventfds);
    }
    Ok(())
}

impl Device {
    pub(crate) fn irq_object(&self, index: u32) -> Object {
        Object::Irq {
            device: self.name().to_string(),
            index,
        }
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for `index`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for an index at or past
    /// [`DeviceInfo::num_irqs`](super::DeviceInfo::num_irqs), [`Error::Ioctl`] if the ioctl fails,
    /// [`Error::Malformed`] if the kernel describes another index.
    #[doc(alias = "VFIO_DEVICE_GET_IRQ_INFO")]
    pub fn irq_info(&self, index: impl Into<IrqIndex>) -> Result<IrqInfo> {
        let index = index.into().0;
        if index >= self.info().num_irqs {
            return Err(Error::out_of_range(
                "irq_info",
                self.irq_object(index),
                format!("the device has {} IRQ indexes", self.info().num_irqs),
            ));
        }
        let info = self
            .fd()
            .get_irq_info(index)
            .map_err(|f| f.on(self.irq_object(index)))?;
        if info.index != index {
            return Err(Error::malformed(
                "VFIO_DEVICE_GET_IRQ_INFO",
                self.irq_object(index),
                crate::error::Malformation::Other(format!(
                    "asked for IRQ index {index}, the kernel described {}",
                    info.index
                )),
            ));
        }
        Ok(IrqInfo {
            index: IrqIndex(index),
            flags: IrqFlags::from_bits_retain(info.flags),
            count: info.count,
        })
    }

    /// Every IRQ index the device implements, each with its kernel index. Indexes the kernel
    /// reports as absent (`EINVAL`, such as ERR on a conventional PCI device) are skipped; any
    /// other error is returned.
    ///
    /// # Errors
    ///
    /// As [`Device::irq_info`], except `EINVAL` from the kernel.
    pub fn irqs(&self) -> Result<Vec<IrqInfo>> {
        let mut out = Vec::new();
        for index in 0..self.info().num_irqs {
            match self.irq_info(index) {
                Ok(info) => out.push(info),
                Err(Error::Ioctl {
                    errno: Errno::EINVAL,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `VFIO_DEVICE_SET_IRQS`: applies `action` to vectors `start ..` of `index` with `data`.
    ///
    /// This is the checked form of the raw ioctl; [`Device::enable_irqs`] wraps it in an owning
    /// handle ([`Interrupts`](crate::irq::Interrupts)) that is easier to get right. The request
    /// is checked against the index's info first, and every eventfd is checked to be an open
    /// eventfd, so a bad request leaves the index as it was and gets a precise error instead of
    /// the kernel's bare `EINVAL` (the kernel removes a vector's old eventfd *before* it looks up
    /// the new one, so a bad descriptor reaching it would leave the vector unbound).
    ///
    /// The forms of the header:
    ///
    /// | action | data | effect |
    /// |---|---|---|
    /// | `Trigger` | `Eventfd` | bind (or with `None`, unbind) the vectors' eventfds; enables the index |
    /// | `Trigger` | `None { count: 0 }`, start 0 | disable the index |
    /// | `Trigger` | `None` / `Bool` | fire the vectors' eventfds (loopback, no device involved) |
    /// | `Mask` / `Unmask` | `None` / `Bool` | mask / unmask the vectors |
    /// | `Unmask` | `Eventfd` | the eventfd that unmasks when written (INTx "resample") |
    /// | `Mask` | `Eventfd` | the eventfd that masks when written (vfio-pci: `ENOTTY`) |
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when the vectors are out of range or none is given,
    /// (`EBADF`) for an eventfd that is not open, (`EINVAL`) for a descriptor that is not an
    /// eventfd; [`Error::NotSupported`] when the index has no vectors, is not maskable (for
    /// `Mask` and `Unmask`) or takes no eventfds; [`Error::Ioctl`] when the kernel refuses
    /// (`EINVAL` when NORESIZE forbids the change or another interrupt type of vfio-pci is
    /// enabled, `ENOTTY` for an action the bus driver does not implement).
    #[doc(alias = "VFIO_DEVICE_SET_IRQS")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_NONE")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_BOOL")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_EVENTFD")]
    #[doc(alias = "VFIO_IRQ_SET_ACTION_TRIGGER")]
    #[doc(alias = "VFIO_IRQ_SET_ACTION_MASK")]
    #[doc(alias = "VFIO_IRQ_SET_ACTION_UNMASK")]
    pub fn set_irqs(
        &self,
        index: impl Into<IrqIndex>,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        let info = self.irq_info(index)?;
        self.set_irqs_with(&info, action, start, data)
    }

    /// [`Device::set_irqs`] against an index info read earlier (saves one ioctl per call):
    /// checks every eventfd, then [`Device::set_irqs_trusted`].
    pub(crate) fn set_irqs_with(
        &self,
        info: &IrqInfo,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        if let IrqData::Eventfd(f) = data {
            for (vector, fd) in (start..).zip(f) {
                if let Some(fd) = fd {
                    check_eventfd(*fd).map_err(|why| {
                        not_an_eventfd(self.irq_object(info.index.0), vector, *fd, why)
                    })?;
                }
            }
        }
        self.set_irqs_trusted(info, action, start, data)
    }

    /// `VFIO_DEVICE_SET_IRQS` with eventfds known to be open eventfds (an
    /// [`Interrupts`](crate::irq::Interrupts) handle's own, checked when it took them): the
    /// request is checked against the index info, the descriptors are not looked at again.
    /// `DATA_NONE` and short `DATA_BOOL` requests are built on the stack: no allocation, one
    /// system call.
    pub(crate) fn set_irqs_trusted(
        &self,
        info: &IrqInfo,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        let index = info.index;
        let object = || self.irq_object(index.0);
        check_request(info, action, start, &data).map_err(|r| r.into_error(object()))?;
        let small = match data {
            IrqData::None { count } => {
                self.fd()
                    .set_irqs_small(index.0, action.raw(), start, count, None)
            }
            IrqData::Bool(b) => self
                .fd()
                .set_irqs_small(index.0, action.raw(), start, 0, Some(b)),
            IrqData::Eventfd(_) => None,
        };
        if let Some(result) = small {
            return result.map_err(|f| f.on(object()));
        }
        let fds: Vec<i32>;
        let raw = match data {
            IrqData::None { count } => IrqSetData::None { count },
            IrqData::Bool(b) => IrqSetData::Bool(b),
            IrqData::Eventfd(f) => {
                fds = f
                    .iter()
                    .map(|fd| fd.map_or(-1, |fd| fd.as_raw_fd()))
                    .collect();
                IrqSetData::Eventfd(&fds)
            }
        };
        let request = buf::irq_set(index.0, action.raw(), start, raw)
            .map_err(|e| Error::ioctl("VFIO_DEVICE_SET_IRQS", object(), e))?;
        self.fd().set_irqs(&request).map_err(|f| f.on(object()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_index_names() {
        assert_eq!(IrqIndex::INTX.pci_name(), Some("INTx"));
        assert_eq!(IrqIndex::MSIX.pci_name(), Some("MSI-X"));
        assert_eq!(IrqIndex::REQ.pci_name(), Some("REQ"));
        assert_eq!(IrqIndex(9).pci_name(), None);
    }

    #[test]
    fn data_counts() {
        assert_eq!(IrqData::None { count: 3 }.len(), 3);
        assert_eq!(IrqData::Bool(&[true, false]).len(), 2);
        assert_eq!(IrqData::Eventfd(&[None, None, None]).len(), 3);
        assert!(IrqData::None { count: 0 }.is_empty());
    }

    fn info(count: u32, flags: IrqFlags) -> IrqInfo {
        IrqInfo {
            index: IrqIndex::MSIX,
            flags,
            count,
        }
    }

    #[test]
    fn requests_are_range_checked() {
        let msix = info(5, IrqFlags::EVENTFD | IrqFlags::NORESIZE);
        let none = |count| IrqData::None { count };
        let t = IrqAction::Trigger;
        assert_eq!(check_request(&msix, t, 0, &none(5)), Ok(()));
        assert_eq!(check_request(&msix, t, 4, &none(1)), Ok(()));
        assert_eq!(
            check_request(&msix, t, 2, &IrqData::Bool(&[true; 3])),
            Ok(())
        );
        for (start, count) in [(5, 1), (4, 2), (0, 6), (u32::MAX, 1), (1, u32::MAX)] {
            assert_eq!(
                check_request(&msix, t, start, &none(count)),
                Err(IrqRequestError::OutOfRange {
                    start,
                    count: count.into(),
                    have: 5
                }),
                "{start}+{count}"
            );
        }
        // Zero vectors is only the disable form, which starts at 0.
        assert_eq!(check_request(&msix, t, 0, &none(0)), Ok(()));
        assert_eq!(
            check_request(&msix, t, 1, &none(0)),
            Err(IrqRequestError::DisableNeedsStartZero)
        );
        assert!(matches!(
            check_request(&msix, t, 0, &IrqData::Bool(&[])),
            Err(IrqRequestError::OutOfRange { .. })
        ));
        assert!(matches!(
            check_request(&msix, IrqAction::Unmask, 0, &none(0)),
            Err(IrqRequestError::OutOfRange { .. })
        ));
        // An index the device does not implement.
        assert_eq!(
            check_request(&info(0, IrqFlags::EVENTFD), t, 0, &none(0)),
            Err(IrqRequestError::NoVectors)
        );
    }

    #[test]
    fn requests_are_checked_against_the_index_flags() {
        let msi = info(1, IrqFlags::EVENTFD | IrqFlags::NORESIZE);
        let intx = info(
            1,
            IrqFlags::EVENTFD | IrqFlags::MASKABLE | IrqFlags::AUTOMASKED,
        );
        let one = IrqData::None { count: 1 };
        for action in [IrqAction::Mask, IrqAction::Unmask] {
            assert_eq!(
                check_request(&msi, action, 0, &one),
                Err(IrqRequestError::NotMaskable)
            );
            assert_eq!(check_request(&intx, action, 0, &one), Ok(()));
            assert_eq!(
                check_request(&intx, action, 0, &IrqData::Bool(&[false])),
                Ok(())
            );
        }
        assert_eq!(
            check_request(&intx, IrqAction::Unmask, 0, &IrqData::Eventfd(&[None])),
            Ok(())
        );
        let no_eventfd = info(1, IrqFlags::MASKABLE);
        assert_eq!(
            check_request(
                &no_eventfd,
                IrqAction::Trigger,
                0,
                &IrqData::Eventfd(&[None])
            ),
            Err(IrqRequestError::NoEventfds)
        );
    }

    #[test]
    fn rejections_become_typed_errors() {
        let object = Object::Irq {
            device: "0000:00:04.0".into(),
            index: 2,
        };
        let e = IrqRequestError::OutOfRange {
            start: 4,
            count: 2,
            have: 5,
        }
        .into_error(object.clone());
        assert_eq!(e.errno(), Errno::ERANGE);
        assert_eq!(
            e.to_string(),
            "set_irqs on IRQ index 2 of device 0000:00:04.0: vectors 4..6 requested, the index \
             has 5 (and at least one must be given)"
        );
        let e = IrqRequestError::NotMaskable.into_error(object.clone());
        assert!(
            matches!(
                e,
                Error::NotSupported {
                    errno: Errno::EINVAL,
                    ..
                }
            ),
            "{e}"
        );
        let e = IrqRequestError::NoVectors.into_error(object.clone());
        assert!(matches!(e, Error::NotSupported { .. }), "{e}");
        let e = IrqRequestError::DisableNeedsStartZero.into_error(object);
        assert_eq!(e.errno(), Errno::EINVAL);
    }
}
