//! Screenshot of a mediated display: draw a test pattern through the device, read the guest's
//! primary plane back through the graphics plane API and save it as a PPM image.
//!
//! ```text
//! gfxshot [DEVICE] [--iommu MODE] [--out PATH] [--mode WxH]
//!     DEVICE          /sys/bus/mdev/devices/<uuid> of an mdpy or mbochs instance, or the
//!                     name of an environment variable holding it, e.g. UVFIO_TEST_MBOCHS
//!                     (default: $UVFIO_TEST_MDPY)
//!     --iommu MODE    vfio_type1_iommu, vfio_type1v2_iommu, iommufd_compat_type1,
//!                     iommufd_compat_type1v2 or iommufd (default: the best the host has)
//!     --out PATH      where the PPM (P6) goes (default: /tmp/plane.ppm)
//!     --mode WxH      the mode to set on a Bochs dispi device (mbochs; default 640x480)
//! UVFIO_VM_FLAVOR=full tests/vm/cargo-vm run --example gfxshot -- --iommu iommufd
//! UVFIO_VM_FLAVOR=full tests/vm/cargo-vm run --example gfxshot -- UVFIO_TEST_MBOCHS
//! ```
//!
//! - A **region plane** (`mdpy`): the plane names a region; the pattern is drawn into it and
//!   the plane is read back from it, both through the mapping.
//! - A **dma-buf plane** (`mbochs`): a 32-bit mode is set through the Bochs dispi registers in
//!   BAR2, the pattern is drawn into BAR0 (the video memory), and the plane is queried (the
//!   sample's `ENOMEM` on the first query after a mode set is retried by the library) and its
//!   dma-buf obtained. The dma-buf is read through its mapping where the exporter allows one;
//!   `mbochs` does not (its fd is read-only), so the pixels are read through BAR0 at the mode's
//!   offset, which holds the same pages. The example says which path it took.
//!
//! Prints the plane's width, height, format and stride, and exits 0 only when every pixel read
//! back is the one drawn. Without a device argument and without `UVFIO_TEST_MDPY` on the
//! `debian` flavour of the test VM (no mdev samples there), it prints `SKIPPED` and exits 0.

use std::process::ExitCode;

use uvfio::device::gfx::{BochsDispi, BochsMode, Framebuffer, Image};
use uvfio::device::{DrmPlaneType, GfxPlane, GfxPlaneKind, GfxPlaneSource};
use uvfio::{Device, DmaSpace, IommuMode};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    device: Option<String>,
    mode: IommuMode,
    out: String,
    size: (u16, u16),
}

fn usage() -> ! {
    eprintln!("usage: gfxshot [DEVICE] [--iommu MODE] [--out PATH] [--mode WxH]");
    std::process::exit(2);
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        device: None,
        mode: IommuMode::best_available(),
        out: "/tmp/plane.ppm".into(),
        size: (640, 480),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iommu" => args.mode = it.next().unwrap_or_else(|| usage()).parse()?,
            "--out" => args.out = it.next().unwrap_or_else(|| usage()),
            "--mode" => {
                let v = it.next().unwrap_or_else(|| usage());
                let (w, h) = v.split_once('x').ok_or("--mode wants WxH")?;
                args.size = (w.parse()?, h.parse()?);
            }
            "-h" | "--help" => usage(),
            _ if a.starts_with('-') => usage(),
            _ if args.device.is_none() => args.device = Some(a),
            _ => usage(),
        }
    }
    Ok(args)
}

/// The test pattern: eight colour bars over the top half, a red/green gradient with a blue
/// checkerboard below; every pixel's colour depends on its position.
fn pattern(width: u32, height: u32) -> impl Fn(u32, u32) -> [u8; 3] {
    const BARS: [[u8; 3]; 8] = [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
        [0, 0, 0],
    ];
    move |x, y| {
        if y < height / 2 {
            BARS[(x * 8 / width.max(1)) as usize % 8]
        } else {
            let r = (x * 255 / width.max(1)) as u8;
            let g = (y * 255 / height.max(1)) as u8;
            let b = if (x / 16 + y / 16) % 2 == 0 {
                0x20
            } else {
                0xe0
            };
            [r, g, b]
        }
    }
}

/// The plane's pixels against the pattern: the number of pixels that differ.
fn mismatches(img: &Image, expect: &impl Fn(u32, u32) -> [u8; 3]) -> u64 {
    let mut bad = 0;
    for y in 0..img.height() {
        for x in 0..img.width() {
            if img.rgb(x, y) != Some(expect(x, y)) {
                if bad < 5 {
                    eprintln!(
                        "gfxshot: pixel ({x}, {y}) is {:?}, drew {:?}",
                        img.rgb(x, y),
                        expect(x, y)
                    );
                }
                bad += 1;
            }
        }
    }
    bad
}

fn describe(plane: &GfxPlane) -> String {
    format!(
        "{}x{} {} (fourcc {:#010x}), stride {}, {} bytes",
        plane.width,
        plane.height,
        plane.format(),
        plane.drm_format,
        plane.stride,
        plane.size
    )
}

/// mdpy: draw into the plane's region, query the plane again and read it from the region.
fn region_plane(device: &Device) -> Res<(GfxPlane, Image, &'static str)> {
    let plane = device
        .gfx_plane(GfxPlaneKind::Region, DrmPlaneType::PRIMARY)?
        .ok_or("the display shows no primary plane")?;
    let fb = device.gfx_framebuffer(&plane)?;
    fb.draw(pattern(plane.width, plane.height))?;
    let plane = device
        .gfx_plane(GfxPlaneKind::Region, DrmPlaneType::PRIMARY)?
        .ok_or("the primary plane went away")?;
    let img = device.gfx_framebuffer(&plane)?.snapshot()?;
    Ok((plane, img, "the plane's region (mapped)"))
}

/// mbochs: set a mode, draw into the video memory, query the plane and get its dma-buf; read
/// through the dma-buf where it can be mapped, else through BAR0.
fn dmabuf_plane(device: &Device, (w, h): (u16, u16)) -> Res<(GfxPlane, Image, &'static str)> {
    let dispi = BochsDispi::new(device)?;
    let mode = BochsMode::new(w, h, 32);
    dispi.set_mode(&mode)?;
    println!(
        "gfxshot: set Bochs dispi mode {w}x{h}x32 (dispi id {:#06x})",
        dispi.id()?
    );
    let plane = device
        .gfx_plane(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)?
        .ok_or("no primary plane after the mode set")?;
    // Draw through BAR0, the video memory behind the plane.
    dispi
        .framebuffer(&plane)?
        .draw(pattern(plane.width, plane.height))?;
    let GfxPlaneSource::DmaBuf(id) = plane.source else {
        return Err("a dma-buf query answered with a region plane".into());
    };
    let dmabuf = device.gfx_dmabuf(id)?;
    println!("gfxshot: dma-buf {id}: {} bytes", dmabuf.size()?);
    let (fb, path): (Framebuffer, _) = match dmabuf.map() {
        Ok(map) => (
            Framebuffer::from_dmabuf(map, &plane)?,
            "the dma-buf (mapped)",
        ),
        Err(e) => {
            println!("gfxshot: {e}");
            (
                dispi.framebuffer(&plane)?,
                "BAR0 (the video memory behind the dma-buf)",
            )
        }
    };
    let img = fb.snapshot()?;
    dispi.disable()?;
    Ok((plane, img, path))
}

fn run(args: Args) -> Res<bool> {
    // A path, or the name of a variable that holds one (the test VM's UVFIO_TEST_*).
    let path = match args.device {
        Some(path) if path.starts_with('/') => path,
        other => {
            let var = other.unwrap_or_else(|| "UVFIO_TEST_MDPY".into());
            match std::env::var(&var) {
                Ok(path) => path,
                Err(_) if std::env::var("UVFIO_VM_FLAVOR").as_deref() == Ok("debian") => {
                    println!(
                        "SKIPPED gfxshot: {var} is not set: the debian flavour's kernel has no \
                         mdev display samples (run with UVFIO_VM_FLAVOR=full)"
                    );
                    return Ok(true);
                }
                Err(_) => {
                    return Err(format!(
                        "{var} is not set: pass the display mdev's sysfs directory or a \
                         variable that holds it"
                    )
                    .into())
                }
            }
        }
    };
    let space = DmaSpace::open(args.mode)?;
    let device = space.open_device_at(&path)?;
    println!("gfxshot: {path} ({}) via {}", device.name(), space.mode());
    let (plane, img, read_from) =
        if device.gfx_plane_supported(GfxPlaneKind::Region, DrmPlaneType::PRIMARY)? {
            region_plane(&device)?
        } else if device.gfx_plane_supported(GfxPlaneKind::DmaBuf, DrmPlaneType::PRIMARY)? {
            dmabuf_plane(&device, args.size)?
        } else {
            return Err(
                "the device offers its primary plane neither in a region nor as a dma-buf".into(),
            );
        };
    println!("gfxshot: plane {}", describe(&plane));
    println!("gfxshot: read through {read_from}");
    let file = std::fs::File::create(&args.out).map_err(|e| format!("create {}: {e}", args.out))?;
    img.write_ppm(std::io::BufWriter::new(file))?;
    let bad = mismatches(&img, &pattern(plane.width, plane.height));
    println!(
        "gfxshot: width {} height {} format {} -> {} ({} of {} pixels differ from the pattern)",
        img.width(),
        img.height(),
        img.format(),
        args.out,
        bad,
        u64::from(img.width()) * u64::from(img.height())
    );
    Ok(bad == 0)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(run);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("gfxshot: FAILED: the plane does not hold what was drawn");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gfxshot: error: {e}");
            ExitCode::FAILURE
        }
    }
}
