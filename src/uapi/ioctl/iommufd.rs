//! The iommufd ioctls (`/dev/iommu`) and the device side of the cdev path
//! (`VFIO_DEVICE_BIND_IOMMUFD`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT`, `VFIO_DEVICE_DETACH_IOMMUFD_PT`).
//!
//! Every argument struct starts with `size` (iommufd) or `argsz` (VFIO), set to the struct's own
//! size here; the kernel reads and writes only that many bytes during the call. See the Safety
//! essay of the parent module for the three facts each `unsafe` block rests on.

use std::fmt;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::Errno;

use super::{fail, ioctl_ptr, open_vfio_node, DeviceFd, IommufdFd, On, Res};
use crate::trace;
use crate::uapi::iommufd as uapi;
use crate::uapi::vfio;

/// `size_of::<T>()` as the `u32` of a `size`/`argsz` field (every uAPI struct is far below 4 GiB).
fn size32<T>() -> u32 {
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// Issues `request` with `arg` (a `#[repr(C)]` uAPI struct starting with its size).
///
/// # Safety
///
/// `fd` must be of the kind `request` is meant for, and `T` the request's argument type, holding
/// no pointer the kernel would follow other than those the caller vouches for.
unsafe fn call<T>(
    on: On<'_>,
    request: vfio::IoctlRequest,
    name: &'static str,
    arg: &mut T,
    args: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> Res<libc::c_int> {
    // SAFETY: forwarded to the caller; `arg` is a live, aligned `T` for the whole call and the
    // kernel keeps no pointer to it afterwards.
    unsafe { ioctl_ptr(on, request, name, (arg as *mut T).cast(), args) }
}

impl IommufdFd {
    /// `open(path, O_RDWR | O_CLOEXEC)`. The caller has checked that `path` is `/dev/iommu`
    /// (`uapi::node`, [`Node::Iommufd`](crate::uapi::node::Node::Iommufd)) and checks the open
    /// fd before issuing any request.
    pub(crate) fn open(path: &Path) -> Result<Self, Errno> {
        open_vfio_node(path).map(IommufdFd)
    }

    /// `IOMMU_IOAS_ALLOC`: a new, empty I/O address space.
    pub(crate) fn ioas_alloc(&self) -> Res<u32> {
        let mut arg = uapi::iommu_ioas_alloc {
            size: size32::<uapi::iommu_ioas_alloc>(),
            ..Default::default()
        };
        // SAFETY: kind: iommufd; argument: iommu_ioas_alloc, no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_IOAS_ALLOC,
                "IOMMU_IOAS_ALLOC",
                &mut arg,
                trace::no_args,
            )
        }?;
        Ok(arg.out_ioas_id)
    }

    /// `IOMMU_DESTROY` of any object.
    pub(crate) fn destroy(&self, id: u32) -> Res<()> {
        let mut arg = uapi::iommu_destroy {
            size: size32::<uapi::iommu_destroy>(),
            id,
        };
        // SAFETY: kind: iommufd; argument: iommu_destroy, no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_DESTROY,
                "IOMMU_DESTROY",
                &mut arg,
                move |f| write!(f, "id={id}"),
            )
        }
        .map(drop)
    }

    /// `IOMMU_IOAS_MAP`: maps `length` bytes at `user_va`; returns the IOVA (the given one with
    /// `IOMMU_IOAS_MAP_FIXED_IOVA` in `flags`, else the kernel's choice).
    ///
    /// # Safety
    ///
    /// The kernel pins `[user_va, user_va + length)` and lets the device access it until the
    /// mapping is unmapped: the caller must keep that memory allocated (and not reuse it for
    /// anything the device must not see) until then.
    pub(crate) unsafe fn ioas_map(
        &self,
        ioas_id: u32,
        flags: u32,
        user_va: u64,
        length: u64,
        iova: u64,
    ) -> Res<u64> {
        let mut arg = uapi::iommu_ioas_map {
            size: size32::<uapi::iommu_ioas_map>(),
            flags,
            ioas_id,
            __reserved: 0,
            user_va,
            length,
            iova,
        };
        // SAFETY: kind: iommufd; argument: iommu_ioas_map whose user_va the caller vouches for.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_IOAS_MAP,
                "IOMMU_IOAS_MAP",
                &mut arg,
                move |f| {
                    write!(f, "ioas={ioas_id} iova={iova:#x} len={length:#x} user_va={user_va:#x} flags={flags:#x}")
                },
            )
        }?;
        Ok(arg.iova)
    }

    /// `IOMMU_IOAS_UNMAP`: unmaps the whole mappings inside `[iova, iova + length)`; returns the
    /// bytes unmapped. `(0, u64::MAX)` unmaps everything.
    pub(crate) fn ioas_unmap(&self, ioas_id: u32, iova: u64, length: u64) -> Res<u64> {
        let mut arg = uapi::iommu_ioas_unmap {
            size: size32::<uapi::iommu_ioas_unmap>(),
            ioas_id,
            iova,
            length,
        };
        // SAFETY: kind: iommufd; argument: iommu_ioas_unmap, no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_IOAS_UNMAP,
                "IOMMU_IOAS_UNMAP",
                &mut arg,
                move |f| write!(f, "ioas={ioas_id} iova={iova:#x} len={length:#x}"),
            )
        }?;
        Ok(arg.length)
    }

    /// `IOMMU_IOAS_COPY`: maps pages pinned by `src_ioas` at `src_iova` into `dst_ioas`; returns
    /// the destination IOVA.
    pub(crate) fn ioas_copy(
        &self,
        dst_ioas_id: u32,
        src_ioas_id: u32,
        flags: u32,
        src_iova: u64,
        length: u64,
        dst_iova: u64,
    ) -> Res<u64> {
        let mut arg = uapi::iommu_ioas_copy {
            size: size32::<uapi::iommu_ioas_copy>(),
            flags,
            dst_ioas_id,
            src_ioas_id,
            length,
            dst_iova,
            src_iova,
        };
        // SAFETY: kind: iommufd; argument: iommu_ioas_copy, no pointers (the pages are those the
        // source IOAS pinned already, kept pinned by the kernel for the new mapping).
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_IOAS_COPY,
                "IOMMU_IOAS_COPY",
                &mut arg,
                move |f| {
                    write!(f, "dst ioas={dst_ioas_id} iova={dst_iova:#x} src ioas={src_ioas_id} iova={src_iova:#x} len={length:#x} flags={flags:#x}")
                },
            )
        }?;
        Ok(arg.dst_iova)
    }

    /// `IOMMU_IOAS_IOVA_RANGES`: the ranges the IOAS can map now, and the IOVA alignment.
    pub(crate) fn ioas_iova_ranges(&self, ioas_id: u32) -> Res<(Vec<uapi::iommu_iova_range>, u64)> {
        let mut ranges: Vec<uapi::iommu_iova_range> = Vec::new();
        // The kernel says how many there are (EMSGSIZE with num_iovas set) when the array is too
        // small; the count can change between calls when devices attach, hence the loop.
        for _ in 0..4 {
            let room = ranges.len();
            let mut arg = uapi::iommu_ioas_iova_ranges {
                size: size32::<uapi::iommu_ioas_iova_ranges>(),
                ioas_id,
                num_iovas: u32::try_from(ranges.len()).unwrap_or(u32::MAX),
                __reserved: 0,
                allowed_iovas: ranges.as_mut_ptr() as u64,
                out_iova_alignment: 0,
            };
            // SAFETY: kind: iommufd; argument: iommu_ioas_iova_ranges whose allowed_iovas points
            // to `num_iovas` writable, aligned iommu_iova_range elements, live for the call.
            match unsafe {
                call(
                    self.on(),
                    uapi::IOMMU_IOAS_IOVA_RANGES,
                    "IOMMU_IOAS_IOVA_RANGES",
                    &mut arg,
                    move |f| write!(f, "ioas={ioas_id} room for {room} ranges"),
                )
            } {
                Ok(_) => {
                    ranges.truncate(arg.num_iovas as usize);
                    return Ok((ranges, arg.out_iova_alignment));
                }
                Err(f)
                    if f.errno() == Some(Errno::EMSGSIZE)
                        && arg.num_iovas as usize > ranges.len() =>
                {
                    // A bound on what a kernel may claim: 64 Ki ranges is far beyond any IOMMU.
                    if arg.num_iovas > 1 << 16 {
                        return Err(f);
                    }
                    ranges = vec![uapi::iommu_iova_range::default(); arg.num_iovas as usize];
                }
                Err(f) => return Err(f),
            }
        }
        Err(fail("IOMMU_IOAS_IOVA_RANGES")(Errno::EMSGSIZE))
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS`: kernel-chosen IOVAs of the IOAS stay inside `ranges`.
    pub(crate) fn ioas_allow_iovas(
        &self,
        ioas_id: u32,
        ranges: &[uapi::iommu_iova_range],
    ) -> Res<()> {
        let mut arg = uapi::iommu_ioas_allow_iovas {
            size: size32::<uapi::iommu_ioas_allow_iovas>(),
            ioas_id,
            num_iovas: u32::try_from(ranges.len())
                .map_err(|_| fail("IOMMU_IOAS_ALLOW_IOVAS")(Errno::E2BIG))?,
            __reserved: 0,
            allowed_iovas: ranges.as_ptr() as u64,
        };
        // SAFETY: kind: iommufd; argument: iommu_ioas_allow_iovas whose allowed_iovas points to
        // `num_iovas` readable elements, live for the call (the kernel copies them).
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_IOAS_ALLOW_IOVAS,
                "IOMMU_IOAS_ALLOW_IOVAS",
                &mut arg,
                |f| write!(f, "ioas={ioas_id} {} ranges", ranges.len()),
            )
        }
        .map(drop)
    }

    /// `IOMMU_OPTION`: reads (`op` GET) or sets (SET) an option; returns its value.
    pub(crate) fn option(&self, option_id: u32, op: u16, object_id: u32, val64: u64) -> Res<u64> {
        let mut arg = uapi::iommu_option {
            size: size32::<uapi::iommu_option>(),
            option_id,
            op,
            __reserved: 0,
            object_id,
            val64,
        };
        // SAFETY: kind: iommufd; argument: iommu_option, no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_OPTION,
                "IOMMU_OPTION",
                &mut arg,
                move |f| {
                    write!(
                        f,
                        "option={option_id} op={op} object={object_id} val={val64}"
                    )
                },
            )
        }?;
        Ok(arg.val64)
    }

    /// `IOMMU_HWPT_ALLOC` of a plain (unnested) HWPT for device `dev_id` over IOAS `pt_id`;
    /// returns the HWPT's id.
    pub(crate) fn hwpt_alloc(&self, dev_id: u32, pt_id: u32, flags: u32) -> Res<u32> {
        let mut arg = uapi::iommu_hwpt_alloc {
            size: size32::<uapi::iommu_hwpt_alloc>(),
            flags,
            dev_id,
            pt_id,
            data_type: uapi::IOMMU_HWPT_DATA_NONE,
            ..Default::default()
        };
        // SAFETY: kind: iommufd; argument: iommu_hwpt_alloc with no data (data_len 0, data_uptr
        // 0) and no fault queue: no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_HWPT_ALLOC,
                "IOMMU_HWPT_ALLOC",
                &mut arg,
                move |f| write!(f, "dev={dev_id} pt={pt_id} flags={flags:#x}"),
            )
        }?;
        Ok(arg.out_hwpt_id)
    }

    /// `IOMMU_HWPT_SET_DIRTY_TRACKING`: starts or stops dirty tracking of a HWPT.
    pub(crate) fn hwpt_set_dirty_tracking(&self, hwpt_id: u32, enable: bool) -> Res<()> {
        let mut arg = uapi::iommu_hwpt_set_dirty_tracking {
            size: size32::<uapi::iommu_hwpt_set_dirty_tracking>(),
            flags: if enable {
                uapi::IOMMU_HWPT_DIRTY_TRACKING_ENABLE
            } else {
                0
            },
            hwpt_id,
            __reserved: 0,
        };
        // SAFETY: kind: iommufd; argument: iommu_hwpt_set_dirty_tracking, no pointers.
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_HWPT_SET_DIRTY_TRACKING,
                "IOMMU_HWPT_SET_DIRTY_TRACKING",
                &mut arg,
                move |f| write!(f, "hwpt={hwpt_id} enable={enable}"),
            )
        }
        .map(drop)
    }

    /// `IOMMU_HWPT_GET_DIRTY_BITMAP` of `length` bytes at `iova`, one bit per `page_size`
    /// bytes, into `words`.
    pub(crate) fn hwpt_get_dirty_bitmap(
        &self,
        hwpt_id: u32,
        flags: u32,
        iova: u64,
        length: u64,
        page_size: u64,
        words: &mut [u64],
    ) -> Res<()> {
        // The kernel writes ceil(length / page_size) bits, rounded up to whole u64 words.
        let pages = length / page_size.max(1);
        if (words.len() as u64) < pages.div_ceil(64) {
            return Err(fail("IOMMU_HWPT_GET_DIRTY_BITMAP")(Errno::EINVAL));
        }
        let mut arg = uapi::iommu_hwpt_get_dirty_bitmap {
            size: size32::<uapi::iommu_hwpt_get_dirty_bitmap>(),
            hwpt_id,
            flags,
            __reserved: 0,
            iova,
            length,
            page_size,
            data: words.as_mut_ptr() as u64,
        };
        // SAFETY: kind: iommufd; argument: iommu_hwpt_get_dirty_bitmap whose data points to
        // `words`, live and writable for the call and (checked above) at least as long as the
        // bitmap of `length / page_size` bits the kernel writes.
        unsafe {
            call(self.on(), uapi::IOMMU_HWPT_GET_DIRTY_BITMAP, "IOMMU_HWPT_GET_DIRTY_BITMAP", &mut arg, move |f| write!(f, "hwpt={hwpt_id} iova={iova:#x} len={length:#x} pgsize={page_size:#x} flags={flags:#x}"))
        }
        .map(drop)
    }

    /// `IOMMU_GET_HW_INFO` for a bound device, with VT-d's registers when that is the IOMMU.
    pub(crate) fn get_hw_info(
        &self,
        dev_id: u32,
    ) -> Res<(uapi::iommu_hw_info, uapi::iommu_hw_info_vtd)> {
        let mut vtd = uapi::iommu_hw_info_vtd::default();
        let mut arg = uapi::iommu_hw_info {
            size: size32::<uapi::iommu_hw_info>(),
            dev_id,
            data_len: size32::<uapi::iommu_hw_info_vtd>(),
            data_uptr: (&raw mut vtd) as u64,
            ..Default::default()
        };
        // SAFETY: kind: iommufd; argument: iommu_hw_info whose data_uptr points to data_len
        // writable bytes (`vtd`, live for the call; the kernel writes at most data_len bytes).
        unsafe {
            call(
                self.on(),
                uapi::IOMMU_GET_HW_INFO,
                "IOMMU_GET_HW_INFO",
                &mut arg,
                move |f| write!(f, "dev={dev_id}"),
            )
        }?;
        Ok((arg, vtd))
    }
}

impl DeviceFd {
    /// Opens a VFIO device cdev (`/dev/vfio/devices/vfioN`). The caller has checked the path
    /// ([`Node::DeviceCdev`](crate::uapi::node::Node::DeviceCdev)) and checks the open fd
    /// before issuing any request.
    pub(crate) fn open_cdev(path: &Path) -> Result<Self, Errno> {
        open_vfio_node(path).map(DeviceFd)
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD`: binds the cdev to an iommufd; returns the device's id there.
    pub(crate) fn bind_iommufd(&self, iommufd: &IommufdFd) -> Res<u32> {
        let iommufd_fd = iommufd.as_raw_fd();
        let mut arg = vfio::vfio_device_bind_iommufd {
            argsz: size32::<vfio::vfio_device_bind_iommufd>(),
            flags: 0,
            iommufd: iommufd_fd,
            out_devid: 0,
        };
        // SAFETY: kind: device cdev; argument: vfio_device_bind_iommufd (an fd number, no
        // pointers).
        unsafe {
            call(
                self.on(),
                vfio::VFIO_DEVICE_BIND_IOMMUFD,
                "VFIO_DEVICE_BIND_IOMMUFD",
                &mut arg,
                move |f| write!(f, "iommufd=fd {iommufd_fd}"),
            )
        }?;
        Ok(arg.out_devid)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`: attaches (or re-attaches) the bound device to an IOAS or
    /// HWPT; returns the id the device is attached to (the HWPT the kernel made for an IOAS).
    pub(crate) fn attach_iommufd_pt(&self, pt_id: u32) -> Res<u32> {
        let mut arg = vfio::vfio_device_attach_iommufd_pt {
            argsz: size32::<vfio::vfio_device_attach_iommufd_pt>(),
            flags: 0,
            pt_id,
        };
        // SAFETY: kind: device cdev; argument: vfio_device_attach_iommufd_pt, no pointers.
        unsafe {
            call(
                self.on(),
                vfio::VFIO_DEVICE_ATTACH_IOMMUFD_PT,
                "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
                &mut arg,
                move |f| write!(f, "pt={pt_id}"),
            )
        }?;
        Ok(arg.pt_id)
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`.
    pub(crate) fn detach_iommufd_pt(&self) -> Res<()> {
        let mut arg = vfio::vfio_device_detach_iommufd_pt {
            argsz: size32::<vfio::vfio_device_detach_iommufd_pt>(),
            flags: 0,
        };
        // SAFETY: kind: device cdev; argument: vfio_device_detach_iommufd_pt, no pointers.
        unsafe {
            call(
                self.on(),
                vfio::VFIO_DEVICE_DETACH_IOMMUFD_PT,
                "VFIO_DEVICE_DETACH_IOMMUFD_PT",
                &mut arg,
                trace::no_args,
            )
        }
        .map(drop)
    }
}
