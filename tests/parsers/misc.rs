//! Dirty bitmaps, hot-reset info, the IRQ-set builder's inputs and device filters.

use proptest::prelude::*;
use uvfio::device::irq::{IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo, IrqRequestError};
use uvfio::device::{HotResetInfo, HotResetOwner};
use uvfio::iommu::DirtyBitmap;
use uvfio::pci::discover::Filter;

proptest! {
    #[test]
    fn dirty_bitmaps_match_a_vector_of_bools(
        shift in 12u32..22,
        first_page in 0u64..1 << 20,
        bits in prop::collection::vec(any::<bool>(), 1..300),
        stray in any::<u64>(),
    ) {
        let page = 1u64 << shift;
        let iova = first_page * page;
        let mut words = vec![0u64; bits.len().div_ceil(64)];
        for (p, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
            words[p / 64] |= 1 << (p % 64);
        }
        // Bits past the last page are not pages.
        if bits.len() % 64 != 0 {
            *words.last_mut().unwrap() |= stray << (bits.len() % 64);
        }
        let size = bits.len() as u64 * page;
        let bitmap = DirtyBitmap::from_words(iova, size, page, words).unwrap();
        let expect: Vec<u64> = (0..bits.len() as u64)
            .filter(|&p| bits[p as usize])
            .map(|p| iova + p * page)
            .collect();
        prop_assert_eq!(bitmap.dirty_pages().collect::<Vec<_>>(), expect.clone());
        prop_assert_eq!(bitmap.dirty_count(), expect.len() as u64);
        for (p, &b) in bits.iter().enumerate() {
            prop_assert_eq!(bitmap.is_dirty(iova + p as u64 * page + page / 2), b);
        }
        prop_assert!(!bitmap.is_dirty(iova + size));
    }

    #[test]
    fn hot_reset_info_matches_a_naive_decoder(
        flags in 0u32..4,
        entries in prop::collection::vec((any::<u32>(), any::<u16>(), any::<u8>(), any::<u8>()), 0..6),
        claimed in prop::option::of(0u32..10),
        slack in 0usize..12,
    ) {
        let count = claimed.unwrap_or(entries.len() as u32);
        let mut bytes = Vec::new();
        for v in [0, flags, count] {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        for &(group, segment, bus, devfn) in &entries {
            bytes.extend_from_slice(&group.to_ne_bytes());
            bytes.extend_from_slice(&segment.to_ne_bytes());
            bytes.extend_from_slice(&[bus, devfn]);
        }
        bytes.extend(std::iter::repeat_n(0xa5, slack));
        let got = HotResetInfo::decode(&bytes);
        if count as usize > entries.len() + slack / 8 {
            prop_assert!(got.is_err());
            return Ok(());
        }
        let info = got.unwrap();
        prop_assert_eq!(info.all_owned, flags & 2 != 0);
        prop_assert_eq!(info.devices.len(), count as usize);
        for (i, d) in info.devices.iter().enumerate() {
            let (group, segment, bus, devfn) = entries.get(i).copied().unwrap_or((0xa5a5_a5a5, 0xa5a5, 0xa5, 0xa5));
            let a = d.address.unwrap();
            prop_assert_eq!((a.domain(), a.bus(), a.device(), a.function()),
                (u32::from(segment), bus, devfn / 8, devfn % 8));
            let owner = match (flags & 1 != 0, group) {
                (false, g) => HotResetOwner::Group(g),
                (true, u32::MAX) => HotResetOwner::NotOwned,
                (true, 0) => HotResetOwner::OwnedUnbound,
                (true, id) => HotResetOwner::Device(id),
            };
            prop_assert_eq!(d.owner, owner);
        }
    }

    #[test]
    fn irq_requests_are_checked_like_the_kernel(
        flags in 0u32..16,
        count in 0u32..8,
        action in 0u8..3,
        start in 0u32..10,
        kind in 0u8..3,
        n in 0usize..10,
    ) {
        let info = IrqInfo { index: IrqIndex::MSIX, flags: IrqFlags::from_bits_retain(flags), count };
        let action = [IrqAction::Mask, IrqAction::Unmask, IrqAction::Trigger][usize::from(action)];
        let bools = vec![true; n];
        let stdin = std::io::stdin();
        let fds = vec![Some(std::os::fd::AsFd::as_fd(&stdin)); n];
        let data = match kind {
            0 => IrqData::None { count: n as u32 },
            1 => IrqData::Bool(&bools),
            _ => IrqData::Eventfd(&fds),
        };
        // The kernel's order: an index without vectors; the range (disable: start 0; else at
        // least one vector, all inside); mask/unmask need MASKABLE; eventfds need EVENTFD.
        let disable = action == IrqAction::Trigger && kind == 0 && n == 0;
        let in_range = if disable { start == 0 } else { n > 0 && start as usize + n <= count as usize };
        let expect = if count == 0 {
            Err(IrqRequestError::NoVectors)
        } else if !in_range && disable {
            Err(IrqRequestError::DisableNeedsStartZero)
        } else if !in_range {
            Err(IrqRequestError::OutOfRange { start, count: n as u64, have: count })
        } else if action != IrqAction::Trigger && flags & IrqFlags::MASKABLE.bits() == 0 {
            Err(IrqRequestError::NotMaskable)
        } else if kind == 2 && flags & IrqFlags::EVENTFD.bits() == 0 {
            Err(IrqRequestError::NoEventfds)
        } else {
            Ok(())
        };
        prop_assert_eq!(info.check_request(action, start, &data), expect);
    }

    #[test]
    fn device_filters_parse_to_what_they_say(
        vendor in prop::option::of(any::<u16>()),
        device in prop::option::of(any::<u16>()),
        class in prop::option::of((any::<u32>(), prop::sample::select(vec![2usize, 4, 6]))),
        upper in any::<bool>(),
        pad in 0usize..3,
    ) {
        let hex = |v: u32, digits: usize| format!("{v:0digits$x}");
        let mut text = format!(
            "{}:{}",
            vendor.map_or(String::new(), |v| hex(v.into(), pad.min(4 - hex(v.into(), 1).len().min(4)) + hex(v.into(), 1).len())),
            device.map_or(String::new(), |d| hex(d.into(), 1)),
        );
        let mut expect = Filter::any();
        if let Some(v) = vendor {
            expect = expect.vendor(v);
        }
        if let Some(d) = device {
            expect = expect.device(d);
        }
        if let Some((code, digits)) = class {
            let code = code & ((1u32 << (4 * digits)) - 1);
            text.push(':');
            text.push_str(&hex(code, digits));
            expect = match digits {
                2 => expect.class(code << 16, 0xff_0000),
                4 => expect.class(code << 8, 0xff_ff00),
                _ => expect.class(code, 0xff_ffff),
            };
        }
        if upper {
            text = text.to_uppercase();
        }
        prop_assert_eq!(text.parse::<Filter>(), Ok(expect), "{}", text);
    }
}
