//! Unit tests of `Region` over a memfd standing in for a device fd.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};

use super::backing::Backing;
use super::raw::RawRegion;
use super::*;
use crate::device::{RegionCap, RegionFlags, RegionIndex, RegionInfo};
use crate::error::{Errno, Error};
use crate::uapi::caps::SparseArea;

/// A plain file standing in for a device fd.
#[derive(Debug)]
struct TestFile(std::fs::File);

impl Backing for TestFile {
    fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        nix::sys::uio::pread(&self.0, buf, offset).map_err(Errno::from_nix)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        nix::sys::uio::pwrite(&self.0, buf, offset).map_err(Errno::from_nix)
    }

    fn name(&self) -> &str {
        "test-file"
    }
}

type Region = RawRegion<TestFile>;

const PAGE: u64 = 4096;

/// A memfd standing in for a device fd: the region lives at fd offset `at`, its bytes are
/// `i as u8` for byte `i`.
fn file(at: u64, size: u64) -> std::fs::File {
    let fd =
        nix::sys::memfd::memfd_create(c"uvfio-region-test", nix::sys::memfd::MFdFlags::empty())
            .unwrap();
    let f = std::fs::File::from(fd);
    f.set_len(at + size.next_multiple_of(PAGE)).unwrap();
    let bytes: Vec<u8> = (0..size).map(|i| i as u8).collect();
    nix::sys::uio::pwrite(&f, &bytes, at as i64).unwrap();
    f
}

fn info(flags: RegionFlags, size: u64, at: u64, sparse: Option<&[(u64, u64)]>) -> RegionInfo {
    RegionInfo {
        index: RegionIndex::BAR0,
        flags,
        size,
        offset: at,
        caps: sparse
            .map(|areas| {
                vec![RegionCap::SparseMmap(
                    areas
                        .iter()
                        .map(|&(offset, size)| SparseArea { offset, size })
                        .collect(),
                )]
            })
            .unwrap_or_default(),
    }
}

fn region(
    flags: RegionFlags,
    size: u64,
    sparse: Option<&[(u64, u64)]>,
    exclude: &[Range<u64>],
) -> Region {
    let at = 2 * PAGE;
    Region::new(
        TestFile(file(at, size)),
        info(flags, size, at, sparse),
        &MapOptions::new(),
        exclude,
    )
    .unwrap()
}

fn rw_mmap() -> RegionFlags {
    RegionFlags::READ | RegionFlags::WRITE | RegionFlags::MMAP
}

#[test]
fn typed_accessors_are_little_endian_on_both_paths() {
    // Mapped pages 0 and 2, page 1 cut out (as an MSI-X table would be).
    let r = region(rw_mmap(), 3 * PAGE, None, &[0x1000..0x1010]);
    assert_eq!(r.mapped_ranges(), vec![0..0x1000, 0x2000..0x3000]);
    for base in [0u64, 0x1000, 0x2000] {
        assert_eq!(r.is_mapped(base), base != 0x1000);
        assert_eq!(r.read_u8(base + 1).unwrap(), 1);
        assert_eq!(r.read_u16(base + 2).unwrap(), 0x0302);
        assert_eq!(r.read_u32(base + 4).unwrap(), 0x0706_0504);
        assert_eq!(r.read_u64(base + 8).unwrap(), 0x0f0e_0d0c_0b0a_0908);
        r.write_u32(base + 0x10, 0xa1b2_c3d4).unwrap();
        let mut b = [0u8; 4];
        r.read_bytes(base + 0x10, &mut b).unwrap();
        assert_eq!(b, [0xd4, 0xc3, 0xb2, 0xa1]);
        r.write_u64(base + 0x18, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(r.read_u64(base + 0x18).unwrap(), 0x1122_3344_5566_7788);
        r.write_u16(base + 0x20, 0xbeef).unwrap();
        r.write_u8(base + 0x22, 0x7f).unwrap();
        assert_eq!(r.read_u32(base + 0x20).unwrap() & 0x00ff_ffff, 0x7f_beef);
    }
    // The unmapped page was really served by pwrite: the file has the value.
    let mut b = [0u8; 4];
    let f = &r.backing.0;
    nix::sys::uio::pread(f, &mut b, (2 * PAGE + 0x1010) as i64).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xa1b2_c3d4);
}

#[test]
fn nothing_mapped_at_offset_0() {
    // As e1000e BAR3: the MSI-X table in page 0, mapped pages after it.
    let r = region(rw_mmap(), 2 * PAGE, None, &[0..0x50]);
    assert_eq!(r.mapped_ranges(), vec![PAGE..2 * PAGE]);
    assert!(!r.is_mapped(0) && r.is_mapped(PAGE));
    assert_eq!(r.read_u32(4).unwrap(), 0x0706_0504);
    assert_eq!(r.read_u32(PAGE + 4).unwrap(), 0x0706_0504);
    r.write_u64(PAGE + 8, 42).unwrap();
    assert_eq!(r.read_u64(PAGE + 8).unwrap(), 42);
    assert_eq!(r.read_u32(PAGE + 2).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(r.read_u32(2 * PAGE).unwrap_err().errno(), Errno::ERANGE);
}

#[test]
fn bounds_alignment_and_overflow_are_typed_errors() {
    let r = region(rw_mmap(), PAGE, None, &[]);
    let e = r.read_u32(PAGE).unwrap_err();
    assert_eq!(e.errno(), Errno::ERANGE, "{e}");
    let e = r.read_u32(PAGE - 2).unwrap_err();
    assert_eq!(e.errno(), Errno::ERANGE, "{e}");
    let e = r.read_u64(u64::MAX - 7).unwrap_err();
    assert_eq!(e.errno(), Errno::EOVERFLOW, "{e}");
    let e = r.write_u32(u64::MAX, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EOVERFLOW, "{e}");
    let e = r.read_u32(2).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert!(
        matches!(e, Error::InvalidArgument { op: "read_u32", .. }),
        "{e}"
    );
    let e = r.write_u16(1, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    let e = r.read_bytes(PAGE - 1, &mut [0u8; 2]).unwrap_err();
    assert_eq!(e.errno(), Errno::ERANGE, "{e}");
    let e = r.write_bytes(u64::MAX, &[0u8; 2]).unwrap_err();
    assert_eq!(e.errno(), Errno::EOVERFLOW, "{e}");
    assert!(
        e.to_string().contains("region 0 of device test-file"),
        "{e}"
    );
    // Empty bulk accesses at the end are fine.
    r.read_bytes(PAGE, &mut []).unwrap();
}

#[test]
fn the_same_errors_on_the_pread_path() {
    let r = region(RegionFlags::READ | RegionFlags::WRITE, 256, None, &[]);
    assert!(r.mapped_ranges().is_empty());
    assert_eq!(r.read_u32(252).unwrap(), 0xfffe_fdfc);
    assert_eq!(r.read_u32(256).unwrap_err().errno(), Errno::ERANGE);
    assert_eq!(r.read_u32(3).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(r.read_u64(u64::MAX).unwrap_err().errno(), Errno::EOVERFLOW);
}

#[test]
fn read_only_and_write_only_regions() {
    let ro = region(RegionFlags::READ | RegionFlags::MMAP, PAGE, None, &[]);
    assert!(ro.is_mapped(0));
    assert_eq!(ro.read_u8(5).unwrap(), 5);
    let e = ro.write_u32(0, 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotSupported {
                errno: Errno::EACCES,
                ..
            }
        ),
        "{e}"
    );
    assert!(ro.write_bytes(0, &[1]).is_err());
    assert_eq!(
        ro.read_u8(0).unwrap(),
        0,
        "the failed write did not reach the device"
    );

    let wo = region(RegionFlags::WRITE | RegionFlags::MMAP, PAGE, None, &[]);
    assert!(wo.is_mapped(0));
    let e = wo.read_u32(0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotSupported {
                errno: Errno::EACCES,
                ..
            }
        ),
        "{e}"
    );
    wo.write_u32(8, 0x0bad_cafe).unwrap();
    let f = &wo.backing.0;
    let mut b = [0u8; 4];
    nix::sys::uio::pread(f, &mut b, (2 * PAGE + 8) as i64).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x0bad_cafe);

    let none = region(RegionFlags::MMAP, PAGE, None, &[]);
    assert!(none.mapped_ranges().is_empty(), "no protection, no mapping");
    assert!(none.read_u8(0).is_err() && none.write_u8(0, 0).is_err());
}

#[test]
fn sparse_areas_only_and_bulk_copies_across_them() {
    let r = region(
        rw_mmap() | RegionFlags::CAPS,
        4 * PAGE,
        Some(&[(0, PAGE), (2 * PAGE, 2 * PAGE)]),
        &[],
    );
    assert_eq!(r.mapped_ranges(), vec![0..PAGE, 2 * PAGE..4 * PAGE]);
    assert!(!r.is_mapped(PAGE) && r.is_mapped(PAGE - 1) && r.is_mapped(2 * PAGE));
    assert!(r.mapped_ptr(PAGE).is_none());
    assert!(r.mapped_ptr(2 * PAGE + 4).is_some());
    // A read spanning mapped, unmapped and mapped again, starting and ending unaligned.
    let start = PAGE - 3;
    let mut buf = vec![0u8; PAGE as usize + 10];
    r.read_bytes(start, &mut buf).unwrap();
    let want: Vec<u8> = (start..start + buf.len() as u64).map(|i| i as u8).collect();
    assert_eq!(buf, want);
    // And a write across the same span, read back.
    let pattern: Vec<u8> = (0..buf.len()).map(|i| (i * 7) as u8).collect();
    r.write_bytes(start, &pattern).unwrap();
    let mut back = vec![0u8; pattern.len()];
    r.read_bytes(start, &mut back).unwrap();
    assert_eq!(back, pattern);
}

#[test]
fn sub_page_region_stops_at_its_size() {
    let r = region(rw_mmap(), 256, None, &[]);
    assert_eq!(r.mapped_ranges(), vec![0..256]);
    assert_eq!(r.read_u32(252).unwrap(), 0xfffe_fdfc);
    assert_eq!(r.read_u32(256).unwrap_err().errno(), Errno::ERANGE);
}

#[test]
fn never_and_required_policies() {
    let at = 2 * PAGE;
    let r = Region::new(
        TestFile(file(at, PAGE)),
        info(rw_mmap(), PAGE, at, None),
        MapOptions::new().never_map(),
        &[],
    )
    .unwrap();
    assert!(r.mapped_ranges().is_empty());
    assert_eq!(r.read_u16(2).unwrap(), 0x0302);

    let e = Region::new(
        TestFile(file(at, PAGE)),
        info(RegionFlags::READ | RegionFlags::WRITE, PAGE, at, None),
        MapOptions::new().require_map(),
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotSupported { .. }), "{e}");
    assert!(e.to_string().contains("VFIO_REGION_INFO_FLAG_MMAP"), "{e}");
}

#[test]
fn zero_size_and_malformed_regions_are_refused() {
    let at = 2 * PAGE;
    let e = Region::new(
        TestFile(file(at, PAGE)),
        info(RegionFlags::empty(), 0, at, None),
        &MapOptions::new(),
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotSupported {
                errno: Errno::ENXIO,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("no BAR0"), "{e}");

    let e = Region::new(
        TestFile(file(at, PAGE)),
        info(
            rw_mmap() | RegionFlags::CAPS,
            PAGE,
            at,
            Some(&[(0, 2 * PAGE)]),
        ),
        &MapOptions::new(),
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
}

#[test]
fn a_failed_mmap_is_a_typed_error() {
    // A file opened read-only cannot be mapped read-write: EACCES from mmap.
    let f = file(0, PAGE);
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
    let ro = std::fs::File::open(path).unwrap();
    let e = Region::new(
        TestFile(ro),
        info(rw_mmap(), PAGE, 0, None),
        &MapOptions::new(),
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Syscall {
                op: "mmap",
                errno: Errno::EACCES,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn region_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<super::Region>();
}

proptest::proptest! {
    /// Any access at any offset: either the right bytes or a typed error, never a panic,
    /// and the mapped and pread paths agree.
    #[test]
    fn accesses_agree_with_the_file(offset in 0u64..(3 * PAGE + 16), width in 0usize..4, bulk in 0usize..64) {
        let r = region(rw_mmap(), 3 * PAGE, None, &[0x1000..0x1004]);
        let size = 1u64 << width;
        let expect = |o: u64, n: u64| -> Vec<u8> { (o..o + n).map(|i| i as u8).collect() };
        let got = match width {
            0 => r.read_u8(offset).map(|v| v.to_le_bytes().to_vec()),
            1 => r.read_u16(offset).map(|v| v.to_le_bytes().to_vec()),
            2 => r.read_u32(offset).map(|v| v.to_le_bytes().to_vec()),
            _ => r.read_u64(offset).map(|v| v.to_le_bytes().to_vec()),
        };
        if offset + size <= 3 * PAGE && offset % size == 0 {
            proptest::prop_assert_eq!(got.unwrap(), expect(offset, size));
        } else {
            proptest::prop_assert!(got.is_err());
        }
        let mut buf = vec![0u8; bulk];
        let got = r.read_bytes(offset, &mut buf);
        if offset + bulk as u64 <= 3 * PAGE {
            got.unwrap();
            proptest::prop_assert_eq!(buf, expect(offset, bulk as u64));
        } else {
            proptest::prop_assert!(got.is_err());
        }
    }
}

#[test]
fn slots_are_checked_once_and_then_access_the_same_bytes() {
    // Mapped pages 0 and 2, page 1 cut out (as an MSI-X table would be).
    let r = region(rw_mmap(), 3 * PAGE, None, &[0x1000..0x1010]);
    for base in [0u64, 0x2000] {
        let s32 = r.slot::<u32>(base + 4).unwrap();
        assert_eq!(u32::from_le(s32.read()), 0x0706_0504);
        s32.write(0xa1b2_c3d4_u32.to_le());
        assert_eq!(r.read_u32(base + 4).unwrap(), 0xa1b2_c3d4);
        let s8 = r.slot::<u8>(base + 0xfff).unwrap();
        assert_eq!(s8.read(), 0xff);
        let s64 = r.slot::<u64>(base + 0xff8).unwrap();
        r.write_u64(base + 0xff8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(u64::from_le(s64.read()), 0x1122_3344_5566_7788);
    }
    let errno = |offset: u64| r.slot::<u32>(offset).unwrap_err().errno();
    // The page served by pread/pwrite has no slot; the accessors still reach it.
    assert_eq!(errno(0x1000), Errno::ENXIO);
    assert_eq!(errno(0x1ffc), Errno::ENXIO);
    assert_eq!(r.read_u32(0x1ffc).unwrap(), 0xfffe_fdfc);
    assert_eq!(errno(3 * PAGE), Errno::ERANGE);
    assert_eq!(errno(3 * PAGE - 6), Errno::EINVAL);
    assert_eq!(errno(2), Errno::EINVAL);
    assert_eq!(
        r.slot::<u64>(u64::MAX - 3).unwrap_err().errno(),
        Errno::EOVERFLOW
    );
    assert!(r.slot::<u64>(3 * PAGE - 8).is_ok());
    assert_eq!(
        r.slot::<u64>(3 * PAGE - 4).unwrap_err().errno(),
        Errno::ERANGE
    );
    let e = r.slot::<u32>(0x1000).unwrap_err();
    assert!(e.to_string().contains("register"), "{e}");
    assert!(e.to_string().contains("pread"), "{e}");
}

#[test]
fn slots_need_a_read_write_mapping() {
    for flags in [
        RegionFlags::READ | RegionFlags::MMAP,
        RegionFlags::WRITE | RegionFlags::MMAP,
    ] {
        let r = region(flags, PAGE, None, &[]);
        assert_eq!(r.slot::<u32>(0).unwrap_err().errno(), Errno::EACCES);
    }
    let at = 2 * PAGE;
    let never = Region::new(
        TestFile(file(at, PAGE)),
        info(rw_mmap(), PAGE, at, None),
        MapOptions::new().never_map(),
        &[],
    )
    .unwrap();
    assert_eq!(never.slot::<u32>(0).unwrap_err().errno(), Errno::ENXIO);
    assert_eq!(never.read_u32(4).unwrap(), 0x0706_0504);
}
