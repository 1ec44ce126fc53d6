//! Hardware tests of region access (`uvfio::mmio`): mappings, the pread/pwrite fallback, and
//! the typed errors, on e1000e, nvme and pci-testdev in the emulated IOMMU host.

use uvfio::device::{RegionFlags, RegionIndex};
use uvfio::mmio::MapOptions;
use uvfio::{Device, Errno, Error};

use crate::common::{self, device};

/// Opens the PCI device at `addr` in a fresh DMA space of the test mode (a container, or an
/// IOAS with the device's cdev) and turns memory decoding on (vfio-pci blocks BAR access while
/// it is off).
pub(crate) fn open(addr: &str) -> Device {
    let d = crate::common::open_device(addr);
    d.pci_config()
        .expect("config space")
        .enable_memory_space()
        .expect("memory space on");
    d
}

/// How many mappings of VFIO device fds this process has (`/proc/self/maps`).
fn vfio_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .filter(|l| l.contains("vfio"))
        .count()
}

/// e1000e `STATUS` after reset with the link up (notes §3.5).
const E1000E_STATUS: u32 = 0x0008_0283;
/// QEMU nvme `CAP` and `VS` (notes §4).
const NVME_CAP: u64 = 0x0040_1820_0f01_07ff;
const NVME_VS: u32 = 0x0001_0400;

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn e1000e_bar0_is_mapped_whole_and_reads_status() {
    let d = open(&device("UVFIO_TEST_E1000E_A"));
    let before = vfio_mappings();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.size(), 128 << 10);
    // BAR0 holds no MSI-X structure (those are in BAR3): all of it is mapped.
    assert_eq!(bar0.mapped_ranges(), vec![0..128 << 10], "{bar0:?}");
    assert_eq!(vfio_mappings(), before + 1);
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);

    // The same register through pread agrees.
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    assert!(slow.mapped_ranges().is_empty());
    assert_eq!(slow.read_u32(0x8).unwrap(), E1000E_STATUS);

    // A read-write register, written through one path and read back through the other
    // (TDBAL: 16-byte aligned descriptor ring address; TX is off, so nothing happens).
    bar0.write_u32(0x3800, 0x1234_5670).unwrap();
    assert_eq!(slow.read_u32(0x3800).unwrap(), 0x1234_5670);
    slow.write_u32(0x3800, 0x0bad_cafe & !0xf).unwrap();
    assert_eq!(bar0.read_u32(0x3800).unwrap(), 0x0bad_caf0);
    // Bulk copies see the same bytes on both paths.
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    bar0.read_bytes(0x3800, &mut a).unwrap();
    slow.read_bytes(0x3800, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(&a[..4], &0x0bad_caf0u32.to_le_bytes());
    bar0.write_u32(0x3800, 0).unwrap();

    drop(bar0);
    assert_eq!(
        vfio_mappings(),
        before,
        "the mapping is gone with the Region"
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn nvme_bar0_registers_mapped_msix_table_by_pread() {
    let d = open(&device("UVFIO_TEST_NVME"));
    let msix = d
        .pci_config()
        .unwrap()
        .msix()
        .unwrap()
        .expect("nvme has MSI-X");
    assert_eq!((msix.table.bar, msix.table.offset), (0, 0x2000));
    assert_eq!((msix.pba.bar, msix.pba.offset), (0, 0x3000));

    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.size(), 16 << 10);
    assert!(bar0.info().msix_mappable(), "{:?}", bar0.info());
    // The registers and doorbells are mapped; the table and PBA pages are not.
    assert_eq!(bar0.mapped_ranges(), vec![0..0x2000], "{bar0:?}");
    assert!(bar0.is_mapped(0) && bar0.is_mapped(0x1000));
    assert!(!bar0.is_mapped(0x2000) && !bar0.is_mapped(0x3000));

    assert_eq!(bar0.read_u64(0x0).unwrap(), NVME_CAP);
    assert_eq!(bar0.read_u32(0x8).unwrap(), NVME_VS);
    // CAP as two 4-byte halves, through the mapping and through pread.
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    assert_eq!(bar0.read_u32(0x4).unwrap(), (NVME_CAP >> 32) as u32);
    assert_eq!(slow.read_u64(0x0).unwrap(), NVME_CAP);
    assert_eq!(slow.read_u32(0x8).unwrap(), NVME_VS);

    // The MSI-X table goes through pread, where vfio-pci hides it: every entry reads as all
    // ones and writes are dropped.
    assert_eq!(bar0.read_u32(0x2000).unwrap(), 0xffff_ffff);
    assert_eq!(bar0.read_u64(0x2008).unwrap(), u64::MAX);
    bar0.write_u32(0x200c, 0).unwrap();
    assert_eq!(bar0.read_u32(0x200c).unwrap(), 0xffff_ffff);
    // The PBA is readable through pread: nothing pending.
    assert_eq!(bar0.read_u64(0x3000).unwrap(), 0);

    // Asked for, and allowed by MSIX_MAPPABLE, the whole BAR is mapped.
    let all = d
        .region_with(RegionIndex::BAR0, MapOptions::new().map_msix(true))
        .unwrap();
    assert_eq!(all.mapped_ranges(), vec![0..0x4000]);
    assert!(all.is_mapped(0x2000));
    assert_eq!(all.read_u32(0x8).unwrap(), NVME_VS);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn e1000e_bar3_maps_around_the_msix_table_and_pba() {
    let d = open(&device("UVFIO_TEST_E1000E_A"));
    let msix = d
        .pci_config()
        .unwrap()
        .msix()
        .unwrap()
        .expect("e1000e has MSI-X");
    assert_eq!(msix.table_size, 5);
    assert_eq!((msix.table.bar, msix.table.offset), (3, 0));
    assert_eq!((msix.pba.bar, msix.pba.offset), (3, 0x2000));
    let bar3 = d.region(RegionIndex::BAR3).unwrap();
    assert_eq!(bar3.size(), 16 << 10);
    assert_eq!(bar3.mapped_ranges(), vec![0x1000..0x2000, 0x3000..0x4000]);
    assert_eq!(
        bar3.read_u32(0).unwrap(),
        0xffff_ffff,
        "table hidden by vfio-pci"
    );
    assert_eq!(bar3.read_u32(0x2000).unwrap(), 0, "PBA: nothing pending");
}

/// pci-testdev's test header (notes §2): the test selected at offset 0, then width, offset,
/// data, count and the name.
fn testdev_name(r: &uvfio::mmio::Region) -> String {
    let mut name = [0u8; 32];
    r.read_bytes(16, &mut name).unwrap();
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn testdev_io_port_bar_goes_through_pread_and_pwrite() {
    let d = open(&device("UVFIO_TEST_TESTDEV"));
    d.pci_config()
        .unwrap()
        .update_command(|c| c | uvfio::pci::config::Command::IO)
        .unwrap();
    let info = d.region_info(RegionIndex::BAR1).unwrap();
    assert!(!info.flags.contains(RegionFlags::MMAP), "{info:?}");
    let err = d
        .region_with(RegionIndex::BAR1, MapOptions::new().require_map())
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");

    let io = d.region(RegionIndex::BAR1).unwrap();
    assert!(io.mapped_ranges().is_empty());
    assert_eq!(io.size(), 256);
    let names = [
        "portio-no-eventfd",
        "portio-wildcard-eventfd",
        "portio-datamatch-eventfd",
    ];
    for (test, want) in names.iter().enumerate() {
        io.write_u8(0, test as u8).unwrap();
        assert_eq!(testdev_name(&io), *want);
        let width = io.read_u8(1).unwrap();
        let offset = u64::from(io.read_u32(4).unwrap());
        let data = io.read_u8(8).unwrap();
        assert_eq!(io.read_u32(12).unwrap(), 0, "count starts at 0");
        match width {
            1 => io.write_u8(offset, data).unwrap(),
            2 => io.write_u16(offset, u16::from(data)).unwrap(),
            4 => io.write_u32(offset, u32::from(data)).unwrap(),
            w => panic!("{want}: unexpected width {w}"),
        }
        // Without an eventfd the device counts the write; with one, QEMU consumes it.
        let count = io.read_u32(12).unwrap();
        assert_eq!(count, u32::from(test == 0), "{want}: count {count}");
    }

    // The MMIO BAR of the same device is mapped, and its test names read through the mapping.
    let mmio = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(mmio.mapped_ranges(), vec![0..4096]);
    mmio.write_u8(0, 0).unwrap();
    assert_eq!(testdev_name(&mmio), "mmio-no-eventfd");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bad_accesses_are_typed_errors_and_leave_nothing_mapped() {
    let d = open(&device("UVFIO_TEST_E1000E_A"));
    let before = vfio_mappings();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    let size = bar0.size();
    for (what, err) in [
        ("past the end", bar0.read_u32(size).unwrap_err()),
        ("straddling the end", bar0.read_u32(size - 2).unwrap_err()),
        ("u64 past the end", bar0.read_u64(size - 4).unwrap_err()),
        (
            "bulk past the end",
            bar0.read_bytes(size - 8, &mut [0; 9]).unwrap_err(),
        ),
        ("write past the end", bar0.write_u16(size, 0).unwrap_err()),
    ] {
        assert_eq!(err.errno(), Errno::ERANGE, "{what}: {err}");
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{what}: {err}"
        );
    }
    for (what, err) in [
        ("u64 overflow", bar0.read_u64(u64::MAX - 3).unwrap_err()),
        ("u8 overflow", bar0.write_u8(u64::MAX, 0).unwrap_err()),
        (
            "bulk overflow",
            bar0.write_bytes(u64::MAX - 1, &[0; 4]).unwrap_err(),
        ),
    ] {
        assert_eq!(err.errno(), Errno::EOVERFLOW, "{what}: {err}");
    }
    for (what, err) in [
        ("u16 at odd", bar0.read_u16(0x9).unwrap_err()),
        ("u32 at 2", bar0.read_u32(0xa).unwrap_err()),
        ("u64 at 4", bar0.read_u64(0xc).unwrap_err()),
        ("write u32 at 1", bar0.write_u32(0x3801, 0).unwrap_err()),
    ] {
        assert_eq!(err.errno(), Errno::EINVAL, "{what}: {err}");
        assert!(err.to_string().contains("aligned"), "{what}: {err}");
    }
    // Nothing of this reached the device: STATUS is unchanged, TDBAL too.
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);
    assert_eq!(bar0.read_u32(0x3800).unwrap(), 0);

    // The ROM, where the device has one, is read-only.
    let rom = d.region_info(RegionIndex::ROM).unwrap();
    if rom.size > 0 {
        let r = d.region(RegionIndex::ROM).unwrap();
        assert!(r.mapped_ranges().is_empty(), "the ROM is never mmappable");
        let err = r.write_u32(0, 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotSupported {
                    errno: Errno::EACCES,
                    ..
                }
            ),
            "{err}"
        );
    }
    // Config space and the I/O BAR cannot be mapped; an absent BAR is an error; VGA is not
    // there at all.
    for index in [RegionIndex::CONFIG, RegionIndex::BAR2] {
        let err = d
            .region_with(index, MapOptions::new().require_map())
            .unwrap_err();
        assert!(matches!(err, Error::NotSupported { .. }), "{index}: {err}");
    }
    for index in [RegionIndex::BAR4, RegionIndex::BAR5] {
        let err = d.region(index).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotSupported {
                    errno: Errno::ENXIO,
                    ..
                }
            ),
            "{index}: {err}"
        );
    }
    let err = d.region(RegionIndex::VGA).unwrap_err();
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
    assert_eq!(
        vfio_mappings(),
        before + 1,
        "failed calls mapped nothing; BAR0 is still mapped"
    );
    drop(bar0);
    assert_eq!(vfio_mappings(), before);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_region_keeps_its_device_open() {
    let addr = device("UVFIO_TEST_E1000E_B");
    let bar0 = {
        let d = open(&addr);
        d.region(RegionIndex::BAR0).unwrap()
        // The Device handle is dropped here; the region keeps the device, group and container.
    };
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);
    assert_eq!(bar0.device().name(), addr);
    let region = std::sync::Arc::new(bar0);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let r = region.clone();
            std::thread::spawn(move || r.read_u32(0x8).unwrap())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), E1000E_STATUS);
    }
}

/// Maps `len` bytes at `vaddr` at `iova` in `space`, whichever backend it is.
///
/// # Safety
///
/// As `Container::map_dma_raw` / `Ioas::map_raw`.
unsafe fn map_raw(
    space: &uvfio::DmaSpace,
    vaddr: *const u8,
    iova: u64,
    len: u64,
) -> uvfio::Result<()> {
    use uvfio::dma::DmaAccess;
    match (space.container(), space.ioas()) {
        // SAFETY: forwarded to this function's contract.
        (Some(c), _) => unsafe { c.map_dma_raw(vaddr, iova, len, DmaAccess::ReadWrite) },
        // SAFETY: forwarded to this function's contract.
        (_, Some(ioas)) => {
            unsafe { ioas.map_raw(vaddr, len, DmaAccess::ReadWrite, Some(iova)) }.map(drop)
        }
        _ => unreachable!("a DMA space is a container or an IOAS"),
    }
}

/// The kernel selftest `vfio_dma_mapping_mmio_test` (`map_full_bar`, `map_partial_bar`): a
/// mapped BAR (device memory, for peer-to-peer DMA) given to the IOMMU as DMA memory. The
/// type1 container maps it (it follows the PFNs of the `VM_PFNMAP` mapping); iommufd refuses
/// it, through its compat container as through an IOAS, because it pins user pages and a BAR
/// mapping has none.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_mapping_mmio_maps_a_bar_on_type1_and_fails_on_iommufd() {
    if !common::needs_iommu(
        "dma_mapping_mmio_maps_a_bar_on_type1_and_fails_on_iommufd",
        "maps a BAR into the IOMMU for peer-to-peer DMA; without an IOMMU there is nothing to map into",
    ) {
        return;
    }
    use uvfio::dma::AddressLimit;
    let (space, d) = crate::common::open_in_space(&device("UVFIO_TEST_E1000E_A"));
    d.pci_config().unwrap().enable_memory_space().unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.mapped_ranges(), vec![0..128 << 10], "{bar0:?}");
    let vaddr = bar0.mapped_ptr(0).expect("BAR0 is mapped");
    let type1 = !space.mode().needs_iommufd();
    for (variant, len) in [("map_full_bar", bar0.size()), ("map_partial_bar", 4096)] {
        let iova = space.allocate_iova(len, AddressLimit::NONE).unwrap();
        // SAFETY: the BAR mapping outlives the IOMMU mapping (unmapped below, before `bar0`
        // drops), and the e1000e is never told the IOVA, so no DMA reaches it.
        let mapped = unsafe { map_raw(&space, vaddr, iova.start(), len) };
        let mode = space.mode();
        if type1 {
            mapped.unwrap_or_else(|e| panic!("{variant} in {mode}: {e}"));
            let unmapped = match (space.container(), space.ioas()) {
                (Some(c), _) => c.unmap_dma(iova.start(), len),
                (_, Some(ioas)) => ioas.unmap(iova.start(), len),
                _ => unreachable!(),
            };
            assert_eq!(unmapped.unwrap(), len, "{variant} in {mode}: unmapped size");
        } else {
            let err = mapped.expect_err("iommufd must refuse to map device memory");
            assert_eq!(err.errno(), Errno::EFAULT, "{variant} in {mode}: {err}");
        }
        crate::common::say(&format!(
            "dma_mapping_mmio {variant} in mode {mode}: {}",
            if type1 { "mapped" } else { "refused" }
        ));
    }
    // The BAR still works.
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);
}
