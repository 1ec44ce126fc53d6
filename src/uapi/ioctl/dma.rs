//! Type1 DMA ioctls on the container; the Safety section of the parent module applies.
#![allow(unsafe_code)]
#![allow(dead_code)] // Raw wrappers the safe layers above are being built on.

use std::mem::size_of;
use std::os::fd::AsFd;

use super::{fail, ioctl_ptr, ContainerFd, Res};
use crate::uapi::vfio;

impl ContainerFd {
    /// `VFIO_IOMMU_MAP_DMA`.
    ///
    /// # Safety
    ///
    /// From a successful return until the range is unmapped, the device may read and (unless
    /// the map is read-only) write `map.vaddr .. map.vaddr + map.size` at any time: that memory
    /// must stay allocated and mapped, and no Rust reference may assume it is unaliased or
    /// unchanging.
    pub(crate) unsafe fn map_dma(&self, map: &vfio::vfio_iommu_type1_dma_map) -> Res<()> {
        let mut map = *map;
        map.argsz = size_of::<vfio::vfio_iommu_type1_dma_map>() as u32;
        // SAFETY: kind: container fd; argument: a vfio_iommu_type1_dma_map with a matching argsz,
        // read by the kernel during the call only; the caller takes on the mapped memory.
        unsafe {
            ioctl_ptr(
                self.as_fd(),
                vfio::VFIO_IOMMU_MAP_DMA,
                (&raw mut map).cast(),
            )
        }
        .map(drop)
        .map_err(fail("VFIO_IOMMU_MAP_DMA"))
    }

    /// `VFIO_IOMMU_UNMAP_DMA`: returns the number of bytes the kernel unmapped.
    pub(crate) fn unmap_dma(&self, unmap: &vfio::vfio_iommu_type1_dma_unmap) -> Res<u64> {
        let mut unmap = *unmap;
        unmap.argsz = size_of::<vfio::vfio_iommu_type1_dma_unmap>() as u32;
        // SAFETY: kind: container fd; argument: a vfio_iommu_type1_dma_unmap with a matching argsz
        // (no dirty bitmap flag is ever set through this path, so the kernel reads no further);
        // the kernel writes back `size`.
        unsafe {
            ioctl_ptr(
                self.as_fd(),
                vfio::VFIO_IOMMU_UNMAP_DMA,
                (&raw mut unmap).cast(),
            )
        }
        .map_err(fail("VFIO_IOMMU_UNMAP_DMA"))?;
        Ok(unmap.size)
    }
}
