//! The emulated IOMMU host of [uvfio](https://crates.io/crates/uvfio) as a tool for any crate.
//!
//! `uvfio-vm test` (or `run`, `bench`, `build`) is `cargo` with every binary it runs booted
//! inside QEMU/TCG with an emulated Intel VT-d IOMMU and emulated PCI devices bound to
//! `vfio-pci`: a crate's tests and examples drive real (emulated) devices through the kernel's
//! real VFIO code, as root, without touching the host. The device set comes from the crate's
//! `uvfio-vm.toml` ([`config`]), or is uvfio's own test set without one; each device's PCI
//! address reaches the binary in an environment variable.
//!
//! The VM itself is shell (`vm/` in this crate: the cargo runner, the guest's `/init`,
//! provisioning of kernels and initramfs), carried inside the binary ([`scripts`]) and unpacked
//! into the per-user cache ([`cache_dir`]) at run time: nothing is written into the crate under
//! test except cargo's own `target/`. The crate's README has the command line, the config
//! format and what the emulation does that hardware may not.

#![deny(missing_docs)]

pub mod config;
pub mod scripts;

use std::path::PathBuf;

/// Everything that can go wrong in `uvfio-vm` before cargo or the VM run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device config could not be read or is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No cache directory: neither `UVFIO_VM_CACHE`, `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("neither UVFIO_VM_CACHE, XDG_CACHE_HOME nor HOME is set: nowhere to cache the VM")]
    NoCache,
    /// A command line that cannot work.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An [`Error::Io`] saying what was done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The per-user cache of the emulated host (kernels, initramfs images, the unpacked scripts,
/// logs of failed runs): `$UVFIO_VM_CACHE`, else `$XDG_CACHE_HOME/uvfio/vm`, else
/// `$HOME/.cache/uvfio/vm` (the same rule as `vm/lib.sh`).
pub fn cache_dir() -> Result<PathBuf, Error> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("UVFIO_VM_CACHE") {
        Ok(PathBuf::from(dir))
    } else if let Some(dir) = var("XDG_CACHE_HOME") {
        Ok(PathBuf::from(dir).join("uvfio/vm"))
    } else if let Some(home) = var("HOME") {
        Ok(PathBuf::from(home).join(".cache/uvfio/vm"))
    } else {
        Err(Error::NoCache)
    }
}
