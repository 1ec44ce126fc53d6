//! The `uvfio` binary on the build host: usage errors, exit statuses and the shape of `--json`.
//! Nothing here needs VFIO or root; tests/vm/cli-check.sh runs the command against the emulated
//! IOMMU host.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn uvfio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uvfio"))
        .args(args)
        .env_remove("UVFIO_STATE")
        .output()
        .expect("running uvfio")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh temporary path, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let p = std::env::temp_dir().join(format!("uvfio-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempPath(p)
    }

    fn as_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn usage_errors_exit_with_2_and_say_why() {
    for (args, says) in [
        (&["diagnose", "not-an-address"][..], "invalid PCI address"),
        (&["diagnose", "0000:00:01.0", "--pin", "12X"], "not a size"),
        (&["bind"], "<ADDRESS>"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["mdev", "remove", "not-a-uuid"], "invalid value"),
    ] {
        let out = uvfio(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
}

#[test]
fn help_names_every_subcommand_and_the_exit_statuses() {
    let out = uvfio(&["--help"]);
    assert!(out.status.success());
    let help = text(&out);
    for word in [
        "ls",
        "diagnose",
        "bind",
        "unbind",
        "restore",
        "mdev",
        "Exit status",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
}

#[test]
fn diagnose_of_a_missing_device_fails_with_json_that_says_so() {
    let out = uvfio(&["diagnose", "ffff:ff:1f.7", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["address"], "ffff:ff:1f.7");
    assert_eq!(v["usable"], false);
    assert_eq!(v["pin_bytes"], 64 << 20);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["name"], "device");
    assert_eq!(checks[0]["verdict"], "fail");
    assert!(checks[0]["fix"].as_str().unwrap().contains("uvfio ls"));
    assert_eq!(checks.last().unwrap()["name"], "open");
    assert_eq!(checks.last().unwrap()["verdict"], "skip");

    let out = uvfio(&["diagnose", "ffff:ff:1f.7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("cannot be used through VFIO"),
        "{}",
        text(&out)
    );
}

#[test]
fn ls_json_has_every_function_with_its_fields() {
    let out = uvfio(&["ls", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["mdev_parents"].is_array());
    for f in v["functions"].as_array().unwrap() {
        for key in [
            "address",
            "vendor",
            "device",
            "class",
            "driver",
            "iommu_group",
            "noiommu",
            "viable",
            "usable",
            "status",
            "blockers",
            "group_node",
            "cdev",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
    }
}

#[test]
fn trace_is_a_global_flag_that_leaves_stdout_alone() {
    // Before or after the subcommand, once or twice.
    for args in [
        &["-t", "ls", "--json"][..],
        &["ls", "--json", "-tt"],
        &["--trace", "--trace", "ls", "--json"],
    ] {
        let out = uvfio(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        // The records go to stderr: stdout is still one JSON document.
        let _: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        // Every stderr line is a record: `uvfio: SECONDS LEVEL ...`.
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some("uvfio:"), "{line}");
            assert!(words.next().unwrap().parse::<f64>().is_ok(), "{line}");
            assert!(
                ["DEBUG", "TRACE"].contains(&words.next().unwrap()),
                "{line}"
            );
        }
    }
    let help = text(&uvfio(&["--help"]));
    assert!(help.contains("-t, --trace"), "{help}");
}

#[test]
fn bind_and_unbind_of_a_missing_device_fail_and_change_nothing() {
    let state = TempPath::new("missing");
    for cmd in ["bind", "unbind"] {
        let out = uvfio(&[cmd, "ffff:ff:1f.7", "--dry-run", "--state", state.as_str()]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out));
        assert!(text(&out).starts_with("uvfio: error: "), "{}", text(&out));
    }
    assert!(!state.0.exists());
}

#[test]
fn restore_reads_the_state_file() {
    let state = TempPath::new("state");
    let out = uvfio(&["restore", "--state", state.as_str()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to restore"), "{}", text(&out));

    std::fs::write(&state.0, "# uvfio bindings\n0000:00:02.0 e1000\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uvfio"))
        .args(["restore", "--dry-run"])
        .env("UVFIO_STATE", &state.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("line 2"), "{}", text(&out));
}
