//! [`Register`]: one register of a mapped region, checked once when it is made.

use std::fmt;

use super::map::{Slot, Word};
use super::region::Region;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// One register of a [`Region`], checked once when made: each [`read`](Register::read) and
/// [`write`](Register::write) is then a bare volatile access, the same instructions as a raw
/// pointer, with no range, alignment or permission check and no error to handle.
///
/// For the accesses a driver repeats in its hot loop (a doorbell, a status poll, an interrupt
/// mask); everything else reads well through [`Region::read_u32`] and friends, which check
/// each access (one rotate and one compare) and fall back to `pread`/`pwrite` where the region
/// is not mapped. Made by [`Region::register_u32`] (and `_u8`, `_u16`, `_u64`), which fail
/// for an offset the accessors would refuse or that no read-write mapping serves.
///
/// A `Register` borrows its `Region`: the mapping, and the crate's hold on memory decoding that
/// keeps mapped accesses from raising `SIGBUS` (see the [module documentation](super)), last
/// as long as the register. It is `Copy`, `Send` and `Sync`, like `&Region`.
///
/// ```no_run
/// use uvfio::device::RegionIndex;
/// # let device: uvfio::Device = unimplemented!();
/// let bar0 = device.region(RegionIndex::BAR0)?;
/// let tdt = bar0.register_u32(0x3818)?; // e1000e TDT, the transmit doorbell
/// for tail in 1..=8 {
///     tdt.write(tail);
/// }
/// # Ok::<(), uvfio::Error>(())
/// ```
///
/// A register cannot outlive its region's mapping:
///
/// ```compile_fail,E0505
/// use uvfio::device::RegionIndex;
/// fn status(device: &uvfio::Device) -> uvfio::Result<u32> {
///     let bar0 = device.region(RegionIndex::BAR0)?;
///     let status = bar0.register_u32(0x8)?;
///     drop(bar0); // error: cannot move out of `bar0` because it is borrowed
///     Ok(status.read())
/// }
/// ```
pub struct Register<'a, T> {
    slot: Slot<'a, T>,
    offset: u64,
}

impl<T> Clone for Register<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Register<'_, T> {}

impl<T> fmt::Debug for Register<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Register")
            .field("offset", &format_args!("{:#x}", self.offset))
            .field("bytes", &std::mem::size_of::<T>())
            .finish()
    }
}

impl<T> Register<'_, T> {
    /// The register's offset in its region.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

macro_rules! register {
    ($($t:ty, $make:ident, $read:ident);* $(;)?) => {$(
        impl Register<'_, $t> {
            /// Reads the register: one volatile little-endian load of its width.
            #[inline(always)]
            pub fn read(&self) -> $t {
                Word::le_to_host(self.slot.read())
            }

            /// Writes `value` to the register: one volatile little-endian store of its width.
            #[inline(always)]
            pub fn write(&self, value: $t) {
                self.slot.write(Word::host_to_le(value));
            }
        }

        impl Region {
            #[doc = concat!("The `", stringify!($t), "` register at `offset`, checked once: see [`Register`].")]
            ///
            /// # Errors
            ///
            #[doc = concat!("- As [`Region::", stringify!($read), "`] for an offset outside the region or misaligned, with the")]
            ///   operation `register`;
            /// - [`Error::NotSupported`] (`EACCES`) unless the region is readable and writable;
            /// - [`Error::NotSupported`] (`ENXIO`) when no read-write mapping serves `offset`
            ///   (the kernel does not let userspace map it, it is in the MSI-X table, or the
            ///   region was made with [`MapOptions::never_map`](super::MapOptions::never_map)):
            ///   the checked accessors still reach it through `pread`/`pwrite`.
            pub fn $make(&self, offset: u64) -> Result<Register<'_, $t>> {
                Ok(Register {
                    slot: self.raw.slot::<$t>(offset)?,
                    offset,
                })
            }
        }
    )*};
}

register! {
    u8, register_u8, read_u8;
    u16, register_u16, read_u16;
    u32, register_u32, read_u32;
    u64, register_u64, read_u64;
}
