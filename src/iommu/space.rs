//! [`DmaSpace`]: the one place a driver chooses its IOMMU backend, and [`IommuMode`], the five
//! backends by the names the kernel's VFIO selftests give them.
//!
//! A driver opens a `DmaSpace` once, opens its devices through it, and allocates its DMA memory
//! in it; nothing else in the driver knows which backend is underneath:
//!
//! ```no_run
//! use uvfio::dma::{DmaBuffer, DmaMemory};
//! use uvfio::{DmaSpace, IommuMode};
//!
//! // iommufd (cdev + IOAS) where the kernel has it, else a legacy type1v2 container.
//! let space = DmaSpace::open(IommuMode::best_available())?;
//! let device = space.open_pci_device(&"0000:00:03.0".parse()?)?;
//! let mut ring = DmaBuffer::new(&space, 4096)?;
//! ring.write::<u64>(0, 0)?;
//! println!("{} via {}: ring at IOVA {:#x}", device.name(), space.mode(), ring.iova());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//!
//! - `tools/testing/selftests/vfio/lib/include/vfio_util.h` (Linux 6.17+): the five
//!   `iommu_mode`s and how each opens a device;
//! - <https://docs.kernel.org/driver-api/vfio.html> (the container and the cdev paths).

use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::IommuMode;
use crate::container::{Container, IommuType};
use crate::device::Device;
use crate::dma::{AddressLimit, DmaState, DmaStats, IovaAllocator, IovaBlock};
use crate::error::{Errno, Error, Object, Result};
use crate::iommu::{DmaAccess, IovaRange};
use crate::iommufd::{Ioas, Iommufd};
use crate::pci::PciAddress;

/// Where DMA goes: an IOMMU context that devices are opened into and that
/// [`DmaBuffer`](crate::DmaBuffer)s and [`DmaPool`](crate::DmaPool)s are mapped in.
///
/// A legacy or compat [`Container`] (with the type1 or type1v2 model) or an iommufd [`Ioas`];
/// [`DmaSpace::open`] makes one for an [`IommuMode`], and `From` wraps an existing container or
/// IOAS. Each buffer constructor takes `impl Into<DmaSpace>`, so `&container`, `&ioas` and
/// `&space` all work. The space keeps the IOVA allocator of its container or IOAS, so buffers
/// made through either handle never collide.
///
/// A cheap handle (an `Arc` inside); clones refer to the same space.
#[derive(Clone)]
pub struct DmaSpace {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// `iommu`: the model [`DmaSpace::open_pci_device`] sets when the container has none yet.
    Container {
        container: Container,
        iommu: Option<IommuType>,
    },
    Ioas(Ioas),
    /// A container in VFIO's no-IOMMU mode (opened by the `unsafe` [`DmaSpace::open_noiommu`]).
    NoIommu(Container),
}

impl fmt::Debug for DmaSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Container { container, .. } => {
                f.debug_tuple("DmaSpace").field(container).finish()
            }
            Kind::Ioas(ioas) => f.debug_tuple("DmaSpace").field(ioas).finish(),
            Kind::NoIommu(container) => {
                f.debug_tuple("DmaSpace::NoIommu").field(container).finish()
            }
        }
    }
}

impl From<&Container> for DmaSpace {
    fn from(container: &Container) -> DmaSpace {
        DmaSpace::from(container.clone())
    }
}

impl From<Container> for DmaSpace {
    fn from(container: Container) -> DmaSpace {
        DmaSpace {
            kind: Kind::Container {
                container,
                iommu: None,
            },
        }
    }
}

impl From<&Ioas> for DmaSpace {
    fn from(ioas: &Ioas) -> DmaSpace {
        DmaSpace::from(ioas.clone())
    }
}

impl From<Ioas> for DmaSpace {
    fn from(ioas: Ioas) -> DmaSpace {
        DmaSpace {
            kind: Kind::Ioas(ioas),
        }
    }
}

impl From<&DmaSpace> for DmaSpace {
    fn from(space: &DmaSpace) -> DmaSpace {
        space.clone()
    }
}

impl DmaSpace {
    /// Opens the IOMMU context of `mode`: `/dev/vfio/vfio` or iommufd's compat container for
    /// the container modes (the model is set when the first device is opened, as the kernel
    /// needs a group in the container first), or a new iommufd and an IOAS in it.
    ///
    /// # Errors
    ///
    /// As [`Container::new`], [`Container::iommufd_compat`], [`Iommufd::new`] and
    /// [`Iommufd::alloc_ioas`]; `ENOENT` on `/dev/iommu` means the kernel has no iommufd
    /// (`CONFIG_IOMMUFD`): use a `vfio_*` mode.
    pub fn open(mode: IommuMode) -> Result<DmaSpace> {
        let container =
            match mode {
                IommuMode::VfioType1 | IommuMode::VfioType1v2 => Container::new()?,
                IommuMode::IommufdCompatType1 | IommuMode::IommufdCompatType1v2 => {
                    Container::iommufd_compat()?
                }
                IommuMode::Iommufd => return Ok(Iommufd::new()?.alloc_ioas()?.into()),
                IommuMode::NoIommu => return Err(Error::invalid(
                    "DmaSpace::open",
                    Object::Container,
                    "no-IOMMU mode lets devices reach all physical memory, which safe code must \
                     not allow: use the unsafe DmaSpace::open_noiommu",
                )),
            };
        Ok(DmaSpace {
            kind: Kind::Container {
                container,
                iommu: mode.iommu_type(),
            },
        })
    }

    /// VFIO's no-IOMMU mode: a container whose devices are opened from their no-IOMMU groups
    /// (`/dev/vfio/noiommu-N`) with the model `VFIO_NOIOMMU_IOMMU`, and whose
    /// [`DmaBuffer`](crate::DmaBuffer)s and [`DmaPool`](crate::DmaPool)s are locked, physically
    /// contiguous memory whose "IOVA" is its physical address (read from
    /// `/proc/self/pagemap`). Drivers run unchanged; nothing protects the machine from them.
    ///
    /// Needs `vfio.enable_unsafe_noiommu_mode=1` (the kernel then taints itself when a device is
    /// opened), `CAP_SYS_RAWIO` to open the groups and `CAP_SYS_ADMIN` to read physical
    /// addresses. Buffers larger than one base page are put on huge pages (reserve them with
    /// `vm.nr_hugepages`): base pages are rarely physically contiguous. A device address limit
    /// ([`DmaOptions::address_bits`](crate::dma::DmaOptions::address_bits)) is met by allocating
    /// until the memory lies below it, as nothing remaps it.
    ///
    /// # Safety
    ///
    /// Without an IOMMU nothing translates or checks the devices' DMA: an address a driver
    /// programs, or a faulty device makes up, reaches whatever physical memory is there, the
    /// kernel's included. The caller must ensure that every device opened into this space is
    /// only ever given addresses of buffers of this space (or other memory it keeps alive and
    /// in place), each for no longer than the buffer lives, and that no device is left doing
    /// DMA when the process ends or a buffer is dropped. Memory compaction may move locked base
    /// pages (`vm.compact_unevictable_allowed=1`, the default): use huge pages for buffers a
    /// device keeps for long, or set that sysctl to 0.
    ///
    /// # Errors
    ///
    /// As [`Container::new`]; [`Error::NotSupported`] when the kernel offers no no-IOMMU mode
    /// (`CONFIG_VFIO_NOIOMMU` off, or `vfio.enable_unsafe_noiommu_mode` not set).
    #[allow(unsafe_code)] // The contract is the caller's; the body is safe.
    pub unsafe fn open_noiommu() -> Result<DmaSpace> {
        let container = Container::new()?;
        if !container.check_extension(crate::container::Extension::NoIommu)? {
            return Err(Error::NotSupported {
                op: "DmaSpace::open_noiommu",
                object: Object::Container.into(),
                reason: "the kernel offers no no-IOMMU mode: it needs CONFIG_VFIO_NOIOMMU and \
                         vfio.enable_unsafe_noiommu_mode=1"
                    .into(),
                errno: Errno::ENOTSUP,
            });
        }
        Ok(DmaSpace {
            kind: Kind::NoIommu(container),
        })
    }

    /// The backend: for a container, the model set (or the one [`DmaSpace::open`] will set),
    /// type1v2 when neither is known yet.
    pub fn mode(&self) -> IommuMode {
        match &self.kind {
            Kind::Ioas(_) => IommuMode::Iommufd,
            Kind::NoIommu(_) => IommuMode::NoIommu,
            Kind::Container { container, iommu } => {
                let type1 = matches!(container.iommu().or(*iommu), Some(IommuType::Type1));
                match (container.is_iommufd_compat(), type1) {
                    (false, true) => IommuMode::VfioType1,
                    (false, false) => IommuMode::VfioType1v2,
                    (true, true) => IommuMode::IommufdCompatType1,
                    (true, false) => IommuMode::IommufdCompatType1v2,
                }
            }
        }
    }

    /// The container, for the container modes.
    pub fn container(&self) -> Option<&Container> {
        match &self.kind {
            Kind::Container { container, .. } | Kind::NoIommu(container) => Some(container),
            Kind::Ioas(_) => None,
        }
    }

    /// The IOAS, for [`IommuMode::Iommufd`].
    pub fn ioas(&self) -> Option<&Ioas> {
        match &self.kind {
            Kind::Ioas(ioas) => Some(ioas),
            Kind::Container { .. } | Kind::NoIommu(_) => None,
        }
    }

    /// Opens the PCI device at `address` into this space. Container modes: its group is
    /// opened (or reused) and joins the container, the IOMMU model is set if none is yet, and
    /// the device is opened from the group. iommufd: the device's cdev is opened and bound to
    /// the IOAS's iommufd, and the device attached to the IOAS. Either way the [`Device`] is the
    /// same type with the same regions, IRQs, resets and features.
    ///
    /// # Errors
    ///
    /// As [`Container::open_pci_device`], or [`Iommufd::open_pci_device`] and
    /// [`Device::attach`].
    pub fn open_pci_device(&self, address: &PciAddress) -> Result<Device> {
        match &self.kind {
            Kind::Container { container, iommu } => container.open_pci_device_with(address, *iommu),
            Kind::NoIommu(container) => {
                let id = crate::pci::sysfs::Sysfs::new().iommu_group(address)?;
                container.open_in_group_noiommu(id, &address.to_string())
            }
            Kind::Ioas(ioas) => {
                let device = ioas.iommufd().open_pci_device(address)?;
                device.attach(ioas)?;
                Ok(device)
            }
        }
    }

    /// Opens the VFIO device whose sysfs directory is `sysfs_dir` into this space, as
    /// [`DmaSpace::open_pci_device`] does for a PCI address: any device of any bus, e.g. a
    /// mediated device (`/sys/bus/mdev/devices/<uuid>`), through its group
    /// ([`Container::open_device_at`]) or its cdev ([`Iommufd::open_device_at`]), then
    /// attached to the IOAS.
    ///
    /// # Errors
    ///
    /// As [`Container::open_device_at`] or [`Iommufd::open_device_at`] and [`Device::attach`].
    pub fn open_device_at(&self, sysfs_dir: impl AsRef<Path>) -> Result<Device> {
        match &self.kind {
            Kind::Container { container, iommu } => {
                container.open_device_at_with(sysfs_dir.as_ref(), *iommu)
            }
            Kind::NoIommu(container) => {
                let dir = sysfs_dir.as_ref();
                let id = crate::pci::sysfs::iommu_group_of(dir)?;
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                container.open_in_group_noiommu(id, &name)
            }
            Kind::Ioas(ioas) => {
                let device = ioas.iommufd().open_device_at(sysfs_dir)?;
                device.attach(ioas)?;
                Ok(device)
            }
        }
    }

    /// Whether two handles refer to the same container or IOAS.
    pub fn same_as(&self, other: &DmaSpace) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Container { container: a, .. }, Kind::Container { container: b, .. }) => {
                a.same_as(b)
            }
            (Kind::Ioas(a), Kind::Ioas(b)) => a.same_as(b),
            (Kind::NoIommu(a), Kind::NoIommu(b)) => a.same_as(b),
            _ => false,
        }
    }

    /// Counters of the DMA layer: ioctls issued, live buffers and bytes, leaks, and the IOVA
    /// allocator's state.
    pub fn dma_stats(&self) -> DmaStats {
        self.state().stats()
    }

    /// Takes `size` bytes of IOVA space (naturally aligned, within `limit`) from the space's
    /// allocator, the one [`DmaBuffer`](crate::DmaBuffer)s use.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] for a container without a type1 model;
    /// [`Error::InvalidArgument`] with `ENOSPC` when no block fits (see
    /// [`IovaAllocator::allocate`]).
    pub fn allocate_iova(&self, size: u64, limit: AddressLimit) -> Result<IovaReservation> {
        let block = self.with_allocator("allocate_iova", |a| a.allocate(size, limit))?;
        Ok(self.reservation(block))
    }

    /// Takes exactly `size` bytes at `start` from the space's allocator, e.g. to keep
    /// [`DmaBuffer`](crate::DmaBuffer)s away from guest memory mapped at fixed IOVAs.
    ///
    /// # Errors
    ///
    /// As [`IovaAllocator::reserve`]: `EEXIST` when taken, `ERANGE` outside the valid ranges.
    pub fn reserve_iova(&self, start: u64, size: u64) -> Result<IovaReservation> {
        let block = self.with_allocator("reserve_iova", |a| a.reserve(start, size))?;
        Ok(self.reservation(block))
    }

    /// Re-reads the valid IOVA ranges now (they are re-read automatically before the next
    /// allocation after a group joins or leaves, or a device attaches or detaches). Returns the
    /// ranges in use.
    ///
    /// # Errors
    ///
    /// As [`Container::iommu_info`] or [`Ioas::iova_ranges`].
    pub fn refresh_iova_ranges(&self) -> Result<Vec<IovaRange>> {
        self.state().invalidate_ranges();
        self.with_allocator("refresh_iova_ranges", |a| Ok(a.ranges().collect()))
    }

    fn reservation(&self, block: IovaBlock) -> IovaReservation {
        IovaReservation {
            space: self.clone(),
            start: block.start(),
            size: block.size(),
            block: Some(block),
        }
    }

    pub(crate) fn state(&self) -> &DmaState {
        match &self.kind {
            Kind::Container { container, .. } | Kind::NoIommu(container) => container.dma_state(),
            Kind::Ioas(ioas) => ioas.dma_state(),
        }
    }

    pub(crate) fn object(&self) -> Object {
        match &self.kind {
            Kind::Container { .. } | Kind::NoIommu(_) => Object::Container,
            Kind::Ioas(ioas) => Object::Ioas(ioas.id()),
        }
    }

    /// Whether this is a no-IOMMU space (buffers at physical addresses).
    pub(crate) fn is_noiommu(&self) -> bool {
        matches!(self.kind, Kind::NoIommu(_))
    }

    /// Fails unless buffers can be mapped: a container needs a type1 model.
    pub(crate) fn check_ready(&self, op: &'static str) -> Result<()> {
        match &self.kind {
            Kind::Ioas(_) | Kind::NoIommu(_) => Ok(()),
            Kind::Container { container, .. } => match container.iommu() {
                Some(t) if t.is_type1() => Ok(()),
                other => Err(Error::NotSupported {
                    op,
                    object: Object::Container.into(),
                    reason: format!(
                        "DMA buffers need a type1 IOMMU (Container::set_iommu, or open a device \
                         through DmaSpace::open_pci_device); the container has {other:?}"
                    )
                    .into(),
                    errno: Errno::EINVAL,
                }),
            },
        }
    }

    /// Runs `f` on the space's allocator, reading the valid ranges first when they are stale.
    pub(crate) fn with_allocator<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut IovaAllocator) -> Result<R>,
    ) -> Result<R> {
        self.check_ready(op)?;
        self.state().with_allocator(|| self.fresh_allocator(), f)
    }

    fn fresh_allocator(&self) -> Result<IovaAllocator> {
        match &self.kind {
            Kind::Container { container, .. } => {
                IovaAllocator::from_iommu_info(&container.iommu_info()?)
            }
            Kind::Ioas(ioas) => {
                let r = ioas.iova_ranges()?;
                IovaAllocator::new(&r.ranges, r.alignment.max(1))
            }
            Kind::NoIommu(_) => Err(Error::NotSupported {
                op: "allocate IOVA",
                object: Object::Container.into(),
                reason: "without an IOMMU there is no IOVA space: buffers sit at their physical \
                         addresses"
                    .into(),
                errno: Errno::ENOTSUP,
            }),
        }
    }

    /// Maps `len` bytes at `vaddr` at exactly `iova`.
    ///
    /// # Safety
    ///
    /// As [`Container::map_dma_raw`] / [`Ioas::map_raw`]: the memory outlives the mapping and
    /// is only accessed in ways a device's concurrent writes cannot make unsound.
    #[allow(unsafe_code)] // Forwards its own contract to the two raw maps; nothing else.
    pub(crate) unsafe fn map(
        &self,
        vaddr: *const u8,
        iova: u64,
        len: u64,
        access: DmaAccess,
    ) -> Result<()> {
        match &self.kind {
            // SAFETY: forwarded to this function's contract.
            Kind::Container { container, .. } => unsafe {
                container.map_dma_raw(vaddr, iova, len, access)
            },
            // SAFETY: forwarded to this function's contract.
            Kind::Ioas(ioas) => unsafe { ioas.map_raw(vaddr, len, access, Some(iova)) }.map(drop),
            // Nothing to map: the device reaches the memory at its physical address.
            Kind::NoIommu(_) => Ok(()),
        }
    }

    /// Unmaps a buffer's own range `[iova, iova + len)`, which it mapped as one mapping;
    /// returns whether the kernel proved that nothing is mapped there any more, so the memory
    /// behind it may be freed.
    pub(crate) fn unmap_owned(&self, iova: u64, len: u64) -> bool {
        self.state().unmap_ioctls.fetch_add(1, Ordering::Relaxed);
        match &self.kind {
            Kind::Container { container, .. } => container.unmap_owned(iova, len),
            // Nothing was mapped; the memory is the buffer's to free (the caller of
            // open_noiommu promised no device still uses it).
            Kind::NoIommu(_) => true,
            // Ok(0): nothing is mapped inside the range (someone unmapped it earlier); a larger
            // mapping around it cannot exist, the buffer's map would have failed.
            Kind::Ioas(ioas) => ioas.unmap_teardown(iova, len).is_ok(),
        }
    }
}

/// A block of a [`DmaSpace`]'s IOVA space taken from its allocator, given back on drop.
///
/// For callers that map memory themselves ([`Container::map_dma_raw`], [`Ioas::map_raw`]) and
/// want IOVAs that never collide with those of [`DmaBuffer`](crate::DmaBuffer)s in the same
/// space. The reservation covers IOVA space only; it maps nothing.
#[derive(Debug)]
pub struct IovaReservation {
    space: DmaSpace,
    block: Option<IovaBlock>,
    start: u64,
    size: u64,
}

impl IovaReservation {
    /// The first IOVA.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The size in bytes (a multiple of the IOMMU page size).
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for IovaReservation {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            self.space.state().free(block);
        }
    }
}

// The DMA-space calls on the two kinds of handle, for drivers that hold one of them directly.
macro_rules! space_calls {
    ($ty:ty, $what:literal) => {
        impl $ty {
            #[doc = concat!("Counters of the DMA layer of this ", $what, ": ioctls issued, live")]
            /// buffers and bytes, leaks, and the IOVA allocator's state
            /// ([`DmaSpace::dma_stats`]).
            pub fn dma_stats(&self) -> DmaStats {
                self.dma_state().stats()
            }

            #[doc = concat!("Takes `size` bytes of this ", $what, "'s IOVA space from the")]
            /// allocator [`DmaBuffer`](crate::DmaBuffer)s use ([`DmaSpace::allocate_iova`]).
            ///
            /// # Errors
            ///
            /// As [`DmaSpace::allocate_iova`].
            pub fn allocate_iova(&self, size: u64, limit: AddressLimit) -> Result<IovaReservation> {
                DmaSpace::from(self).allocate_iova(size, limit)
            }

            #[doc = concat!("Takes exactly `size` bytes at `start` from this ", $what, "'s")]
            /// allocator ([`DmaSpace::reserve_iova`]).
            ///
            /// # Errors
            ///
            /// As [`DmaSpace::reserve_iova`].
            pub fn reserve_iova(&self, start: u64, size: u64) -> Result<IovaReservation> {
                DmaSpace::from(self).reserve_iova(start, size)
            }

            /// Re-reads the valid IOVA ranges now ([`DmaSpace::refresh_iova_ranges`]).
            ///
            /// # Errors
            ///
            /// As [`DmaSpace::refresh_iova_ranges`].
            pub fn refresh_iova_ranges(&self) -> Result<Vec<IovaRange>> {
                DmaSpace::from(self).refresh_iova_ranges()
            }
        }
    };
}

space_calls!(Container, "container");
space_calls!(Ioas, "IOAS");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Errno;

    #[test]
    fn safe_open_refuses_no_iommu_before_touching_anything() {
        let e = DmaSpace::open(IommuMode::NoIommu).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.to_string().contains("open_noiommu"), "{e}");
    }
}
