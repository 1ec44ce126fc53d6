//! The modern view: `/dev/iommu`, the device cdevs, and each device bound to an iommufd.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use uvfio::iommufd::{HwInfo, Ioas, IoasRanges, Iommufd, IOMMUFD_PATH};
use uvfio::pci::discover::{Filter, PciFunction};
use uvfio::pci::sysfs::Sysfs;
use uvfio::pci::PciAddress;
use uvfio::uapi::iommufd as uapi;
use uvfio::{Device, ErrorKind};

use super::{json_opt_str, json_str, size};

/// Where the kernel lists the device cdevs.
const VFIO_DEV_CLASS: &str = "/sys/class/vfio-dev";
/// Where their nodes are.
const VFIO_DEVICES: &str = "/dev/vfio/devices";

/// Which cdevs to show: the legacy view's selection.
pub(crate) struct Selection {
    /// The PCI addresses given on the command line (all functions on vfio-pci when empty).
    pub(crate) addresses: Vec<PciAddress>,
    /// `-d`, when no address is given.
    pub(crate) filter: Filter,
    /// A filter or addresses were given: show PCI functions only (no mediated devices).
    pub(crate) only_pci: bool,
}

/// Everything the modern view learned, ready to print.
pub(crate) struct Report {
    /// `None` when there is no `/dev/iommu`, else whether it opened.
    iommufd: Option<Result<(), String>>,
    /// Listing the cdevs failed.
    error: Option<String>,
    cdevs: Vec<CdevReport>,
}

struct CdevReport {
    /// `vfioN` (or `noiommu-vfioN`).
    name: String,
    /// `/dev/vfio/devices/<name>`.
    path: PathBuf,
    behind: Result<Behind, String>,
    /// Binding it fails because of a fact about the host (its group is not viable, or it is a
    /// no-IOMMU device), not the listing's failure.
    expected_failure: Option<&'static str>,
    /// What binding it to the iommufd gave (`None` without an iommufd).
    bound: Option<Result<Bound, String>>,
}

/// The device behind a cdev.
enum Behind {
    Pci(PciAddress, Option<PciFunction>),
    Mdev {
        uuid: String,
        parent: String,
        ty: Option<String>,
    },
    /// Another bus: its sysfs directory.
    Other(PathBuf),
}

struct Bound {
    dev_id: u32,
    /// The IOAS, the HWPT the device is attached through, and the IOAS's ranges then.
    attached: Result<(u32, u32, IoasRanges), String>,
    /// `Ok(None)`: the device has no IOMMU of its own (a mediated device), or its IOMMU reports
    /// nothing.
    hw_info: Result<Option<HwInfo>, String>,
}

impl Report {
    /// Whether anything failed, facts about the host aside.
    pub(crate) fn failed(&self) -> bool {
        matches!(self.iommufd, Some(Err(_)))
            || self.error.is_some()
            || self.cdevs.iter().any(|c| {
                c.behind.is_err()
                    || match &c.bound {
                        Some(Err(_)) => c.expected_failure.is_none(),
                        Some(Ok(b)) => b.attached.is_err() || b.hw_info.is_err(),
                        None => false,
                    }
            })
    }
}

/// Opens `/dev/iommu`, lists the cdevs, and binds each selected one to the iommufd (each
/// attached to an IOAS of its own). The devices are closed when this returns.
pub(crate) fn run(selection: &Selection) -> Report {
    let iommufd = if fs::symlink_metadata(IOMMUFD_PATH).is_ok() {
        Some(Iommufd::new().map_err(|e| e.to_string()))
    } else {
        None
    };
    let mut report = Report {
        iommufd: iommufd
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(Clone::clone)),
        error: None,
        cdevs: Vec::new(),
    };
    let names = match cdev_names() {
        Ok(names) => names,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let sysfs = Sysfs::new();
    // Every device stays bound (and attached to its IOAS) until the listing is done, so that
    // each gets ids of its own.
    let mut open = Vec::new();
    // The devices of an IOMMU group share its domain: each group gets one IOAS.
    let mut group_ioas = BTreeMap::new();
    for name in names {
        let behind = behind(&sysfs, &name);
        if !selection.selects(&behind) {
            continue;
        }
        let expected_failure = if name.starts_with("noiommu-") {
            Some("a no-IOMMU device")
        } else {
            match &behind {
                Ok(Behind::Pci(_, Some(f))) if !f.group_viable() => Some("its group is not viable"),
                _ => None,
            }
        };
        let path = Path::new(VFIO_DEVICES).join(&name);
        let bound = match &iommufd {
            Some(Ok(iommufd)) => Some(match bind(iommufd, &path, &behind, &mut group_ioas) {
                Ok((bound, device)) => {
                    open.push(device);
                    Ok(bound)
                }
                // The kernel's refusal is the fact; the crate's hint on it would not fit.
                Err(e) if expected_failure.is_some() => {
                    Err(format!("the kernel refuses to bind it ({})", e.errno()))
                }
                Err(e) => Err(e.to_string()),
            }),
            _ => None,
        };
        report.cdevs.push(CdevReport {
            name,
            path,
            behind,
            expected_failure,
            bound,
        });
    }
    report
}

impl Selection {
    fn selects(&self, behind: &Result<Behind, String>) -> bool {
        if !self.only_pci {
            return true;
        }
        match behind {
            Ok(Behind::Pci(a, f)) => {
                if self.addresses.is_empty() {
                    f.as_ref().is_some_and(|f| self.filter.matches(f))
                } else {
                    self.addresses.contains(a)
                }
            }
            _ => false,
        }
    }
}

/// The cdev entries of `/sys/class/vfio-dev` (those with a `dev` attribute: Linux 6.1 to 6.5
/// list the devices there without a cdev), in number order.
fn cdev_names() -> Result<Vec<String>, String> {
    let entries = match fs::read_dir(VFIO_DEV_CLASS) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {VFIO_DEV_CLASS}: {e}")),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("listing {VFIO_DEV_CLASS}: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("dev").exists() {
            names.push(name);
        }
    }
    names.sort_by_key(|n| {
        let digits = n.trim_start_matches(|c: char| !c.is_ascii_digit());
        (digits.parse::<u64>().unwrap_or(u64::MAX), n.clone())
    });
    Ok(names)
}

/// The device behind `/sys/class/vfio-dev/<name>`, from its `device` link.
fn behind(sysfs: &Sysfs, name: &str) -> Result<Behind, String> {
    let link = Path::new(VFIO_DEV_CLASS).join(name).join("device");
    let dir = fs::canonicalize(&link).map_err(|e| format!("reading {}: {e}", link.display()))?;
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let subsystem = fs::read_link(dir.join("subsystem"))
        .ok()
        .and_then(|p| file_name(&p));
    match subsystem.as_deref() {
        Some("pci") => {
            let address: PciAddress = file_name(&dir)
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            let function = sysfs.pci_function(&address).ok();
            Ok(Behind::Pci(address, function))
        }
        Some("mdev") => Ok(Behind::Mdev {
            uuid: file_name(&dir).unwrap_or_default(),
            parent: dir.parent().and_then(file_name).unwrap_or_default(),
            ty: fs::read_link(dir.join("mdev_type"))
                .ok()
                .and_then(|p| file_name(&p)),
        }),
        _ => Ok(Behind::Other(dir)),
    }
}

/// Opens the cdev through `iommufd` (binding it), attaches it to a new IOAS, and reads the
/// IOAS's ranges and the IOMMU's hw info. Only the open (with the bind) fails the whole.
/// A PCI device whose group has an IOAS in `group_ioas` already is attached to that one (the
/// kernel refuses two domains in one group).
fn bind(
    iommufd: &Iommufd,
    path: &Path,
    behind: &Result<Behind, String>,
    group_ioas: &mut BTreeMap<u32, Ioas>,
) -> uvfio::Result<(Bound, Device)> {
    let device = match behind {
        Ok(Behind::Pci(address, _)) => iommufd.open_pci_device(address),
        _ => iommufd.open_cdev(path),
    }?;
    // Always `Some` for a device opened through its cdev.
    let dev_id = device.iommufd().map_or(0, |(_, id)| id);
    let group = match behind {
        Ok(Behind::Pci(_, Some(f))) => f.iommu_group,
        _ => None,
    };
    let shared = group.and_then(|g| group_ioas.get(&g)).cloned();
    let attached = shared
        .map_or_else(|| iommufd.alloc_ioas(), Ok)
        .and_then(|ioas| {
            let hwpt = device.attach(&ioas)?;
            let ranges = ioas.iova_ranges()?;
            if let Some(g) = group {
                group_ioas.entry(g).or_insert_with(|| ioas.clone());
            }
            Ok((ioas.id(), hwpt, ranges))
        })
        .map_err(|e| e.to_string());
    let mediated = matches!(behind, Ok(Behind::Mdev { .. }));
    let hw_info = match iommufd.hw_info(&device) {
        Ok(info) => Ok(Some(info)),
        // A mediated device has no IOMMU of its own; some IOMMUs report nothing.
        Err(e) if mediated && e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(None),
        Err(e) => Err(e.to_string()),
    };
    Ok((
        Bound {
            dev_id,
            attached,
            hw_info,
        },
        device,
    ))
}

/// `IOMMU_HW_CAP_*` names.
fn hw_caps(bits: u64) -> String {
    let known = [
        (uapi::IOMMU_HW_CAP_DIRTY_TRACKING, "dirty-tracking"),
        (uapi::IOMMU_HW_CAP_PCI_PASID_EXEC, "pasid-exec"),
        (uapi::IOMMU_HW_CAP_PCI_PASID_PRIV, "pasid-priv"),
    ];
    let mut names: Vec<String> = known
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| (*n).to_string())
        .collect();
    let rest = known.iter().fold(bits, |r, (b, _)| r & !b);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The address widths and some features of VT-d's `CAP_REG` and `ECAP_REG` (VT-d spec,
/// section 11.4.2 and 11.4.3).
fn vtd_decode(cap: u64, ecap: u64) -> String {
    let mgaw = ((cap >> 16) & 0x3f) + 1;
    let sagaw = (cap >> 8) & 0x1f;
    let levels: Vec<&str> = [(1, "3"), (2, "4"), (3, "5")]
        .iter()
        .filter(|(b, _)| sagaw & (1 << b) != 0)
        .map(|(_, l)| *l)
        .collect();
    let features: Vec<&str> = [
        (cap, 39, "psi"),
        (cap, 56, "fl1gp"),
        (cap, 59, "pi"),
        (ecap, 1, "qi"),
        (ecap, 3, "ir"),
        (ecap, 6, "pt"),
        (ecap, 7, "sc"),
        (ecap, 26, "nest"),
        (ecap, 29, "prs"),
        (ecap, 40, "pasid"),
        (ecap, 43, "smts"),
        (ecap, 45, "slads"),
        (ecap, 46, "slts"),
        (ecap, 47, "flts"),
    ]
    .iter()
    .filter(|(reg, bit, _)| reg & (1 << bit) != 0)
    .map(|(_, _, n)| *n)
    .collect();
    format!(
        "MGAW {mgaw} bits, SAGAW {}-level; {}",
        levels.join(","),
        features.join(",")
    )
}

/// `IOMMU_HW_INFO_VTD_*` flags, with a leading space when any.
fn vtd_flags(flags: u32) -> String {
    let erratum = uapi::IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17;
    let mut o = String::new();
    if flags & erratum != 0 {
        o.push_str(" erratum-772415");
    }
    if flags & !erratum != 0 {
        let _ = write!(o, " flags {:#x}", flags & !erratum);
    }
    o
}

fn behind_text(c: &CdevReport) -> String {
    match &c.behind {
        Err(e) => format!("error: {e}"),
        Ok(Behind::Pci(a, Some(f))) => format!(
            "{a}  {:04x}:{:04x} class {:06x} ({})",
            f.vendor,
            f.device,
            f.class,
            f.driver.as_deref().unwrap_or("no driver")
        ),
        Ok(Behind::Pci(a, None)) => a.to_string(),
        Ok(Behind::Mdev { uuid, parent, ty }) => format!(
            "mdev {uuid} ({} on {parent})",
            ty.as_deref().unwrap_or("unknown type")
        ),
        Ok(Behind::Other(dir)) => dir.display().to_string(),
    }
}

pub(crate) fn to_table(r: &Report) -> String {
    let mut o = String::new();
    let n = r.cdevs.len();
    let cdevs = if n == 0 {
        "no device cdevs".to_string()
    } else {
        format!("{n} device cdev{}", if n == 1 { "" } else { "s" })
    };
    let _ = match &r.iommufd {
        None if n == 0 && r.error.is_none() => writeln!(
            o,
            "iommufd: none: no {IOMMUFD_PATH} and no device cdevs (this kernel has only the \
             legacy container and groups)"
        ),
        None => writeln!(o, "iommufd: no {IOMMUFD_PATH}; {cdevs} (not bound)"),
        Some(Ok(())) => writeln!(o, "iommufd: {IOMMUFD_PATH} open; {cdevs}"),
        Some(Err(e)) => writeln!(
            o,
            "iommufd: {IOMMUFD_PATH}: error: {e}; {cdevs} (not bound)"
        ),
    };
    if let Some(e) = &r.error {
        let _ = writeln!(o, "  error: {e}");
    }
    for c in &r.cdevs {
        let _ = writeln!(o, "{}  {}", c.name, behind_text(c));
        let b = match &c.bound {
            None => continue,
            Some(Err(e)) => {
                let _ = match c.expected_failure {
                    Some(why) => writeln!(o, "  not bound ({why}): {e}"),
                    None => writeln!(o, "  error: {e}"),
                };
                continue;
            }
            Some(Ok(b)) => b,
        };
        match &b.attached {
            Ok((ioas, hwpt, ranges)) => {
                let _ = writeln!(
                    o,
                    "  bound: device id {}, IOAS {ioas} via HWPT {hwpt}",
                    b.dev_id
                );
                let list: Vec<String> = ranges
                    .ranges
                    .iter()
                    .map(|x| format!("{:#018x}-{:#018x}", x.start, x.end))
                    .collect();
                let _ = writeln!(
                    o,
                    "  IOVA ranges (alignment {}): {}",
                    size(ranges.alignment),
                    list.join(" ")
                );
            }
            Err(e) => {
                let _ = writeln!(o, "  bound: device id {}; attach: error: {e}", b.dev_id);
            }
        }
        let _ = match &b.hw_info {
            Ok(Some(HwInfo::IntelVtd {
                cap,
                ecap,
                flags,
                capabilities,
            })) => writeln!(
                o,
                "  IOMMU: Intel VT-d cap {cap:#018x} ecap {ecap:#018x}{} ({})\n    \
                 capabilities: {}",
                vtd_flags(*flags),
                vtd_decode(*cap, *ecap),
                hw_caps(*capabilities)
            ),
            Ok(Some(HwInfo::Other {
                data_type,
                capabilities,
            })) => writeln!(
                o,
                "  IOMMU: hw info type {data_type}; capabilities: {}",
                hw_caps(*capabilities)
            ),
            Ok(Some(other)) => writeln!(o, "  IOMMU: {other:?}"),
            Ok(None) if matches!(c.behind, Ok(Behind::Mdev { .. })) => {
                writeln!(o, "  IOMMU: none of its own (a mediated device)")
            }
            Ok(None) => writeln!(o, "  IOMMU: reports no hw info"),
            Err(e) => writeln!(o, "  IOMMU hw info: error: {e}"),
        };
    }
    o
}

fn hw_info_json(h: &Result<Option<HwInfo>, String>) -> String {
    match h {
        Err(e) => format!("{{\"error\":{}}}", json_str(e)),
        Ok(None) => "null".into(),
        Ok(Some(HwInfo::IntelVtd {
            cap,
            ecap,
            flags,
            capabilities,
        })) => format!(
            "{{\"type\":\"intel-vtd\",\"cap\":{cap},\"ecap\":{ecap},\"flags\":{flags},\"capabilities\":{capabilities}}}"
        ),
        Ok(Some(HwInfo::Other {
            data_type,
            capabilities,
        })) => format!("{{\"type\":{data_type},\"capabilities\":{capabilities}}}"),
        Ok(Some(other)) => format!("{{\"type\":{}}}", json_str(&format!("{other:?}"))),
    }
}

fn cdev_json(c: &CdevReport) -> String {
    let behind = match &c.behind {
        Err(e) => format!("{{\"error\":{}}}", json_str(e)),
        Ok(Behind::Pci(a, f)) => format!(
            "{{\"pci\":{},\"vendor\":{},\"device\":{},\"class\":{}}}",
            json_str(&a.to_string()),
            f.as_ref().map_or("null".into(), |f| f.vendor.to_string()),
            f.as_ref().map_or("null".into(), |f| f.device.to_string()),
            f.as_ref().map_or("null".into(), |f| f.class.to_string()),
        ),
        Ok(Behind::Mdev { uuid, parent, ty }) => format!(
            "{{\"mdev\":{},\"parent\":{},\"type\":{}}}",
            json_str(uuid),
            json_str(parent),
            json_opt_str(ty.as_deref())
        ),
        Ok(Behind::Other(dir)) => format!("{{\"sysfs\":{}}}", json_str(&dir.to_string_lossy())),
    };
    let bound = match &c.bound {
        None => "null".into(),
        Some(Err(e)) => format!(
            "{{\"error\":{},\"expected\":{}}}",
            json_str(e),
            json_opt_str(c.expected_failure)
        ),
        Some(Ok(b)) => {
            let attached = match &b.attached {
                Err(e) => format!("{{\"error\":{}}}", json_str(e)),
                Ok((ioas, hwpt, ranges)) => format!(
                    "{{\"ioas\":{ioas},\"hwpt\":{hwpt},\"alignment\":{},\"iova_ranges\":[{}]}}",
                    ranges.alignment,
                    ranges
                        .ranges
                        .iter()
                        .map(|x| format!("{{\"start\":{},\"end\":{}}}", x.start, x.end))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            format!(
                "{{\"device_id\":{},\"attached\":{attached},\"hw_info\":{}}}",
                b.dev_id,
                hw_info_json(&b.hw_info)
            )
        }
    };
    format!(
        "{{\"name\":{},\"cdev\":{},\"device\":{behind},\"bound\":{bound}}}",
        json_str(&c.name),
        json_str(&c.path.to_string_lossy())
    )
}

pub(crate) fn to_json(r: &Report) -> String {
    let iommufd = match &r.iommufd {
        None => "null".into(),
        Some(Ok(())) => "\"open\"".into(),
        Some(Err(e)) => format!("{{\"error\":{}}}", json_str(e)),
    };
    let cdevs: Vec<String> = r.cdevs.iter().map(cdev_json).collect();
    format!(
        "{{\"iommufd\":{iommufd},\"error\":{},\"cdevs\":[{}]}}",
        json_opt_str(r.error.as_deref()),
        cdevs.join(",")
    )
}
