//! [`DmaMemory`]: sound CPU access to memory that a device reads and writes behind the
//! compiler's back.
//!
//! # Safety
//!
//! The memory of a [`DmaBuffer`](super::DmaBuffer) or [`PoolBuffer`](super::PoolBuffer) is
//! mapped for DMA for as long as the value lives, so a device may read or write any byte of it
//! at any moment. Rust references (`&[u8]`, `&mut T`) promise the compiler that the bytes do
//! not change (or that nothing else reads them), which a device breaks; creating one is
//! undefined behaviour. So this trait never hands out a reference to the bytes. It works with
//! raw pointers only, and:
//!
//! - **volatile accesses** for reads and writes: every access is performed, exactly as
//!   written, and the compiler assumes nothing about the values; the device is an agent outside
//!   the Rust abstract machine, like memory-mapped I/O;
//! - **reads through `&self`, writes through `&mut self`**: the CPU side can never race with
//!   itself. Concurrent volatile *reads* from several threads are no data race; a write needs
//!   exclusive access, so no read or other write of the same buffer can happen meanwhile;
//! - **atomics through `&mut self`**: [`DmaMemory::atomics`] gives a `&[AtomicU32]` (or
//!   another width) view of the whole buffer, which threads may then share; while it exists,
//!   the exclusive borrow rules out volatile accesses and views of other widths, so atomic
//!   accesses never mix sizes (which the Rust memory model forbids for racing accesses);
//! - **typed values only of plain data**, proven by zerocopy's derives: reads need
//!   [`FromBytes`] (any bytes are a valid value), writes [`IntoBytes`] + [`Immutable`] (no
//!   padding, no interior mutability);
//! - **bounds checked**: every offset and length is checked (with overflow checks) against the
//!   buffer before a pointer is formed, so an access never leaves the buffer;
//! - the escape hatches [`DmaMemory::as_slice`] and [`DmaMemory::as_mut_slice`] are `unsafe`
//!   and state what the caller must ensure.
//!
//! Implementors (sealed: only this crate's types) promise that `base()` is valid for reads
//! and writes of `len()` bytes for as long as `&self` lives, aligned to at least 64 bytes, and
//! that no other safe handle can access those bytes.
#![allow(unsafe_code)]

use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::{Errno, Error, Object, Result};
use crate::iommu::DmaAccess;

pub(crate) mod sealed {
    /// The raw parts of a DMA memory type; implemented only inside the crate.
    pub trait Sealed {
        /// The first byte: valid for `len()` bytes of reads and writes while `self` lives,
        /// aligned to at least 64 bytes.
        fn base(&self) -> *mut u8;

        /// `Ok` while the IOMMU mapping can still exist (a relaxed atomic load), else
        /// [`Error::NotMapped`](crate::Error::NotMapped) naming `op`.
        fn check_mapped(&self, _op: &'static str) -> crate::Result<()> {
            Ok(())
        }
    }
}

/// The integer atomics usable as a view of DMA memory ([`DmaMemory::atomics`]).
pub trait DmaAtomic: sealed_atomic::Sealed + Sync {}

mod sealed_atomic {
    pub trait Sealed {}
}

macro_rules! dma_atomic {
    ($($t:ty),*) => {
        $(
            impl sealed_atomic::Sealed for $t {}
            impl DmaAtomic for $t {}
        )*
    };
}
dma_atomic!(AtomicU8, AtomicU16, AtomicU32, AtomicU64);

fn range_error(op: &'static str, offset: usize, len: usize, size: usize) -> Error {
    Error::InvalidArgument {
        op,
        object: Object::DmaMemory.into(),
        reason: format!(
            "{len} bytes at offset {offset} do not fit in a DMA buffer of {size} bytes"
        )
        .into(),
        errno: Errno::ERANGE,
    }
}

/// Volatile copy out of DMA memory into ordinary memory.
///
/// # Safety
///
/// `src` must be valid for reads of `len` bytes and `dst` for writes of `len` bytes; they must
/// not overlap.
unsafe fn copy_from_dma(src: *const u8, dst: *mut u8, len: usize) {
    let mut i = 0;
    // SAFETY: every access is at `i < len` (or `i + 8 <= len`) within both ranges, per the
    // contract; the u64 reads are aligned because `src + i` is a multiple of 8 there.
    unsafe {
        while i < len && (src as usize + i) % 8 != 0 {
            dst.add(i).write(src.add(i).read_volatile());
            i += 1;
        }
        while i + 8 <= len {
            let word = src.add(i).cast::<u64>().read_volatile();
            dst.add(i).cast::<u64>().write_unaligned(word);
            i += 8;
        }
        while i < len {
            dst.add(i).write(src.add(i).read_volatile());
            i += 1;
        }
    }
}

/// Volatile copy from ordinary memory into DMA memory.
///
/// # Safety
///
/// `src` must be valid for reads of `len` initialised bytes and `dst` for writes of `len`
/// bytes; they must not overlap.
unsafe fn copy_to_dma(src: *const u8, dst: *mut u8, len: usize) {
    let mut i = 0;
    // SAFETY: as in `copy_from_dma`, with the aligned side being `dst`.
    unsafe {
        while i < len && (dst as usize + i) % 8 != 0 {
            dst.add(i).write_volatile(src.add(i).read());
            i += 1;
        }
        while i + 8 <= len {
            let word = src.add(i).cast::<u64>().read_unaligned();
            dst.add(i).cast::<u64>().write_volatile(word);
            i += 8;
        }
        while i < len {
            dst.add(i).write_volatile(src.add(i).read());
            i += 1;
        }
    }
}

/// Volatile fill of DMA memory.
///
/// # Safety
///
/// `dst` must be valid for writes of `len` bytes.
unsafe fn fill_dma(dst: *mut u8, len: usize, byte: u8) {
    let word = u64::from_ne_bytes([byte; 8]);
    let mut i = 0;
    // SAFETY: within `dst..dst + len`; the u64 writes are aligned.
    unsafe {
        while i < len && (dst as usize + i) % 8 != 0 {
            dst.add(i).write_volatile(byte);
            i += 1;
        }
        while i + 8 <= len {
            dst.add(i).cast::<u64>().write_volatile(word);
            i += 8;
        }
        while i < len {
            dst.add(i).write_volatile(byte);
            i += 1;
        }
    }
}

/// Memory a device reaches by DMA, with the CPU-side accesses that stay sound while it does:
/// implemented by [`DmaBuffer`](super::DmaBuffer) and [`PoolBuffer`](super::PoolBuffer).
///
/// Bring the trait into scope (`use uvfio::dma::DmaMemory;`) to use its methods. Offsets are
/// in bytes from the start of the buffer; every access is bounds checked.
///
/// Ordering with the device is the caller's: after writing descriptors and before the MMIO
/// write that tells the device to look at them, issue a release fence
/// (`std::sync::atomic::fence(Ordering::Release)`); after seeing the device's completion and
/// before reading its data, an acquire fence. (On x86 DMA is cache coherent and these compile
/// to nothing but compiler barriers; on other architectures they order the accesses.)
///
/// # Examples
///
/// ```no_run
/// use uvfio::dma::{DmaBuffer, DmaMemory};
///
/// # let container = uvfio::Container::new()?;
/// let mut buf = DmaBuffer::new(&container, 4096)?;
/// buf.write_slice(0, b"hello, device")?;
/// buf.write::<u32>(64, 0xdead_beef)?;
/// let iova = buf.iova_at(64, 4)?; // what to program into the device
/// // ... the device writes its answer at offset 128 ...
/// let status: u64 = buf.read(128)?;
/// # Ok::<(), uvfio::Error>(())
/// ```
pub trait DmaMemory: sealed::Sealed {
    /// The length of the memory in bytes.
    fn len(&self) -> usize;

    /// The IOVA of the first byte: the address the device uses.
    ///
    /// Not checked: the IOVA stays the same after the container lost the mapping (see
    /// [`DmaBuffer::is_mapped`](super::DmaBuffer::is_mapped)); [`DmaMemory::iova_at`] checks.
    fn iova(&self) -> u64;

    /// What the device may do with the memory.
    fn access(&self) -> DmaAccess;

    /// Whether the memory is empty (never, for the crate's buffers).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address of the first byte. Reading or writing through it is up to the caller (see
    /// the module docs for what is sound).
    fn as_ptr(&self) -> *const u8 {
        self.base()
    }

    /// The address of the first byte, for writes. As [`DmaMemory::as_ptr`].
    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.base()
    }

    /// The IOVA of `len` bytes at `offset`, after checking that they lie in the buffer and
    /// that the buffer is still mapped: what to give the device for that part of the buffer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when the range does not fit or `len` is 0;
    /// [`Error::NotMapped`] (`ENXIO`) when the container lost the buffer's mapping (see
    /// [`DmaBuffer::is_mapped`](super::DmaBuffer::is_mapped)).
    fn iova_at(&self, offset: usize, len: usize) -> Result<u64> {
        check(self.len(), "iova_at", offset, len)?;
        self.check_mapped("iova_at")?;
        Ok(self.iova() + offset as u64)
    }

    /// The offset in the buffer of the IOVA range `iova..iova + len` (as reported by a device),
    /// after checking that the whole range lies in the buffer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when any of it lies outside or `len` is 0.
    fn offset_of_iova(&self, iova: u64, len: usize) -> Result<usize> {
        let offset = iova
            .checked_sub(self.iova())
            .and_then(|o| usize::try_from(o).ok())
            .filter(|&o| o.checked_add(len).is_some_and(|e| e <= self.len()) && len != 0);
        offset.ok_or_else(|| Error::InvalidArgument {
            op: "offset_of_iova",
            object: Object::DmaMemory.into(),
            reason: format!(
                "IOVA {iova:#x} + {len} bytes is not inside the buffer at {:#x} of {} bytes",
                self.iova(),
                self.len()
            )
            .into(),
            errno: Errno::ERANGE,
        })
    }

    /// The IOVA of `len` bytes at the process address `ptr`, after checking that they lie in
    /// the buffer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when any of it lies outside or `len` is 0.
    fn iova_of_ptr(&self, ptr: *const u8, len: usize) -> Result<u64> {
        let offset = (ptr as usize).wrapping_sub(self.base() as usize);
        if (ptr as usize) < self.base() as usize {
            return Err(range_error("iova_of_ptr", offset, len, self.len()));
        }
        self.iova_at(offset, len)
    }

    /// Reads a `T` at `offset` (volatile; need not be aligned).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when it does not fit.
    fn read<T: FromBytes>(&self, offset: usize) -> Result<T> {
        let p = check(self.len(), "read", offset, size_of::<T>())?;
        // SAFETY: `p..p + size_of::<T>()` lies in the buffer (checked); `T: FromBytes` is valid
        // for any bytes, and the zeroed `MaybeUninit` is fully overwritten.
        unsafe {
            let src = self.base().add(p);
            if src as usize % align_of::<T>() == 0 {
                Ok(src.cast::<T>().read_volatile())
            } else {
                let mut v = MaybeUninit::<T>::zeroed();
                copy_from_dma(src, v.as_mut_ptr().cast(), size_of::<T>());
                Ok(v.assume_init())
            }
        }
    }

    /// Writes `value` at `offset` (volatile; need not be aligned).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when it does not fit.
    fn write<T: IntoBytes + Immutable>(&mut self, offset: usize, value: T) -> Result<()> {
        let p = check(self.len(), "write", offset, size_of::<T>())?;
        // SAFETY: in bounds (checked), exclusive (`&mut self`); `T: IntoBytes` has no padding,
        // so its bytes are initialised.
        unsafe {
            let dst = self.base().add(p);
            if dst as usize % align_of::<T>() == 0 {
                dst.cast::<T>().write_volatile(value);
            } else {
                copy_to_dma((&raw const value).cast(), dst, size_of::<T>());
            }
        }
        Ok(())
    }

    /// Copies `out.len()` values starting at `offset` into `out` (volatile).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when they do not fit.
    fn read_slice<T: FromBytes>(&self, offset: usize, out: &mut [T]) -> Result<()> {
        let bytes = size_of_val(out);
        if bytes == 0 {
            return Ok(());
        }
        let p = check(self.len(), "read_slice", offset, bytes)?;
        // SAFETY: source in bounds (checked); `out` is writable for `bytes` bytes and is
        // ordinary memory, not the buffer (it is a Rust reference, which the buffer never
        // hands out); any bytes are valid `T`s.
        unsafe { copy_from_dma(self.base().add(p), out.as_mut_ptr().cast(), bytes) };
        Ok(())
    }

    /// Copies `data` into the buffer at `offset` (volatile).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when it does not fit.
    fn write_slice<T: IntoBytes + Immutable>(&mut self, offset: usize, data: &[T]) -> Result<()> {
        let bytes = size_of_val(data);
        if bytes == 0 {
            return Ok(());
        }
        let p = check(self.len(), "write_slice", offset, bytes)?;
        // SAFETY: destination in bounds (checked) and exclusive (`&mut self`); `data` is
        // initialised without padding (`T: IntoBytes`) and cannot overlap the buffer.
        unsafe { copy_to_dma(data.as_ptr().cast(), self.base().add(p), bytes) };
        Ok(())
    }

    /// Copies `len` bytes at `offset` into a new vector.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when they do not fit.
    fn read_to_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_slice(offset, &mut v)?;
        Ok(v)
    }

    /// Sets `len` bytes at `offset` to `byte` (volatile).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when they do not fit.
    fn fill(&mut self, offset: usize, len: usize, byte: u8) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let p = check(self.len(), "fill", offset, len)?;
        // SAFETY: in bounds (checked) and exclusive (`&mut self`).
        unsafe { fill_dma(self.base().add(p), len, byte) };
        Ok(())
    }

    /// The whole buffer as atomics of one width (`AtomicU8` .. `AtomicU64`), for lock-free
    /// protocols with the device or between threads (e.g. a completion word the device sets
    /// and a thread polls). The view borrows the buffer exclusively, so no other kind of
    /// access can mix with it; the view itself may be shared between threads.
    fn atomics<A: DmaAtomic>(&mut self) -> &[A] {
        let n = self.len() / size_of::<A>();
        // SAFETY: the buffer is valid for `len()` bytes while borrowed, initialised (zeroed at
        // allocation), aligned to 64 bytes, which covers every atomic width; atomics have
        // interior mutability, so the device changing the bytes is no violation; the `&mut
        // self` borrow keeps the crate's volatile accessors away for the view's lifetime.
        unsafe { std::slice::from_raw_parts(self.base().cast::<A>(), n) }
    }

    /// The buffer as a byte slice, for code that needs `&[u8]` (e.g. a checksum routine).
    ///
    /// # Safety
    ///
    /// For the lifetime of the slice, no device may write any byte of the buffer: the device
    /// must be stopped, or the protocol must guarantee it (e.g. the buffer is not posted to the
    /// device, or the device finished and will not touch it until re-posted). A device write
    /// during the borrow is undefined behaviour, even if the slice is not read afterwards.
    unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: valid and initialised for `len()` bytes while `self` is borrowed; the caller
        // guarantees that nothing writes the bytes during the borrow.
        unsafe { std::slice::from_raw_parts(self.base(), self.len()) }
    }

    /// The buffer as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// For the lifetime of the slice, no device may read or write any byte of the buffer
    /// (see [`DmaMemory::as_slice`]).
    unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, exclusive through `&mut self`, and the caller guarantees the
        // device neither reads nor writes meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.len()) }
    }
}

/// Checks that `len` bytes at `offset` fit in `size` (and `len != 0`); returns `offset`.
fn check(size: usize, op: &'static str, offset: usize, len: usize) -> Result<usize> {
    match offset.checked_add(len) {
        Some(end) if end <= size && len != 0 => Ok(offset),
        _ => Err(range_error(op, offset, len, size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Test memory behind the trait: a 64-byte aligned heap allocation standing in for a
    /// mapped buffer (raw, like the real mmap, so Miri checks the accessors, not a Box).
    struct Fake {
        ptr: *mut u8,
        layout: std::alloc::Layout,
    }

    impl Fake {
        fn new(len: usize) -> Fake {
            let layout = std::alloc::Layout::from_size_align(len, 64).unwrap();
            // SAFETY: test only: a non-zero-sized layout.
            let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!ptr.is_null());
            Fake { ptr, layout }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // SAFETY: test only: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr, self.layout) };
        }
    }

    impl sealed::Sealed for Fake {
        fn base(&self) -> *mut u8 {
            self.ptr
        }
    }

    impl DmaMemory for Fake {
        fn len(&self) -> usize {
            256
        }
        fn iova(&self) -> u64 {
            0x10_0000
        }
        fn access(&self) -> DmaAccess {
            DmaAccess::ReadWrite
        }
    }

    #[derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout,
        Clone,
        Copy,
        Debug,
        Default,
        PartialEq,
    )]
    #[repr(C)]
    struct Desc {
        addr: u64,
        len: u32,
        cmd: u16,
        status: u16,
    }

    #[test]
    fn typed_reads_and_writes_aligned_or_not() {
        let mut m = Fake::new(256);
        let d = Desc {
            addr: 0x1234_5678_9abc_def0,
            len: 1500,
            cmd: 0x0b,
            status: 1,
        };
        m.write(16, d).unwrap();
        assert_eq!(m.read::<Desc>(16).unwrap(), d);
        m.write(33, d).unwrap();
        assert_eq!(m.read::<Desc>(33).unwrap(), d);
        m.write::<u32>(3, 0xa1b2_c3d4).unwrap();
        assert_eq!(m.read::<u32>(3).unwrap(), 0xa1b2_c3d4);
        assert_eq!(m.read::<u8>(3).unwrap(), 0xd4);
        assert_eq!(m.read::<u64>(250).unwrap_err().errno(), Errno::ERANGE);
        assert!(m.write::<u8>(256, 1).is_err());
        assert!(m.read::<u8>(usize::MAX).is_err());
    }

    #[test]
    fn copies_and_fills_cover_every_alignment() {
        let mut m = Fake::new(256);
        for offset in 0..9 {
            for len in [0usize, 1, 7, 8, 9, 31, 64, 100] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + offset) as u8).collect();
                m.fill(0, 256, 0xee).unwrap();
                m.write_slice(offset, &data).unwrap();
                assert_eq!(m.read_to_vec(offset, len).unwrap(), data);
                if offset > 0 {
                    assert_eq!(m.read::<u8>(offset - 1).unwrap(), 0xee);
                }
                assert_eq!(m.read::<u8>(offset + len).unwrap(), 0xee);
            }
        }
        let mut words = [0u32; 4];
        m.write_slice(4, &[1u32, 2, 3, 4]).unwrap();
        m.read_slice(4, &mut words).unwrap();
        assert_eq!(words, [1, 2, 3, 4]);
        assert!(m.write_slice(250, &[0u8; 7]).is_err());
        assert!(m.fill(255, 2, 0).is_err());
        assert!(m.read_slice::<u8>(256, &mut []).is_ok());
    }

    #[test]
    fn translation_checks_the_whole_range() {
        let m = Fake::new(256);
        assert_eq!(m.iova_at(0, 256).unwrap(), 0x10_0000);
        assert_eq!(m.iova_at(255, 1).unwrap(), 0x10_00ff);
        assert!(m.iova_at(255, 2).is_err());
        assert!(m.iova_at(0, 0).is_err());
        assert_eq!(m.offset_of_iova(0x10_0010, 16).unwrap(), 16);
        assert!(m.offset_of_iova(0x0f_ffff, 1).is_err());
        assert!(m.offset_of_iova(0x10_00f0, 17).is_err());
        assert!(m.offset_of_iova(u64::MAX, 1).is_err());
        let p = m.as_ptr();
        assert_eq!(m.iova_of_ptr(p.wrapping_add(8), 8).unwrap(), 0x10_0008);
        assert!(m.iova_of_ptr(p.wrapping_sub(1), 1).is_err());
        assert!(!m.is_empty());
    }

    #[test]
    fn atomic_views_see_volatile_writes() {
        let mut m = Fake::new(256);
        m.write::<u32>(8, 7).unwrap();
        let view = m.atomics::<AtomicU32>();
        assert_eq!(view.len(), 64);
        assert_eq!(view[2].fetch_add(1, Ordering::Relaxed), 7);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        view[3].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(view[3].load(Ordering::Relaxed), 4000);
        assert_eq!(m.read::<u32>(12).unwrap(), 4000);
        assert_eq!(m.atomics::<AtomicU64>().len(), 32);
        // SAFETY: test only: no device exists for this memory.
        assert_eq!(unsafe { m.as_slice() }[8], 8);
        // SAFETY: as above.
        unsafe { m.as_mut_slice()[0] = 9 };
        assert_eq!(m.read::<u8>(0).unwrap(), 9);
    }
}
