//! [`BochsDispi`]: the Bochs dispi (VBE) display registers of QEMU's stdvga and `mbochs`.

use super::{Framebuffer, GfxPlane, GfxPlaneSource};
use crate::device::{Device, RegionIndex};
use crate::error::{Errno, Error, Result};
use crate::mmio::{MapOptions, Region};

/// Register indexes (`VBE_DISPI_INDEX_*`), 16 bits each at `BochsDispi::REGS + 2 * index`.
mod reg {
    pub const ID: u64 = 0x0;
    pub const XRES: u64 = 0x1;
    pub const YRES: u64 = 0x2;
    pub const BPP: u64 = 0x3;
    pub const ENABLE: u64 = 0x4;
    pub const BANK: u64 = 0x5;
    pub const VIRT_WIDTH: u64 = 0x6;
    pub const VIRT_HEIGHT: u64 = 0x7;
    pub const X_OFFSET: u64 = 0x8;
    pub const Y_OFFSET: u64 = 0x9;
    pub const VIDEO_MEMORY_64K: u64 = 0xa;

    pub const ID0: u16 = 0xb0c0;
    pub const ID5: u16 = 0xb0c5;
    pub const ENABLED: u16 = 0x01;
    pub const LFB_ENABLED: u16 = 0x40;
    pub const NOCLEARMEM: u16 = 0x80;
}

/// A Bochs dispi display mode ([`BochsDispi::set_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BochsMode {
    /// Visible width in pixels (`XRES`).
    pub width: u16,
    /// Visible height in pixels (`YRES`).
    pub height: u16,
    /// Bits per pixel (`BPP`); `mbochs` shows a plane only for 32 (XRGB8888).
    pub bpp: u16,
    /// The width of a line in memory, in pixels (`VIRT_WIDTH`); the device uses `width` when
    /// this is smaller.
    pub virt_width: u16,
    /// First visible column (`X_OFFSET`).
    pub x_offset: u16,
    /// First visible line (`Y_OFFSET`).
    pub y_offset: u16,
}

impl BochsMode {
    /// A `width` x `height` mode of `bpp` bits per pixel, lines exactly `width` long, no
    /// panning.
    pub fn new(width: u16, height: u16, bpp: u16) -> BochsMode {
        BochsMode {
            width,
            height,
            bpp,
            virt_width: width,
            x_offset: 0,
            y_offset: 0,
        }
    }

    /// Bytes per pixel (`bpp` rounded up to bytes).
    pub fn bytes_per_pixel(&self) -> u64 {
        u64::from(self.bpp).div_ceil(8)
    }

    /// Bytes from one line to the next, as the device computes it.
    pub fn stride(&self) -> u64 {
        u64::from(self.virt_width.max(self.width)) * self.bytes_per_pixel()
    }

    /// Where the first visible pixel is in video memory (BAR0).
    pub fn framebuffer_offset(&self) -> u64 {
        u64::from(self.x_offset) * self.bytes_per_pixel() + u64::from(self.y_offset) * self.stride()
    }

    /// Bytes of video memory the visible part reaches up to.
    pub fn end(&self) -> u64 {
        self.framebuffer_offset()
            + self.stride() * u64::from(self.height.saturating_sub(1))
            + u64::from(self.width) * self.bytes_per_pixel()
    }
}

/// The Bochs dispi interface of a display device: its VBE registers in BAR2 at
/// [`BochsDispi::REGS`] (QEMU's stdvga MMIO layout, which the `mbochs` sample implements), and
/// its video memory in BAR0.
///
/// With it a driver sets a mode, after which the device offers the visible part as a dma-buf
/// plane ([`Device::gfx_plane`] with [`GfxPlaneKind::DmaBuf`](super::GfxPlaneKind::DmaBuf));
/// [`BochsDispi::framebuffer`] reads that plane's pixels through the mapped BAR0.
#[derive(Debug)]
pub struct BochsDispi {
    regs: Region,
}

impl BochsDispi {
    /// Offset of the dispi registers in BAR2.
    pub const REGS: u64 = 0x500;

    /// The dispi interface of `device`: BAR2 with an `ID` register reading `0xB0C0..=0xB0C5`.
    ///
    /// # Errors
    ///
    /// - as [`Device::region`] for BAR2 (a device without one: [`Error::NotSupported`]);
    /// - [`Error::NotSupported`] (`ENODEV`) when BAR2 is too small for the registers or the
    ///   `ID` register holds no dispi id.
    pub fn new(device: &Device) -> Result<BochsDispi> {
        let regs = device.region(RegionIndex::BAR2)?;
        let need = Self::REGS + 2 * (reg::VIDEO_MEMORY_64K + 1);
        if regs.size() < need {
            return Err(Error::NotSupported {
                op: "BochsDispi::new",
                object: regs.object().into(),
                reason: format!(
                    "BAR2 has {} bytes, the Bochs dispi registers need {need}",
                    regs.size()
                )
                .into(),
                errno: Errno::ENODEV,
            });
        }
        let dispi = BochsDispi { regs };
        let id = dispi.id()?;
        if !(reg::ID0..=reg::ID5).contains(&id) {
            return Err(Error::NotSupported {
                op: "BochsDispi::new",
                object: dispi.regs.object().into(),
                reason: format!(
                    "the Bochs dispi ID register (BAR2 + {:#x}) reads {id:#06x}, not 0xb0c0..=0xb0c5",
                    Self::REGS
                ).into(),
                errno: Errno::ENODEV,
            });
        }
        Ok(dispi)
    }

    fn read(&self, index: u64) -> Result<u16> {
        self.regs.read_u16(Self::REGS + 2 * index)
    }

    fn write(&self, index: u64, value: u16) -> Result<()> {
        self.regs.write_u16(Self::REGS + 2 * index, value)
    }

    /// The `ID` register (`0xB0C0` + interface version).
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn id(&self) -> Result<u16> {
        self.read(reg::ID)
    }

    /// The video memory's size in bytes (`VIDEO_MEMORY_64K`).
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn video_memory(&self) -> Result<u64> {
        Ok(u64::from(self.read(reg::VIDEO_MEMORY_64K)?) * 64 * 1024)
    }

    /// Sets `mode` and enables the display with the linear framebuffer, keeping the video
    /// memory's contents (`NOCLEARMEM`): the display is disabled, every register written,
    /// then enabled. The device offers the new plane afterwards; on `mbochs` the first query
    /// of it fails with `ENOMEM` ([`Device::gfx_plane`] retries it).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`EINVAL`) for a zero width, height or bpp; (`ERANGE`)
    ///   when the mode does not fit the video memory; nothing is written then;
    /// - as [`Region::write_u16`].
    pub fn set_mode(&self, mode: &BochsMode) -> Result<()> {
        const OP: &str = "set_mode";
        if mode.width == 0 || mode.height == 0 || mode.bpp == 0 {
            return Err(Error::invalid(
                OP,
                self.regs.object(),
                format!("an empty mode {mode:?}"),
            ));
        }
        let vmem = self.video_memory()?;
        if mode.end() > vmem {
            return Err(Error::out_of_range(
                OP,
                self.regs.object(),
                format!(
                    "{mode:?} needs {} bytes, the video memory has {vmem}",
                    mode.end()
                ),
            ));
        }
        let virt_height = u16::try_from(vmem / mode.stride()).unwrap_or(u16::MAX);
        self.write(reg::ENABLE, 0)?;
        self.write(reg::BPP, mode.bpp)?;
        self.write(reg::XRES, mode.width)?;
        self.write(reg::YRES, mode.height)?;
        self.write(reg::BANK, 0)?;
        self.write(reg::VIRT_WIDTH, mode.virt_width)?;
        self.write(reg::VIRT_HEIGHT, virt_height)?;
        self.write(reg::X_OFFSET, mode.x_offset)?;
        self.write(reg::Y_OFFSET, mode.y_offset)?;
        self.write(
            reg::ENABLE,
            reg::ENABLED | reg::LFB_ENABLED | reg::NOCLEARMEM,
        )
    }

    /// Disables the display (`ENABLE` = 0): the device then offers no plane
    /// ([`Device::gfx_plane`] returns `None`).
    ///
    /// # Errors
    ///
    /// As [`Region::write_u16`].
    pub fn disable(&self) -> Result<()> {
        self.write(reg::ENABLE, 0)
    }

    /// The current mode, `None` while the display is disabled.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn mode(&self) -> Result<Option<BochsMode>> {
        if self.read(reg::ENABLE)? & reg::ENABLED == 0 {
            return Ok(None);
        }
        Ok(Some(BochsMode {
            width: self.read(reg::XRES)?,
            height: self.read(reg::YRES)?,
            bpp: self.read(reg::BPP)?,
            virt_width: self.read(reg::VIRT_WIDTH)?,
            x_offset: self.read(reg::X_OFFSET)?,
            y_offset: self.read(reg::Y_OFFSET)?,
        }))
    }

    /// The pixels of `plane`, a dma-buf plane of this device, read through the device's video
    /// memory (BAR0, mapped) at the current mode's offset: the same pages the dma-buf holds.
    /// The way to read `mbochs`' planes, whose dma-buf cannot be mapped
    /// ([`GfxDmaBuf::map`](super::GfxDmaBuf::map)).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`EINVAL`) for a region plane, while the display is
    ///   disabled, and when the plane's geometry is not the current mode's (a plane from
    ///   before a mode change: query it again);
    /// - [`Error::NotSupported`] when BAR0 cannot be mapped (`mbochs`' `pread` of BAR0 is 2
    ///   pages off, so it is never used);
    /// - as [`Framebuffer::new`].
    pub fn framebuffer(&self, plane: &GfxPlane) -> Result<Framebuffer> {
        const OP: &str = "BochsDispi::framebuffer";
        let object = || self.regs.object();
        if !matches!(plane.source, GfxPlaneSource::DmaBuf(_)) {
            return Err(Error::invalid(
                OP,
                object(),
                "a region plane: use Device::gfx_framebuffer",
            ));
        }
        let Some(mode) = self.mode()? else {
            return Err(Error::invalid(OP, object(), "the display is disabled"));
        };
        let same = u64::from(plane.stride) == mode.stride()
            && plane.width == u32::from(mode.width)
            && plane.height == u32::from(mode.height);
        if !same {
            return Err(Error::invalid(
                OP,
                object(),
                format!(
                    "the plane ({}x{}, stride {}) is not the current mode ({mode:?}): query the \
                     plane again",
                    plane.width, plane.height, plane.stride
                ),
            ));
        }
        let bar0 = self
            .regs
            .device()
            .region_with(RegionIndex::BAR0, MapOptions::new().require_map())?;
        Framebuffer::new(bar0, mode.framebuffer_offset(), plane)
    }

    /// The BAR2 region the registers are in.
    pub fn region(&self) -> &Region {
        &self.regs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_compute_stride_offset_and_end() {
        let mut m = BochsMode::new(640, 480, 32);
        assert_eq!(
            (m.stride(), m.framebuffer_offset(), m.end()),
            (2560, 0, 2560 * 480)
        );
        m.virt_width = 800;
        m.x_offset = 2;
        m.y_offset = 1;
        assert_eq!(m.stride(), 3200);
        assert_eq!(m.framebuffer_offset(), 3200 + 8);
        assert_eq!(m.end(), 3208 + 3200 * 479 + 2560);
        m.virt_width = 10; // smaller than width: the device uses width
        assert_eq!(m.stride(), 2560);
        assert_eq!(BochsMode::new(8, 1, 15).bytes_per_pixel(), 2);
    }
}
