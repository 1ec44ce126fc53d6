//! Unit tests of the capability chain walker and decoders.

use super::*;
use proptest::prelude::*;

fn header(id: u16, version: u16, next: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_ne_bytes());
    h.extend_from_slice(&version.to_ne_bytes());
    h.extend_from_slice(&next.to_ne_bytes());
    h
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// A `fixed_len`-byte fixed part (filled with 0xee), then `caps` (id, version, payload) laid
/// out back to back, each payload padded with zeros to a multiple of 4 bytes. Returns the
/// buffer and each capability's offset.
fn build(fixed_len: usize, caps: &[(u16, u16, Vec<u8>)]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = vec![0xee; fixed_len];
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
    let mut offsets = Vec::new();
    for (i, (id, version, payload)) in caps.iter().enumerate() {
        let offset = buf.len();
        offsets.push(offset);
        let padded = payload.len().div_ceil(4) * 4;
        let next = if i + 1 == caps.len() {
            0
        } else {
            (offset + CAP_HEADER_LEN + padded) as u32
        };
        buf.extend(header(*id, *version, next));
        buf.extend_from_slice(payload);
        buf.resize(offset + CAP_HEADER_LEN + padded, 0);
    }
    (buf, offsets)
}

fn first(offsets: &[usize]) -> u32 {
    offsets.first().map_or(0, |&o| o as u32)
}

fn ne64(v: u64) -> [u8; 8] {
    v.to_ne_bytes()
}

fn payload(words: &[&[u8]]) -> Vec<u8> {
    words.concat()
}

fn one_cap(id: u16, version: u16, p: Vec<u8>) -> Vec<u8> {
    let (buf, _) = build(0, &[(id, version, p)]);
    buf
}

fn only(buf: &[u8]) -> Cap<'_> {
    let caps = parse_chain(buf, 0, 0);
    // A chain starting at 0 is empty by definition, so single-cap buffers built at offset 0
    // are walked by hand here.
    assert_eq!(caps, Ok(vec![]));
    CapChain {
        buf,
        fixed_len: 0,
        state: State::At(0),
        count: 0,
    }
    .next()
    .expect("one capability")
    .expect("valid capability")
}

mod decoders;

// ---- the walk ----

#[test]
fn no_chain_when_first_is_zero() {
    let buf = [0u8; 64];
    let mut chain = CapChain::new(&buf, 0, 32);
    assert_eq!(chain.size_hint(), (0, Some(0)));
    assert_eq!(chain.next(), None);
    assert_eq!(chain.next(), None);
}

#[test]
fn single_capability_extends_to_the_end_of_the_buffer() {
    let (mut buf, offsets) = build(32, &[(7, 3, vec![1, 2, 3, 4])]);
    buf.extend_from_slice(&[9; 8]); // trailing bytes belong to the last capability
    let caps = parse_chain(&buf, first(&offsets), 32).unwrap();
    assert_eq!(caps.len(), 1);
    let cap = caps[0];
    assert_eq!((cap.id, cap.version, cap.offset), (7, 3, 32));
    assert_eq!(cap.data.len(), 8 + 4 + 8);
    assert_eq!(cap.data[..8], header(7, 3, 0)[..]);
    assert_eq!(cap.payload(), &[1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]);
}

#[test]
fn several_capabilities_each_end_where_the_next_starts() {
    let caps_in = [
        (1, 1, vec![0xaa; 24]),
        (3, 1, vec![]),
        (2, 1, vec![0xbb; 8]),
    ];
    let (buf, offsets) = build(24, &caps_in);
    assert_eq!(offsets, [24, 56, 64]);
    let caps = parse_chain(&buf, 24, 24).unwrap();
    let summary: Vec<_> = caps
        .iter()
        .map(|c| (c.id, c.offset, c.data.len()))
        .collect();
    assert_eq!(summary, [(1, 24, 32), (3, 56, 8), (2, 64, 16)]);
    assert_eq!(caps[1].payload(), &[] as &[u8]);
    assert_eq!(caps[2].payload(), &[0xbb; 8]);
}

#[test]
fn a_next_may_skip_bytes() {
    // Capability at 16 says next = 40, leaving 16 bytes of gap that belong to it.
    let mut buf = vec![0u8; 56];
    buf[16..24].copy_from_slice(&header(1, 1, 40));
    buf[40..48].copy_from_slice(&header(2, 1, 0));
    let caps = parse_chain(&buf, 16, 16).unwrap();
    assert_eq!(caps[0].data.len(), 24);
    assert_eq!(caps[1].data.len(), 16);
}

#[test]
fn device_info_chains_at_offset_20_are_accepted() {
    // struct vfio_device_info is 20 bytes; its first capability sits at 20.
    let (buf, offsets) = build(20, &[(1, 1, vec![0; 24]), (2, 1, vec![0; 32])]);
    assert_eq!(offsets, [20, 52]);
    assert_eq!(parse_chain(&buf, 20, 20).unwrap().len(), 2);
}

#[test]
fn rejects_a_first_offset_inside_the_fixed_part() {
    let (buf, _) = build(32, &[(1, 1, vec![0; 8])]);
    assert_eq!(
        parse_chain(&buf, 16, 32),
        Err(CapChainError::InsideFixedPart {
            offset: 16,
            fixed_len: 32
        })
    );
}

#[test]
fn rejects_offsets_past_the_end() {
    let (mut buf, offsets) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
    assert_eq!((offsets[1], buf.len()), (48, 64));
    assert_eq!(
        parse_chain(&buf, 64, 32),
        Err(CapChainError::PastEnd {
            offset: 64,
            len: 64
        })
    );
    assert_eq!(
        parse_chain(&buf, u32::MAX - 3, 32),
        Err(CapChainError::PastEnd {
            offset: (u32::MAX - 3) as usize,
            len: 64
        })
    );
    // The first capability's next points past the end: reported instead of that capability.
    put_u32(&mut buf, 36, 1000);
    let mut chain = CapChain::new(&buf, 32, 32);
    assert_eq!(
        chain.next(),
        Some(Err(CapChainError::PastEnd {
            offset: 1000,
            len: 64
        }))
    );
    assert_eq!(chain.next(), None);
}

#[test]
fn rejects_a_header_that_does_not_fit() {
    let buf = vec![0u8; 36];
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::HeaderTruncated {
            offset: 32,
            len: 36
        })
    );
    let mut buf = vec![0u8; 44];
    buf[32..40].copy_from_slice(&header(1, 1, 40));
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::HeaderTruncated {
            offset: 40,
            len: 44
        })
    );
}

#[test]
fn rejects_misaligned_offsets() {
    let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
    assert_eq!(
        parse_chain(&buf, 34, 32),
        Err(CapChainError::Misaligned { offset: 34 })
    );
    put_u32(&mut buf, 36, 42);
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::Misaligned { offset: 42 })
    );
}

#[test]
fn rejects_loops_and_backward_links() {
    let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
    // The first capability points at itself.
    put_u32(&mut buf, 36, 32);
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::Backward {
            offset: 32,
            next: 32
        })
    );
    // The second points back at the first: the first is yielded, then the error.
    put_u32(&mut buf, 36, 48);
    put_u32(&mut buf, 52, 32);
    let items: Vec<_> = CapChain::new(&buf, 32, 32).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().map(|c| c.id), Ok(1));
    assert_eq!(
        items[1],
        Err(CapChainError::Backward {
            offset: 48,
            next: 32
        })
    );
    // A backward link into the fixed part is still "backward".
    put_u32(&mut buf, 52, 8);
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::Backward {
            offset: 48,
            next: 8
        })
    );
}

#[test]
fn rejects_a_next_inside_the_header() {
    let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
    put_u32(&mut buf, 36, 36);
    assert_eq!(
        parse_chain(&buf, 32, 32),
        Err(CapChainError::Overlapping {
            offset: 32,
            next: 36
        })
    );
}

#[test]
fn stops_after_max_caps() {
    let caps: Vec<_> = (0..=MAX_CAPS).map(|i| (i as u16, 1, vec![])).collect();
    let (buf, offsets) = build(16, &caps);
    let items: Vec<_> = CapChain::new(&buf, 16, 16).collect();
    assert_eq!(items.len(), MAX_CAPS + 1);
    assert!(items[..MAX_CAPS].iter().all(Result::is_ok));
    assert_eq!(
        items[MAX_CAPS],
        Err(CapChainError::TooManyCaps {
            limit: MAX_CAPS,
            offset: offsets[MAX_CAPS]
        })
    );
}

#[test]
fn size_hint_bounds_the_walk() {
    let (buf, _) = build(16, &[(1, 1, vec![0; 8]), (2, 1, vec![])]);
    let mut chain = CapChain::new(&buf, 16, 16);
    assert_eq!(buf.len(), 40);
    assert_eq!(chain.size_hint(), (0, Some((40 - 16) / 8 + 1)));
    chain.next();
    assert_eq!(chain.size_hint(), (0, Some((40 - 32) / 8 + 1)));
    chain.next();
    assert_eq!(chain.size_hint(), (0, Some(0)));
}

#[test]
fn errors_name_the_offsets() {
    let e = CapChainError::Backward {
        offset: 48,
        next: 32,
    };
    assert_eq!(
        e.to_string(),
        "capability at offset 48 has next 32, which does not go forward"
    );
    let e = CapChainError::Truncated {
        id: 1,
        offset: 32,
        need: 48,
        have: 40,
    };
    assert_eq!(
        e.to_string(),
        "capability 1 at offset 32 needs 48 bytes, has 40"
    );
}

// ---- properties ----

/// Walks the chain and checks every invariant the module promises, whatever the input.
fn check_walk(buf: &[u8], first: u32, fixed_len: usize) -> Result<(), TestCaseError> {
    let mut chain = CapChain::new(buf, first, fixed_len);
    let (_, upper) = chain.size_hint();
    let upper = upper.unwrap_or(usize::MAX);
    prop_assert!(upper <= buf.len() / CAP_HEADER_LEN + 1);
    let mut oks = 0usize;
    let mut prev: Option<usize> = None;
    let mut steps = 0usize;
    while let Some(item) = chain.next() {
        steps += 1;
        prop_assert!(steps <= upper, "more items than size_hint promised");
        match item {
            Ok(cap) => {
                oks += 1;
                prop_assert!(cap.offset >= fixed_len);
                prop_assert_eq!(cap.offset % CAP_ALIGN, 0);
                prop_assert!(cap.data.len() >= CAP_HEADER_LEN);
                prop_assert!(cap.offset + cap.data.len() <= buf.len());
                if let Some(p) = prev {
                    prop_assert!(cap.offset >= p + CAP_HEADER_LEN);
                }
                prev = Some(cap.offset);
                // The decoders never panic either.
                let _ = RegionCap::decode(&cap);
                let _ = IommuCap::decode(&cap);
                let _ = DeviceCap::decode(&cap);
            }
            Err(_) => {
                prop_assert_eq!(chain.next(), None, "an error ends the walk");
                break;
            }
        }
    }
    prop_assert!(oks <= buf.len() / CAP_HEADER_LEN);
    prop_assert_eq!(chain.next(), None);
    prop_assert_eq!(chain.next(), None);
    Ok(())
}

fn cap_strategy() -> impl Strategy<Value = (u16, u16, Vec<u8>)> {
    (
        0u16..8,
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|mut p| {
            p.resize(p.len() / 4 * 4, 0);
            p
        }),
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_terminate(
        buf in prop::collection::vec(any::<u8>(), 0..512),
        first in prop_oneof![0u32..600, any::<u32>()],
        fixed_len in 0usize..64,
    ) {
        check_walk(&buf, first, fixed_len)?;
    }

    #[test]
    fn corrupted_chains_never_panic_and_terminate(
        fixed4 in 0usize..10,
        caps in prop::collection::vec(cap_strategy(), 1..10),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (mut buf, offsets) = build(fixed4 * 4, &caps);
        for (index, byte) in edits {
            let i = index.index(buf.len());
            buf[i] = byte;
        }
        check_walk(&buf, first(&offsets), fixed4 * 4)?;
    }

    #[test]
    fn valid_chains_round_trip(
        fixed4 in 0usize..10,
        caps in prop::collection::vec(cap_strategy(), 0..10),
        trailing in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let fixed_len = fixed4 * 4;
        let (mut buf, offsets) = build(fixed_len, &caps);
        buf.extend_from_slice(&trailing);
        // A chain built at offset 0 cannot be named by `first` (0 means none): skip it.
        prop_assume!(offsets.first() != Some(&0));
        let parsed = parse_chain(&buf, first(&offsets), fixed_len);
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        let parsed = parsed.unwrap_or_default();
        prop_assert_eq!(parsed.len(), caps.len());
        for (i, (cap, (id, version, payload))) in parsed.iter().zip(&caps).enumerate() {
            prop_assert_eq!(cap.id, *id);
            prop_assert_eq!(cap.version, *version);
            prop_assert_eq!(cap.offset, offsets[i]);
            let mut expected = payload.clone();
            if i + 1 == caps.len() {
                expected.extend_from_slice(&trailing);
            }
            prop_assert_eq!(cap.payload(), &expected[..]);
        }
    }
}
