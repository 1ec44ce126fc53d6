//! The PCI capability lists of a config-space snapshot (`ConfigSpace`): the standard list, the
//! extended list, and the MSI and MSI-X structures, on any bytes.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use uvfio::pci::caps::{CapabilityId, ExtCapabilityId};
use uvfio::pci::config::ConfigSpace;

fuzz_target!(|bytes: &[u8]| {
    let config = ConfigSpace::from_bytes(bytes);
    let len = bytes.len();

    // Standard list: each entry is a dword-aligned offset past the 64-byte header, inside the
    // snapshot, visited once, and its id is the byte there.
    let mut seen = BTreeSet::new();
    let mut std_caps = Vec::new();
    let mut failed = false;
    let mut caps = config.capabilities();
    for item in caps.by_ref() {
        assert!(!failed, "the walk went on after an error");
        match item {
            Ok(cap) => {
                let at = usize::from(cap.offset);
                assert!(at >= 0x40 && at % 4 == 0 && at + 2 <= len);
                assert_eq!(cap.id.0, bytes[at]);
                assert!(seen.insert(at), "offset {at:#x} visited twice");
                std_caps.push(cap);
            }
            Err(_) => failed = true,
        }
    }
    assert!(caps.next().is_none());
    assert!(std_caps.len() <= (256 - 0x40) / 4);

    // Extended list: headers at dword-aligned offsets in 0x100..0x1000, inside the snapshot,
    // each once.
    let mut seen = BTreeSet::new();
    let mut ext_caps = Vec::new();
    let mut failed_ext = false;
    let mut ext = config.ext_capabilities();
    for item in ext.by_ref() {
        assert!(!failed_ext, "the walk went on after an error");
        match item {
            Ok(cap) => {
                let at = usize::from(cap.offset);
                assert!((0x100..0x1000).contains(&at) && at % 4 == 0 && at + 4 <= len);
                assert_eq!(cap.id.0, u16::from_le_bytes([bytes[at], bytes[at + 1]]));
                assert_eq!(cap.version, bytes[at + 2] & 0xf);
                assert!(seen.insert(at), "offset {at:#x} visited twice");
                ext_caps.push(cap);
            }
            Err(_) => failed_ext = true,
        }
    }
    assert!(ext.next().is_none());
    assert!(ext_caps.len() <= (0x1000 - 0x100) / 4);

    // Finding a capability agrees with the walk.
    for id in [
        CapabilityId::MSI,
        CapabilityId::MSIX,
        CapabilityId(bytes.get(0x40).copied().unwrap_or(0)),
    ] {
        let first = std_caps.iter().find(|c| c.id == id).copied();
        match config.find_capability(id) {
            Ok(found) => assert_eq!(found, first),
            Err(_) => assert!(failed && first.is_none()),
        }
    }
    let ext_id = ExtCapabilityId(u16::from_le_bytes([
        bytes.get(0x100).copied().unwrap_or(0),
        bytes.get(0x101).copied().unwrap_or(0),
    ]));
    let first = ext_caps.iter().find(|c| c.id == ext_id).copied();
    match config.find_ext_capability(ext_id) {
        Ok(found) => assert_eq!(found, first),
        Err(_) => assert!(failed_ext && first.is_none()),
    }

    // MSI-X: 1..=2048 vectors, BARs 0..=5, ranges that do not wrap.
    if let Ok(Some(msix)) = config.msix() {
        assert!((1..=2048).contains(&msix.table_size));
        assert!(msix.table.bar <= 5 && msix.pba.bar <= 5);
        assert!(msix.table.offset % 8 == 0 && msix.pba.offset % 8 == 0);
        let (t, p) = (msix.table_range(), msix.pba_range());
        assert!(t.start < t.end && p.start < p.end);
        assert_eq!(t.end - t.start, 16 * u64::from(msix.table_size));
    }
    if let Ok(Some(msi)) = config.msi() {
        assert!(msi.vectors_capable.is_power_of_two() && msi.vectors_capable <= 32);
        assert!(msi.vectors_enabled.is_power_of_two() && msi.vectors_enabled <= 32);
    }
    for n in 0..=6 {
        let _ = config.bar_register(n);
    }
    let _ = (
        config.vendor_id(),
        config.device_id(),
        config.class(),
        config.header_type(),
    );
});
