//! [`Container`]: `/dev/vfio/vfio`, the IOMMU context that groups join.
//!
//! A container is where IOMMU mappings live. Groups join it with
//! [`Group::set_container`](crate::Group::set_container); once at least one group has joined,
//! [`Container::set_iommu`] picks the IOMMU model (type1v2 on x86 and Arm, SPAPR TCE on POWER),
//! and only then can devices be opened and DMA be mapped.
//!
//! # References
//!
//! - Kernel docs, "VFIO - Virtual Function I/O": <https://docs.kernel.org/driver-api/vfio.html>
//! - `include/uapi/linux/vfio.h`: `VFIO_GET_API_VERSION`, `VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::error::{Errno, Error, Object, Result};
use crate::group::{Group, GroupInner};
use crate::iommu::IommuInfo;
use crate::uapi::ioctl::{Cause, ContainerFd, Failed};
use crate::uapi::node::{self, Node};
use crate::uapi::vfio;

/// The path of the container node.
pub const CONTAINER_PATH: &str = "/dev/vfio/vfio";

mod extension;
mod open;

pub use extension::{Extension, Extensions, IommuType};

pub(crate) struct ContainerInner {
    pub(crate) fd: ContainerFd,
    state: Mutex<ContainerState>,
    /// The DMA layer's state: the IOVA allocator and its counters (see `crate::dma`).
    pub(crate) dma: crate::dma::DmaState,
    /// Whether the fd is iommufd's compatibility container (`/dev/iommu`).
    compat: bool,
}

#[derive(Default)]
struct ContainerState {
    iommu: Option<IommuType>,
    /// The groups that joined, by number. Entries of dropped groups are pruned lazily.
    groups: BTreeMap<u32, Weak<GroupInner>>,
    /// Dropped groups that the kernel kept in the container: `VFIO_GROUP_UNSET_CONTAINER`
    /// failed (a device fd of theirs is still open, e.g. a `dup`), so they stay attached, with
    /// the IOMMU type and every mapping, until that fd closes, which the crate cannot see.
    stranded: BTreeSet<u32>,
}

/// `/dev/vfio/vfio`: an IOMMU context shared by the groups that join it.
///
/// `Container` is a cheap handle (an `Arc`): clones refer to the same container, and the file
/// stays open while any clone, group or device in it is alive.
///
/// # Examples
///
/// ```no_run
/// use uvfio::{Container, Group, IommuType};
///
/// let container = Container::new()?;
/// let group = Group::open(26)?;
/// group.set_container(&container)?;
/// container.set_iommu(IommuType::Type1v2)?;
/// let device = group.open_device("0000:06:0d.0")?;
/// # Ok::<(), uvfio::Error>(())
/// ```
#[derive(Clone)]
pub struct Container(pub(crate) Arc<ContainerInner>);

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Container")
            .field("fd", &self.0.fd.as_raw_fd())
            .field("iommu", &state.iommu)
            .field("groups", &state.live_groups())
            .finish()
    }
}

impl ContainerState {
    fn live_groups(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .groups
            .iter()
            .filter(|(_, g)| g.strong_count() > 0)
            .map(|(&id, _)| id)
            .chain(self.stranded.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl Container {
    /// Opens `/dev/vfio/vfio` and checks that the kernel speaks VFIO API version
    /// `VFIO_API_VERSION`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the node is missing (`ENOENT`: vfio not loaded) or not accessible
    /// (`EACCES`), [`Error::ApiVersion`] for an unknown API version.
    #[doc(alias = "VFIO_GET_API_VERSION")]
    pub fn new() -> Result<Container> {
        Self::open(CONTAINER_PATH)
    }

    /// The iommufd's VFIO compatibility container: `/dev/iommu` opened and used with the
    /// legacy container ioctls (`VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`, type1 `MAP_DMA`, ...),
    /// which iommufd implements on top of an IOAS of its own. Groups join it with
    /// `VFIO_GROUP_SET_CONTAINER` as they join a real container, and everything built on a
    /// [`Container`] ([`crate::DmaBuffer`], [`crate::DmaPool`], [`Container::open_pci_device`])
    /// works unchanged. The kernel selftests call these modes `iommufd_compat_type1` and
    /// `iommufd_compat_type1v2`.
    ///
    /// What differs from a type1 container: iommufd's type1 emulation has no dirty tracking
    /// (`VFIO_IOMMU_DIRTY_PAGES` fails) and no `VFIO_UPDATE_VADDR`, refuses to map device
    /// memory (a mapped BAR) into the IOMMU, and `VFIO_TYPE1_IOMMU` behaves as type1v2 except
    /// that it allows splitting unmaps. A group's devices open before `VFIO_SET_IOMMU`, a group
    /// leaves (`VFIO_GROUP_UNSET_CONTAINER`) even with devices open, and the IOAS behind the
    /// container keeps its model and mappings after its last group has left.
    ///
    /// # Errors
    ///
    /// As [`crate::iommufd::Iommufd::new`]; [`Error::ApiVersion`] as [`Container::new`].
    pub fn iommufd_compat() -> Result<Container> {
        Self::adopt(
            ContainerFd::from_iommufd(crate::iommufd::open_iommufd()?),
            true,
        )
    }

    /// Opens a container node at `path` (for a non-standard `/dev` layout) and checks its API
    /// version.
    ///
    /// The file must be the VFIO container character device (misc 10:196, what
    /// `/dev/vfio/vfio` is), checked with `stat` before the open and `fstat` after it: no VFIO
    /// request is ever issued on another file, to which its number could mean something else.
    ///
    /// # Errors
    ///
    /// As [`Container::new`]; [`Error::InvalidArgument`] when `path` is not the VFIO container
    /// node.
    pub fn open(path: impl AsRef<Path>) -> Result<Container> {
        let path = path.as_ref();
        node::check_path(path, Node::Container)?;
        let fd = ContainerFd::open(path).map_err(|errno| Error::Open {
            path: path.to_path_buf(),
            errno,
        })?;
        node::check_fd(path, &fd, Node::Container)?;
        Self::adopt(fd, false)
    }

    /// Adopts an already-open container fd (for example one passed by a privileged parent
    /// process), checking its API version.
    ///
    /// # Safety
    ///
    /// `fd` must be an open `/dev/vfio/vfio` (the crate issues VFIO container ioctls on it, and an
    /// ioctl number can mean something else to another driver). Groups already attached to it
    /// and an IOMMU type already set are not known to the returned `Container`.
    ///
    /// # Errors
    ///
    /// As [`Container::open`].
    #[allow(unsafe_code)] // Adopting a foreign fd is the caller's promise; nothing else here is unsafe.
    pub unsafe fn from_owned_fd_unchecked(fd: OwnedFd) -> Result<Container> {
        // SAFETY: the caller promises `fd` is a VFIO container.
        let fd = unsafe { ContainerFd::from_owned_unchecked(fd) };
        Self::adopt(fd, false)
    }

    /// Wraps a container fd and checks the API version; on error the fd is closed.
    fn adopt(fd: ContainerFd, compat: bool) -> Result<Container> {
        let container = Container(Arc::new(ContainerInner {
            fd,
            state: Mutex::new(ContainerState::default()),
            dma: crate::dma::DmaState::default(),
            compat,
        }));
        let found = container.api_version()?;
        if found != vfio::VFIO_API_VERSION {
            return Err(Error::ApiVersion {
                found,
                expected: vfio::VFIO_API_VERSION,
                errno: Errno::EPROTO,
            });
        }
        Ok(container)
    }

    fn state(&self) -> MutexGuard<'_, ContainerState> {
        // A panic while holding the lock cannot leave the state inconsistent (every update is a
        // single assignment or insert), so a poisoned lock is still usable.
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `VFIO_GET_API_VERSION`: the kernel's VFIO API version (0 for every kernel so far).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if the ioctl fails.
    #[doc(alias = "VFIO_GET_API_VERSION")]
    pub fn api_version(&self) -> Result<i32> {
        self.0
            .fd
            .get_api_version()
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_CHECK_EXTENSION`: whether the host supports `extension`.
    ///
    /// Before an IOMMU type is set this asks about the host; afterwards the kernel answers for
    /// the selected IOMMU driver (e.g. [`Extension::DmaCcIommu`], [`Extension::UnmapAll`]).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if the ioctl fails.
    #[doc(alias = "VFIO_CHECK_EXTENSION")]
    pub fn check_extension(&self, extension: Extension) -> Result<bool> {
        self.0
            .fd
            .check_extension(extension.raw())
            .map(|r| r > 0)
            .map_err(|f| f.on(Object::Container))
    }

    /// Asks about every extension of the header: a typed report of what the host supports.
    /// (iommufd's compat container answers [`Extension::DmaCcIommu`] only once a group has
    /// joined; before, it is left out.)
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if an ioctl fails.
    pub fn extensions(&self) -> Result<Extensions> {
        let mut supported = Vec::new();
        for ext in Extension::ALL {
            match self.check_extension(ext) {
                Ok(true) => supported.push(ext),
                Ok(false) => {}
                // iommufd's compat container answers VFIO_DMA_CC_IOMMU from its IOAS, which
                // exists once a group has joined: ENODEV before, so not reported then.
                Err(e) if self.0.compat && e.errno() == Errno::ENODEV => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Extensions { supported })
    }

    /// `VFIO_SET_IOMMU`: selects the IOMMU model. Allowed once, after at least one group has
    /// joined the container (the kernel's rule, checked here first for a clearer error).
    ///
    /// [`IommuType::NoIommu`] is refused: without an IOMMU, a DMA address is a physical
    /// address, so one register write from safe code would let the device read or write any
    /// memory of the machine. Use the `unsafe` [`Container::set_iommu_unchecked`] for it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for [`IommuType::NoIommu`], before any group joined or when a
    /// type is already set, [`Error::NotSupported`] when the host lacks the model,
    /// [`Error::Ioctl`] when the kernel refuses (`EPERM`: no interrupt remapping on type1).
    #[doc(alias = "VFIO_SET_IOMMU")]
    pub fn set_iommu(&self, iommu: IommuType) -> Result<()> {
        if iommu == IommuType::NoIommu {
            return Err(Error::invalid(
                "set_iommu",
                Object::Container,
                "no-IOMMU mode lets a device reach all physical memory, which safe code must not \
                 allow: use the unsafe Container::set_iommu_unchecked",
            ));
        }
        self.set_iommu_inner(iommu, false)
    }

    /// [`Container::set_iommu`] that also accepts [`IommuType::NoIommu`].
    ///
    /// # Safety
    ///
    /// With [`IommuType::NoIommu`] nothing translates or checks the device's DMA: the
    /// addresses a driver programs are physical addresses, and a device told a wrong one (by
    /// the driver, or by a faulty device) reads or writes whatever memory is there, the
    /// kernel's included. The caller must ensure that every device of the container's groups
    /// is only ever given physical addresses of memory the caller owns and keeps alive, pinned
    /// and unmoved (not what [`DmaBuffer`](crate::dma::DmaBuffer) provides: its IOVAs mean
    /// nothing without an IOMMU), for as long as the device may use them. For the other types
    /// this is as safe as [`Container::set_iommu`].
    ///
    /// # Errors
    ///
    /// As [`Container::set_iommu`], without the refusal of [`IommuType::NoIommu`].
    #[doc(alias = "VFIO_NOIOMMU_IOMMU")]
    #[allow(unsafe_code)] // The contract is the caller's; the body is the safe path.
    pub unsafe fn set_iommu_unchecked(&self, iommu: IommuType) -> Result<()> {
        self.set_iommu_inner(iommu, false)
    }

    /// Sets `iommu` unless a model is set already (`if_unset`: then that one stays, checked
    /// under the same lock as the set, so that threads opening devices into one container at
    /// once do not race each other to the second `VFIO_SET_IOMMU`).
    fn set_iommu_inner(&self, iommu: IommuType, if_unset: bool) -> Result<()> {
        let mut state = self.settled_state();
        if let Some(current) = state.iommu {
            if if_unset {
                return Ok(());
            }
            return Err(Error::invalid(
                "set_iommu",
                Object::Container,
                format!("the IOMMU type is already set to {current:?}; it can be set only once"),
            ));
        }
        if state.live_groups().is_empty() {
            return Err(Error::invalid(
                "set_iommu",
                Object::Container,
                "no group has joined the container yet: call Group::set_container first",
            ));
        }
        if !self.check_extension(iommu.extension())? {
            return Err(Error::NotSupported {
                op: "set_iommu",
                object: Object::Container.into(),
                reason: format!("the host does not support {}", iommu.extension()).into(),
                errno: Errno::ENOTSUP,
            });
        }
        self.0
            .fd
            .set_iommu(iommu.extension().raw())
            .map_err(|f| f.on(Object::Container))?;
        state.iommu = Some(iommu);
        Ok(())
    }

    /// The IOMMU model set with [`Container::set_iommu`], if any. On a `/dev/vfio/vfio`
    /// container it is `None` again once the last group has left: the kernel then drops the
    /// IOMMU context with all its mappings. iommufd's compat container
    /// ([`Container::iommufd_compat`]) keeps its IOAS, model and mappings while it is open.
    pub fn iommu(&self) -> Option<IommuType> {
        self.settled_state().iommu
    }

    /// The numbers of the groups currently in this container. A dropped group whose
    /// `VFIO_GROUP_UNSET_CONTAINER` failed (a `dup` of one of its device fds is still open) is
    /// listed, as the kernel keeps it in the container, until the kernel lets it go.
    pub fn groups(&self) -> Vec<u32> {
        self.settled_state().live_groups()
    }

    /// The state, after forgetting the stranded groups (see `ContainerState::stranded`) once
    /// the kernel proves they are gone: no IOMMU driver is attached any more, which happens
    /// only when the last group has left.
    fn settled_state(&self) -> MutexGuard<'_, ContainerState> {
        let mut state = self.state();
        if !state.stranded.is_empty() && self.iommu_released() {
            state.stranded.clear();
            state.groups.retain(|_, g| g.strong_count() > 0);
            if state.groups.is_empty() {
                state.iommu = None;
                self.last_group_left();
            }
        }
        state
    }

    /// `VFIO_IOMMU_GET_INFO` for a type1 IOMMU: page sizes, valid IOVA ranges, the DMA mapping
    /// budget and migration capabilities.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless a type1 model is set, [`Error::Ioctl`] if the ioctl fails,
    /// [`Error::Malformed`] if the kernel's capability chain is broken.
    #[doc(alias = "VFIO_IOMMU_GET_INFO")]
    pub fn iommu_info(&self) -> Result<IommuInfo> {
        match self.iommu() {
            Some(t) if t.is_type1() => {}
            other => {
                return Err(Error::NotSupported {
                    op: "iommu_info",
                    object: Object::Container.into(),
                    reason: format!("needs a type1 IOMMU, the container has {other:?}").into(),
                    errno: Errno::EINVAL,
                })
            }
        }
        let buf = self
            .0
            .fd
            .iommu_get_info()
            .map_err(|f| f.on(Object::Container))?;
        IommuInfo::decode(buf.bytes())
            .map_err(|m| Error::malformed("VFIO_IOMMU_GET_INFO", Object::Container, m))
    }

    pub(crate) fn dma_state(&self) -> &crate::dma::DmaState {
        &self.0.dma
    }

    /// Whether this is iommufd's compatibility container ([`Container::iommufd_compat`]).
    pub fn is_iommufd_compat(&self) -> bool {
        self.0.compat
    }

    /// The group `id`, if it is in this container and still open.
    pub fn group(&self, id: u32) -> Option<Group> {
        self.state()
            .groups
            .get(&id)
            .and_then(Weak::upgrade)
            .map(Group)
    }

    pub(crate) fn register_group(&self, id: u32, group: &Arc<GroupInner>) {
        let mut state = self.state();
        state.groups.retain(|_, g| g.strong_count() > 0);
        state.groups.insert(id, Arc::downgrade(group));
        state.stranded.remove(&id);
    }

    /// The group left the container (`VFIO_GROUP_UNSET_CONTAINER` succeeded).
    pub(crate) fn forget_group(&self, id: u32) {
        let mut state = self.state();
        state.groups.remove(&id);
        state.stranded.remove(&id);
        state.groups.retain(|_, g| g.strong_count() > 0);
        // When the last group leaves, the kernel releases the container's IOMMU driver (and
        // with it every mapping): the type must be set again after the next group joins.
        // iommufd's compat container keeps its IOAS, with the mappings, for as long as the
        // iommufd is open: nothing is released there.
        if state.groups.is_empty() && state.stranded.is_empty() && !self.0.compat {
            state.iommu = None;
            self.last_group_left();
        }
    }

    /// The last group left. A legacy container's IOMMU driver goes with it, and every
    /// mapping with the driver. iommufd's compat container keeps its IOAS (`IOMMU_VFIO_IOAS`),
    /// and the mappings in it, until the container is closed: the next group to join sees them
    /// again, so the buffers mapped in it are still mapped.
    fn last_group_left(&self) {
        if !self.is_iommufd_compat() {
            self.dma_state().mappings_dropped();
        }
    }

    /// The group was dropped but could not leave: the kernel keeps it in the container (see
    /// `ContainerState::stranded`), so it still counts, and so do the IOMMU type and mappings.
    pub(crate) fn strand_group(&self, id: u32) {
        let mut state = self.state();
        state.groups.remove(&id);
        state.stranded.insert(id);
    }

    /// Whether the kernel proves that this container has no IOMMU driver any more (and so no
    /// mapping): `VFIO_IOMMU_GET_INFO` with a valid `argsz` fails with `EINVAL` only when no
    /// IOMMU driver is attached (the container passes unknown requests to its driver and
    /// answers `EINVAL` without one; type1 fails it only for a short `argsz`).
    pub(crate) fn iommu_released(&self) -> bool {
        matches!(
            self.fd().iommu_get_info(),
            Err(Failed {
                cause: Cause::Errno(Errno::EINVAL),
                ..
            })
        )
    }

    pub(crate) fn fd(&self) -> &ContainerFd {
        &self.0.fd
    }

    /// Whether two handles refer to the same container.
    pub fn same_as(&self, other: &Container) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AsFd for Container {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl AsRawFd for Container {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_numbers_and_names_match_the_header() {
        let raws: Vec<u32> = Extension::ALL.iter().map(|e| e.raw()).collect();
        assert_eq!(raws, (1..=10).collect::<Vec<u32>>());
        for e in Extension::ALL {
            assert!(e.name().starts_with("VFIO_"), "{e}");
        }
    }

    #[test]
    fn preferred_iommu_order() {
        let ext = |v: &[Extension]| Extensions {
            supported: v.to_vec(),
        };
        assert_eq!(
            ext(&[Extension::Type1Iommu, Extension::Type1v2Iommu]).preferred_iommu(),
            Some(IommuType::Type1v2)
        );
        assert_eq!(
            ext(&[Extension::Type1Iommu]).preferred_iommu(),
            Some(IommuType::Type1)
        );
        assert_eq!(
            ext(&[Extension::SpaprTceIommu, Extension::SpaprTceV2Iommu]).preferred_iommu(),
            Some(IommuType::SpaprTceV2)
        );
        assert_eq!(ext(&[Extension::NoIommu]).preferred_iommu(), None);
    }

    #[test]
    fn opening_a_missing_node_names_it() {
        let err = Container::open("/nonexistent/vfio").unwrap_err();
        assert_eq!(err.errno(), Errno::ENOENT);
        assert!(err.to_string().contains("/nonexistent/vfio"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_container_is_rejected_before_any_ioctl() {
        // Before the node check, VFIO_GET_API_VERSION was issued on /dev/null (ENOTTY).
        for path in ["/dev/null", "/proc/self/exe", "/tmp"] {
            let err = Container::open(path).unwrap_err();
            assert_eq!(err.errno(), Errno::EINVAL, "{err}");
            assert!(
                err.to_string().contains("not the VFIO container node"),
                "{err}"
            );
            assert!(!err.to_string().contains("VFIO_GET_API_VERSION"), "{err}");
        }
    }
}
