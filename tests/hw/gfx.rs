//! Hardware tests of the graphics planes (`uvfio::device::gfx`) on the kernel's display samples,
//! in every IOMMU mode: `mdpy` (a region plane) and `mbochs` (a dma-buf plane, its mode set
//! through the Bochs dispi registers in BAR2). Pixels are written through the device (mdpy's
//! framebuffer region, mbochs' BAR0) and checked through the plane API; each kernel quirk is
//! checked to come back as its typed result. The `full` flavour only (Debian's kernels have no
//! mdev samples): skipped visibly elsewhere. The non-display side (`NotSupported` on a PCI
//! device) is `pci::graphics_ioctls_are_not_supported_on_pci_devices`.

use std::os::fd::AsFd;

use uvfio::device::gfx::{BochsDispi, BochsMode, Framebuffer};
use uvfio::device::{DrmFourcc, DrmPlaneType, GfxPlane, GfxPlaneKind, GfxPlaneSource, RegionIndex};
use uvfio::{DmaSpace, Errno, Error, ErrorKind, MapOptions};

use crate::common;

/// The mdev in `var` opened in a fresh space of the test mode, or `None` (skipped visibly) on
/// a kernel without the samples.
fn open_mdev(test: &str, var: &str) -> Option<(DmaSpace, uvfio::Device)> {
    let path = std::env::var(var).ok();
    if !common::needs_full(test, "the mdpy/mbochs mdev samples", path.is_some()) {
        return None;
    }
    let path = path.unwrap_or_else(|| panic!("{var} is not set on the full flavour"));
    if !common::needs_iommu(
        test,
        "mdev devices need an IOMMU model (type1 or an IOAS), and a no-IOMMU container has none",
    ) {
        return None;
    }
    let space = common::space();
    let device = space
        .open_device_at(&path)
        .unwrap_or_else(|e| panic!("open {var}={path} in {}: {e}", space.mode()));
    Some((space, device))
}

/// The test pattern: a colour for every (x, y), different for neighbours and rows.
fn pattern(x: u32, y: u32) -> [u8; 3] {
    [
        x as u8,
        y as u8,
        (x.wrapping_mul(7) ^ y.wrapping_mul(13)) as u8,
    ]
}

fn xrgb(x: u32, y: u32) -> u32 {
    DrmFourcc::XRGB8888.from_rgb(pattern(x, y)).unwrap()
}

fn primary(device: &uvfio::Device, kind: GfxPlaneKind) -> Option<GfxPlane> {
    device
        .gfx_plane(kind, DrmPlaneType::PRIMARY)
        .unwrap_or_else(|e| panic!("gfx_plane({kind:?}): {e}"))
}

/// Every pixel of `fb` against [`pattern`], rows `y0..` of it.
fn assert_pattern(fb: &Framebuffer, y0: u32) {
    let img = fb.snapshot().unwrap();
    assert_eq!(img.format(), DrmFourcc::XRGB8888);
    assert_eq!((img.width(), img.height()), (fb.width(), fb.height()));
    for y in 0..img.height() {
        for x in 0..img.width() {
            assert_eq!(
                img.rgb(x, y),
                Some(pattern(x, y + y0)),
                "pixel ({x}, {y}) of the {}x{} plane",
                img.width(),
                img.height()
            );
        }
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mdpy_region_plane_pixels_written_through_the_region_read_through_the_plane() {
    let Some((_space, device)) = open_mdev("mdpy_region_plane", "UVFIO_TEST_MDPY") else {
        return;
    };
    let primary_of = |kind| {
        device
            .gfx_plane_supported(kind, DrmPlaneType::PRIMARY)
            .unwrap()
    };
    assert!(primary_of(GfxPlaneKind::Region));
    assert!(!primary_of(GfxPlaneKind::DmaBuf));
    // A kind the device does not offer: the kernel's EINVAL, typed as such.
    let err = device
        .gfx_plane(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );

    // mdpy-xga: 1024x768 XRGB8888, in region 16.
    let plane = primary(&device, GfxPlaneKind::Region).expect("mdpy always shows its plane");
    assert_eq!(plane.format(), DrmFourcc::XRGB8888, "{plane:?}");
    assert_eq!((plane.width, plane.height, plane.stride), (1024, 768, 4096));
    assert_eq!(plane.drm_format_mod, 0);
    assert_eq!(plane.source, GfxPlaneSource::Region(RegionIndex(16)));
    assert!(u64::from(plane.size) >= 4096 * 768, "{plane:?}");

    // Quirk: the region is past num_regions, which region_info refuses; the plane API opens it.
    assert_eq!(device.info().num_regions, 9);
    let err = device.region_info(16u32).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    let fb = device.gfx_framebuffer(&plane).unwrap();
    let region = fb.region().expect("a region plane");
    assert_eq!(region.index(), RegionIndex(16));
    assert!(region.size() >= 4096 * 768);
    assert_eq!(region.mapped_ranges().first().map(|r| r.start), Some(0));
    assert_eq!(
        (
            fb.width(),
            fb.height(),
            fb.stride(),
            fb.bytes_per_pixel(),
            fb.offset()
        ),
        (1024, 768, 4096, 4, 0)
    );

    // Write the pattern through the device's framebuffer region (raw, little-endian 32-bit
    // pixels at y * stride + x * 4), read it back through the plane.
    let mut row = vec![0u8; 4096];
    for y in 0..768 {
        for x in 0..1024 {
            row[x as usize * 4..][..4].copy_from_slice(&xrgb(x, y).to_le_bytes());
        }
        region.write_bytes(u64::from(y) * 4096, &row).unwrap();
    }
    let plane_again = primary(&device, GfxPlaneKind::Region).unwrap();
    assert_eq!(plane_again, plane);
    let fb2 = device.gfx_framebuffer(&plane_again).unwrap();
    assert_pattern(&fb2, 0);
    assert_eq!(fb2.pixel(1023, 767).unwrap(), xrgb(1023, 767));
    // The plane as a PPM image (what examples/gfxshot.rs saves): header, then RGB rows.
    let mut ppm = Vec::new();
    fb2.snapshot().unwrap().write_ppm(&mut ppm).unwrap();
    let header = b"P6\n1024 768\n255\n";
    assert!(ppm.starts_with(header), "{:?}", &ppm[..16]);
    let body = &ppm[header.len()..];
    assert_eq!(body.len(), 1024 * 768 * 3);
    for (i, px) in body.chunks_exact(3).enumerate() {
        let (x, y) = (i as u32 % 1024, i as u32 / 1024);
        assert_eq!(px, pattern(x, y), "PPM pixel ({x}, {y})");
    }

    // And the other way: a pixel set through the plane is in the region.
    fb.set_pixel(5, 7, 0x00ab_cdef).unwrap();
    assert_eq!(region.read_u32(7 * 4096 + 5 * 4).unwrap(), 0x00ab_cdef);
    assert_eq!(fb2.pixel(5, 7).unwrap(), 0x00ab_cdef);

    // Quirk: mdpy's pread of the framebuffer ignores the offset (each of its 4-byte accesses
    // reads bytes 0..4), which is why pixels are only ever read through the mapping.
    fb.set_pixel(0, 0, 0x00c0_ffee).unwrap();
    let mut via_pread = [0u8; 8];
    let at = region.info().offset + 7 * 4096 + 5 * 4;
    let n = nix::sys::uio::pread(device.as_fd(), &mut via_pread, at as i64).unwrap();
    assert_eq!(n, 8);
    let first = 0x00c0_ffee_u32.to_le_bytes();
    assert_eq!(
        via_pread,
        [first, first].concat()[..],
        "mdpy's pread at pixels (5, 7) and (6, 7) reads pixel (0, 0) twice"
    );
    fb.set_pixel(0, 0, xrgb(0, 0)).unwrap();

    // Bounds: nothing outside the plane is reachable.
    for (x, y) in [(1024, 0), (0, 768), (u32::MAX, u32::MAX)] {
        let err = fb.pixel(x, y).unwrap_err();
        assert_eq!(err.errno(), Errno::ERANGE, "({x}, {y}): {err}");
    }
    let err = fb.read_row(0, &mut [0u8; 4095]).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    // A plane bigger than the region is refused when the framebuffer is made.
    let mut huge = plane;
    huge.height = 100_000;
    let err = device.gfx_framebuffer(&huge).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    // A dma-buf plane has no region of its own.
    let mut dmabuf_plane = plane;
    dmabuf_plane.source = GfxPlaneSource::DmaBuf(1);
    let err = device.gfx_framebuffer(&dmabuf_plane).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mbochs_dmabuf_plane_after_a_mode_set_pixels_written_through_bar0() {
    let Some((_space, device)) = open_mdev("mbochs_dmabuf_plane", "UVFIO_TEST_MBOCHS") else {
        return;
    };
    let primary_of = |kind| {
        device
            .gfx_plane_supported(kind, DrmPlaneType::PRIMARY)
            .unwrap()
    };
    assert!(primary_of(GfxPlaneKind::DmaBuf));
    assert!(!primary_of(GfxPlaneKind::Region));

    let dispi = BochsDispi::new(&device).unwrap();
    let id = dispi.id().unwrap();
    assert!((0xb0c0..=0xb0c5).contains(&id), "{id:#x}");
    assert_eq!(dispi.video_memory().unwrap(), 16 << 20, "mbochs-medium");
    // The registers keep what an earlier user set: start from a disabled display.
    dispi.disable().unwrap();
    assert_eq!(dispi.mode().unwrap(), None);
    assert_eq!(primary(&device, GfxPlaneKind::DmaBuf), None);

    // The pattern, 640 pixels wide and 496 rows (16 more than shown, for the panned mode
    // below), written through BAR0, which is the video memory (mapped).
    let bar0 = device
        .region_with(RegionIndex::BAR0, MapOptions::new().require_map())
        .unwrap();
    assert_eq!(bar0.size(), 16 << 20);
    let mut row = vec![0u8; 2560];
    for y in 0..496 {
        for x in 0..640 {
            row[x as usize * 4..][..4].copy_from_slice(&xrgb(x, y).to_le_bytes());
        }
        bar0.write_bytes(u64::from(y) * 2560, &row).unwrap();
    }

    // Quirk: the first query after setting a new mode fails with ENOMEM, the second works.
    let vga = BochsMode::new(640, 480, 32);
    dispi.set_mode(&vga).unwrap();
    assert_eq!(dispi.mode().unwrap(), Some(vga));
    let err = device
        .gfx_plane_once(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Ioctl {
                errno: Errno::ENOMEM,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::OutOfMemory);
    let plane = device
        .gfx_plane_once(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)
        .unwrap()
        .expect("a plane once the mode is set");
    assert_eq!(plane.format(), DrmFourcc::XRGB8888, "{plane:?}");
    assert_eq!((plane.width, plane.height, plane.stride), (640, 480, 2560));
    assert_eq!(plane.size, 640 * 480 * 4);
    let GfxPlaneSource::DmaBuf(dmabuf_id) = plane.source else {
        panic!("not a dma-buf plane: {plane:?}");
    };

    // The dma-buf: sized as the plane, read-only, and its mmap refused (typed).
    let dmabuf = device.gfx_dmabuf(dmabuf_id).unwrap();
    assert_eq!(dmabuf.id(), dmabuf_id);
    assert_eq!(dmabuf.size().unwrap(), u64::from(plane.size));
    let flags = nix::fcntl::fcntl(dmabuf.as_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(
        flags & libc::O_ACCMODE,
        libc::O_RDONLY,
        "the dma-buf fd's access mode"
    );
    let err = dmabuf.map().unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotSupported {
                op: "mmap",
                errno: Errno::EINVAL,
                ..
            }
        ),
        "{err}"
    );
    let err = device.gfx_dmabuf(dmabuf_id + 1000).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOENT, "{err}");

    // The pixels, through BAR0 at the mode's offset: what was written.
    let fb = dispi.framebuffer(&plane).unwrap();
    assert_eq!(
        (fb.width(), fb.height(), fb.stride(), fb.offset()),
        (640, 480, 2560, 0)
    );
    assert_pattern(&fb, 0);
    bar0.write_u32(479 * 2560 + 639 * 4, 0x0012_3456).unwrap();
    assert_eq!(fb.pixel(639, 479).unwrap(), 0x0012_3456);
    bar0.write_u32(479 * 2560 + 639 * 4, xrgb(639, 479))
        .unwrap();

    // Quirk: BAR0's pread path is 2 pages off its mmap (and the dma-buf): a framebuffer over
    // an unmapped BAR0 is refused rather than read wrong.
    let unmapped = device
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    let mut via_pread = [0u8; 64];
    unmapped.read_bytes(0, &mut via_pread).unwrap();
    let mut via_map = [0u8; 64];
    bar0.read_bytes(0x2000, &mut via_map).unwrap();
    assert_eq!(
        via_pread, via_map,
        "mbochs' BAR0 pread at 0 reads mmap offset 0x2000"
    );
    let err = Framebuffer::new(unmapped, 0, &plane).unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");

    // Another new mode: gfx_plane retries the ENOMEM itself. Panned 16 rows down, so the
    // plane starts at row 16 of the pattern (offset 16 * 2560, page-aligned as mbochs wants).
    let panned = BochsMode {
        y_offset: 16,
        ..vga
    };
    dispi.set_mode(&panned).unwrap();
    let plane2 = primary(&device, GfxPlaneKind::DmaBuf).expect("a plane");
    assert_ne!(plane2.source, plane.source, "a new mode, a new dma-buf");
    assert_eq!((plane2.width, plane2.height), (640, 480));
    // The earlier plane's geometry matches, so it is accepted; a different one is not.
    let fb2 = dispi.framebuffer(&plane2).unwrap();
    assert_eq!(fb2.offset(), 16 * 2560);
    assert_pattern(&fb2, 16);
    let wide = BochsMode::new(800, 600, 32);
    dispi.set_mode(&wide).unwrap();
    let err = dispi.framebuffer(&plane).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "a stale plane: {err}");
    let plane3 = primary(&device, GfxPlaneKind::DmaBuf).expect("a plane");
    assert_eq!(
        (plane3.width, plane3.height, plane3.stride),
        (800, 600, 3200)
    );
    dispi.framebuffer(&plane3).unwrap();

    // A mode seen before has its dma-buf already: no ENOMEM then, even without the retry.
    dispi.set_mode(&vga).unwrap();
    let again = device
        .gfx_plane_once(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)
        .unwrap()
        .expect("a plane");
    assert_eq!(again, plane);

    // Modes the video memory cannot hold are refused before any register is written.
    let err = dispi.set_mode(&BochsMode::new(4096, 4096, 32)).unwrap_err();
    assert_eq!(err.errno(), Errno::ERANGE, "{err}");
    assert_eq!(dispi.mode().unwrap(), Some(vga));

    // Disabled: no plane, and no framebuffer for the old one.
    dispi.disable().unwrap();
    assert_eq!(primary(&device, GfxPlaneKind::DmaBuf), None);
    let err = dispi.framebuffer(&plane).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    // The cursor plane: mbochs has none (a zeroed answer, typed as None).
    assert_eq!(
        device
            .gfx_plane(GfxPlaneKind::DmaBuf, DrmPlaneType::CURSOR)
            .unwrap(),
        None
    );
}
