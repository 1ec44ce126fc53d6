//! Owned, aligned buffers for the kernel structs whose size is only known at run time: the info
//! structs followed by capability chains (`argsz` grows when the kernel asks), and the
//! flexible-array structs the crate sends (`vfio_irq_set`, `vfio_pci_hot_reset`).
//!
//! No `unsafe` here: [`ArgszBuf`] stores its bytes in a `Vec<u64>` (so the start is 8-byte
//! aligned: every VFIO struct has an alignment of at most 8) and views them with zerocopy.
//! Typed reads need [`FromBytes`] (any bytes are a value) and typed writes [`IntoBytes`] +
//! [`Immutable`], which the derive refuses for a struct with padding: a padded struct's
//! uninitialised padding can never reach the buffer, whose bytes are always initialised (zeroed
//! on creation, then written by the kernel or by [`ArgszBuf::write`]).

use std::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::vfio;
use crate::error::Errno;

/// Reads a `T` at byte `offset` of `bytes`, or `None` when it does not fit.
pub(crate) fn read_pod<T: FromBytes>(bytes: &[u8], offset: usize) -> Option<T> {
    T::read_from_prefix(bytes.get(offset..)?)
        .ok()
        .map(|(v, _)| v)
}

/// The most bytes the crate lets the kernel ask for in one info query (1 MiB): far more than any
/// real capability chain, small enough that a misbehaving driver cannot make us allocate wildly.
pub(crate) const MAX_ARGSZ: usize = 1 << 20;

/// `size_of::<T>()` as the `u32` of an `argsz` field: a uAPI struct is a few hundred bytes, and
/// the bound is asserted at compile time for every `T` this is used with.
pub(crate) const fn argsz_of<T>() -> u32 {
    const { assert!(size_of::<T>() <= MAX_ARGSZ) };
    // At most MAX_ARGSZ (1 MiB), asserted above: lossless.
    #[allow(clippy::cast_possible_truncation)]
    let argsz = size_of::<T>() as u32;
    argsz
}

/// A zeroed, 8-byte aligned byte buffer holding a kernel struct and whatever follows it.
#[derive(Clone)]
pub(crate) struct ArgszBuf {
    words: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for ArgszBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgszBuf").field("len", &self.len).finish()
    }
}

impl ArgszBuf {
    /// A zeroed buffer of `len` bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        ArgszBuf {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// A zeroed buffer of `len` bytes (at least `size_of::<T>()`) starting with `value`.
    pub(crate) fn with<T: IntoBytes + Immutable>(value: &T, len: usize) -> Self {
        let mut buf = Self::zeroed(len.max(size_of::<T>()));
        buf.write(0, value);
        buf
    }

    /// The buffer's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // `words` holds len.div_ceil(8) words: at least `len` bytes.
        &self.words.as_bytes()[..self.len]
    }

    /// The buffer's bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.words.as_mut_bytes()[..self.len]
    }

    /// A pointer to the start of the buffer, for the ioctl call.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.words.as_mut_ptr().cast()
    }

    /// Reads a `T` at byte `offset`, or `None` when it does not fit.
    pub(crate) fn read<T: FromBytes>(&self, offset: usize) -> Option<T> {
        read_pod(self.bytes(), offset)
    }

    /// Writes `value` at byte `offset`.
    ///
    /// # Panics
    ///
    /// Only on a bug in the crate: callers size the buffer for what they write.
    pub(crate) fn write<T: IntoBytes + Immutable>(&mut self, offset: usize, value: &T) {
        let end = offset
            .checked_add(size_of::<T>())
            .filter(|&end| end <= self.len)
            .expect("ArgszBuf::write past the end of the buffer");
        self.bytes_mut()[offset..end].copy_from_slice(value.as_bytes());
    }

    /// The `argsz` the struct at the start of the buffer now holds (the kernel raises it when the
    /// buffer was too small for the capability chain).
    pub(crate) fn argsz(&self) -> u32 {
        self.read::<u32>(0).unwrap_or(0)
    }
}

/// The data part of a `VFIO_DEVICE_SET_IRQS` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IrqSetData<'a> {
    /// `VFIO_IRQ_SET_DATA_NONE` for `count` vectors.
    None { count: u32 },
    /// `VFIO_IRQ_SET_DATA_BOOL`, one byte per vector.
    Bool(&'a [bool]),
    /// `VFIO_IRQ_SET_DATA_EVENTFD`, one `i32` per vector (`-1` to leave a hole / remove one).
    Eventfd(&'a [i32]),
}

/// Builds the bytes of a `vfio_irq_set` followed by its data array, with `argsz` equal to the
/// buffer's length; `E2BIG` when the count or the length does not fit the `u32` fields.
pub(crate) fn irq_set(
    index: u32,
    action: u32,
    start: u32,
    data: IrqSetData<'_>,
) -> Result<ArgszBuf, Errno> {
    let header = size_of::<vfio::vfio_irq_set>();
    let to_u32 = |n: usize| u32::try_from(n).map_err(|_| Errno::E2BIG);
    let (data_flag, count, data_len) = match data {
        IrqSetData::None { count } => (vfio::VFIO_IRQ_SET_DATA_NONE, count, 0),
        IrqSetData::Bool(b) => (vfio::VFIO_IRQ_SET_DATA_BOOL, to_u32(b.len())?, b.len()),
        IrqSetData::Eventfd(fds) => (
            vfio::VFIO_IRQ_SET_DATA_EVENTFD,
            to_u32(fds.len())?,
            fds.len().checked_mul(4).ok_or(Errno::E2BIG)?,
        ),
    };
    let len = header.checked_add(data_len).ok_or(Errno::E2BIG)?;
    let set = vfio::vfio_irq_set {
        argsz: to_u32(len)?,
        flags: data_flag | action,
        index,
        start,
        count,
    };
    let mut buf = ArgszBuf::with(&set, len);
    match data {
        IrqSetData::None { .. } => {}
        IrqSetData::Bool(b) => {
            for (i, &v) in b.iter().enumerate() {
                buf.write(header + i, &u8::from(v));
            }
        }
        IrqSetData::Eventfd(fds) => {
            for (i, fd) in fds.iter().enumerate() {
                buf.write(header + 4 * i, fd);
            }
        }
    }
    Ok(buf)
}

/// Builds the bytes of a `vfio_pci_hot_reset` followed by its group fds; `E2BIG` when the
/// count or the length does not fit the `u32` fields.
pub(crate) fn pci_hot_reset(group_fds: &[i32]) -> Result<ArgszBuf, Errno> {
    let header = size_of::<vfio::vfio_pci_hot_reset>();
    let to_u32 = |n: usize| u32::try_from(n).map_err(|_| Errno::E2BIG);
    let len = group_fds
        .len()
        .checked_mul(4)
        .and_then(|n| n.checked_add(header))
        .ok_or(Errno::E2BIG)?;
    let reset = vfio::vfio_pci_hot_reset {
        argsz: to_u32(len)?,
        flags: 0,
        count: to_u32(group_fds.len())?,
    };
    let mut buf = ArgszBuf::with(&reset, len);
    for (i, fd) in group_fds.iter().enumerate() {
        buf.write(header + 4 * i, fd);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_aligned_zeroed_and_bounds_checked() {
        let buf = ArgszBuf::zeroed(13);
        assert_eq!(buf.bytes().len(), 13);
        assert_eq!(buf.bytes().as_ptr() as usize % 8, 0);
        assert!(buf.bytes().iter().all(|&b| b == 0));
        assert_eq!(buf.read::<u64>(5), Some(0));
        assert_eq!(buf.read::<u64>(6), None);
        assert_eq!(buf.read::<u32>(usize::MAX - 1), None);
    }

    #[test]
    fn irq_set_eventfd_layout() {
        let buf = irq_set(
            vfio::VFIO_PCI_MSIX_IRQ_INDEX,
            vfio::VFIO_IRQ_SET_ACTION_TRIGGER,
            2,
            IrqSetData::Eventfd(&[7, -1, 9]),
        )
        .unwrap();
        let b = buf.bytes();
        assert_eq!(b.len(), 20 + 12);
        let word = |i: usize| u32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(word(0), 32, "argsz");
        assert_eq!(
            word(1),
            vfio::VFIO_IRQ_SET_DATA_EVENTFD | vfio::VFIO_IRQ_SET_ACTION_TRIGGER
        );
        assert_eq!(word(2), vfio::VFIO_PCI_MSIX_IRQ_INDEX);
        assert_eq!(word(3), 2, "start");
        assert_eq!(word(4), 3, "count");
        assert_eq!(word(5) as i32, 7);
        assert_eq!(word(6) as i32, -1);
        assert_eq!(word(7) as i32, 9);
    }

    #[test]
    fn irq_set_bool_and_none_layout() {
        let buf = irq_set(
            0,
            vfio::VFIO_IRQ_SET_ACTION_MASK,
            0,
            IrqSetData::Bool(&[true, false]),
        )
        .unwrap();
        assert_eq!(buf.bytes().len(), 22);
        assert_eq!(buf.argsz(), 22);
        assert_eq!(&buf.bytes()[20..], &[1, 0]);
        assert_eq!(
            buf.read::<u32>(4),
            Some(vfio::VFIO_IRQ_SET_DATA_BOOL | vfio::VFIO_IRQ_SET_ACTION_MASK)
        );

        let disable = irq_set(
            1,
            vfio::VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            IrqSetData::None { count: 0 },
        )
        .unwrap();
        assert_eq!(disable.bytes().len(), 20);
        assert_eq!(disable.read::<u32>(16), Some(0));
        assert_eq!(
            disable.read::<u32>(4),
            Some(vfio::VFIO_IRQ_SET_DATA_NONE | vfio::VFIO_IRQ_SET_ACTION_TRIGGER)
        );
    }

    #[test]
    fn hot_reset_layout() {
        let buf = pci_hot_reset(&[3, 4]).unwrap();
        assert_eq!(buf.bytes().len(), 12 + 8);
        assert_eq!(buf.argsz(), 20);
        assert_eq!(buf.read::<u32>(8), Some(2));
        assert_eq!(buf.read::<i32>(12), Some(3));
        assert_eq!(buf.read::<i32>(16), Some(4));
    }
}
