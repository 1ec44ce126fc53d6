//! `DeviceInfo::decode`: the answer of `VFIO_DEVICE_GET_INFO`, any bytes (20 bytes suffice: the
//! size of the struct before Linux 6.4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::device::{DeviceCap, DeviceFlags, DeviceInfo};
use uvfio::uapi::caps::decode_chain;
use uvfio_fuzz::ne_u32;

/// `struct vfio_device_info` up to `cap_offset`: argsz, flags, num_regions, num_irqs, cap_offset.
const FIXED: usize = 20;

fuzz_target!(|bytes: &[u8]| {
    let Ok(info) = DeviceInfo::decode(bytes) else {
        assert!(
            bytes.len() < FIXED || {
                let flags = ne_u32(bytes, 4).unwrap();
                DeviceFlags::from_bits_retain(flags).contains(DeviceFlags::CAPS)
            },
            "only a short answer or a broken chain is refused"
        );
        return;
    };
    assert!(bytes.len() >= FIXED);
    assert_eq!(Some(info.flags.bits()), ne_u32(bytes, 4));
    assert_eq!(Some(info.num_regions), ne_u32(bytes, 8));
    assert_eq!(Some(info.num_irqs), ne_u32(bytes, 12));
    if info.flags.contains(DeviceFlags::CAPS) {
        let first = ne_u32(bytes, 16).unwrap();
        assert_eq!(
            decode_chain(bytes, first, FIXED, DeviceCap::decode).as_ref(),
            Ok(&info.caps)
        );
    } else {
        assert!(info.caps.is_empty());
    }
});
