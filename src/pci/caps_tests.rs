//! Unit tests of `caps.rs`: capability lists walked over fake config spaces.

use super::*;

/// A 4 KiB config space with a standard list and an extended list, as a PCIe NVMe
/// function shows them: PM at 0x40 -> MSI-X at 0x50 -> PCIe at 0x60 -> MSI at 0x80; AER at
/// 0x100 -> DSN at 0x148.
fn blob() -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
    b[2..4].copy_from_slice(&0x0010u16.to_le_bytes());
    b[STATUS..STATUS + 2].copy_from_slice(&STATUS_CAP_LIST.to_le_bytes());
    b[CAPABILITY_LIST] = 0x40;
    // (offset, id, next)
    for (off, id, next) in [(0x40, 0x01, 0x50), (0x50, 0x11, 0x60), (0x60, 0x10, 0x80)] {
        b[off] = id;
        b[off + 1] = next;
    }
    b[0x80] = 0x05;
    b[0x81] = 0x00;
    // MSI-X: 65 vectors, table BAR0 + 0x2000, PBA BAR0 + 0x3000.
    b[0x52..0x54].copy_from_slice(&64u16.to_le_bytes());
    b[0x54..0x58].copy_from_slice(&0x2000u32.to_le_bytes());
    b[0x58..0x5c].copy_from_slice(&0x3000u32.to_le_bytes());
    // MSI: 64-bit, 4 vectors capable, 1 enabled, enabled.
    b[0x82..0x84].copy_from_slice(&(1u16 | (2 << 1) | (1 << 7)).to_le_bytes());
    ext(&mut b, 0x100, 0x0001, 2, 0x148);
    ext(&mut b, 0x148, 0x0003, 1, 0);
    b
}

fn ext(b: &mut [u8], at: usize, id: u16, version: u32, next: u32) {
    let h = u32::from(id) | (version << 16) | (next << 20);
    b[at..at + 4].copy_from_slice(&h.to_le_bytes());
}

fn std_list(b: &[u8]) -> Vec<Result<(u8, u8), CapListError>> {
    Capabilities::new(b)
        .map(|r| r.map(|c| (c.id.0, c.offset)))
        .collect()
}

#[test]
fn walks_both_lists_of_a_well_formed_space() {
    let b = blob();
    assert_eq!(
        std_list(&b),
        vec![
            Ok((0x01, 0x40)),
            Ok((0x11, 0x50)),
            Ok((0x10, 0x60)),
            Ok((0x05, 0x80))
        ]
    );
    let ext: Vec<_> = ExtCapabilities::new(&b).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        ext,
        vec![
            ExtCapability {
                id: ExtCapabilityId::ERR,
                version: 2,
                offset: 0x100
            },
            ExtCapability {
                id: ExtCapabilityId::DSN,
                version: 1,
                offset: 0x148
            },
        ]
    );
    assert_eq!(ExtCapabilityId::DSN.name(), Some("DSN"));
    assert_eq!(CapabilityId::MSIX.to_string(), "MSIX (0x11)");
    assert_eq!(CapabilityId(0x77).to_string(), "0x77");
}

#[test]
fn no_list_without_the_status_bit_and_no_ext_list_in_256_bytes() {
    let mut b = blob();
    b[STATUS] = 0;
    assert!(std_list(&b).is_empty());
    assert!(ExtCapabilities::new(&b[..256]).next().is_none());
    let mut b = blob();
    b[0x100..0x104].fill(0);
    assert!(ExtCapabilities::new(&b).next().is_none());
    // An empty snapshot has no lists at all.
    assert!(Capabilities::new(&[]).next().is_none());
    assert!(ExtCapabilities::new(&[]).next().is_none());
}

#[test]
fn pointers_are_masked_to_dwords() {
    let mut b = blob();
    b[CAPABILITY_LIST] = 0x43; // low bits are reserved and ignored
    b[0x41] = 0x53;
    assert_eq!(std_list(&b)[..2], [Ok((0x01, 0x40)), Ok((0x11, 0x50))]);
}

#[test]
fn a_cycle_is_an_error_and_the_iterator_is_fused() {
    let mut b = blob();
    b[0x81] = 0x50; // MSI points back to MSI-X
    let got = std_list(&b);
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], Err(CapListError::Cycle { at: 0x50 }));
    let mut it = Capabilities::new(&b);
    for _ in 0..5 {
        it.next();
    }
    assert!(it.next().is_none());
    assert!(it.next().is_none());

    // A self-loop.
    let mut b = blob();
    b[0x41] = 0x40;
    assert_eq!(std_list(&b)[1], Err(CapListError::Cycle { at: 0x40 }));

    // Extended: DSN points back to AER.
    let mut b = blob();
    ext(&mut b, 0x148, 0x0003, 1, 0x100);
    let got: Vec<_> = ExtCapabilities::new(&b).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], Err(CapListError::Cycle { at: 0x100 }));
}

#[test]
fn bad_pointers_are_errors() {
    let mut b = blob();
    b[0x61] = 0x20; // into the header
    assert_eq!(
        std_list(&b)[3],
        Err(CapListError::BadPointer {
            from: 0x61,
            to: 0x20
        })
    );
    let mut b = blob();
    b[CAPABILITY_LIST] = 0x3c;
    assert_eq!(
        std_list(&b),
        vec![Err(CapListError::BadPointer {
            from: 0x34,
            to: 0x3c
        })]
    );
    // A pointer past a short snapshot.
    let b = blob();
    assert_eq!(
        std_list(&b[..0x70])[3],
        Err(CapListError::OutOfRange {
            at: 0x80,
            len: 0x70
        })
    );
    // Extended pointer back into conventional space.
    let mut b = blob();
    ext(&mut b, 0x148, 0x0003, 1, 0x80);
    let got: Vec<_> = ExtCapabilities::new(&b).collect();
    assert_eq!(
        got[1],
        Err(CapListError::BadPointer {
            from: 0x148,
            to: 0x80
        })
    );
    // Extended pointer past a short snapshot.
    let got: Vec<_> = ExtCapabilities::new(&blob()[..0x140]).collect();
    assert_eq!(
        got[1],
        Err(CapListError::OutOfRange {
            at: 0x148,
            len: 0x140
        })
    );
}

#[test]
fn all_ones_means_no_device() {
    let mut b = blob();
    b[0x50] = 0xff;
    b[0x51] = 0xff;
    assert_eq!(std_list(&b)[1], Err(CapListError::AllOnes { at: 0x50 }));
    let b = vec![0xffu8; 4096];
    assert_eq!(std_list(&b)[0], Err(CapListError::AllOnes { at: 0xfc }));
    let got: Vec<_> = ExtCapabilities::new(&b).collect();
    assert_eq!(got, vec![Err(CapListError::AllOnes { at: 0x100 })]);
}

#[test]
fn walks_are_bounded_even_without_a_cycle_check() {
    // 48 capabilities chained through every dword from 0x40 to 0xfc, then the last points
    // to 0: exactly the maximum, all yielded.
    let mut b = vec![0u8; 256];
    b[STATUS] = STATUS_CAP_LIST as u8;
    b[CAPABILITY_LIST] = 0x40;
    for off in (0x40..0x100).step_by(4) {
        b[off] = 0x09;
        b[off + 1] = if off == 0xfc { 0 } else { (off + 4) as u8 };
    }
    let got = std_list(&b);
    assert_eq!(got.len(), 48);
    assert!(got.iter().all(Result::is_ok));
    // Every extended dword chained: 960 entries, then the end.
    let mut b = vec![0u8; 4096];
    for off in (0x100..0x1000).step_by(4) {
        let next = if off == 0xffc { 0 } else { off + 4 };
        ext(&mut b, off, 0x000b, 1, next as u32);
    }
    let got: Vec<_> = ExtCapabilities::new(&b).collect();
    assert_eq!(got.len(), 960);
    assert!(got.iter().all(Result::is_ok));
}

#[test]
fn cardbus_bridges_keep_their_pointer_at_0x14() {
    let mut b = vec![0u8; 256];
    b[STATUS] = STATUS_CAP_LIST as u8;
    b[HEADER_TYPE] = 0x82; // multi-function CardBus bridge
    b[CB_CAPABILITY_LIST] = 0x80;
    b[0x80] = 0x01;
    assert_eq!(std_list(&b), vec![Ok((0x01, 0x80))]);
}

#[test]
fn msix_and_msi_decode() {
    let b = blob();
    let msix = MsixCapability::decode(&b, 0x50).unwrap();
    assert_eq!(msix.table_size, 65);
    assert_eq!(
        msix.table,
        BarLocation {
            bar: 0,
            offset: 0x2000
        }
    );
    assert_eq!(
        msix.pba,
        BarLocation {
            bar: 0,
            offset: 0x3000
        }
    );
    assert_eq!(msix.table_range(), 0x2000..0x2410);
    assert_eq!(msix.pba_range(), 0x3000..0x3010);
    assert!(!msix.enabled && !msix.function_mask);

    let mut bad = b.clone();
    bad[0x54] |= 7;
    assert!(matches!(
        MsixCapability::decode(&bad, 0x50),
        Err(CapListError::Reserved { .. })
    ));
    assert!(matches!(
        MsixCapability::decode(&b[..0x58], 0x50),
        Err(CapListError::Truncated { .. })
    ));

    let msi = MsiCapability::decode(&b, 0x80).unwrap();
    assert!(msi.enabled && msi.is_64bit && !msi.per_vector_masking);
    assert_eq!((msi.vectors_capable, msi.vectors_enabled), (4, 1));
    let mut bad = b.clone();
    bad[0x82] = 7 << 1;
    assert!(MsiCapability::decode(&bad, 0x80).is_err());
}

proptest::proptest! {
    /// Any bytes at all: the walks end, within their bounds, without panicking, and yield
    /// only in-range, dword-aligned offsets.
    #[test]
    fn any_config_space_is_walked_safely(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4200)) {
        let std: Vec<_> = Capabilities::new(&bytes).collect();
        proptest::prop_assert!(std.len() <= MAX_CAPS + 1);
        for c in std.iter().flatten() {
            proptest::prop_assert!(c.offset >= 0x40 && c.offset % 4 == 0);
            let _ = MsixCapability::decode(&bytes, c.offset);
            let _ = MsiCapability::decode(&bytes, c.offset);
        }
        let ext: Vec<_> = ExtCapabilities::new(&bytes).collect();
        proptest::prop_assert!(ext.len() <= MAX_EXT_CAPS + 1);
        for c in ext.iter().flatten() {
            proptest::prop_assert!(c.offset >= 0x100 && c.offset % 4 == 0);
            proptest::prop_assert!(usize::from(c.offset) + 4 <= bytes.len());
        }
    }
}
