//! DMA ioctls on the container: type1 map/unmap/dirty tracking, sPAPR TCE windows and memory
//! registration, EEH. The Safety section of the parent module applies; in addition:
//!
//! - the type1 and sPAPR drivers share request numbers (`VFIO_BASE + 12` and `+ 17` mean
//!   different things to them). The crate's object layer only issues a request when the
//!   container runs the driver it is meant for, but a container adopted from another process
//!   may run the other one. That stays harmless: every VFIO handler first copies in its own
//!   minimal struct (a *read* of our memory, which at worst fails with `EFAULT`), checks that
//!   `argsz` covers what it will write, and writes at most `argsz` bytes; `argsz` is always the
//!   size of the buffer passed here;
//! - the dirty-bitmap requests hand the kernel a pointer to a `&mut [u64]` and its exact byte
//!   length: the kernel writes at most that many bytes, during the call only.
#![allow(unsafe_code)]

use super::{ioctl_int, ioctl_ptr, ContainerFd, Res};
use crate::trace;
use crate::uapi::buf::argsz_of;
use crate::uapi::vfio;

/// `vfio_iommu_type1_dma_unmap` followed by its `vfio_bitmap`, as
/// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP` expects.
#[repr(C)]
struct UnmapWithBitmap {
    unmap: vfio::vfio_iommu_type1_dma_unmap,
    bitmap: vfio::vfio_bitmap,
}

/// `vfio_iommu_type1_dirty_bitmap` followed by its `vfio_iommu_type1_dirty_bitmap_get`, as
/// `VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP` expects.
#[repr(C)]
struct DirtyBitmapGet {
    header: vfio::vfio_iommu_type1_dirty_bitmap,
    range: vfio::vfio_iommu_type1_dirty_bitmap_get,
}

/// A `vfio_bitmap` describing `bitmap` (pgsize bytes of IOVA per bit).
fn user_bitmap(pgsize: u64, bitmap: &mut [u64]) -> vfio::vfio_bitmap {
    vfio::vfio_bitmap {
        pgsize,
        size: size_of_val(bitmap) as u64,
        data: bitmap.as_mut_ptr(),
    }
}

impl ContainerFd {
    /// `VFIO_IOMMU_MAP_DMA` (type1 and sPAPR).
    ///
    /// # Safety
    ///
    /// From a successful return until the range is unmapped, the device may read and (unless
    /// the map is read-only) write `map.vaddr .. map.vaddr + map.size` at any time: that memory
    /// must stay allocated and mapped, and no Rust reference may assume it is unaliased or
    /// unchanging. With `VFIO_DMA_MAP_FLAG_VADDR` the same holds for the new `vaddr`.
    pub(crate) unsafe fn map_dma(&self, map: &vfio::vfio_iommu_type1_dma_map) -> Res<()> {
        let mut map = *map;
        map.argsz = argsz_of::<vfio::vfio_iommu_type1_dma_map>();
        let (iova, size, vaddr, flags) = (map.iova, map.size, map.vaddr, map.flags);
        // SAFETY: kind: container fd; argument: a vfio_iommu_type1_dma_map with a matching argsz,
        // read by the kernel during the call only; the caller takes on the mapped memory.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_MAP_DMA,
                "VFIO_IOMMU_MAP_DMA",
                (&raw mut map).cast(),
                move |f| {
                    write!(
                        f,
                        "iova={iova:#x} len={size:#x} vaddr={vaddr:#x} flags={flags:#x}"
                    )
                },
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_UNMAP_DMA`: returns the number of bytes the kernel unmapped.
    pub(crate) fn unmap_dma(&self, unmap: &vfio::vfio_iommu_type1_dma_unmap) -> Res<u64> {
        let mut unmap = *unmap;
        unmap.argsz = argsz_of::<vfio::vfio_iommu_type1_dma_unmap>();
        // The bitmap flag would make the kernel read a vfio_bitmap past the struct: never here.
        unmap.flags &= !vfio::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
        let (iova, size, flags) = (unmap.iova, unmap.size, unmap.flags);
        // SAFETY: kind: container fd; argument: a vfio_iommu_type1_dma_unmap with a matching argsz
        // and without the dirty bitmap flag, so the kernel reads no further; it writes back `size`
        // during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_UNMAP_DMA,
                "VFIO_IOMMU_UNMAP_DMA",
                (&raw mut unmap).cast(),
                move |f| write!(f, "iova={iova:#x} len={size:#x} flags={flags:#x}"),
            )
        }?;
        Ok(unmap.size)
    }

    /// `VFIO_IOMMU_UNMAP_DMA` with `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`: unmaps `iova..+size`
    /// and sets a bit in `bitmap` for every `pgsize` page the device dirtied. Returns the bytes
    /// unmapped.
    pub(crate) fn unmap_dma_dirty(
        &self,
        iova: u64,
        size: u64,
        pgsize: u64,
        bitmap: &mut [u64],
    ) -> Res<u64> {
        let mut arg = UnmapWithBitmap {
            unmap: vfio::vfio_iommu_type1_dma_unmap {
                argsz: argsz_of::<UnmapWithBitmap>(),
                flags: vfio::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
                iova,
                size,
            },
            bitmap: user_bitmap(pgsize, bitmap),
        };
        // SAFETY: kind: container fd; argument: the unmap struct followed by its vfio_bitmap, argsz
        // covering both; the bitmap points to `bitmap`, exclusively borrowed for the call, with
        // its exact size in bytes, so the kernel writes only inside it; nothing is kept after the
        // call.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_UNMAP_DMA,
                "VFIO_IOMMU_UNMAP_DMA",
                (&raw mut arg).cast(),
                move |f| {
                    write!(
                        f,
                        "iova={iova:#x} len={size:#x} dirty bitmap pgsize={pgsize:#x}"
                    )
                },
            )
        }?;
        Ok(arg.unmap.size)
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` with `FLAG_START` or `FLAG_STOP` (`flags` holds exactly one).
    pub(crate) fn dirty_pages(&self, flags: u32) -> Res<()> {
        let mut arg = vfio::vfio_iommu_type1_dirty_bitmap {
            argsz: argsz_of::<vfio::vfio_iommu_type1_dirty_bitmap>(),
            flags: flags & !vfio::VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
        };
        let flags = arg.flags;
        // SAFETY: kind: container fd; argument: the 8-byte header with a matching argsz and
        // without GET_BITMAP, so the kernel reads nothing after it.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_DIRTY_PAGES,
                "VFIO_IOMMU_DIRTY_PAGES",
                (&raw mut arg).cast(),
                move |f| write!(f, "flags={flags:#x}"),
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` with `FLAG_GET_BITMAP`: fills `bitmap` for `iova..+size`.
    pub(crate) fn dirty_pages_bitmap(
        &self,
        iova: u64,
        size: u64,
        pgsize: u64,
        bitmap: &mut [u64],
    ) -> Res<()> {
        let mut arg = DirtyBitmapGet {
            header: vfio::vfio_iommu_type1_dirty_bitmap {
                argsz: argsz_of::<DirtyBitmapGet>(),
                flags: vfio::VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
            },
            range: vfio::vfio_iommu_type1_dirty_bitmap_get {
                iova,
                size,
                bitmap: user_bitmap(pgsize, bitmap),
            },
        };
        // SAFETY: kind: container fd; argument: the header followed by the range request, argsz
        // covering both; the bitmap points to `bitmap`, exclusively borrowed for the call, with
        // its exact size in bytes; nothing is kept after the call.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_DIRTY_PAGES,
                "VFIO_IOMMU_DIRTY_PAGES",
                (&raw mut arg).cast(),
                move |f| {
                    write!(
                        f,
                        "get bitmap iova={iova:#x} len={size:#x} pgsize={pgsize:#x}"
                    )
                },
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_ENABLE` (sPAPR).
    pub(crate) fn iommu_enable(&self) -> Res<()> {
        // SAFETY: kind: container fd; argument: none.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_IOMMU_ENABLE,
                "VFIO_IOMMU_ENABLE",
                ("", 0),
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_DISABLE` (sPAPR).
    pub(crate) fn iommu_disable(&self) -> Res<()> {
        // SAFETY: kind: container fd; argument: none.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_IOMMU_DISABLE,
                "VFIO_IOMMU_DISABLE",
                ("", 0),
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_SPAPR_TCE_GET_INFO`.
    pub(crate) fn spapr_tce_get_info(&self) -> Res<vfio::vfio_iommu_spapr_tce_info> {
        let mut info = vfio::vfio_iommu_spapr_tce_info {
            argsz: argsz_of::<vfio::vfio_iommu_spapr_tce_info>(),
            ..Default::default()
        };
        // SAFETY: kind: container fd; argument: a whole vfio_iommu_spapr_tce_info with a matching
        // argsz, written by the kernel during the call only (a type1 driver reads at most argsz
        // bytes of it as its own info struct and fails or writes within them).
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_SPAPR_TCE_GET_INFO,
                "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
                (&raw mut info).cast(),
                trace::no_args,
            )
        }?;
        Ok(info)
    }

    /// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` (`register`) or `..._UNREGISTER_MEMORY`.
    pub(crate) fn spapr_register_memory(&self, register: bool, vaddr: u64, size: u64) -> Res<()> {
        let mut arg = vfio::vfio_iommu_spapr_register_memory {
            argsz: argsz_of::<vfio::vfio_iommu_spapr_register_memory>(),
            flags: 0,
            vaddr,
            size,
        };
        let (request, name) = if register {
            (
                vfio::VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
                "VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
            )
        } else {
            (
                vfio::VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
                "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY",
            )
        };
        // SAFETY: kind: container fd; argument: a vfio_iommu_spapr_register_memory with a matching
        // argsz, read during the call only. Registering pins and accounts pages but gives no
        // device access to them (only VFIO_IOMMU_MAP_DMA does), so no memory contract arises.
        unsafe {
            ioctl_ptr(self.on(), request, name, (&raw mut arg).cast(), move |f| {
                write!(f, "vaddr={vaddr:#x} len={size:#x}")
            })
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_SPAPR_TCE_CREATE`: returns the request with `start_addr` filled in.
    pub(crate) fn spapr_tce_create(
        &self,
        create: &vfio::vfio_iommu_spapr_tce_create,
    ) -> Res<vfio::vfio_iommu_spapr_tce_create> {
        let mut create = *create;
        create.argsz = argsz_of::<vfio::vfio_iommu_spapr_tce_create>();
        let (page_shift, window_size, levels) =
            (create.page_shift, create.window_size, create.levels);
        // SAFETY: kind: container fd; argument: a vfio_iommu_spapr_tce_create with a matching
        // argsz, read and written (start_addr) during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_SPAPR_TCE_CREATE,
                "VFIO_IOMMU_SPAPR_TCE_CREATE",
                (&raw mut create).cast(),
                move |f| {
                    write!(
                        f,
                        "page_shift={page_shift} window_size={window_size:#x} levels={levels}"
                    )
                },
            )
        }?;
        Ok(create)
    }

    /// `VFIO_IOMMU_SPAPR_TCE_REMOVE`.
    pub(crate) fn spapr_tce_remove(&self, start_addr: u64) -> Res<()> {
        let mut remove = vfio::vfio_iommu_spapr_tce_remove {
            argsz: argsz_of::<vfio::vfio_iommu_spapr_tce_remove>(),
            flags: 0,
            start_addr,
        };
        // SAFETY: kind: container fd; argument: a vfio_iommu_spapr_tce_remove with a matching
        // argsz, read during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_IOMMU_SPAPR_TCE_REMOVE,
                "VFIO_IOMMU_SPAPR_TCE_REMOVE",
                (&raw mut remove).cast(),
                move |f| write!(f, "start_addr={start_addr:#x}"),
            )
        }
        .map(drop)
    }

    /// `VFIO_EEH_PE_OP`: returns the ioctl's non-negative result (the PE state for
    /// `VFIO_EEH_PE_GET_STATE`, 0 otherwise).
    pub(crate) fn eeh_pe_op(&self, op: &vfio::vfio_eeh_pe_op) -> Res<i32> {
        let mut op = *op;
        op.argsz = argsz_of::<vfio::vfio_eeh_pe_op>();
        let code = op.op;
        // SAFETY: kind: container fd; argument: a whole vfio_eeh_pe_op (including the error
        // union) with a matching argsz, read during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_EEH_PE_OP,
                "VFIO_EEH_PE_OP",
                (&raw mut op).cast(),
                move |f| write!(f, "op={code}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_structs_sit_where_the_kernel_reads_them() {
        // The kernel reads the vfio_bitmap at offsetofend(unmap, size) = 24, and the
        // dirty_bitmap_get at offsetofend(dirty_bitmap, flags) = 8.
        assert_eq!(std::mem::offset_of!(UnmapWithBitmap, bitmap), 24);
        assert_eq!(size_of::<UnmapWithBitmap>(), 48);
        assert_eq!(std::mem::offset_of!(DirtyBitmapGet, range), 8);
        assert_eq!(size_of::<DirtyBitmapGet>(), 48);
        let mut words = [0u64; 3];
        let b = user_bitmap(4096, &mut words);
        assert_eq!((b.pgsize, b.size), (4096, 24));
    }

    #[test]
    fn requests_on_a_file_that_is_not_a_container_fail_cleanly() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: test only: /dev/null answers every VFIO request with ENOTTY and reads nothing.
        let fd = unsafe { ContainerFd::from_owned_unchecked(file.into()) };
        let err = fd
            .dirty_pages(vfio::VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
            .unwrap_err();
        assert_eq!(err.ioctl, "VFIO_IOMMU_DIRTY_PAGES");
        let mut words = [0u64; 1];
        assert!(fd
            .dirty_pages_bitmap(0x1000, 0x1000, 4096, &mut words)
            .is_err());
        assert!(fd
            .unmap_dma_dirty(0x1000, 0x1000, 4096, &mut words)
            .is_err());
        assert!(fd.spapr_tce_get_info().is_err());
        assert!(fd.spapr_tce_remove(0).is_err());
        assert!(fd.spapr_register_memory(true, 0, 0).is_err());
        assert!(fd.iommu_enable().is_err());
        assert!(fd.iommu_disable().is_err());
        assert!(fd.eeh_pe_op(&vfio::vfio_eeh_pe_op::default()).is_err());
        assert!(fd
            .spapr_tce_create(&vfio::vfio_iommu_spapr_tce_create::default())
            .is_err());
        assert_eq!(words, [0]);
    }
}
