//! `uvfio`: set up a Linux host for VFIO, a thin shell over the `uvfio` library's
//! [`uvfio::host`] and [`uvfio::pci::discover`] APIs (a driver calling them gets the same
//! answers).
//!
//! ```text
//! uvfio ls [--json] [-v] [-d FILTER] [ADDR..] PCI functions, IOMMU groups, drivers, nodes; mdevs;
//!                                            -v: what VFIO reports for each (was `lsvfio`)
//! uvfio diagnose ADDR [--json] [--pin SIZE]  every check, its verdict and the fix
//! uvfio bind ADDR [--group] [--dry-run]      to vfio-pci, the previous drivers recorded
//! uvfio unbind ADDR [--group] [--dry-run]    back to the recorded driver
//! uvfio restore [--dry-run]                  every recorded function back
//! uvfio mdev types|create|remove             mediated devices
//! ```
//!
//! `-t`/`--trace` (any subcommand): every kernel call the library makes, one line each on
//! stderr: `-t` the opens, mmaps, eventfds and sysfs writes, `-tt` every ioctl and region access
//! too (`-v` stays `ls`'s: what VFIO reports for each device).
//!
//! Exit status: 0 on success (for `diagnose`: the device can be used; it was opened); 1 when
//! the operation failed or was refused, or `diagnose` found the device unusable; 2 for a usage
//! error.

mod cmd;
mod lsvfio;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uvfio::pci::discover::Filter;
use uvfio::pci::PciAddress;

/// Set up a Linux host for VFIO: list devices, say why one can or cannot be used, bind
/// devices to vfio-pci and give them back, manage mediated devices.
///
/// Exit status: 0 on success (diagnose: the device can be used); 1 when an operation failed or
/// was refused, or diagnose found the device unusable; 2 for a usage error.
#[derive(Debug, Parser)]
#[command(name = "uvfio", version)]
struct Cli {
    /// Print every kernel call the library makes on stderr, with its arguments, result and
    /// duration: -t the opens, mmaps, eventfds and sysfs writes; -tt every ioctl and region
    /// access too.
    #[arg(short = 't', long = "trace", action = clap::ArgAction::Count, global = true)]
    trace: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the PCI functions (usable through VFIO, or what stops them), their IOMMU groups,
    /// drivers, group nodes and cdevs, and the mediated devices.
    Ls {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Open each device on vfio-pci and show what VFIO reports: the container, groups,
        /// regions, IRQs, device features, and iommufd with each cdev (what `lsvfio` showed).
        #[arg(short, long)]
        verbose: bool,
        /// Only devices matching [vendor]:[device][:class] (hex, as `lspci -d`).
        #[arg(short = 'd', value_name = "FILTER")]
        filter: Option<Filter>,
        /// Only these PCI functions.
        addresses: Vec<PciAddress>,
    },
    /// Every check on whether the device can be used through VFIO, each with its verdict and
    /// the fix; exit status 0 only when it can (it was opened).
    Diagnose {
        /// The PCI function, e.g. 0000:03:00.0.
        address: PciAddress,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How much memory the driver will pin for DMA (bytes, or with K, M, G).
        #[arg(long, default_value = "64M", value_parser = cmd::parse_size)]
        pin: u64,
    },
    /// Bind the device (with --group: every device of its IOMMU group) to vfio-pci, recording
    /// the drivers they had for unbind and restore.
    Bind {
        /// The PCI function.
        address: PciAddress,
        /// Every device of its IOMMU group (bridges stay on their drivers).
        #[arg(long)]
        group: bool,
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        state: cmd::StateArg,
    },
    /// Give the device (with --group: every device of its group) back to the driver it had
    /// before `uvfio bind`; unrecorded devices are unbound and the kernel picks a driver.
    Unbind {
        /// The PCI function.
        address: PciAddress,
        /// Every device of its IOMMU group.
        #[arg(long)]
        group: bool,
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        state: cmd::StateArg,
    },
    /// Give every device `uvfio bind` moved back to the driver it had.
    Restore {
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        state: cmd::StateArg,
    },
    /// Mediated devices: list types, create and remove instances.
    Mdev {
        #[command(subcommand)]
        command: MdevCommand,
    },
}

#[derive(Debug, Subcommand)]
enum MdevCommand {
    /// Each parent device's mdev types (available instances, device API) and instances.
    Types {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create an instance of TYPE on PARENT; prints its UUID.
    Create {
        /// The parent device (its name under /sys/class/mdev_bus), e.g. 0000:00:02.0 or mtty.
        parent: String,
        /// The type id, e.g. mtty-2 or i915-GVTg_V5_4.
        mdev_type: String,
        /// The instance's UUID (default: a random one).
        #[arg(long)]
        uuid: Option<uvfio::mdev::Uuid>,
    },
    /// Remove the instance UUID.
    Remove {
        /// The instance's UUID.
        uuid: uvfio::mdev::Uuid,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    trace::init(cli.trace);
    let result = match cli.command {
        Command::Ls {
            json,
            verbose: true,
            filter,
            addresses,
        } => Ok(lsvfio::run(
            json,
            addresses,
            filter.unwrap_or_default(),
            filter.is_some(),
        )),
        Command::Ls {
            json,
            verbose: false,
            filter,
            addresses,
        } => cmd::ls(json, filter, &addresses),
        Command::Diagnose { address, json, pin } => cmd::diagnose(&address, json, pin),
        Command::Bind {
            address,
            group,
            dry_run,
            state,
        } => cmd::bind(&address, group, dry_run, &state),
        Command::Unbind {
            address,
            group,
            dry_run,
            state,
        } => cmd::unbind(&address, group, dry_run, &state),
        Command::Restore { dry_run, state } => cmd::restore(dry_run, &state),
        Command::Mdev { command } => match command {
            MdevCommand::Types { json } => cmd::mdev_types(json),
            MdevCommand::Create {
                parent,
                mdev_type,
                uuid,
            } => cmd::mdev_create(&parent, &mdev_type, uuid),
            MdevCommand::Remove { uuid } => cmd::mdev_remove(uuid),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uvfio: error: {e}");
            ExitCode::FAILURE
        }
    }
}
