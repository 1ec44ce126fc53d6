//! The test frames: built by the sender in TX packet buffers, checked by the receiver in RX
//! packet buffers.
//!
//! ```text
//! offset  size  field
//!      0     6  destination MAC (NIC B)
//!      6     6  source MAC (NIC A)
//!     12     2  EtherType 0x88b5 (IEEE 802 "local experimental"), big-endian
//!     14     4  magic "uvfi"                         (integers below: little-endian)
//!     18     4  run id: differs from run to run, so frames of an earlier run are told apart
//!     22     8  sequence number: 0, 1, 2, ... in sending order
//!     30     2  frame length in bytes (without FCS)
//!     32     2  flags: bit 0 the body is checksummed, bit 1 a probe frame (not counted)
//!     34     4  checksum of run id, sequence number, length, flags and body
//!     38     -  body to the end of the frame: a pattern computed from the sequence number
//! ```
//!
//! The body depends on the sequence number, so a frame that arrives with an earlier frame's
//! data (a buffer recycled too early, a descriptor pointing at the wrong buffer) fails the
//! checksum just like flipped bits do. The checksum is a 64-bit multiply-rotate hash over
//! 8-byte words, order-sensitive and cheap enough to run on every frame.
//!
//! In *header-only* mode (the benchmark's) the sender writes only the first 38 bytes into the
//! buffer and the receiver reads only those: the body is whatever the buffer held, which is
//! what a traffic generator such as Linux's pktgen does with a cloned packet.

use uvfio::dma::{DmaMemory, PoolBuffer};

use crate::device::Mac;

/// The EtherType of test frames.
pub const ETHERTYPE: u16 = 0x88b5;
/// The magic number after the Ethernet header.
pub const MAGIC: u32 = u32::from_le_bytes(*b"uvfi");
/// Where the body starts.
pub const HEADER_END: usize = 38;
/// The smallest frame without FCS (64 bytes on the wire).
pub const MIN_FRAME: usize = 60;
/// The largest frame without FCS for a 1500-byte MTU.
pub const MAX_FRAME: usize = 1514;

const FLAG_CHECKSUMMED: u16 = 1 << 0;
const FLAG_PROBE: u16 = 1 << 1;

/// Frame sizes: one size, or sizes spread over a range (a hash of the sequence number picks
/// each frame's size, so sender and receiver agree without telling each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Smallest frame, without FCS.
    pub min: usize,
    /// Largest frame, without FCS.
    pub max: usize,
}

impl Sizes {
    /// The size of frame `seq`.
    #[inline]
    pub fn of(&self, seq: u64) -> usize {
        if self.min == self.max {
            return self.min;
        }
        let span = (self.max - self.min + 1) as u64;
        self.min + (mix(seq ^ 0x5eed) % span) as usize
    }
}

/// How much of each frame is written and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Every byte: a body pattern per sequence number, checksummed and verified.
    Full,
    /// The 38-byte header only (sequence number, length); the body is not touched.
    HeaderOnly,
}

/// A 64-bit mixer (the finaliser of SplitMix64).
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Word `i` of frame `seq`'s body.
#[inline]
fn pattern(seq: u64, i: usize) -> u64 {
    mix(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64))
}

/// The checksum of a frame: header fields, then the body in 8-byte words (the last one
/// zero-padded).
fn checksum(run: u32, seq: u64, len: u16, flags: u16, body: &[u8]) -> u32 {
    let mut h = mix(u64::from(run) << 32 | u64::from(len) << 16 | u64::from(flags)) ^ seq;
    let mut words = body.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(last)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let h = mix(h);
    (h ^ (h >> 32)) as u32
}

/// Builds test frames into packet buffers.
#[derive(Debug)]
pub struct FrameBuilder {
    frame: Box<[u8; MAX_FRAME]>,
    run: u32,
    sizes: Sizes,
    payload: Payload,
}

impl FrameBuilder {
    /// Frames from `src` to `dst` for run `run`.
    pub fn new(dst: Mac, src: Mac, run: u32, sizes: Sizes, payload: Payload) -> FrameBuilder {
        let mut frame = Box::new([0u8; MAX_FRAME]);
        frame[0..6].copy_from_slice(&dst.0);
        frame[6..12].copy_from_slice(&src.0);
        frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        frame[14..18].copy_from_slice(&MAGIC.to_le_bytes());
        frame[18..22].copy_from_slice(&run.to_le_bytes());
        FrameBuilder {
            frame,
            run,
            sizes,
            payload,
        }
    }

    /// Writes frame `seq` into `buf`; returns its length.
    #[inline]
    pub fn build(&mut self, seq: u64, buf: &mut PoolBuffer) -> uvfio::Result<usize> {
        let len = self.sizes.of(seq);
        match self.payload {
            Payload::Full => {
                let body = &mut self.frame[HEADER_END..len];
                let mut words = body.chunks_exact_mut(8);
                let mut i = 0;
                for w in &mut words {
                    w.copy_from_slice(&pattern(seq, i).to_le_bytes());
                    i += 1;
                }
                let rest = words.into_remainder();
                let n = rest.len();
                rest.copy_from_slice(&pattern(seq, i).to_le_bytes()[..n]);
                self.header(seq, len, FLAG_CHECKSUMMED);
                buf.write_slice(0, &self.frame[..len])?;
            }
            Payload::HeaderOnly => {
                self.header(seq, len, 0);
                buf.write_slice(0, &self.frame[..HEADER_END])?;
            }
        }
        Ok(len)
    }

    /// Writes a probe frame (used to find out when the receiver is ready; not counted) into
    /// `buf`; returns its length.
    pub fn build_probe(&mut self, buf: &mut PoolBuffer) -> uvfio::Result<usize> {
        self.header(0, MIN_FRAME, FLAG_PROBE);
        self.frame[HEADER_END..MIN_FRAME].fill(0);
        buf.write_slice(0, &self.frame[..MIN_FRAME])?;
        Ok(MIN_FRAME)
    }

    fn header(&mut self, seq: u64, len: usize, flags: u16) {
        let f = &mut self.frame;
        f[22..30].copy_from_slice(&seq.to_le_bytes());
        f[30..32].copy_from_slice(&(len as u16).to_le_bytes());
        f[32..34].copy_from_slice(&flags.to_le_bytes());
        let sum = if flags & FLAG_CHECKSUMMED != 0 {
            checksum(self.run, seq, len as u16, flags, &f[HEADER_END..len])
        } else {
            0
        };
        f[34..38].copy_from_slice(&sum.to_le_bytes());
    }
}

/// What the receiver makes of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A good test frame with this sequence number.
    Good(u64),
    /// A probe frame of this run.
    Probe,
    /// A test frame of another run (e.g. queued in the emulated hub by an earlier run).
    Stale,
    /// A frame that is not a test frame at all, or a damaged one.
    Corrupt(Damage),
}

/// How a frame was found damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Shorter than the header, or longer than any test frame.
    BadLength(usize),
    /// Wrong addresses, EtherType or magic: not a test frame.
    NotTestFrame,
    /// The length field disagrees with the received length.
    LengthMismatch {
        /// The sequence number the frame claims.
        seq: u64,
        /// The length field.
        said: usize,
        /// The length received.
        got: usize,
    },
    /// The checksum does not match the contents.
    Checksum {
        /// The sequence number the frame claims.
        seq: u64,
    },
}

/// Checks received test frames.
#[derive(Debug)]
pub struct FrameChecker {
    frame: Box<[u8; MAX_FRAME]>,
    prefix: [u8; 18],
    run: u32,
    payload: Payload,
}

impl FrameChecker {
    /// Checks frames from `src` to `dst` of run `run`.
    pub fn new(dst: Mac, src: Mac, run: u32, payload: Payload) -> FrameChecker {
        let mut prefix = [0u8; 18];
        prefix[0..6].copy_from_slice(&dst.0);
        prefix[6..12].copy_from_slice(&src.0);
        prefix[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        prefix[14..18].copy_from_slice(&MAGIC.to_le_bytes());
        FrameChecker {
            frame: Box::new([0u8; MAX_FRAME]),
            prefix,
            run,
            payload,
        }
    }

    /// Checks the `len` bytes of frame in `buf`.
    #[inline]
    pub fn check(&mut self, buf: &PoolBuffer, len: usize) -> uvfio::Result<Verdict> {
        if !(HEADER_END..=MAX_FRAME).contains(&len) {
            return Ok(Verdict::Corrupt(Damage::BadLength(len)));
        }
        let read = match self.payload {
            Payload::Full => len,
            Payload::HeaderOnly => HEADER_END,
        };
        let f = &mut self.frame[..read];
        buf.read_slice(0, f)?;
        if f[..18] != self.prefix {
            return Ok(Verdict::Corrupt(Damage::NotTestFrame));
        }
        let run = u32::from_le_bytes(f[18..22].try_into().expect("4 bytes"));
        if run != self.run {
            return Ok(Verdict::Stale);
        }
        let seq = u64::from_le_bytes(f[22..30].try_into().expect("8 bytes"));
        let said = u16::from_le_bytes(f[30..32].try_into().expect("2 bytes"));
        let flags = u16::from_le_bytes(f[32..34].try_into().expect("2 bytes"));
        let sum = u32::from_le_bytes(f[34..38].try_into().expect("4 bytes"));
        if flags & FLAG_PROBE != 0 {
            return Ok(Verdict::Probe);
        }
        if usize::from(said) != len {
            return Ok(Verdict::Corrupt(Damage::LengthMismatch {
                seq,
                said: said.into(),
                got: len,
            }));
        }
        if self.payload == Payload::Full
            && flags & FLAG_CHECKSUMMED != 0
            && checksum(run, seq, said, flags, &f[HEADER_END..len]) != sum
        {
            return Ok(Verdict::Corrupt(Damage::Checksum { seq }));
        }
        Ok(Verdict::Good(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_range() {
        let s = Sizes { min: 60, max: 1514 };
        for seq in 0..10_000 {
            assert!((60..=1514).contains(&s.of(seq)));
        }
        assert_eq!(Sizes { min: 64, max: 64 }.of(7), 64);
    }

    #[test]
    fn checksum_sees_swaps_and_flips() {
        let body: Vec<u8> = (0..100u8).collect();
        let base = checksum(1, 2, 138, 1, &body);
        let mut swapped = body.clone();
        swapped.swap(0, 8);
        assert_ne!(base, checksum(1, 2, 138, 1, &swapped));
        let mut flipped = body.clone();
        flipped[99] ^= 1;
        assert_ne!(base, checksum(1, 2, 138, 1, &flipped));
        assert_ne!(base, checksum(1, 3, 138, 1, &body));
    }
}
