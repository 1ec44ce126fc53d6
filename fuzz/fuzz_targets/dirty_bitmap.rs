//! `DirtyBitmap::from_words` and its queries: any geometry, any words.
//!
//! Input: page shift (byte), page count (u16, low 12 bits), IOVA (u64, rounded down to the page size unless
//! the shift byte's top bit is set), a word-count adjustment byte (0: the exact count), then
//! the words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::iommu::DirtyBitmap;
use uvfio_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let shift_byte = input.u8();
    let shift = u32::from(shift_byte & 0x3f);
    let pages = u64::from(u16::from_le_bytes([input.u8(), input.u8()]) & 0x0fff);
    let page_size = 1u64 << shift;
    let mut iova = input.u64();
    if shift_byte & 0x80 == 0 {
        iova &= !(page_size - 1);
    }
    let adjust = input.u8();
    let mut words: Vec<u64> = input
        .rest()
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    let need = usize::try_from(pages.div_ceil(64)).unwrap();
    let want = match adjust {
        0 => need,
        a => need.saturating_add(usize::from(a % 4)).saturating_sub(2),
    };
    words.resize(want, 0);

    let size = pages.checked_mul(page_size);
    let Some(size) = size else { return };
    let valid = pages > 0
        && iova % page_size == 0
        && iova.checked_add(size - 1).is_some()
        && words.len() == need;
    let bitmap = match DirtyBitmap::from_words(iova, size, page_size, words.clone()) {
        Ok(b) => b,
        Err(_) => {
            assert!(
                !valid,
                "refused {pages} pages of {page_size:#x} at {iova:#x}"
            );
            return;
        }
    };
    assert!(valid);
    assert_eq!(
        (bitmap.iova(), bitmap.page_size(), bitmap.pages()),
        (iova, page_size, pages)
    );
    assert_eq!(bitmap.words(), &words[..]);

    // The reference: page p is dirty when bit p % 64 of word p / 64 is set, for p < pages.
    let bit = |p: u64| words[usize::try_from(p / 64).unwrap()] >> (p % 64) & 1 == 1;
    let expect: Vec<u64> = (0..pages)
        .filter(|&p| bit(p))
        .map(|p| iova + p * page_size)
        .collect();
    let got: Vec<u64> = bitmap.dirty_pages().collect();
    assert_eq!(got, expect);
    assert_eq!(bitmap.dirty_count(), u64::try_from(expect.len()).unwrap());
    for p in [0, pages / 2, pages - 1] {
        let at = iova + p * page_size;
        assert_eq!(bitmap.is_dirty(at), bit(p));
        assert_eq!(bitmap.is_dirty(at + (page_size - 1)), bit(p));
    }
    // Nothing outside the range is dirty.
    if let Some(before) = iova.checked_sub(1) {
        assert!(!bitmap.is_dirty(before));
    }
    if let Some(after) = iova.checked_add(size) {
        assert!(!bitmap.is_dirty(after));
    }
});
