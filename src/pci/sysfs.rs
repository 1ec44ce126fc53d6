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

/// The name of the driver VFIO needs.
const VFIO_PCI: &str = "vfio-pci";

/// The one conversion from an `io::Error` to the crate's error, keeping the errno (`EIO` if the
/// error has none).
pub(super) fn sysfs_error(op: &'static str, path: &Path, err: &io::Error) -> Error {
    Error::Sysfs {
        op,
        path: path.to_path_buf(),
        errno: Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// A file whose contents cannot be what sysfs writes.
pub(super) fn unparsable(path: &Path) -> Error {
    Error::Sysfs {
        op: "parsing",
        path: path.to_path_buf(),
        errno: Errno::EPROTO,
    }
}

/// The last component of the target of the symlink `path` (`.../drivers/e1000` → `e1000`).
pub(super) fn link_name(path: &Path) -> Result<String> {
    let target = fs::read_link(path).map_err(|e| sysfs_error("resolving", path, &e))?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| unparsable(path))
}

/// Reads a sysfs attribute, without its trailing newline.
pub(super) fn read_attr(path: &Path) -> Result<String> {
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
type WriteHook = std::sync::Arc<dyn Fn(&Path, &str) + Send + Sync>;

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
    on_write: Option<WriteHook>,
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

    fn driver_dir(&self, driver: &str) -> PathBuf {
        self.root.join("bus/pci/drivers").join(driver)
    }

    fn drivers_probe(&self) -> PathBuf {
        self.root.join("bus/pci/drivers_probe")
    }

    /// Writes `value` to the sysfs attribute `path` in one `write(2)`.
    fn write_attr(&self, path: &Path, value: &str) -> Result<()> {
        // No O_CREAT: a missing attribute is an error, not a file to create. O_TRUNC is ignored
        // by sysfs and keeps a fake tree readable.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| sysfs_error("writing", path, &e))?;
        file.write_all(value.as_bytes())
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
        let link = self.device_dir(addr).join("iommu_group");
        let name = link_name(&link)?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unparsable(&link));
        }
        name.parse().map_err(|_| unparsable(&link))
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
    /// These are the members bound to a driver other than `vfio-pci` (a PCI bridge bound to
    /// `pcieport` included). Members with no driver, or on `pci-stub`, are left out: the kernel
    /// does not count them against viability, and there is nothing to rebind.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the group cannot be listed or a device's driver link cannot be read.
    pub fn non_vfio_members(&self, group: u32) -> Result<Vec<GroupMember>> {
        let dir = self.group_devices_dir(group);
        let mut members = Vec::new();
        for device in self.group_devices(group)? {
            let driver = driver_at(&dir.join(&device))?;
            if matches!(driver.as_deref(), Some(d) if d != VFIO_PCI && d != "pci-stub") {
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
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A fake `/sys` in a fresh temporary directory, removed on drop.
    struct FakeSysfs {
        root: PathBuf,
    }

    impl FakeSysfs {
        fn new() -> Self {
            let root = std::env::temp_dir().join(format!(
                "uvfio-sysfs-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            for drv in ["e1000", "vfio-pci", "pcieport"] {
                fs::create_dir_all(root.join("bus/pci/drivers").join(drv)).unwrap();
                fs::write(root.join("bus/pci/drivers").join(drv).join("unbind"), "").unwrap();
            }
            fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
            fs::create_dir_all(root.join("devices/pci0000:00")).unwrap();
            fs::write(root.join("bus/pci/drivers_probe"), "").unwrap();
            FakeSysfs { root }
        }

        /// Adds a function the way sysfs lays it out: its directory under `devices/`, the
        /// `bus/pci/devices` link, its `iommu_group` link and the group's link back.
        fn add(&self, addr: &str, group: u32, driver: Option<&str>, ids: (&str, &str)) {
            let dev = self.root.join("devices/pci0000:00").join(addr);
            fs::create_dir_all(&dev).unwrap();
            fs::write(dev.join("vendor"), format!("{}\n", ids.0)).unwrap();
            fs::write(dev.join("device"), format!("{}\n", ids.1)).unwrap();
            fs::write(dev.join("driver_override"), "(null)\n").unwrap();
            symlink(
                format!("../../../devices/pci0000:00/{addr}"),
                self.root.join("bus/pci/devices").join(addr),
            )
            .unwrap();
            let group_dir = self
                .root
                .join(format!("kernel/iommu_groups/{group}/devices"));
            fs::create_dir_all(&group_dir).unwrap();
            symlink(
                format!("../../../kernel/iommu_groups/{group}"),
                dev.join("iommu_group"),
            )
            .unwrap();
            symlink(
                format!("../../../../devices/pci0000:00/{addr}"),
                group_dir.join(addr),
            )
            .unwrap();
            set_driver(&self.root, addr, driver);
        }

        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.root.join(rel)).unwrap()
        }

        fn sysfs(&self) -> Sysfs {
            Sysfs::with_root(&self.root)
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn set_driver(root: &Path, addr: &str, driver: Option<&str>) {
        let link = root.join("devices/pci0000:00").join(addr).join("driver");
        let _ = fs::remove_file(&link);
        if let Some(d) = driver {
            symlink(format!("../../../bus/pci/drivers/{d}"), link).unwrap();
        }
    }

    type Log = Arc<Mutex<Vec<(String, String)>>>;

    /// A sysfs handle whose writes are logged (path relative to the root, value) and answered
    /// the way the kernel would: `unbind` removes the `driver` link, `drivers_probe` binds an
    /// unbound device to its `driver_override` if set, else to `native`.
    fn simulated(fake: &FakeSysfs, native: &'static str) -> (Sysfs, Log) {
        let log: Log = Arc::default();
        let root = fake.root.clone();
        let seen = Arc::clone(&log);
        let mut sysfs = fake.sysfs();
        sysfs.on_write = Some(Arc::new(move |path: &Path, value: &str| {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            seen.lock().unwrap().push((rel.clone(), value.to_owned()));
            let dev = root.join("devices/pci0000:00").join(value);
            if rel.ends_with("/unbind") {
                set_driver(&root, value, None);
            } else if rel == "bus/pci/drivers_probe" && !dev.join("driver").exists() {
                let ov = fs::read_to_string(dev.join("driver_override")).unwrap();
                let ov = ov.trim_end();
                let target = if ov.is_empty() || ov == "(null)" {
                    native
                } else {
                    ov
                };
                set_driver(&root, value, Some(target));
            }
        }));
        (sysfs, log)
    }

    fn take(log: &Log) -> Vec<(String, String)> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    fn w(path: &str, value: &str) -> (String, String) {
        (path.to_owned(), value.to_owned())
    }

    const ADDR: &str = "0000:00:03.0";

    fn addr() -> PciAddress {
        ADDR.parse().unwrap()
    }

    fn sysfs_parts(e: &Error) -> (&'static str, &Path, Errno) {
        match e {
            Error::Sysfs { op, path, errno } => (op, path, *errno),
            other => panic!("not a sysfs error: {other:?}"),
        }
    }

    #[test]
    fn default_root_is_sys() {
        assert_eq!(Sysfs::new().root(), Path::new("/sys"));
        assert_eq!(
            Sysfs::default().device_dir(&addr()),
            Path::new("/sys/bus/pci/devices/0000:00:03.0")
        );
    }

    #[test]
    fn reads_group_driver_and_ids() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let sysfs = fake.sysfs();
        assert_eq!(sysfs.iommu_group(&addr()).unwrap(), 7);
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
        assert_eq!(sysfs.vendor_device(&addr()).unwrap(), (0x8086, 0x100e));
        set_driver(&fake.root, ADDR, None);
        assert_eq!(sysfs.driver(&addr()).unwrap(), None);
    }

    #[test]
    fn missing_things_are_errors_that_name_the_path() {
        let fake = FakeSysfs::new();
        let sysfs = fake.sysfs();
        let absent: PciAddress = "0000:00:09.0".parse().unwrap();
        let dev = fake.root.join("bus/pci/devices/0000:00:09.0");

        let e = sysfs.iommu_group(&absent).unwrap_err();
        assert_eq!(
            sysfs_parts(&e),
            ("resolving", &*dev.join("iommu_group"), Errno::ENOENT)
        );
        assert!(e.to_string().contains("0000:00:09.0/iommu_group"), "{e}");

        let e = sysfs.driver(&absent).unwrap_err();
        assert_eq!(sysfs_parts(&e), ("resolving", &*dev, Errno::ENOENT));

        let e = sysfs.vendor_device(&absent).unwrap_err();
        assert_eq!(
            sysfs_parts(&e),
            ("reading", &*dev.join("vendor"), Errno::ENOENT)
        );

        let e = sysfs.group_devices(42).unwrap_err();
        let dir = fake.root.join("kernel/iommu_groups/42/devices");
        assert_eq!(sysfs_parts(&e), ("listing", &*dir, Errno::ENOENT));
        assert!(sysfs.non_vfio_members(42).is_err());
    }

    #[test]
    fn unparsable_files_are_eproto() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, None, ("8086", "0x100e"));
        let dev = fake.root.join("devices/pci0000:00").join(ADDR);
        let sysfs = fake.sysfs();
        let e = sysfs.vendor_device(&addr()).unwrap_err();
        assert_eq!(sysfs_parts(&e).0, "parsing");
        assert_eq!(sysfs_parts(&e).2, Errno::EPROTO);
        assert!(sysfs_parts(&e).1.ends_with("vendor"));
        for bad in ["0x", "0x12345", "0x+123", "0xzz"] {
            fs::write(dev.join("vendor"), bad).unwrap();
            assert!(sysfs.vendor_device(&addr()).is_err(), "{bad}");
        }
        fs::write(dev.join("vendor"), "0xABcd").unwrap();
        assert_eq!(sysfs.vendor_device(&addr()).unwrap(), (0xabcd, 0x100e));

        fs::remove_file(dev.join("iommu_group")).unwrap();
        symlink("../../../kernel/iommu_groups/+7", dev.join("iommu_group")).unwrap();
        let e = sysfs.iommu_group(&addr()).unwrap_err();
        assert_eq!(sysfs_parts(&e).0, "parsing");
        assert!(sysfs_parts(&e).1.ends_with("iommu_group"));
    }

    #[test]
    fn lists_group_members_and_those_not_on_vfio_pci() {
        let fake = FakeSysfs::new();
        fake.add("0000:00:1c.0", 7, Some("pcieport"), ("0x8086", "0xa110"));
        fake.add("0000:01:00.1", 7, None, ("0x10de", "0x10f0"));
        fake.add("0000:01:00.0", 7, Some("vfio-pci"), ("0x10de", "0x1b80"));
        fake.add("0000:01:00.2", 7, Some("pci-stub"), ("0x10de", "0x10f1"));
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        fake.add("0000:00:04.0", 8, Some("e1000"), ("0x8086", "0x100e"));
        let sysfs = fake.sysfs();
        assert_eq!(
            sysfs.group_devices(7).unwrap(),
            [
                "0000:00:03.0",
                "0000:00:1c.0",
                "0000:01:00.0",
                "0000:01:00.1",
                "0000:01:00.2"
            ]
        );
        let member = |device: &str, driver: Option<&str>| GroupMember {
            device: device.into(),
            driver: driver.map(Into::into),
        };
        assert_eq!(
            sysfs.non_vfio_members(7).unwrap(),
            [
                member("0000:00:03.0", Some("e1000")),
                member("0000:00:1c.0", Some("pcieport")),
            ]
        );
        let e = Error::GroupNotViable {
            group: 7,
            members: sysfs.non_vfio_members(7).unwrap(),
            errno: Errno::EPERM,
        };
        assert!(
            e.to_string().contains("0000:00:1c.0 (bound to pcieport)"),
            "{e}"
        );
    }

    #[test]
    fn bind_and_drop_write_the_right_files_in_order() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        let dev = "bus/pci/devices/0000:00:03.0";

        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        assert_eq!(
            take(&log),
            [
                w(&format!("{dev}/driver_override"), "vfio-pci"),
                w("bus/pci/drivers/e1000/unbind", ADDR),
                w("bus/pci/drivers_probe", ADDR),
            ]
        );
        assert_eq!(fake.read(&format!("{dev}/driver_override")), "vfio-pci");
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
        assert_eq!(binding.previous_driver(), Some("e1000"));
        assert_eq!(binding.address(), addr());
        assert!(binding.restores());

        drop(binding);
        assert_eq!(
            take(&log),
            [
                w("bus/pci/drivers/vfio-pci/unbind", ADDR),
                w(&format!("{dev}/driver_override"), "e1000"),
                w("bus/pci/drivers_probe", ADDR),
                w(&format!("{dev}/driver_override"), "\n"),
            ]
        );
        assert_eq!(fake.read(&format!("{dev}/driver_override")), "\n");
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
    }

    #[test]
    fn a_device_moved_off_vfio_pci_goes_back_to_vfio_pci() {
        // As the NIC benchmark does: a device the harness bound to vfio-pci (override set) is
        // lent to its kernel driver, then given back. Re-probing with the override cleared would
        // hand it to e1000 (its native driver); the restore pins vfio-pci and puts the override
        // back as it was.
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("vfio-pci"), ("0x8086", "0x100e"));
        let dev = "bus/pci/devices/0000:00:03.0";
        fs::write(fake.root.join(dev).join("driver_override"), "vfio-pci\n").unwrap();
        let (sysfs, log) = simulated(&fake, "e1000");

        let binding = sysfs.bind_driver(&addr(), "e1000").unwrap();
        assert_eq!(binding.driver(), "e1000");
        assert_eq!(binding.previous_driver(), Some("vfio-pci"));
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
        take(&log);
        binding.release().unwrap();
        assert_eq!(
            take(&log),
            [
                w("bus/pci/drivers/e1000/unbind", ADDR),
                w(&format!("{dev}/driver_override"), "vfio-pci"),
                w("bus/pci/drivers_probe", ADDR),
                w(&format!("{dev}/driver_override"), "vfio-pci"),
            ]
        );
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
        assert_eq!(fake.read(&format!("{dev}/driver_override")), "vfio-pci");
    }

    #[test]
    fn a_vfio_pci_binding_whose_group_is_open_is_not_unbound() {
        // The kernel's unbind of vfio-pci waits for every VFIO fd of the device to close: with
        // the group open, release must refuse without writing `unbind`, not hang.
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        let nodes = fake.root.join("dev/vfio");
        fs::create_dir_all(&nodes).unwrap();

        // A group node that opens: nobody holds the group; the restore goes ahead.
        fs::write(nodes.join("7"), "").unwrap();
        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        take(&log);
        binding.release().unwrap();
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));

        // A node that cannot be opened (a directory here; EBUSY on a real, open group):
        // nothing is written, the device stays on vfio-pci, and the error says why.
        fs::remove_file(nodes.join("7")).unwrap();
        fs::create_dir(nodes.join("noiommu-7")).unwrap();
        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        take(&log);
        let e = binding.release().unwrap_err();
        let (op, path, errno) = sysfs_parts(&e);
        assert!(op.starts_with("unbinding"), "{e}");
        assert_eq!((path, errno), (&*nodes.join("noiommu-7"), Errno::EISDIR));
        assert!(take(&log).is_empty(), "nothing written");
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
    }

    #[test]
    fn release_restores_once_and_reports_errors() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");

        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        take(&log);
        binding.release().unwrap();
        assert_eq!(take(&log).len(), 4);
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));

        // A failing step is reported, and the others still run.
        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        take(&log);
        let unbind = fake.root.join("bus/pci/drivers/vfio-pci/unbind");
        fs::remove_file(&unbind).unwrap();
        let e = binding.release().unwrap_err();
        assert_eq!(sysfs_parts(&e), ("writing", &*unbind, Errno::ENOENT));
        let written: Vec<_> = take(&log).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            written,
            [
                "bus/pci/devices/0000:00:03.0/driver_override",
                "bus/pci/drivers_probe",
                "bus/pci/devices/0000:00:03.0/driver_override",
            ]
        );
    }

    #[test]
    fn already_bound_to_vfio_pci_writes_nothing() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("vfio-pci"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        assert!(!binding.restores());
        assert_eq!(binding.previous_driver(), Some("vfio-pci"));
        drop(binding);
        assert_eq!(take(&log), []);
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
    }

    #[test]
    fn a_device_without_a_driver_is_left_without_one() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, None, ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        let dev = "bus/pci/devices/0000:00:03.0";
        let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
        assert_eq!(
            take(&log),
            [
                w(&format!("{dev}/driver_override"), "vfio-pci"),
                w("bus/pci/drivers_probe", ADDR),
            ]
        );
        drop(binding);
        assert_eq!(
            take(&log),
            [
                w("bus/pci/drivers/vfio-pci/unbind", ADDR),
                w(&format!("{dev}/driver_override"), "\n"),
            ]
        );
        assert_eq!(sysfs.driver(&addr()).unwrap(), None);
    }

    #[test]
    fn keep_leaves_the_device_on_vfio_pci() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        sysfs.bind_vfio_pci(&addr()).unwrap().keep();
        assert_eq!(take(&log).len(), 3);
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
    }

    /// In a plain fake tree nothing moves the `driver` link, so vfio-pci never "takes" the
    /// device: binding must fail on the check, name `drivers_probe`, and undo its writes.
    #[test]
    fn a_probe_that_does_not_bind_vfio_pci_is_an_error_and_is_undone() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let sysfs = fake.sysfs();
        let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
        let probe = fake.root.join("bus/pci/drivers_probe");
        assert_eq!(sysfs_parts(&e).1, &*probe);
        assert_eq!(sysfs_parts(&e).2, Errno::ENODEV);
        assert!(
            e.to_string().contains("is the vfio-pci module loaded?"),
            "{e}"
        );
        assert_eq!(fake.read("bus/pci/drivers/e1000/unbind"), ADDR);
        assert_eq!(fake.read("bus/pci/drivers_probe"), ADDR);
        assert_eq!(
            fake.read("bus/pci/devices/0000:00:03.0/driver_override"),
            "\n"
        );
        assert_eq!(fake.read("bus/pci/drivers/vfio-pci/unbind"), "");
    }

    #[test]
    fn a_failed_write_stops_the_binding_and_names_the_file() {
        let fake = FakeSysfs::new();
        fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
        let (sysfs, log) = simulated(&fake, "e1000");
        let ov = fake
            .root
            .join("bus/pci/devices/0000:00:03.0/driver_override");
        fs::remove_file(&ov).unwrap();
        let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
        assert_eq!(sysfs_parts(&e), ("writing", &*ov, Errno::ENOENT));
        assert!(e.to_string().starts_with("writing "), "{e}");
        assert_eq!(take(&log), []);
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
        assert!(!ov.exists(), "writes must not create attributes");

        // Unbinding fails: the device is re-probed with its driver pinned, then the override is
        // cleared again.
        fs::write(&ov, "(null)\n").unwrap();
        let unbind = fake.root.join("bus/pci/drivers/e1000/unbind");
        fs::remove_file(&unbind).unwrap();
        let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
        assert_eq!(sysfs_parts(&e), ("writing", &*unbind, Errno::ENOENT));
        let dev = "bus/pci/devices/0000:00:03.0";
        assert_eq!(
            take(&log),
            [
                w(&format!("{dev}/driver_override"), "vfio-pci"),
                w(&format!("{dev}/driver_override"), "e1000"),
                w("bus/pci/drivers_probe", ADDR),
                w(&format!("{dev}/driver_override"), "\n"),
            ]
        );
        assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let path = Path::new("/sys/x");
        let e = sysfs_error("reading", path, &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(sysfs_parts(&e), ("reading", path, Errno::EACCES));
        let e = sysfs_error("reading", path, &io::Error::other("no errno"));
        assert_eq!(e.errno(), Errno::EIO);
    }
}
