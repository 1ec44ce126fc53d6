//! The subcommands: each a few library calls and their printing.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use uvfio::host::bind::{BindPlan, BindState};
use uvfio::host::diagnose::{human_bytes, Check, DiagnoseOptions, Verdict};
use uvfio::host::Host;
use uvfio::mdev::{Mdevs, Uuid};
use uvfio::pci::discover::{Filter, PciFunction};
use uvfio::pci::PciAddress;
use uvfio::Result;

/// `--state FILE`: where bindings are recorded.
#[derive(Debug, clap::Args)]
pub struct StateArg {
    /// The file recording the drivers devices had before `uvfio bind`.
    #[arg(long = "state", env = "UVFIO_STATE", default_value = BindState::DEFAULT_PATH)]
    path: PathBuf,
}

/// `64M`, `1G`, `4096`, `8K`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{s:?} is not a size (bytes, or a number with K, M or G)"))
}

fn dash(s: Option<&str>) -> &str {
    s.unwrap_or("-")
}

/// A short status of a function and its JSON key.
fn status(f: &PciFunction) -> (&'static str, String) {
    if f.is_bridge() {
        return ("bridge", "bridge (not for VFIO)".into());
    }
    let Some(_) = f.iommu_group else {
        return ("no-iommu-group", "no IOMMU group (IOMMU off?)".into());
    };
    if !f.blockers.is_empty() {
        let list: Vec<String> = f
            .blockers
            .iter()
            .map(|m| format!("{} on {}", m.device, dash(m.driver.as_deref())))
            .collect();
        return (
            "not-viable",
            format!("group not viable: {}", list.join(", ")),
        );
    }
    if !f.on_vfio_pci() {
        return ("bindable", "could be: uvfio bind".into());
    }
    if f.noiommu {
        ("usable", "usable (no-IOMMU)".into())
    } else {
        ("usable", "usable".into())
    }
}

fn path_json(p: Option<&PathBuf>) -> Value {
    p.map_or(Value::Null, |p| json!(p.display().to_string()))
}

pub fn ls(json_out: bool, filter: Option<Filter>, addresses: &[PciAddress]) -> Result<ExitCode> {
    let host = Host::new();
    let mut functions = host.sysfs().pci_functions()?;
    functions.retain(|f| {
        filter.is_none_or(|d| d.matches(f))
            && (addresses.is_empty() || addresses.contains(&f.address))
    });
    let mdevs = Mdevs::new();
    let parents = mdevs.parents()?;
    if json_out {
        let fs: Vec<Value> = functions
            .iter()
            .map(|f| {
                json!({
                    "address": f.address.to_string(),
                    "vendor": format!("{:04x}", f.vendor),
                    "device": format!("{:04x}", f.device),
                    "class": format!("{:06x}", f.class),
                    "driver": f.driver,
                    "iommu_group": f.iommu_group,
                    "noiommu": f.noiommu,
                    "viable": f.group_viable(),
                    "usable": f.is_vfio_usable(),
                    "status": status(f).0,
                    "blockers": f.blockers.iter().map(|m| json!({"device": m.device, "driver": m.driver})).collect::<Vec<_>>(),
                    "group_node": path_json(f.group_node.as_ref()),
                    "cdev": path_json(f.cdev.as_ref()),
                })
            })
            .collect();
        let ps: Vec<Value> = parents
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "types": p.types.iter().map(|t| json!({
                        "id": t.id,
                        "name": t.name,
                        "device_api": t.device_api,
                        "available_instances": t.available_instances,
                        "instances": t.instances.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let out = json!({ "functions": fs, "mdev_parents": ps });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<13} {:<9} {:<6} {:<10} {:<6} {:<22} {:<26} STATUS",
        "ADDRESS", "ID", "CLASS", "DRIVER", "GROUP", "NODE", "CDEV"
    );
    for f in &functions {
        let group = match f.iommu_group {
            Some(g) if f.noiommu => format!("{g}*"),
            Some(g) => g.to_string(),
            None => "-".into(),
        };
        println!(
            "{:<13} {:04x}:{:04x} {:06x} {:<10} {:<6} {:<22} {:<26} {}",
            f.address,
            f.vendor,
            f.device,
            f.class,
            dash(f.driver.as_deref()),
            group,
            f.group_node
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
            f.cdev
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
            status(f).1
        );
    }
    let usable = functions.iter().filter(|f| f.is_vfio_usable()).count();
    let bindable = functions
        .iter()
        .filter(|f| status(f).0 == "bindable")
        .count();
    println!(
        "\n{usable} usable through VFIO; {bindable} more could be (uvfio bind ADDR); \
         `uvfio diagnose ADDR` says why a device cannot"
    );
    if !parents.is_empty() {
        println!();
        print_mdev(&parents);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_mdev(parents: &[uvfio::mdev::MdevParent]) {
    println!("mediated device parents and types:");
    for p in parents {
        println!("  {}", p.name);
        for t in &p.types {
            println!(
                "    {:<20} {:<24} {:<10} {} available",
                t.id, t.name, t.device_api, t.available_instances
            );
            for i in &t.instances {
                println!("      instance {i}");
            }
        }
    }
}

fn check_json(c: &Check) -> Value {
    let verdict = match c.verdict {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Skip => "skip",
    };
    json!({"name": c.name, "verdict": verdict, "detail": c.detail, "fix": c.fix})
}

pub fn diagnose(addr: &PciAddress, json_out: bool, pin: u64) -> Result<ExitCode> {
    let host = Host::new();
    let opts = DiagnoseOptions::default().pin_bytes(pin);
    let mut diagnosis = host.diagnose(addr, &opts);
    let open = if diagnosis.usable() {
        host.open_check(&diagnosis, &opts)
    } else {
        Check::skip("open", "an earlier check failed")
    };
    diagnosis.checks.push(open);
    let usable = diagnosis.usable();
    if json_out {
        let out = json!({
            "address": addr.to_string(),
            "usable": usable,
            "pin_bytes": pin,
            "checks": diagnosis.checks.iter().map(check_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        match &diagnosis.function {
            Some(f) => println!("{f}"),
            None => println!("{addr}"),
        }
        for c in &diagnosis.checks {
            println!("  {:<4}  {:<19} {}", c.verdict, c.name, c.detail);
            if let (Some(fix), Verdict::Fail | Verdict::Warn) = (&c.fix, c.verdict) {
                println!("  {:<4}  {:<19} fix: {fix}", "", "");
            }
        }
        let failed = diagnosis
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count();
        if usable {
            println!(
                "{addr}: usable through VFIO (pinning up to {})",
                human_bytes(pin)
            );
        } else {
            println!("{addr}: cannot be used through VFIO ({failed} checks failed)");
        }
    }
    Ok(if usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_plan(plan: &BindPlan, dry_run: bool) {
    for (name, why) in &plan.left {
        println!("left alone: {name}: {why}");
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    for s in &plan.steps {
        let what = if s.already_bound() {
            "already on vfio-pci".to_string()
        } else {
            format!("{} -> vfio-pci", dash(s.driver.as_deref()))
        };
        let verb = if dry_run { "would bind" } else { "bind" };
        println!("{verb} {}: {what}", s.address);
    }
}

pub fn bind(addr: &PciAddress, group: bool, dry_run: bool, state: &StateArg) -> Result<ExitCode> {
    let host = Host::new();
    let plan = host.plan_bind(addr, group)?;
    print_plan(&plan, dry_run);
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let mut st = BindState::load(&state.path)?;
    host.bind(&plan, &mut st)?;
    println!(
        "done; recorded in {} (uvfio restore gives them back)",
        st.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Gives `addr` back (restore if recorded, else unbind and let the kernel choose).
fn give_back(host: &Host, addr: &PciAddress, st: &mut BindState, dry_run: bool) -> Result<()> {
    let saved = st.get(addr).cloned();
    let current = host.sysfs().driver(addr)?;
    let target = match &saved {
        Some(s) => format!("{} (recorded)", dash(s.driver.as_deref())),
        None => "the driver the kernel picks (nothing recorded)".into(),
    };
    if dry_run {
        println!(
            "would unbind {addr}: {} -> {target}",
            dash(current.as_deref())
        );
        return Ok(());
    }
    if saved.is_some() {
        host.restore(addr, st)?;
    } else {
        host.unbind_unrecorded(addr)?;
    }
    let now = host.sysfs().driver(addr)?;
    println!(
        "unbind {addr}: {} -> {}",
        dash(current.as_deref()),
        dash(now.as_deref())
    );
    Ok(())
}

pub fn unbind(addr: &PciAddress, group: bool, dry_run: bool, state: &StateArg) -> Result<ExitCode> {
    let host = Host::new();
    let mut st = BindState::load(&state.path)?;
    let mut targets = vec![*addr];
    if group {
        let g = host.sysfs().iommu_group(addr)?;
        targets = host
            .sysfs()
            .group_devices(g)?
            .iter()
            .filter_map(|n| n.parse().ok())
            .filter(|a| {
                st.get(a).is_some()
                    || host.sysfs().driver(a).ok().flatten().as_deref() == Some("vfio-pci")
            })
            .collect();
    }
    for a in &targets {
        give_back(&host, a, &mut st, dry_run)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(dry_run: bool, state: &StateArg) -> Result<ExitCode> {
    let host = Host::new();
    let mut st = BindState::load(&state.path)?;
    if st.entries().is_empty() {
        println!(
            "nothing to restore ({} records no binding)",
            st.path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let addrs: Vec<PciAddress> = st.entries().iter().rev().map(|e| e.address).collect();
    let mut failed = false;
    for a in &addrs {
        // Every device is tried; the others are not held back by one in use.
        if let Err(e) = give_back(&host, a, &mut st, dry_run) {
            eprintln!("uvfio: error: {a}: {e}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn mdev_types(json_out: bool) -> Result<ExitCode> {
    let parents = Mdevs::new().parents()?;
    if json_out {
        let ps: Vec<Value> = parents
            .iter()
            .map(|p| {
                json!({"name": p.name, "types": p.types.iter().map(|t| json!({
                    "id": t.id, "name": t.name, "description": t.description,
                    "device_api": t.device_api, "available_instances": t.available_instances,
                    "instances": t.instances.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })).collect::<Vec<_>>()})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!(ps)).unwrap_or_default()
        );
    } else if parents.is_empty() {
        println!("no mediated device parents (/sys/class/mdev_bus is empty or missing)");
    } else {
        print_mdev(&parents);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn mdev_create(parent: &str, mdev_type: &str, uuid: Option<Uuid>) -> Result<ExitCode> {
    let uuid = Mdevs::new().create(parent, mdev_type, uuid)?.keep();
    println!("{uuid}");
    Ok(ExitCode::SUCCESS)
}

pub fn mdev_remove(uuid: Uuid) -> Result<ExitCode> {
    Mdevs::new().instance(uuid)?.remove()?;
    println!("removed {uuid}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
