//! What to map of a region: the kernel's mmap areas, checked, minus what must stay unmapped.
//!
//! Pure arithmetic on offsets, kept apart from the mapping itself so every rule is unit-tested:
//! - only the areas the kernel offers are mapped: the sparse-mmap areas when the region has that
//!   capability, the whole region when it has only the MMAP flag, nothing otherwise;
//! - an area must start on a host page boundary and lie inside the region, and areas must not
//!   overlap, or the kernel's answer is refused as malformed;
//! - excluded ranges (the MSI-X table and PBA) are widened to whole host pages, because a page
//!   is the smallest thing mmap can leave out, and cut out of the areas;
//! - an area's end need not be page-aligned (a sub-page BAR): the mapping covers the rest of the
//!   page, as the kernel allows, but accesses stop at the area's end.

use std::ops::Range;

/// The pieces of a region (offsets within it) to map, in ascending order, or why the kernel's
/// areas cannot be trusted.
pub(crate) fn pieces(
    region_size: u64,
    region_offset: u64,
    areas: &[(u64, u64)],
    exclude: &[Range<u64>],
    page: u64,
) -> Result<Vec<Range<u64>>, String> {
    if areas.is_empty() {
        return Ok(Vec::new());
    }
    if !page.is_power_of_two() {
        return Err(format!("page size {page} is not a power of two"));
    }
    if region_offset % page != 0 {
        return Err(format!(
            "the region starts at fd offset {region_offset:#x}, not on a {page:#x}-byte page"
        ));
    }
    let mut checked: Vec<Range<u64>> = Vec::with_capacity(areas.len());
    for &(offset, size) in areas {
        if size == 0 {
            continue;
        }
        let end = offset
            .checked_add(size)
            .filter(|&end| end <= region_size)
            .ok_or_else(|| {
                format!(
                    "mmap area {offset:#x}+{size:#x} is outside the region's {region_size:#x} \
                     bytes"
                )
            })?;
        if offset % page != 0 {
            return Err(format!(
                "mmap area at {offset:#x} does not start on a {page:#x}-byte page"
            ));
        }
        checked.push(offset..end);
    }
    checked.sort_by_key(|r| r.start);
    if let Some(w) = checked.windows(2).find(|w| w[0].end > w[1].start) {
        return Err(format!(
            "mmap areas {:#x}..{:#x} and {:#x}..{:#x} overlap",
            w[0].start, w[0].end, w[1].start, w[1].end
        ));
    }

    let holes: Vec<Range<u64>> = exclude
        .iter()
        .filter(|r| r.start < r.end)
        .map(|r| {
            let start = r.start & !(page - 1);
            let end = r.end.checked_next_multiple_of(page).unwrap_or(u64::MAX);
            start..end
        })
        .collect();

    let mut out = Vec::new();
    for area in checked {
        let mut parts = vec![area];
        for hole in &holes {
            parts = parts.into_iter().flat_map(|p| subtract(p, hole)).collect();
        }
        out.extend(parts);
    }
    Ok(out)
}

/// `a` minus `b`: zero, one or two ranges.
fn subtract(a: Range<u64>, b: &Range<u64>) -> Vec<Range<u64>> {
    if b.end <= a.start || b.start >= a.end {
        return vec![a];
    }
    let mut out = Vec::with_capacity(2);
    if a.start < b.start {
        out.push(a.start..b.start);
    }
    if b.end < a.end {
        out.push(b.end..a.end);
    }
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    const P: u64 = 4096;
    const OFF: u64 = 1 << 40;

    #[test]
    fn whole_region_without_exclusions() {
        assert_eq!(
            pieces(0x20000, OFF, &[(0, 0x20000)], &[], P).unwrap(),
            vec![0..0x20000]
        );
        assert!(pieces(0x20000, OFF, &[], &[], P).unwrap().is_empty());
    }

    #[test]
    fn msix_table_and_pba_are_cut_out_in_whole_pages() {
        // QEMU nvme: 16 KiB BAR0, table at 0x2000 (65 entries), PBA at 0x3000.
        let got = pieces(
            0x4000,
            OFF,
            &[(0, 0x4000)],
            &[0x2000..0x2410, 0x3000..0x3010],
            P,
        )
        .unwrap();
        assert_eq!(got, vec![0..0x2000]);
        // e1000e BAR3: table at 0, PBA at 0x2000.
        let got = pieces(0x4000, OFF, &[(0, 0x4000)], &[0..0x50, 0x2000..0x2008], P).unwrap();
        assert_eq!(got, vec![0x1000..0x2000, 0x3000..0x4000]);
        // A table sharing a page with registers takes the whole page out.
        let got = pieces(0x10000, OFF, &[(0, 0x10000)], &[0x3800..0x3900], P).unwrap();
        assert_eq!(got, vec![0..0x3000, 0x4000..0x10000]);
        // Empty or inverted exclusions change nothing.
        let got = pieces(0x2000, OFF, &[(0, 0x2000)], &[0x1000..0x1000], P).unwrap();
        assert_eq!(got, vec![0..0x2000]);
        // An exclusion reaching u64::MAX does not overflow.
        let got = pieces(0x2000, OFF, &[(0, 0x2000)], &[0x1800..u64::MAX], P).unwrap();
        assert_eq!(got, vec![0..0x1000]);
    }

    #[test]
    fn sparse_areas_are_kept_apart_and_sorted() {
        let got = pieces(
            0x20000,
            OFF,
            &[(0x4000, 0x1c000), (0, 0x3000)],
            &[0x3000..0x3800],
            P,
        )
        .unwrap();
        assert_eq!(got, vec![0..0x3000, 0x4000..0x20000]);
    }

    #[test]
    fn sub_page_bar_maps_its_own_bytes() {
        assert_eq!(pieces(256, OFF, &[(0, 256)], &[], P).unwrap(), vec![0..256]);
    }

    #[test]
    fn untrustworthy_areas_are_refused() {
        let e = pieces(0x1000, OFF, &[(0, 0x2000)], &[], P).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = pieces(0x1000, OFF, &[(u64::MAX, 2)], &[], P).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = pieces(0x3000, OFF, &[(0x800, 0x1000)], &[], P).unwrap_err();
        assert!(e.contains("page"), "{e}");
        let e = pieces(0x3000, OFF, &[(0, 0x2000), (0x1000, 0x1000)], &[], P).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
        let e = pieces(0x3000, OFF + 8, &[(0, 0x1000)], &[], P).unwrap_err();
        assert!(e.contains("fd offset"), "{e}");
        // Zero-sized areas are ignored, not mapped.
        assert!(pieces(0x3000, OFF, &[(0, 0)], &[], P).unwrap().is_empty());
    }

    #[test]
    fn larger_host_pages_widen_holes() {
        let got = pieces(0x40000, OFF, &[(0, 0x40000)], &[0x12000..0x12100], 0x10000).unwrap();
        assert_eq!(got, vec![0..0x10000, 0x20000..0x40000]);
    }
}
