//! `uvfio-vm`: cargo with every binary run inside the emulated IOMMU host (README.md).

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;
use uvfio_vm::{cache_dir, config, scripts, Error};

/// Run a crate's tests, examples and benchmarks inside an emulated IOMMU host: QEMU/TCG with an
/// emulated Intel VT-d IOMMU and emulated PCI devices bound to vfio-pci. The devices come from
/// the nearest uvfio-vm.toml (the current directory or a parent), or are uvfio's own test set;
/// each device's PCI address reaches the binary in UVFIO_TEST_<NAME>. Kernels and images are
/// cached per user ($UVFIO_VM_CACHE, else ~/.cache/uvfio/vm).
///
/// Options go before the command: uvfio-vm --timings test --test hw
#[derive(Parser)]
#[command(name = "uvfio-vm", version)]
struct Cli {
    /// Guest kernel: debian (Debian's stock 6.1: the legacy VFIO container) or full (the
    /// project's 6.12, everything built in: iommufd, cdev, no-IOMMU, mdev samples).
    #[arg(long, env = "UVFIO_VM_FLAVOR", value_parser = ["debian", "full"])]
    flavor: Option<String>,
    /// IOMMU: vtd (emulated Intel VT-d) or none (VFIO's no-IOMMU mode; full flavour).
    #[arg(long, env = "UVFIO_VM_IOMMU", value_parser = ["vtd", "none"])]
    iommu: Option<String>,
    /// The device config to use instead of the nearest uvfio-vm.toml.
    #[arg(long, env = "UVFIO_VM_CONFIG")]
    config: Option<PathBuf>,
    /// Boot the default device set even where a uvfio-vm.toml is found (UVFIO_VM_NO_CONFIG=1).
    #[arg(long, conflicts_with = "config")]
    no_config: bool,
    /// Print the guest console (init's messages, the kernel's warnings) after each run.
    #[arg(long)]
    console: bool,
    /// Print the guest's whole kernel log (dmesg) after each run.
    #[arg(long)]
    kernel_log: bool,
    /// Print how long provisioning, the boot and the binary took, for each run.
    #[arg(long)]
    timings: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// cargo test, each test binary run in the VM: uvfio-vm test [cargo test args]
    #[command(trailing_var_arg = true, allow_hyphen_values = true)]
    Test {
        /// Arguments for cargo test.
        args: Vec<OsString>,
    },
    /// cargo run, the binary run in the VM: uvfio-vm run --example x -- [its args]
    #[command(trailing_var_arg = true, allow_hyphen_values = true)]
    Run {
        /// Arguments for cargo run.
        args: Vec<OsString>,
    },
    /// cargo bench, each benchmark binary run in the VM.
    #[command(trailing_var_arg = true, allow_hyphen_values = true)]
    Bench {
        /// Arguments for cargo bench.
        args: Vec<OsString>,
    },
    /// cargo build with the VM's runner set (for cargo test --no-run and the like).
    #[command(trailing_var_arg = true, allow_hyphen_values = true)]
    Build {
        /// Arguments for cargo build.
        args: Vec<OsString>,
    },
    /// Run one binary in the VM; as a cargo target runner:
    /// [target.x86_64-unknown-linux-gnu] runner = "uvfio-vm runner" in .cargo/config.toml.
    /// Exits with the binary's status, or 125 when the guest never reported one.
    #[command(trailing_var_arg = true, allow_hyphen_values = true)]
    Runner {
        /// The binary, then its arguments.
        #[arg(required = true, value_name = "BINARY [ARGS]")]
        args: Vec<OsString>,
    },
    /// Provide the flavour's kernel and initramfs in the cache (downloads Debian's kernel or
    /// builds the project's, once) and print the env file the runner boots.
    Provision,
    /// Print the device set in effect: the config found and its devices, or the default set.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // As a runner, 125 says "the binary never ran", as runner.sh's own errors do.
    let failed = if matches!(cli.command, Cmd::Runner { .. }) {
        ExitCode::from(125)
    } else {
        ExitCode::FAILURE
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uvfio-vm: error: {e}");
            failed
        }
    }
}

/// The environment every child gets from the options.
fn set_env(cli: &Cli) {
    // Only in the tool's own process, before any child runs: no threads yet.
    let set = |k: &str, v: &str| std::env::set_var(k, v);
    if let Some(f) = &cli.flavor {
        set("UVFIO_VM_FLAVOR", f);
    }
    if let Some(i) = &cli.iommu {
        set("UVFIO_VM_IOMMU", i);
    }
    if cli.console {
        set("UVFIO_VM_VERBOSE", "1");
    }
    if cli.kernel_log {
        set("UVFIO_VM_KERNEL_LOG", "1");
    }
    if cli.timings {
        set("UVFIO_VM_TIMINGS", "1");
    }
    if cli.no_config {
        set("UVFIO_VM_NO_CONFIG", "1");
    }
}

/// The config in effect: none with --no-config, else --config / UVFIO_VM_CONFIG, else the
/// nearest uvfio-vm.toml.
fn config_path(cli: &Cli) -> Result<Option<PathBuf>, Error> {
    if std::env::var_os("UVFIO_VM_NO_CONFIG").is_some_and(|v| v == "1") {
        return Ok(None);
    }
    match &cli.config {
        Some(p) => std::path::absolute(p)
            .map(Some)
            .map_err(|e| Error::io(format!("resolving {}", p.display()), e)),
        None => {
            let cwd = std::env::current_dir().map_err(|e| Error::io("the current directory", e))?;
            Ok(config::find(&cwd))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    set_env(&cli);
    let cache = cache_dir()?;
    let dir = scripts::unpack(&cache)?;
    match &cli.command {
        Cmd::Test { args } => cargo(&cli, &dir, "test", args),
        Cmd::Run { args } => cargo(&cli, &dir, "run", args),
        Cmd::Bench { args } => cargo(&cli, &dir, "bench", args),
        Cmd::Build { args } => cargo(&cli, &dir, "build", args),
        Cmd::Runner { args } => runner(&cli, &cache, &dir, args),
        Cmd::Provision => {
            let start = Instant::now();
            let env = provision(&dir)?;
            println!("{}", env.display());
            if cli.timings {
                eprintln!(
                    "uvfio-vm: timings: provision {:.1} s",
                    start.elapsed().as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Devices => {
            devices(&cli, &dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs provision.sh (its progress on stderr) and returns the env file it printed.
fn provision(dir: &Path) -> Result<PathBuf, Error> {
    let out = Command::new("bash")
        .arg(dir.join(scripts::PROVISION))
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::io("running bash (provision.sh)", e))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "provisioning the VM failed ({}, {})",
            dir.join(scripts::PROVISION).display(),
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(PathBuf::from(text.trim()))
}

fn cargo(cli: &Cli, dir: &Path, sub: &str, args: &[OsString]) -> Result<ExitCode, Error> {
    // Provision first: errors before cargo builds anything, and the build is not timed with it.
    provision(dir)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding uvfio-vm's own path", e))?;
    let exe = exe
        .to_str()
        .filter(|s| !s.chars().any(char::is_whitespace))
        .ok_or_else(|| {
            Error::Usage(format!(
                "cargo splits a runner at whitespace: install uvfio-vm at a path without any \
                 (it is at {})",
                exe.display()
            ))
        })?
        .to_owned();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg(sub).args(args).env(
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
        format!("{exe} runner"),
    );
    // The runner finds the same config whatever directory cargo runs it in.
    if let Some(path) = config_path(cli)? {
        cmd.env("UVFIO_VM_CONFIG", path);
    }
    Err(Error::io("running cargo", cmd.exec()))
}

fn runner(cli: &Cli, cache: &Path, dir: &Path, args: &[OsString]) -> Result<ExitCode, Error> {
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join(scripts::RUNNER)).args(args);
    if let Some(path) = config_path(cli)? {
        let config = config::load(&path)?;
        let table = config::table(&config);
        let tables = cache.join("tables");
        std::fs::create_dir_all(&tables)
            .map_err(|e| Error::io(format!("creating {}", tables.display()), e))?;
        let file = tables.join(format!("{:016x}.sh", scripts::fnv1a(&[table.as_bytes()])));
        if !file.is_file() {
            // Written under a temporary name and renamed: a concurrent run reads it whole.
            let tmp = tables.join(format!(".{}.tmp", std::process::id()));
            std::fs::write(&tmp, &table)
                .and_then(|()| std::fs::rename(&tmp, &file))
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        }
        cmd.env("UVFIO_VM_DEVICES", file);
    } else {
        cmd.env_remove("UVFIO_VM_DEVICES");
    }
    Err(Error::io("running bash (runner.sh)", cmd.exec()))
}

fn devices(cli: &Cli, dir: &Path) -> Result<(), Error> {
    let Some(path) = config_path(cli)? else {
        println!(
            "no {} in {} or its parents: the default device set ({}):\n",
            config::FILE_NAME,
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            dir.join(scripts::DEFAULT_DEVICES).display()
        );
        let text = std::fs::read_to_string(dir.join(scripts::DEFAULT_DEVICES))
            .map_err(|e| Error::io("reading the default device table", e))?;
        print!("{text}");
        return Ok(());
    };
    let config = config::load(&path)?;
    println!("{}:", path.display());
    for (d, hubid) in config.devices.iter().zip(config::hub_ids(&config)) {
        let driver = match &d.driver {
            config::Driver::VfioPci => "vfio-pci".to_owned(),
            config::Driver::Host(m) => format!("{m} (host driver)"),
        };
        let mut vars = format!("UVFIO_TEST_{}", d.name);
        if let Some(env) = &d.env {
            vars.push_str(&format!(", {env}"));
        }
        println!("  {} ({}, {}) -> {}", d.name, d.id, driver, vars);
        println!("      qemu: {}", d.qemu_command(hubid).join(" "));
        if let Some(g) = &d.group {
            println!("      IOMMU group tag: {g}");
        }
    }
    Ok(())
}
