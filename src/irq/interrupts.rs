//! [`Interrupts`]: the owning handle of one enabled IRQ index.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Mutex, PoisonError};

use vmm_sys_util::eventfd::EventFd;

use super::fd::{borrow_eventfd, new_eventfd, set_nonblocking};
use crate::device::irq::{check_request, IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo};
use crate::error::{Errno, Error, Object, Result};
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
    /// Identifies the kernel device: two open fds of one device share its interrupt state.
    fn claim_key(&self) -> String;
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
        self.set_irqs_with(info, action, start, data)
    }

    fn object(&self, index: IrqIndex) -> Object {
        self.irq_object(index.0)
    }

    fn claim_key(&self) -> String {
        // The name the device was opened with may carry " vf_token=<uuid>" after the address.
        let name = self.name().split_whitespace().next().unwrap_or_default();
        match self.group() {
            Some(group) => format!("{}/{name}", group.id()),
            None => format!("cdev/{name}"),
        }
    }

    fn is_pci(&self) -> bool {
        self.flags().contains(crate::device::DeviceFlags::PCI)
    }
}

/// The IRQ indexes enabled through a handle in this process, by device.
static CLAIMS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// A registered claim on one index of one device; released on drop.
#[derive(Debug)]
struct Claim {
    key: String,
    index: u32,
}

impl Claim {
    fn take(target: &dyn Target, index: IrqIndex) -> Result<Claim> {
        let key = target.claim_key();
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        for &(ref k, i) in claims.iter() {
            if *k != key {
                continue;
            }
            let reason = if i == index.0 {
                "the index is already enabled by another Interrupts handle of this device; use \
                 that handle (dropping it disables the index)"
                    .to_string()
            } else if target.is_pci() && i <= 2 && index.0 <= 2 {
                format!(
                    "vfio-pci enables one of INTx, MSI and MSI-X at a time, and {} is enabled by \
                     another Interrupts handle; drop it first",
                    IrqIndex(i).pci_name().unwrap_or("another index")
                )
            } else {
                continue;
            };
            return Err(Error::InvalidArgument {
                op: "enable_irqs",
                object: target.object(index),
                reason,
                errno: Errno::EBUSY,
            });
        }
        claims.push((key.clone(), index.0));
        Ok(Claim {
            key,
            index: index.0,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = claims
            .iter()
            .position(|(k, i)| *k == self.key && *i == self.index)
        {
            claims.swap_remove(pos);
        }
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
/// The eventfds are made non-blocking (`O_NONBLOCK`, which also applies to any duplicate of
/// them), so that counters can be read without blocking once a wait says they are ready.
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
    /// Binds `eventfds` to vectors `0 .. eventfds.len()` (holes as `None`), enabling the index.
    pub(crate) fn enable(
        target: Box<dyn Target>,
        info: IrqInfo,
        eventfds: Vec<Option<EventFd>>,
    ) -> Result<Interrupts> {
        let object = || target.object(info.index);
        let count = eventfds.len();
        if info.count == 0 {
            return Err(crate::device::irq::Rejection::NoVectors.into_error(object()));
        }
        if count == 0 || count as u64 > u64::from(info.count) {
            return Err(crate::device::irq::Rejection::OutOfRange {
                start: 0,
                count: count as u64,
                have: info.count,
            }
            .into_error(object()));
        }
        for e in eventfds.iter().flatten() {
            set_nonblocking(e).map_err(|errno| Error::Syscall {
                op: "fcntl(F_SETFL, O_NONBLOCK)",
                object: object(),
                errno,
            })?;
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
    pub fn len(&self) -> u32 {
        // At most info.count (a u32): checked when vectors are added.
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
    /// `eventfds`, (`EINVAL`, `EBADF`) for a descriptor that is not an open eventfd;
    /// [`Error::Syscall`] if an eventfd cannot be made non-blocking; [`Error::Ioctl`] when the
    /// kernel refuses.
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
        for e in eventfds.iter().flatten() {
            set_nonblocking(e).map_err(|errno| Error::Syscall {
                op: "fcntl(F_SETFL, O_NONBLOCK)",
                object: self.object(),
                errno,
            })?;
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
            return Err(
                crate::device::irq::Rejection::NoVectors.into_error(self.irq_object(info.index.0))
            );
        }
        if count == 0 || count > info.count {
            return Err(crate::device::irq::Rejection::OutOfRange {
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
                object: self.irq_object(info.index.0),
                errno,
            })?;
            eventfds.push(Some(e));
        }
        Interrupts::enable(Box::new(self.clone()), info, eventfds)
    }

    /// Enables vectors `0 .. eventfds.len()` of `index` with the given eventfds (`None` leaves a
    /// hole: the kernel enables the vector but it signals nothing until one is bound with
    /// [`Interrupts::set_vector`]), and returns the handle, which now owns them.
    ///
    /// # Errors
    ///
    /// As [`Device::enable_irqs`], plus [`Error::InvalidArgument`] (`EBADF`, `EINVAL`) for a
    /// descriptor that is not an open eventfd.
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
                object: self.irq_object(index.0),
                reason: format!("{what} notification is a vfio-pci interrupt index"),
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
                object: self.irq_object(index.0),
                reason: format!(
                    "the kernel offers no {what} notification for this device{}",
                    if index == IrqIndex::ERR {
                        " (it has no PCI Express capability, so no AER)"
                    } else {
                        ""
                    }
                ),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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

        fn claim_key(&self) -> String {
            self.key.clone()
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

    fn numbers(irqs: &Interrupts) -> Vec<i32> {
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
        let err =
            Interrupts::enable(Box::new(kernel.clone()), intx_info(), eventfds(1)).unwrap_err();
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
}
