//! The crate's one error type.
//!
//! Every variant says what was being done (the ioctl, the group, the device, the region or IRQ
//! index, the path) and carries the `errno` that explains it: the kernel's own for a failed system
//! call, or the closest one (`EINVAL`, `ERANGE`, `EPROTO`, ...) for a problem the crate detected
//! itself. [`Error::errno`] therefore always has an answer, and `From<Error> for std::io::Error`
//! keeps it.
//!
//! Errors a user can act on (permission denied, a missing `/dev/vfio`, a group that is not
//! viable, the `RLIMIT_MEMLOCK` limit, no IOMMU type set yet) carry a hint in their message that
//! says what to do.

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::errno::Errno;

use crate::uapi::caps::CapChainError;

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kernel object (or part of one) an operation was acting on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Object {
    /// The container, `/dev/vfio/vfio`.
    Container,
    /// The group `/dev/vfio/N`.
    Group(u32),
    /// A device, by the name it was opened with (a PCI address for vfio-pci).
    Device(String),
    /// One region of a device, by the kernel's region index.
    Region {
        /// The device's name.
        device: String,
        /// The kernel's region index (`VFIO_PCI_BAR0_REGION_INDEX`, ...).
        index: u32,
    },
    /// One IRQ index of a device, by the kernel's IRQ index.
    Irq {
        /// The device's name.
        device: String,
        /// The kernel's IRQ index (`VFIO_PCI_MSIX_IRQ_INDEX`, ...).
        index: u32,
    },
    /// A PCI function on the host, by its sysfs address.
    PciDevice(String),
    /// The iommufd, `/dev/iommu`.
    Iommufd,
    /// An I/O address space of the iommufd, by its id.
    Ioas(u32),
    /// A graphics plane's dma-buf, by the device's name and the plane's dma-buf id.
    DmaBuf {
        /// The device's name.
        device: String,
        /// The `dmabuf_id` the device gave the plane.
        id: u32,
    },
    /// Memory for DMA (a [`DmaBuffer`](crate::DmaBuffer)'s or a pool's), apart from any
    /// mapping of it.
    DmaMemory,
    /// A [`DmaSpace`](crate::DmaSpace)'s IOVA allocator (uvfio's own books of IOVA space).
    IovaAllocator,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Container => f.write_str("the VFIO container"),
            Object::Group(n) => write!(f, "VFIO group {n}"),
            Object::Device(d) => write!(f, "device {d}"),
            Object::Region { device, index } => write!(f, "region {index} of device {device}"),
            Object::Irq { device, index } => write!(f, "IRQ index {index} of device {device}"),
            Object::PciDevice(a) => write!(f, "PCI device {a}"),
            Object::Iommufd => f.write_str("the iommufd"),
            Object::Ioas(id) => write!(f, "IOAS {id}"),
            Object::DmaBuf { device, id } => write!(f, "dma-buf {id} of device {device}"),
            Object::DmaMemory => f.write_str("DMA memory"),
            Object::IovaAllocator => f.write_str("the DMA space's IOVA allocator"),
        }
    }
}

/// A device of a group and the driver it is bound to, as reported for a non-viable group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The device's sysfs name (a PCI address for PCI devices).
    pub device: String,
    /// The driver it is bound to, or `None` when it has none.
    pub driver: Option<String>,
}

impl fmt::Display for GroupMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.driver {
            Some(d) => write!(f, "{} (bound to {d})", self.device),
            None => write!(f, "{} (no driver)", self.device),
        }
    }
}

/// Everything that can go wrong in uvfio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An ioctl on a VFIO file descriptor failed.
    #[error("{ioctl} on {object} failed: {}{}", describe(*errno), hint_for_ioctl(ioctl, *errno))]
    Ioctl {
        /// The ioctl's kernel name, e.g. `VFIO_GROUP_GET_STATUS`.
        ioctl: &'static str,
        /// What it was issued on.
        object: Box<Object>,
        /// The kernel's error.
        errno: Errno,
    },

    /// Opening a file (a `/dev/vfio` node, a sysfs attribute) failed.
    #[error("opening {} failed: {}{}", path.display(), describe(*errno), hint_for_open(path, *errno))]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// The kernel's error.
        errno: Errno,
    },

    /// Reading, writing or listing something in sysfs failed.
    #[error("{op} {} failed: {}{}", path.display(), describe(*errno), hint_for_sysfs(op, path, *errno))]
    Sysfs {
        /// What was being done: `"reading"`, `"writing"`, `"listing"`, `"resolving"`.
        op: &'static str,
        /// The sysfs path.
        path: PathBuf,
        /// The kernel's error.
        errno: Errno,
    },

    /// A system call other than an ioctl or open (mmap, read, write, eventfd, epoll) failed.
    #[error("{op} on {object} failed: {}", describe(*errno))]
    Syscall {
        /// The system call, e.g. `"mmap"`, `"pread"`.
        op: &'static str,
        /// What it acted on.
        object: Box<Object>,
        /// The kernel's error.
        errno: Errno,
    },

    /// The container speaks a VFIO API version this crate does not know.
    #[error(
        "VFIO_GET_API_VERSION returned {found}, this crate speaks version {expected}: the kernel's \
         VFIO is incompatible"
    )]
    ApiVersion {
        /// What the kernel reported.
        found: i32,
        /// What the crate expects (`VFIO_API_VERSION`).
        expected: i32,
        /// Always `EPROTO`.
        errno: Errno,
    },

    /// A group cannot be used because some of its devices are bound to host drivers.
    #[error(
        "VFIO group {group} is not viable: {}; bind every device of the group to vfio-pci \
         (or unbind it from its driver) first",
        list_members(members)
    )]
    GroupNotViable {
        /// The group number.
        group: u32,
        /// The group's devices that keep it from being viable (empty when they could not be listed).
        members: Vec<GroupMember>,
        /// Always `EPERM`.
        errno: Errno,
    },

    /// The kernel returned data the crate refuses to trust (a bad capability chain, an `argsz`
    /// that does not make sense, a count out of range).
    #[error("{ioctl} on {object} returned malformed data: {reason}")]
    Malformed {
        /// The ioctl whose answer was malformed.
        ioctl: &'static str,
        /// What it was issued on.
        object: Box<Object>,
        /// What was wrong with it.
        reason: Box<Malformation>,
        /// Always `EPROTO`.
        errno: Errno,
    },

    /// The caller passed an argument the operation cannot accept.
    #[error("{op} on {object}: {reason}")]
    InvalidArgument {
        /// The operation, e.g. `"region_info"`, `"write_u32"`.
        op: &'static str,
        /// What it was acting on.
        object: Box<Object>,
        /// Why the argument is invalid.
        reason: Box<str>,
        /// `EINVAL`, or `ERANGE`/`EOVERFLOW` for out-of-range values.
        errno: Errno,
    },

    /// An all-or-nothing operation failed, and undoing what it had done failed too: the
    /// listed IOVA ranges are still mapped.
    #[error(
        "{source}; undoing the mappings made before it failed too, so these IOVA ranges stay \
         mapped: {}",
        list_ranges(still_mapped)
    )]
    RollbackFailed {
        /// The failure that started the rollback.
        source: Box<Error>,
        /// The `(iova, size)` ranges that are still mapped.
        still_mapped: Vec<(u64, u64)>,
        /// The errno of `source`.
        errno: Errno,
    },

    /// Memory for a result sized by the caller or the kernel could not be allocated (instead
    /// of aborting the process).
    #[error("{op} on {object}: cannot allocate {bytes} bytes: {}", describe(*errno))]
    OutOfMemory {
        /// The operation, e.g. `"read_rom"`.
        op: &'static str,
        /// What it was acting on.
        object: Box<Object>,
        /// The size of the allocation that failed.
        bytes: usize,
        /// Always `ENOMEM`.
        errno: Errno,
    },

    /// A DMA buffer's IOMMU mapping is gone: the container's last group left (the kernel then
    /// drops the IOMMU context with every mapping) or everything was unmapped
    /// ([`Container::unmap_all_dma`](crate::Container::unmap_all_dma)). The memory is intact
    /// but no device can reach it at its IOVA, so the IOVA is not handed out.
    #[error(
        "{op} on {object}: the DMA buffer at IOVA {iova:#x} ({len} bytes) is no longer mapped; \
         the container lost every mapping (its last group left, or unmap_all_dma), and joining \
         a group and setting the IOMMU again does not bring it back: drop the buffer and \
         allocate a new one once the container has a group and an IOMMU type again"
    )]
    NotMapped {
        /// The operation, e.g. `"iova_at"`.
        op: &'static str,
        /// The container the buffer was mapped in.
        object: Box<Object>,
        /// The IOVA the buffer had.
        iova: u64,
        /// The buffer's length in bytes.
        len: usize,
        /// Always `ENXIO`.
        errno: Errno,
    },

    /// A migration state change the device's state machine does not allow, refused before any
    /// state-changing ioctl: not one arc of the kernel's FSM ([`Migration::step`]), a state the device does not
    /// support, an arc the kernel forbids (STOP_COPY → PRE_COPY), or a device in ERROR (only
    /// [`Migration::recover`] leaves it). See [`crate::device::migration`].
    ///
    /// [`Migration::step`]: crate::device::migration::Migration::step
    /// [`Migration::recover`]: crate::device::migration::Migration::recover
    #[error("migration of {object} from {from} to {to} refused: {reason}")]
    MigrationArc {
        /// The device.
        object: Box<Object>,
        /// The state the device is in.
        from: crate::device::MigState,
        /// The state asked for.
        to: crate::device::MigState,
        /// Why the change is not allowed.
        reason: Box<str>,
        /// Always `EINVAL` (what the kernel would have answered).
        errno: Errno,
    },

    /// The device, the IOMMU or the host does not support the operation.
    #[error("{op} is not supported by {object}: {reason}")]
    NotSupported {
        /// The operation.
        op: &'static str,
        /// What was asked.
        object: Box<Object>,
        /// Why (which flag or extension is missing).
        reason: Box<str>,
        /// `ENOTSUP` or the kernel's own error.
        errno: Errno,
    },

    /// A file the crate keeps for the user (the binding state of
    /// [`Host::bind`](crate::host::Host::bind)) is not in its format.
    #[error("{} line {line}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: Box<Path>,
        /// The line (from 1).
        line: u32,
        /// What is wrong with it, and the format it should have.
        reason: Box<str>,
        /// Always `EINVAL`.
        errno: Errno,
    },
}

/// The kind of an [`Error`] ([`Error::kind`]): the cases a driver handles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something does not exist: a `/dev/vfio` node or `/dev/iommu` (the kernel lacks the
    /// feature), a device, a mapping (`ENOENT`, `ENODEV`, `ENXIO`).
    NotFound,
    /// Not allowed: file permissions, a missing capability, a device the kernel will not give
    /// out (`EACCES`, `EPERM`).
    PermissionDenied,
    /// In use: opened elsewhere, bound, or state that forbids it now (`EBUSY`, `EEXIST`);
    /// retrying after the other user is done may work.
    Busy,
    /// A group with devices on other drivers ([`Error::GroupNotViable`]).
    NotViable,
    /// Out of memory, or past `RLIMIT_MEMLOCK` (`ENOMEM`, [`Error::OutOfMemory`]).
    OutOfMemory,
    /// A budget is used up: IOVA space, the IOMMU's mapping count (`ENOSPC`).
    NoSpace,
    /// A value the operation cannot take (`EINVAL`, `ERANGE`, `EOVERFLOW`, `E2BIG`,
    /// [`Error::InvalidArgument`]).
    InvalidArgument,
    /// The device, IOMMU or kernel does not offer it (`ENOTTY`, `EOPNOTSUPP`,
    /// [`Error::NotSupported`]).
    NotSupported,
    /// A DMA buffer's mapping is gone ([`Error::NotMapped`]).
    NotMapped,
    /// The kernel answered outside its documented contract ([`Error::Malformed`],
    /// [`Error::ApiVersion`]).
    KernelContract,
    /// A failure left state the crate could not undo ([`Error::RollbackFailed`]).
    Inconsistent,
    /// Anything else (an I/O error, an interrupted call, ...): see the errno.
    Other,
}

impl ErrorKind {
    /// The kind of a bare kernel errno.
    pub fn from_errno(errno: Errno) -> ErrorKind {
        match errno {
            Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => ErrorKind::NotFound,
            Errno::EACCES | Errno::EPERM => ErrorKind::PermissionDenied,
            Errno::EBUSY | Errno::EEXIST => ErrorKind::Busy,
            Errno::ENOMEM => ErrorKind::OutOfMemory,
            Errno::ENOSPC => ErrorKind::NoSpace,
            Errno::EINVAL | Errno::ERANGE | Errno::EOVERFLOW | Errno::E2BIG | Errno::EFAULT => {
                ErrorKind::InvalidArgument
            }
            Errno::ENOTTY | Errno::EOPNOTSUPP => ErrorKind::NotSupported,
            _ => ErrorKind::Other,
        }
    }
}

/// What was wrong with data the kernel returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformation {
    /// The capability chain is broken.
    #[error("bad capability chain: {0}")]
    CapChain(#[from] CapChainError),
    /// The kernel asked for an `argsz` smaller than the fixed part or absurdly large.
    #[error("argsz {argsz} is not usable (fixed part {min} bytes, limit {max})")]
    Argsz {
        /// What the kernel asked for.
        argsz: u32,
        /// The size of the fixed part of the struct.
        min: usize,
        /// The most the crate will allocate.
        max: usize,
    },
    /// Some other inconsistency, described.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The `errno` behind this error: the kernel's for failed system calls, the closest match for
    /// errors the crate detected itself.
    pub fn errno(&self) -> Errno {
        match self {
            Error::Ioctl { errno, .. }
            | Error::Open { errno, .. }
            | Error::Sysfs { errno, .. }
            | Error::Syscall { errno, .. }
            | Error::ApiVersion { errno, .. }
            | Error::GroupNotViable { errno, .. }
            | Error::Malformed { errno, .. }
            | Error::InvalidArgument { errno, .. }
            | Error::OutOfMemory { errno, .. }
            | Error::RollbackFailed { errno, .. }
            | Error::NotMapped { errno, .. }
            | Error::MigrationArc { errno, .. }
            | Error::NotSupported { errno, .. }
            | Error::BadFile { errno, .. } => *errno,
        }
    }

    /// What kind of failure this is, for the cases a driver handles differently (retry later,
    /// ask for privileges, free memory, give up): derived from the variant and the errno, so a
    /// driver need not match on errnos.
    ///
    /// ```
    /// use uvfio::error::ErrorKind;
    ///
    /// match uvfio::Container::new() {
    ///     Ok(_) => {}
    ///     Err(e) if e.kind() == ErrorKind::NotFound => eprintln!("no VFIO here: {e}"),
    ///     Err(e) if e.kind() == ErrorKind::PermissionDenied => eprintln!("not allowed: {e}"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::GroupNotViable { .. } => ErrorKind::NotViable,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
            Error::NotMapped { .. } => ErrorKind::NotMapped,
            Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Error::Malformed { .. } | Error::ApiVersion { .. } => ErrorKind::KernelContract,
            Error::RollbackFailed { .. } => ErrorKind::Inconsistent,
            Error::MigrationArc { .. } | Error::BadFile { .. } => ErrorKind::InvalidArgument,
            Error::InvalidArgument { errno, .. } => match *errno {
                Errno::EBUSY => ErrorKind::Busy,
                Errno::EPERM | Errno::EACCES => ErrorKind::PermissionDenied,
                _ => ErrorKind::InvalidArgument,
            },
            Error::Ioctl { errno, .. }
            | Error::Open { errno, .. }
            | Error::Sysfs { errno, .. }
            | Error::Syscall { errno, .. } => ErrorKind::from_errno(*errno),
        }
    }

    pub(crate) fn ioctl(ioctl: &'static str, object: Object, errno: Errno) -> Self {
        Error::Ioctl {
            ioctl,
            object: Box::new(object),
            errno,
        }
    }

    pub(crate) fn invalid(op: &'static str, object: Object, reason: impl Into<Box<str>>) -> Self {
        Error::InvalidArgument {
            op,
            object: Box::new(object),
            reason: reason.into(),
            errno: Errno::EINVAL,
        }
    }

    pub(crate) fn out_of_range(
        op: &'static str,
        object: Object,
        reason: impl Into<Box<str>>,
    ) -> Self {
        Error::InvalidArgument {
            op,
            object: Box::new(object),
            reason: reason.into(),
            errno: Errno::ERANGE,
        }
    }

    pub(crate) fn malformed(
        ioctl: &'static str,
        object: Object,
        reason: impl Into<Malformation>,
    ) -> Self {
        Error::Malformed {
            ioctl,
            object: Box::new(object),
            reason: Box::new(reason.into()),
            errno: Errno::EPROTO,
        }
    }
}

/// A vector of `len` copies of `value`, or [`Error::OutOfMemory`] when the memory cannot be had
/// (a length from a caller or the kernel must not abort the process).
pub(crate) fn try_vec<T: Clone>(
    len: usize,
    value: T,
    op: &'static str,
    object: Object,
) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
        op,
        object: Box::new(object),
        bytes: len.saturating_mul(size_of::<T>()),
        errno: Errno::ENOMEM,
    })?;
    v.resize(len, value);
    Ok(v)
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = std::io::Error::from_raw_os_error(e.errno().raw()).kind();
        std::io::Error::new(kind, e)
    }
}

fn describe(errno: Errno) -> String {
    errno.to_string()
}

fn list_ranges(ranges: &[(u64, u64)]) -> String {
    let list: Vec<String> = ranges
        .iter()
        .map(|(iova, size)| format!("{size:#x} bytes at {iova:#x}"))
        .collect();
    list.join(", ")
}

fn list_members(members: &[GroupMember]) -> String {
    if members.is_empty() {
        return "its devices could not be listed".to_string();
    }
    let list: Vec<String> = members.iter().map(ToString::to_string).collect();
    format!("not bound to vfio-pci: {}", list.join(", "))
}

fn hint_for_open(path: &std::path::Path, errno: Errno) -> &'static str {
    let vfio = path.starts_with("/dev/vfio");
    match errno {
        Errno::ENOENT if path == std::path::Path::new("/dev/vfio/vfio") => {
            "; the vfio module is not loaded (modprobe vfio-pci) or the kernel lacks VFIO"
        }
        Errno::ENOENT if vfio => {
            "; no such group: bind a device to vfio-pci first, or check the group number in \
             /sys/bus/pci/devices/<addr>/iommu_group"
        }
        Errno::EACCES | Errno::EPERM if vfio => {
            "; run as root, or give your user access to the node (chown/udev rule) and a large \
             enough RLIMIT_MEMLOCK"
        }
        Errno::EBUSY if vfio => "; the group is already open, in this process or another one",
        Errno::EACCES | Errno::EPERM => "; writing sysfs needs root",
        _ => "",
    }
}

fn hint_for_sysfs(op: &str, path: &std::path::Path, errno: Errno) -> &'static str {
    let s = path.to_string_lossy();
    if s.contains("mdev") {
        return match (op, errno) {
            ("writing", Errno::EACCES | Errno::EPERM) => "; creating and removing mdevs needs root",
            ("writing", Errno::EEXIST) => "; an mdev with this UUID exists already",
            ("writing", Errno::EUSERS) => {
                "; the type has no instance left (its available_instances is 0)"
            }
            (_, Errno::ENOENT) => {
                "; no such mdev parent, type or instance: see \
                 /sys/class/mdev_bus/*/mdev_supported_types and /sys/bus/mdev/devices"
            }
            _ => "",
        };
    }
    match (op, errno) {
        ("writing", Errno::EACCES | Errno::EPERM) => "; changing driver bindings needs root",
        (_, Errno::ENOENT) => "; no such device or attribute: check the PCI address (lspci -D)",
        _ => "",
    }
}

fn hint_for_ioctl(ioctl: &str, errno: Errno) -> &'static str {
    match (ioctl, errno) {
        ("VFIO_IOMMU_MAP_DMA", Errno::ENOMEM)
        | ("VFIO_IOMMU_SPAPR_REGISTER_MEMORY", Errno::ENOMEM) => {
            "; either pinning this memory would exceed RLIMIT_MEMLOCK (raise it: ulimit -l, or \
             LimitMEMLOCK= in systemd; or map less) or the kernel is out of memory"
        }
        ("VFIO_IOMMU_MAP_DMA", Errno::ENOSPC) => {
            "; the IOMMU's mapping budget (vfio_iommu_type1 dma_entry_limit) is used up: use \
             fewer, larger mappings or raise the module parameter"
        }
        ("VFIO_GROUP_GET_DEVICE_FD", Errno::EINVAL) => {
            "; a device can only be opened once its group is in a container whose IOMMU type is \
             set (Container::set_iommu), or the name is not a device of this group"
        }
        ("VFIO_GROUP_SET_CONTAINER", Errno::EPERM) => {
            "; the group is not viable: all of its devices must be bound to vfio-pci"
        }
        ("VFIO_SET_IOMMU", Errno::EINVAL) => {
            "; the IOMMU type can only be set once at least one group has joined the container, \
             and only once"
        }
        ("VFIO_SET_IOMMU", Errno::EPERM) => {
            "; the IOMMU lacks interrupt remapping (enable it, or load vfio_iommu_type1 with \
             allow_unsafe_interrupts=1)"
        }
        ("VFIO_DEVICE_BIND_IOMMUFD", Errno::EINVAL) => {
            "; the device is open already (through another cdev fd or through its group): a \
             device is bound to one iommufd by one open file at a time"
        }
        ("VFIO_DEVICE_BIND_IOMMUFD", Errno::EPERM) => {
            "; a no-IOMMU device cannot be bound to an iommufd here: open it through its \
             no-IOMMU group"
        }
        ("IOMMU_IOAS_MAP", Errno::ENOMEM) => {
            "; either pinning this memory would exceed RLIMIT_MEMLOCK (raise it: ulimit -l; or \
             map less) or the kernel is out of memory"
        }
        ("IOMMU_IOAS_MAP", Errno::EEXIST) | ("IOMMU_IOAS_COPY", Errno::EEXIST) => {
            "; the IOVA range overlaps an existing mapping"
        }
        ("IOMMU_IOAS_UNMAP", Errno::ENOENT) => {
            "; nothing is mapped there, or the range would split a mapping (unmap whole mappings)"
        }
        (i, Errno::EINVAL) if i.starts_with("VFIO_IOMMU_") => {
            "; is the IOMMU type set yet (Container::set_iommu)? Are the address, size and \
             flags aligned and valid?"
        }
        _ => "",
    }
}

/// Runs a teardown call, again while it fails with an errno worth retrying
/// (`Errno::worth_retrying`), at most `TEARDOWN_ATTEMPTS`
/// times in all.
pub(crate) fn retry_teardown<T>(mut call: impl FnMut() -> Result<T>) -> Result<T> {
    let mut result = call();
    for _ in 1..crate::errno::TEARDOWN_ATTEMPTS {
        match &result {
            Err(e) if e.errno().worth_retrying() => result = call(),
            _ => break,
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_variant_then_the_errno() {
        let obj = || Object::Container;
        let ioctl = |e| Error::ioctl("VFIO_IOMMU_MAP_DMA", obj(), e);
        assert_eq!(ioctl(Errno::ENOMEM).kind(), ErrorKind::OutOfMemory);
        assert_eq!(ioctl(Errno::ENOSPC).kind(), ErrorKind::NoSpace);
        assert_eq!(ioctl(Errno::EBUSY).kind(), ErrorKind::Busy);
        assert_eq!(ioctl(Errno::EINVAL).kind(), ErrorKind::InvalidArgument);
        assert_eq!(ioctl(Errno::ENOTTY).kind(), ErrorKind::NotSupported);
        assert_eq!(ioctl(Errno::EIO).kind(), ErrorKind::Other);
        let open = Error::Open {
            path: "/dev/vfio/vfio".into(),
            errno: Errno::ENOENT,
        };
        assert_eq!(open.kind(), ErrorKind::NotFound);
        let denied = Error::Open {
            path: "/dev/vfio/7".into(),
            errno: Errno::EACCES,
        };
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        // The variant wins over its errno.
        let viable = Error::GroupNotViable {
            group: 3,
            members: Vec::new(),
            errno: Errno::EPERM,
        };
        assert_eq!(viable.kind(), ErrorKind::NotViable);
        let busy = Error::InvalidArgument {
            op: "config write",
            object: obj().into(),
            reason: "a mapped BAR".into(),
            errno: Errno::EBUSY,
        };
        assert_eq!(busy.kind(), ErrorKind::Busy);
        assert_eq!(
            Error::invalid("x", obj(), "bad").kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::malformed(
                "VFIO_DEVICE_GET_INFO",
                obj(),
                Malformation::Other("x".into())
            )
            .kind(),
            ErrorKind::KernelContract
        );
    }

    #[test]
    fn an_impossible_allocation_is_an_error_not_an_abort() {
        let object = Object::Device("0000:00:03.0".into());
        let e = try_vec(1usize << 46, 0u64, "dma_logging_report", object.clone()).unwrap_err();
        assert_eq!(e.errno(), Errno::ENOMEM);
        assert!(e.to_string().contains("cannot allocate"), "{e}");
        // Past isize::MAX bytes: a capacity overflow, reported the same way.
        let e = try_vec(usize::MAX, 0u8, "read_rom", object.clone()).unwrap_err();
        assert_eq!(e.errno(), Errno::ENOMEM);
        assert_eq!(try_vec(3, 7u8, "read_rom", object).unwrap(), [7, 7, 7]);
    }

    #[test]
    fn errno_is_kept_through_io_error() {
        let e = Error::ioctl(
            "VFIO_DEVICE_RESET",
            Object::Device("0000:00:01.0".into()),
            Errno::ENOTTY,
        );
        assert_eq!(e.errno(), Errno::ENOTTY);
        let io: std::io::Error = e.into();
        let inner = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(inner.errno(), Errno::ENOTTY);

        let e = Error::Open {
            path: "/dev/vfio/7".into(),
            errno: Errno::EACCES,
        };
        assert_eq!(
            std::io::Error::from(e).kind(),
            std::io::ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn messages_name_the_operation_and_the_object() {
        let e = Error::ioctl(
            "VFIO_DEVICE_GET_REGION_INFO",
            Object::Region {
                device: "0000:00:04.0".into(),
                index: 3,
            },
            Errno::EINVAL,
        );
        assert_eq!(
            e.to_string(),
            "VFIO_DEVICE_GET_REGION_INFO on region 3 of device 0000:00:04.0 failed: \
             Invalid argument (EINVAL)"
        );
    }

    #[test]
    fn actionable_errors_carry_a_hint() {
        let missing = Error::Open {
            path: "/dev/vfio/vfio".into(),
            errno: Errno::ENOENT,
        };
        assert!(
            missing.to_string().contains("modprobe vfio-pci"),
            "{missing}"
        );

        let denied = Error::Open {
            path: "/dev/vfio/12".into(),
            errno: Errno::EACCES,
        };
        assert!(denied.to_string().contains("run as root"), "{denied}");

        let memlock = Error::ioctl("VFIO_IOMMU_MAP_DMA", Object::Container, Errno::ENOMEM);
        assert!(memlock.to_string().contains("RLIMIT_MEMLOCK"), "{memlock}");

        let no_iommu = Error::ioctl("VFIO_GROUP_GET_DEVICE_FD", Object::Group(3), Errno::EINVAL);
        assert!(
            no_iommu.to_string().contains("Container::set_iommu"),
            "{no_iommu}"
        );

        let sysfs = Error::Sysfs {
            op: "writing",
            path: "/sys/bus/pci/drivers_probe".into(),
            errno: Errno::EACCES,
        };
        assert!(sysfs.to_string().contains("needs root"), "{sysfs}");

        let not_viable = Error::GroupNotViable {
            group: 5,
            members: vec![GroupMember {
                device: "0000:00:05.0".into(),
                driver: Some("e1000".into()),
            }],
            errno: Errno::EPERM,
        };
        let msg = not_viable.to_string();
        assert!(msg.contains("0000:00:05.0 (bound to e1000)"), "{msg}");
        assert!(
            msg.contains("bind every device of the group to vfio-pci"),
            "{msg}"
        );
    }

    /// The hot path returns `Result<T>`: every variant's cold payload (the object, reasons,
    /// paths, lists) is boxed so the error stays small. A variant with an unboxed `String` or
    /// `Object` makes this fail.
    #[test]
    fn errors_stay_small() {
        use std::mem::size_of;
        eprintln!(
            "size_of: Error {}, Result<u32> {}, Object {}, Errno {}",
            size_of::<Error>(),
            size_of::<Result<u32>>(),
            size_of::<Object>(),
            size_of::<Errno>()
        );
        assert!(size_of::<Error>() <= 48, "{}", size_of::<Error>());
        assert!(size_of::<Result<u32>>() <= 48);
        assert!(size_of::<Result<()>>() <= 48);
    }
}
