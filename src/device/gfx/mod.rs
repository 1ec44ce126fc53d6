//! Mediated graphics: `VFIO_DEVICE_QUERY_GFX_PLANE`, `VFIO_DEVICE_GET_GFX_DMABUF`, and reading
//! a plane's pixels.
//!
//! Virtual GPUs (Intel GVT-g, the `mbochs`/`mdpy` samples) expose their guest's display planes
//! either as dma-bufs or as a device region. Devices without a display (every vfio-pci device)
//! answer [`Error::NotSupported`].
//!
//! # Reading a plane
//!
//! - **Region plane** (`mdpy`): [`Device::gfx_plane`] names a region
//!   ([`GfxPlaneSource::Region`]); [`Device::gfx_framebuffer`] maps it and returns a
//!   [`Framebuffer`] that reads (and writes) the pixels.
//! - **dma-buf plane** (`mbochs`): [`Device::gfx_dmabuf`] hands out the plane as a
//!   [`GfxDmaBuf`]. Where the exporter lets userspace map it, [`GfxDmaBuf::map`] and
//!   [`Framebuffer::from_dmabuf`] read it; `mbochs` does not (below), and the same memory is
//!   read through the device's BAR0, which *is* the framebuffer:
//!   [`BochsDispi::framebuffer`].
//!
//! A [`Framebuffer`] checks the plane against what backs it (format with a known pixel size,
//! linear layout, every row inside the backing) when it is made, and every access is
//! bounds-checked; [`Framebuffer::snapshot`] copies the plane into an owned [`Image`], which
//! converts to RGB and writes a PPM file.
//!
//! ```no_run
//! use uvfio::device::gfx::{BochsDispi, BochsMode};
//! use uvfio::device::{DrmPlaneType, GfxPlaneKind};
//! use uvfio::{DmaSpace, IommuMode};
//!
//! let space = DmaSpace::open(IommuMode::best_available())?;
//! // mdpy: a region plane.
//! let mdpy = space.open_device_at("/sys/bus/mdev/devices/0f3b29a6-7a1b-4c1e-9e6a-000000000003")?;
//! let plane = mdpy.gfx_plane(GfxPlaneKind::Region, DrmPlaneType::PRIMARY)?.expect("shown");
//! let image = mdpy.gfx_framebuffer(&plane)?.snapshot()?;
//! image.write_ppm(std::fs::File::create("/tmp/mdpy.ppm")?)?;
//! // mbochs: set a mode, then the dma-buf plane, read through BAR0.
//! let mbochs = space.open_device_at("/sys/bus/mdev/devices/0f3b29a6-7a1b-4c1e-9e6a-000000000004")?;
//! let dispi = BochsDispi::new(&mbochs)?;
//! dispi.set_mode(&BochsMode::new(640, 480, 32))?;
//! let plane = mbochs.gfx_plane(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)?.expect("shown");
//! let fb = dispi.framebuffer(&plane)?;
//! println!("{}x{} {} stride {}: {:#x}", fb.width(), fb.height(), fb.format(), fb.stride(), fb.pixel(0, 0)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Kernel quirks, and what the API makes of them
//!
//! Found in Linux 6.12's samples (`samples/vfio-mdev/mdpy.c`, `mbochs.c`) and checked in the
//! emulated host (`tests/hw/gfx.rs`):
//!
//! | quirk | what uvfio does |
//! |---|---|
//! | `mbochs`: the first `QUERY_GFX_PLANE` after a mode change fails with `ENOMEM` (the sample allocates the plane's dma-buf but drops the pointer), the second succeeds | [`Device::gfx_plane`] retries a dma-buf query once on `ENOMEM`; [`Device::gfx_plane_once`] does not, and returns the `ENOMEM` as [`Error::Ioctl`] ([`ErrorKind::OutOfMemory`](crate::error::ErrorKind::OutOfMemory)) |
//! | `mbochs`: the dma-buf fd is opened read-only, and its `mmap` wants `VM_SHARED`, which the kernel clears for a read-only file: `mmap` fails with `EINVAL` whatever the protection | [`GfxDmaBuf::map`] returns [`Error::NotSupported`] (`EINVAL`), saying so; dma-bufs have no `read`, so the pixels are read through BAR0 ([`BochsDispi::framebuffer`]) |
//! | `mbochs`: `pread`/`pwrite` of BAR0 reach the video memory 2 pages further than `mmap` and the dma-buf do (and, from the source, past the end of the sample's page array for the last 2 pages) | [`BochsDispi::framebuffer`] maps BAR0 and refuses ([`Error::NotSupported`]) to serve pixels through `pread` |
//! | `mdpy`: `pread`/`pwrite` of the framebuffer region ignore the offset (each of their accesses, 4 bytes at most, reaches the framebuffer's first bytes) | [`Framebuffer`] reads only through a mapping, and refuses an unmapped backing |
//! | `mdpy`: the framebuffer region's index (16) is past the device's `num_regions` (9), which [`Device::region_info`] refuses | [`Device::gfx_framebuffer`] accepts the index the plane names |
//! | `mbochs`: `VFIO_DEVICE_GET_REGION_INFO` with an `argsz` above its own 48-byte struct fails with `EINVAL` (uvfio asks with 256 bytes first) | every capability-chain query is asked again with the struct's own size after an `EINVAL`, and grown from there |
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_QUERY_GFX_PLANE`, `VFIO_DEVICE_GET_GFX_DMABUF`
//! - `include/uapi/drm/drm_fourcc.h`: the pixel formats
//! - Linux `samples/vfio-mdev/mbochs.c`, `samples/vfio-mdev/mdpy.c`
//! - QEMU `include/hw/display/bochs-vbe.h`: the Bochs dispi (VBE) registers

mod bochs;
mod framebuffer;

pub use bochs::{BochsDispi, BochsMode};
pub use framebuffer::{DmaBufMap, Framebuffer, Image};

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{Device, RegionIndex};
use crate::error::{Errno, Error, Object, Result};
use crate::mmio::MapOptions;
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

/// A DRM pixel format: a fourcc code from `drm_fourcc.h` (`DRM_FORMAT_*`), little-endian
/// packed as the kernel packs it. Displays as its four characters (`XR24`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DrmFourcc(pub u32);

impl DrmFourcc {
    const fn code(s: &[u8; 4]) -> DrmFourcc {
        DrmFourcc(u32::from_le_bytes(*s))
    }

    /// `DRM_FORMAT_XRGB8888` (`XR24`): 32-bit little-endian `x:R:G:B` (B in the low byte).
    pub const XRGB8888: DrmFourcc = DrmFourcc::code(b"XR24");
    /// `DRM_FORMAT_ARGB8888` (`AR24`): as [`DrmFourcc::XRGB8888`], with alpha in the high byte.
    pub const ARGB8888: DrmFourcc = DrmFourcc::code(b"AR24");
    /// `DRM_FORMAT_XBGR8888` (`XB24`): 32-bit little-endian `x:B:G:R` (R in the low byte).
    pub const XBGR8888: DrmFourcc = DrmFourcc::code(b"XB24");
    /// `DRM_FORMAT_ABGR8888` (`AB24`): as [`DrmFourcc::XBGR8888`], with alpha in the high byte.
    pub const ABGR8888: DrmFourcc = DrmFourcc::code(b"AB24");
    /// `DRM_FORMAT_RGB888` (`RG24`): 24-bit little-endian `R:G:B` (B in the first byte).
    pub const RGB888: DrmFourcc = DrmFourcc::code(b"RG24");
    /// `DRM_FORMAT_BGR888` (`BG24`): 24-bit little-endian `B:G:R` (R in the first byte).
    pub const BGR888: DrmFourcc = DrmFourcc::code(b"BG24");
    /// `DRM_FORMAT_RGB565` (`RG16`): 16-bit little-endian `R5:G6:B5`.
    pub const RGB565: DrmFourcc = DrmFourcc::code(b"RG16");

    /// Bytes per pixel of the formats uvfio can read ([`Framebuffer`], [`Image::rgb`]); `None`
    /// for any other format (planar, compressed, or unknown here).
    pub fn bytes_per_pixel(self) -> Option<u32> {
        match self {
            DrmFourcc::XRGB8888
            | DrmFourcc::ARGB8888
            | DrmFourcc::XBGR8888
            | DrmFourcc::ABGR8888 => Some(4),
            DrmFourcc::RGB888 | DrmFourcc::BGR888 => Some(3),
            DrmFourcc::RGB565 => Some(2),
            _ => None,
        }
    }

    /// The pixel `value` (the little-endian bytes of one pixel, as [`Framebuffer::pixel`]
    /// returns it) as 8-bit red, green and blue; `None` for a format
    /// [`DrmFourcc::bytes_per_pixel`] does not know.
    pub fn to_rgb(self, value: u32) -> Option<[u8; 3]> {
        let [b0, b1, b2, _] = value.to_le_bytes();
        // A 5- or 6-bit channel scaled to 0..=255 (always fits a byte).
        let scale = |v: u32, max: u32| u8::try_from((v * 255 + max / 2) / max).unwrap_or(u8::MAX);
        Some(match self {
            DrmFourcc::XRGB8888 | DrmFourcc::ARGB8888 | DrmFourcc::RGB888 => [b2, b1, b0],
            DrmFourcc::XBGR8888 | DrmFourcc::ABGR8888 | DrmFourcc::BGR888 => [b0, b1, b2],
            DrmFourcc::RGB565 => {
                let (r, g, bl) = ((value >> 11) & 0x1f, (value >> 5) & 0x3f, value & 0x1f);
                [scale(r, 31), scale(g, 63), scale(bl, 31)]
            }
            _ => return None,
        })
    }

    /// The pixel value of this format for 8-bit `rgb` (alpha, where the format has it, opaque);
    /// `None` for a format [`DrmFourcc::bytes_per_pixel`] does not know. RGB565 keeps the high
    /// bits of each channel.
    pub fn from_rgb(self, [r, g, b]: [u8; 3]) -> Option<u32> {
        let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
        Some(match self {
            DrmFourcc::XRGB8888 | DrmFourcc::RGB888 => (r << 16) | (g << 8) | b,
            DrmFourcc::ARGB8888 => 0xff00_0000 | (r << 16) | (g << 8) | b,
            DrmFourcc::XBGR8888 | DrmFourcc::BGR888 => (b << 16) | (g << 8) | r,
            DrmFourcc::ABGR8888 => 0xff00_0000 | (b << 16) | (g << 8) | r,
            DrmFourcc::RGB565 => ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3),
            _ => return None,
        })
    }
}

impl fmt::Display for DrmFourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.to_le_bytes() {
            let c = if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DrmFourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrmFourcc({self} = {:#010x})", self.0)
    }
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

impl GfxPlane {
    /// The pixel format, typed.
    pub fn format(&self) -> DrmFourcc {
        DrmFourcc(self.drm_format)
    }
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
    /// A dma-buf query that fails with `ENOMEM` is issued once more: `mbochs` (Linux's sample,
    /// up to at least 6.12) fails the first query after every mode change with `ENOMEM` although
    /// it did allocate the plane, and answers the second. A device that is really out of memory
    /// fails the retry too, and that error is returned. [`Device::gfx_plane_once`] does not
    /// retry.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without display planes;
    /// [`Error::Ioctl`] for other kernel errors (`EINVAL` when `kind` is not supported,
    /// `ENOMEM` when the retry failed too).
    #[doc(alias = "VFIO_DEVICE_QUERY_GFX_PLANE")]
    pub fn gfx_plane(&self, kind: GfxPlaneKind, plane: DrmPlaneType) -> Result<Option<GfxPlane>> {
        match self.gfx_plane_once(kind, plane) {
            Err(Error::Ioctl {
                errno: Errno::ENOMEM,
                ..
            }) if kind == GfxPlaneKind::DmaBuf => self.gfx_plane_once(kind, plane),
            other => other,
        }
    }

    /// [`Device::gfx_plane`] without the retry: one `VFIO_DEVICE_QUERY_GFX_PLANE`, its
    /// answer as the kernel gave it. On `mbochs` the first dma-buf query after a mode change
    /// returns [`Error::Ioctl`] `ENOMEM` ([`ErrorKind::OutOfMemory`](crate::error::ErrorKind));
    /// querying again is the remedy.
    ///
    /// # Errors
    ///
    /// As [`Device::gfx_plane`].
    #[doc(alias = "VFIO_DEVICE_QUERY_GFX_PLANE")]
    pub fn gfx_plane_once(
        &self,
        kind: GfxPlaneKind,
        plane: DrmPlaneType,
    ) -> Result<Option<GfxPlane>> {
        match self.fd().query_gfx_plane(kind.flag(), plane.0) {
            Ok((p, id)) => Ok(decode_plane(kind, &p, id)),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(gfx_not_supported(self, "gfx_plane")),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// `VFIO_DEVICE_GET_GFX_DMABUF`: the dma-buf of the plane with this `dmabuf_id` (from
    /// [`GfxPlaneSource::DmaBuf`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without display planes;
    /// [`Error::Ioctl`] for an unknown id (`ENOENT` on `mbochs`) or other kernel errors.
    #[doc(alias = "VFIO_DEVICE_GET_GFX_DMABUF")]
    pub fn gfx_dmabuf(&self, dmabuf_id: u32) -> Result<GfxDmaBuf> {
        match self.fd().get_gfx_dmabuf(dmabuf_id) {
            Ok(fd) => Ok(GfxDmaBuf {
                fd,
                object: Object::DmaBuf {
                    device: self.name().to_string(),
                    id: dmabuf_id,
                },
                id: dmabuf_id,
            }),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(gfx_not_supported(self, "gfx_dmabuf")),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// The pixels of a region plane ([`GfxPlaneSource::Region`]): its region, mapped, as a
    /// [`Framebuffer`] at offset 0.
    ///
    /// The region is opened even when its index is past the device's
    /// [`num_regions`](super::DeviceInfo::num_regions) (`mdpy` puts it at 16 and reports 9).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`EINVAL`) for a dma-buf plane (see [`Device::gfx_dmabuf`]
    ///   and [`BochsDispi::framebuffer`]);
    /// - as [`Device::region_info`] and [`Device::region_with`] for the region;
    /// - as [`Framebuffer::new`] (the region cannot be mapped, the plane does not fit it, an
    ///   unknown format).
    pub fn gfx_framebuffer(&self, plane: &GfxPlane) -> Result<Framebuffer> {
        let GfxPlaneSource::Region(index) = plane.source else {
            return Err(Error::invalid(
                "gfx_framebuffer",
                self.object(),
                "a dma-buf plane has no region of its own: read it through GfxDmaBuf::map or \
                 the memory that backs it (BochsDispi::framebuffer)",
            ));
        };
        let info = self.region_info_unchecked(index.0)?;
        let region = self.region_from_info(info, MapOptions::new().require_map())?;
        Framebuffer::new(region, 0, plane)
    }
}

/// A graphics plane's dma-buf ([`Device::gfx_dmabuf`]): owns the fd.
///
/// The fd can be handed to anything that imports dma-bufs (a DRM device, a compositor) via
/// [`AsFd`] or [`GfxDmaBuf::into_fd`]. Reading it from the CPU takes a mapping
/// ([`GfxDmaBuf::map`]): dma-bufs have no `read`/`pread`.
#[derive(Debug)]
pub struct GfxDmaBuf {
    fd: OwnedFd,
    id: u32,
    object: Object,
}

impl GfxDmaBuf {
    /// The plane's dma-buf id, as [`GfxPlaneSource::DmaBuf`] gave it.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The dma-buf's size in bytes (`lseek(SEEK_END)`, which dma-bufs answer with their size).
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] (`lseek`) when the kernel refuses.
    pub fn size(&self) -> Result<u64> {
        let end = nix::unistd::lseek(self.fd.as_fd(), 0, nix::unistd::Whence::SeekEnd)
            .map_err(|errno| self.syscall("lseek", Errno::from_nix(errno)))?;
        // Back to 0, as a fresh fd is; dma-bufs only allow seeking to 0 or the end.
        nix::unistd::lseek(self.fd.as_fd(), 0, nix::unistd::Whence::SeekSet)
            .map_err(|errno| self.syscall("lseek", Errno::from_nix(errno)))?;
        u64::try_from(end).map_err(|_| self.syscall("lseek", Errno::EOVERFLOW))
    }

    /// Maps the whole dma-buf read-only (`mmap(PROT_READ, MAP_SHARED)`), for
    /// [`Framebuffer::from_dmabuf`].
    ///
    /// # Errors
    ///
    /// - [`Error::NotSupported`] (`EINVAL`, or the kernel's errno) when the exporter refuses
    ///   the mapping. `mbochs` always does: `VFIO_DEVICE_GET_GFX_DMABUF` gives a read-only fd,
    ///   the kernel clears `VM_SHARED` from a shared mapping of a read-only file, and the
    ///   sample's dma-buf `mmap` wants `VM_SHARED`. Read its pixels through BAR0
    ///   ([`BochsDispi::framebuffer`]) instead;
    /// - [`Error::Syscall`] (`lseek`) as [`GfxDmaBuf::size`]; [`Error::InvalidArgument`] for a
    ///   dma-buf of size zero or larger than the address space.
    pub fn map(&self) -> Result<DmaBufMap> {
        let size = self.size()?;
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| {
                Error::out_of_range("map", self.object.clone(), format!("dma-buf size {size}"))
            })?;
        DmaBufMap::new(self.fd.as_fd(), len, self.object.clone())
    }

    /// The fd, for whoever imports the dma-buf.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    fn syscall(&self, op: &'static str, errno: Errno) -> Error {
        Error::Syscall {
            op,
            object: self.object.clone().into(),
            errno,
        }
    }
}

impl AsFd for GfxDmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<GfxDmaBuf> for OwnedFd {
    fn from(d: GfxDmaBuf) -> OwnedFd {
        d.fd
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
