//! Hardware page tables allocated by the driver (`IOMMU_HWPT_ALLOC`), attach and replace, the
//! IOMMU's dirty tracking (typed `NotSupported` where the IOMMU lacks it, as QEMU's VT-d does),
//! and the iommufd's `RLIMIT_MODE` option. They mirror the HWPT cases of the kernel's iommufd
//! selftest (`iommufd.c`: `iommufd_ioas.hwpt_attach`, `iommufd_dirty_tracking.enforce_dirty`,
//! `set_dirty_tracking`) on a real VT-d instead of the mock domain. `full` flavour, VT-d.

use std::path::Path;

use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions};
use uvfio::iommufd::{HwptFlags, Ioas, Iommufd};
use uvfio::{Device, ErrorKind};

use crate::common;

fn runs(test: &str) -> bool {
    common::needs_full_in_mode(
        test,
        "iommufd and the VFIO device cdev",
        Path::new("/dev/iommu").exists(),
        "vtd",
    )
}

/// edu through its cdev, bound to a fresh iommufd; not attached yet.
fn edu_bound() -> (Iommufd, Ioas, Device) {
    let iommufd = Iommufd::new().expect("open /dev/iommu");
    let ioas = iommufd.alloc_ioas().expect("IOAS");
    let addr = common::device("UVFIO_TEST_EDU");
    let device = iommufd
        .open_pci_device(&addr.parse().expect("address"))
        .expect("open edu's cdev");
    (iommufd, ioas, device)
}

/// Sends `pattern` RAM → edu → RAM through two buffers of `ioas` and checks it came back.
fn round_trip(device: &Device, ioas: &Ioas, pattern: u8) {
    let options = DmaOptions::new().address_bits(28);
    let mut src = DmaBuffer::with_options(ioas, 4096, options).expect("src buffer");
    let mut dst = DmaBuffer::with_options(ioas, 4096, options).expect("dst buffer");
    src.fill(0, 256, pattern).unwrap();
    dst.fill(0, 256, 0).unwrap();
    common::edu_dma(device, src.iova(), 256, false);
    common::edu_dma(device, dst.iova(), 256, true);
    assert_eq!(dst.read_to_vec(0, 256).unwrap(), vec![pattern; 256]);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_ioas_hwpt_attach_replace_and_dma_through_it() {
    if !runs("iommufd_ioas_hwpt_attach_replace_and_dma_through_it") {
        return;
    }
    let (_iommufd, ioas, device) = edu_bound();
    let hwpt = ioas
        .alloc_hwpt(&device, HwptFlags::empty())
        .expect("a plain HWPT for edu's IOMMU");
    assert!(hwpt.ioas().same_as(&ioas));
    assert_ne!(hwpt.id(), ioas.id());
    device.attach_hwpt(&hwpt).expect("attach to the HWPT");
    let (attached, id) = device.attached_ioas().expect("attached");
    assert!(attached.same_as(&ioas));
    assert_eq!(id, hwpt.id(), "the device sits on the driver's HWPT");
    device
        .pci_config()
        .unwrap()
        .set_bus_master(true)
        .expect("bus master");
    round_trip(&device, &ioas, 0x5a);

    // Replace: back to the IOAS (the kernel's own HWPT), with the driver's HWPT handle gone
    // already (the device kept it alive until now); DMA goes on working.
    drop(hwpt);
    let auto = device.attach(&ioas).expect("replace with the IOAS");
    let (_, id) = device.attached_ioas().unwrap();
    assert_eq!(id, auto);
    round_trip(&device, &ioas, 0xa5);

    // And once more onto a fresh HWPT while buffers stay mapped in the IOAS.
    let hwpt = ioas.alloc_hwpt(&device, HwptFlags::empty()).unwrap();
    let options = DmaOptions::new().address_bits(28);
    let mut kept = DmaBuffer::with_options(&ioas, 4096, options).unwrap();
    kept.fill(0, 64, 0x3c).unwrap();
    device.attach_hwpt(&hwpt).expect("replace with a new HWPT");
    common::edu_dma(&device, kept.iova(), 64, false);
    let mut back = DmaBuffer::with_options(&ioas, 4096, options).unwrap();
    common::edu_dma(&device, back.iova(), 64, true);
    assert_eq!(back.read_to_vec(0, 64).unwrap(), vec![0x3c; 64]);
    back.fill(0, 64, 0).unwrap();
    device.pci_config().unwrap().set_bus_master(false).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_dirty_tracking_enforce_dirty_is_typed() {
    if !runs("iommufd_dirty_tracking_enforce_dirty_is_typed") {
        return;
    }
    let (iommufd, ioas, device) = edu_bound();
    let info = iommufd.hw_info(&device).expect("IOMMU_GET_HW_INFO");
    let plain = ioas.alloc_hwpt(&device, HwptFlags::empty()).unwrap();
    // A HWPT allocated without tracking refuses before any ioctl.
    let e = plain.set_dirty_tracking(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    let e = plain.read_dirty(0x10_0000, 4096, 4096).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    if !info.dirty_tracking() {
        // QEMU's VT-d has no second-stage access/dirty bits: the kernel must refuse, and the
        // library must say so as NotSupported (the selftest's enforce_dirty on a real IOMMU).
        let e = ioas
            .alloc_hwpt(&device, HwptFlags::DIRTY_TRACKING)
            .expect_err("an IOMMU without dirty tracking cannot make a tracking HWPT");
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(e.to_string().contains("dirty"), "{e}");
        common::say(&format!(
            "iommufd_dirty_tracking_enforce_dirty_is_typed: the IOMMU has no dirty tracking \
             ({info:?}); checked the typed refusal"
        ));
        return;
    }
    // An IOMMU that tracks: the device's writes show in the bitmap, and a read clears them.
    let hwpt = ioas
        .alloc_hwpt(&device, HwptFlags::DIRTY_TRACKING)
        .expect("a tracking HWPT");
    device.attach_hwpt(&hwpt).unwrap();
    device.pci_config().unwrap().set_bus_master(true).unwrap();
    let buf = DmaBuffer::with_options(&ioas, 2 * 4096, DmaOptions::new().address_bits(28)).unwrap();
    hwpt.set_dirty_tracking(true).unwrap();
    let _ = hwpt.read_dirty(buf.iova(), 2 * 4096, 4096).unwrap();
    common::edu_dma(&device, buf.iova() + 4096, 64, true);
    let dirty = hwpt.peek_dirty(buf.iova(), 2 * 4096, 4096).unwrap();
    assert!(!dirty.is_dirty(buf.iova()) && dirty.is_dirty(buf.iova() + 4096));
    let dirty = hwpt.read_dirty(buf.iova(), 2 * 4096, 4096).unwrap();
    assert_eq!(dirty.dirty_count(), 1, "peek did not clear");
    let dirty = hwpt.read_dirty(buf.iova(), 2 * 4096, 4096).unwrap();
    assert_eq!(dirty.dirty_count(), 0, "read cleared");
    hwpt.set_dirty_tracking(false).unwrap();
    device.pci_config().unwrap().set_bus_master(false).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn a_hwpt_of_another_iommufd_or_device_is_refused() {
    if !runs("a_hwpt_of_another_iommufd_or_device_is_refused") {
        return;
    }
    let (_iommufd, ioas, device) = edu_bound();
    let other = Iommufd::new().unwrap();
    let other_ioas = other.alloc_ioas().unwrap();
    // The device is bound to the first iommufd only.
    let e = other_ioas
        .alloc_hwpt(&device, HwptFlags::empty())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let hwpt = ioas.alloc_hwpt(&device, HwptFlags::empty()).unwrap();
    drop(device);
    // A second device bound to the other iommufd cannot attach to this one's HWPT.
    let addr = common::device("UVFIO_TEST_TESTDEV");
    let testdev = other
        .open_pci_device(&addr.parse().unwrap())
        .expect("testdev's cdev");
    let e = testdev.attach_hwpt(&hwpt).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // A group-opened device has no iommufd attachment at all.
    drop(testdev);
    if let Some((container, iommu)) = common::container("a_hwpt_of_another_iommufd (group part)") {
        let group = uvfio::Group::open(common::iommu_group(&addr)).unwrap();
        group.set_container(&container).unwrap();
        container.set_iommu(iommu).unwrap();
        let dev = group.open_device(&addr).unwrap();
        let e = dev.attach_hwpt(&hwpt).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_option_rlimit_mode_round_trips() {
    if !runs("iommufd_option_rlimit_mode_round_trips") {
        return;
    }
    let iommufd = Iommufd::new().unwrap();
    assert!(
        !iommufd.rlimit_per_process().unwrap(),
        "user-based accounting is the default"
    );
    // The tests run as root (CAP_SYS_RESOURCE).
    iommufd.set_rlimit_per_process(true).unwrap();
    assert!(iommufd.rlimit_per_process().unwrap());
    iommufd.set_rlimit_per_process(false).unwrap();
    assert!(!iommufd.rlimit_per_process().unwrap());
}
