//! [`DirtyBitmap`]: which pages a device wrote, as the type1 IOMMU and iommufd's HWPTs report it.

use crate::error::{Errno, Error, Object, Result};

/// A dirty-page bitmap for an IOVA range, as filled by `VFIO_IOMMU_DIRTY_PAGES`, an unmap with
/// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP` (type1) or `IOMMU_HWPT_GET_DIRTY_BITMAP` (iommufd):
/// one bit per page, set when a device may have written it since tracking started (or since
/// the last read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyBitmap {
    iova: u64,
    page_size: u64,
    pages: u64,
    pub(crate) words: Vec<u64>,
}

impl DirtyBitmap {
    /// An all-clean bitmap for `size` bytes at `iova` with `page_size`-byte pages.
    pub(crate) fn new(
        op: &'static str,
        object: Object,
        iova: u64,
        size: u64,
        page_size: u64,
    ) -> Result<DirtyBitmap> {
        let bad = |reason: String| Error::invalid(op, object.clone(), reason);
        if !page_size.is_power_of_two() {
            return Err(bad(format!(
                "the page size {page_size:#x} is not a power of two"
            )));
        }
        if size == 0 || iova % page_size != 0 || size % page_size != 0 {
            return Err(bad(format!(
                "{size:#x} bytes at {iova:#x}: both must be non-zero multiples of the page size \
                 {page_size:#x}"
            )));
        }
        if iova.checked_add(size - 1).is_none() {
            return Err(Error::InvalidArgument {
                op,
                object: object.clone().into(),
                reason: format!("{size:#x} bytes at {iova:#x} run past 2^64").into(),
                errno: Errno::EOVERFLOW,
            });
        }
        let pages = size / page_size;
        // The kernel's limit (DIRTY_BITMAP_PAGES_MAX): INT_MAX pages, a 256 MiB bitmap.
        let words = match usize::try_from(pages.div_ceil(64)) {
            Ok(words) if pages <= i32::MAX as u64 => words,
            _ => {
                return Err(Error::out_of_range(
                    op,
                    object,
                    format!("{pages} pages is more than one bitmap request may cover (2^31 - 1)"),
                ))
            }
        };
        Ok(DirtyBitmap {
            iova,
            page_size,
            pages,
            words: vec![0; words],
        })
    }

    /// A bitmap for `size` bytes at `iova` with `page_size`-byte pages, from its words: bit
    /// `p % 64` of word `p / 64` stands for page `p`, as the kernel lays out every dirty bitmap
    /// (type1, iommufd, and a device's own DMA log from
    /// [`Device::dma_logging_report`](crate::Device::dma_logging_report)). Bits past the last
    /// page are kept in [`DirtyBitmap::words`] but ignored by every other method.
    ///
    /// ```
    /// use uvfio::iommu::DirtyBitmap;
    ///
    /// // 3 pages of 4 KiB at 0x10000; pages 0 and 2 dirty, and a stray bit past the end.
    /// let bitmap = DirtyBitmap::from_words(0x10000, 3 * 4096, 4096, vec![0b1_0101])?;
    /// assert_eq!(bitmap.dirty_pages().collect::<Vec<_>>(), [0x10000, 0x12000]);
    /// assert_eq!(bitmap.dirty_count(), 2);
    /// # Ok::<(), uvfio::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`]: `EINVAL` when `page_size` is not a power of two, `size` is
    /// zero or `iova` and `size` are not multiples of it, or `words` does not hold exactly one
    /// bit per page rounded up to whole words; `EOVERFLOW` when the range runs past 2^64;
    /// `ERANGE` for more than 2^31 - 1 pages (the kernel's limit for one bitmap).
    pub fn from_words(
        iova: u64,
        size: u64,
        page_size: u64,
        words: Vec<u64>,
    ) -> Result<DirtyBitmap> {
        const OP: &str = "DirtyBitmap::from_words";
        let mut bitmap = DirtyBitmap::new(OP, Object::Container, iova, size, page_size)?;
        if words.len() != bitmap.words.len() {
            return Err(Error::invalid(
                OP,
                Object::Container,
                format!(
                    "{} pages need {} words, {} were given",
                    bitmap.pages,
                    bitmap.words.len(),
                    words.len()
                ),
            ));
        }
        bitmap.words = words;
        Ok(bitmap)
    }

    /// The first IOVA the bitmap covers.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// The bytes of IOVA one bit stands for.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The number of pages (bits) covered.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Whether the page holding `iova` is dirty (`false` outside the range).
    pub fn is_dirty(&self, iova: u64) -> bool {
        let Some(offset) = iova.checked_sub(self.iova) else {
            return false;
        };
        let page = offset / self.page_size;
        page < self.pages && self.bit(page)
    }

    fn bit(&self, page: u64) -> bool {
        self.words
            .get((page / 64) as usize)
            .is_some_and(|w| w >> (page % 64) & 1 == 1)
    }

    /// The IOVAs of the dirty pages, in order.
    pub fn dirty_pages(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.pages)
            .filter(|&p| self.bit(p))
            .map(|p| self.iova + p * self.page_size)
    }

    /// How many pages are dirty.
    pub fn dirty_count(&self) -> u64 {
        // Only the bits of pages in the range: bits past the last page (a kernel or device may
        // leave them set in the last word) are not pages.
        let full = usize::try_from(self.pages / 64).unwrap_or(usize::MAX);
        let whole: u64 = self
            .words
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let tail = match (self.pages % 64, self.words.get(full)) {
            (0, _) | (_, None) => 0,
            (bits, Some(w)) => u64::from((w & ((1u64 << bits) - 1)).count_ones()),
        };
        whole + tail
    }

    /// The raw bitmap: bit `p % 64` of word `p / 64` stands for page `p`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_bitmaps_are_sized_like_the_kernel_wants() {
        let b = DirtyBitmap::new("t", Object::Container, 0x10_0000, 65 * 4096, 4096).unwrap();
        assert_eq!((b.pages(), b.words().len()), (65, 2));
        assert!(!b.is_dirty(0x10_0000));
        let mut b = b;
        b.words[0] = 0b101;
        b.words[1] = 1;
        assert!(b.is_dirty(0x10_0000) && !b.is_dirty(0x10_1000) && b.is_dirty(0x10_2fff));
        assert!(b.is_dirty(0x10_0000 + 64 * 4096));
        assert!(!b.is_dirty(0xf_ffff) && !b.is_dirty(0x10_0000 + 65 * 4096));
        assert_eq!(b.dirty_count(), 3);
        assert_eq!(
            b.dirty_pages().collect::<Vec<_>>(),
            vec![0x10_0000, 0x10_2000, 0x10_0000 + 64 * 4096]
        );
        let e = |r: Result<DirtyBitmap>| r.unwrap_err().errno();
        assert_eq!(
            e(DirtyBitmap::new("t", Object::Container, 0, 4096, 3000)),
            Errno::EINVAL
        );
        assert_eq!(
            e(DirtyBitmap::new("t", Object::Container, 0x800, 4096, 4096)),
            Errno::EINVAL
        );
        assert_eq!(
            e(DirtyBitmap::new("t", Object::Container, 0, 0, 4096)),
            Errno::EINVAL
        );
        assert_eq!(
            e(DirtyBitmap::new(
                "t",
                Object::Container,
                u64::MAX - 0xfff,
                0x2000,
                4096
            )),
            Errno::EOVERFLOW
        );
        assert_eq!(
            e(DirtyBitmap::new("t", Object::Container, 0, 1 << 44, 4096)),
            Errno::ERANGE
        );
    }

    #[test]
    fn bits_past_the_last_page_are_not_dirty_pages() {
        // Regression (found writing the dirty_bitmap fuzz target): dirty_count counted every set bit
        // of the words, so a stray bit past the last page made it disagree with dirty_pages.
        let b = DirtyBitmap::from_words(0, 3 * 4096, 4096, vec![0b1_1000_0001]).unwrap();
        assert_eq!(b.dirty_pages().collect::<Vec<_>>(), [0]);
        assert_eq!(b.dirty_count(), 1);
        assert!(!b.is_dirty(3 * 4096));
        let b = DirtyBitmap::from_words(0, 64 * 4096, 4096, vec![u64::MAX]).unwrap();
        assert_eq!(b.dirty_count(), 64);
        assert_eq!(
            DirtyBitmap::from_words(0, 65 * 4096, 4096, vec![0])
                .unwrap_err()
                .errno(),
            Errno::EINVAL
        );
    }
}
