//! [`Interrupts`]: the owning handle of one enabled IRQ index.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};

use vmm_sys_util::eventfd::EventFd;

use super::claim::Claim;
use super::fd::{borrow_eventfd, check_adopted, check_eventfd};
use crate::device::irq::{
    check_request, not_an_eventfd, IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo,
};
use crate::error::{Error, Object, Result};
use crate::Device;

/// Where a handle sends its `VFIO_DEVICE_SET_IRQS` requests: the device, or a recording double
/// in the unit tests.
pub(crate) trait Target: fmt::Debug + Send + Sync {
    /// The checked `VFIO_DEVICE_SET_IRQS`.
    fn set_irqs(
        &self,
        info: &IrqInfo,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()>;
    /// What errors name.
    fn object(&self, index: IrqIndex) -> Object;
    /// The state every open fd of the device shares, where the claims of its indexes live.
    fn shared(&self) -> std::sync::Arc<crate::device::shared::DeviceShared>;
    /// Whether vfio-pci's "one of INTx, MSI and MSI-X at a time" applies.
    fn is_pci(&self) -> bool;
}

impl Target for Device {
    fn set_irqs(
        &self,
        info: &IrqInfo,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        // The handle's eventfds were checked when it took them.
        self.set_irqs_trusted(info, action, start, data)
    }

    fn object(&self, index: IrqIndex) -> Object {
        self.irq_object(index.0)
    }

    fn shared(&self) -> std::sync::Arc<crate::device::shared::DeviceShared> {
        self.0.shared.clone()
    }

    fn is_pci(&self) -> bool {
        self.flags().contains(crate::device::DeviceFlags::PCI)
    }
}

/// One enabled IRQ index of a device, owning the eventfds its vectors signal.
///
/// Created by [`Device::enable_irqs`] (new eventfds), [`Device::enable_irqs_with`] (yours),
/// [`Device::notify_errors`] and [`Device::notify_release_requests`]. The handle covers the
/// vectors `0 .. len()` the kernel enabled; a vector may be a hole (no eventfd), and vectors can
/// be bound, changed and removed one at a time with [`Interrupts::set_vector`].
///
/// Dropping the handle disables the index in the kernel (`VFIO_DEVICE_SET_IRQS` with
/// `DATA_NONE | ACTION_TRIGGER` and no vectors, after removing any unmask eventfds) and *then*
/// closes its eventfds, so the kernel never signals a closed eventfd; errors at that point are
/// ignored (use [`Interrupts::disable`] to see them), and nothing panics.
///
/// Only one handle per index and device exists at a time in a process (and, for vfio-pci, only
/// one of INTx, MSI and MSI-X): a second [`Device::enable_irqs`] is an `EBUSY` error instead of
/// silently taking over the kernel state the first handle would tear down when dropped.
///
/// The eventfds must be non-blocking (`EFD_NONBLOCK`; the ones the crate makes are), so that
/// counters can be read without blocking once a wait says they are ready. The handle never
/// changes a descriptor's flags: they belong to the open file, which every duplicate shares. A
/// caller's eventfd is checked once, when the handle takes it; the requests that follow do not
/// look at it again.
pub struct Interrupts {
    // Field order: the eventfds close before the device handle is released. The kernel has
    // already forgotten them by then: Drop disables the index first.
    vectors: Vec<Option<EventFd>>,
    unmask: Vec<Option<EventFd>>,
    info: IrqInfo,
    disabled: bool,
    target: Box<dyn Target>,
    // Released last, after the index is disabled, so no other handle can enable it in between.
    _claim: Claim,
}

impl fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds = |v: &[Option<EventFd>]| -> Vec<Option<i32>> {
            v.iter()
                .map(|e| e.as_ref().map(AsRawFd::as_raw_fd))
                .collect()
        };
        f.debug_struct("Interrupts")
            .field("target", &self.target)
            .field("info", &self.info)
            .field("vectors", &fds(&self.vectors))
            .field("unmask", &fds(&self.unmask))
            .finish()
    }
}

fn borrow_all(v: &[Option<EventFd>]) -> Vec<Option<BorrowedFd<'_>>> {
    v.iter().map(|e| e.as_ref().map(borrow_eventfd)).collect()
}

impl Interrupts {
    /// Binds `eventfds` to vectors `0 .. eventfds.len()` (holes as `None`), enabling the index;
    /// each eventfd is checked first (an open, non-blocking eventfd).
    pub(crate) fn enable(
        target: Box<dyn Target>,
        info: IrqInfo,
        eventfds: Vec<Option<EventFd>>,
    ) -> Result<Interrupts> {
        for (vector, e) in (0u32..).zip(&eventfds) {
            if let Some(e) = e {
                let fd = borrow_eventfd(e);
                check_adopted(fd)
                    .map_err(|why| not_an_eventfd(target.object(info.index), vector, fd, why))?;
            }
        }
        Interrupts::enable_own(target, info, eventfds)
    }

    /// [`Interrupts::enable`] with eventfds the crate made (open, non-blocking eventfds by
    /// construction): nothing is looked up.
    pub(crate) fn enable_own(
        target: Box<dyn Target>,
        info: IrqInfo,
        eventfds: Vec<Option<EventFd>>,
    ) -> Result<Interrupts> {
        let object = || target.object(info.index);
        let count = eventfds.len();
        if info.count == 0 {
            return Err(crate::device::irq::IrqRequestError::NoVectors.into_error(object()));
        }
        if count == 0 || count as u64 > u64::from(info.count) {
            return Err(crate::device::irq::IrqRequestError::OutOfRange {
                start: 0,
                count: count as u64,
                have: info.count,
            }
            .into_error(object()));
        }
        let claim = Claim::take(&*target, info.index)?;
        target.set_irqs(
            &info,
            IrqAction::Trigger,
            0,
            IrqData::Eventfd(&borrow_all(&eventfds)),
        )?;
        Ok(Interrupts {
            vectors: eventfds,
            unmask: Vec::new(),
            info,
            disabled: false,
            target,
            _claim: claim,
        })
    }

    /// What errors about this handle name.
    pub(super) fn object(&self) -> Object {
        self.target.object(self.info.index)
    }

    fn error_out_of_range(&self, op: &'static str, start: u32, count: u64, limit: u32) -> Error {
        Error::out_of_range(
            op,
            self.object(),
            format!(
                "vectors {start}..{} requested, the handle covers vectors 0..{limit}",
                u64::from(start) + count
            ),
        )
    }

    /// The IRQ index.
    pub fn index(&self) -> IrqIndex {
        self.info.index
    }

    /// The index's info, as read when the handle was created.
    pub fn info(&self) -> &IrqInfo {
        &self.info
    }

    /// The number of vectors the kernel has enabled: the handle covers vectors `0 .. len()`.
    // At most info.count (a u32), checked when vectors are added: lossless.
    #[allow(clippy::cast_possible_truncation)]
    pub fn len(&self) -> u32 {
        self.vectors.len() as u32
    }

    /// Whether the handle covers no vector (never true for a live handle).
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The eventfd vector `vector` signals, if it has one.
    pub fn eventfd(&self, vector: u32) -> Option<&EventFd> {
        self.vectors.get(vector as usize)?.as_ref()
    }

    /// The vectors that have an eventfd, with it, in vector order.
    pub fn bound(&self) -> impl Iterator<Item = (u32, &EventFd)> + '_ {
        (0u32..)
            .zip(&self.vectors)
            .filter_map(|(v, e)| e.as_ref().map(|e| (v, e)))
    }

    /// The unmask ("resample") eventfd of `vector`, if one is set.
    pub fn unmask_eventfd(&self, vector: u32) -> Option<&EventFd> {
        self.unmask.get(vector as usize)?.as_ref()
    }

    /// The eventfd of `vector`, or an error naming the vector.
    pub(crate) fn bound_eventfd(&self, op: &'static str, vector: u32) -> Result<&EventFd> {
        self.eventfd(vector).ok_or_else(|| {
            Error::invalid(
                op,
                self.object(),
                format!(
                    "vector {vector} has no eventfd (the handle covers vectors 0..{}, bound: {:?})",
                    self.len(),
                    self.bound().map(|(v, _)| v).collect::<Vec<_>>()
                ),
            )
        })
    }

    /// Binds `eventfd` to `vector`, or with `None` removes the vector's eventfd, and returns the
    /// eventfd the vector had. The one-vector form of [`Interrupts::set_vectors`].
    ///
    /// Within the enabled range (`vector < len()`) this is one `VFIO_DEVICE_SET_IRQS` with
    /// `start = vector, count = 1`: the other vectors are not touched and keep firing.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::set_vectors`].
    #[doc(alias = "VFIO_IRQ_SET_ACTION_TRIGGER")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_EVENTFD")]
    pub fn set_vector(&mut self, vector: u32, eventfd: Option<EventFd>) -> Result<Option<EventFd>> {
        Ok(self.set_vectors(vector, vec![eventfd])?.pop().flatten())
    }

    /// Binds `eventfds` to the vectors `start ..` (`None` removes a vector's eventfd, leaving a
    /// hole) and returns the eventfds those vectors had, in the same order.
    ///
    /// Within the enabled range (`start + eventfds.len() <= len()`) this is one
    /// `VFIO_DEVICE_SET_IRQS` with that `start` and `count`: the vectors outside it are not
    /// touched and keep firing. Past it, an index without [`IrqFlags::NORESIZE`] (vfio-pci's
    /// MSI-X on kernels with dynamic MSI-X, 6.5 and later) grows in place the same way. With
    /// NORESIZE (MSI, and MSI-X on older kernels) the kernel cannot grow an enabled index, so the
    /// handle does the documented full re-arm: it disables the index, then enables `0 .. end`
    /// with every eventfd again. Interrupts the device raises during that window are lost
    /// (counters already signalled are kept). Holes past the enabled range ask nothing of the
    /// kernel.
    ///
    /// On failure the handle is unchanged and the kernel is put back as it was: the old eventfds
    /// of the range are bound again (the kernel drops a vector's eventfd before it looks at the
    /// new one, and unbinds the whole range when one fails); after a failed re-arm the old set
    /// is enabled again, and if even that fails the index is left disabled (the first error is
    /// returned either way).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for vectors the index does not have or an empty
    /// `eventfds`, (`EINVAL`, `EBADF`) for a descriptor that is not an open, non-blocking
    /// eventfd; [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "VFIO_IRQ_SET_ACTION_TRIGGER")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_EVENTFD")]
    pub fn set_vectors(
        &mut self,
        start: u32,
        mut eventfds: Vec<Option<EventFd>>,
    ) -> Result<Vec<Option<EventFd>>> {
        let count = eventfds.len();
        if count == 0 || u64::from(start) + count as u64 > u64::from(self.info.count) {
            return Err(self.error_out_of_range(
                "set_vectors",
                start,
                count as u64,
                self.info.count,
            ));
        }
        for (vector, e) in (start..).zip(&eventfds) {
            if let Some(e) = e {
                let fd = borrow_eventfd(e);
                check_adopted(fd).map_err(|why| not_an_eventfd(self.object(), vector, fd, why))?;
            }
        }
        let first = start as usize;
        let len = self.vectors.len();
        // Holes past the enabled range: nothing is bound there, nothing to ask.
        while first + eventfds.len() > len && matches!(eventfds.last(), Some(None)) {
            eventfds.pop();
        }
        let end = first + eventfds.len();
        if first < end {
            if end <= len || !self.info.flags.contains(IrqFlags::NORESIZE) {
                self.bind_in_place(start, &eventfds)?;
            } else {
                self.rearm(start, &eventfds)?;
            }
        }
        if self.vectors.len() < end {
            self.vectors.resize_with(end, || None);
        }
        let mut old: Vec<Option<EventFd>> = eventfds
            .into_iter()
            .zip(&mut self.vectors[first..end])
            .map(|(new, slot)| std::mem::replace(slot, new))
            .collect();
        old.resize_with(count, || None);
        Ok(old)
    }

    /// One `SET_IRQS` for `start .. start + eventfds.len()`; on failure, binds the old eventfds
    /// of the enabled part of the range again.
    fn bind_in_place(&self, start: u32, eventfds: &[Option<EventFd>]) -> Result<()> {
        let result = self.target.set_irqs(
            &self.info,
            IrqAction::Trigger,
            start,
            IrqData::Eventfd(&borrow_all(eventfds)),
        );
        if let Err(e) = result {
            let first = start as usize;
            let restore_end = (first + eventfds.len()).min(self.vectors.len());
            if first < restore_end {
                // Best effort: the first error is the one to report.
                let _ = self.target.set_irqs(
                    &self.info,
                    IrqAction::Trigger,
                    start,
                    IrqData::Eventfd(&borrow_all(&self.vectors[first..restore_end])),
                );
            }
            return Err(e);
        }
        Ok(())
    }

    /// The full re-arm of a NORESIZE index: disable, then enable `0 .. end` with the current
    /// eventfds and `eventfds` at `start ..`; on failure, enable the old set again.
    fn rearm(&self, start: u32, eventfds: &[Option<EventFd>]) -> Result<()> {
        let first = start as usize;
        let end = first + eventfds.len();
        let mut fds = borrow_all(&self.vectors);
        fds.resize(end.max(fds.len()), None);
        fds[first..end].copy_from_slice(&borrow_all(eventfds));
        self.target.set_irqs(
            &self.info,
            IrqAction::Trigger,
            0,
            IrqData::None { count: 0 },
        )?;
        let result =
            self.target
                .set_irqs(&self.info, IrqAction::Trigger, 0, IrqData::Eventfd(&fds));
        if let Err(e) = result {
            let _ = self.target.set_irqs(
                &self.info,
                IrqAction::Trigger,
                0,
                IrqData::Eventfd(&borrow_all(&self.vectors)),
            );
            return Err(e);
        }
        Ok(())
    }

    /// Removes `vector`'s eventfd (the vector stops signalling; the others are not touched) and
    /// returns it. Same as `set_vector(vector, None)`.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::set_vector`].
    pub fn remove_vector(&mut self, vector: u32) -> Result<Option<EventFd>> {
        self.set_vector(vector, None)
    }

    /// Fires `vector`'s eventfd from the kernel without the device: the loopback trigger
    /// (`DATA_NONE | ACTION_TRIGGER`), for tests and for handing work to an interrupt thread.
    /// A vector without an eventfd is skipped by the kernel.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for a vector outside `0 .. len()`;
    /// [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "VFIO_IRQ_SET_DATA_NONE")]
    pub fn trigger(&self, vector: u32) -> Result<()> {
        self.loopback(vector, IrqData::None { count: 1 })
    }

    /// Fires the eventfds of the vectors `start + i` whose `fire[i]` is `true`, in one call
    /// (`DATA_BOOL | ACTION_TRIGGER`).
    ///
    /// # Errors
    ///
    /// As [`Interrupts::trigger`].
    #[doc(alias = "VFIO_IRQ_SET_DATA_BOOL")]
    pub fn trigger_many(&self, start: u32, fire: &[bool]) -> Result<()> {
        self.loopback(start, IrqData::Bool(fire))
    }

    fn loopback(&self, start: u32, data: IrqData<'_>) -> Result<()> {
        let count = data.len();
        if count == 0 || u64::from(start) + count > u64::from(self.len()) {
            return Err(self.error_out_of_range("trigger", start, count, self.len()));
        }
        self.target
            .set_irqs(&self.info, IrqAction::Trigger, start, data)
    }

    fn mask_action(&self, action: IrqAction, start: u32, data: IrqData<'_>) -> Result<()> {
        check_request(&self.info, action, start, &data).map_err(|r| r.into_error(self.object()))?;
        self.target.set_irqs(&self.info, action, start, data)
    }

    /// Masks `vector` (`DATA_NONE | ACTION_MASK`): the kernel holds its interrupts back until it
    /// is unmasked.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] when the index is not [`IrqFlags::MASKABLE`] (vfio-pci: only
    /// INTx is); [`Error::InvalidArgument`] (`ERANGE`) for a vector the index does not have;
    /// [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "VFIO_IRQ_SET_ACTION_MASK")]
    pub fn mask(&self, vector: u32) -> Result<()> {
        self.mask_action(IrqAction::Mask, vector, IrqData::None { count: 1 })
    }

    /// Unmasks `vector` (`DATA_NONE | ACTION_UNMASK`). For an [`IrqFlags::AUTOMASKED`] index
    /// (level-triggered INTx) this re-arms the interrupt after it was serviced: the kernel masks
    /// it each time it fires, and signals again at once if the line is still asserted.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::mask`].
    #[doc(alias = "VFIO_IRQ_SET_ACTION_UNMASK")]
    pub fn unmask(&self, vector: u32) -> Result<()> {
        self.mask_action(IrqAction::Unmask, vector, IrqData::None { count: 1 })
    }

    /// Masks the vectors `start + i` whose `mask[i]` is `true` (`DATA_BOOL | ACTION_MASK`).
    ///
    /// # Errors
    ///
    /// As [`Interrupts::mask`].
    pub fn mask_many(&self, start: u32, mask: &[bool]) -> Result<()> {
        self.mask_action(IrqAction::Mask, start, IrqData::Bool(mask))
    }

    /// Unmasks the vectors `start + i` whose `unmask[i]` is `true` (`DATA_BOOL |
    /// ACTION_UNMASK`).
    ///
    /// # Errors
    ///
    /// As [`Interrupts::mask`].
    pub fn unmask_many(&self, start: u32, unmask: &[bool]) -> Result<()> {
        self.mask_action(IrqAction::Unmask, start, IrqData::Bool(unmask))
    }

    /// Sets (or with `None` removes) the eventfd that unmasks `vector` when it is written
    /// (`DATA_EVENTFD | ACTION_UNMASK`), and returns the previous one.
    ///
    /// This is the "resample" eventfd of level-triggered INTx: the interrupt handler services the
    /// device and writes the eventfd, and the kernel unmasks the line without another ioctl (for
    /// example KVM's irqfd resampler, or a device thread). The handle owns it and closes it after
    /// the index is disabled.
    ///
    /// # Errors
    ///
    /// As [`Interrupts::mask`]; vfio-pci accepts it for INTx only.
    #[doc(alias = "VFIO_IRQ_SET_ACTION_UNMASK")]
    #[doc(alias = "VFIO_IRQ_SET_DATA_EVENTFD")]
    pub fn set_unmask_eventfd(
        &mut self,
        vector: u32,
        eventfd: Option<EventFd>,
    ) -> Result<Option<EventFd>> {
        let v = vector as usize;
        if eventfd.is_none() && self.unmask.get(v).is_none_or(Option::is_none) {
            return Ok(None);
        }
        if let Some(e) = &eventfd {
            let fd = borrow_eventfd(e);
            check_eventfd(fd).map_err(|why| not_an_eventfd(self.object(), vector, fd, why))?;
        }
        let fd = [eventfd.as_ref().map(borrow_eventfd)];
        self.mask_action(IrqAction::Unmask, vector, IrqData::Eventfd(&fd))?;
        if self.unmask.len() <= v {
            self.unmask.resize_with(v + 1, || None);
        }
        Ok(std::mem::replace(&mut self.unmask[v], eventfd))
    }

    /// Disables the index now and reports the kernel's answer; dropping the handle does the same
    /// but ignores errors. The eventfds are closed afterwards either way.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses (the eventfds are still closed).
    pub fn disable(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        if self.disabled {
            return Ok(());
        }
        self.disabled = true;
        let mut first_error = None;
        // Unmask eventfds first: vfio-pci drops them with INTx anyway, other bus drivers may not.
        for (vector, e) in (0u32..).zip(&self.unmask) {
            if e.is_some() {
                if let Err(err) = self.target.set_irqs(
                    &self.info,
                    IrqAction::Unmask,
                    vector,
                    IrqData::Eventfd(&[None]),
                ) {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Err(err) = self.target.set_irqs(
            &self.info,
            IrqAction::Trigger,
            0,
            IrqData::None { count: 0 },
        ) {
            first_error.get_or_insert(err);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `disable` reports them.
        let _ = self.teardown();
        // The fields drop next: the eventfds close only now that the kernel has let go.
    }
}
