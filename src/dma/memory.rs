//! Page-aligned anonymous memory for DMA buffers: `mmap` on creation, `munmap` on drop.
//!
//! # Safety
//!
//! [`Memory`] owns one private anonymous mapping that nothing else references: the pointer
//! comes from a successful `mmap` with a null hint (so the kernel chose fresh address space),
//! and the only `munmap` calls are of the trimmed head and tail (never handed out) and of the
//! whole owned range in `Drop`. `Memory` gives no access to the bytes itself; the buffer types
//! built on it do, under their own rules. Dropping a `Memory` frees the pages, so its owners
//! must unmap it from the IOMMU first (or leak it with `std::mem::forget`).
#![allow(unsafe_code)]

use std::ptr::NonNull;

use super::PageSize;
use crate::error::{Errno, Error, Object, Result};
use crate::trace::{self, Level};

/// An owned, page-aligned, zero-filled, populated anonymous mapping.
#[derive(Debug)]
pub(crate) struct Memory {
    ptr: NonNull<u8>,
    len: usize,
    page_size: PageSize,
}

// SAFETY: `Memory` is the unique owner of its mapping and exposes only its address and length;
// moving or sharing that between threads is harmless (the mapping is process-wide).
unsafe impl Send for Memory {}
// SAFETY: as above; `&Memory` gives no access to the bytes.
unsafe impl Sync for Memory {}

const HUGE_HINT: &str = "mmap(MAP_HUGETLB) (are enough huge pages of this size reserved? see \
                         HugePages_Free in /proc/meminfo; reserve them with vm.nr_hugepages or \
                         the hugepages= kernel parameter, or allow the fallback to base pages)";

/// The system's base page size (`sysconf(_SC_PAGESIZE)`), 4096 if it cannot be read.
pub(crate) fn base_page_size() -> usize {
    // SAFETY: sysconf reads a system constant; it has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

fn syscall(op: &'static str, errno: Errno) -> Error {
    Error::Syscall {
        op,
        object: Object::DmaMemory.into(),
        errno,
    }
}

impl Memory {
    /// At least `len` bytes (rounded up to a multiple of the page size and of `align`) of
    /// `page_size` pages, starting at a multiple of `align` (a power of two).
    ///
    /// With `fallback`, a huge page request that the kernel cannot satisfy falls back to base
    /// pages aligned to the huge page size with `MADV_HUGEPAGE`, so transparent huge pages may
    /// still back it; [`Memory::page_size`] then says `Base`.
    pub(crate) fn allocate(
        len: usize,
        page_size: PageSize,
        align: usize,
        fallback: bool,
    ) -> Result<Memory> {
        match Self::map(len, page_size, align) {
            Err(e) if fallback && page_size != PageSize::Base => {
                let huge = page_size.bytes();
                let mem = Self::map(len, PageSize::Base, align.max(huge)).map_err(|_| e)?;
                // SAFETY: advice on memory this function owns; MADV_HUGEPAGE changes no
                // contents. Failure (no THP in the kernel) is harmless and ignored.
                unsafe {
                    libc::madvise(mem.ptr.as_ptr().cast(), mem.len, libc::MADV_HUGEPAGE);
                }
                Ok(mem)
            }
            other => other,
        }
    }

    fn map(len: usize, page_size: PageSize, align: usize) -> Result<Memory> {
        let granule = page_size.bytes();
        let align = align.max(granule);
        if len == 0 || !align.is_power_of_two() {
            return Err(Error::invalid(
                "allocate DMA memory",
                Object::DmaMemory,
                format!(
                    "{len} bytes aligned to {align:#x}: need a non-zero size and a power of two"
                ),
            ));
        }
        let too_big = || {
            Error::out_of_range(
                "allocate DMA memory",
                Object::DmaMemory,
                format!("{len} bytes aligned to {align:#x} do not fit the address space"),
            )
        };
        let len = len.checked_next_multiple_of(align).ok_or_else(too_big)?;
        // Over-allocate when the alignment exceeds what mmap guarantees, then trim.
        let slack = align - granule;
        let total = len.checked_add(slack).ok_or_else(too_big)?;
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        flags |= match page_size {
            PageSize::Base => 0,
            PageSize::Huge2M => libc::MAP_HUGETLB | libc::MAP_HUGE_2MB,
            PageSize::Huge1G => libc::MAP_HUGETLB | libc::MAP_HUGE_1GB,
        };
        let args = |f: &mut std::fmt::Formatter<'_>| write!(f, "len={total:#x} flags={flags:#x}");
        let base = trace::call(Level::Debug, "mmap", "anonymous memory", args, || {
            // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing
            // (null hint, no MAP_FIXED): it cannot alias any existing memory.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    total,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                Err(Errno::last())
            } else {
                Ok(base)
            }
        })
        .map_err(|errno| match page_size {
            PageSize::Base => syscall("mmap", errno),
            _ => syscall(HUGE_HINT, errno),
        })?;
        let base = base as usize;
        let start = base.next_multiple_of(align);
        let head = start - base;
        let tail = slack - head;
        // SAFETY: head and tail are whole granules of the mapping just made, outside
        // `start..start + len`, referenced by nothing.
        unsafe {
            if head != 0 {
                libc::munmap(base as *mut libc::c_void, head);
            }
            if tail != 0 {
                libc::munmap((start + len) as *mut libc::c_void, tail);
            }
            // A forked child gets no copy of DMA memory: it cannot map it and need not pay for
            // copying pinned pages. Best effort.
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTFORK);
        }
        let ptr = NonNull::new(start as *mut u8).ok_or_else(|| syscall("mmap", Errno::ENOMEM))?;
        Ok(Memory {
            ptr,
            len,
            page_size,
        })
    }

    /// The first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length in bytes (a multiple of the page size).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The page size backing the memory.
    pub(crate) fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Keeps `[offset, offset + len)` and gives the rest back to the system; the memory back,
    /// unchanged, unless both are whole pages within it.
    pub(crate) fn keep(self, offset: usize, len: usize) -> std::result::Result<Memory, Memory> {
        let granule = self.page_size.bytes();
        let fits = offset % granule == 0
            && len % granule == 0
            && len != 0
            && offset.checked_add(len).is_some_and(|end| end <= self.len);
        if !fits {
            return Err(self);
        }
        let me = std::mem::ManuallyDrop::new(self);
        let start = me.ptr.as_ptr() as usize;
        // SAFETY: the head and tail are whole pages of the mapping `me` owned, outside the part
        // kept, referenced by nothing; `me` is not dropped, so nothing is unmapped twice.
        unsafe {
            if offset != 0 {
                libc::munmap(start as *mut libc::c_void, offset);
            }
            let end = offset + len;
            if end != me.len {
                libc::munmap((start + end) as *mut libc::c_void, me.len - end);
            }
        }
        Ok(Memory {
            // In bounds of the old mapping and non-null (start is).
            ptr: NonNull::new((start + offset) as *mut u8).unwrap_or(me.ptr),
            len,
            page_size: me.page_size,
        })
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the whole owned mapping, unmapped once; its owner guarantees the IOMMU no
        // longer maps it. A failure (impossible for a valid range) would only leak it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident(mem: &Memory) -> bool {
        let page = PageSize::Base.bytes();
        let mut vec = vec![0u8; mem.len().div_ceil(page)];
        // SAFETY: test only: mincore on memory the test owns, with a vector of one byte per page.
        let r = unsafe { libc::mincore(mem.as_ptr().cast(), mem.len(), vec.as_mut_ptr()) };
        r == 0 && vec.iter().all(|&v| v & 1 == 1)
    }

    #[test]
    fn base_pages_are_aligned_populated_and_zeroed() {
        let mem = Memory::allocate(5000, PageSize::Base, 1 << 16, false).unwrap();
        assert_eq!(mem.as_ptr() as usize % (1 << 16), 0);
        assert_eq!(mem.len(), 1 << 16);
        assert_eq!(mem.page_size(), PageSize::Base);
        assert!(resident(&mem));
        // SAFETY: test only: the memory is owned, readable, and no device maps it.
        let bytes = unsafe { std::slice::from_raw_parts(mem.as_ptr(), mem.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn huge_pages_fail_clearly_or_fall_back() {
        // The host may have no huge pages reserved; either way the answer must be clear.
        match Memory::allocate(1, PageSize::Huge1G, 4096, false) {
            Ok(mem) => assert_eq!(mem.len(), 1 << 30),
            Err(e) => {
                assert!(e.to_string().contains("vm.nr_hugepages"), "{e}");
                assert!(matches!(e.errno(), Errno::ENOMEM | Errno::EINVAL), "{e}");
            }
        }
        let mem = Memory::allocate(1, PageSize::Huge2M, 4096, true).unwrap();
        assert_eq!(mem.len(), 2 << 20);
        assert_eq!(mem.as_ptr() as usize % (2 << 20), 0);
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(Memory::allocate(0, PageSize::Base, 4096, false).is_err());
        assert!(Memory::allocate(4096, PageSize::Base, 3 << 12, false).is_err());
        assert_eq!(
            Memory::allocate(usize::MAX - 10, PageSize::Base, 4096, false)
                .unwrap_err()
                .errno(),
            Errno::ERANGE
        );
    }

    #[test]
    fn keep_trims_to_whole_pages_inside() {
        let page = PageSize::Base.bytes();
        let mem = Memory::allocate(4 * page, PageSize::Base, page, false).unwrap();
        let start = mem.as_ptr() as usize;
        let mem = mem.keep(page / 2, page).unwrap_err();
        let mem = mem.keep(3 * page, 2 * page).unwrap_err();
        let mem = mem.keep(page, 0).unwrap_err();
        let kept = mem.keep(2 * page, page).unwrap();
        assert_eq!(
            (kept.as_ptr() as usize, kept.len()),
            (start + 2 * page, page)
        );
        assert!(resident(&kept));
    }
}
