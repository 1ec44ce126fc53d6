//! The device config: `uvfio-vm.toml` in the crate under test.
//!
//! ```toml
//! [[device]]
//! name = "edu"                      # the guest exports UVFIO_TEST_EDU=<PCI address>
//! qemu = "edu,dma_mask=0xfffffff"   # QEMU's -device: the model and its options
//! env = "MY_EDU"                    # optional: the address goes to MY_EDU too
//!
//! [[device]]
//! name = "nic_a"
//! qemu = "e1000e,mac=52:54:00:12:00:03"
//! network = "lan"                   # a NIC: joins QEMU hub "lan" (netdev wired automatically)
//!
//! [[device]]
//! name = "nic_b"
//! qemu = "e1000e,mac=52:54:00:12:00:04"
//! network = "lan"
//!
//! [[device]]
//! name = "nvme"
//! qemu = "nvme,serial=cafe,drive=d0,bus=rp0"
//! qemu-args = ["-device", "pcie-root-port,id=rp0,chassis=1,x-speed=5",
//!              "-drive", "id=d0,if=none,format=raw,file=null-co://,file.read-zeroes=on"]
//!
//! [[device]]
//! name = "mine"
//! qemu = "my-model"
//! id = "1234:5678"                  # vendor:device, for a model not in KNOWN_MODELS
//! driver = "my_module"              # bind to a guest kernel module's driver, not vfio-pci
//! ```
//!
//! Keys of a device: `name` (required; letters, digits and `_`, case-insensitive: the variable
//! is `UVFIO_TEST_<NAME>` upper-cased), `qemu` (required), `id`, `env`, `driver` (`vfio-pci`
//! by default), `network`, `group` (devices with the same tag must share one IOMMU group, the
//! others must each have their own: the guest checks) and `qemu-args` (QEMU arguments placed
//! before the device's `-device`, e.g. the bus it sits on or its drive). Any other key, a
//! duplicate name or variable, or a model outside [`KNOWN_MODELS`] without `id` is an error.

use crate::Error;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The config's file name, looked for in the current directory and each of its parents.
pub const FILE_NAME: &str = "uvfio-vm.toml";

/// A QEMU device model whose PCI ids are known, so that `id` may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// QEMU's name of the model (`-device <name>,...`).
    pub name: &'static str,
    /// Its PCI `vendor:device`, lower-case hex, as the guest finds it in sysfs.
    pub id: &'static str,
    /// Whether it is a network card (`network` wires it to a hub).
    pub nic: bool,
}

/// The QEMU models whose ids `uvfio-vm` knows (those of QEMU 7.2, Debian bookworm's).
pub const KNOWN_MODELS: &[Model] = &[
    Model {
        name: "edu",
        id: "1234:11e8",
        nic: false,
    },
    Model {
        name: "e1000",
        id: "8086:100e",
        nic: true,
    },
    Model {
        name: "e1000e",
        id: "8086:10d3",
        nic: true,
    },
    Model {
        name: "rtl8139",
        id: "10ec:8139",
        nic: true,
    },
    Model {
        name: "pcnet",
        id: "1022:2000",
        nic: true,
    },
    Model {
        name: "nvme",
        id: "1b36:0010",
        nic: false,
    },
    Model {
        name: "pci-testdev",
        id: "1b36:0005",
        nic: false,
    },
    Model {
        name: "i6300esb",
        id: "8086:25ab",
        nic: false,
    },
];

/// Which driver the guest binds a device to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// `vfio-pci`: the device is for the binary under test.
    VfioPci,
    /// The PCI driver of this guest kernel module (built in, or loaded by the guest).
    Host(String),
}

/// One device of the config, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its name, upper-cased: the guest exports `UVFIO_TEST_<name>`.
    pub name: String,
    /// QEMU's `-device` argument as written.
    pub qemu: String,
    /// The model (the `-device` argument up to its first comma).
    pub model: String,
    /// PCI `vendor:device`, lower-case hex.
    pub id: String,
    /// A second variable the guest exports the address in.
    pub env: Option<String>,
    /// The driver the guest binds it to.
    pub driver: Driver,
    /// The QEMU hub (network) a NIC joins.
    pub network: Option<String>,
    /// Its IOMMU group tag.
    pub group: Option<String>,
    /// QEMU arguments placed before its `-device`.
    pub qemu_args: Vec<String>,
}

/// A config: the devices, in the order QEMU gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its devices.
    pub devices: Vec<Device>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDevice {
    name: String,
    qemu: String,
    id: Option<String>,
    env: Option<String>,
    driver: Option<String>,
    network: Option<String>,
    group: Option<String>,
    #[serde(default)]
    qemu_args: Vec<String>,
}

/// The config file in `start` or the nearest of its parents, if any.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|path| path.is_file())
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let devices = parse(&text).map_err(|message| Error::Config {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(Config {
        path: path.to_path_buf(),
        devices,
    })
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_id(id: &str) -> Option<String> {
    let (vendor, device) = id.split_once(':')?;
    let hex4 = |s: &str| s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit());
    (hex4(vendor) && hex4(device)).then(|| id.to_ascii_lowercase())
}

/// Parses and validates a config's text: the devices, or a message saying what is wrong.
pub fn parse(text: &str) -> Result<Vec<Device>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    if raw.device.is_empty() {
        return Err(
            "no devices: declare at least one [[device]] (or remove the file to get \
                    the default set)"
                .into(),
        );
    }
    let mut devices = Vec::new();
    // Every variable the guest will export, and which device it belongs to.
    let mut vars: HashMap<String, (usize, String)> = HashMap::new();
    for (i, d) in raw.device.into_iter().enumerate() {
        let at = format!("device {} ({:?})", i + 1, d.name);
        if !is_ident(&d.name) {
            return Err(format!(
                "{at}: name must be letters, digits and '_', not starting with a digit"
            ));
        }
        let name = d.name.to_ascii_uppercase();
        if name == "DEVICES" {
            return Err(format!(
                "{at}: name DEVICES is taken (UVFIO_TEST_DEVICES lists every vfio-pci device)"
            ));
        }
        let mut own = vec![format!("UVFIO_TEST_{name}")];
        if let Some(env) = &d.env {
            if !is_ident(env) {
                return Err(format!("{at}: env {env:?} is not a variable name"));
            }
            if env.starts_with("UVFIO_VM_") {
                return Err(format!(
                    "{at}: env {env:?}: UVFIO_VM_* variables are the VM's own"
                ));
            }
            own.push(env.clone());
        }
        for var in own {
            if let Some((j, other)) = vars.insert(var.clone(), (i, name.clone())) {
                return Err(if j == i {
                    format!("{at}: env {var} is its own name's variable already")
                } else {
                    format!(
                        "{at}: {var} is taken by device {} ({other}): duplicate name or env",
                        j + 1
                    )
                });
            }
        }
        let model = d.qemu.split(',').next().unwrap_or("").to_owned();
        if model.is_empty() || model.starts_with('-') || model.chars().any(char::is_whitespace) {
            return Err(format!(
                "{at}: qemu must start with a device model (\"e1000e,mac=...\"), not {:?}",
                d.qemu
            ));
        }
        let known = KNOWN_MODELS.iter().find(|m| m.name == model);
        let id = match (&d.id, known) {
            (Some(id), _) => parse_id(id).ok_or_else(|| {
                format!("{at}: id {id:?} is not vendor:device in hex (\"1234:11e8\")")
            })?,
            (None, Some(m)) => m.id.to_owned(),
            (None, None) => {
                let names: Vec<_> = KNOWN_MODELS.iter().map(|m| m.name).collect();
                return Err(format!(
                    "{at}: unknown QEMU model {model:?}: give its PCI id (id = \
                     \"vendor:device\"), known without one: {}",
                    names.join(", ")
                ));
            }
        };
        let driver = match d.driver.as_deref() {
            None | Some("vfio-pci") => Driver::VfioPci,
            Some(m) if is_tag(m) => Driver::Host(m.to_owned()),
            Some(m) => return Err(format!("{at}: driver {m:?} is not a module name")),
        };
        if let Some(net) = &d.network {
            if !is_tag(net) {
                return Err(format!(
                    "{at}: network {net:?} must be letters, digits, '_' and '-'"
                ));
            }
            if d.qemu.split(',').any(|opt| opt.starts_with("netdev=")) {
                return Err(format!(
                    "{at}: network and a netdev= in qemu: give one (network wires the netdev)"
                ));
            }
            if known.is_some_and(|m| !m.nic) {
                return Err(format!(
                    "{at}: network on {model}, which is no network card"
                ));
            }
        }
        if let Some(group) = &d.group {
            if !is_tag(group) {
                return Err(format!(
                    "{at}: group {group:?} must be letters, digits, '_' and '-'"
                ));
            }
        }
        if let Some(first) = d.qemu_args.first() {
            if !first.starts_with('-') {
                return Err(format!(
                    "{at}: qemu-args must start with an option (\"-device\", ...), not {first:?}"
                ));
            }
        }
        devices.push(Device {
            name,
            qemu: d.qemu,
            model,
            id,
            env: d.env,
            driver,
            network: d.network,
            group: d.group,
            qemu_args: d.qemu_args,
        });
    }
    Ok(devices)
}

/// Single-quotes a word for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Device {
    /// The QEMU arguments of the device: its `qemu-args`, its hub port when it joins a
    /// network (`hubid`, that network's number), then its `-device`.
    pub fn qemu_command(&self, hubid: Option<usize>) -> Vec<String> {
        let mut args = self.qemu_args.clone();
        let mut device = self.qemu.clone();
        if let Some(hub) = hubid {
            let netdev = format!("uvfio-net-{}", self.name.to_ascii_lowercase());
            args.push("-netdev".into());
            args.push(format!("hubport,id={netdev},hubid={hub}"));
            device.push_str(&format!(",netdev={netdev}"));
        }
        args.push("-device".into());
        args.push(device);
        args
    }
}

/// Each device's QEMU hub: the networks numbered in the order they first appear.
pub fn hub_ids(config: &Config) -> Vec<Option<usize>> {
    let mut hubs: Vec<&str> = Vec::new();
    config
        .devices
        .iter()
        .map(|d| {
            d.network.as_deref().map(|net| {
                hubs.iter().position(|h| *h == net).unwrap_or_else(|| {
                    hubs.push(net);
                    hubs.len() - 1
                })
            })
        })
        .collect()
}

/// The device table `vm/runner.sh` sources (its `UVFIO_VM_DEVICES`), every word quoted.
pub fn table(config: &Config) -> String {
    let mut out = format!(
        "# shellcheck shell=bash\n# written by uvfio-vm from {}\n",
        config.path.display()
    );
    for (d, hubid) in config.devices.iter().zip(hub_ids(config)) {
        out.push_str("dev ");
        out.push_str(&quote(&d.name));
        out.push(' ');
        out.push_str(&quote(&d.id));
        if let Driver::Host(module) = &d.driver {
            out.push(' ');
            out.push_str(&quote(&format!("host={module}")));
        }
        if let Some(group) = &d.group {
            out.push(' ');
            out.push_str(&quote(&format!("group={group}")));
        }
        for arg in d.qemu_command(hubid) {
            out.push(' ');
            out.push_str(&quote(&arg));
        }
        out.push('\n');
        if let Some(env) = &d.env {
            let _ = writeln!(out, "dev_env {} {}", quote(env), quote(&d.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config {
            path: PathBuf::from("/x/uvfio-vm.toml"),
            devices: parse(text).unwrap(),
        }
    }

    #[test]
    fn known_models_need_no_id_and_networks_get_hubs() {
        let c = config(
            r#"
            [[device]]
            name = "edu"
            qemu = "edu,dma_mask=0xfffffff"
            env = "MY_EDU"
            [[device]]
            name = "Nic_A"
            qemu = "e1000e,mac=52:54:00:12:00:03"
            network = "lan"
            [[device]]
            name = "nic_b"
            qemu = "e1000,mac=52:54:00:12:00:04"
            network = "wan"
            [[device]]
            name = "nic_c"
            qemu = "e1000e"
            network = "lan"
            "#,
        );
        assert_eq!(c.devices[0].id, "1234:11e8");
        assert_eq!(c.devices[0].env.as_deref(), Some("MY_EDU"));
        assert_eq!(c.devices[1].name, "NIC_A");
        assert_eq!(c.devices[1].id, "8086:10d3");
        assert_eq!(c.devices[2].id, "8086:100e");
        let t = table(&c);
        let lines: Vec<_> = t.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "dev 'EDU' '1234:11e8' '-device' 'edu,dma_mask=0xfffffff'",
                "dev_env 'MY_EDU' 'EDU'",
                "dev 'NIC_A' '8086:10d3' '-netdev' 'hubport,id=uvfio-net-nic_a,hubid=0' \
                 '-device' 'e1000e,mac=52:54:00:12:00:03,netdev=uvfio-net-nic_a'",
                "dev 'NIC_B' '8086:100e' '-netdev' 'hubport,id=uvfio-net-nic_b,hubid=1' \
                 '-device' 'e1000,mac=52:54:00:12:00:04,netdev=uvfio-net-nic_b'",
                "dev 'NIC_C' '8086:10d3' '-netdev' 'hubport,id=uvfio-net-nic_c,hubid=0' \
                 '-device' 'e1000e,netdev=uvfio-net-nic_c'",
            ]
        );
    }

    #[test]
    fn explicit_id_driver_group_args_and_quotes() {
        let c = config(
            r#"
            [[device]]
            name = "w"
            qemu = "my-dev,label=it's"
            id = "ABCD:0001"
            driver = "my_mod"
            group = "g1"
            qemu-args = ["-device", "pci-bridge,id=br,chassis_nr=2"]
            "#,
        );
        let d = &c.devices[0];
        assert_eq!(d.id, "abcd:0001");
        assert_eq!(d.driver, Driver::Host("my_mod".into()));
        assert_eq!(
            table(&c).lines().last().unwrap(),
            "dev 'W' 'abcd:0001' 'host=my_mod' 'group=g1' '-device' \
             'pci-bridge,id=br,chassis_nr=2' '-device' 'my-dev,label=it'\\''s'"
        );
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = error("[[device]]\nname = \"edu\"\nqemu = \"edu\"\ndriverr = \"x\"\n");
        assert!(e.contains("unknown field `driverr`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        let e = error("[vm]\nmem = 1\n[[device]]\nname = \"edu\"\nqemu = \"edu\"\n");
        assert!(e.contains("unknown field `vm`"), "{e}");
    }

    #[test]
    fn unknown_model_needs_an_id() {
        let e = error("[[device]]\nname = \"x\"\nqemu = \"virtio-net-pci\"\n");
        assert!(e.contains("unknown QEMU model \"virtio-net-pci\""), "{e}");
        assert!(e.contains("e1000e"), "{e}");
        let e = error("[[device]]\nname = \"x\"\nqemu = \"foo\"\nid = \"12345:1\"\n");
        assert!(e.contains("not vendor:device"), "{e}");
    }

    #[test]
    fn duplicate_names_and_variables_are_refused() {
        let dup = "[[device]]\nname = \"edu\"\nqemu = \"edu\"\n[[device]]\nname = \"EDU\"\nqemu = \"edu\"\n";
        let e = error(dup);
        assert!(
            e.contains("device 2 (\"EDU\"): UVFIO_TEST_EDU is taken by device 1 (EDU)"),
            "{e}"
        );
        let env = "[[device]]\nname = \"a\"\nqemu = \"edu\"\nenv = \"X\"\n\
                   [[device]]\nname = \"b\"\nqemu = \"edu\"\nenv = \"X\"\n";
        assert!(error(env).contains("X is taken by device 1 (A)"));
        let own = "[[device]]\nname = \"a\"\nqemu = \"edu\"\nenv = \"UVFIO_TEST_A\"\n";
        assert!(error(own).contains("its own name's variable"));
    }

    #[test]
    fn bad_values_are_refused() {
        let dev = |extra: &str| format!("[[device]]\nname = \"a\"\nqemu = \"e1000e\"\n{extra}");
        for (extra, want) in [
            ("env = \"1X\"", "not a variable name"),
            ("env = \"UVFIO_VM_FLAVOR\"", "the VM's own"),
            ("driver = \"a b\"", "not a module name"),
            ("network = \"a b\"", "network"),
            ("group = \"\"", "group"),
            (
                "qemu-args = [\"pcie-root-port\"]",
                "must start with an option",
            ),
        ] {
            let e = error(&dev(extra));
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = error("[[device]]\nname = \"a-b\"\nqemu = \"edu\"\n");
        assert!(e.contains("name must be"), "{e}");
        let e = error("[[device]]\nname = \"devices\"\nqemu = \"edu\"\n");
        assert!(e.contains("taken"), "{e}");
        let e = error("[[device]]\nname = \"a\"\nqemu = \",x\"\n");
        assert!(e.contains("must start with a device model"), "{e}");
        let e = error("[[device]]\nname = \"a\"\nqemu = \"e1000e,netdev=n\"\nnetwork = \"l\"\n");
        assert!(e.contains("give one"), "{e}");
        let e = error("[[device]]\nname = \"a\"\nqemu = \"edu\"\nnetwork = \"l\"\n");
        assert!(e.contains("no network card"), "{e}");
        let e = error("[[device]]\nname = \"a\"\n");
        assert!(e.contains("missing field `qemu`"), "{e}");
        assert!(error("").contains("no devices"));
    }

    #[test]
    fn find_walks_up() {
        let root = std::env::temp_dir().join(format!("uvfio-vm-find-{}", std::process::id()));
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(&deep), None);
        std::fs::write(root.join(FILE_NAME), "").unwrap();
        assert_eq!(find(&deep), Some(root.join(FILE_NAME)));
        std::fs::write(deep.join(FILE_NAME), "").unwrap();
        assert_eq!(find(&deep), Some(deep.join(FILE_NAME)));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
