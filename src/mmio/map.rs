//! The unsafe core of MMIO: one mmap of a device-fd window and volatile, checked accesses to it.
//!
//! Everything above this file is safe code that decides *what* to map (see `plan.rs`) and falls
//! back to `pread`/`pwrite` for the rest; this file only creates a mapping, accesses it and
//! unmaps it.
//!
//! # Safety
//!
//! A [`Mapping`] owns one `mmap(MAP_SHARED)` of `len` bytes of a file (the VFIO device fd, or a
//! memfd in the unit tests), made either by memmap2 (`MmapRaw`, readable, or readable and
//! writable) or, for a write-only region, by the tiny [`WriteOnly`] owner below (memmap2 has no
//! `PROT_WRITE`-only map). The unsafe blocks rest on these facts:
//!
//! - **validity**: the mapping starts at `ptr`, spans at least `len` bytes (the kernel rounds the
//!   length up to whole pages), and stays mapped until the `Mapping` is dropped: the memmap2 or
//!   [`WriteOnly`] owner is a field of the `Mapping` and only its `Drop` unmaps. Nothing here
//!   remaps, truncates or unmaps early, and the `Mapping` is never handed out by value to safe
//!   code that could drop it while an access runs (accesses borrow `&self`).
//! - **bounds and alignment**: every access checks, before touching memory, that `offset` is a
//!   multiple of the access size `size = 2^k` and that `offset + size <= len`, in one
//!   comparison: `index = offset.rotate_right(k)` must be below `limit = ((len - size) >> k) + 1`
//!   for a mapping whose protection allows the access and `len >= size`, and 0 otherwise (so a
//!   load from a write-only or a store into a read-only mapping, which would fault, is refused
//!   too). For an aligned `offset` the rotation is `offset >> k`, and `index < limit` is
//!   `offset <= len - size`. A misaligned `offset` has one of its low `k` bits set, which the
//!   rotation moves into the top `k` bits, giving at least `2^(BITS - k)`; a limit is at most
//!   `((usize::MAX - 2^k) >> k) + 1 = 2^(BITS - k) - 1`, so the access is refused. The access
//!   itself is element `index` of `ptr` viewed as `*mut T`: byte `offset`, aligned because
//!   `ptr` is page-aligned (checked when the mapping is made). [`index`] is that check; a unit
//!   test compares it with the plain arithmetic for every small case and the extremes.
//! - **no references**: device memory changes under us and reads may have side effects, so no
//!   `&`/`&mut` to it is ever created (the memmap2 `MmapRaw` model); every access is a single
//!   `read_volatile`/`write_volatile` of a primitive integer, which the compiler neither splits,
//!   merges, elides nor reorders with other volatile accesses. Any bit pattern is a valid
//!   integer, so loads cannot produce an invalid value.
//! - **concurrency**: volatile accesses from several threads to the same MMIO word are not Rust
//!   data races on Rust-owned memory: the memory belongs to the device, which serialises
//!   accesses itself (as it does for DMA and for other processes mapping it). This is the same
//!   position memmap2 takes for `MmapRaw` (`Send + Sync`).
//!
//! What the kernel may still do: if the device's memory decoding is turned off (command
//! register), the device is reset or put into a low-power state, vfio-pci zaps the mapping and a
//! later access faults it back in, or, while decoding stays off, raises `SIGBUS`. That ends the
//! process; it is not undefined behaviour, and it is documented on `Region`.
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::trace::{self, Level};

/// A primitive integer the accessors read and write: `u8`, `u16`, `u32`, `u64`.
pub(crate) trait Word: Copy + sealed::Sealed {
    /// The access size in bytes (a power of two).
    const SIZE: usize;
    /// `log2(SIZE)`.
    const LOG2: usize;
    /// Converts from the device's little-endian order.
    fn le_to_host(self) -> Self;
    /// Converts to the device's little-endian order.
    fn host_to_le(self) -> Self;
    /// The value as little-endian bytes.
    fn to_le_bytes_vec(self, out: &mut [u8]);
    /// The value from little-endian bytes (`bytes.len() == SIZE`).
    fn from_le_slice(bytes: &[u8]) -> Self;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! word {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Word for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const LOG2: usize = std::mem::size_of::<$t>().trailing_zeros() as usize;
            #[inline(always)]
            fn le_to_host(self) -> Self {
                <$t>::from_le(self)
            }
            #[inline(always)]
            fn host_to_le(self) -> Self {
                <$t>::to_le(self)
            }
            #[inline]
            fn to_le_bytes_vec(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn from_le_slice(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}
word!(u8, u16, u32, u64);

/// The host's page size (`sysconf(_SC_PAGESIZE)`), 4096 if it cannot be read.
pub(crate) fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the C library; it takes no pointers.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(page)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// The owner of the pages; dropping it unmaps them.
enum Owner {
    /// No pages: the empty mapping, whose limits are all 0.
    None,
    /// memmap2, `PROT_READ` or `PROT_READ | PROT_WRITE`.
    Raw(memmap2::MmapRaw),
    /// `PROT_WRITE` only.
    WriteOnly(WriteOnly),
}

impl trace::OkValue for Owner {
    fn ok_value(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Raw(m) => write!(f, " at {:p}", m.as_ptr()),
            Owner::WriteOnly(w) => write!(f, " at {:p}", w.ptr),
            Owner::None => Ok(()),
        }
    }
}

/// One mapped window of a file, with checked volatile accessors.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    /// `[store?][log2(size)]`: the limit of [`index`] for loads (`[0]`) and stores (`[1]`) of
    /// each size.
    limits: [[usize; 4]; 2],
    len: usize,
    // Declared last: dropped (unmapped) after everything that could use `ptr`.
    _owner: Owner,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("readable", &(self.limits[0][0] != 0))
            .field("writable", &(self.limits[1][0] != 0))
            .finish()
    }
}

// SAFETY: the mapping is plain shared memory (device memory or a file) owned by this value; it
// holds no thread-bound state, and all accesses are volatile through `&self` (see the module's
// concurrency paragraph). memmap2's `MmapRaw` is `Send + Sync` for the same reason.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

/// The limit [`index`] compares with, for `2^log2`-byte accesses to `len` bytes: the number of
/// aligned starting offsets, `((len - size) >> log2) + 1`, or 0 when none (or `!allowed`).
fn limit(len: usize, log2: usize, allowed: bool) -> usize {
    let size = 1usize << log2;
    if allowed && len >= size {
        ((len - size) >> log2) + 1
    } else {
        0
    }
}

/// For a `2^log2`-byte access at byte `offset`: its element index (`offset >> log2`) if the
/// access is aligned and inside the bytes `limit` (from [`limit`]) describes, else `None`. One
/// rotate and one compare (see the module's Safety section).
#[inline(always)]
// rotate_right takes its count modulo usize::BITS, which divides 2^32: truncating `log2` to
// u32 cannot change the result.
#[allow(clippy::cast_possible_truncation)]
fn index(offset: usize, log2: usize, limit: usize) -> Option<usize> {
    let index = offset.rotate_right(log2 as u32);
    (index < limit).then_some(index)
}

impl Mapping {
    /// A mapping of nothing: every access is refused.
    pub(crate) fn none() -> Mapping {
        Mapping {
            ptr: NonNull::dangling(),
            limits: [[0; 4]; 2],
            len: 0,
            _owner: Owner::None,
        }
    }

    /// Maps `len` bytes of `fd` at `offset` (which must be page-aligned; the kernel checks) with
    /// the given protection. At least one of `read`, `write` must be set.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        read: bool,
        write: bool,
    ) -> io::Result<Mapping> {
        // memmap2 would silently map from the page below an unaligned offset: refuse instead.
        if len == 0 || !(read || write) || offset % page_size() != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let raw_fd = fd.as_raw_fd();
        let prot = match (read, write) {
            (true, true) => "rw",
            (true, false) => "r",
            _ => "w",
        };
        let args = |f: &mut std::fmt::Formatter<'_>| {
            write!(f, "offset={offset:#x} len={len:#x} prot={prot}")
        };
        let owner = trace::call(
            Level::Debug,
            "mmap",
            format_args!("device fd {raw_fd}"),
            args,
            || {
                io::Result::Ok(match (read, write) {
                    (true, true) => Owner::Raw(
                        memmap2::MmapOptions::new()
                            .offset(offset)
                            .len(len)
                            .map_raw(&fd)?,
                    ),
                    (true, false) => Owner::Raw(
                        memmap2::MmapOptions::new()
                            .offset(offset)
                            .len(len)
                            .map_raw_read_only(&fd)?,
                    ),
                    _ => Owner::WriteOnly(WriteOnly::new(fd, offset, len)?),
                })
            },
        )?;
        let raw = match &owner {
            Owner::Raw(m) => m.as_mut_ptr(),
            Owner::WriteOnly(w) => w.ptr.as_ptr(),
            Owner::None => std::ptr::null_mut(),
        };
        // mmap returns page-aligned addresses and the offset was page-aligned, so memmap2 adds
        // nothing; the accessors rely on it (alignment of offsets = alignment of addresses).
        let ptr = NonNull::new(raw)
            .filter(|p| (p.as_ptr() as usize as u64) % page_size() == 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFAULT))?;
        let log2s = [0, 1, 2, 3];
        Ok(Mapping {
            ptr,
            limits: [
                log2s.map(|k| limit(len, k, read)),
                log2s.map(|k| limit(len, k, write)),
            ],
            len,
            _owner: owner,
        })
    }

    /// The mapped length in bytes (what accesses are checked against).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first byte of the mapping. Valid for `len()` bytes while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The element index of a `T` access at byte `offset`, if it is inside the mapping,
    /// allowed by its protection, and aligned.
    #[inline(always)]
    fn check<T: Word>(&self, offset: usize, store: bool) -> Option<usize> {
        index(offset, T::LOG2, self.limits[usize::from(store)][T::LOG2])
    }

    /// A volatile load of a `T` at `offset`, in the device's byte order (little-endian raw
    /// bits, not yet converted); `None` when out of bounds, misaligned or not readable.
    #[inline(always)]
    pub(crate) fn read<T: Word>(&self, offset: usize) -> Option<T> {
        let i = self.check::<T>(offset, false)?;
        // SAFETY: validity: `ptr` is a live mapping of `len` bytes (module essay); bounds and
        // protection: `check` proved `(i + 1) * SIZE <= len` for a readable mapping; alignment:
        // `ptr` is page-aligned, so element `i` of `ptr as *mut T` is aligned; no reference is
        // created.
        Some(unsafe { self.ptr.as_ptr().cast::<T>().add(i).read_volatile() })
    }

    /// A volatile store of `value` (already in device byte order) at `offset`; `false` when out
    /// of bounds, misaligned or not writable.
    #[inline(always)]
    pub(crate) fn write<T: Word>(&self, offset: usize, value: T) -> bool {
        let Some(i) = self.check::<T>(offset, true) else {
            return false;
        };
        // SAFETY: as in `read`, with the store limits (non-zero only for a PROT_WRITE mapping).
        unsafe { self.ptr.as_ptr().cast::<T>().add(i).write_volatile(value) };
        true
    }
}

/// One element of a [`Mapping`], checked once when made: its address is in bounds, aligned, and
/// both readable and writable, so each access is a bare volatile load or store. It borrows the
/// mapping, which therefore outlives every access (the **validity** fact of the module).
pub(crate) struct Slot<'a, T> {
    ptr: NonNull<T>,
    _map: PhantomData<&'a Mapping>,
}

impl<T> Clone for Slot<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Slot<'_, T> {}

impl<T> std::fmt::Debug for Slot<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Slot").field(&self.ptr).finish()
    }
}

// SAFETY: a `Slot` is a checked address inside a `Mapping` it borrows, which is `Send + Sync`;
// all accesses through it are volatile through `&self`, as the `Mapping`'s own.
unsafe impl<T> Send for Slot<'_, T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for Slot<'_, T> {}

impl Mapping {
    /// The `T` at `offset`, checked once: `None` unless the access is in bounds, aligned and
    /// allowed for both loads and stores.
    pub(crate) fn slot<T: Word>(&self, offset: usize) -> Option<Slot<'_, T>> {
        let i = self.check::<T>(offset, false)?;
        self.check::<T>(offset, true)?;
        // SAFETY: `check` proved `(i + 1) * SIZE <= len` for a mapping that is readable and
        // writable; `ptr` is page-aligned, so element `i` is aligned and in the mapping.
        let ptr = unsafe { self.ptr.cast::<T>().add(i) };
        Some(Slot {
            ptr,
            _map: PhantomData,
        })
    }
}

impl<T: Word> Slot<'_, T> {
    /// A volatile load, in the device's byte order.
    #[inline(always)]
    pub(crate) fn read(self) -> T {
        // SAFETY: `slot` proved the element in bounds, aligned and readable; the borrowed
        // mapping is live; no reference is created.
        unsafe { self.ptr.as_ptr().read_volatile() }
    }

    /// A volatile store of `value`, already in the device's byte order.
    #[inline(always)]
    pub(crate) fn write(self, value: T) {
        // SAFETY: as in `read`, with writability.
        unsafe { self.ptr.as_ptr().write_volatile(value) }
    }
}

/// A `PROT_WRITE`-only shared mapping, for regions the kernel flags as writable but not
/// readable (vfio-pci refuses a `PROT_READ` mapping of those).
struct WriteOnly {
    ptr: NonNull<u8>,
    len: usize,
}

impl WriteOnly {
    fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<WriteOnly> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: a new mapping with a null address hint never overlaps or modifies an existing
        // one; `fd` is a live borrowed fd for the call; the result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFAULT))?;
        Ok(WriteOnly { ptr, len })
    }
}

impl Drop for WriteOnly {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and was asked for, and this is the
        // only owner; nothing can use the pages after drop (module essay). munmap's error (only
        // EINVAL for bad arguments, impossible here) cannot be reported from drop and is ignored.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn memfd(len: usize) -> std::fs::File {
        let fd =
            nix::sys::memfd::memfd_create(c"uvfio-map-test", nix::sys::memfd::MFdFlags::empty())
                .unwrap();
        let f = std::fs::File::from(fd);
        f.set_len(len as u64).unwrap();
        f
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }

    #[test]
    fn bounds_alignment_and_overflow_are_checked() {
        let f = memfd(8192);
        let m = Mapping::new(f.as_fd(), 4096, 4096, true, true).unwrap();
        assert!(m.write::<u32>(0, 0x1234_5678u32.to_le()));
        assert_eq!(m.read::<u32>(0).map(u32::from_le), Some(0x1234_5678));
        assert_eq!(m.read::<u8>(0), Some(0x78));
        assert!(m.read::<u64>(4088).is_some());
        assert!(m.read::<u64>(4089).is_none(), "misaligned");
        assert!(m.read::<u64>(4096).is_none(), "past the end");
        assert!(m.read::<u32>(4094).is_none(), "straddles the end");
        assert!(m.read::<u16>(1).is_none(), "misaligned");
        assert!(m.read::<u8>(4095).is_some());
        assert!(m.read::<u8>(usize::MAX).is_none(), "overflow");
        assert!(!m.write::<u64>(usize::MAX - 7, 0), "overflow");
        assert!(!m.write::<u16>(3, 0), "misaligned");
    }

    #[test]
    fn protection_is_part_of_the_check() {
        let f = memfd(4096);
        let ro = Mapping::new(f.as_fd(), 0, 4096, true, false).unwrap();
        assert!(!ro.write::<u32>(0, 1), "read-only mapping refuses stores");
        assert!(ro.read::<u32>(0).is_some());
        let wo = Mapping::new(f.as_fd(), 0, 4096, false, true).unwrap();
        assert!(
            wo.read::<u32>(0).is_none(),
            "write-only mapping refuses loads"
        );
        assert!(wo.write::<u32>(8, 0xdead_beefu32.to_le()));
        assert_eq!(ro.read::<u32>(8).map(u32::from_le), Some(0xdead_beef));
        assert!(Mapping::new(f.as_fd(), 0, 4096, false, false).is_err());
        assert!(Mapping::new(f.as_fd(), 0, 0, true, true).is_err());
        assert!(
            Mapping::new(f.as_fd(), 1, 4096, true, true).is_err(),
            "unaligned offset"
        );
    }

    #[test]
    fn a_sub_page_mapping_is_checked_against_its_own_length() {
        let f = memfd(4096);
        let m = Mapping::new(f.as_fd(), 0, 256, true, true).unwrap();
        assert_eq!(m.len(), 256);
        assert!(m.read::<u32>(252).is_some());
        assert!(m.read::<u32>(256).is_none());
    }

    #[test]
    fn the_empty_mapping_refuses_everything() {
        let m = Mapping::none();
        assert_eq!(m.len(), 0);
        assert!(m.read::<u8>(0).is_none());
        assert!(!m.write::<u8>(0, 0));
    }

    #[test]
    fn the_one_compare_check_is_the_plain_one() {
        // Every length up to 80, every offset up to 100 and the extremes, every width.
        let offsets = (0..100).chain([usize::MAX, usize::MAX - 1, usize::MAX - 7, 1 << 63]);
        for len in (0..80).chain([usize::MAX, usize::MAX - 3, isize::MAX as usize]) {
            for log2 in 0..4 {
                let size = 1usize << log2;
                for offset in offsets.clone() {
                    let plain = offset % size == 0
                        && offset.checked_add(size).is_some_and(|end| end <= len);
                    let got = index(offset, log2, limit(len, log2, true));
                    assert_eq!(
                        got.is_some(),
                        plain,
                        "len {len} size {size} offset {offset}"
                    );
                    if let Some(i) = got {
                        assert_eq!(i * size, offset);
                    }
                    assert!(index(offset, log2, limit(len, log2, false)).is_none());
                }
            }
        }
        assert_eq!(limit(4096, 2, true), 1024);
        assert_eq!(limit(4, 2, true), 1);
        assert_eq!(limit(3, 2, true), 0);
        let f = memfd(4096);
        let m = Mapping::new(f.as_fd(), 0, 6, true, true).unwrap();
        assert!(m.read::<u32>(0).is_some());
        assert!(m.read::<u32>(4).is_none(), "4..8 is past 6 bytes");
        assert!(m.read::<u16>(4).is_some());
        assert!(m.read::<u64>(0).is_none());
    }

    #[test]
    fn mapping_is_send_and_sync() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Mapping>();
    }
}
