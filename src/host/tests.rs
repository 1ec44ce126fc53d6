//! Unit tests of `host`: diagnoses and bind plans on fake sysfs, `/dev` and `/proc` trees, and a
//! bind/restore round trip with the kernel's part played by a write hook.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::bind::BindState;
use super::diagnose::{DiagnoseOptions, Verdict};
use super::Host;
use crate::error::{Error, ErrorKind};
use crate::pci::PciAddress;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `<tmp>/{sys,dev,proc}`, removed on drop.
struct Fake {
    root: PathBuf,
}

const ALL_CAPS: &str = "000001ffffffffff";
const NO_CAPS: &str = "0000000000000000";

impl Fake {
    /// An IOMMU (`dmar0`) with remapped interrupts, type1 loaded, an unlimited memlock limit and
    /// every capability.
    fn new() -> Fake {
        let root = std::env::temp_dir().join(format!(
            "uvfio-host-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let fake = Fake { root };
        for drv in ["e1000", "vfio-pci", "pcieport", "i6300esb"] {
            let d = fake.sys("bus/pci/drivers").join(drv);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("unbind"), "").unwrap();
        }
        fs::create_dir_all(fake.sys("bus/pci/devices")).unwrap();
        fs::create_dir_all(fake.sys("class/iommu/dmar0")).unwrap();
        fs::write(fake.sys("bus/pci/drivers_probe"), "").unwrap();
        let params = fake.sys("module/vfio_iommu_type1/parameters");
        fs::create_dir_all(&params).unwrap();
        fs::write(params.join("dma_entry_limit"), "65535\n").unwrap();
        fs::create_dir_all(fake.root.join("dev/vfio")).unwrap();
        fs::write(fake.root.join("dev/vfio/vfio"), "").unwrap();
        fs::create_dir_all(fake.root.join("proc/self")).unwrap();
        fs::write(
            fake.root.join("proc/interrupts"),
            " 24:  0  0  IR-PCI-MSI-0000:00:02.0  0-edge  eth0\n",
        )
        .unwrap();
        fake.memlock("unlimited");
        fake.caps(ALL_CAPS);
        fake
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    fn memlock(&self, soft: &str) {
        fs::write(
            self.root.join("proc/self/limits"),
            format!(
                "Limit  Soft Limit  Hard Limit  Units\nMax locked memory  {soft}  {soft}  bytes\n"
            ),
        )
        .unwrap();
    }

    fn caps(&self, eff: &str) {
        fs::write(
            self.root.join("proc/self/status"),
            format!("Name:\ttest\nCapEff:\t{eff}\n"),
        )
        .unwrap();
    }

    /// A function in `group` (with `/dev/vfio/<group>` when on vfio-pci).
    fn add(&self, addr: &str, group: Option<u32>, driver: Option<&str>, class: &str) {
        let dev = self.sys("devices/pci0000:00").join(addr);
        fs::create_dir_all(&dev).unwrap();
        for (f, v) in [
            ("vendor", "0x8086"),
            ("device", "0x100e"),
            ("class", class),
            ("driver_override", "(null)"),
            ("reset_method", "flr bus"),
        ] {
            fs::write(dev.join(f), format!("{v}\n")).unwrap();
        }
        symlink(
            format!("../../../devices/pci0000:00/{addr}"),
            self.sys("bus/pci/devices").join(addr),
        )
        .unwrap();
        if let Some(g) = group {
            let gdir = self.sys(&format!("kernel/iommu_groups/{g}/devices"));
            fs::create_dir_all(&gdir).unwrap();
            symlink(
                format!("../../../kernel/iommu_groups/{g}"),
                dev.join("iommu_group"),
            )
            .unwrap();
            symlink(
                format!("../../../../devices/pci0000:00/{addr}"),
                gdir.join(addr),
            )
            .unwrap();
            if driver == Some("vfio-pci") {
                fs::write(self.root.join(format!("dev/vfio/{g}")), "").unwrap();
            }
        }
        set_driver(&self.root.join("sys"), addr, driver);
    }

    fn host(&self) -> Host {
        Host::with_roots(self.sys(""), self.root.join("dev"), self.root.join("proc"))
    }

    /// A host whose sysfs answers writes the way the kernel does: `unbind` drops the driver
    /// link, `drivers_probe` binds a driverless function to its `driver_override`, else
    /// `e1000`.
    fn simulated_host(&self) -> Host {
        let mut host = self.host();
        let sys = self.sys("");
        host.sysfs.on_write = Some(Arc::new(move |path: &Path, value: &str| {
            let dev = sys.join("devices/pci0000:00").join(value);
            if path.ends_with("unbind") {
                set_driver(&sys, value, None);
            } else if path.ends_with("drivers_probe") && !dev.join("driver").exists() {
                let ov = fs::read_to_string(dev.join("driver_override")).unwrap();
                let ov = ov.trim_end();
                let target = if ov.is_empty() || ov == "(null)" {
                    "e1000"
                } else {
                    ov
                };
                set_driver(&sys, value, Some(target));
            }
        }));
        host
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn set_driver(sys: &Path, addr: &str, driver: Option<&str>) {
    let link = sys.join("devices/pci0000:00").join(addr).join("driver");
    let _ = fs::remove_file(&link);
    if let Some(d) = driver {
        symlink(format!("../../../bus/pci/drivers/{d}"), link).unwrap();
    }
}

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

const NIC: &str = "0x020000";
const BRIDGE: &str = "0x060400";

fn verdicts(host: &Host, addr: &str) -> Vec<(&'static str, Verdict)> {
    host.diagnose(&a(addr), &DiagnoseOptions::default())
        .checks
        .iter()
        .map(|c| (c.name, c.verdict))
        .collect()
}

#[test]
fn a_usable_device_passes_every_check() {
    let fake = Fake::new();
    fake.add("0000:00:02.0", Some(3), Some("vfio-pci"), NIC);
    let d = fake
        .host()
        .diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    assert!(d.usable(), "{d:#?}");
    for c in &d.checks {
        let expected = if c.name == "iommufd" {
            Verdict::Skip
        } else {
            Verdict::Pass
        };
        assert_eq!(c.verdict, expected, "{c:?}");
    }
    assert_eq!(
        d.checks.iter().map(|c| c.name).collect::<Vec<_>>(),
        [
            "device",
            "iommu",
            "interrupt-remapping",
            "iommu-group",
            "viability",
            "driver",
            "group-node",
            "memlock",
            "dma-entries",
            "iommufd",
            "noiommu",
            "reset",
            "isolation"
        ]
    );
    assert!(d.check("group-node").unwrap().detail.contains("dev/vfio/3"));
}

#[test]
fn a_device_on_a_host_driver_fails_with_the_bind_command() {
    let fake = Fake::new();
    fake.add("0000:00:02.0", Some(3), Some("e1000"), NIC);
    let d = fake
        .host()
        .diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    assert!(!d.usable());
    let c = d.check("driver").unwrap();
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(c.detail.contains("e1000"), "{c:?}");
    assert_eq!(c.fix.as_deref(), Some("uvfio bind 0000:00:02.0"));
    // The device itself blocks its group, and the node does not exist yet.
    assert_eq!(d.check("viability").unwrap().verdict, Verdict::Fail);
    assert_eq!(d.check("group-node").unwrap().verdict, Verdict::Skip);
}

#[test]
fn a_non_viable_group_names_the_blocker_and_pcieport_does_not_block() {
    let fake = Fake::new();
    fake.add("0000:00:1c.0", Some(5), Some("pcieport"), BRIDGE);
    fake.add("0000:01:00.0", Some(5), Some("vfio-pci"), NIC);
    fake.add("0000:01:00.1", Some(5), Some("i6300esb"), "0x088000");
    let host = fake.host();
    let d = host.diagnose(&a("0000:01:00.0"), &DiagnoseOptions::default());
    let c = d.check("viability").unwrap();
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(c.detail.contains("0000:01:00.1 (on i6300esb)"), "{c:?}");
    assert!(!c.detail.contains("pcieport"), "{c:?}");
    assert!(c
        .fix
        .as_deref()
        .unwrap()
        .contains("uvfio bind --group 0000:01:00.0"));
    let iso = d.check("isolation").unwrap();
    assert_eq!(iso.verdict, Verdict::Warn);
    assert!(
        iso.detail.contains("0000:01:00.1") && !iso.detail.contains("00:1c.0"),
        "{iso:?}"
    );

    set_driver(&fake.sys(""), "0000:01:00.1", Some("vfio-pci"));
    let d = host.diagnose(&a("0000:01:00.0"), &DiagnoseOptions::default());
    assert_eq!(d.check("viability").unwrap().verdict, Verdict::Pass);
    assert!(d.usable(), "{d:#?}");
}

#[test]
fn no_iommu_fails_with_the_kernel_command_line() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.sys("class/iommu/dmar0")).unwrap();
    fake.add("0000:00:02.0", None, Some("vfio-pci"), NIC);
    let d = fake
        .host()
        .diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    let iommu = d.check("iommu").unwrap();
    assert_eq!(iommu.verdict, Verdict::Fail);
    assert!(iommu.fix.as_deref().unwrap().contains("intel_iommu=on"));
    assert_eq!(d.check("iommu-group").unwrap().verdict, Verdict::Fail);
    assert_eq!(d.check("viability").unwrap().verdict, Verdict::Skip);
    assert_eq!(
        d.check("interrupt-remapping").unwrap().verdict,
        Verdict::Skip
    );
}

#[test]
fn noiommu_warns_and_fails_without_cap_sys_rawio() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.sys("class/iommu/dmar0")).unwrap();
    fake.add("0000:00:02.0", Some(0), Some("vfio-pci"), NIC);
    fs::write(fake.sys("kernel/iommu_groups/0/name"), "vfio-noiommu\n").unwrap();
    fs::rename(
        fake.root.join("dev/vfio/0"),
        fake.root.join("dev/vfio/noiommu-0"),
    )
    .unwrap();
    let host = fake.host();
    let d = host.diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    assert_eq!(d.check("iommu").unwrap().verdict, Verdict::Warn);
    assert_eq!(d.check("noiommu").unwrap().verdict, Verdict::Warn);
    assert!(d.check("group-node").unwrap().detail.contains("noiommu-0"));
    assert!(d.usable(), "{d:#?}");

    fake.caps(NO_CAPS);
    let d = host.diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    let c = d.check("noiommu").unwrap();
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(c.detail.contains("CAP_SYS_RAWIO"), "{c:?}");
}

#[test]
fn a_tiny_memlock_limit_fails_unless_cap_ipc_lock() {
    let fake = Fake::new();
    fake.add("0000:00:02.0", Some(3), Some("vfio-pci"), NIC);
    fake.memlock("65536");
    let host = fake.host();
    // Root-like: CAP_IPC_LOCK makes the limit irrelevant.
    assert!(verdicts(&host, "0000:00:02.0").contains(&("memlock", Verdict::Pass)));
    fake.caps(NO_CAPS);
    let d = host.diagnose(&a("0000:00:02.0"), &DiagnoseOptions::default());
    let c = d.check("memlock").unwrap();
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(
        c.detail.contains("64 KiB") && c.detail.contains("64 MiB"),
        "{c:?}"
    );
    assert!(
        c.fix.as_deref().unwrap().contains("ulimit -l 65536"),
        "{c:?}"
    );
    let small = DiagnoseOptions::default().pin_bytes(64 << 10);
    assert_eq!(
        host.diagnose(&a("0000:00:02.0"), &small)
            .check("memlock")
            .unwrap()
            .verdict,
        Verdict::Pass
    );
}

#[test]
fn bridges_boot_gpus_and_limits() {
    let fake = Fake::new();
    fake.add("0000:00:1c.0", Some(5), Some("pcieport"), BRIDGE);
    fake.add("0000:00:01.0", Some(6), Some("vfio-pci"), "0x030000");
    fs::write(fake.sys("devices/pci0000:00/0000:00:01.0/boot_vga"), "1\n").unwrap();
    fs::write(
        fake.sys("module/vfio_iommu_type1/parameters/dma_entry_limit"),
        "100\n",
    )
    .unwrap();
    fs::write(
        fake.root.join("proc/interrupts"),
        " 1: 0 0 IO-APIC 1-edge i8042\n",
    )
    .unwrap();
    let host = fake.host();
    let d = host.diagnose(&a("0000:00:1c.0"), &DiagnoseOptions::default());
    assert!(d.check("device").unwrap().detail.contains("bridge"));
    assert!(!d.usable());
    let d = host.diagnose(&a("0000:00:01.0"), &DiagnoseOptions::default());
    assert!(d.check("device").unwrap().detail.contains("boot GPU"));
    assert_eq!(d.check("dma-entries").unwrap().verdict, Verdict::Warn);
    assert_eq!(
        d.check("interrupt-remapping").unwrap().verdict,
        Verdict::Warn
    );
    let d = host.diagnose(&a("0000:09:00.0"), &DiagnoseOptions::default());
    assert_eq!(d.checks.len(), 1);
    assert_eq!(d.checks[0].verdict, Verdict::Fail);
}

#[test]
fn bind_plans_refuse_bridges_and_cover_the_group() {
    let fake = Fake::new();
    fake.add("0000:00:1c.0", Some(5), Some("pcieport"), BRIDGE);
    fake.add("0000:01:00.0", Some(5), Some("e1000"), NIC);
    fake.add("0000:01:00.1", Some(5), Some("i6300esb"), "0x088000");
    let host = fake.host();
    let e = host.plan_bind(&a("0000:00:1c.0"), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("PCI bridge"), "{e}");

    let plan = host.plan_bind(&a("0000:01:00.0"), false).unwrap();
    assert_eq!(plan.steps.len(), 1);
    assert!(
        plan.warnings[0].contains("0000:01:00.1 (i6300esb)"),
        "{:?}",
        plan.warnings
    );

    let plan = host.plan_bind(&a("0000:01:00.0"), true).unwrap();
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.address.to_string(), s.driver.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("0000:01:00.0".into(), Some("e1000".into())),
            ("0000:01:00.1".into(), Some("i6300esb".into()))
        ]
    );
    assert_eq!(plan.left[0].0, "0000:00:1c.0");
    assert!(plan.warnings.is_empty());

    let net = fake.sys("devices/pci0000:00/0000:01:00.0/net/eth0");
    fs::create_dir_all(&net).unwrap();
    fs::write(net.join("flags"), "0x1003\n").unwrap();
    let e = host.plan_bind(&a("0000:01:00.0"), true).unwrap_err();
    assert!(e.to_string().contains("eth0 is up"), "{e}");
}

#[test]
fn bind_then_restore_gives_back_exactly_the_previous_drivers() {
    let fake = Fake::new();
    // Driver names may hold spaces (i6300esb's is "i6300ESB timer").
    let timer = fake.sys("bus/pci/drivers/i6300ESB timer");
    fs::create_dir_all(&timer).unwrap();
    fs::write(timer.join("unbind"), "").unwrap();
    fake.add("0000:01:00.0", Some(5), Some("i6300ESB timer"), NIC);
    fake.add("0000:01:00.1", Some(5), None, NIC);
    fs::write(
        fake.sys("devices/pci0000:00/0000:01:00.0/driver_override"),
        "i6300ESB timer\n",
    )
    .unwrap();
    let host = fake.simulated_host();
    let path = fake.root.join("run/uvfio/bindings");
    let mut state = BindState::load(&path).unwrap();
    assert!(state.entries().is_empty());
    let plan = host.plan_bind(&a("0000:01:00.0"), true).unwrap();
    host.bind(&plan, &mut state).unwrap();
    for addr in ["0000:01:00.0", "0000:01:00.1"] {
        assert_eq!(
            host.sysfs().driver(&a(addr)).unwrap().as_deref(),
            Some("vfio-pci")
        );
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("0000:01:00.0\ti6300ESB timer\ti6300ESB timer\n0000:01:00.1\t-\t-\n"),
        "{text}"
    );

    // A later process reads the file and restores.
    let mut state = BindState::load(&path).unwrap();
    assert_eq!(state.entries().len(), 2);
    host.restore(&a("0000:01:00.1"), &mut state).unwrap();
    assert_eq!(host.sysfs().driver(&a("0000:01:00.1")).unwrap(), None);
    host.restore(&a("0000:01:00.0"), &mut state).unwrap();
    assert_eq!(
        host.sysfs().driver(&a("0000:01:00.0")).unwrap().as_deref(),
        Some("i6300ESB timer")
    );
    let over =
        fs::read_to_string(fake.sys("devices/pci0000:00/0000:01:00.0/driver_override")).unwrap();
    assert_eq!(over, "i6300ESB timer");
    assert!(!path.exists(), "an empty state removes the file");
    let e = host.restore(&a("0000:01:00.0"), &mut state).unwrap_err();
    assert!(
        e.to_string().contains("no binding of it is recorded"),
        "{e}"
    );
}

#[test]
fn unrecorded_unbind_lets_the_kernel_choose() {
    let fake = Fake::new();
    fake.add("0000:00:02.0", Some(3), Some("vfio-pci"), NIC);
    let host = fake.simulated_host();
    // /dev/vfio/3 under the fake root is not where Sysfs looks in tests (sys/dev/vfio), so the
    // in-use check finds no node and goes on.
    assert_eq!(
        host.unbind_unrecorded(&a("0000:00:02.0"))
            .unwrap()
            .as_deref(),
        Some("e1000")
    );
    let e = host.unbind_unrecorded(&a("0000:00:02.0")).unwrap_err();
    assert!(e.to_string().contains("not bound to vfio-pci"), "{e}");
}

#[test]
fn bad_state_files_name_the_line() {
    let fake = Fake::new();
    let path = fake.root.join("bindings");
    fs::write(&path, "# comment\n0000:00:02.0\te1000\t-\nbogus line\n").unwrap();
    let e = BindState::load(&path).unwrap_err();
    assert!(matches!(e, Error::BadFile { line: 3, .. }));
    assert!(e.to_string().contains("line 3"), "{e}");
    fs::write(&path, "00:02\te1000\t-\n").unwrap();
    assert!(BindState::load(&path)
        .unwrap_err()
        .to_string()
        .contains("not a PCI address"));
}
