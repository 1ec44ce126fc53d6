//! Host helpers over sysfs: IOMMU groups, drivers, IDs, and binding a function to `vfio-pci`.
//!
//! Everything goes through a [`Sysfs`] handle whose root is `/sys` in real use and a directory
//! of your choosing in tests ([`Sysfs::with_root`]), so the logic can be exercised against a fake
//! tree.
//!
//! Reading needs no privileges. Changing a binding ([`Sysfs::bind_vfio_pci`]) writes
//! `driver_override`, `unbind` and `drivers_probe`, which needs root (`CAP_SYS_ADMIN`).
//!
//! Every failure is an [`Error::Sysfs`] naming what was being done (`"reading"`, `"writing"`,
//! `"listing"`, `"resolving"`, `"parsing"`), the path, and the errno: the kernel's for a failed
//! system call, `EPROTO` for a file whose contents make no sense.
//!
//! # References
//!
//! `Documentation/ABI/testing/sysfs-bus-pci` (`driver_override`, `drivers_probe`, `unbind`) and
//! <https://docs.kernel.org/driver-api/vfio.html> (binding a device to vfio-pci).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Errno, Error, GroupMember, Result};
use crate::pci::PciAddress;
use crate::trace::{self, Level};

/// The name of the driver VFIO needs.
const VFIO_PCI: &str = "vfio-pci";

/// The drivers a member of an IOMMU group may be bound to without making the group unviable:
/// vfio-pci itself, and the two that declare `driver_managed_dma` because they do no DMA.
pub(crate) const DMA_SAFE_DRIVERS: [&str; 3] = [VFIO_PCI, "pci-stub", "pcieport"];

/// The one conversion from an `io::Error` to the crate's error, keeping the errno (`EIO` if the
/// error has none).
pub(crate) fn sysfs_error(op: &'static str, path: &Path, err: &io::Error) -> Error {
    Error::Sysfs {
        op,
        path: path.to_path_buf(),
        errno: Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// A file whose contents cannot be what sysfs writes.
pub(crate) fn unparsable(path: &Path) -> Error {
    Error::Sysfs {
        op: "parsing",
        path: path.to_path_buf(),
        errno: Errno::EPROTO,
    }
}

/// The last component of the target of the symlink `path` (`.../drivers/e1000` → `e1000`).
pub(crate) fn link_name(path: &Path) -> Result<String> {
    let target = fs::read_link(path).map_err(|e| sysfs_error("resolving", path, &e))?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| unparsable(path))
}

/// Reads a sysfs attribute, without its trailing newline.
pub(crate) fn read_attr(path: &Path) -> Result<String> {
    let mut s = fs::read_to_string(path).map_err(|e| sysfs_error("reading", path, &e))?;
    while s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// Parses a `0x1234` ID file.
pub(super) fn read_id(path: &Path) -> Result<u16> {
    let s = read_attr(path)?;
    s.strip_prefix("0x")
        .filter(|h| !h.is_empty() && h.len() <= 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .ok_or_else(|| unparsable(path))
}

/// The driver the device whose sysfs directory is `dev` is bound to, or `None`.
pub(super) fn driver_at(dev: &Path) -> Result<Option<String>> {
    let link = dev.join("driver");
    match fs::symlink_metadata(&link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // No `driver` link: either no driver, or no such device at all. Tell them apart.
            fs::metadata(dev).map_err(|e| sysfs_error("resolving", dev, &e))?;
            Ok(None)
        }
        Err(e) => Err(sysfs_error("resolving", &link, &e)),
        Ok(_) => link_name(&link).map(Some),
    }
}

#[cfg(test)]
pub(crate) type WriteHook = std::sync::Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// Access to sysfs under a configurable root.
///
/// Cheap to create and to clone; it holds nothing but the root path.
#[derive(Clone)]
pub struct Sysfs {
    root: PathBuf,
    /// Where the VFIO group nodes are: `/dev/vfio` (under the fake root in unit tests).
    dev_vfio: PathBuf,
    /// Called after every successful write, so tests can log writes and play the kernel's part
    /// (moving `driver` links) in a fake tree.
    #[cfg(test)]
    pub(crate) on_write: Option<WriteHook>,
}

impl fmt::Debug for Sysfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sysfs").field("root", &self.root).finish()
    }
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new()
    }
}

/// The IOMMU group of the device whose sysfs directory is `dir` (a PCI function, an mdev, any
/// bus), from its `iommu_group` link.
pub(crate) fn iommu_group_of(dir: &Path) -> Result<u32> {
    let link = dir.join("iommu_group");
    let name = link_name(&link)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unparsable(&link));
    }
    name.parse().map_err(|_| unparsable(&link))
}

impl Sysfs {
    /// The real sysfs, at `/sys`.
    pub fn new() -> Self {
        Sysfs::with_root("/sys")
    }

    /// A sysfs tree mounted (or faked) at `root`, which stands for `/sys`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Sysfs {
            #[cfg(not(test))]
            dev_vfio: PathBuf::from("/dev/vfio"),
            #[cfg(test)]
            dev_vfio: root.join("dev/vfio"),
            root,
            #[cfg(test)]
            on_write: None,
        }
    }

    /// The root this handle reads, `/sys` for [`Sysfs::new`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the VFIO device nodes are: `/dev/vfio` (under the fake root in unit tests).
    pub(super) fn dev_vfio(&self) -> &Path {
        &self.dev_vfio
    }

    /// The function's directory, `<root>/bus/pci/devices/<addr>`.
    pub fn device_dir(&self, addr: &PciAddress) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr.to_string())
    }

    pub(super) fn group_devices_dir(&self, group: u32) -> PathBuf {
        self.root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices")
    }

    pub(crate) fn driver_dir(&self, driver: &str) -> PathBuf {
        self.root.join("bus/pci/drivers").join(driver)
    }

    pub(crate) fn drivers_probe(&self) -> PathBuf {
        self.root.join("bus/pci/drivers_probe")
    }

    /// Writes `value` to the sysfs attribute `path` in one `write(2)`.
    pub(crate) fn write_attr(&self, path: &Path, value: &str) -> Result<()> {
        // No O_CREAT: a missing attribute is an error, not a file to create. O_TRUNC is ignored
        // by sysfs and keeps a fake tree readable.
        let args = |f: &mut fmt::Formatter<'_>| write!(f, "{:?}", value.trim_end());
        trace::call(Level::Debug, "write", path.display(), args, || {
            fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?
                .write_all(value.as_bytes())
        })
        .map_err(|e| sysfs_error("writing", path, &e))?;
        #[cfg(test)]
        if let Some(hook) = &self.on_write {
            hook(path, value);
        }
        Ok(())
    }

    /// The IOMMU group of a function: the number `<device>/iommu_group` links to, which names
    /// `/dev/vfio/<group>`.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] with `ENOENT` when the function does not exist or has no IOMMU group
    /// (the IOMMU is off: `intel_iommu=on`/`amd_iommu=on` missing, or no IOMMU at all), or
    /// `EPROTO` when the link does not end in a number.
    pub fn iommu_group(&self, addr: &PciAddress) -> Result<u32> {
        iommu_group_of(&self.device_dir(addr))
    }

    /// The sysfs names of the devices of an IOMMU group (`kernel/iommu_groups/<group>/devices`),
    /// sorted. For PCI devices these are addresses; a group may also hold devices of other buses.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] with `ENOENT` when there is no such group.
    pub fn group_devices(&self, group: u32) -> Result<Vec<String>> {
        let dir = self.group_devices_dir(group);
        let entries = fs::read_dir(&dir).map_err(|e| sysfs_error("listing", &dir, &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| sysfs_error("listing", &dir, &e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The driver a function is bound to (the name `<device>/driver` links to), or `None` when
    /// it has none.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] with `ENOENT` when the function does not exist.
    pub fn driver(&self, addr: &PciAddress) -> Result<Option<String>> {
        driver_at(&self.device_dir(addr))
    }

    /// The vendor and device IDs of a function, from its `vendor` and `device` files.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] with `ENOENT` when the function does not exist, or `EPROTO` when a file
    /// does not hold a `0x`-prefixed 16-bit hex number.
    pub fn vendor_device(&self, addr: &PciAddress) -> Result<(u16, u16)> {
        let dir = self.device_dir(addr);
        Ok((read_id(&dir.join("vendor"))?, read_id(&dir.join("device"))?))
    }

    /// The devices of an IOMMU group that keep it from being viable, with their drivers, in
    /// name order: what to put in [`Error::GroupNotViable`].
    ///
    /// These are the members bound to a driver other than `vfio-pci`. Members with no driver, or
    /// on `pci-stub` or `pcieport` (a PCIe port), are left out: the kernel does not count them
    /// against viability (both drivers set `driver_managed_dma`, since Linux 5.19: they do no
    /// DMA), and there is nothing to rebind.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the group cannot be listed or a device's driver link cannot be read.
    pub fn non_vfio_members(&self, group: u32) -> Result<Vec<GroupMember>> {
        let dir = self.group_devices_dir(group);
        let mut members = Vec::new();
        for device in self.group_devices(group)? {
            let driver = driver_at(&dir.join(&device))?;
            if matches!(driver.as_deref(), Some(d) if !DMA_SAFE_DRIVERS.contains(&d)) {
                members.push(GroupMember { device, driver });
            }
        }
        Ok(members)
    }

    /// Binds a function to `vfio-pci` until the returned [`VfioBinding`] is dropped or released.
    /// **Needs root.**
    ///
    /// The steps, each a sysfs write:
    ///
    /// 1. record the current driver;
    /// 2. write `vfio-pci` to `<device>/driver_override`, so only vfio-pci may take it;
    /// 3. write the address to `bus/pci/drivers/<current>/unbind` (if it has a driver);
    /// 4. write the address to `bus/pci/drivers_probe`, so vfio-pci takes it;
    /// 5. check that `<device>/driver` now names `vfio-pci`.
    ///
    /// If the function already is bound to `vfio-pci`, nothing is written and the binding
    /// restores nothing. If a step fails, the steps done so far are undone as far as possible
    /// (`driver_override` cleared, the device probed again) before the error is returned.
    ///
    /// Binding one function is not always enough: every device of its IOMMU group must be bound
    /// to vfio-pci (or to no driver) for the group to be viable; see
    /// [`Sysfs::non_vfio_members`].
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] for the step that failed: `EACCES` when not root, `ENOENT` when the
    /// function does not exist, and `ENODEV` with the `drivers_probe` path when vfio-pci did not
    /// take the device after probing (typically because the `vfio-pci` module is not loaded).
    pub fn bind_vfio_pci(&self, addr: &PciAddress) -> Result<VfioBinding> {
        self.bind_driver(addr, VFIO_PCI)
    }

    /// Moves the PCI function at `addr` to the kernel driver `driver` (for example back to
    /// `e1000e` to compare with the kernel's own driver, or to `vfio-pci`), the same way as
    /// [`Sysfs::bind_vfio_pci`]: `driver_override`, unbind, `drivers_probe`. Dropping the binding
    /// gives the function back to its previous driver. Needs root.
    ///
    /// # Errors
    ///
    /// As [`Sysfs::bind_vfio_pci`]; `ENODEV` with the `drivers_probe` path when `driver` did not
    /// take the function (its module is not loaded, or it does not handle this device).
    pub fn bind_driver(&self, addr: &PciAddress, driver: &str) -> Result<VfioBinding> {
        let previous = self.driver(addr)?;
        // What driver_override held before, to put back after the restore. Kernels print an
        // unset override as "(null)". An unreadable one counts as unset; writing it below
        // reports the real problem.
        let saved_override = read_attr(&self.device_dir(addr).join("driver_override"))
            .ok()
            .filter(|v| !v.is_empty() && v != "(null)");
        let mut binding = VfioBinding {
            sysfs: self.clone(),
            addr: *addr,
            driver: driver.to_string(),
            previous,
            saved_override,
            armed: false,
        };
        if binding.previous.as_deref() == Some(driver) {
            return Ok(binding);
        }
        let name = addr.to_string();
        self.write_attr(&self.device_dir(addr).join("driver_override"), driver)?;
        binding.armed = true;
        if let Some(current) = &binding.previous {
            self.write_attr(&self.driver_dir(current).join("unbind"), &name)?;
        }
        let probe = self.drivers_probe();
        self.write_attr(&probe, &name)?;
        if self.driver(addr)?.as_deref() != Some(driver) {
            return Err(Error::Sysfs {
                op: if driver == VFIO_PCI {
                    "binding vfio-pci (is the vfio-pci module loaded?) through"
                } else {
                    "binding the driver (is its module loaded, does it handle this device?) through"
                },
                path: probe,
                errno: Errno::ENODEV,
            });
        }
        // Every early return above drops `binding` while armed, which undoes the steps taken.
        Ok(binding)
    }

    /// Gives a function bound by [`Sysfs::bind_driver`] back: unbinds it from `driver` if it is
    /// bound there; if it had a driver before, pins that one with `driver_override` and probes,
    /// so exactly that driver takes it back (not whichever driver would claim the device, which
    /// matters when the previous driver was vfio-pci); then puts back the `driver_override` it
    /// had. A function that had no driver is left without one.
    ///
    /// Runs every step even if one fails, and reports the first failure.
    fn restore(&self, binding: &VfioBinding) -> Result<()> {
        let (addr, driver, previous) = (
            &binding.addr,
            binding.driver.as_str(),
            binding.previous.as_deref(),
        );
        let name = addr.to_string();
        let mut first_error = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        // Held across the unbind when the driver is vfio-pci: see `claim_vfio_group`.
        let mut _group_node = None;
        match self.driver(addr) {
            Ok(Some(d)) if d == driver => {
                if driver == VFIO_PCI {
                    // Unbinding vfio-pci while a VFIO fd of the device is open blocks in the
                    // kernel until it closes (forever, if this process holds it): refuse, and
                    // leave the device as it is.
                    _group_node = self.claim_vfio_group(addr)?;
                }
                note(self.write_attr(&self.driver_dir(driver).join("unbind"), &name));
            }
            Ok(_) => {}
            Err(e) => note(Err(e)),
        }
        let override_path = self.device_dir(addr).join("driver_override");
        if let Some(previous) = previous {
            note(self.write_attr(&override_path, previous));
            note(self.write_attr(&self.drivers_probe(), &name));
        }
        let saved = binding.saved_override.as_deref().unwrap_or("\n");
        note(self.write_attr(&override_path, saved));
        first_error.map_or(Ok(()), Err)
    }
}

impl Sysfs {
    /// Proves that no VFIO file descriptor of the device at `addr` is open, and keeps it so:
    /// opens its group node (`/dev/vfio/<group>` or `noiommu-<group>`), which the kernel lets
    /// only one file have open, and which every open device fd holds (a device cdev blocks it
    /// too). Holding the returned fd across the unbind keeps anyone from opening the device
    /// meanwhile; the unbind does not wait for a group file. `None` when the device has no
    /// group node (then it has no VFIO fd either).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] with `EBUSY` (naming the node) when the group is open, in this process
    /// or another: the unbind would wait for it; the error of the open for other failures.
    fn claim_vfio_group(&self, addr: &PciAddress) -> Result<Option<std::fs::File>> {
        let group = match self.iommu_group(addr) {
            Ok(group) => group,
            // No IOMMU group: vfio-pci cannot have registered the device.
            Err(Error::Sysfs {
                errno: Errno::ENOENT,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        for name in [group.to_string(), format!("noiommu-{group}")] {
            let node = self.dev_vfio.join(name);
            match fs::OpenOptions::new().read(true).write(true).open(&node) {
                Ok(file) => return Ok(Some(file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    return Err(Error::Sysfs {
                        op: if errno == Errno::EBUSY {
                            "unbinding: a VFIO fd of the device is open (the kernel's unbind \
                             would wait for it to close); close it first, then release the \
                             binding. Left bound, found by opening"
                        } else {
                            "unbinding: cannot tell whether a VFIO fd of the device is open; \
                             left bound, found by opening"
                        },
                        path: node,
                        errno,
                    });
                }
            }
        }
        Ok(None)
    }
}

/// A function bound to a driver (usually `vfio-pci`) by [`Sysfs::bind_vfio_pci`] or
/// [`Sysfs::bind_driver`]; dropping it gives the function back to its previous driver.
///
/// Dropping (or [`VfioBinding::release`]) unbinds the function from that driver, probes it with
/// its previous driver pinned so that exactly that driver takes it back, and restores the
/// `driver_override` it had. A function that
/// had no driver is left without one, and a function that was already bound to the driver is
/// left alone. Close every VFIO file descriptor of the device first: the kernel's unbind would
/// wait for them, so while the device's VFIO group is open (in any process) a vfio-pci binding
/// is not given back: [`VfioBinding::release`] says so with an error, and dropping leaves the
/// device on vfio-pci (it never hangs).
#[derive(Debug)]
#[must_use = "dropping a VfioBinding gives the device back to its previous driver at once"]
pub struct VfioBinding {
    sysfs: Sysfs,
    addr: PciAddress,
    /// The driver the function was bound to.
    driver: String,
    previous: Option<String>,
    /// `driver_override` before the binding (`None`: unset).
    saved_override: Option<String>,
    /// Whether dropping must restore the previous binding.
    armed: bool,
}

impl VfioBinding {
    /// A binding made earlier (by another process, recorded in a file) that releasing gives
    /// back: `addr` is bound to `driver` and had `previous`, with `driver_override` then
    /// `saved_override`.
    pub(crate) fn resume(
        sysfs: &Sysfs,
        addr: PciAddress,
        driver: &str,
        previous: Option<String>,
        saved_override: Option<String>,
    ) -> VfioBinding {
        VfioBinding {
            sysfs: sysfs.clone(),
            addr,
            driver: driver.to_string(),
            previous,
            saved_override,
            armed: true,
        }
    }

    /// The bound function.
    pub fn address(&self) -> PciAddress {
        self.addr
    }

    /// The driver the function is bound to by this binding.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The driver the function had before, `None` if it had none.
    pub fn previous_driver(&self) -> Option<&str> {
        self.previous.as_deref()
    }

    /// Whether dropping the binding changes anything: `false` when the function was already
    /// bound to the driver.
    pub fn restores(&self) -> bool {
        self.armed
    }

    /// Gives the function back now (see the type docs) and reports failures, which dropping
    /// cannot.
    ///
    /// # Errors
    ///
    /// The first [`Error::Sysfs`] of the restoring steps; the others are still attempted.
    pub fn release(mut self) -> Result<()> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        self.sysfs.restore(&self)
    }

    /// Leaves the function bound to the driver for good: dropping the binding will restore
    /// nothing.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for VfioBinding {
    fn drop(&mut self) {
        if std::mem::replace(&mut self.armed, false) {
            // A destructor cannot return the error, and panicking here could abort during
            // unwinding: it goes to stderr, so that a device left bound (its VFIO group still
            // open) is not a silent surprise. `release` returns it instead.
            if let Err(e) = self.sysfs.restore(self) {
                eprintln!("uvfio: giving {} back to its driver: {e}", self.addr);
            }
        }
    }
}

#[cfg(test)]
#[path = "sysfs_tests.rs"]
mod tests;
