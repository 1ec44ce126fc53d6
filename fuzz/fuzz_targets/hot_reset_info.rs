//! `HotResetInfo::decode`: the answer of `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::device::{HotResetInfo, HotResetOwner};
use uvfio::uapi::vfio;
use uvfio_fuzz::ne_u32;

/// `struct vfio_pci_hot_reset_info`: argsz, flags, count; then 8-byte entries
/// (`group_id: u32, segment: u16, bus: u8, devfn: u8`).
const HEADER: usize = 12;
const ENTRY: usize = 8;

fuzz_target!(|bytes: &[u8]| {
    let decoded = HotResetInfo::decode(bytes);
    let (Some(flags), Some(count)) = (ne_u32(bytes, 4), ne_u32(bytes, 8)) else {
        assert!(decoded.is_err(), "shorter than the header");
        return;
    };
    let count = usize::try_from(count).unwrap();
    let fits = count <= (bytes.len() - HEADER) / ENTRY;
    let Ok(info) = decoded else {
        assert!(!fits, "refused although its {count} entries fit");
        return;
    };
    assert!(fits);
    assert_eq!(info.devices.len(), count);
    let by_id = flags & vfio::VFIO_PCI_HOT_RESET_FLAG_DEV_ID != 0;
    assert_eq!(
        info.all_owned,
        flags & vfio::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED != 0
    );
    for (i, device) in info.devices.iter().enumerate() {
        let e = &bytes[HEADER + i * ENTRY..HEADER + (i + 1) * ENTRY];
        let group_id = u32::from_ne_bytes(e[0..4].try_into().unwrap());
        let segment = u16::from_ne_bytes([e[4], e[5]]);
        let a = device
            .address
            .expect("every devfn is a device and function");
        assert_eq!(
            (a.domain(), a.bus(), a.device(), a.function()),
            (u32::from(segment), e[6], e[7] >> 3, e[7] & 7)
        );
        let expect = match (by_id, group_id) {
            (false, g) => HotResetOwner::Group(g),
            (true, vfio::VFIO_PCI_DEVID_NOT_OWNED) => HotResetOwner::NotOwned,
            (true, vfio::VFIO_PCI_DEVID_OWNED) => HotResetOwner::OwnedUnbound,
            (true, id) => HotResetOwner::Device(id),
        };
        assert_eq!(device.owner, expect);
        assert_eq!(device.group(), (!by_id).then_some(group_id));
        let _ = device.to_string();
    }
    // The groups: sorted, each once, exactly the entries' groups; none missing from themselves.
    let groups = info.groups();
    assert!(groups.windows(2).all(|w| w[0] < w[1]));
    assert!(info
        .devices
        .iter()
        .filter_map(|d| d.group())
        .all(|g| groups.contains(&g)));
    assert!(info.missing_groups(&groups).is_empty());
    if let Some((&first, rest)) = groups.split_first() {
        assert_eq!(info.missing_groups(rest), [first]);
    }
});
