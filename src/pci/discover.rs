//! Device discovery: which PCI functions the host has, and which of them a process can use
//! through VFIO, without walking sysfs by hand.
//!
//! [`Sysfs::pci_functions`] describes every PCI function ([`PciFunction`]: address, IDs, class,
//! driver, IOMMU group and whether that group is viable, the `/dev/vfio` nodes);
//! [`Sysfs::vfio_devices`] keeps those that can be opened through VFIO now
//! ([`PciFunction::is_vfio_usable`]), and a [`Filter`] picks functions by vendor, device and
//! class, the way `lspci -d` does.
//!
//! ```no_run
//! use uvfio::pci::discover::Filter;
//! use uvfio::pci::sysfs::Sysfs;
//!
//! # fn main() -> uvfio::Result<()> {
//! // Every Intel network controller this process can open through VFIO.
//! let nics = Filter::any().vendor(0x8086).base_class(0x02);
//! for f in Sysfs::new().vfio_devices()?.iter().filter(|f| nics.matches(f)) {
//!     println!("{} {:04x}:{:04x} group {:?}", f.address, f.vendor, f.device, f.iommu_group);
//!     if let Some(cdev) = &f.cdev {
//!         println!("  device cdev {}", cdev.display());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Reading sysfs needs no privileges; everything goes through a [`Sysfs`] handle, so a fake
//! tree ([`Sysfs::with_root`]) works as well as `/sys`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::sysfs::{driver_at, read_attr, read_id, sysfs_error, unparsable, Sysfs};
use crate::error::{Errno, Error, GroupMember, Result};
use crate::pci::PciAddress;

/// The name of the driver VFIO needs.
const VFIO_PCI: &str = "vfio-pci";

/// The name the kernel gives the fake IOMMU groups of no-IOMMU mode
/// (`/sys/kernel/iommu_groups/N/name`).
const NOIOMMU_GROUP_NAME: &str = "vfio-noiommu";

/// One PCI function of the host as sysfs describes it, with what VFIO needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PciFunction {
    /// Its address (`0000:00:03.0`).
    pub address: PciAddress,
    /// Vendor ID (`vendor`).
    pub vendor: u16,
    /// Device ID (`device`).
    pub device: u16,
    /// Subsystem vendor ID (`subsystem_vendor`); 0 when the file is missing.
    pub subsystem_vendor: u16,
    /// Subsystem device ID (`subsystem_device`); 0 when the file is missing.
    pub subsystem_device: u16,
    /// The 24-bit class code (`class`): base class, subclass, programming interface, e.g.
    /// `0x020000` for an Ethernet controller.
    pub class: u32,
    /// The driver it is bound to, or `None`.
    pub driver: Option<String>,
    /// Its IOMMU group, or `None` when it has none (no IOMMU, and no no-IOMMU group either).
    pub iommu_group: Option<u32>,
    /// Whether the group is a no-IOMMU group (`vfio.enable_unsafe_noiommu_mode=1`): usable only
    /// with `CAP_SYS_RAWIO`, and without DMA protection.
    pub noiommu: bool,
    /// The members of its group that keep the group from being viable (bound to a driver other
    /// than `vfio-pci`, `pci-stub` or `pcieport`), as [`Sysfs::non_vfio_members`] reports them. Empty when
    /// the group is viable or there is no group.
    pub blockers: Vec<GroupMember>,
    /// The group's node, `/dev/vfio/N` or `/dev/vfio/noiommu-N`, when the function is bound to
    /// vfio-pci (only then does VFIO create it). Not checked for existence.
    pub group_node: Option<PathBuf>,
    /// The device's cdev, `/dev/vfio/devices/vfioN`, when sysfs has
    /// `/sys/bus/pci/devices/<addr>/vfio-dev/vfioN/dev` (kernels with `VFIO_DEVICE_CDEV`, for
    /// iommufd). Kernels 6.1 to 6.5 have the `vfio-dev/vfioN` directory but no character
    /// device (no `dev` attribute): then `None`.
    pub cdev: Option<PathBuf>,
}

impl PciFunction {
    /// Whether the function is a PCI-to-PCI, CardBus or RACEway bridge (class `0604`, `0607`,
    /// `0609`: a type 1 or 2 header, which vfio-pci does not take).
    pub fn is_bridge(&self) -> bool {
        matches!(self.class >> 8, 0x0604 | 0x0607 | 0x0609)
    }

    /// Whether the function is bound to `vfio-pci`.
    pub fn on_vfio_pci(&self) -> bool {
        self.driver.as_deref() == Some(VFIO_PCI)
    }

    /// Whether its IOMMU group is viable: it has one and no member is bound to a driver other
    /// than `vfio-pci`, `pci-stub` or `pcieport` (driverless members, bridges without a driver
    /// included, do not count).
    pub fn group_viable(&self) -> bool {
        self.iommu_group.is_some() && self.blockers.is_empty()
    }

    /// Whether a process can open it through VFIO now: bound to `vfio-pci`, in an IOMMU group
    /// (a no-IOMMU one included, see [`PciFunction::noiommu`]) that is viable. Permission on the
    /// nodes is not checked.
    pub fn is_vfio_usable(&self) -> bool {
        self.on_vfio_pci() && self.group_viable()
    }
}

impl Sysfs {
    /// Describes the PCI function at `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`]: `ENOENT` when there is no such function, `EPROTO` when an ID or class
    /// file, or the `iommu_group` link, makes no sense, the errno of a failed read otherwise.
    pub fn pci_function(&self, addr: &PciAddress) -> Result<PciFunction> {
        let mut groups = GroupCache::default();
        self.describe(addr, &mut groups)
    }

    /// Describes every PCI function of the host (`bus/pci/devices`), in address order.
    ///
    /// A function that disappears while it is being read (hot unplug) is left out.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when `bus/pci/devices` cannot be listed or a function's files cannot
    /// be read or parsed (see [`Sysfs::pci_function`]).
    pub fn pci_functions(&self) -> Result<Vec<PciFunction>> {
        let dir = self.root().join("bus/pci/devices");
        let entries = fs::read_dir(&dir).map_err(|e| sysfs_error("listing", &dir, &e))?;
        let mut addresses = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| sysfs_error("listing", &dir, &e))?;
            let name = entry.file_name();
            let addr = name
                .to_str()
                .and_then(|n| n.parse::<PciAddress>().ok())
                .ok_or_else(|| unparsable(&entry.path()))?;
            addresses.push(addr);
        }
        addresses.sort();
        let mut groups = GroupCache::default();
        let mut out = Vec::with_capacity(addresses.len());
        for addr in addresses {
            match self.describe(&addr, &mut groups) {
                Ok(f) => out.push(f),
                Err(_) if !self.device_dir(&addr).exists() => {} // unplugged meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The PCI functions a process can use through VFIO now
    /// ([`PciFunction::is_vfio_usable`]), in address order.
    ///
    /// # Errors
    ///
    /// As [`Sysfs::pci_functions`].
    pub fn vfio_devices(&self) -> Result<Vec<PciFunction>> {
        let mut all = self.pci_functions()?;
        all.retain(PciFunction::is_vfio_usable);
        Ok(all)
    }

    /// The usable functions ([`Sysfs::vfio_devices`]) that `filter` matches.
    ///
    /// # Errors
    ///
    /// As [`Sysfs::pci_functions`].
    pub fn find_vfio_devices(&self, filter: &Filter) -> Result<Vec<PciFunction>> {
        let mut all = self.vfio_devices()?;
        all.retain(|f| filter.matches(f));
        Ok(all)
    }

    fn describe(&self, addr: &PciAddress, groups: &mut GroupCache) -> Result<PciFunction> {
        let dir = self.device_dir(addr);
        let (vendor, device) = self.vendor_device(addr)?;
        let optional_id = |name: &str| match read_id(&dir.join(name)) {
            Err(Error::Sysfs {
                errno: Errno::ENOENT,
                ..
            }) => Ok(0),
            other => other,
        };
        let subsystem_vendor = optional_id("subsystem_vendor")?;
        let subsystem_device = optional_id("subsystem_device")?;
        let class = read_class(&dir.join("class"))?;
        let driver = driver_at(&dir)?;
        let iommu_group = match self.iommu_group(addr) {
            Ok(g) => Some(g),
            Err(Error::Sysfs {
                op: "resolving",
                errno: Errno::ENOENT,
                ..
            }) => None,
            Err(e) => return Err(e),
        };
        let (noiommu, blockers) = match iommu_group {
            Some(g) => groups.get(self, g)?,
            None => (false, Vec::new()),
        };
        let on_vfio = driver.as_deref() == Some(VFIO_PCI);
        let group_node = match iommu_group {
            Some(g) if on_vfio => Some(self.dev_vfio().join(if noiommu {
                format!("noiommu-{g}")
            } else {
                g.to_string()
            })),
            _ => None,
        };
        let cdev = self.cdev_of(&dir)?;
        Ok(PciFunction {
            address: *addr,
            vendor,
            device,
            subsystem_vendor,
            subsystem_device,
            class,
            driver,
            iommu_group,
            noiommu,
            blockers,
            group_node,
            cdev,
        })
    }

    /// `/dev/vfio/devices/vfioN` for the `vfio-dev/vfioN` entry of the device directory `dir`,
    /// if that entry is a character device (has a `dev` attribute).
    fn cdev_of(&self, dir: &Path) -> Result<Option<PathBuf>> {
        let vfio_dev = dir.join("vfio-dev");
        let entries = match fs::read_dir(&vfio_dev) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(sysfs_error("listing", &vfio_dev, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| sysfs_error("listing", &vfio_dev, &e))?;
            let name = entry.file_name();
            if let Some(n) = name.to_str().filter(|n| {
                n.strip_prefix("vfio")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            }) {
                let dev = vfio_dev.join(n).join("dev");
                return match fs::symlink_metadata(&dev) {
                    Ok(_) => Ok(Some(self.dev_vfio().join("devices").join(n))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(sysfs_error("reading", &dev, &e)),
                };
            }
        }
        Ok(None)
    }
}

/// Per-group facts, read once per listing: whether the group is a no-IOMMU one, and what keeps
/// it from being viable.
#[derive(Default)]
struct GroupCache(BTreeMap<u32, (bool, Vec<GroupMember>)>);

impl GroupCache {
    fn get(&mut self, sysfs: &Sysfs, group: u32) -> Result<(bool, Vec<GroupMember>)> {
        if let Some(v) = self.0.get(&group) {
            return Ok(v.clone());
        }
        let name_file = sysfs
            .root()
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("name");
        let noiommu = match read_attr(&name_file) {
            Ok(name) => name == NOIOMMU_GROUP_NAME,
            Err(Error::Sysfs {
                errno: Errno::ENOENT,
                ..
            }) => false,
            Err(e) => return Err(e),
        };
        let v = (noiommu, sysfs.non_vfio_members(group)?);
        self.0.insert(group, v.clone());
        Ok(v)
    }
}

/// Parses the 24-bit `0x020000` class file.
fn read_class(path: &Path) -> Result<u32> {
    let s = read_attr(path)?;
    s.strip_prefix("0x")
        .filter(|h| !h.is_empty() && h.len() <= 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| unparsable(path))
}

/// Which functions to pick, by vendor, device and class; an unset field matches anything.
///
/// Build one with [`Filter::any`] and the setters, or parse `lspci -d` syntax
/// (`[vendor]:[device][:class]`, hex, e.g. `8086:`, `:100e`, `8086:100e:0200`).
///
/// ```
/// use uvfio::pci::discover::Filter;
///
/// let f: Filter = "8086::02".parse().unwrap();
/// assert_eq!(f, Filter::any().vendor(0x8086).base_class(0x02));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter {
    vendor: Option<u16>,
    device: Option<u16>,
    /// `(value, mask)` on the 24-bit class code.
    class: Option<(u32, u32)>,
}

impl Filter {
    /// A filter that matches every function.
    pub fn any() -> Self {
        Filter::default()
    }

    /// Only functions with this vendor ID.
    pub fn vendor(mut self, vendor: u16) -> Self {
        self.vendor = Some(vendor);
        self
    }

    /// Only functions with this device ID.
    pub fn device(mut self, device: u16) -> Self {
        self.device = Some(device);
        self
    }

    /// Only functions whose 24-bit class code, masked with `mask`, is `code & mask`; e.g.
    /// `class(0x010802, 0xffffff)` for NVMe controllers.
    pub fn class(mut self, code: u32, mask: u32) -> Self {
        let mask = mask & 0x00ff_ffff;
        self.class = Some((code & mask, mask));
        self
    }

    /// Only functions of this base class (the class code's top byte, e.g. `0x02` for network
    /// controllers).
    pub fn base_class(self, base: u8) -> Self {
        self.class(u32::from(base) << 16, 0x00ff_0000)
    }

    /// Whether `f` passes the filter.
    pub fn matches(&self, f: &PciFunction) -> bool {
        self.vendor.is_none_or(|v| v == f.vendor)
            && self.device.is_none_or(|d| d == f.device)
            && self.class.is_none_or(|(code, mask)| f.class & mask == code)
    }
}

/// Why a string is not a [`Filter`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid device filter {input:?}: {reason}")]
pub struct ParseFilterError {
    input: String,
    reason: &'static str,
}

impl ParseFilterError {
    /// The string that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl FromStr for Filter {
    type Err = ParseFilterError;

    /// `[vendor]:[device][:class]`, hex without `0x`: vendor and device 1 to 4 digits, class 2
    /// (base class), 4 (base class and subclass, as `lspci -d`) or 6 digits (the whole code).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseFilterError {
            input: s.to_owned(),
            reason,
        };
        let hex16 = |p: &str| -> Result<Option<u16>, ParseFilterError> {
            if p.is_empty() {
                return Ok(None);
            }
            if p.len() > 4 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err("vendor and device IDs are 1 to 4 hex digits"));
            }
            u16::from_str_radix(p, 16)
                .map(Some)
                .map_err(|_| err("vendor and device IDs are 1 to 4 hex digits"))
        };
        let mut parts = s.split(':');
        let (Some(v), Some(d)) = (parts.next(), parts.next()) else {
            return Err(err("want [vendor]:[device][:class]"));
        };
        let mut filter = Filter {
            vendor: hex16(v)?,
            device: hex16(d)?,
            class: None,
        };
        if let Some(c) = parts.next() {
            if !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err("the class is hex"));
            }
            let code = u32::from_str_radix(c, 16).unwrap_or(0);
            filter = match c.len() {
                0 => filter,
                2 => filter.class(code << 16, 0x00ff_0000),
                4 => filter.class(code << 8, 0x00ff_ff00),
                6 => filter.class(code, 0x00ff_ffff),
                _ => return Err(err("the class is 2, 4 or 6 hex digits")),
            };
        }
        if parts.next().is_some() {
            return Err(err("want [vendor]:[device][:class]"));
        }
        Ok(filter)
    }
}

impl fmt::Display for PciFunction {
    /// `0000:00:03.0 [0200] 8086:100e (vfio-pci, group 7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{:04x}] {:04x}:{:04x} ({}",
            self.address,
            self.class >> 8,
            self.vendor,
            self.device,
            self.driver.as_deref().unwrap_or("no driver")
        )?;
        match self.iommu_group {
            Some(g) if self.noiommu => write!(f, ", no-IOMMU group {g}")?,
            Some(g) => write!(f, ", group {g}")?,
            None => f.write_str(", no IOMMU group")?,
        }
        if !self.blockers.is_empty() {
            f.write_str(", not viable")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
