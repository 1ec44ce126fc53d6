//! Why a PCI function can or cannot be used through VFIO: [`Host::diagnose`] runs every check
//! a user would otherwise do by hand, each with a verdict, what it found, and the fix.
//!
//! | check | passes when |
//! |---|---|
//! | `device` | the function exists, is not a bridge (vfio-pci takes only type 0 headers) and not the boot GPU |
//! | `iommu` | an IOMMU is on (`/sys/class/iommu/*`); a no-IOMMU group warns |
//! | `interrupt-remapping` | `/proc/interrupts` shows remapped (`IR-`) interrupts, else it warns |
//! | `iommu-group` | the function has an IOMMU group |
//! | `viability` | no member of the group is on a driver other than vfio-pci, pci-stub, pcieport |
//! | `driver` | the function is bound to vfio-pci |
//! | `group-node` | `/dev/vfio/N` (and `/dev/vfio/vfio`) exist and this user may read and write them |
//! | `memlock` | `RLIMIT_MEMLOCK` covers [`DiagnoseOptions::pin_bytes`], or the process has `CAP_IPC_LOCK` |
//! | `dma-entries` | `vfio_iommu_type1.dma_entry_limit` covers the pinned bytes in 4 KiB mappings |
//! | `iommufd` | `/dev/iommu` and the function's cdev exist (else skipped: the legacy path remains) |
//! | `noiommu` | the group is a real one; a no-IOMMU group needs `CAP_SYS_RAWIO` and taints the kernel |
//! | `reset` | the function has a reset method (`reset_method`) |
//! | `isolation` | the function is alone in its group (no other function shares its DMA isolation) |
//! | `open` ([`Host::open_check`]) | the device opens through VFIO, in the best mode the host has |
//!
//! The function can be used when no check fails ([`Diagnosis::usable`]); warnings are facts
//! worth knowing (no interrupt remapping, no reset, a shared group).

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::unistd::{access, AccessFlags};

use super::Host;
use crate::error::GroupMember;
use crate::pci::discover::PciFunction;
use crate::pci::sysfs::read_attr;
use crate::pci::PciAddress;
use crate::{DmaSpace, IommuMode};

/// `CAP_IPC_LOCK`: pinned memory is not limited by `RLIMIT_MEMLOCK`.
const CAP_IPC_LOCK: u32 = 14;
/// `CAP_SYS_RAWIO`: needed to open a no-IOMMU group.
const CAP_SYS_RAWIO: u32 = 17;
/// The page size type1 maps at worst, one DMA entry each.
const PAGE: u64 = 4096;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Not in the way, but worth knowing.
    Warn,
    /// Keeps the device from being used.
    Fail,
    /// Does not apply (or could not be checked because an earlier check failed).
    Skip,
}

impl Verdict {
    /// `pass`, `warn`, `FAIL` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of a [`Diagnosis`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// Its name (`iommu`, `driver`, ...: the table of the [module docs](self)).
    pub name: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about a warning or failure, when there is something to do.
    pub fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check that was not run, and why (for a caller that adds checks of its own, like the
    /// `open` check it skips when another failed).
    pub fn skip(name: &'static str, why: impl Into<String>) -> Check {
        Check::new(name, Verdict::Skip, why)
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Every check on one PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The function.
    pub address: PciAddress,
    /// What sysfs says about it, when it exists.
    pub function: Option<PciFunction>,
    /// The checks, in the order of the module docs' table.
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// Whether no check failed.
    pub fn usable(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// What [`Host::diagnose`] checks against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiagnoseOptions {
    /// How many bytes of memory the driver will pin for DMA (default 64 MiB).
    pub pin_bytes: u64,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            pin_bytes: 64 << 20,
        }
    }
}

impl DiagnoseOptions {
    /// Checks against `pin_bytes` of pinned memory.
    pub fn pin_bytes(mut self, pin_bytes: u64) -> Self {
        self.pin_bytes = pin_bytes;
        self
    }
}

/// Whether a class code is a PCI-to-PCI, CardBus or RACEway bridge (a type 1 or 2 header:
/// vfio-pci refuses them).
pub(crate) fn is_bridge_class(class: u32) -> bool {
    matches!(class >> 8, 0x0604 | 0x0607 | 0x0609)
}

/// Bytes, the way a human reads them: `64 MiB`, `8 KiB`, `100 bytes`.
pub fn human_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn members(list: &[GroupMember]) -> String {
    list.iter()
        .map(|m| {
            format!(
                "{} (on {})",
                m.device,
                m.driver.as_deref().unwrap_or("no driver")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Host {
    /// Runs every check of the [module docs](self) but `open` on the function at `addr`. Reads
    /// only (sysfs, `/dev`, `/proc`); needs no privileges. Checks that depend on an earlier one
    /// that failed are skipped, saying so.
    pub fn diagnose(&self, addr: &PciAddress, opts: &DiagnoseOptions) -> Diagnosis {
        let mut checks = Vec::new();
        let function = match self.sysfs.pci_function(addr) {
            Ok(f) => f,
            Err(e) => {
                checks.push(
                    Check::new(
                        "device",
                        Verdict::Fail,
                        format!("no such PCI function: {e}"),
                    )
                    .fix("check the address with `uvfio ls` (or lspci -D)"),
                );
                return Diagnosis {
                    address: *addr,
                    function: None,
                    checks,
                };
            }
        };
        let f = &function;
        checks.push(self.device_check(f));
        checks.push(self.iommu_check(f));
        checks.push(self.irq_remapping_check(f));
        checks.push(match f.iommu_group {
            Some(g) => Check::new(
                "iommu-group",
                Verdict::Pass,
                format!("{}group {g}", if f.noiommu { "no-IOMMU " } else { "" }),
            ),
            None => Check::new(
                "iommu-group",
                Verdict::Fail,
                "the function has no IOMMU group",
            )
            .fix("turn the IOMMU on (see the iommu check)"),
        });
        checks.push(match f.iommu_group {
            None => Check::new("viability", Verdict::Skip, "no IOMMU group"),
            Some(g) if f.blockers.is_empty() => Check::new(
                "viability",
                Verdict::Pass,
                format!("group {g} is viable (no member on a host driver)"),
            ),
            Some(g) => Check::new(
                "viability",
                Verdict::Fail,
                format!(
                    "group {g} is not viable: {} on a host driver",
                    members(&f.blockers)
                ),
            )
            .fix(format!(
                "uvfio bind --group {addr} (moves every device of the group to vfio-pci)"
            )),
        });
        checks.push(match f.driver.as_deref() {
            Some("vfio-pci") => Check::new("driver", Verdict::Pass, "bound to vfio-pci"),
            Some(d) => Check::new(
                "driver",
                Verdict::Fail,
                format!("bound to the host driver {d}, not vfio-pci"),
            )
            .fix(format!("uvfio bind {addr}")),
            None => Check::new("driver", Verdict::Fail, "bound to no driver")
                .fix(format!("uvfio bind {addr}")),
        });
        checks.push(self.node_check(f));
        let caps = self.effective_caps();
        checks.push(self.memlock_check(opts, caps));
        checks.push(self.dma_entries_check(opts));
        checks.push(self.iommufd_check(f));
        checks.push(self.noiommu_check(f, caps));
        checks.push(self.reset_check(f));
        checks.push(self.isolation_check(f));
        Diagnosis {
            address: *addr,
            function: Some(function),
            checks,
        }
    }

    fn device_check(&self, f: &PciFunction) -> Check {
        let what = format!("{:04x}:{:04x} class {:06x}", f.vendor, f.device, f.class);
        if f.is_bridge() {
            return Check::new(
                "device",
                Verdict::Fail,
                format!("{what}: a PCI bridge, which vfio-pci does not take (type 1 header)"),
            )
            .fix("use the devices behind the bridge instead");
        }
        let boot_vga = self.sysfs.device_dir(&f.address).join("boot_vga");
        if read_attr(&boot_vga).is_ok_and(|v| v == "1") {
            return Check::new(
                "device",
                Verdict::Fail,
                format!("{what}: the boot GPU (boot_vga), whose console the host uses"),
            )
            .fix("use another GPU, or boot with the console elsewhere (video=efifb:off)");
        }
        Check::new("device", Verdict::Pass, what)
    }

    fn iommu_check(&self, f: &PciFunction) -> Check {
        let units: Vec<String> = fs::read_dir(self.sys_path("class/iommu"))
            .map(|d| {
                let mut v: Vec<String> = d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with("iommufd_selftest"))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        if f.noiommu {
            return Check::new(
                "iommu",
                Verdict::Warn,
                "no IOMMU: the device is in VFIO's no-IOMMU mode (no DMA isolation)",
            )
            .fix("turn an IOMMU on (intel_iommu=on or amd_iommu=on) for isolation");
        }
        if units.is_empty() {
            return Check::new(
                "iommu",
                Verdict::Fail,
                "no IOMMU is on (/sys/class/iommu is empty)",
            )
            .fix(
                "turn the IOMMU on in the firmware (VT-d / AMD-Vi) and on the kernel command \
                     line (intel_iommu=on or amd_iommu=on)",
            );
        }
        Check::new("iommu", Verdict::Pass, format!("on: {}", units.join(", ")))
    }

    fn irq_remapping_check(&self, f: &PciFunction) -> Check {
        const NAME: &str = "interrupt-remapping";
        if f.noiommu || f.iommu_group.is_none() {
            return Check::new(NAME, Verdict::Skip, "no IOMMU");
        }
        let interrupts = fs::read_to_string(self.proc_root.join("interrupts")).unwrap_or_default();
        if interrupts.contains(" IR-") {
            return Check::new(
                NAME,
                Verdict::Pass,
                "on (remapped interrupts in /proc/interrupts)",
            );
        }
        let unsafe_param =
            self.sys_path("module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
        let allowed = read_attr(&unsafe_param).is_ok_and(|v| v == "Y");
        Check::new(
            NAME,
            Verdict::Warn,
            if allowed {
                "not seen in /proc/interrupts; vfio_iommu_type1.allow_unsafe_interrupts=1 lets \
                 VFIO go on without it (a device could inject interrupts)"
            } else {
                "not seen in /proc/interrupts: without it, VFIO refuses to attach the group"
            },
        )
        .fix("intremap=on (or the firmware's interrupt remapping); as a last resort vfio_iommu_type1.allow_unsafe_interrupts=1")
    }

    fn node_check(&self, f: &PciFunction) -> Check {
        const NAME: &str = "group-node";
        let (Some(group), true) = (f.iommu_group, f.on_vfio_pci()) else {
            return Check::new(
                NAME,
                Verdict::Skip,
                "the function is not on vfio-pci in a group",
            );
        };
        let node_name = if f.noiommu {
            format!("noiommu-{group}")
        } else {
            group.to_string()
        };
        let vfio = self.dev.join("vfio");
        let mut problems = Vec::new();
        let mut found = Vec::new();
        for node in [vfio.join(&node_name), vfio.join("vfio")] {
            match fs::metadata(&node) {
                Err(e) => problems.push(format!("{}: {e}", node.display())),
                Ok(m) => {
                    let desc = format!(
                        "{} (uid {}, gid {}, mode {:o})",
                        node.display(),
                        m.uid(),
                        m.gid(),
                        m.mode() & 0o7777
                    );
                    if access(&node, AccessFlags::R_OK | AccessFlags::W_OK).is_err() {
                        problems.push(format!(
                            "{desc}: this user (uid {}) may not open it",
                            nix::unistd::getuid()
                        ));
                    } else {
                        found.push(desc);
                    }
                }
            }
        }
        if problems.is_empty() {
            Check::new(
                NAME,
                Verdict::Pass,
                format!("{} read-write", found.join(", ")),
            )
        } else {
            Check::new(NAME, Verdict::Fail, problems.join("; ")).fix(format!(
                "run as root, or give the user the node: chown $USER {} (for good: a udev rule \
                 SUBSYSTEM==\"vfio\", OWNER=\"<user>\")",
                vfio.join(&node_name).display()
            ))
        }
    }

    /// The effective capabilities of this process (`CapEff` of `<proc>/self/status`), 0 when
    /// unreadable.
    fn effective_caps(&self) -> u64 {
        fs::read_to_string(self.proc_root.join("self/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0)
    }

    /// The soft `RLIMIT_MEMLOCK` of this process from `<proc>/self/limits`: `Some(None)` when
    /// unlimited, `None` when unreadable.
    fn memlock_limit(&self) -> Option<Option<u64>> {
        let limits = fs::read_to_string(self.proc_root.join("self/limits")).ok()?;
        let line = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max locked memory"))?;
        let soft = line.split_whitespace().next()?;
        if soft == "unlimited" {
            Some(None)
        } else {
            soft.parse().ok().map(Some)
        }
    }

    fn memlock_check(&self, opts: &DiagnoseOptions, caps: u64) -> Check {
        const NAME: &str = "memlock";
        let want = human_bytes(opts.pin_bytes);
        if caps & (1 << CAP_IPC_LOCK) != 0 {
            return Check::new(
                NAME,
                Verdict::Pass,
                format!("CAP_IPC_LOCK: pinning {want} is not limited by RLIMIT_MEMLOCK"),
            );
        }
        match self.memlock_limit() {
            Some(None) => Check::new(NAME, Verdict::Pass, "RLIMIT_MEMLOCK is unlimited"),
            Some(Some(limit)) if limit >= opts.pin_bytes => Check::new(
                NAME,
                Verdict::Pass,
                format!("RLIMIT_MEMLOCK {} covers {want}", human_bytes(limit)),
            ),
            Some(Some(limit)) => Check::new(
                NAME,
                Verdict::Fail,
                format!(
                    "RLIMIT_MEMLOCK is {}, less than the {want} a driver will pin (DMA mappings \
                     fail with ENOMEM)",
                    human_bytes(limit)
                ),
            )
            .fix(format!(
                "raise it: ulimit -l {} (for good: \"<user> - memlock {}\" in \
                 /etc/security/limits.conf, or LimitMEMLOCK= for a service); or --pin less",
                opts.pin_bytes.div_ceil(1024),
                opts.pin_bytes.div_ceil(1024)
            )),
            None => Check::new(NAME, Verdict::Warn, "cannot read /proc/self/limits"),
        }
    }

    fn dma_entries_check(&self, opts: &DiagnoseOptions) -> Check {
        const NAME: &str = "dma-entries";
        let param = self.sys_path("module/vfio_iommu_type1/parameters/dma_entry_limit");
        let Some(limit) = read_attr(&param).ok().and_then(|v| v.parse::<u64>().ok()) else {
            return Check::new(
                NAME,
                Verdict::Skip,
                "vfio_iommu_type1 is not loaded (no limit)",
            );
        };
        let worst = opts.pin_bytes.div_ceil(PAGE);
        if limit >= worst {
            Check::new(
                NAME,
                Verdict::Pass,
                format!(
                    "dma_entry_limit {limit} covers {} in 4 KiB mappings ({worst})",
                    human_bytes(opts.pin_bytes)
                ),
            )
        } else {
            Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "dma_entry_limit {limit} is below {worst}, the 4 KiB mappings of {}: map in \
                     larger pieces or the type1 container runs out (ENOSPC)",
                    human_bytes(opts.pin_bytes)
                ),
            )
            .fix(format!(
                "vfio_iommu_type1.dma_entry_limit={worst} (module parameter)"
            ))
        }
    }

    fn iommufd_check(&self, f: &PciFunction) -> Check {
        const NAME: &str = "iommufd";
        let iommu = self.dev.join("iommu");
        if !iommu.exists() {
            return Check::new(
                NAME,
                Verdict::Skip,
                "no /dev/iommu (kernel without CONFIG_IOMMUFD): the legacy container is used",
            );
        }
        let cdev = f
            .cdev
            .as_ref()
            .and_then(|c| c.file_name())
            .map(|n| self.dev.join("vfio/devices").join(n));
        match cdev {
            None => Check::new(
                NAME,
                Verdict::Skip,
                "/dev/iommu exists, but the function has no cdev (not on vfio-pci, or no \
                 CONFIG_VFIO_DEVICE_CDEV): the group is used",
            ),
            Some(c) if access(&c, AccessFlags::R_OK | AccessFlags::W_OK).is_ok() => Check::new(
                NAME,
                Verdict::Pass,
                format!("/dev/iommu and the cdev {} are usable", c.display()),
            ),
            Some(c) => Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "this user may not open {} (the group is used instead)",
                    c.display()
                ),
            )
            .fix(format!("chown $USER {} {}", c.display(), iommu.display())),
        }
    }

    fn noiommu_check(&self, f: &PciFunction, caps: u64) -> Check {
        const NAME: &str = "noiommu";
        if !f.noiommu {
            return Check::new(NAME, Verdict::Pass, "not in no-IOMMU mode");
        }
        let tainted = read_attr(&self.proc_root.join("sys/kernel/tainted"))
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|t| t & (1 << 6) != 0);
        let taint = if tainted {
            "the kernel is already tainted (TAINT_USER)"
        } else {
            "no-IOMMU mode taints the kernel (TAINT_USER)"
        };
        if caps & (1 << CAP_SYS_RAWIO) == 0 {
            return Check::new(
                NAME,
                Verdict::Fail,
                format!("a no-IOMMU group needs CAP_SYS_RAWIO, which this process lacks; {taint}"),
            )
            .fix("run as root (no-IOMMU mode gives a device all of memory)");
        }
        Check::new(
            NAME,
            Verdict::Warn,
            format!("no-IOMMU group: the device can DMA anywhere in memory; {taint}"),
        )
        .fix("turn an IOMMU on for isolation")
    }

    fn reset_check(&self, f: &PciFunction) -> Check {
        const NAME: &str = "reset";
        let dir = self.sysfs.device_dir(&f.address);
        match read_attr(&dir.join("reset_method")) {
            Ok(m) if !m.is_empty() => {
                Check::new(NAME, Verdict::Pass, format!("reset methods: {m}"))
            }
            Ok(_) => Check::new(
                NAME,
                Verdict::Warn,
                "no reset method: the device keeps its state between users",
            ),
            Err(_) if dir.join("reset").exists() => {
                Check::new(NAME, Verdict::Pass, "resettable (sysfs reset)")
            }
            Err(_) => Check::new(
                NAME,
                Verdict::Warn,
                "no reset method: the device keeps its state between users",
            ),
        }
    }

    fn isolation_check(&self, f: &PciFunction) -> Check {
        const NAME: &str = "isolation";
        let Some(group) = f.iommu_group else {
            return Check::new(NAME, Verdict::Skip, "no IOMMU group");
        };
        let me = f.address.to_string();
        let others: Vec<String> = self
            .sysfs
            .group_devices(group)
            .unwrap_or_default()
            .into_iter()
            .filter(|d| *d != me)
            .filter(|d| {
                let class = read_attr(&self.sys_path("bus/pci/devices").join(d).join("class"))
                    .ok()
                    .and_then(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).ok());
                !class.is_some_and(is_bridge_class)
            })
            .collect();
        if others.is_empty() {
            Check::new(NAME, Verdict::Pass, format!("alone in group {group}"))
        } else {
            Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "shares group {group} with {} (no ACS isolation between them): they go to one \
                     process together",
                    others.join(", ")
                ),
            )
            .fix("uvfio bind --group; or another slot (behind a port with ACS)")
        }
    }

    /// The `open` check: opens the function through VFIO on the running host (the library's
    /// paths under `/dev`), in the best mode it has for this user ([`IommuMode::best_available`]
    /// when this user may open `/dev/iommu` and the cdev, else `vfio_type1v2_iommu`; no-IOMMU for
    /// a no-IOMMU group), and closes it again. Reports the number of DMA mappings the container
    /// still allows (`DMA_AVAIL`) against `opts`.
    pub fn open_check(&self, diagnosis: &Diagnosis, opts: &DiagnoseOptions) -> Check {
        const NAME: &str = "open";
        let Some(f) = &diagnosis.function else {
            return Check::new(NAME, Verdict::Skip, "no such function");
        };
        // iommufd when this user may open /dev/iommu and the cdev, else the container.
        let iommufd_usable = f
            .cdev
            .as_ref()
            .and_then(|c| c.file_name())
            .is_some_and(|n| {
                [
                    self.dev.join("iommu"),
                    self.dev.join("vfio/devices").join(n),
                ]
                .iter()
                .all(|p| access(p, AccessFlags::R_OK | AccessFlags::W_OK).is_ok())
            });
        let mode = if f.noiommu {
            IommuMode::NoIommu
        } else if iommufd_usable {
            IommuMode::best_available()
        } else {
            IommuMode::VfioType1v2
        };
        if f.noiommu {
            // Not through `DmaSpace::open_noiommu`, whose unsafe contract is about DMA: the device
            // is opened and closed again, with no memory mapped for it and bus mastering left
            // as it is, so nothing here gives it an address.
            let group = f.iommu_group.unwrap_or_default();
            let opened = crate::Container::new().and_then(|c| {
                c.open_in_group_noiommu(group, &f.address.to_string())
                    .map(drop)
            });
            return match opened {
                Ok(()) => Check::new(NAME, Verdict::Pass, format!("opened through VFIO ({mode})")),
                Err(e) => Check::new(
                    NAME,
                    Verdict::Fail,
                    format!("opening it failed ({mode}): {e}"),
                )
                .fix("see the failed checks above"),
            };
        }
        let result = DmaSpace::open(mode).and_then(|space| {
            space.open_pci_device(&f.address)?;
            let avail = match space.container() {
                Some(c) => c.iommu_info().ok().and_then(|i| i.dma_avail()),
                None => None,
            };
            Ok(avail)
        });
        match result {
            Ok(avail) => {
                let mut check =
                    Check::new(NAME, Verdict::Pass, format!("opened through VFIO ({mode})"));
                if let Some(avail) = avail {
                    let worst = opts.pin_bytes.div_ceil(PAGE);
                    check.detail += &format!("; DMA_AVAIL {avail} mappings");
                    if u64::from(avail) < worst {
                        check.verdict = Verdict::Warn;
                        check.detail += &format!(
                            ", fewer than the {worst} 4 KiB mappings of {}",
                            human_bytes(opts.pin_bytes)
                        );
                        check.fix = Some(format!("vfio_iommu_type1.dma_entry_limit={worst}"));
                    }
                }
                check
            }
            Err(e) => Check::new(
                NAME,
                Verdict::Fail,
                format!("opening it failed ({mode}): {e}"),
            )
            .fix("see the failed checks above"),
        }
    }
}
