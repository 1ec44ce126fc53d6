//! [`Framebuffer`]: a plane's pixels in the memory that backs them; [`Image`]: a copy of them.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{DrmFourcc, GfxPlane};
use crate::error::{Errno, Error, Object, Result};
use crate::mmio::Region;
use crate::trace::{self, Level};

/// A read-only mapping of a dma-buf ([`GfxDmaBuf::map`](super::GfxDmaBuf::map)), unmapped on
/// drop.
///
/// The memory belongs to the exporter, which may change it at any time (the guest draws), so
/// it is only ever read with volatile loads and never handed out as a slice.
pub struct DmaBufMap {
    map: memmap2::MmapRaw,
    object: Object,
}

impl fmt::Debug for DmaBufMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBufMap")
            .field("object", &self.object)
            .field("len", &self.map.len())
            .finish()
    }
}

impl DmaBufMap {
    /// Maps `len` bytes of `fd` read-only and shared.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize, object: Object) -> Result<DmaBufMap> {
        let args = |f: &mut fmt::Formatter<'_>| write!(f, "len={len:#x} prot=r");
        match trace::call(Level::Debug, "mmap", &object, args, || {
            memmap2::MmapOptions::new()
                .len(len)
                .map_raw_read_only(fd.as_raw_fd())
        }) {
            Ok(map) => Ok(DmaBufMap { map, object }),
            Err(e) => {
                let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                Err(Error::NotSupported {
                    op: "mmap",
                    object: object.into(),
                    reason: format!(
                        "the exporter refuses to map the dma-buf ({errno}); mbochs always does \
                         (its fd is read-only, so the kernel clears VM_SHARED, which its mmap \
                         wants): read the memory that backs the plane instead \
                         (BochsDispi::framebuffer)"
                    )
                    .into(),
                    errno,
                })
            }
        }
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never: a mapping has at least one byte).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`, with volatile loads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when the range is not inside the mapping.
    #[allow(unsafe_code)] // Volatile loads from the owned mapping, bounds-checked first.
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset).ok();
        let in_range = start
            .and_then(|s| s.checked_add(buf.len()))
            .is_some_and(|end| end <= self.map.len());
        let (Some(start), true) = (start, in_range) else {
            return Err(Error::out_of_range(
                "read_bytes",
                self.object.clone(),
                format!(
                    "{} bytes at {offset:#x} do not fit the {}-byte dma-buf",
                    buf.len(),
                    self.map.len()
                ),
            ));
        };
        let base = self.map.as_ptr();
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: start + i < start + buf.len() <= map.len() (checked above): inside the
            // live mapping, which this struct owns until drop. A volatile byte load of mapped
            // memory; no reference to it is created.
            *b = unsafe { base.add(start + i).read_volatile() };
        }
        Ok(())
    }
}

/// Where a [`Framebuffer`]'s pixels are.
#[derive(Debug)]
enum Backing {
    Region(Region),
    DmaBuf(DmaBufMap),
}

/// A display plane's pixels in the memory that backs them: a mapped device region (a region
/// plane, or the VRAM BAR behind a dma-buf plane) or a dma-buf mapping.
///
/// Made from a [`GfxPlane`] by [`Device::gfx_framebuffer`](crate::Device::gfx_framebuffer),
/// [`BochsDispi::framebuffer`](super::BochsDispi::framebuffer), [`Framebuffer::new`] or
/// [`Framebuffer::from_dmabuf`], which check once that the plane fits its backing: a format
/// with a known pixel size ([`DrmFourcc::bytes_per_pixel`]), the linear layout (modifier 0),
/// a stride of at least a row, every row inside the backing, and, for a region, every byte
/// mapped (the samples' `pread` paths are wrong: see the [module documentation](super)).
/// Every access is then bounds-checked against the plane.
///
/// Pixels are the little-endian bytes of [`Framebuffer::bytes_per_pixel`] bytes, as a `u32`
/// ([`Framebuffer::pixel`]); [`DrmFourcc::to_rgb`] and [`DrmFourcc::from_rgb`] convert.
#[derive(Debug)]
pub struct Framebuffer {
    backing: Backing,
    offset: u64,
    format: DrmFourcc,
    width: u32,
    height: u32,
    stride: u32,
    bpp: u32,
}

/// The geometry checks shared by both backings: `(bytes per pixel, end offset)`.
fn check_plane(
    op: &'static str,
    object: &Object,
    offset: u64,
    plane: &GfxPlane,
    size: u64,
) -> Result<u32> {
    let format = plane.format();
    let Some(bpp) = format.bytes_per_pixel() else {
        return Err(Error::NotSupported {
            op,
            object: object.clone().into(),
            reason: format!("pixel format {format:?} is not one uvfio can read").into(),
            errno: Errno::EOPNOTSUPP,
        });
    };
    if plane.drm_format_mod != 0 {
        return Err(Error::NotSupported {
            op,
            object: object.clone().into(),
            reason: format!(
                "format modifier {:#x}: only the linear layout (DRM_FORMAT_MOD_LINEAR) can be read",
                plane.drm_format_mod
            )
            .into(),
            errno: Errno::EOPNOTSUPP,
        });
    }
    if plane.width == 0 || plane.height == 0 {
        return Err(Error::invalid(
            op,
            object.clone(),
            format!("an empty plane ({}x{})", plane.width, plane.height),
        ));
    }
    let row = u64::from(plane.width) * u64::from(bpp);
    if u64::from(plane.stride) < row {
        return Err(Error::invalid(
            op,
            object.clone(),
            format!(
                "stride {} is shorter than a row of {} {format} pixels ({row} bytes)",
                plane.stride, plane.width
            ),
        ));
    }
    let end = u64::from(plane.stride)
        .checked_mul(u64::from(plane.height - 1))
        .and_then(|v| v.checked_add(row))
        .and_then(|v| v.checked_add(offset));
    match end {
        Some(end) if end <= size => Ok(bpp),
        _ => Err(Error::out_of_range(
            op,
            object.clone(),
            format!(
                "a {}x{} plane with stride {} at offset {offset:#x} does not fit {size} bytes",
                plane.width, plane.height, plane.stride
            ),
        )),
    }
}

impl Framebuffer {
    /// The plane `plane` at byte `offset` of `region`, which must be mapped over the whole
    /// plane (open it with [`MapOptions::require_map`](crate::mmio::MapOptions::require_map)).
    ///
    /// # Errors
    ///
    /// - [`Error::NotSupported`] (`EOPNOTSUPP`) for a format uvfio cannot read or a non-linear
    ///   modifier, and when part of the plane is not mapped;
    /// - [`Error::InvalidArgument`] for an empty plane or a stride shorter than a row
    ///   (`EINVAL`), and a plane that does not fit the region (`ERANGE`).
    pub fn new(region: Region, offset: u64, plane: &GfxPlane) -> Result<Framebuffer> {
        const OP: &str = "framebuffer";
        let object = region.object();
        let bpp = check_plane(OP, &object, offset, plane, region.size())?;
        let end = offset
            + u64::from(plane.stride) * u64::from(plane.height - 1)
            + u64::from(plane.width) * u64::from(bpp);
        // Every byte of [offset, end) inside a mapped range (sorted, maybe adjacent).
        let mut covered = offset;
        for r in region.mapped_ranges() {
            if r.start <= covered && covered < r.end {
                covered = r.end;
            }
        }
        if covered < end {
            return Err(Error::NotSupported {
                op: OP,
                object: object.into(),
                reason: format!(
                    "bytes {covered:#x}..{end:#x} of the framebuffer are not mapped: pixels are \
                     read only through a mapping (mdpy's pread ignores the offset, mbochs' is \
                     2 pages off)"
                )
                .into(),
                errno: Errno::EOPNOTSUPP,
            });
        }
        Ok(Framebuffer {
            backing: Backing::Region(region),
            offset,
            format: plane.format(),
            width: plane.width,
            height: plane.height,
            stride: plane.stride,
            bpp,
        })
    }

    /// The plane `plane` at the start of a dma-buf mapping ([`GfxDmaBuf::map`](super::GfxDmaBuf::map)).
    /// Read-only: the write methods return [`Error::NotSupported`].
    ///
    /// # Errors
    ///
    /// As [`Framebuffer::new`], except that a mapping is always wholly mapped.
    pub fn from_dmabuf(map: DmaBufMap, plane: &GfxPlane) -> Result<Framebuffer> {
        let bpp = check_plane("framebuffer", &map.object, 0, plane, map.len() as u64)?;
        Ok(Framebuffer {
            backing: Backing::DmaBuf(map),
            offset: 0,
            format: plane.format(),
            width: plane.width,
            height: plane.height,
            stride: plane.stride,
            bpp,
        })
    }

    /// The pixel format.
    pub fn format(&self) -> DrmFourcc {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels (rows).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row to the next.
    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// Bytes per pixel.
    pub fn bytes_per_pixel(&self) -> u32 {
        self.bpp
    }

    /// Bytes of pixels in one row (`width * bytes_per_pixel`, at most the stride).
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.bpp as usize
    }

    /// Where the first pixel is in the backing.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The region behind the plane, `None` for a dma-buf mapping.
    pub fn region(&self) -> Option<&Region> {
        match &self.backing {
            Backing::Region(r) => Some(r),
            Backing::DmaBuf(_) => None,
        }
    }

    fn object(&self) -> Object {
        match &self.backing {
            Backing::Region(r) => r.object(),
            Backing::DmaBuf(m) => m.object.clone(),
        }
    }

    /// The backing offset of `len` bytes at pixel (`x`, `y`), checked against the plane.
    fn at(&self, op: &'static str, x: u32, y: u32, len: usize) -> Result<u64> {
        let fits = x < self.width
            && y < self.height
            && (len as u64) <= u64::from(self.width - x) * u64::from(self.bpp);
        if !fits {
            return Err(Error::out_of_range(
                op,
                self.object(),
                format!(
                    "{len} bytes at pixel ({x}, {y}) are outside the {}x{} plane",
                    self.width, self.height
                ),
            ));
        }
        Ok(
            self.offset
                + u64::from(y) * u64::from(self.stride)
                + u64::from(x) * u64::from(self.bpp),
        )
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.backing {
            Backing::Region(r) => r.read_bytes(offset, buf),
            Backing::DmaBuf(m) => m.read_bytes(offset, buf),
        }
    }

    fn write_at(&self, op: &'static str, offset: u64, buf: &[u8]) -> Result<()> {
        match &self.backing {
            Backing::Region(r) => r.write_bytes(offset, buf),
            Backing::DmaBuf(m) => Err(Error::NotSupported {
                op,
                object: m.object.clone().into(),
                reason: "a dma-buf is mapped read-only".into(),
                errno: Errno::EACCES,
            }),
        }
    }

    /// Copies row `y` (exactly [`Framebuffer::row_bytes`] bytes) into `buf`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for a row outside the plane or a `buf` of another
    /// length; as [`Region::read_bytes`].
    pub fn read_row(&self, y: u32, buf: &mut [u8]) -> Result<()> {
        self.check_row_len("read_row", buf.len())?;
        let at = self.at("read_row", 0, y, buf.len())?;
        self.read_at(at, buf)
    }

    /// Writes row `y` from `buf` (exactly [`Framebuffer::row_bytes`] bytes).
    ///
    /// # Errors
    ///
    /// As [`Framebuffer::read_row`]; [`Error::NotSupported`] (`EACCES`) for a dma-buf.
    pub fn write_row(&self, y: u32, buf: &[u8]) -> Result<()> {
        self.check_row_len("write_row", buf.len())?;
        let at = self.at("write_row", 0, y, buf.len())?;
        self.write_at("write_row", at, buf)
    }

    fn check_row_len(&self, op: &'static str, len: usize) -> Result<()> {
        if len == self.row_bytes() {
            return Ok(());
        }
        Err(Error::out_of_range(
            op,
            self.object(),
            format!("a row is {} bytes, the buffer {len}", self.row_bytes()),
        ))
    }

    /// The pixel at (`x`, `y`): its [`Framebuffer::bytes_per_pixel`] bytes, little-endian.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) outside the plane; as [`Region::read_bytes`].
    pub fn pixel(&self, x: u32, y: u32) -> Result<u32> {
        let mut b = [0u8; 4];
        let n = self.bpp as usize;
        let at = self.at("pixel", x, y, n)?;
        self.read_at(at, &mut b[..n])?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes the pixel at (`x`, `y`) (the low [`Framebuffer::bytes_per_pixel`] bytes of
    /// `value`, little-endian).
    ///
    /// # Errors
    ///
    /// As [`Framebuffer::pixel`]; [`Error::NotSupported`] (`EACCES`) for a dma-buf.
    pub fn set_pixel(&self, x: u32, y: u32, value: u32) -> Result<()> {
        let n = self.bpp as usize;
        let at = self.at("set_pixel", x, y, n)?;
        self.write_at("set_pixel", at, &value.to_le_bytes()[..n])
    }

    /// Draws the whole plane, row by row, with the colour `rgb(x, y)` converted to the
    /// format ([`DrmFourcc::from_rgb`]).
    ///
    /// # Errors
    ///
    /// As [`Framebuffer::write_row`]; [`Error::OutOfMemory`] when a row buffer cannot be
    /// allocated.
    pub fn draw(&self, mut rgb: impl FnMut(u32, u32) -> [u8; 3]) -> Result<()> {
        let mut row = alloc(self, "draw", self.row_bytes())?;
        let n = self.bpp as usize;
        for y in 0..self.height {
            for (x, px) in (0..self.width).zip(row.chunks_exact_mut(n)) {
                // bytes_per_pixel is Some, so from_rgb is too.
                let v = self.format.from_rgb(rgb(x, y)).unwrap_or(0);
                px.copy_from_slice(&v.to_le_bytes()[..n]);
            }
            self.write_row(y, &row)?;
        }
        Ok(())
    }

    /// A copy of every pixel, rows packed (stride = [`Framebuffer::row_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`Framebuffer::read_row`]; [`Error::OutOfMemory`] when the copy cannot be allocated.
    pub fn snapshot(&self) -> Result<Image> {
        let row = self.row_bytes();
        let mut data = alloc(self, "snapshot", row * self.height as usize)?;
        for (y, chunk) in (0..self.height).zip(data.chunks_exact_mut(row)) {
            self.read_row(y, chunk)?;
        }
        Ok(Image {
            format: self.format,
            width: self.width,
            height: self.height,
            bpp: self.bpp,
            data,
        })
    }
}

fn alloc(fb: &Framebuffer, op: &'static str, bytes: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes).map_err(|_| Error::OutOfMemory {
        op,
        object: fb.object().into(),
        bytes,
        errno: Errno::ENOMEM,
    })?;
    v.resize(bytes, 0);
    Ok(v)
}

/// A copy of a plane's pixels ([`Framebuffer::snapshot`]): rows packed, each
/// `width * bytes_per_pixel` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    format: DrmFourcc,
    width: u32,
    height: u32,
    bpp: u32,
    data: Vec<u8>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Image {
    /// The pixel format.
    pub fn format(&self) -> DrmFourcc {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per pixel.
    pub fn bytes_per_pixel(&self) -> u32 {
        self.bpp
    }

    /// Every pixel's bytes, rows packed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Row `y`'s bytes, `None` past the last row.
    pub fn row(&self, y: u32) -> Option<&[u8]> {
        let len = self.width as usize * self.bpp as usize;
        let start = (y < self.height).then(|| y as usize * len)?;
        self.data.get(start..start + len)
    }

    /// The pixel at (`x`, `y`) as [`Framebuffer::pixel`] gives it; `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        if x >= self.width {
            return None;
        }
        let n = self.bpp as usize;
        let px = self.row(y)?.get(x as usize * n..(x as usize + 1) * n)?;
        let mut b = [0u8; 4];
        b[..n].copy_from_slice(px);
        Some(u32::from_le_bytes(b))
    }

    /// The pixel at (`x`, `y`) as 8-bit red, green, blue; `None` outside the image.
    pub fn rgb(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        self.format.to_rgb(self.pixel(x, y)?)
    }

    /// Writes the image as a binary PPM (`P6`, 8 bits per channel).
    ///
    /// # Errors
    ///
    /// What `out` returns.
    pub fn write_ppm(&self, mut out: impl Write) -> io::Result<()> {
        write!(out, "P6\n{} {}\n255\n", self.width, self.height)?;
        let mut line = Vec::with_capacity(self.width as usize * 3);
        for y in 0..self.height {
            line.clear();
            for x in 0..self.width {
                line.extend_from_slice(&self.rgb(x, y).unwrap_or_default());
            }
            out.write_all(&line)?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::GfxPlaneSource;
    use super::*;
    use std::os::fd::AsFd;

    fn plane(format: DrmFourcc, width: u32, height: u32, stride: u32) -> GfxPlane {
        GfxPlane {
            drm_format: format.0,
            drm_format_mod: 0,
            width,
            height,
            stride,
            size: stride.wrapping_mul(height),
            x_pos: 0,
            y_pos: 0,
            x_hot: None,
            y_hot: None,
            source: GfxPlaneSource::DmaBuf(1),
        }
    }

    /// A memfd standing in for a dma-buf: `bytes`, mapped read-only.
    fn memfd_map(bytes: &[u8]) -> DmaBufMap {
        let fd =
            nix::sys::memfd::memfd_create(c"uvfio-gfx-test", nix::sys::memfd::MFdFlags::empty())
                .unwrap();
        nix::unistd::write(&fd, bytes).unwrap();
        DmaBufMap::new(
            fd.as_fd(),
            bytes.len(),
            Object::DmaBuf {
                device: "t".into(),
                id: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_dmabuf_framebuffer_reads_pixels_rows_and_snapshots_with_stride() {
        // 3x2 XRGB8888, stride 16 (one pixel of padding per row).
        let mut bytes = vec![0u8; 32];
        for y in 0..2u32 {
            for x in 0..3u32 {
                let v = DrmFourcc::XRGB8888
                    .from_rgb([x as u8 * 10, y as u8 * 20, 7])
                    .unwrap();
                let at = (y * 16 + x * 4) as usize;
                bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        let fb = Framebuffer::from_dmabuf(memfd_map(&bytes), &plane(DrmFourcc::XRGB8888, 3, 2, 16))
            .unwrap();
        assert_eq!(
            (fb.width(), fb.height(), fb.stride(), fb.row_bytes()),
            (3, 2, 16, 12)
        );
        assert_eq!(fb.pixel(2, 1).unwrap(), 0x0014_1407);
        let img = fb.snapshot().unwrap();
        assert_eq!(img.rgb(2, 1), Some([20, 20, 7]));
        assert_eq!(img.rgb(0, 0), Some([0, 0, 7]));
        assert_eq!(img.rgb(3, 0), None);
        assert_eq!(img.row(2), None);
        let mut ppm = Vec::new();
        img.write_ppm(&mut ppm).unwrap();
        assert!(ppm.starts_with(b"P6\n3 2\n255\n"));
        assert_eq!(ppm.len(), 11 + 3 * 2 * 3);
        assert_eq!(&ppm[ppm.len() - 3..], &[20, 20, 7]);
        // Bounds: outside the plane, wrong row length, writes to a dma-buf.
        assert_eq!(fb.pixel(3, 0).unwrap_err().errno(), Errno::ERANGE);
        assert_eq!(fb.pixel(0, 2).unwrap_err().errno(), Errno::ERANGE);
        assert_eq!(
            fb.read_row(0, &mut [0; 11]).unwrap_err().errno(),
            Errno::ERANGE
        );
        assert_eq!(fb.set_pixel(0, 0, 1).unwrap_err().errno(), Errno::EACCES);
    }

    #[test]
    fn planes_that_do_not_fit_or_cannot_be_read_are_refused() {
        let map = || memfd_map(&[0u8; 64]);
        let refuse = |p: GfxPlane| Framebuffer::from_dmabuf(map(), &p).unwrap_err().errno();
        // 4x4 XRGB8888 with stride 16 is exactly 64 bytes: fits.
        Framebuffer::from_dmabuf(map(), &plane(DrmFourcc::XRGB8888, 4, 4, 16)).unwrap();
        // The last row's padding may be missing: 3 pixels, stride 16, 4 rows = 60 bytes.
        Framebuffer::from_dmabuf(map(), &plane(DrmFourcc::XRGB8888, 3, 4, 16)).unwrap();
        assert_eq!(refuse(plane(DrmFourcc::XRGB8888, 4, 5, 16)), Errno::ERANGE);
        assert_eq!(refuse(plane(DrmFourcc::XRGB8888, 5, 1, 16)), Errno::EINVAL);
        assert_eq!(refuse(plane(DrmFourcc::XRGB8888, 0, 1, 16)), Errno::EINVAL);
        assert_eq!(
            refuse(plane(DrmFourcc(0x3231_564e), 4, 4, 16)),
            Errno::EOPNOTSUPP
        ); // NV12
        let mut tiled = plane(DrmFourcc::XRGB8888, 4, 4, 16);
        tiled.drm_format_mod = 1;
        assert_eq!(refuse(tiled), Errno::EOPNOTSUPP);
        assert_eq!(
            refuse(plane(DrmFourcc::XRGB8888, u32::MAX, u32::MAX, u32::MAX)),
            Errno::EINVAL
        );
        assert_eq!(
            refuse(plane(DrmFourcc::XRGB8888, 1, u32::MAX, u32::MAX)),
            Errno::ERANGE
        );
        let map = memfd_map(&[1, 2, 3]);
        let mut b = [0u8; 2];
        map.read_bytes(1, &mut b).unwrap();
        assert_eq!(b, [2, 3]);
        assert_eq!(
            map.read_bytes(2, &mut b).unwrap_err().errno(),
            Errno::ERANGE
        );
        assert_eq!(
            map.read_bytes(u64::MAX, &mut b).unwrap_err().errno(),
            Errno::ERANGE
        );
    }

    #[test]
    fn formats_convert_and_display() {
        assert_eq!(DrmFourcc::XRGB8888.0, 0x3432_5258);
        assert_eq!(DrmFourcc::XRGB8888.to_string(), "XR24");
        for f in [
            DrmFourcc::XRGB8888,
            DrmFourcc::ARGB8888,
            DrmFourcc::XBGR8888,
            DrmFourcc::ABGR8888,
            DrmFourcc::RGB888,
            DrmFourcc::BGR888,
        ] {
            let v = f.from_rgb([1, 2, 3]).unwrap();
            assert_eq!(f.to_rgb(v), Some([1, 2, 3]), "{f}");
        }
        let v = DrmFourcc::RGB565.from_rgb([255, 0, 255]).unwrap();
        assert_eq!(v, 0xf81f);
        assert_eq!(DrmFourcc::RGB565.to_rgb(v), Some([255, 0, 255]));
        assert_eq!(DrmFourcc(0).bytes_per_pixel(), None);
        assert_eq!(DrmFourcc(0).to_rgb(0), None);
        assert_eq!(DrmFourcc(0).to_string(), "????");
    }
}
