//! Mediated graphics: `VFIO_DEVICE_QUERY_GFX_PLANE` and `VFIO_DEVICE_GET_GFX_DMABUF`.
//!
//! Virtual GPUs (Intel GVT-g, the `mbochs`/`mdpy` samples) expose their guest's display planes
//! either as dma-bufs or as a device region. Devices without a display (every vfio-pci device)
//! answer [`Error::NotSupported`].
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_QUERY_GFX_PLANE`, `VFIO_DEVICE_GET_GFX_DMABUF`
//! - Linux `samples/vfio-mdev/mbochs.c`

use std::os::fd::OwnedFd;

use super::{Device, RegionIndex};
use crate::error::{Errno, Error, Result};
use crate::uapi::ioctl::{Cause, Failed};
use crate::uapi::vfio;

/// How a plane is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GfxPlaneKind {
    /// As a dma-buf (`VFIO_GFX_PLANE_TYPE_DMABUF`).
    DmaBuf,
    /// In a device region (`VFIO_GFX_PLANE_TYPE_REGION`).
    Region,
}

impl GfxPlaneKind {
    fn flag(self) -> u32 {
        match self {
            GfxPlaneKind::DmaBuf => vfio::VFIO_GFX_PLANE_TYPE_DMABUF,
            GfxPlaneKind::Region => vfio::VFIO_GFX_PLANE_TYPE_REGION,
        }
    }
}

/// A DRM plane type (`DRM_PLANE_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DrmPlaneType(pub u32);

impl DrmPlaneType {
    /// `DRM_PLANE_TYPE_OVERLAY`.
    pub const OVERLAY: DrmPlaneType = DrmPlaneType(0);
    /// `DRM_PLANE_TYPE_PRIMARY`.
    pub const PRIMARY: DrmPlaneType = DrmPlaneType(1);
    /// `DRM_PLANE_TYPE_CURSOR`.
    pub const CURSOR: DrmPlaneType = DrmPlaneType(2);
}

/// Where a plane's pixels are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GfxPlaneSource {
    /// A dma-buf: get its fd with [`Device::gfx_dmabuf`].
    DmaBuf(u32),
    /// A device region.
    Region(RegionIndex),
}

/// `VFIO_DEVICE_QUERY_GFX_PLANE`: a guest display plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "vfio_device_gfx_plane_info")]
pub struct GfxPlane {
    /// The DRM fourcc format.
    pub drm_format: u32,
    /// The DRM format modifier (tiling).
    pub drm_format_mod: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub stride: u32,
    /// Size in bytes (page-aligned).
    pub size: u32,
    /// Horizontal position (cursor planes).
    pub x_pos: u32,
    /// Vertical position (cursor planes).
    pub y_pos: u32,
    /// Horizontal hotspot, `None` if unknown.
    pub x_hot: Option<u32>,
    /// Vertical hotspot, `None` if unknown.
    pub y_hot: Option<u32>,
    /// Where the pixels are.
    pub source: GfxPlaneSource,
}

fn gfx_not_supported(device: &Device, op: &'static str) -> Error {
    Error::NotSupported {
        op,
        object: device.object().into(),
        reason: "the device exposes no display planes (VFIO_DEVICE_QUERY_GFX_PLANE is for \
                 mediated graphics devices)"
            .into(),
        errno: Errno::ENOTTY,
    }
}

impl Device {
    /// Whether the device can hand out `plane` planes as `kind`
    /// (`VFIO_DEVICE_QUERY_GFX_PLANE` with `VFIO_GFX_PLANE_TYPE_PROBE`).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without display planes at all;
    /// [`Error::Ioctl`] for other kernel errors.
    #[doc(alias = "VFIO_DEVICE_QUERY_GFX_PLANE")]
    #[doc(alias = "VFIO_GFX_PLANE_TYPE_PROBE")]
    pub fn gfx_plane_supported(&self, kind: GfxPlaneKind, plane: DrmPlaneType) -> Result<bool> {
        const OP: &str = "gfx_plane_supported";
        match self
            .fd()
            .query_gfx_plane(vfio::VFIO_GFX_PLANE_TYPE_PROBE | kind.flag(), plane.0)
        {
            Ok(_) => Ok(true),
            // "0 on support, -EINVAL on no support" (vfio.h).
            Err(Failed {
                cause: Cause::Errno(Errno::EINVAL),
                ..
            }) => Ok(false),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(gfx_not_supported(self, OP)),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// The current `plane` as `kind`, or `None` while the guest has it disabled.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without display planes;
    /// [`Error::Ioctl`] for other kernel errors (`EINVAL` when `kind` is not supported).
    #[doc(alias = "VFIO_DEVICE_QUERY_GFX_PLANE")]
    pub fn gfx_plane(&self, kind: GfxPlaneKind, plane: DrmPlaneType) -> Result<Option<GfxPlane>> {
        match self.fd().query_gfx_plane(kind.flag(), plane.0) {
            Ok((p, id)) => Ok(decode_plane(kind, &p, id)),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(gfx_not_supported(self, "gfx_plane")),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// `VFIO_DEVICE_GET_GFX_DMABUF`: a dma-buf fd for the plane with this `dmabuf_id` (from
    /// [`GfxPlaneSource::DmaBuf`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without display planes;
    /// [`Error::Ioctl`] for an unknown id or other kernel errors.
    #[doc(alias = "VFIO_DEVICE_GET_GFX_DMABUF")]
    pub fn gfx_dmabuf(&self, dmabuf_id: u32) -> Result<OwnedFd> {
        match self.fd().get_gfx_dmabuf(dmabuf_id) {
            Ok(fd) => Ok(fd),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(gfx_not_supported(self, "gfx_dmabuf")),
            Err(f) => Err(f.on(self.object())),
        }
    }
}

/// The typed plane, or `None` for a disabled one ("success will be returned with
/// zero-initialized drm_format, size, width and height fields").
fn decode_plane(
    kind: GfxPlaneKind,
    p: &vfio::vfio_device_gfx_plane_info,
    id: u32,
) -> Option<GfxPlane> {
    if p.drm_format == 0 && p.size == 0 && p.width == 0 && p.height == 0 {
        return None;
    }
    let hot = |v: u32| (v != u32::MAX).then_some(v);
    Some(GfxPlane {
        drm_format: p.drm_format,
        drm_format_mod: p.drm_format_mod,
        width: p.width,
        height: p.height,
        stride: p.stride,
        size: p.size,
        x_pos: p.x_pos,
        y_pos: p.y_pos,
        x_hot: hot(p.x_hot),
        y_hot: hot(p.y_hot),
        source: match kind {
            GfxPlaneKind::DmaBuf => GfxPlaneSource::DmaBuf(id),
            GfxPlaneKind::Region => GfxPlaneSource::Region(RegionIndex(id)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_decode_and_disabled_ones_are_none() {
        let p = vfio::vfio_device_gfx_plane_info {
            drm_format: 0x3432_5258, // XR24
            width: 1024,
            height: 768,
            stride: 4096,
            size: 4096 * 768,
            x_hot: u32::MAX,
            y_hot: 3,
            ..Default::default()
        };
        let got = decode_plane(GfxPlaneKind::DmaBuf, &p, 5).unwrap();
        assert_eq!(got.source, GfxPlaneSource::DmaBuf(5));
        assert_eq!((got.x_hot, got.y_hot), (None, Some(3)));
        assert_eq!(
            decode_plane(GfxPlaneKind::Region, &p, 5).unwrap().source,
            GfxPlaneSource::Region(RegionIndex(5))
        );
        assert_eq!(
            decode_plane(GfxPlaneKind::DmaBuf, &Default::default(), 0),
            None
        );
    }
}
