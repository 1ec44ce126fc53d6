//! DMA memory without an IOMMU: memory locked in place whose physical address the device is
//! given, read from `/proc/self/pagemap` (VFIO's no-IOMMU mode, see
//! [`DmaSpace::open_noiommu`](crate::DmaSpace::open_noiommu)).
//!
//! A device without an IOMMU sees physical addresses, so a buffer it reaches through one
//! address range must be physically contiguous: one base page always is, a huge page is, and
//! base pages that happen to be consecutive are. Memory is locked (`mlock`: the pages stay
//! resident, are not swapped) for as long as it lives; huge pages are never swapped or moved by
//! compaction. Base pages can still be moved by memory compaction when
//! `vm.compact_unevictable_allowed` is 1 (the default): drivers that keep buffers for long
//! should use huge pages, as DPDK does, or set that sysctl to 0.
//!
//! # Safety
//!
//! The only `unsafe` here is `mlock` of memory the caller owns (a [`Memory`]), which changes no
//! contents; the pagemap is read as a file.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::memory::Memory;
use super::{AddressLimit, DmaOptions, PageSize};
use crate::error::{Errno, Error, Object, Result};

/// pagemap entry: bit 63 "page present", bits 0-54 the page frame number.
const PM_PRESENT: u64 = 1 << 63;
const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// The physical address of each base page of `[addr, addr + len)`, from `/proc/self/pagemap`.
fn page_frames(addr: usize, len: usize) -> Result<Vec<u64>> {
    const OP: &str = "read /proc/self/pagemap";
    let page = PageSize::Base.bytes();
    let pagemap = File::open("/proc/self/pagemap").map_err(|e| Error::Open {
        path: "/proc/self/pagemap".into(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let first = addr / page;
    let count = len.div_ceil(page);
    let mut raw = vec![0u8; count * 8];
    pagemap
        .read_exact_at(&mut raw, (first * 8) as u64)
        .map_err(|e| Error::Syscall {
            op: OP,
            object: Object::DmaMemory.into(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    raw.chunks_exact(8)
        .map(|c| {
            let entry = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
            let pfn = entry & PM_PFN_MASK;
            if entry & PM_PRESENT == 0 {
                return Err(Error::invalid(
                    OP,
                    Object::DmaMemory,
                    "a page of DMA memory is not present although it is locked",
                ));
            }
            if pfn == 0 {
                return Err(Error::InvalidArgument {
                    op: OP,
                    object: Object::DmaMemory.into(),
                    reason: "the kernel hides physical addresses: no-IOMMU DMA needs \
                             CAP_SYS_ADMIN to read them from /proc/self/pagemap"
                        .into(),
                    errno: Errno::EPERM,
                });
            }
            Ok(pfn * page as u64)
        })
        .collect()
}

/// Whether base pages with these physical addresses form one contiguous range.
fn contiguous(frames: &[u64], page: u64) -> bool {
    frames
        .windows(2)
        .all(|w| w[0].checked_add(page) == Some(w[1]))
}

/// Locks `mem` in memory and returns the physical address of its first byte, if the memory is
/// physically contiguous.
fn lock_and_translate(mem: &Memory) -> Result<Option<u64>> {
    let frames = lock_frames(mem)?;
    let page = PageSize::Base.bytes() as u64;
    Ok(contiguous(&frames, page).then(|| frames[0]))
}

/// Locks `mem` in memory (`mlock`; munmap unlocks it) and returns the physical address of each
/// of its base pages.
fn lock_frames(mem: &Memory) -> Result<Vec<u64>> {
    // SAFETY: mlock of memory `mem` owns; it changes no contents.
    if unsafe { libc::mlock(mem.as_ptr().cast(), mem.len()) } != 0 {
        return Err(Error::Syscall {
            op: "mlock DMA memory (raise RLIMIT_MEMLOCK, `ulimit -l`)",
            object: Object::DmaMemory.into(),
            errno: Errno::last(),
        });
    }
    page_frames(mem.as_ptr() as usize, mem.len())
}

/// The page size a no-IOMMU buffer of `size` bytes gets: what the caller asked for, except that
/// base pages are replaced by the smallest huge page that holds a buffer larger than one page
/// (base pages are rarely physically contiguous).
fn page_size_for(size: usize, asked: PageSize) -> PageSize {
    if asked != PageSize::Base || size <= PageSize::Base.bytes() {
        asked
    } else if size <= PageSize::Huge2M.bytes() {
        PageSize::Huge2M
    } else {
        PageSize::Huge1G
    }
}

/// How many allocations to try before giving up on memory below a device's address limit
/// (rejects are kept until the end, so each try gets different pages).
const TRIES: usize = 16;

/// For a one-page buffer under an address limit: pages examined per try (4 MiB of base pages);
/// the page that fits is kept and the others given back at once.
const CHUNK_PAGES: usize = 1024;

/// One base page below `limit` (and aligned to `align`), picked from chunks of fresh pages.
fn one_low_page(options: &DmaOptions, rejects: &mut Vec<Memory>) -> Result<Option<(Memory, u64)>> {
    let page = PageSize::Base.bytes();
    let align = options.align.max(1);
    for _ in 0..TRIES / 2 {
        let chunk = Memory::allocate(page * CHUNK_PAGES, PageSize::Base, page, false)?;
        let frames = lock_frames(&chunk)?;
        let pick = frames
            .iter()
            .position(|&p| within(options.limit, p, page as u64) && p % align == 0);
        match pick {
            Some(i) => {
                let phys = frames[i];
                return match chunk.keep(i * page, page) {
                    Ok(mem) => Ok(Some((mem, phys))),
                    Err(_) => Ok(None),
                };
            }
            None => rejects.push(chunk),
        }
    }
    Ok(None)
}

/// Physically contiguous, locked memory of at least `size` bytes as `options` say, below the
/// device's address limit; returns it with its physical address.
pub(crate) fn allocate(size: usize, options: &DmaOptions) -> Result<(Memory, u64)> {
    const OP: &str = "DmaBuffer::with_options (no-IOMMU)";
    if options.iova.is_some() {
        return Err(Error::invalid(
            OP,
            Object::DmaMemory,
            "without an IOMMU a buffer's address is its physical address: it cannot be chosen \
             (DmaOptions::iova)",
        ));
    }
    let page = page_size_for(size, options.page_size);
    let align = usize::try_from(options.align.max(1)).unwrap_or(usize::MAX);
    let mut rejects = Vec::new();
    if page == PageSize::Base && options.limit != AddressLimit::NONE {
        if let Some(found) = one_low_page(options, &mut rejects)? {
            return Ok(found);
        }
    }
    for _ in 0..TRIES {
        let mem = match Memory::allocate(size, page, align, false) {
            Ok(mem) => mem,
            // No huge pages reserved: base pages, which may still happen to be contiguous.
            Err(_) if page != options.page_size => {
                Memory::allocate(size, PageSize::Base, align, options.huge_page_fallback)?
            }
            Err(e) => return Err(e),
        };
        let Some(phys) = lock_and_translate(&mem)? else {
            return Err(Error::InvalidArgument {
                op: OP,
                object: Object::DmaMemory.into(),
                reason: format!(
                    "{} bytes of base pages are not physically contiguous, and without an \
                     IOMMU a device needs them to be: reserve huge pages (vm.nr_hugepages, or \
                     hugepages= on the kernel command line) or use buffers of one page",
                    mem.len()
                )
                .into(),
                errno: Errno::ENOMEM,
            });
        };
        if within(options.limit, phys, mem.len() as u64) && phys % options.align.max(1) == 0 {
            return Ok((mem, phys));
        }
        rejects.push(mem);
    }
    Err(Error::InvalidArgument {
        op: OP,
        object: Object::DmaMemory.into(),
        reason: format!(
            "no memory below the device's address limit {:#x} in {TRIES} tries: without an \
             IOMMU nothing remaps it (give the machine less memory, or reserve low huge pages)",
            options.limit.last()
        )
        .into(),
        errno: Errno::ENOMEM,
    })
}

fn within(limit: AddressLimit, phys: u64, len: u64) -> bool {
    limit.allows(phys, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_is_consecutive_frames() {
        assert!(contiguous(&[0x1000], 0x1000));
        assert!(contiguous(&[0x1000, 0x2000, 0x3000], 0x1000));
        assert!(!contiguous(&[0x1000, 0x3000], 0x1000));
        assert!(!contiguous(&[0x2000, 0x1000], 0x1000));
        assert!(!contiguous(&[u64::MAX - 0xfff, 0], 0x1000));
    }

    #[test]
    fn larger_buffers_ask_for_huge_pages() {
        let base = PageSize::Base.bytes();
        assert_eq!(page_size_for(base, PageSize::Base), PageSize::Base);
        assert_eq!(page_size_for(base + 1, PageSize::Base), PageSize::Huge2M);
        assert_eq!(page_size_for(2 << 20, PageSize::Base), PageSize::Huge2M);
        assert_eq!(
            page_size_for((2 << 20) + 1, PageSize::Base),
            PageSize::Huge1G
        );
        assert_eq!(page_size_for(base + 1, PageSize::Huge1G), PageSize::Huge1G);
    }

    #[test]
    fn a_fixed_address_is_refused() {
        let e = allocate(4096, &DmaOptions::new().iova(0x1000)).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.to_string().contains("physical address"), "{e}");
    }

    #[test]
    fn pagemap_reads_present_pages_or_says_what_is_missing() {
        // As root the frames are real; without CAP_SYS_ADMIN the kernel hides them and the
        // error says so. Either way no panic.
        let mem = Memory::allocate(4096, PageSize::Base, 4096, false).unwrap();
        match lock_and_translate(&mem) {
            Ok(Some(phys)) => assert_eq!(phys % 4096, 0),
            Ok(None) => panic!("one page is always contiguous"),
            Err(e) => assert!(
                e.to_string().contains("CAP_SYS_ADMIN") || e.to_string().contains("mlock"),
                "{e}"
            ),
        }
    }
}
