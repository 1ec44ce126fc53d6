//! Bulk copies in and out of a mapping, in the access widths the kernel's `pread` path uses.

use super::map::Mapping;

/// The width of the next access at `rel` with `left` bytes to go: 4, 2 or 1, as the kernel's
/// `pread` path does it.
fn width(rel: usize, left: usize) -> usize {
    if left >= 4 && rel % 4 == 0 {
        4
    } else if left >= 2 && rel % 2 == 0 {
        2
    } else {
        1
    }
}

/// Copies out of a mapping; the caller checked the range lies inside it (a failed access, which
/// cannot happen then, leaves the bytes zero rather than panicking).
pub(super) fn copy_from_mapping(map: &Mapping, mut rel: usize, out: &mut [u8]) {
    let mut i = 0;
    while i < out.len() {
        let w = width(rel, out.len() - i);
        let dst = &mut out[i..i + w];
        match w {
            4 => map
                .read::<u32>(rel)
                .map(|v| dst.copy_from_slice(&v.to_ne_bytes())),
            2 => map
                .read::<u16>(rel)
                .map(|v| dst.copy_from_slice(&v.to_ne_bytes())),
            _ => map.read::<u8>(rel).map(|v| dst[0] = v),
        };
        i += w;
        rel += w;
    }
}

/// Copies into a mapping; the caller checked the range lies inside it.
pub(super) fn copy_to_mapping(map: &Mapping, mut rel: usize, src: &[u8]) {
    let mut i = 0;
    while i < src.len() {
        let w = width(rel, src.len() - i);
        let s = &src[i..i + w];
        match w {
            4 => map.write::<u32>(rel, u32::from_ne_bytes([s[0], s[1], s[2], s[3]])),
            2 => map.write::<u16>(rel, u16::from_ne_bytes([s[0], s[1]])),
            _ => map.write::<u8>(rel, s[0]),
        };
        i += w;
        rel += w;
    }
}
