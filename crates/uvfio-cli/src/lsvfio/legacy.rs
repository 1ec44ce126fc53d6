//! The legacy view: the container, the groups, and the devices opened through them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use uvfio::device::feature::{Feature, FeatureAccess};
use uvfio::device::{DeviceInfo, IrqInfo, RegionCap, RegionInfo};
use uvfio::iommu::{IommuCap, IommuInfo};
use uvfio::pci::discover::{Filter, PciFunction};
use uvfio::pci::sysfs::Sysfs;
use uvfio::pci::PciAddress;
use uvfio::{Container, Extension, Group};

use super::{json_str, names, pgsizes, size};

/// Everything the legacy view learned, ready to print.
pub(crate) struct Report {
    api_version: i32,
    extensions: Vec<Extension>,
    iommu: Option<String>,
    iommu_info: Option<Result<IommuInfo, String>>,
    groups: Vec<GroupReport>,
}

struct GroupReport {
    id: u32,
    viable: bool,
    /// The group could not join because it is not viable (an error, but not the listing's failure).
    not_viable: bool,
    error: Option<String>,
    devices: Vec<DeviceReport>,
}

struct DeviceReport {
    name: String,
    /// What sysfs says about it (`None` if it could not be read).
    function: Option<PciFunction>,
    result: Result<(DeviceInfo, Vec<RegionInfo>, Vec<IrqInfo>, Features), String>,
}

impl Report {
    /// Whether anything failed. A non-viable group is a fact about the host, reported in the
    /// listing; anything else that failed is a failure.
    pub(crate) fn failed(&self) -> bool {
        self.groups.iter().any(|g| {
            (g.error.is_some() && !g.not_viable) || g.devices.iter().any(|d| d.result.is_err())
        })
    }
}

/// Opens every group of the devices (joined to one container) and every device, and reads what
/// they report. The groups and the container are closed when this returns.
pub(crate) fn run(addresses: Vec<PciAddress>, filter: &Filter) -> uvfio::Result<Report> {
    let sysfs = Sysfs::new();
    // The devices bound to vfio-pci (usable or in a group that is not viable), in address order.
    let addresses = if addresses.is_empty() {
        sysfs
            .pci_functions()?
            .into_iter()
            .filter(|f| f.on_vfio_pci() && filter.matches(f))
            .map(|f| f.address)
            .collect()
    } else {
        addresses
    };
    let mut by_group: BTreeMap<u32, Vec<PciAddress>> = BTreeMap::new();
    for a in addresses {
        by_group.entry(sysfs.iommu_group(&a)?).or_default().push(a);
    }

    let container = Container::new()?;
    let extensions = container.extensions()?;
    let mut report = Report {
        api_version: container.api_version()?,
        extensions: extensions.iter().collect(),
        iommu: None,
        iommu_info: None,
        groups: Vec::new(),
    };

    // Groups must stay open until every device is listed: keep them here.
    let mut open_groups = Vec::new();
    for (&id, members) in &by_group {
        let mut g = GroupReport {
            id,
            viable: false,
            not_viable: false,
            error: None,
            devices: Vec::new(),
        };
        let joined = Group::open(id).and_then(|group| {
            g.viable = group.is_viable()?;
            group.set_container(&container)?;
            if container.iommu().is_none() {
                // With a group in it, the container offers only the models that group can use
                // (a no-IOMMU group: only no-IOMMU).
                let offered = container.extensions()?;
                if let Some(t) = offered.preferred_iommu() {
                    container.set_iommu(t)?;
                } else if offered.contains(Extension::NoIommu) {
                    set_noiommu(&container)?;
                }
            }
            Ok(group)
        });
        match joined {
            Ok(group) => {
                for a in members {
                    let name = a.to_string();
                    let result = group
                        .open_device(&name)
                        .and_then(|d| {
                            Ok((d.info().clone(), d.regions()?, d.irqs()?, d.features()?))
                        })
                        .map_err(|e| e.to_string());
                    let function = sysfs.pci_function(a).ok();
                    g.devices.push(DeviceReport {
                        name,
                        function,
                        result,
                    });
                }
                open_groups.push(group);
            }
            Err(e) => {
                g.not_viable = matches!(e, uvfio::Error::GroupNotViable { .. });
                g.error = Some(e.to_string());
            }
        }
        report.groups.push(g);
    }
    if let Some(t) = container.iommu() {
        report.iommu = Some(format!("{t:?}"));
        if t.is_type1() {
            report.iommu_info = Some(container.iommu_info().map_err(|e| e.to_string()));
        }
    }
    Ok(report)
}

fn region_name(r: &RegionInfo) -> String {
    r.index
        .pci_name()
        .map_or_else(|| format!("#{}", r.index.0), str::to_string)
}

fn cap_text(c: &RegionCap) -> String {
    match c {
        RegionCap::SparseMmap(areas) => {
            let a: Vec<String> = areas
                .iter()
                .map(|a| format!("{:#x}+{}", a.offset, size(a.size)))
                .collect();
            format!("sparse[{}]", a.join(" "))
        }
        RegionCap::Type { ty, subtype } => format!("type {ty:#x}/{subtype:#x}"),
        RegionCap::MsixMappable => "msix-mappable".into(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn to_table(r: &Report) -> String {
    let mut o = String::new();
    let exts: Vec<&str> = r.extensions.iter().map(|e| e.name()).collect();
    let _ = writeln!(
        o,
        "VFIO API version {}; extensions: {}",
        r.api_version,
        exts.join(" ")
    );
    if let Some(t) = &r.iommu {
        let _ = writeln!(o, "IOMMU: {t}");
    }
    match &r.iommu_info {
        Some(Ok(info)) => {
            if let Some(p) = info.iova_pgsizes {
                let _ = writeln!(o, "  page sizes: {}", pgsizes(p));
            }
            for cap in &info.caps {
                match cap {
                    IommuCap::IovaRanges(ranges) => {
                        for range in ranges {
                            let _ = writeln!(
                                o,
                                "  IOVA range: {:#018x}-{:#018x}",
                                range.start, range.end
                            );
                        }
                    }
                    IommuCap::DmaAvail(n) => {
                        let _ = writeln!(o, "  DMA mappings available: {n}");
                    }
                    IommuCap::Migration {
                        pgsize_bitmap,
                        max_dirty_bitmap_size,
                        ..
                    } => {
                        let _ = writeln!(
                            o,
                            "  dirty tracking: page sizes {}, bitmap up to {}",
                            pgsizes(*pgsize_bitmap),
                            size(*max_dirty_bitmap_size)
                        );
                    }
                    other => {
                        let _ = writeln!(o, "  {other:?}");
                    }
                }
            }
        }
        Some(Err(e)) => {
            let _ = writeln!(o, "  IOMMU info: error: {e}");
        }
        None => {}
    }
    if r.groups.is_empty() {
        let _ = writeln!(o, "no device is bound to vfio-pci");
    }
    for g in &r.groups {
        let _ = writeln!(
            o,
            "\ngroup {} ({})",
            g.id,
            if g.viable { "viable" } else { "not viable" }
        );
        if let Some(e) = &g.error {
            let _ = writeln!(o, "  error: {e}");
        }
        for d in &g.devices {
            match &d.result {
                Err(e) => {
                    let _ = writeln!(o, "  {}: error: {e}", d.name);
                }
                Ok((info, regions, irqs, features)) => {
                    if let Some(f) = &d.function {
                        let _ = writeln!(
                            o,
                            "  {}  {:04x}:{:04x} class {:06x} subsystem {:04x}:{:04x}{}",
                            d.name,
                            f.vendor,
                            f.device,
                            f.class,
                            f.subsystem_vendor,
                            f.subsystem_device,
                            f.cdev
                                .as_ref()
                                .map_or(String::new(), |c| format!("  cdev {}", c.display()))
                        );
                    }
                    let _ = writeln!(
                        o,
                        "  {}  flags {}  regions {}  irq indexes {}",
                        d.name,
                        names(info.flags.iter_names()),
                        info.num_regions,
                        info.num_irqs
                    );
                    let _ = writeln!(
                        o,
                        "    {:<7} {:>8} {:>14}  {:<16} caps",
                        "region", "size", "offset", "flags"
                    );
                    for rg in regions.iter().filter(|rg| rg.size > 0) {
                        let caps: Vec<String> = rg.caps.iter().map(cap_text).collect();
                        let _ = writeln!(
                            o,
                            "    {:<7} {:>8} {:>#14x}  {:<16} {}",
                            region_name(rg),
                            size(rg.size),
                            rg.offset,
                            region_flags(rg),
                            caps.join(" ")
                        );
                    }
                    let _ = writeln!(o, "    {:<7} {:>8}  flags", "irq", "count");
                    for irq in irqs {
                        let name = irq
                            .index
                            .pci_name()
                            .map_or_else(|| format!("#{}", irq.index.0), str::to_string);
                        let _ = writeln!(
                            o,
                            "    {:<7} {:>8}  {}",
                            name,
                            irq.count,
                            names(irq.flags.iter_names())
                        );
                    }
                    let _ = writeln!(
                        o,
                        "    features (VFIO_DEVICE_FEATURE_PROBE): {}",
                        feature_text(features)
                    );
                }
            }
        }
    }
    o
}

/// The features a device answers `VFIO_DEVICE_FEATURE_PROBE` for, with their access.
type Features = Vec<(Feature, FeatureAccess)>;

fn feature_text(features: &Features) -> String {
    if features.is_empty() {
        return "none".into();
    }
    features
        .iter()
        .map(|(f, a)| {
            let name = f.name().map_or_else(|| format!("#{}", f.0), str::to_string);
            format!("{name}({})", names(a.iter_names()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn region_flags(r: &RegionInfo) -> String {
    use uvfio::device::RegionFlags as F;
    [(F::READ, "read"), (F::WRITE, "write"), (F::MMAP, "mmap")]
        .iter()
        .filter(|(f, _)| r.flags.contains(*f))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// The report as a JSON object, with `modern` (a JSON value) as its last field, `"modern"`.
pub(crate) fn to_json(r: &Report, modern: &str) -> String {
    let exts: Vec<String> = r.extensions.iter().map(|e| json_str(e.name())).collect();
    let iommu_info = match &r.iommu_info {
        None => "null".to_string(),
        Some(Err(e)) => format!("{{\"error\":{}}}", json_str(e)),
        Some(Ok(info)) => {
            let ranges: Vec<String> = info
                .iova_ranges()
                .unwrap_or(&[])
                .iter()
                .map(|x| format!("{{\"start\":{},\"end\":{}}}", x.start, x.end))
                .collect();
            format!(
                "{{\"iova_pgsizes\":{},\"iova_ranges\":[{}],\"dma_avail\":{}}}",
                info.iova_pgsizes.map_or("null".into(), |p| p.to_string()),
                ranges.join(","),
                info.dma_avail().map_or("null".into(), |n| n.to_string())
            )
        }
    };
    let groups: Vec<String> = r
        .groups
        .iter()
        .map(|g| {
            let devices: Vec<String> = g
                .devices
                .iter()
                .map(|d| match &d.result {
                    Err(e) => format!("{{\"name\":{},\"error\":{}}}", json_str(&d.name), json_str(e)),
                    Ok((info, regions, irqs, features)) => {
                        let regions: Vec<String> = regions
                            .iter()
                            .map(|rg| {
                                let caps: Vec<String> = rg.caps.iter().map(|c| json_str(&cap_text(c))).collect();
                                format!(
                                    "{{\"index\":{},\"name\":{},\"size\":{},\"offset\":{},\"flags\":{},\"mmap_areas\":[{}],\"caps\":[{}]}}",
                                    rg.index.0,
                                    json_str(&region_name(rg)),
                                    rg.size,
                                    rg.offset,
                                    rg.flags.bits(),
                                    rg.mmap_areas()
                                        .iter()
                                        .map(|(o, s)| format!("[{o},{s}]"))
                                        .collect::<Vec<_>>()
                                        .join(","),
                                    caps.join(",")
                                )
                            })
                            .collect();
                        let irqs: Vec<String> = irqs
                            .iter()
                            .map(|i| format!("{{\"index\":{},\"count\":{},\"flags\":{}}}", i.index.0, i.count, i.flags.bits()))
                            .collect();
                        let ids = d.function.as_ref().map_or("null".into(), |f| {
                            format!(
                                "{{\"vendor\":{},\"device\":{},\"subsystem_vendor\":{},\"subsystem_device\":{},\"class\":{},\"cdev\":{}}}",
                                f.vendor,
                                f.device,
                                f.subsystem_vendor,
                                f.subsystem_device,
                                f.class,
                                f.cdev.as_ref().map_or("null".into(), |c| json_str(&c.to_string_lossy()))
                            )
                        });
                        format!(
                            "{{\"name\":{},\"pci\":{},\"flags\":{},\"num_regions\":{},\"num_irqs\":{},\"regions\":[{}],\"irqs\":[{}],\"features\":[{}]}}",
                            json_str(&d.name),
                            ids,
                            info.flags.bits(),
                            info.num_regions,
                            info.num_irqs,
                            regions.join(","),
                            irqs.join(","),
                            features
                                .iter()
                                .map(|(f, a)| format!(
                                    "{{\"id\":{},\"name\":{},\"access\":{}}}",
                                    f.0,
                                    f.name().map_or("null".into(), json_str),
                                    json_str(&names(a.iter_names()))
                                ))
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    }
                })
                .collect();
            format!(
                "{{\"group\":{},\"viable\":{},\"error\":{},\"devices\":[{}]}}",
                g.id,
                g.viable,
                g.error.as_deref().map_or("null".into(), json_str),
                devices.join(",")
            )
        })
        .collect();
    format!(
        "{{\"api_version\":{},\"extensions\":[{}],\"iommu\":{},\"iommu_info\":{},\"groups\":[{}],\"modern\":{}}}",
        r.api_version,
        exts.join(","),
        r.iommu.as_deref().map_or("null".into(), json_str),
        iommu_info,
        groups.join(","),
        modern
    )
}

/// A host in VFIO's no-IOMMU mode offers no other model; the listing needs one to open devices.
#[allow(unsafe_code)]
fn set_noiommu(container: &Container) -> uvfio::Result<()> {
    // SAFETY: the listing only reads what devices report (info, regions, IRQs, config space): it
    // never enables bus mastering nor gives a device an address, so no DMA can happen.
    unsafe { container.set_iommu_unchecked(uvfio::IommuType::NoIommu) }
}
