//! Mediated graphics: plane info and dma-buf export.

use super::*;

/// The anonymous union at the end of [`vfio_device_gfx_plane_info`].
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub union vfio_device_gfx_plane_info_u {
    /// Region holding the plane, with [`VFIO_GFX_PLANE_TYPE_REGION`].
    pub region_index: u32,
    /// Dma-buf ID of the plane, with [`VFIO_GFX_PLANE_TYPE_DMABUF`].
    pub dmabuf_id: u32,
}

impl vfio_device_gfx_plane_info_u {
    /// The union's value, whichever member it was written as.
    fn bits(&self) -> u32 {
        // SAFETY: both members are `u32` covering the whole union, so the storage always holds
        // an initialised `u32` and any bit pattern is valid.
        unsafe { self.region_index }
    }
}

impl Default for vfio_device_gfx_plane_info_u {
    fn default() -> Self {
        Self { region_index: 0 }
    }
}

impl PartialEq for vfio_device_gfx_plane_info_u {
    fn eq(&self, other: &Self) -> bool {
        self.bits() == other.bits()
    }
}

impl Eq for vfio_device_gfx_plane_info_u {}

impl fmt::Debug for vfio_device_gfx_plane_info_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("vfio_device_gfx_plane_info_u")
            .field("region_index_or_dmabuf_id", &self.bits())
            .finish()
    }
}

/// Argument of `VFIO_DEVICE_QUERY_GFX_PLANE`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct vfio_device_gfx_plane_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_GFX_PLANE_TYPE_*` bits.
    pub flags: u32,
    /// Plane to query (`DRM_PLANE_TYPE_*`).
    pub drm_plane_type: u32,
    /// DRM fourcc format of the plane.
    pub drm_format: u32,
    /// DRM format modifier (tiling).
    pub drm_format_mod: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub stride: u32,
    /// Size in bytes, page aligned.
    pub size: u32,
    /// Horizontal position of a cursor plane.
    pub x_pos: u32,
    /// Vertical position of a cursor plane.
    pub y_pos: u32,
    /// Horizontal cursor hotspot, `0xFFFF_FFFF` if unknown.
    pub x_hot: u32,
    /// Vertical cursor hotspot, `0xFFFF_FFFF` if unknown.
    pub y_hot: u32,
    /// C anonymous union: `region_index` or `dmabuf_id`, depending on `flags`.
    pub u: vfio_device_gfx_plane_info_u,
    /// Reserved, zero (6.x names the former implicit padding).
    pub reserved: u32,
}
/// Graphics plane flag: only probe whether the given plane type is supported.
pub const VFIO_GFX_PLANE_TYPE_PROBE: u32 = 1 << 0;
/// Graphics plane flag: the plane is exported as a dma-buf.
pub const VFIO_GFX_PLANE_TYPE_DMABUF: u32 = 1 << 1;
/// Graphics plane flag: the plane lives in a device region.
pub const VFIO_GFX_PLANE_TYPE_REGION: u32 = 1 << 2;
/// Describes a guest display plane with a [`vfio_device_gfx_plane_info`].
pub const VFIO_DEVICE_QUERY_GFX_PLANE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 14);
/// Returns a dma-buf fd for a `u32` dma-buf ID obtained from `VFIO_DEVICE_QUERY_GFX_PLANE`.
pub const VFIO_DEVICE_GET_GFX_DMABUF: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 15);
