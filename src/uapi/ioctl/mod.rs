//! The crate's only `ioctl(2)` calls, behind one owned-fd type per kind of VFIO file.
//!
//! [`ContainerFd`], [`GroupFd`], [`DeviceFd`] and [`IommufdFd`] each wrap an [`OwnedFd`] that is
//! known to be that kind of file: they are only built by opening `/dev/vfio/vfio`, by opening a
//! `/dev/vfio/N` group node, by `VFIO_GROUP_GET_DEVICE_FD`, by opening a device cdev or
//! `/dev/iommu` whose sysfs class is checked, or by an `unsafe` constructor whose caller promises
//! the kind. Every VFIO ioctl request is therefore only ever issued on a file whose
//! driver interprets it as the header says, with the argument type the header gives.
//!
//! # Safety
//!
//! Each `unsafe` block below rests on three facts, repeated briefly at each site:
//! - **kind**: the fd is of the kind the newtype says (see above);
//! - **argument**: the pointer passed is to a live, correctly sized and aligned value of the type
//!   the kernel expects for that request, and `argsz` never exceeds the bytes behind it (buffers
//!   come from [`ArgszBuf`], which sets `argsz` to its own length or less);
//! - **lifetime**: the kernel does not keep the pointer after the call returns (true of every VFIO
//!   request; for `VFIO_IOMMU_MAP_DMA` the *mapped memory* is kept, which is why
//!   [`ContainerFd::map_dma`] is an `unsafe fn`).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fmt;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use zerocopy::IntoBytes;

mod dma;
mod iommufd;
mod irq;
mod region;

use super::buf::{argsz_of, ArgszBuf, MAX_ARGSZ};
use super::vfio::{self, IoctlRequest};
use crate::error::{Errno, Error, Malformation, Object};
use crate::trace::{self, Level};

/// An ioctl that failed, with its kernel name; the object layer adds what it was issued on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    /// The ioctl's kernel name.
    pub(crate) ioctl: &'static str,
    /// Why it failed.
    pub(crate) cause: Cause,
}

/// Why an ioctl failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The kernel returned an error.
    Errno(Errno),
    /// The kernel's answer made no sense.
    Malformed(Malformation),
    /// The crate refused to issue the request (the reason), so the kernel never saw it.
    Refused(String),
}

impl Failed {
    /// The errno, when the kernel returned one.
    pub(crate) fn errno(&self) -> Option<Errno> {
        match self.cause {
            Cause::Errno(errno) => Some(errno),
            Cause::Malformed(_) | Cause::Refused(_) => None,
        }
    }

    /// Attaches the object the ioctl was issued on.
    pub(crate) fn on(self, object: Object) -> Error {
        match self.cause {
            Cause::Errno(errno) => Error::ioctl(self.ioctl, object, errno),
            Cause::Malformed(m) => Error::malformed(self.ioctl, object, m),
            Cause::Refused(reason) => Error::invalid(self.ioctl, object, reason),
        }
    }
}

pub(super) type Res<T> = std::result::Result<T, Failed>;

pub(crate) use region::dma_logging_bitmap_words;

pub(super) fn fail(ioctl: &'static str) -> impl FnOnce(Errno) -> Failed {
    move |errno| Failed {
        ioctl,
        cause: Cause::Errno(errno),
    }
}

/// The fd a request goes to, with the kind of VFIO file it is: what a trace record names as
/// the call's object (`container fd 5`; the `open` record before it says which node fd 5 is).
#[derive(Debug, Clone, Copy)]
pub(super) struct On<'a> {
    fd: BorrowedFd<'a>,
    /// The kind, as [`Object`] words it: `container`, `group`, `device`, `iommufd`.
    kind: &'static str,
}

impl fmt::Display for On<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fd {}", self.kind, self.fd.as_raw_fd())
    }
}

/// `ioctl(fd, request, arg)` with an integer (or no) argument: the argument is the trace
/// record's (`name=arg`, or nothing for a `name` of `""`).
///
/// # Safety
///
/// `request` must be a request that the driver behind `fd` reads as an integer argument (or
/// ignores), so that the kernel dereferences no memory.
pub(super) unsafe fn ioctl_int(
    on: On<'_>,
    request: IoctlRequest,
    ioctl: &'static str,
    (name, arg): (&str, libc::c_ulong),
) -> Res<libc::c_int> {
    let args = |f: &mut fmt::Formatter<'_>| match name {
        "" => Ok(()),
        _ => write!(f, "{name}={arg}"),
    };
    trace::call(Level::Trace, ioctl, on, args, || {
        // SAFETY: the caller guarantees the request takes an integer; `fd` is a live borrowed
        // fd.
        errno_result(unsafe { libc::ioctl(on.fd.as_raw_fd(), request, arg) })
    })
    .map_err(fail(ioctl))
}

/// `ioctl(fd, request, ptr)`; `args` writes the trace record's summary of the argument.
///
/// # Safety
///
/// `request` on the driver behind `fd` must read and/or write at most the bytes `ptr` points to,
/// which must be live, writable and aligned for the request's struct for the whole call.
pub(super) unsafe fn ioctl_ptr(
    on: On<'_>,
    request: IoctlRequest,
    ioctl: &'static str,
    ptr: *mut libc::c_void,
    args: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> Res<libc::c_int> {
    trace::call(Level::Trace, ioctl, on, args, || {
        // SAFETY: forwarded to the caller's contract.
        errno_result(unsafe { libc::ioctl(on.fd.as_raw_fd(), request, ptr) })
    })
    .map_err(fail(ioctl))
}

/// Runs an info query whose struct starts with `argsz` and may be followed by a capability chain:
/// first with a buffer of at least `fixed` bytes (the struct's size) starting with `init` (the
/// request's bytes, zeroes after them), then again with the `argsz` the kernel asks for, until it
/// fits. `argsz` is written over the first four bytes each time.
///
/// The first buffer is 256 bytes, which saves a second call for most chains. A driver that
/// refuses an `argsz` above its own struct's size with `EINVAL` (Linux's `mbochs` sample does,
/// for `VFIO_DEVICE_GET_REGION_INFO`) is asked again with exactly `fixed` bytes, and grown from
/// there as it says; an `EINVAL` at that size is the answer.
///
/// Taking bytes rather than a struct lets a padded struct (`vfio_iommu_type1_info`) be sent as
/// zeroes without ever viewing its padding as bytes.
///
/// # Safety
///
/// `request` on `fd` must be a VFIO info request whose argument starts with `u32 argsz` and whose
/// kernel handler writes at most `argsz` bytes; `init` must be a valid request (prefix).
/// `index` (the region's) is for the trace records.
pub(super) unsafe fn query_argsz(
    on: On<'_>,
    request: IoctlRequest,
    ioctl: &'static str,
    fixed: usize,
    init: &[u8],
    index: Option<u32>,
) -> Res<ArgszBuf> {
    let min = fixed.max(init.len());
    let mut len = min.max(256);
    let mut fell_back = false;
    // The kernel only ever raises argsz once (to fit the chain); the extra rounds guard against a
    // chain that grows between calls (and one is the fallback to `min`).
    for _ in 0..5 {
        let mut buf = ArgszBuf::zeroed(len);
        buf.bytes_mut()[..init.len()].copy_from_slice(init);
        // len <= MAX_ARGSZ after the first round; a caller's huge `fixed` is refused here.
        let argsz = u32::try_from(len).map_err(|_| fail(ioctl)(Errno::E2BIG))?;
        buf.write(0, &argsz);
        let args = |f: &mut fmt::Formatter<'_>| match index {
            Some(index) => write!(f, "index={index} argsz={len}"),
            None => write!(f, "argsz={len}"),
        };
        // SAFETY: (kind, argument) forwarded from the caller: the buffer is `len` bytes, aligned
        // to 8, starts with a valid request and its argsz is `len`; (lifetime) `buf` outlives the
        // call.
        match unsafe { ioctl_ptr(on, request, ioctl, buf.as_mut_ptr(), args) } {
            Ok(_) => {}
            Err(f) if f.errno() == Some(Errno::EINVAL) && !fell_back && len > min => {
                fell_back = true;
                len = min;
                continue;
            }
            Err(f) => return Err(f),
        }
        let want_argsz = buf.argsz();
        let want = want_argsz as usize;
        if want <= len {
            return Ok(buf);
        }
        if want > MAX_ARGSZ {
            return Err(Failed {
                ioctl,
                cause: Cause::Malformed(Malformation::Argsz {
                    argsz: want_argsz,
                    min,
                    max: MAX_ARGSZ,
                }),
            });
        }
        len = want;
    }
    Err(Failed {
        ioctl,
        cause: Cause::Malformed(Malformation::Other(
            "argsz kept growing across four queries".to_string(),
        )),
    })
}

/// `Ok(ret)`, or the calling thread's errno when `ret` is `-1`.
fn errno_result(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn open_vfio_node(path: &Path) -> Result<OwnedFd, Errno> {
    trace::call(Level::Debug, "open", path.display(), trace::no_args, || {
        nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(Errno::from_nix)
    })
}

macro_rules! fd_newtype {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Debug)]
        pub(crate) struct $name(OwnedFd);

        impl $name {
            /// Adopts an fd of this kind.
            ///
            /// # Safety
            ///
            /// `fd` must be an open file of this kind (see the type's docs); VFIO requests will be
            /// issued on it.
            #[allow(dead_code)] // Not every kind is adopted from outside yet.
            pub(crate) unsafe fn from_owned_unchecked(fd: OwnedFd) -> Self {
                $name(fd)
            }
        }

        impl $name {
            /// This fd as the object of a request.
            fn on(&self) -> On<'_> {
                On {
                    fd: self.0.as_fd(),
                    kind: $kind,
                }
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(fd: $name) -> OwnedFd {
                fd.0
            }
        }
    };
}

fd_newtype!(
    /// An open `/dev/vfio/vfio`, or an open `/dev/iommu` used as one: iommufd serves the VFIO
    /// container ioctls on its own fd (its VFIO compatibility layer).
    ContainerFd,
    "container"
);
fd_newtype!(
    /// An open `/dev/vfio/N` group node.
    GroupFd,
    "group"
);
fd_newtype!(
    /// A VFIO device fd: returned by `VFIO_GROUP_GET_DEVICE_FD`, or an open device cdev
    /// (`/dev/vfio/devices/vfioN`, checked by its sysfs class when opened).
    DeviceFd,
    "device"
);
fd_newtype!(
    /// An open `/dev/iommu` (checked by its sysfs class when opened).
    IommufdFd,
    "iommufd"
);
fd_newtype!(
    /// A migration data transfer fd: returned by `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET
    /// for an arc that starts a data transfer session (the migration driver's anon-inode file).
    MigDataFd,
    "migration data"
);

impl ContainerFd {
    /// An iommufd used as a container: it answers the VFIO container ioctls (API version,
    /// extensions, SET_IOMMU, type1 GET_INFO / MAP_DMA / UNMAP_DMA) itself.
    pub(crate) fn from_iommufd(fd: IommufdFd) -> Self {
        ContainerFd(fd.0)
    }

    /// `open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC)`.
    pub(crate) fn open(path: &Path) -> Result<Self, Errno> {
        open_vfio_node(path).map(ContainerFd)
    }

    /// `VFIO_GET_API_VERSION`.
    pub(crate) fn get_api_version(&self) -> Res<i32> {
        // SAFETY: kind: container fd; argument: none.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_GET_API_VERSION,
                "VFIO_GET_API_VERSION",
                ("", 0),
            )
        }
    }

    /// `VFIO_CHECK_EXTENSION`: the kernel's answer (0 = unsupported, >0 = supported).
    pub(crate) fn check_extension(&self, extension: u32) -> Res<i32> {
        // SAFETY: kind: container fd; argument: an integer.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_CHECK_EXTENSION,
                "VFIO_CHECK_EXTENSION",
                ("extension", extension.into()),
            )
        }
    }

    /// `VFIO_SET_IOMMU`.
    pub(crate) fn set_iommu(&self, iommu_type: u32) -> Res<()> {
        // SAFETY: kind: container fd; argument: an integer.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_SET_IOMMU,
                "VFIO_SET_IOMMU",
                ("type", iommu_type.into()),
            )
        }
        .map(drop)
    }

    /// `VFIO_IOMMU_GET_INFO` (type1), with its capability chain.
    pub(crate) fn iommu_get_info(&self) -> Res<ArgszBuf> {
        // SAFETY: kind: container fd with a type1 IOMMU (the kernel rejects the request with an
        // errno otherwise and writes nothing); the argument starts with argsz.
        unsafe {
            query_argsz(
                self.on(),
                vfio::VFIO_IOMMU_GET_INFO,
                "VFIO_IOMMU_GET_INFO",
                // Padded (bytes 20..24): sent as zeroes, argsz written into them.
                size_of::<vfio::vfio_iommu_type1_info>(),
                &[],
                None,
            )
        }
    }
}

impl GroupFd {
    /// `open("/dev/vfio/N", O_RDWR | O_CLOEXEC)`.
    pub(crate) fn open(path: &Path) -> Result<Self, Errno> {
        open_vfio_node(path).map(GroupFd)
    }

    /// `VFIO_GROUP_GET_STATUS`: the status flags.
    pub(crate) fn get_status(&self) -> Res<u32> {
        let mut status = vfio::vfio_group_status {
            argsz: argsz_of::<vfio::vfio_group_status>(),
            flags: 0,
        };
        // SAFETY: kind: group fd; argument: a vfio_group_status with a matching argsz, written by
        // the kernel during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_GROUP_GET_STATUS,
                "VFIO_GROUP_GET_STATUS",
                (&raw mut status).cast(),
                trace::no_args,
            )
        }?;
        Ok(status.flags)
    }

    /// `VFIO_GROUP_SET_CONTAINER`.
    pub(crate) fn set_container(&self, container: &ContainerFd) -> Res<()> {
        let mut fd: i32 = container.as_raw_fd();
        let container_fd = fd;
        // SAFETY: kind: group fd; argument: a pointer to an int holding the container's fd, read
        // during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_GROUP_SET_CONTAINER,
                "VFIO_GROUP_SET_CONTAINER",
                (&raw mut fd).cast(),
                move |f| write!(f, "container=fd {container_fd}"),
            )
        }
        .map(drop)
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`.
    pub(crate) fn unset_container(&self) -> Res<()> {
        // SAFETY: kind: group fd; argument: none.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_GROUP_UNSET_CONTAINER,
                "VFIO_GROUP_UNSET_CONTAINER",
                ("", 0),
            )
        }
        .map(drop)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`.
    pub(crate) fn get_device_fd(&self, name: &CStr) -> Res<DeviceFd> {
        // SAFETY: kind: group fd; argument: a NUL-terminated string the kernel reads during the
        // call only.
        let fd = unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_GROUP_GET_DEVICE_FD,
                "VFIO_GROUP_GET_DEVICE_FD",
                name.as_ptr().cast_mut().cast(),
                |f| write!(f, "name={}", name.to_string_lossy()),
            )
        }?;
        // SAFETY: on success the kernel returns a new fd (opened O_CLOEXEC by the kernel's
        // anon-inode code) that nothing else owns: it is a VFIO device fd.
        Ok(DeviceFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

impl DeviceFd {
    /// `VFIO_DEVICE_GET_INFO`, with its capability chain.
    pub(crate) fn get_info(&self) -> Res<ArgszBuf> {
        // SAFETY: kind: device fd; the argument starts with argsz.
        unsafe {
            query_argsz(
                self.on(),
                vfio::VFIO_DEVICE_GET_INFO,
                "VFIO_DEVICE_GET_INFO",
                size_of::<vfio::vfio_device_info>(),
                vfio::vfio_device_info::default().as_bytes(),
                None,
            )
        }
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for `index`, with its capability chain.
    pub(crate) fn get_region_info(&self, index: u32) -> Res<ArgszBuf> {
        let init = vfio::vfio_region_info {
            index,
            ..Default::default()
        };
        // SAFETY: kind: device fd; the argument starts with argsz.
        unsafe {
            query_argsz(
                self.on(),
                vfio::VFIO_DEVICE_GET_REGION_INFO,
                "VFIO_DEVICE_GET_REGION_INFO",
                size_of::<vfio::vfio_region_info>(),
                init.as_bytes(),
                Some(index),
            )
        }
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for `index`.
    pub(crate) fn get_irq_info(&self, index: u32) -> Res<vfio::vfio_irq_info> {
        let mut info = vfio::vfio_irq_info {
            argsz: argsz_of::<vfio::vfio_irq_info>(),
            index,
            ..Default::default()
        };
        // SAFETY: kind: device fd; argument: a vfio_irq_info with a matching argsz, written during
        // the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_GET_IRQ_INFO,
                "VFIO_DEVICE_GET_IRQ_INFO",
                (&raw mut info).cast(),
                move |f| write!(f, "index={index}"),
            )
        }?;
        Ok(info)
    }

    /// `VFIO_DEVICE_RESET`.
    pub(crate) fn reset(&self) -> Res<()> {
        // SAFETY: kind: device fd; argument: none.
        unsafe {
            ioctl_int(
                self.on(),
                vfio::VFIO_DEVICE_RESET,
                "VFIO_DEVICE_RESET",
                ("", 0),
            )
        }
        .map(drop)
    }
}
