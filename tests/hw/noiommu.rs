//! VFIO's no-IOMMU mode through the same API as the IOMMU backends: `DmaSpace::open_noiommu`,
//! devices from their `/dev/vfio/noiommu-N` groups, DMA buffers and pools at physical addresses.
//! They run in the `full` flavour booted with `UVFIO_VM_IOMMU=none` (and huge pages reserved,
//! `UVFIO_VM_CMDLINE=hugepages=64`, as tests/run-all.sh does); elsewhere they skip visibly.

use std::path::Path;
use std::time::Duration;

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions, DmaPool, PageSize};
use uvfio::{Device, DmaSpace, IommuMode};

use crate::common;

fn runs(test: &str) -> bool {
    common::needs_full_in_mode(
        test,
        "VFIO's no-IOMMU mode",
        Path::new("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode").exists(),
        "none",
    )
}

/// A no-IOMMU space and edu opened in it, bus mastering on.
fn edu() -> (DmaSpace, Device) {
    // SAFETY: the tests give edu only addresses of their own buffers, wait for each transfer to
    // finish before the buffers go, and turn bus mastering off at the end.
    let space = unsafe { DmaSpace::open_noiommu() }.expect("no-IOMMU space");
    assert_eq!(space.mode(), IommuMode::NoIommu);
    let addr = common::device("UVFIO_TEST_EDU");
    let device = space
        .open_pci_device(&addr.parse().unwrap())
        .expect("edu from its no-IOMMU group");
    let config = device.pci_config().unwrap();
    config.enable_memory_space().unwrap();
    config.set_bus_master(true).unwrap();
    (space, device)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn noiommu_edu_dma_round_trip_at_physical_addresses() {
    if !runs("noiommu_edu_dma_round_trip_at_physical_addresses") {
        return;
    }
    let (space, device) = edu();
    let options = DmaOptions::new().address_bits(28);
    let mut src = DmaBuffer::with_options(&space, 4096, options).expect("src below 256 MiB");
    let mut dst = DmaBuffer::with_options(&space, 4096, options).expect("dst below 256 MiB");
    for b in [&src, &dst] {
        assert!(b.iova() != 0 && b.iova() % 4096 == 0, "{:#x}", b.iova());
        assert!(
            b.iova() + 4096 <= 1 << 28,
            "below edu's limit: {:#x}",
            b.iova()
        );
        assert!(b.is_mapped());
    }
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    src.write_slice(0, &data).unwrap();
    dst.fill(0, 1024, 0).unwrap();
    common::edu_dma(&device, src.iova(), 1024, false);
    common::edu_dma(&device, dst.iova(), 1024, true);
    assert_eq!(dst.read_to_vec(0, 1024).unwrap(), data);
    let stats = space.dma_stats();
    assert_eq!((stats.buffers, stats.map_ioctls), (2, 0), "{stats:?}");
    drop((src, dst));
    assert_eq!(space.dma_stats().buffers, 0);
    device.pci_config().unwrap().set_bus_master(false).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn noiommu_msi_and_pools_on_huge_pages() {
    if !runs("noiommu_msi_and_pools_on_huge_pages") {
        return;
    }
    let (space, device) = edu();
    // MSI works without interrupt remapping: raise one by hand.
    let irqs = device.enable_irqs(IrqIndex::MSI, 1).expect("MSI");
    let bar0 = device.region(RegionIndex::BAR0).unwrap();
    bar0.write_u32(0x60, 0x40).unwrap();
    assert!(
        irqs.wait(0, Some(Duration::from_secs(5)))
            .unwrap()
            .is_some(),
        "the MSI arrived"
    );
    bar0.write_u32(0x64, 0x40).unwrap();
    // A pool larger than a page is physically contiguous (a huge page), so every buffer's
    // address is the pool's plus its offset.
    let pool = DmaPool::new(&space, 2048, 64, DmaOptions::new()).expect("a pool on a huge page");
    let a = pool.alloc().unwrap();
    let b = pool.alloc().unwrap();
    assert_eq!(b.iova().abs_diff(a.iova()), 2048);
    assert_eq!(pool.index_of_iova(b.iova() + 5), Some(b.index()));
    let big = DmaBuffer::new(&space, 64 << 10).expect("64 KiB on a huge page");
    assert_eq!(big.page_size(), PageSize::Huge2M);
    // A fixed IOVA means nothing without an IOMMU.
    let e = DmaBuffer::with_options(&space, 4096, DmaOptions::new().iova(0x10_0000)).unwrap_err();
    assert!(e.to_string().contains("physical address"), "{e}");
    // Nor is there IOVA space to reserve.
    assert!(space.allocate_iova(4096, Default::default()).is_err());
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn noiommu_needs_the_unsafe_door() {
    if !runs("noiommu_needs_the_unsafe_door") {
        return;
    }
    let e = DmaSpace::open(IommuMode::NoIommu).unwrap_err();
    assert!(e.to_string().contains("open_noiommu"), "{e}");
    // The safe container path cannot set the model either.
    let container = uvfio::Container::new().unwrap();
    let addr = common::device("UVFIO_TEST_EDU");
    let e = container
        .open_pci_device(&addr.parse().unwrap())
        .expect_err("no safe model exists for a no-IOMMU group");
    common::say(&format!(
        "noiommu_needs_the_unsafe_door: safe open refused: {e}"
    ));
}
