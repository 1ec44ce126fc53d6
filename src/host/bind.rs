//! Moving PCI functions to `vfio-pci` and back, across processes: [`Host::plan_bind`] says
//! what binding a function (or its whole IOMMU group) would do, or refuses with the reason;
//! [`Host::bind`] does it and records each function's previous driver in a [`BindState`] file;
//! [`Host::restore`] gives a recorded function back to exactly that driver, later, from any
//! process. (Within one process, [`Sysfs::bind_vfio_pci`](crate::pci::sysfs::Sysfs::bind_vfio_pci)'s
//! RAII binding is simpler.)
//!
//! # The state file
//!
//! Text, one line per function moved to vfio-pci, three fields separated by tabs (driver names
//! may hold spaces: `i6300ESB timer`), written atomically (a temporary file renamed over it)
//! after every change; lines starting with `#` are comments (`\t` below is a tab):
//!
//! ```text
//! # uvfio bindings: <address> TAB <driver before, - for none> TAB <driver_override before, - for none>
//! 0000:00:02.0\te1000\t-
//! 0000:02:01.0\t-\t-
//! ```
//!
//! Its default place is [`BindState::DEFAULT_PATH`] (`/run/uvfio/bindings`: binding needs root,
//! and the drivers a boot had are gone at the next boot with `/run`).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::diagnose::is_bridge_class;
use super::Host;
use crate::error::{Errno, Error, Object, Result};
use crate::pci::sysfs::{read_attr, VfioBinding};
use crate::pci::PciAddress;

const VFIO_PCI: &str = "vfio-pci";

/// One function of a [`BindPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindStep {
    /// The function.
    pub address: PciAddress,
    /// Its driver now.
    pub driver: Option<String>,
}

impl BindStep {
    /// Whether it is on vfio-pci already (binding it changes nothing).
    pub fn already_bound(&self) -> bool {
        self.driver.as_deref() == Some(VFIO_PCI)
    }
}

/// What [`Host::bind`] would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BindPlan {
    /// The functions to move to vfio-pci, in address order.
    pub steps: Vec<BindStep>,
    /// Members of the group left as they are, with the reason (bridges, devices of other
    /// buses).
    pub left: Vec<(String, String)>,
    /// What the user should know: a group that stays not viable without `--group`.
    pub warnings: Vec<String>,
}

/// A function recorded in a [`BindState`]: what it had before it went to vfio-pci.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SavedBinding {
    /// The function.
    pub address: PciAddress,
    /// Its driver before, `None` for none.
    pub driver: Option<String>,
    /// Its `driver_override` before, `None` for unset.
    pub driver_override: Option<String>,
}

/// The file of [`SavedBinding`]s ([module docs](self) for its format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindState {
    path: PathBuf,
    entries: Vec<SavedBinding>,
}

fn refuse(addr: &PciAddress, op: &'static str, reason: String, errno: Errno) -> Error {
    Error::InvalidArgument {
        op,
        object: Object::PciDevice(addr.to_string()).into(),
        reason: reason.into(),
        errno,
    }
}

fn state_error(path: &Path, line: usize, what: &str) -> Error {
    Error::BadFile {
        path: path.into(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        reason: format!(
            "{what} (a binding state line is <address> TAB <driver|-> TAB <driver_override|->)"
        )
        .into(),
        errno: Errno::EINVAL,
    }
}

impl BindState {
    /// Where `uvfio` keeps its bindings unless told otherwise.
    pub const DEFAULT_PATH: &'static str = "/run/uvfio/bindings";

    /// Reads the state at `path`; a missing file is an empty state.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file exists but cannot be read; [`Error::BadFile`] naming the line
    /// when it is not in the format of the [module docs](self).
    pub fn load(path: impl Into<PathBuf>) -> Result<BindState> {
        let path = path.into();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(open_error(&path, &e)),
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [addr, driver, over] = fields[..] else {
                return Err(state_error(&path, i + 1, "not three tab-separated fields"));
            };
            if driver.is_empty() || over.is_empty() {
                return Err(state_error(&path, i + 1, "an empty field"));
            }
            let address = addr
                .trim()
                .parse()
                .map_err(|_| state_error(&path, i + 1, "not a PCI address"))?;
            let opt = |w: &str| (w != "-").then(|| w.to_string());
            entries.push(SavedBinding {
                address,
                driver: opt(driver),
                driver_override: opt(over),
            });
        }
        Ok(BindState { path, entries })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded functions, in the order they were bound.
    pub fn entries(&self) -> &[SavedBinding] {
        &self.entries
    }

    /// The record of `addr`.
    pub fn get(&self, addr: &PciAddress) -> Option<&SavedBinding> {
        self.entries.iter().find(|e| e.address == *addr)
    }

    fn remove(&mut self, addr: &PciAddress) {
        self.entries.retain(|e| e.address != *addr);
    }

    /// Writes the state (creating its directory), or removes the file when it is empty.
    fn save(&self) -> Result<()> {
        if self.entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(open_error(&self.path, &e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| open_error(dir, &e))?;
        }
        let mut text = String::from(
            "# uvfio bindings: <address> TAB <driver before, - for none> TAB <driver_override before, - for none>\n",
        );
        for e in &self.entries {
            let d = e.driver.as_deref().unwrap_or("-");
            let o = e.driver_override.as_deref().unwrap_or("-");
            text += &format!("{}\t{d}\t{o}\n", e.address);
        }
        let tmp = self.path.with_extension("tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| open_error(&self.path, &e))
    }
}

fn open_error(path: &Path, e: &io::Error) -> Error {
    Error::Open {
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

impl Host {
    /// Why the function at `addr` must not go to vfio-pci, if it must not: a bridge (vfio-pci
    /// refuses type 1 headers), the boot GPU (the host's console), a network interface that is
    /// up (in use by the host).
    fn bind_refusal(&self, addr: &PciAddress, class: u32) -> Option<Error> {
        if is_bridge_class(class) {
            return Some(refuse(
                addr,
                "bind",
                "it is a PCI bridge, which vfio-pci does not take (bind the devices behind it)"
                    .into(),
                Errno::EINVAL,
            ));
        }
        let dir = self.sysfs.device_dir(addr);
        if read_attr(&dir.join("boot_vga")).is_ok_and(|v| v == "1") {
            return Some(refuse(
                addr,
                "bind",
                "it is the boot GPU, whose console the host uses".into(),
                Errno::EBUSY,
            ));
        }
        for iface in fs::read_dir(dir.join("net"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let flags = read_attr(&iface.path().join("flags"))
                .ok()
                .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
            if flags.is_some_and(|f| f & 1 != 0) {
                return Some(refuse(
                    addr,
                    "bind",
                    format!(
                        "it is in use: its network interface {} is up (ip link set {0} down first)",
                        iface.file_name().to_string_lossy()
                    ),
                    Errno::EBUSY,
                ));
            }
        }
        None
    }

    /// What binding the function at `addr` to vfio-pci does; with `group`, every PCI function
    /// of its IOMMU group (bridges are left on their drivers: they do not keep a group from
    /// being viable). Reads only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the function and why when one must not be bound (a
    /// bridge, the boot GPU, a network interface that is up); [`Error::Sysfs`] when the
    /// function does not exist or sysfs cannot be read; with `group`, `ENOENT` when it has no
    /// IOMMU group.
    pub fn plan_bind(&self, addr: &PciAddress, group: bool) -> Result<BindPlan> {
        let f = self.sysfs.pci_function(addr)?;
        if let Some(e) = self.bind_refusal(addr, f.class) {
            return Err(e);
        }
        let mut plan = BindPlan::default();
        if !group {
            plan.steps.push(BindStep {
                address: *addr,
                driver: f.driver.clone(),
            });
            let others: Vec<_> = f
                .blockers
                .iter()
                .filter(|m| m.device != addr.to_string())
                .collect();
            if let (Some(g), false) = (f.iommu_group, others.is_empty()) {
                let list: Vec<String> = others
                    .iter()
                    .map(|m| format!("{} ({})", m.device, m.driver.as_deref().unwrap_or("-")))
                    .collect();
                plan.warnings.push(format!(
                    "group {g} stays not viable: {} on host drivers (bind with --group)",
                    list.join(", ")
                ));
            }
            return Ok(plan);
        }
        let g = self.sysfs.iommu_group(addr)?;
        for name in self.sysfs.group_devices(g)? {
            let Ok(member) = name.parse::<PciAddress>() else {
                plan.left.push((name, "not a PCI function".into()));
                continue;
            };
            let mf = self.sysfs.pci_function(&member)?;
            if is_bridge_class(mf.class) {
                let d = mf.driver.as_deref().unwrap_or("no driver");
                plan.left.push((
                    name,
                    format!("a bridge, left on {d} (it does not block the group)"),
                ));
                continue;
            }
            if let Some(e) = self.bind_refusal(&member, mf.class) {
                return Err(e);
            }
            plan.steps.push(BindStep {
                address: member,
                driver: mf.driver,
            });
        }
        Ok(plan)
    }

    /// Does `plan`: moves each of its functions to vfio-pci, recording its previous driver and
    /// `driver_override` in `state` first (the file is written before each move, so a failure
    /// half-way leaves every moved function restorable). A function already recorded keeps its
    /// older record (the driver it had before the first bind). **Needs root.**
    ///
    /// # Errors
    ///
    /// The first failure ([`Error::Sysfs`] of a write, `ENODEV` when vfio-pci did not take a
    /// function, [`Error::Open`] for the state file); the functions moved before it stay on
    /// vfio-pci, recorded.
    pub fn bind(&self, plan: &BindPlan, state: &mut BindState) -> Result<()> {
        for step in plan.steps.iter().filter(|s| !s.already_bound()) {
            let addr = step.address;
            if state.get(&addr).is_none() {
                let over = read_attr(&self.sysfs.device_dir(&addr).join("driver_override"))
                    .ok()
                    .filter(|v| !v.is_empty() && v != "(null)");
                state.entries.push(SavedBinding {
                    address: addr,
                    driver: self.sysfs.driver(&addr)?,
                    driver_override: over,
                });
                state.save()?;
            }
            self.sysfs.bind_vfio_pci(&addr)?.keep();
        }
        Ok(())
    }

    /// Gives a function recorded in `state` back: unbinds it from vfio-pci, lets exactly its
    /// previous driver take it (none if it had none), puts its `driver_override` back, checks
    /// the driver, and drops the record. **Needs root.**
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ENOENT`) when `addr` is not recorded; [`Error::Sysfs`] with
    /// `EBUSY` when a VFIO file descriptor of the device is open (in any process: the device is
    /// in use; it stays on vfio-pci, recorded), or another sysfs failure; `ENODEV` when the
    /// previous driver did not take it back.
    pub fn restore(&self, addr: &PciAddress, state: &mut BindState) -> Result<()> {
        let Some(saved) = state.get(addr).cloned() else {
            return Err(refuse(
                addr,
                "restore",
                format!("no binding of it is recorded in {}", state.path.display()),
                Errno::ENOENT,
            ));
        };
        let current = self.sysfs.driver(addr)?;
        if current.as_deref() == Some(VFIO_PCI) {
            VfioBinding::resume(
                &self.sysfs,
                *addr,
                VFIO_PCI,
                saved.driver.clone(),
                saved.driver_override.clone(),
            )
            .release()?;
        }
        let now = self.sysfs.driver(addr)?;
        if now != saved.driver {
            return Err(Error::Sysfs {
                op: "giving the device back to its driver (it is on another one now) through",
                path: self.sysfs.drivers_probe(),
                errno: Errno::ENODEV,
            });
        }
        state.remove(addr);
        state.save()
    }

    /// Unbinds a function that no [`BindState`] records from vfio-pci and lets the kernel pick
    /// its driver (clears `driver_override`, probes); returns the driver that took it, if any.
    /// **Needs root.**
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EINVAL`) when it is not on vfio-pci; [`Error::Sysfs`] as
    /// for [`Host::restore`].
    pub fn unbind_unrecorded(&self, addr: &PciAddress) -> Result<Option<String>> {
        if self.sysfs.driver(addr)?.as_deref() != Some(VFIO_PCI) {
            return Err(refuse(
                addr,
                "unbind",
                "it is not bound to vfio-pci".into(),
                Errno::EINVAL,
            ));
        }
        VfioBinding::resume(&self.sysfs, *addr, VFIO_PCI, None, None).release()?;
        self.sysfs
            .write_attr(&self.sysfs.drivers_probe(), &addr.to_string())?;
        self.sysfs.driver(addr)
    }
}
