//! The typed decoders: region, IOMMU and device capabilities.

use super::*;

// ---- region capabilities ----

#[test]
fn decodes_region_caps() {
    let buf = one_cap(2, 1, payload(&[&3u32.to_ne_bytes(), &1u32.to_ne_bytes()]));
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Ok(RegionCap::Type { ty: 3, subtype: 1 })
    );
    let buf = one_cap(3, 1, vec![]);
    assert_eq!(RegionCap::decode(&only(&buf)), Ok(RegionCap::MsixMappable));
    let buf = one_cap(4, 1, ne64(0x2000_0000_0000).to_vec());
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Ok(RegionCap::Nvlink2Ssatgt {
            tgt: 0x2000_0000_0000
        })
    );
    let buf = one_cap(5, 1, payload(&[&25_000u32.to_ne_bytes(), &[0; 4]]));
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Ok(RegionCap::Nvlink2Lnkspd { link_speed: 25_000 })
    );
    let buf = one_cap(99, 4, vec![1; 12]);
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Ok(RegionCap::Unknown { id: 99, version: 4 })
    );
}

#[test]
fn sparse_mmap_count_is_checked_against_the_length() {
    let areas = payload(&[&2u32.to_ne_bytes(), &[0; 4], &ne64(0), &ne64(0x1000)]);
    let buf = one_cap(1, 1, areas);
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Err(CapChainError::Truncated {
            id: 1,
            offset: 0,
            need: 48,
            have: 32
        })
    );
    let buf = one_cap(1, 1, payload(&[&u32::MAX.to_ne_bytes(), &[0; 4]]));
    let need = 16 + 16 * u32::MAX as usize;
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Err(CapChainError::Truncated {
            id: 1,
            offset: 0,
            need,
            have: 16
        })
    );
    let buf = one_cap(1, 1, vec![0; 4]);
    assert!(matches!(
        RegionCap::decode(&only(&buf)),
        Err(CapChainError::Truncated {
            need: 16,
            have: 12,
            ..
        })
    ));
    let buf = one_cap(1, 1, vec![0; 8]);
    assert_eq!(
        RegionCap::decode(&only(&buf)),
        Ok(RegionCap::SparseMmap(vec![]))
    );
}

#[test]
fn short_region_caps_are_truncated() {
    for id in [2, 4, 5] {
        let buf = one_cap(id, 1, vec![0; 4]);
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Err(CapChainError::Truncated {
                id,
                offset: 0,
                need: 16,
                have: 12
            })
        );
    }
}

/// A BAR0 region as vfio-pci described it before Linux 4.16 made MSI-X tables mappable:
/// 16 KiB, MSI-X table at 0x2000..0x3000, so two mmap-able areas around it. Hand-built in
/// the layout of `struct vfio_region_info` followed by
/// `struct vfio_region_info_cap_sparse_mmap`.
#[test]
fn realistic_region_info_with_sparse_mmap() {
    let mut blob = Vec::new();
    blob.extend_from_slice(&80u32.to_ne_bytes()); // argsz
    blob.extend_from_slice(&0xfu32.to_ne_bytes()); // READ | WRITE | MMAP | CAPS
    blob.extend_from_slice(&0u32.to_ne_bytes()); // index: BAR0
    blob.extend_from_slice(&32u32.to_ne_bytes()); // cap_offset
    blob.extend_from_slice(&0x4000u64.to_ne_bytes()); // size
    blob.extend_from_slice(&0u64.to_ne_bytes()); // offset
    blob.extend(header(VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0));
    blob.extend_from_slice(&2u32.to_ne_bytes()); // nr_areas
    blob.extend_from_slice(&0u32.to_ne_bytes()); // reserved
    for (offset, size) in [(0u64, 0x2000u64), (0x3000, 0x1000)] {
        blob.extend_from_slice(&offset.to_ne_bytes());
        blob.extend_from_slice(&size.to_ne_bytes());
    }
    assert_eq!(blob.len(), 80);

    let cap_offset = u32::from_ne_bytes(blob[12..16].try_into().unwrap());
    let caps = decode_chain(&blob, cap_offset, 32, RegionCap::decode).unwrap();
    let expected = vec![
        SparseArea {
            offset: 0,
            size: 0x2000,
        },
        SparseArea {
            offset: 0x3000,
            size: 0x1000,
        },
    ];
    assert_eq!(caps, [RegionCap::SparseMmap(expected.clone())]);
    assert_eq!(expected[1].end(), Some(0x4000));
    assert_eq!(
        SparseArea {
            offset: u64::MAX,
            size: 1
        }
        .end(),
        None
    );
}

// ---- IOMMU capabilities ----

#[test]
fn decodes_iommu_caps() {
    let mig = payload(&[
        &1u32.to_ne_bytes(),
        &[0; 4],
        &ne64(0x1000),
        &ne64(0x1000_0000),
    ]);
    assert_eq!(
        IommuCap::decode(&only(&one_cap(2, 1, mig))),
        Ok(IommuCap::Migration {
            flags: 1,
            pgsize_bitmap: 0x1000,
            max_dirty_bitmap_size: 0x1000_0000
        })
    );
    // 12 bytes as before Linux 6.6, 16 with the padding added since.
    let mut avail = one_cap(3, 1, 65535u32.to_ne_bytes().to_vec());
    assert_eq!(avail.len(), 12);
    assert_eq!(
        IommuCap::decode(&only(&avail)),
        Ok(IommuCap::DmaAvail(65535))
    );
    avail.extend_from_slice(&[0; 4]);
    assert_eq!(
        IommuCap::decode(&only(&avail)),
        Ok(IommuCap::DmaAvail(65535))
    );
    assert_eq!(
        IommuCap::decode(&only(&one_cap(42, 2, vec![]))),
        Ok(IommuCap::Unknown { id: 42, version: 2 })
    );
}

#[test]
fn short_iommu_caps_are_truncated() {
    let mig = one_cap(2, 1, vec![0; 20]);
    assert!(matches!(
        IommuCap::decode(&only(&mig)),
        Err(CapChainError::Truncated {
            id: 2,
            need: 32,
            have: 28,
            ..
        })
    ));
    let avail = one_cap(3, 1, vec![]);
    assert!(matches!(
        IommuCap::decode(&only(&avail)),
        Err(CapChainError::Truncated {
            id: 3,
            need: 12,
            have: 8,
            ..
        })
    ));
    let iova = one_cap(1, 1, payload(&[&1u32.to_ne_bytes(), &[0; 4], &ne64(0)]));
    assert!(matches!(
        IommuCap::decode(&only(&iova)),
        Err(CapChainError::Truncated {
            id: 1,
            need: 32,
            have: 24,
            ..
        })
    ));
}

#[test]
fn inverted_iova_ranges_are_rejected() {
    let iova = one_cap(
        1,
        1,
        payload(&[
            &2u32.to_ne_bytes(),
            &[0; 4],
            &ne64(0),
            &ne64(0xfff),
            &ne64(0x2000),
            &ne64(0x1fff),
        ]),
    );
    assert_eq!(
        IommuCap::decode(&only(&iova)),
        Err(CapChainError::InvertedRange {
            offset: 0,
            index: 1,
            start: 0x2000,
            end: 0x1fff
        })
    );
}

#[test]
fn iova_range_helpers_handle_the_whole_address_space() {
    let all = IovaRange {
        start: 0,
        end: u64::MAX,
    };
    assert_eq!(all.size(), 1u128 << 64);
    assert!(all.contains(u64::MAX));
    assert!(all.contains_span(u64::MAX, 1));
    assert!(!all.contains_span(u64::MAX, 2));
    assert!(!all.contains_span(0, 0));
    let low = IovaRange {
        start: 0x1000,
        end: 0x1fff,
    };
    assert_eq!(low.size(), 0x1000);
    assert!(low.contains_span(0x1000, 0x1000));
    assert!(!low.contains_span(0x1000, 0x1001));
    assert!(!low.contains_span(0xfff, 1));
    assert!(!low.contains(0x2000));
    let one = IovaRange { start: 5, end: 5 };
    assert_eq!(one.size(), 1);
    assert_eq!(IovaRange { start: 6, end: 5 }.size(), 0);
}

/// `VFIO_IOMMU_GET_INFO` on an x86 host with a 48-bit IOMMU aperture and the MSI window
/// 0xfee00000..=0xfeefffff reserved, hand-built in the order vfio_iommu_type1 adds its
/// capabilities (IOVA ranges, migration, DMA avail), each padded to 8 bytes.
#[test]
fn realistic_type1_info_with_iova_ranges() {
    let mut blob = Vec::new();
    blob.extend_from_slice(&120u32.to_ne_bytes()); // argsz
    blob.extend_from_slice(&3u32.to_ne_bytes()); // PGSIZES | CAPS
    blob.extend_from_slice(&0x4020_1000u64.to_ne_bytes()); // iova_pgsizes: 4K | 2M | 1G
    blob.extend_from_slice(&24u32.to_ne_bytes()); // cap_offset
    blob.extend_from_slice(&[0; 4]); // padding to 24
    blob.extend(header(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 72));
    blob.extend_from_slice(&2u32.to_ne_bytes()); // nr_iovas
    blob.extend_from_slice(&0u32.to_ne_bytes()); // reserved
    for (start, end) in [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0xffff_ffff_ffff)] {
        blob.extend_from_slice(&start.to_ne_bytes());
        blob.extend_from_slice(&end.to_ne_bytes());
    }
    blob.extend(header(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 104));
    blob.extend_from_slice(&0u32.to_ne_bytes()); // flags
    blob.extend_from_slice(&[0; 4]); // padding
    blob.extend_from_slice(&0x1000u64.to_ne_bytes()); // pgsize_bitmap
    blob.extend_from_slice(&0x1000_0000u64.to_ne_bytes()); // max_dirty_bitmap_size
    blob.extend(header(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0));
    blob.extend_from_slice(&65535u32.to_ne_bytes()); // avail
    blob.extend_from_slice(&[0; 4]); // padding
    assert_eq!(blob.len(), 120);

    let cap_offset = u32::from_ne_bytes(blob[16..20].try_into().unwrap());
    let caps = decode_chain(&blob, cap_offset, 24, IommuCap::decode).unwrap();
    let ranges = vec![
        IovaRange {
            start: 0,
            end: 0xfedf_ffff,
        },
        IovaRange {
            start: 0xfef0_0000,
            end: 0xffff_ffff_ffff,
        },
    ];
    assert_eq!(
        caps,
        [
            IommuCap::IovaRanges(ranges.clone()),
            IommuCap::Migration {
                flags: 0,
                pgsize_bitmap: 0x1000,
                max_dirty_bitmap_size: 0x1000_0000
            },
            IommuCap::DmaAvail(65535),
        ]
    );
    assert!(ranges[0].contains_span(0, 0xfee0_0000));
    assert!(!ranges.iter().any(|r| r.contains(0xfee0_0000)));
    assert_eq!(ranges[1].size(), 0xffff_ffff_ffff - 0xfef0_0000 + 1);
    let offsets: Vec<_> = parse_chain(&blob, cap_offset, 24)
        .unwrap()
        .iter()
        .map(|c| (c.offset, c.data.len()))
        .collect();
    assert_eq!(offsets, [(24, 48), (72, 32), (104, 16)]);
}

// ---- device capabilities ----

fn zpci_base(version: u16, fh: Option<u32>) -> Vec<u8> {
    let mut p = payload(&[
        &ne64(0x1_0000),
        &ne64(0xffff_ffff),
        &0x1234u16.to_ne_bytes(),
        &7u16.to_ne_bytes(),
        &64u16.to_ne_bytes(),
        &[0x0a, 0x03],
    ]);
    if let Some(fh) = fh {
        p.extend_from_slice(&fh.to_ne_bytes());
    }
    one_cap(1, version, p)
}

#[test]
fn decodes_zpci_base() {
    let v1 = ZpciBase {
        start_dma: 0x1_0000,
        end_dma: 0xffff_ffff,
        pchid: 0x1234,
        vfn: 7,
        fmb_length: 64,
        pft: 0x0a,
        gid: 3,
        fh: None,
    };
    assert_eq!(
        DeviceCap::decode(&only(&zpci_base(1, None))),
        Ok(DeviceCap::ZpciBase(v1))
    );
    assert_eq!(
        DeviceCap::decode(&only(&zpci_base(2, Some(0x0800_0001)))),
        Ok(DeviceCap::ZpciBase(ZpciBase {
            fh: Some(0x0800_0001),
            ..v1
        }))
    );
    assert!(matches!(
        DeviceCap::decode(&only(&zpci_base(2, None))),
        Err(CapChainError::Truncated {
            id: 1,
            need: 36,
            have: 32,
            ..
        })
    ));
}

#[test]
fn decodes_zpci_group() {
    let mut p = payload(&[
        &ne64(0xffff_ffff_ffff),
        &ne64(0xfe00_0000),
        &ne64(1),
        &4u16.to_ne_bytes(),
        &2048u16.to_ne_bytes(),
        &128u16.to_ne_bytes(),
        &[3, 0],
        &0x800u16.to_ne_bytes(),
    ]);
    let v1 = ZpciGroup {
        dasm: 0xffff_ffff_ffff,
        msi_addr: 0xfe00_0000,
        flags: 1,
        mui: 4,
        noi: 2048,
        maxstbl: 128,
        version: 3,
        imaxstbl: None,
    };
    assert_eq!(
        DeviceCap::decode(&only(&one_cap(2, 2, p.clone()))),
        Ok(DeviceCap::ZpciGroup(ZpciGroup {
            imaxstbl: Some(0x800),
            ..v1
        }))
    );
    p.truncate(31); // version 1 ends after `version` at byte 39 of the capability
    assert_eq!(
        DeviceCap::decode(&only(&one_cap(2, 1, p.clone()))),
        Ok(DeviceCap::ZpciGroup(v1))
    );
    p.truncate(28);
    assert!(matches!(
        DeviceCap::decode(&only(&one_cap(2, 1, p))),
        Err(CapChainError::Truncated {
            id: 2,
            need: 39,
            have: 36,
            ..
        })
    ));
}

#[test]
fn decodes_zpci_strings() {
    let util = one_cap(
        3,
        1,
        payload(&[&5u32.to_ne_bytes(), b"\xc1\xc2\xc3\xc4\xc5"]),
    );
    assert_eq!(
        DeviceCap::decode(&only(&util)),
        Ok(DeviceCap::ZpciUtil(b"\xc1\xc2\xc3\xc4\xc5".to_vec()))
    );
    let pfip = one_cap(4, 1, payload(&[&2u32.to_ne_bytes(), &[1, 2]]));
    assert_eq!(
        DeviceCap::decode(&only(&pfip)),
        Ok(DeviceCap::ZpciPfip(vec![1, 2]))
    );
    let long = one_cap(4, 1, payload(&[&9u32.to_ne_bytes(), &[1, 2]]));
    assert!(matches!(
        DeviceCap::decode(&only(&long)),
        Err(CapChainError::Truncated {
            id: 4,
            need: 21,
            have: 16,
            ..
        })
    ));
    assert_eq!(
        DeviceCap::decode(&only(&one_cap(77, 1, vec![]))),
        Ok(DeviceCap::Unknown { id: 77, version: 1 })
    );
}
