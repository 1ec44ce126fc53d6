//! The VFIO capability chain walker (`uvfio::uapi::caps::CapChain`) and the three typed
//! decoders, on any bytes, any first offset and any fixed-part length.
//!
//! Input: `fixed_len: u8`, `first: u32` (little-endian), then the info buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::uapi::caps::{
    parse_chain, Cap, CapChain, DeviceCap, IommuCap, RegionCap, CAP_ALIGN, CAP_HEADER_LEN, MAX_CAPS,
};
use uvfio_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let fixed_len = usize::from(input.u8());
    let first = input.u32();
    let buf = input.rest();

    let mut chain = CapChain::new(buf, first, fixed_len);
    let mut caps: Vec<Cap<'_>> = Vec::new();
    let mut failed = false;
    for item in chain.by_ref() {
        assert!(!failed, "the walk went on after an error");
        match item {
            Ok(cap) => caps.push(cap),
            Err(_) => failed = true,
        }
    }
    // Fused: nothing after the end.
    assert!(chain.next().is_none());
    assert!(caps.len() <= buf.len() / CAP_HEADER_LEN && caps.len() <= MAX_CAPS);
    if first == 0 {
        assert!(caps.is_empty() && !failed, "offset 0 is no chain");
    }

    for (i, cap) in caps.iter().enumerate() {
        // Every capability lies inside the buffer, past the fixed part, aligned, with a whole
        // header, and its bytes are the buffer's bytes at its offset.
        assert!(cap.offset >= fixed_len && cap.offset % CAP_ALIGN == 0);
        assert!(cap.data.len() >= CAP_HEADER_LEN);
        let end = cap.offset + cap.data.len();
        assert!(end <= buf.len());
        assert_eq!(cap.data, &buf[cap.offset..end]);
        assert_eq!(cap.id, u16::from_ne_bytes([cap.data[0], cap.data[1]]));
        assert_eq!(cap.version, u16::from_ne_bytes([cap.data[2], cap.data[3]]));
        assert_eq!(cap.payload(), &cap.data[CAP_HEADER_LEN..]);
        let next = u32::from_ne_bytes(cap.data[4..8].try_into().unwrap());
        match caps.get(i + 1) {
            // The chain goes forward and the extents tile it: each one ends where the next
            // starts, which is where its `next` points.
            Some(following) => {
                assert_eq!(following.offset, end);
                assert_eq!(usize::try_from(next).unwrap(), following.offset);
            }
            // The last one ends the chain (next 0, to the end of the buffer) unless the walk
            // failed on its `next`.
            None if !failed => {
                assert_eq!(next, 0);
                assert_eq!(end, buf.len());
            }
            None => {}
        }
        if i == 0 {
            assert_eq!(usize::try_from(first).unwrap(), cap.offset);
        }

        // The decoders never read outside the capability and check what they return.
        if let Ok(RegionCap::SparseMmap(areas)) = RegionCap::decode(cap) {
            assert!(16 + 16 * areas.len() <= cap.data.len());
        }
        match IommuCap::decode(cap) {
            Ok(IommuCap::IovaRanges(ranges)) => {
                assert!(16 + 16 * ranges.len() <= cap.data.len());
                assert!(ranges.iter().all(|r| r.start <= r.end && r.size() > 0));
            }
            Ok(IommuCap::Migration { .. }) => assert!(cap.data.len() >= 32),
            Ok(IommuCap::DmaAvail(_)) => assert!(cap.data.len() >= 12),
            _ => {}
        }
        match DeviceCap::decode(cap) {
            Ok(DeviceCap::ZpciUtil(s) | DeviceCap::ZpciPfip(s)) => {
                assert!(12 + s.len() <= cap.data.len());
                assert_eq!(s, &cap.data[12..12 + s.len()]);
            }
            Ok(DeviceCap::ZpciBase(base)) => assert_eq!(base.fh.is_some(), cap.version >= 2),
            Ok(DeviceCap::ZpciGroup(group)) => {
                assert_eq!(group.imaxstbl.is_some(), cap.version >= 2)
            }
            _ => {}
        }
    }

    // The collecting form agrees with the iterator.
    match parse_chain(buf, first, fixed_len) {
        Ok(all) => assert!(!failed && all == caps),
        Err(_) => assert!(failed),
    }
});
