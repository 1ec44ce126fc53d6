//! Opening devices into a container: by PCI address or sysfs directory, joining the device's
//! group and setting the IOMMU model on the way when needed.

use std::path::Path;

use super::{Container, IommuType};
use crate::error::{Errno, Error, Object, Result};
use crate::group::Group;

impl Container {
    /// Opens the PCI device at `address` in this container: finds its group through sysfs,
    /// opens the group (or reuses it if it already joined this container), joins it, selects the
    /// preferred IOMMU model if none is set yet, and opens the device.
    ///
    /// # Errors
    ///
    /// Whatever the steps return: [`Error::Sysfs`] when the device or its group is unknown,
    /// [`Error::GroupNotViable`], [`Error::Open`], [`Error::Ioctl`].
    pub fn open_pci_device(&self, address: &crate::pci::PciAddress) -> Result<crate::Device> {
        self.open_pci_device_with(address, None)
    }

    /// [`Container::open_pci_device`], setting `iommu` (when given) instead of the preferred
    /// model if none is set yet.
    pub(crate) fn open_pci_device_with(
        &self,
        address: &crate::pci::PciAddress,
        iommu: Option<IommuType>,
    ) -> Result<crate::Device> {
        let id = crate::pci::sysfs::Sysfs::new().iommu_group(address)?;
        self.open_in_group(id, &address.to_string(), iommu)
    }

    /// Opens the VFIO device whose sysfs directory is `sysfs_dir` in this container, as
    /// [`Container::open_pci_device`] does for a PCI address: any device of any bus, e.g. a
    /// mediated device (`/sys/bus/mdev/devices/<uuid>`). Its group comes from the directory's
    /// `iommu_group` link, its name is the directory's name.
    ///
    /// # Errors
    ///
    /// As [`Container::open_pci_device`]; [`Error::Sysfs`] when the directory has no
    /// `iommu_group` link (not a device, or not in an IOMMU group).
    pub fn open_device_at(&self, sysfs_dir: impl AsRef<Path>) -> Result<crate::Device> {
        self.open_device_at_with(sysfs_dir.as_ref(), None)
    }

    pub(crate) fn open_device_at_with(
        &self,
        dir: &Path,
        iommu: Option<IommuType>,
    ) -> Result<crate::Device> {
        let id = crate::pci::sysfs::iommu_group_of(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.open_in_group(id, &name, iommu)
    }

    /// Opens device `name` of no-IOMMU group `id`, joining the group and setting the
    /// no-IOMMU model first when needed. Only [`crate::DmaSpace`]'s no-IOMMU kind calls it,
    /// whose `unsafe` constructor carries the contract.
    pub(crate) fn open_in_group_noiommu(&self, id: u32, name: &str) -> Result<crate::Device> {
        let group = match self.group(id) {
            Some(g) => g,
            None => {
                let g = Group::open(id)?;
                g.set_container(self)?;
                g
            }
        };
        self.set_iommu_inner(IommuType::NoIommu, true)?;
        group.open_device(name)
    }

    /// Opens device `name` of group `id`, joining the group and setting `iommu` (or the
    /// preferred model) first when needed.
    pub(super) fn open_in_group(
        &self,
        id: u32,
        name: &str,
        iommu: Option<IommuType>,
    ) -> Result<crate::Device> {
        let group = match self.group(id) {
            Some(g) => g,
            None => {
                let g = Group::open(id)?;
                g.set_container(self)?;
                g
            }
        };
        if self.iommu().is_none() {
            let preferred = match iommu {
                Some(t) => Some(t),
                None => self.extensions()?.preferred_iommu(),
            };
            let preferred = preferred.ok_or_else(|| Error::NotSupported {
                op: "open_pci_device",
                object: Object::Container,
                reason: "the host supports no IOMMU model this crate can select".into(),
                errno: Errno::ENOTSUP,
            })?;
            if preferred == IommuType::NoIommu {
                return Err(Error::invalid(
                    "open_pci_device",
                    Object::Container,
                    "no-IOMMU mode is never selected by safe code",
                ));
            }
            self.set_iommu_inner(preferred, true)?;
        }
        group.open_device(name)
    }
}
