//! PCI hot reset: `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO` and `VFIO_DEVICE_PCI_HOT_RESET`.
//!
//! A hot reset is a secondary bus reset (or slot reset) of the bus the device sits on, so it
//! resets every function on that bus. The kernel therefore asks for proof that the caller owns
//! all of them. For a device opened through its group, the proof is the fds of every IOMMU
//! group they are in: [`Device::pci_hot_reset_info`] lists the affected functions and their
//! groups; [`Device::pci_hot_reset`] takes the [`Group`]s, checks them against that list, and
//! names the missing groups instead of letting the kernel answer a bare `EINVAL`. For a device
//! opened through its cdev, the proof is the iommufd: every affected function must be open and
//! bound to the same iommufd, the info lists their device ids, and the reset takes no groups.
//!
//! `VFIO_DEVICE_RESET` (a function-level reset, or whatever reset the device offers) is
//! [`Device::reset`].
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`,
//!   `VFIO_DEVICE_PCI_HOT_RESET`
//! - Linux `drivers/vfio/pci/vfio_pci_core.c` (`vfio_pci_ioctl_pci_hot_reset`)

use std::collections::BTreeSet;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use super::Device;
use std::mem::size_of;

use crate::error::{Errno, Error, Malformation, Result};
use crate::group::Group;
use crate::pci::PciAddress;
use crate::uapi::buf::read_pod;
use crate::uapi::ioctl::{Cause, Failed};
use crate::uapi::vfio;

/// Who owns a function a hot reset would reset, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HotResetOwner {
    /// Its IOMMU group (the info of a device opened through its group).
    Group(u32),
    /// Its device id in the caller's iommufd (the info of a device opened through its cdev).
    Device(u32),
    /// Open in the caller's iommufd but not bound to it yet (`VFIO_PCI_DEVID_OWNED`).
    OwnedUnbound,
    /// Not open in the caller's iommufd (`VFIO_PCI_DEVID_NOT_OWNED`): the reset is refused.
    NotOwned,
}

/// A function a hot reset of the device would reset too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "vfio_pci_dependent_device")]
pub struct HotResetDevice {
    /// Its PCI address (`None` if the kernel reported an impossible device/function number).
    pub address: Option<PciAddress>,
    /// Its group, or for a cdev device its device id in the caller's iommufd.
    pub owner: HotResetOwner,
}

impl HotResetDevice {
    /// Its IOMMU group, when the info came from a device opened through its group.
    pub fn group(&self) -> Option<u32> {
        match self.owner {
            HotResetOwner::Group(g) => Some(g),
            _ => None,
        }
    }
}

impl fmt::Display for HotResetDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = match self.owner {
            HotResetOwner::Group(g) => format!("group {g}"),
            HotResetOwner::Device(id) => format!("device id {id}"),
            HotResetOwner::OwnedUnbound => "open here, not bound".to_string(),
            HotResetOwner::NotOwned => "not open in this iommufd".to_string(),
        };
        match &self.address {
            Some(a) => write!(f, "{a} ({owner})"),
            None => write!(f, "a device ({owner})"),
        }
    }
}

/// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: what a hot reset of a device would reset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "vfio_pci_hot_reset_info")]
pub struct HotResetInfo {
    /// Every affected function, the device itself included.
    pub devices: Vec<HotResetDevice>,
    /// `VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED`: (cdev) every affected function is open in the
    /// caller's iommufd, so [`Device::pci_hot_reset`] will be allowed.
    pub all_owned: bool,
}

impl HotResetInfo {
    /// The IOMMU groups of the affected functions, sorted, each once: the groups whose fds the
    /// reset needs (empty for the info of a cdev device, which reports device ids).
    pub fn groups(&self) -> Vec<u32> {
        let set: BTreeSet<u32> = self
            .devices
            .iter()
            .filter_map(HotResetDevice::group)
            .collect();
        set.into_iter().collect()
    }

    /// The groups in [`HotResetInfo::groups`] that are not in `have`.
    pub fn missing_groups(&self, have: &[u32]) -> Vec<u32> {
        self.groups()
            .into_iter()
            .filter(|g| !have.contains(g))
            .collect()
    }
}

impl HotResetInfo {
    /// Decodes the answer of `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: a 12-byte
    /// `struct vfio_pci_hot_reset_info` (`argsz`, `flags`, `count`) followed by `count` 8-byte
    /// `struct vfio_pci_dependent_device` entries, as the kernel filled them (native byte
    /// order). [`Device::pci_hot_reset_info`] asks the kernel and decodes with this; it is
    /// public so that captured answers can be decoded without a device. Bytes after the
    /// `count` entries (room the kernel did not use) are ignored.
    ///
    /// With `VFIO_PCI_HOT_RESET_FLAG_DEV_ID` in the flags (a device opened through its cdev)
    /// each entry's `group_id` is a device id ([`HotResetOwner::Device`], or the two reserved
    /// values [`HotResetOwner::OwnedUnbound`] and [`HotResetOwner::NotOwned`]); otherwise an
    /// IOMMU group ([`HotResetOwner::Group`]).
    ///
    /// # Errors
    ///
    /// [`Malformation::Other`] when `bytes` is shorter than the header or than the `count`
    /// entries it announces.
    #[doc(alias = "vfio_pci_hot_reset_info")]
    pub fn decode(bytes: &[u8]) -> std::result::Result<HotResetInfo, Malformation> {
        let header = size_of::<vfio::vfio_pci_hot_reset_info>();
        let entry = size_of::<vfio::vfio_pci_dependent_device>();
        let Some(info) = read_pod::<vfio::vfio_pci_hot_reset_info>(bytes, 0) else {
            return Err(Malformation::Other(format!(
                "the answer is {} bytes, shorter than the {header}-byte header",
                bytes.len()
            )));
        };
        let room = (bytes.len() - header) / entry;
        let count = usize::try_from(info.count).unwrap_or(usize::MAX);
        if count > room {
            return Err(Malformation::Other(format!(
                "count {} is larger than the {room} entries the answer holds",
                info.count
            )));
        }
        let by_id = info.flags & vfio::VFIO_PCI_HOT_RESET_FLAG_DEV_ID != 0;
        let devices = (0..count)
            .filter_map(|i| read_pod::<vfio::vfio_pci_dependent_device>(bytes, header + i * entry))
            .map(|d| HotResetDevice {
                address: PciAddress::new(u32::from(d.segment), d.bus, d.devfn >> 3, d.devfn & 7),
                owner: match (by_id, d.group_id) {
                    (false, g) => HotResetOwner::Group(g),
                    (true, vfio::VFIO_PCI_DEVID_NOT_OWNED) => HotResetOwner::NotOwned,
                    (true, vfio::VFIO_PCI_DEVID_OWNED) => HotResetOwner::OwnedUnbound,
                    (true, id) => HotResetOwner::Device(id),
                },
            })
            .collect();
        Ok(HotResetInfo {
            devices,
            all_owned: info.flags & vfio::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED != 0,
        })
    }
}

fn not_resettable(device: &Device, op: &'static str) -> Error {
    Error::NotSupported {
        op,
        object: device.object().into(),
        reason: "the kernel can neither reset the device's slot nor its bus (a device on the \
                 root bus, or a bus shared with the host bridge); use Device::reset"
            .into(),
        errno: Errno::ENODEV,
    }
}

impl Device {
    /// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: the functions (and their groups) a hot reset of
    /// this device would reset, the device itself included.
    ///
    /// # Errors
    ///
    /// - [`Error::NotSupported`] (`ENODEV`) when the device cannot be hot reset (no slot or bus
    ///   reset: typically a function on the root bus), or (`ENOTTY`) when it is not PCI;
    /// - [`Error::Ioctl`] for other kernel errors, [`Error::Malformed`] for an inconsistent
    ///   answer.
    #[doc(alias = "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO")]
    pub fn pci_hot_reset_info(&self) -> Result<HotResetInfo> {
        const OP: &str = "pci_hot_reset_info";
        match self.fd().get_pci_hot_reset_info() {
            Ok(buf) => HotResetInfo::decode(buf.bytes()).map_err(|m| {
                Error::malformed("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", self.object(), m)
            }),
            Err(Failed {
                cause: Cause::Errno(Errno::ENODEV),
                ..
            }) => Err(not_resettable(self, OP)),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(Error::NotSupported {
                op: OP,
                object: self.object().into(),
                reason: "hot reset is a vfio-pci ioctl; this device is not PCI".into(),
                errno: Errno::ENOTTY,
            }),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// `VFIO_DEVICE_PCI_HOT_RESET`: resets the device's bus or slot, and with it every function
    /// [`Device::pci_hot_reset_info`] lists.
    ///
    /// For a device opened through its group, the kernel wants, as proof of ownership, the fd
    /// of every IOMMU group with a function on that bus, this device's own included: pass those
    /// [`Group`]s (opened by this process, in any container; `device.group()` for its own).
    /// Groups that are not affected are ignored. Before the kernel is asked, the groups are
    /// checked against the info, and a missing one is an error that names it.
    ///
    /// For a device opened through its cdev, the proof is the iommufd: every affected function
    /// must be open and bound to the same iommufd. Pass no groups (`&[]`); a function that is
    /// not is named in the error before the kernel is asked.
    ///
    /// vfio-pci saves and restores each function's config space around the reset; device
    /// registers return to their reset values, and mappings of the devices' BARs are faulted in
    /// again on their next access.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`EINVAL`, what the kernel would say) naming the groups
    ///   (and the functions in them) whose fds are missing;
    /// - [`Error::NotSupported`] (`ENODEV`) when the device cannot be hot reset;
    /// - [`Error::Ioctl`] when the kernel refuses (`EINVAL` when a group does not own every
    ///   device the kernel resets, `EBUSY` when a device is busy elsewhere, and also when
    ///   another thread is accessing a BAR of an affected device at that moment, through a
    ///   mapping fault or `pread`/`pwrite`: the kernel only tries each device's memory lock
    ///   and gives up on contention, so such an `EBUSY` is transient and a retry once the
    ///   accesses pause succeeds; see `tests/hw/misbehave.rs`).
    #[doc(alias = "VFIO_DEVICE_PCI_HOT_RESET")]
    pub fn pci_hot_reset(&self, groups: &[&Group]) -> Result<()> {
        const OP: &str = "pci_hot_reset";
        let info = self.pci_hot_reset_info()?;
        if self.group().is_none() {
            return self.pci_hot_reset_by_iommufd(&info, groups);
        }
        let affected = info.groups();
        let mut proof: Vec<&Group> = Vec::new();
        for &g in groups {
            if affected.contains(&g.id()) && !proof.iter().any(|p| p.id() == g.id()) {
                proof.push(g);
            }
        }
        let have: Vec<u32> = proof.iter().map(|g| g.id()).collect();
        let missing = info.missing_groups(&have);
        if !missing.is_empty() {
            let who: Vec<String> = info
                .devices
                .iter()
                .filter(|d| d.group().is_some_and(|g| missing.contains(&g)))
                .map(ToString::to_string)
                .collect();
            let list: Vec<String> = missing.iter().map(u32::to_string).collect();
            return Err(Error::InvalidArgument {
                op: OP,
                object: self.object().into(),
                reason: format!(
                    "a hot reset also resets {}: pass the group{} {} (open in this process) as \
                     proof of ownership",
                    who.join(", "),
                    if missing.len() == 1 { "" } else { "s" },
                    list.join(", ")
                )
                .into(),
                errno: Errno::EINVAL,
            });
        }
        let fds: Vec<BorrowedFd<'_>> = proof.iter().map(|g| g.as_fd()).collect();
        match self.fd().pci_hot_reset(&fds) {
            Ok(()) => Ok(()),
            Err(Failed {
                cause: Cause::Errno(Errno::ENODEV),
                ..
            }) => Err(not_resettable(self, OP)),
            Err(f) => Err(f.on(self.object())),
        }
    }
}

impl Device {
    /// The cdev form: no group fds, the iommufd is the proof.
    fn pci_hot_reset_by_iommufd(&self, info: &HotResetInfo, groups: &[&Group]) -> Result<()> {
        const OP: &str = "pci_hot_reset";
        if !groups.is_empty() {
            return Err(Error::invalid(
                OP,
                self.object(),
                "the device was opened through its cdev: a hot reset takes no group fds, its \
                 iommufd is the proof of ownership (pass &[])",
            ));
        }
        let strangers: Vec<String> = info
            .devices
            .iter()
            .filter(|d| !matches!(d.owner, HotResetOwner::Device(_)))
            .map(ToString::to_string)
            .collect();
        if !info.all_owned || !strangers.is_empty() {
            return Err(Error::InvalidArgument {
                op: OP,
                object: self.object().into(),
                reason: format!(
                    "a hot reset also resets {}: open and bind {} to the same iommufd first",
                    strangers.join(", "),
                    if strangers.len() == 1 { "it" } else { "them" }
                )
                .into(),
                errno: Errno::EPERM,
            });
        }
        match self.fd().pci_hot_reset(&[]) {
            Ok(()) => Ok(()),
            Err(Failed {
                cause: Cause::Errno(Errno::ENODEV),
                ..
            }) => Err(not_resettable(self, OP)),
            Err(f) => Err(f.on(self.object())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_deduplicated_and_missing_ones_listed() {
        let dev = |bus, devfn: u8, group| HotResetDevice {
            address: PciAddress::new(0, bus, devfn >> 3, devfn & 7),
            owner: HotResetOwner::Group(group),
        };
        let info = HotResetInfo {
            devices: vec![dev(1, 0, 7), dev(1, 1, 7), dev(1, 8, 9), dev(1, 16, 3)],
            all_owned: false,
        };
        assert_eq!(info.groups(), vec![3, 7, 9]);
        assert_eq!(info.missing_groups(&[7]), vec![3, 9]);
        assert!(info.missing_groups(&[9, 3, 7, 12]).is_empty());
        assert_eq!(info.devices[2].to_string(), "0000:01:01.0 (group 9)");
        let odd = HotResetDevice {
            address: None,
            owner: HotResetOwner::Group(4),
        };
        assert_eq!(odd.to_string(), "a device (group 4)");
        // The cdev form names device ids, and lists no groups.
        let cdev = HotResetInfo {
            devices: vec![
                HotResetDevice {
                    address: PciAddress::new(0, 1, 0, 0),
                    owner: HotResetOwner::Device(3),
                },
                HotResetDevice {
                    address: PciAddress::new(0, 1, 0, 1),
                    owner: HotResetOwner::NotOwned,
                },
            ],
            all_owned: false,
        };
        assert!(cdev.groups().is_empty());
        assert_eq!(cdev.devices[0].to_string(), "0000:01:00.0 (device id 3)");
        assert_eq!(
            cdev.devices[1].to_string(),
            "0000:01:00.1 (not open in this iommufd)"
        );
    }
}
