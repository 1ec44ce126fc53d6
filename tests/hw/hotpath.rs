//! Hardware tests of the hot paths' cost: an INTx unmask, the loopback trigger, the waits and
//! register accesses make no heap allocation (counted by the test binary's allocator), so each
//! is the one system call it exists for, or none.

use std::time::Duration;

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::mmio::MapOptions;

use crate::alloc::allocations;
use crate::common::device;
use crate::regions::open;

#[track_caller]
fn assert_no_alloc<T>(what: &str, f: impl FnOnce() -> uvfio::Result<T>) -> T {
    let (n, out) = allocations(f);
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(n, 0, "{what} allocated {n} times");
    out
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn interrupt_and_register_hot_paths_allocate_nothing() {
    let d = open(&device("UVFIO_TEST_E1000_B"));
    let intx = d.enable_irqs(IrqIndex::INTX, 1).unwrap();
    // Warm up whatever is lazily made once (nothing should be, but the count is per call).
    intx.unmask(0).unwrap();
    for _ in 0..3 {
        assert_no_alloc("Interrupts::unmask (INTx)", || intx.unmask(0));
        assert_no_alloc("Interrupts::mask (INTx)", || intx.mask(0));
        assert_no_alloc("Interrupts::unmask_many", || intx.unmask_many(0, &[true]));
        assert_no_alloc("Interrupts::trigger", || intx.trigger(0));
        let n = assert_no_alloc("Interrupts::wait", || {
            intx.wait(0, Some(Duration::from_secs(5)))
        });
        assert_eq!(n, Some(1));
        assert_no_alloc("Interrupts::try_wait", || intx.try_wait(0));
    }
    let mut waiter = intx.waiter().unwrap();
    let mut fired = Vec::with_capacity(waiter.len());
    for _ in 0..3 {
        intx.trigger(0).unwrap();
        let n = assert_no_alloc("Waiter::wait_into", || {
            waiter.wait_into(Some(Duration::from_secs(5)), &mut fired)
        });
        assert_eq!(n, 1);
    }
    drop(waiter);
    intx.disable().unwrap();

    // e1000 STATUS (0x8), and a read-write register (RDBAL, 0x2800), mapped and by pread.
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0x8));
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    for region in [&bar0, &slow] {
        assert_no_alloc("Region::read_u32", || region.read_u32(0x8));
        assert_no_alloc("Region::write_u32", || region.write_u32(0x2800, 0x1000));
        assert_no_alloc("Region::read_u64", || region.read_u64(0x2800));
    }
    bar0.write_u32(0x2800, 0).unwrap();
    let config = d.pci_config().unwrap();
    assert_no_alloc("PciConfig::command", || config.command());
    assert_no_alloc("PciConfig::set_bus_master", || config.set_bus_master(false));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_crates_own_eventfds_are_not_looked_up_per_vector() {
    // Each SET_IRQS used to read /proc/self/fdinfo for every eventfd it carried, the crate's own
    // included: enabling more vectors cost more allocations. Now the cost does not grow with
    // the vector count.
    let d = open(&device("UVFIO_TEST_E1000E_B"));
    let count = |n| {
        let (allocs, irqs) = allocations(|| d.enable_irqs(IrqIndex::MSIX, n));
        irqs.unwrap().disable().unwrap();
        allocs
    };
    count(1); // warm up
    let (one, four) = (count(1), count(4));
    assert_eq!(
        one, four,
        "enable_irqs: {one} allocations for 1 vector, {four} for 4"
    );
}
