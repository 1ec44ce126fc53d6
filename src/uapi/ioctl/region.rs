//! Region I/O, reset and feature ioctls on the device; the Safety section of the parent module
//! applies.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::Errno;

use super::{fail, ioctl_ptr, Cause, DeviceFd, Failed, MigDataFd, Res};
use crate::trace::{self, Level};
use crate::uapi::buf::argsz_of;
use crate::uapi::buf::{ArgszBuf, MAX_ARGSZ};
use crate::uapi::vfio;

impl DeviceFd {
    /// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: the kernel's answer, a `vfio_pci_hot_reset_info`
    /// header followed by its `vfio_pci_dependent_device` entries (decoded by
    /// `HotResetInfo::decode`).
    pub(crate) fn get_pci_hot_reset_info(&self) -> Res<ArgszBuf> {
        const IOCTL: &str = "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO";
        let header = size_of::<vfio::vfio_pci_hot_reset_info>();
        let entry = size_of::<vfio::vfio_pci_dependent_device>();
        let mut count = 8usize;
        for _ in 0..4 {
            let len = header + count * entry;
            let mut buf = ArgszBuf::with(
                &vfio::vfio_pci_hot_reset_info {
                    argsz: u32::try_from(len).map_err(|_| fail(IOCTL)(Errno::E2BIG))?,
                    ..Default::default()
                },
                len,
            );
            // SAFETY: kind: device fd; argument: a vfio_pci_hot_reset_info header followed by room
            // for `count` entries, argsz = buffer length; written during the call only.
            let ret = unsafe {
                ioctl_ptr(
                    self.on(),
                    vfio::VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
                    IOCTL,
                    buf.as_mut_ptr(),
                    move |f| write!(f, "room for {count} devices"),
                )
            };
            let info: vfio::vfio_pci_hot_reset_info = buf.read(0).unwrap_or_default();
            match ret {
                Ok(_) => return Ok(buf),
                // The kernel reports the count it needs with ENOSPC.
                Err(f)
                    if f.errno() == Some(Errno::ENOSPC)
                        && (info.count as usize) > count
                        && (info.count as usize) * entry <= MAX_ARGSZ =>
                {
                    count = info.count as usize;
                }
                Err(f) => return Err(f),
            }
        }
        Err(fail(IOCTL)(Errno::ENOSPC))
    }

    /// `VFIO_DEVICE_PCI_HOT_RESET` with the group fds the kernel wants as proof of ownership.
    pub(crate) fn pci_hot_reset(&self, group_fds: &[BorrowedFd<'_>]) -> Res<()> {
        let fds: Vec<i32> = group_fds.iter().map(AsRawFd::as_raw_fd).collect();
        let mut buf =
            crate::uapi::buf::pci_hot_reset(&fds).map_err(fail("VFIO_DEVICE_PCI_HOT_RESET"))?;
        // SAFETY: kind: device fd; argument: a vfio_pci_hot_reset with argsz = buffer length,
        // read during the call only; the fds are borrowed, so open for the call.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_PCI_HOT_RESET,
                "VFIO_DEVICE_PCI_HOT_RESET",
                buf.as_mut_ptr(),
                |f| write!(f, "group fds={fds:?}"),
            )
        }
        .map(drop)
    }

    /// `VFIO_DEVICE_QUERY_GFX_PLANE`: `flags` and `drm_plane_type` in, the plane out, with the
    /// value of its `region_index`/`dmabuf_id` union.
    pub(crate) fn query_gfx_plane(
        &self,
        flags: u32,
        drm_plane_type: u32,
    ) -> Res<(vfio::vfio_device_gfx_plane_info, u32)> {
        let mut plane = vfio::vfio_device_gfx_plane_info {
            argsz: argsz_of::<vfio::vfio_device_gfx_plane_info>(),
            flags,
            drm_plane_type,
            ..Default::default()
        };
        let args = move |f: &mut std::fmt::Formatter<'_>| {
            write!(f, "flags={flags:#x} plane_type={drm_plane_type}")
        };
        // SAFETY: kind: device fd; argument: a vfio_device_gfx_plane_info with a matching argsz,
        // read and written during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_QUERY_GFX_PLANE,
                "VFIO_DEVICE_QUERY_GFX_PLANE",
                (&raw mut plane).cast(),
                args,
            )
        }?;
        // SAFETY: both union members are u32 covering the whole union, initialised (zeroed by
        // Default, then possibly written by the kernel); any bit pattern is a valid u32.
        let id = unsafe { plane.u.dmabuf_id };
        Ok((plane, id))
    }

    /// `VFIO_DEVICE_GET_GFX_DMABUF`: a new dma-buf fd for a plane's `dmabuf_id`.
    pub(crate) fn get_gfx_dmabuf(&self, dmabuf_id: u32) -> Res<OwnedFd> {
        let mut id = dmabuf_id;
        // SAFETY: kind: device fd; argument: a pointer to the u32 dma-buf id, read during the
        // call only.
        let fd = unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_GET_GFX_DMABUF,
                "VFIO_DEVICE_GET_GFX_DMABUF",
                (&raw mut id).cast(),
                move |f| write!(f, "dmabuf_id={dmabuf_id}"),
            )
        }?;
        // SAFETY: on success the kernel returns a new dma-buf fd (dma_buf_fd, O_CLOEXEC) that
        // nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `VFIO_DEVICE_FEATURE` with `data` following the header; the kernel may write `data` back
    /// (GET). A feature that opens an fd (`MIG_DEVICE_STATE`) returns it inside `data`.
    ///
    /// Safe for any input: it issues only a `PROBE` (the kernel then ignores the payload) or a
    /// feature of [`POINTER_FREE_FEATURES`], whose payloads hold no user pointer, so no bytes
    /// in `data` can make the kernel read or write process memory. Any other feature is refused
    /// before the ioctl (use the `unsafe` [`DeviceFd::feature_with_pointers`]).
    pub(crate) fn feature(&self, flags: u32, data: &mut [u8]) -> Res<()> {
        let feature = flags & vfio::VFIO_DEVICE_FEATURE_MASK;
        if flags & vfio::VFIO_DEVICE_FEATURE_PROBE == 0 && !POINTER_FREE_FEATURES.contains(&feature)
        {
            return Err(Failed {
                ioctl: "VFIO_DEVICE_FEATURE",
                cause: Cause::Refused(format!(
                    "feature {feature} may carry user pointers in its payload; the crate issues \
                     it only through its typed, unsafe path"
                )),
            });
        }
        // SAFETY: a probe, whose payload the kernel ignores, or a feature whose payload holds
        // no pointers (checked above): the kernel reads and writes only the buffer.
        unsafe { self.feature_with_pointers(flags, data) }
    }

    /// `VFIO_DEVICE_FEATURE` whose payload holds user pointers (DMA logging ranges and bitmaps).
    ///
    /// # Safety
    ///
    /// Every user pointer in `data` must point to memory that is live, correctly sized for what
    /// the kernel reads or writes through it (as the feature's payload describes it), and not
    /// otherwise borrowed, for the duration of the call.
    pub(crate) unsafe fn feature_with_pointers(&self, flags: u32, data: &mut [u8]) -> Res<()> {
        let header = size_of::<vfio::vfio_device_feature>();
        let len = header + data.len();
        let mut buf = ArgszBuf::with(
            &vfio::vfio_device_feature {
                argsz: u32::try_from(len).map_err(|_| fail("VFIO_DEVICE_FEATURE")(Errno::E2BIG))?,
                flags,
            },
            len,
        );
        buf.bytes_mut()[header..].copy_from_slice(data);
        let payload = data.len();
        // SAFETY: kind: device fd; argument: a vfio_device_feature header followed by
        // `data.len()` bytes, argsz = buffer length; read/written during the call only; user
        // pointers inside the payload are valid per this function's contract.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_FEATURE,
                "VFIO_DEVICE_FEATURE",
                buf.as_mut_ptr(),
                move |f| write!(f, "flags={flags:#x} payload={payload} bytes"),
            )
        }?;
        data.copy_from_slice(&buf.bytes()[header..]);
        Ok(())
    }

    /// `pread(2)` on the device fd (region access at `offset` = region offset + position).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let len = buf.len();
        let args = move |f: &mut std::fmt::Formatter<'_>| write!(f, "offset={offset:#x} len={len}");
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        trace::call(Level::Trace, "pread", self.on(), args, || {
            nix::sys::uio::pread(self, buf, offset).map_err(Errno::from_nix)
        })
    }

    /// `pwrite(2)` on the device fd.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        let len = buf.len();
        let args = move |f: &mut std::fmt::Formatter<'_>| write!(f, "offset={offset:#x} len={len}");
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        trace::call(Level::Trace, "pwrite", self.on(), args, || {
            nix::sys::uio::pwrite(self, buf, offset).map_err(Errno::from_nix)
        })
    }
}

/// The `VFIO_DEVICE_FEATURE` features whose payload is plain integers (no user pointer), which
/// [`DeviceFd::feature`] may issue with any bytes. `DMA_LOGGING_START` and `_REPORT` carry
/// pointers; a feature number unknown here (a newer kernel's) might.
const POINTER_FREE_FEATURES: &[u32] = &[
    vfio::VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
    vfio::VFIO_DEVICE_FEATURE_MIGRATION,
    vfio::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    vfio::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
    vfio::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
    vfio::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
    vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
    // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (Linux 6.2): a u64.
    9,
    // VFIO_DEVICE_FEATURE_BUS_MASTER (Linux 6.7): a u32 op.
    10,
];

/// The largest DMA logging bitmap the crate allocates (2 GiB of bits: 2^34 pages).
pub(crate) const MAX_BITMAP_WORDS: usize = 1 << 28;

/// The number of `u64` words the kernel's `iova_bitmap` writes for a DMA logging report of
/// `length` bytes at `page_size` granularity: one bit per page, rounded up to whole words
/// (`iova_bitmap_offset_to_index(length - 1) + 1`). `None` for a zero length or page size, or
/// on overflow.
pub(crate) fn dma_logging_bitmap_words(length: u64, page_size: u64) -> Option<usize> {
    if length == 0 || page_size == 0 {
        return None;
    }
    let pages = length.div_ceil(page_size);
    usize::try_from(pages.div_ceil(64)).ok()
}

impl DeviceFd {
    /// `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET: the new state in, the data transfer fd the
    /// transition opened (if any) out.
    pub(crate) fn feature_set_mig_state(&self, state: u32) -> Res<Option<MigDataFd>> {
        let mut data = [0u8; size_of::<vfio::vfio_device_feature_mig_state>()];
        data[..4].copy_from_slice(&state.to_ne_bytes());
        data[4..].copy_from_slice(&(-1i32).to_ne_bytes());
        self.feature(
            vfio::VFIO_DEVICE_FEATURE_SET | vfio::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            &mut data,
        )?;
        let fd = i32::from_ne_bytes([data[4], data[5], data[6], data[7]]);
        if fd < 0 {
            return Ok(None);
        }
        // SAFETY: on success with a non-negative data_fd the kernel installed a new fd (an
        // anon-inode file, O_CLOEXEC) for this process that nothing else owns.
        Ok(Some(MigDataFd(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_START`: `ranges` as `(iova, length)`; returns the page
    /// size the device chose.
    pub(crate) fn feature_dma_logging_start(
        &self,
        page_size: u64,
        ranges: &[(u64, u64)],
    ) -> Res<u64> {
        let ranges: Vec<vfio::vfio_device_feature_dma_logging_range> = ranges
            .iter()
            .map(|&(iova, length)| vfio::vfio_device_feature_dma_logging_range { iova, length })
            .collect();
        let num_ranges =
            u32::try_from(ranges.len()).map_err(|_| fail("VFIO_DEVICE_FEATURE")(Errno::E2BIG))?;
        let mut data = [0u8; size_of::<vfio::vfio_device_feature_dma_logging_control>()];
        data[0..8].copy_from_slice(&page_size.to_ne_bytes());
        data[8..12].copy_from_slice(&num_ranges.to_ne_bytes());
        data[16..24].copy_from_slice(&(ranges.as_ptr() as u64).to_ne_bytes());
        // SAFETY: the only user pointer is `ranges`, a live Vec of `num_ranges` entries of the
        // kernel's range struct, which the kernel only reads during the call; it outlives it.
        unsafe {
            self.feature_with_pointers(
                vfio::VFIO_DEVICE_FEATURE_SET | vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
                &mut data,
            )
        }?;
        Ok(u64::from_ne_bytes([
            data[0], data[1], data[2], data[3], data[4], data[5], data[6], data[7],
        ]))
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`: one bit per `page_size` page of
    /// `[iova, iova + length)` the device wrote (bit `i % 64` of word `i / 64` for page `i`),
    /// into the zeroed `bitmap`; the device's log is cleared for the range.
    ///
    /// `bitmap` must hold more than [`dma_logging_bitmap_words`] words (one spare word: a margin
    /// against any rounding difference with the kernel's sizing); a shorter one is refused.
    pub(crate) fn feature_dma_logging_report(
        &self,
        iova: u64,
        length: u64,
        page_size: u64,
        bitmap: &mut [u64],
    ) -> Res<()> {
        let words = dma_logging_bitmap_words(length, page_size)
            .filter(|&w| page_size.is_power_of_two() && w <= MAX_BITMAP_WORDS)
            .ok_or_else(|| fail("VFIO_DEVICE_FEATURE")(Errno::EINVAL))?;
        if bitmap.len() <= words {
            return Err(fail("VFIO_DEVICE_FEATURE")(Errno::EINVAL));
        }
        let mut data = [0u8; size_of::<vfio::vfio_device_feature_dma_logging_report>()];
        data[0..8].copy_from_slice(&iova.to_ne_bytes());
        data[8..16].copy_from_slice(&length.to_ne_bytes());
        data[16..24].copy_from_slice(&page_size.to_ne_bytes());
        data[24..32].copy_from_slice(&(bitmap.as_mut_ptr() as u64).to_ne_bytes());
        // SAFETY: the only user pointer is `bitmap`, exclusively borrowed and longer than the
        // kernel's iova_bitmap for (length, page_size) (checked above), so every bit the kernel
        // sets lands inside it; it outlives the call.
        unsafe {
            self.feature_with_pointers(
                vfio::VFIO_DEVICE_FEATURE_GET | vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
                &mut data,
            )
        }
    }
}

impl MigDataFd {
    /// `VFIO_MIG_GET_PRECOPY_INFO`: `(initial_bytes, dirty_bytes)` still to read in PRE_COPY.
    pub(crate) fn precopy_info(&self) -> Res<(u64, u64)> {
        let mut info = vfio::vfio_precopy_info {
            argsz: crate::uapi::buf::argsz_of::<vfio::vfio_precopy_info>(),
            ..Default::default()
        };
        // SAFETY: kind: a migration data fd, whose driver reads and writes a
        // vfio_precopy_info (argsz = its size) for this request, or refuses it (ENOTTY on a
        // RESUMING fd); argument: `info`, live, aligned and written during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_MIG_GET_PRECOPY_INFO,
                "VFIO_MIG_GET_PRECOPY_INFO",
                std::ptr::addr_of_mut!(info).cast(),
                trace::no_args,
            )
        }?;
        Ok((info.initial_bytes, info.dirty_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn pointer_carrying_features_are_refused_before_the_ioctl() {
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: /dev/null answers every ioctl with ENOTTY and touches no memory, so issuing
        // VFIO requests on it is harmless; the test checks which requests reach it at all.
        let fd = unsafe { DeviceFd::from_owned_unchecked(OwnedFd::from(null)) };
        let refused = |flags: u32, data: &mut [u8]| match fd.feature(flags, data) {
            Err(Failed {
                cause: Cause::Refused(reason),
                ..
            }) => reason,
            other => panic!("flags {flags:#x} reached the ioctl: {other:?}"),
        };
        // A DMA logging report whose payload names a forged bitmap address.
        let mut report = [0u8; 32];
        report[24..].copy_from_slice(&0xdead_b000u64.to_ne_bytes());
        let get = vfio::VFIO_DEVICE_FEATURE_GET;
        let set = vfio::VFIO_DEVICE_FEATURE_SET;
        let reason = refused(
            get | vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
            &mut report,
        );
        assert!(reason.contains("feature 8"), "{reason}");
        refused(
            set | vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
            &mut [0; 24],
        );
        // A number this crate does not know may carry pointers too.
        refused(get | 0x7fff, &mut [0; 64]);

        // Plain payloads and probes do reach the kernel (here /dev/null: ENOTTY).
        let reached = |flags: u32, data: &mut [u8]| {
            assert!(matches!(
                fd.feature(flags, data),
                Err(Failed {
                    cause: Cause::Errno(Errno::ENOTTY),
                    ..
                })
            ));
        };
        reached(get | vfio::VFIO_DEVICE_FEATURE_MIGRATION, &mut [0; 8]);
        reached(
            vfio::VFIO_DEVICE_FEATURE_PROBE | get | vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
            &mut [],
        );
    }

    #[test]
    fn bitmap_words_match_the_kernels_iova_bitmap() {
        // iova_bitmap: index(length - 1) + 1 words, index = (offset / page) / 64.
        let kernel = |length: u64, page: u64| ((length - 1) / page / 64 + 1) as usize;
        for (length, page) in [
            (1, 4096),
            (4096, 4096),
            (64 * 4096, 4096),
            (64 * 4096 + 1, 4096),
            (1 << 30, 4096),
            (12_345_678, 1 << 21),
            (u64::MAX, 4096),
        ] {
            assert_eq!(
                dma_logging_bitmap_words(length, page),
                Some(kernel(length, page)),
                "{length} {page}"
            );
        }
        assert_eq!(dma_logging_bitmap_words(0, 4096), None);
        assert_eq!(dma_logging_bitmap_words(4096, 0), None);
    }
}
