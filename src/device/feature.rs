//! Device features: `VFIO_DEVICE_FEATURE` probe, get and set.
//!
//! A feature is numbered ([`Feature`]) and supports GET, SET or both ([`FeatureAccess`]).
//! [`Device::feature_probe`] asks the kernel which, without side effects, and
//! [`Device::features`] does it for every feature this crate knows. The typed methods below
//! then use them; each answers [`Error::NotSupported`] on a device (or kernel) without the
//! feature.
//!
//! | feature | Linux | methods |
//! |---|---|---|
//! | `PCI_VF_TOKEN` | 5.7 | [`Device::set_vf_token`] |
//! | `MIGRATION` | 5.18 | [`Device::migration_flags`] |
//! | `MIG_DEVICE_STATE` | 5.18 | [`Device::mig_state`], [`Device::set_mig_state`] |
//! | `LOW_POWER_ENTRY`, `_WITH_WAKEUP`, `_EXIT` | 6.0 | [`Device::low_power_entry`], [`Device::low_power_entry_with_wakeup`], [`Device::low_power_exit`] |
//! | `DMA_LOGGING_START`, `_STOP`, `_REPORT` | 6.1 | [`Device::dma_logging_start`], [`Device::dma_logging_stop`], [`Device::dma_logging_report`] |
//! | `MIG_DATA_SIZE` | 6.2 | [`Device::mig_data_size`] |
//! | `BUS_MASTER` | 6.7 | [`Device::set_bus_master_feature`] |
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_FEATURE` and the `VFIO_DEVICE_FEATURE_*`
//!   payloads
//! - Linux `drivers/vfio/vfio_main.c` (`vfio_ioctl_device_feature`, `vfio_check_feature`)

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::Device;
use crate::error::{Errno, Error, Result};
use crate::uapi::ioctl::{dma_logging_bitmap_words, Cause, Failed};
use crate::uapi::vfio;

use vfio::{VFIO_DEVICE_FEATURE_BUS_MASTER, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE};

/// A `VFIO_DEVICE_FEATURE_*` number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Feature(pub u16);

macro_rules! features {
    ($($(#[$m:meta])* $name:ident = $v:expr, $c:literal;)*) => {
        impl Feature {
            $(
                $(#[$m])*
                #[doc = concat!("`", $c, "`")]
                #[doc(alias = $c)]
                // Feature numbers are 16-bit (VFIO_DEVICE_FEATURE_MASK); the ABI test checks
                // each value.
                #[allow(clippy::cast_possible_truncation)]
                pub const $name: Feature = Feature($v as u16);
            )*

            /// Every feature this crate knows, in number order.
            pub const ALL: &'static [Feature] = &[$(Feature::$name),*];

            /// The feature's name without the `VFIO_DEVICE_FEATURE_` prefix, if known.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Feature::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

features!(
    /// SR-IOV: the VF token shared by the PF and VF drivers (SET, on PFs).
    PCI_VF_TOKEN = vfio::VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, "VFIO_DEVICE_FEATURE_PCI_VF_TOKEN";
    /// Which migration states the device supports (GET).
    MIGRATION = vfio::VFIO_DEVICE_FEATURE_MIGRATION, "VFIO_DEVICE_FEATURE_MIGRATION";
    /// The migration state (GET, SET).
    MIG_DEVICE_STATE = vfio::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
        "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE";
    /// Allow a low-power state (SET).
    LOW_POWER_ENTRY = vfio::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
        "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY";
    /// Allow a low-power state, with a wake-up eventfd (SET).
    LOW_POWER_ENTRY_WITH_WAKEUP = vfio::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
        "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP";
    /// Leave and disallow low-power states (SET).
    LOW_POWER_EXIT = vfio::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
        "VFIO_DEVICE_FEATURE_LOW_POWER_EXIT";
    /// Start logging the device's DMA writes (SET).
    DMA_LOGGING_START = vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        "VFIO_DEVICE_FEATURE_DMA_LOGGING_START";
    /// Stop logging DMA writes (SET).
    DMA_LOGGING_STOP = vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
        "VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP";
    /// Read and clear the DMA write log (GET).
    DMA_LOGGING_REPORT = vfio::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        "VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT";
    /// The estimated size of the migration data (GET; Linux 6.2).
    MIG_DATA_SIZE = VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE";
    /// Bus mastering through the kernel rather than config space (SET; Linux 6.7, CDX
    /// devices).
    BUS_MASTER = VFIO_DEVICE_FEATURE_BUS_MASTER, "VFIO_DEVICE_FEATURE_BUS_MASTER";
);

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "VFIO_DEVICE_FEATURE_{n}"),
            None => write!(f, "VFIO_DEVICE_FEATURE {}", self.0),
        }
    }
}

bitflags::bitflags! {
    /// What a device supports for a feature.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct FeatureAccess: u32 {
        /// `VFIO_DEVICE_FEATURE_GET`.
        const GET = vfio::VFIO_DEVICE_FEATURE_GET;
        /// `VFIO_DEVICE_FEATURE_SET`.
        const SET = vfio::VFIO_DEVICE_FEATURE_SET;
    }
}

bitflags::bitflags! {
    /// `vfio_device_feature_migration.flags`: the migration states a device supports.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct MigrationFlags: u64 {
        /// `VFIO_MIGRATION_STOP_COPY`: STOP, STOP_COPY and RESUMING.
        const STOP_COPY = vfio::VFIO_MIGRATION_STOP_COPY;
        /// `VFIO_MIGRATION_P2P`: RUNNING_P2P as well.
        const P2P = vfio::VFIO_MIGRATION_P2P;
        /// `VFIO_MIGRATION_PRE_COPY` (Linux 6.2): PRE_COPY and PRE_COPY_P2P.
        const PRE_COPY = vfio::VFIO_MIGRATION_PRE_COPY;
        // Flags a newer kernel may add are kept.
        const _ = !0;
    }
}

/// A migration state (`enum vfio_device_mig_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MigState(pub u32);

impl MigState {
    /// `VFIO_DEVICE_STATE_ERROR`: failed; only a reset leaves it.
    pub const ERROR: MigState = MigState(vfio::VFIO_DEVICE_STATE_ERROR);
    /// `VFIO_DEVICE_STATE_STOP`.
    pub const STOP: MigState = MigState(vfio::VFIO_DEVICE_STATE_STOP);
    /// `VFIO_DEVICE_STATE_RUNNING`.
    pub const RUNNING: MigState = MigState(vfio::VFIO_DEVICE_STATE_RUNNING);
    /// `VFIO_DEVICE_STATE_STOP_COPY`: stopped, state readable from the data fd.
    pub const STOP_COPY: MigState = MigState(vfio::VFIO_DEVICE_STATE_STOP_COPY);
    /// `VFIO_DEVICE_STATE_RESUMING`: stopped, state written through the data fd.
    pub const RESUMING: MigState = MigState(vfio::VFIO_DEVICE_STATE_RESUMING);
    /// `VFIO_DEVICE_STATE_RUNNING_P2P`.
    pub const RUNNING_P2P: MigState = MigState(vfio::VFIO_DEVICE_STATE_RUNNING_P2P);
    /// `VFIO_DEVICE_STATE_PRE_COPY` (Linux 6.2).
    pub const PRE_COPY: MigState = MigState(vfio::VFIO_DEVICE_STATE_PRE_COPY);
    /// `VFIO_DEVICE_STATE_PRE_COPY_P2P` (Linux 6.2).
    pub const PRE_COPY_P2P: MigState = MigState(vfio::VFIO_DEVICE_STATE_PRE_COPY_P2P);
}

fn not_supported(device: &Device, op: &'static str, feature: Feature, errno: Errno) -> Error {
    Error::NotSupported {
        op,
        object: device.object().into(),
        reason: format!("the device or kernel does not support {feature}").into(),
        errno,
    }
}

impl Device {
    fn feature_call(
        &self,
        op: &'static str,
        feature: Feature,
        access: FeatureAccess,
        data: &mut [u8],
    ) -> Result<()> {
        self.feature_result(
            op,
            feature,
            self.fd()
                .feature(access.bits() | u32::from(feature.0), data),
        )
    }

    fn feature_result<T>(
        &self,
        op: &'static str,
        feature: Feature,
        r: std::result::Result<T, Failed>,
    ) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            // ENOTTY: the feature is unknown to the device (or VFIO_DEVICE_FEATURE to the
            // kernel).
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(not_supported(self, op, feature, Errno::ENOTTY)),
            Err(f) => Err(f.on(self.object())),
        }
    }

    /// Which of GET and SET the device supports for `feature`, or `None` when it does not
    /// support the feature at all (`VFIO_DEVICE_FEATURE` with `VFIO_DEVICE_FEATURE_PROBE`;
    /// no side effects).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] for errors other than "not supported".
    #[doc(alias = "VFIO_DEVICE_FEATURE_PROBE")]
    #[doc(alias = "VFIO_DEVICE_FEATURE")]
    pub fn feature_probe(&self, feature: Feature) -> Result<Option<FeatureAccess>> {
        let mut access = FeatureAccess::empty();
        for op in [FeatureAccess::GET, FeatureAccess::SET] {
            let flags = vfio::VFIO_DEVICE_FEATURE_PROBE | op.bits() | u32::from(feature.0);
            match self.fd().feature(flags, &mut []) {
                Ok(()) => access |= op,
                // "GET or SET not supported by this feature".
                Err(Failed {
                    cause: Cause::Errno(Errno::EINVAL),
                    ..
                }) => {}
                Err(Failed {
                    cause: Cause::Errno(Errno::ENOTTY),
                    ..
                }) => return Ok(None),
                Err(f) => return Err(f.on(self.object())),
            }
        }
        Ok(Some(access))
    }

    /// [`Device::feature_probe`] for every [`Feature::ALL`]: the supported ones with their
    /// access.
    ///
    /// # Errors
    ///
    /// As [`Device::feature_probe`].
    pub fn features(&self) -> Result<Vec<(Feature, FeatureAccess)>> {
        let mut out = Vec::new();
        for &f in Feature::ALL {
            if let Some(access) = self.feature_probe(f)? {
                out.push((f, access));
            }
        }
        Ok(out)
    }

    /// `VFIO_DEVICE_FEATURE_PCI_VF_TOKEN`: sets the VF token (a UUID) of an SR-IOV PF, which
    /// its VFs' users must then present.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) on a device that is not an SR-IOV PF bound with
    /// `enable_sriov`; [`Error::Ioctl`] otherwise.
    #[doc(alias = "VFIO_DEVICE_FEATURE_PCI_VF_TOKEN")]
    pub fn set_vf_token(&self, uuid: [u8; 16]) -> Result<()> {
        let mut data = uuid;
        self.feature_call(
            "set_vf_token",
            Feature::PCI_VF_TOKEN,
            FeatureAccess::SET,
            &mut data,
        )
    }

    /// `VFIO_DEVICE_FEATURE_MIGRATION`: the migration states the device supports.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without migration support.
    #[doc(alias = "VFIO_DEVICE_FEATURE_MIGRATION")]
    pub fn migration_flags(&self) -> Result<MigrationFlags> {
        let mut data = [0u8; 8];
        self.feature_call(
            "migration_flags",
            Feature::MIGRATION,
            FeatureAccess::GET,
            &mut data,
        )?;
        Ok(MigrationFlags::from_bits_retain(u64::from_ne_bytes(data)))
    }

    /// `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` GET: the device's migration state.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without migration support.
    #[doc(alias = "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE")]
    pub fn mig_state(&self) -> Result<MigState> {
        let mut data = [0u8; 8];
        self.feature_call(
            "mig_state",
            Feature::MIG_DEVICE_STATE,
            FeatureAccess::GET,
            &mut data,
        )?;
        Ok(MigState(u32::from_ne_bytes([
            data[0], data[1], data[2], data[3],
        ])))
    }

    /// `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET: moves the device to `state`; returns the
    /// data transfer fd when the transition opens one (into STOP_COPY, RESUMING, PRE_COPY).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without migration support;
    /// [`Error::Ioctl`] for a refused transition.
    #[doc(alias = "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE")]
    pub fn set_mig_state(&self, state: MigState) -> Result<Option<OwnedFd>> {
        let r = self.fd().feature_set_mig_state(state.0);
        Ok(self
            .feature_result("set_mig_state", Feature::MIG_DEVICE_STATE, r)?
            .map(OwnedFd::from))
    }

    /// `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`: the estimated bytes of migration data in
    /// STOP_COPY.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device or kernel without it.
    #[doc(alias = "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE")]
    pub fn mig_data_size(&self) -> Result<u64> {
        let mut data = [0u8; 8];
        self.feature_call(
            "mig_data_size",
            Feature::MIG_DATA_SIZE,
            FeatureAccess::GET,
            &mut data,
        )?;
        Ok(u64::from_ne_bytes(data))
    }

    /// `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY`: lets the device enter a low-power state (D3)
    /// while unused, until [`Device::low_power_exit`].
    ///
    /// vfio-pci zaps the BAR mappings meanwhile and answers accesses through them with
    /// `SIGBUS`, so the entry is refused while a [`Region`](crate::mmio::Region) of the device
    /// (through any of its fds) has a mapped BAR, and after it no mapped BAR region can be
    /// made until [`Device::low_power_exit`] succeeds. Regions made with
    /// [`MapOptions::never_map`](crate::mmio::MapOptions::never_map) use `pread`/`pwrite`,
    /// which wake the device.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EBUSY`) while a mapped BAR region exists;
    /// [`Error::NotSupported`] (`ENOTTY`) before Linux 6.0 or for non-PCI devices;
    /// [`Error::Ioctl`] (`EINVAL`) when already allowed, or the device cannot.
    #[doc(alias = "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY")]
    pub fn low_power_entry(&self) -> Result<()> {
        const OP: &str = "low_power_entry";
        self.0
            .shared
            .decoding
            .enter_low_power(OP, &|| self.object(), || {
                self.feature_call(OP, Feature::LOW_POWER_ENTRY, FeatureAccess::SET, &mut [])
            })
    }

    /// `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP`: as [`Device::low_power_entry`], and
    /// `wakeup` (an eventfd) is signalled when the device asks to wake up (PME).
    ///
    /// # Errors
    ///
    /// As [`Device::low_power_entry`] (`EBUSY` while a mapped BAR region exists);
    /// [`Error::Ioctl`] (`EINVAL`) when `wakeup` is not an eventfd.
    #[doc(alias = "VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP")]
    pub fn low_power_entry_with_wakeup(&self, wakeup: BorrowedFd<'_>) -> Result<()> {
        const OP: &str = "low_power_entry_with_wakeup";
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&wakeup.as_raw_fd().to_ne_bytes());
        self.0
            .shared
            .decoding
            .enter_low_power(OP, &|| self.object(), || {
                self.feature_call(
                    OP,
                    Feature::LOW_POWER_ENTRY_WITH_WAKEUP,
                    FeatureAccess::SET,
                    &mut data,
                )
            })
    }

    /// `VFIO_DEVICE_FEATURE_LOW_POWER_EXIT`: wakes the device and disallows low power again;
    /// mapped BAR regions can be made again afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) before Linux 6.0 or for non-PCI devices.
    #[doc(alias = "VFIO_DEVICE_FEATURE_LOW_POWER_EXIT")]
    pub fn low_power_exit(&self) -> Result<()> {
        self.0.shared.decoding.exit_low_power(|| {
            self.feature_call(
                "low_power_exit",
                Feature::LOW_POWER_EXIT,
                FeatureAccess::SET,
                &mut [],
            )
        })
    }

    /// `VFIO_DEVICE_FEATURE_BUS_MASTER`: turns bus mastering on or off through the kernel
    /// (Linux 6.7, devices whose bus has no config space to do it in, such as CDX). For PCI,
    /// use [`PciConfig::set_bus_master`](crate::pci::config::PciConfig::set_bus_master).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) where the kernel or device lacks it.
    #[doc(alias = "VFIO_DEVICE_FEATURE_BUS_MASTER")]
    pub fn set_bus_master_feature(&self, enable: bool) -> Result<()> {
        // VFIO_DEVICE_FEATURE_SET_MASTER = 1, VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0.
        let mut data = u32::from(enable).to_ne_bytes();
        self.feature_call(
            "set_bus_master_feature",
            Feature::BUS_MASTER,
            FeatureAccess::SET,
            &mut data,
        )
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_START`: starts tracking the device's DMA writes to the
    /// IOVA `ranges` (`(iova, length)`) at about `page_size` granularity; returns the page
    /// size the device chose.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without DMA logging; [`Error::Ioctl`]
    /// otherwise (`EINVAL` for bad ranges, `EBUSY` when already logging).
    #[doc(alias = "VFIO_DEVICE_FEATURE_DMA_LOGGING_START")]
    pub fn dma_logging_start(&self, page_size: u64, ranges: &[(u64, u64)]) -> Result<u64> {
        let r = self.fd().feature_dma_logging_start(page_size, ranges);
        self.feature_result("dma_logging_start", Feature::DMA_LOGGING_START, r)
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP`.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENOTTY`) for a device without DMA logging.
    #[doc(alias = "VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP")]
    pub fn dma_logging_stop(&self) -> Result<()> {
        self.feature_call(
            "dma_logging_stop",
            Feature::DMA_LOGGING_STOP,
            FeatureAccess::SET,
            &mut [],
        )
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`: which `page_size` pages of
    /// `[iova, iova + length)` the device wrote since the last report (bit `i` of the result,
    /// word `i / 64`, is page `iova + i * page_size`); clears those bits in the device's log.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero length or a page size that is not a power of two;
    /// [`Error::OutOfMemory`] when the bitmap (one bit per page, up to 2 GiB) cannot be
    /// allocated; [`Error::NotSupported`] (`ENOTTY`) for a device without DMA logging.
    #[doc(alias = "VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT")]
    pub fn dma_logging_report(&self, iova: u64, length: u64, page_size: u64) -> Result<Vec<u64>> {
        const OP: &str = "dma_logging_report";
        let pages = (page_size.is_power_of_two() && length > 0).then(|| length.div_ceil(page_size));
        if pages.is_none_or(|p| p > 1 << 34) {
            return Err(Error::invalid(
                OP,
                self.object(),
                format!(
                    "length {length:#x} at page size {page_size:#x}: need a non-zero length, a \
                     power-of-two page size and at most 2^34 pages"
                ),
            ));
        }
        let words = dma_logging_bitmap_words(length, page_size).unwrap_or(0);
        // Up to 2 GiB sized by the caller: an allocation failure is an error, not an abort. One
        // spare word, as `feature_dma_logging_report` asks.
        let mut bitmap = crate::error::try_vec(words + 1, 0u64, OP, self.object())?;
        let r = self
            .fd()
            .feature_dma_logging_report(iova, length, page_size, &mut bitmap);
        self.feature_result(OP, Feature::DMA_LOGGING_REPORT, r)?;
        bitmap.truncate(words);
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_numbers_match_the_header() {
        assert_eq!(Feature::ALL.len(), 11);
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(usize::from(f.0), i, "{f}");
        }
        assert_eq!(
            Feature::BUS_MASTER.to_string(),
            "VFIO_DEVICE_FEATURE_BUS_MASTER"
        );
        assert_eq!(Feature(99).to_string(), "VFIO_DEVICE_FEATURE 99");
        assert_eq!(Feature(99).name(), None);
    }
}
