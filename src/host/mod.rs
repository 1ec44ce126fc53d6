//! Setting up a host for VFIO: what the `uvfio` command does, as library calls, so that a
//! driver gets the same answers as its user at the shell.
//!
//! A [`Host`] reads sysfs, `/dev` and `/proc` under roots that are the real ones
//! ([`Host::new`]) or directories of your choosing ([`Host::with_roots`], for tests on fake
//! trees). It answers:
//!
//! - [`Host::diagnose`]: why a PCI function can or cannot be used through VFIO: every check
//!   ([`diagnose::Check`]) with its verdict and, when it fails, the fix; [`Host::open_check`]
//!   adds the final word, opening the device for real;
//! - [`Host::plan_bind`] / [`Host::bind`]: moving a function, or every function of its IOMMU
//!   group, to `vfio-pci`, refusing where the kernel would fail (a bridge, the boot GPU), with the
//!   drivers they had recorded in a [`bind::BindState`] file, so that [`Host::restore`] (in this
//!   process or a later one) gives each back to exactly its previous driver.
//!
//! ```no_run
//! use uvfio::host::Host;
//! use uvfio::host::diagnose::{DiagnoseOptions, Verdict};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::new();
//! let diagnosis = host.diagnose(&"0000:03:00.0".parse()?, &DiagnoseOptions::default());
//! for check in diagnosis.checks.iter().filter(|c| c.verdict == Verdict::Fail) {
//!     println!("{}: {} (fix: {})", check.name, check.detail, check.fix.as_deref().unwrap_or("-"));
//! }
//! # Ok(())
//! # }
//! ```

pub mod bind;
pub mod diagnose;

use std::path::{Path, PathBuf};

use crate::pci::sysfs::Sysfs;

/// The host's sysfs, `/dev` and `/proc`, under roots that can be redirected.
///
/// Cheap to create and to clone; it holds nothing but the roots.
#[derive(Debug, Clone)]
pub struct Host {
    sysfs: Sysfs,
    dev: PathBuf,
    proc_root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

impl Host {
    /// The running host: `/sys`, `/dev` and `/proc`.
    pub fn new() -> Host {
        Host::with_roots("/sys", "/dev", "/proc")
    }

    /// A host whose sysfs, `/dev` and `/proc` are at `sys`, `dev` and `proc_root` (fake trees
    /// in tests). Process facts (capabilities, limits) come from `<proc_root>/self`.
    pub fn with_roots(
        sys: impl Into<PathBuf>,
        dev: impl Into<PathBuf>,
        proc_root: impl Into<PathBuf>,
    ) -> Host {
        Host {
            sysfs: Sysfs::with_root(sys),
            dev: dev.into(),
            proc_root: proc_root.into(),
        }
    }

    /// The sysfs handle of this host.
    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }

    /// The `/dev` directory of this host.
    pub fn dev(&self) -> &Path {
        &self.dev
    }

    /// The `/proc` directory of this host.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// `<root>/<rel>` of sysfs.
    fn sys_path(&self, rel: &str) -> PathBuf {
        self.sysfs.root().join(rel)
    }
}

#[cfg(test)]
mod tests;
