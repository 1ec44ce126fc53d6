//! [`IommuMode`]: the five IOMMU backends by the names the kernel's VFIO selftests give them,
//! and VFIO's no-IOMMU mode.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

#[cfg(doc)]
use super::DmaSpace;
use crate::container::IommuType;

/// An IOMMU backend, named as in the kernel's VFIO selftests (`iommu_mode`).
///
/// | mode | IOMMU context | device opened through | IOMMU model |
/// |---|---|---|---|
/// | `vfio_type1_iommu` | `/dev/vfio/vfio` | its group | `VFIO_TYPE1_IOMMU` |
/// | `vfio_type1v2_iommu` | `/dev/vfio/vfio` | its group | `VFIO_TYPE1v2_IOMMU` |
/// | `iommufd_compat_type1` | `/dev/iommu` as a container | its group | `VFIO_TYPE1_IOMMU` |
/// | `iommufd_compat_type1v2` | `/dev/iommu` as a container | its group | `VFIO_TYPE1v2_IOMMU` |
/// | `iommufd` | `/dev/iommu`, an IOAS | its cdev `/dev/vfio/devices/vfioN` | the IOAS |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IommuMode {
    /// A legacy container with the type1 model.
    VfioType1,
    /// A legacy container with the type1v2 model (what most drivers use today).
    VfioType1v2,
    /// iommufd's compatibility container with the type1 model.
    IommufdCompatType1,
    /// iommufd's compatibility container with the type1v2 model.
    IommufdCompatType1v2,
    /// iommufd proper: the device's cdev bound to an iommufd and attached to an IOAS.
    Iommufd,
    /// VFIO's no-IOMMU mode (`noiommu`): a container with `VFIO_NOIOMMU_IOMMU`, no
    /// translation; DMA addresses are physical addresses. Not one of the selftests' modes and not
    /// in [`IommuMode::ALL`]; only the `unsafe` [`DmaSpace::open_noiommu`] opens it
    /// ([`DmaSpace::open`] refuses it).
    NoIommu,
}

impl IommuMode {
    /// The five modes, legacy first.
    pub const ALL: [IommuMode; 5] = [
        IommuMode::VfioType1,
        IommuMode::VfioType1v2,
        IommuMode::IommufdCompatType1,
        IommuMode::IommufdCompatType1v2,
        IommuMode::Iommufd,
    ];

    /// The selftests' name: `vfio_type1_iommu`, `vfio_type1v2_iommu`, `iommufd_compat_type1`,
    /// `iommufd_compat_type1v2` or `iommufd`.
    pub const fn name(self) -> &'static str {
        match self {
            IommuMode::VfioType1 => "vfio_type1_iommu",
            IommuMode::VfioType1v2 => "vfio_type1v2_iommu",
            IommuMode::IommufdCompatType1 => "iommufd_compat_type1",
            IommuMode::IommufdCompatType1v2 => "iommufd_compat_type1v2",
            IommuMode::Iommufd => "iommufd",
            IommuMode::NoIommu => "noiommu",
        }
    }

    /// The container's IOMMU model, for the four container modes.
    pub const fn iommu_type(self) -> Option<IommuType> {
        match self {
            IommuMode::VfioType1 | IommuMode::IommufdCompatType1 => Some(IommuType::Type1),
            IommuMode::VfioType1v2 | IommuMode::IommufdCompatType1v2 => Some(IommuType::Type1v2),
            IommuMode::Iommufd | IommuMode::NoIommu => None,
        }
    }

    /// Whether the mode needs `/dev/iommu` (the compat containers and iommufd proper).
    pub const fn needs_iommufd(self) -> bool {
        !matches!(
            self,
            IommuMode::VfioType1 | IommuMode::VfioType1v2 | IommuMode::NoIommu
        )
    }

    /// Whether devices are opened through their group (the four container modes) rather than
    /// their cdev.
    pub const fn uses_groups(self) -> bool {
        !matches!(self, IommuMode::Iommufd)
    }

    /// The best mode this host offers, judged from its device nodes without opening anything:
    /// [`IommuMode::Iommufd`] when `/dev/iommu` and the VFIO cdev directory
    /// `/dev/vfio/devices` exist (Linux 6.6+ with `CONFIG_IOMMUFD` and
    /// `CONFIG_VFIO_DEVICE_CDEV`), else [`IommuMode::VfioType1v2`].
    pub fn best_available() -> IommuMode {
        Self::best_of(
            Path::new(crate::iommufd::IOMMUFD_PATH).exists(),
            Path::new("/dev/vfio/devices").is_dir(),
        )
    }

    fn best_of(iommufd: bool, cdevs: bool) -> IommuMode {
        if iommufd && cdevs {
            IommuMode::Iommufd
        } else {
            IommuMode::VfioType1v2
        }
    }
}

impl fmt::Display for IommuMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IommuMode {
    type Err = ParseIommuModeError;

    /// Parses a selftest name ([`IommuMode::name`]), or `noiommu`.
    ///
    /// # Errors
    ///
    /// [`ParseIommuModeError`], naming the input and the known names.
    fn from_str(s: &str) -> std::result::Result<IommuMode, ParseIommuModeError> {
        IommuMode::ALL
            .into_iter()
            .chain([IommuMode::NoIommu])
            .find(|m| m.name() == s)
            .ok_or_else(|| ParseIommuModeError { input: s.into() })
    }
}

/// A string that names no [`IommuMode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIommuModeError {
    input: String,
}

impl fmt::Display for ParseIommuModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown IOMMU mode {:?}: use one of ", self.input)?;
        for (i, mode) in IommuMode::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{mode}")?;
        }
        write!(f, " (or noiommu, VFIO's unsafe no-IOMMU mode)")
    }
}

impl std::error::Error for ParseIommuModeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_selftests() {
        let names: Vec<&str> = IommuMode::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "vfio_type1_iommu",
                "vfio_type1v2_iommu",
                "iommufd_compat_type1",
                "iommufd_compat_type1v2",
                "iommufd"
            ]
        );
        for mode in IommuMode::ALL {
            assert_eq!(mode.name().parse::<IommuMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.name());
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = "type1".parse::<IommuMode>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"type1\""), "{msg}");
        assert!(
            msg.contains("vfio_type1_iommu, vfio_type1v2_iommu"),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "iommufd_compat_type1v2, iommufd (or noiommu, VFIO's unsafe no-IOMMU mode)"
            ),
            "{msg}"
        );
        assert_eq!("noiommu".parse::<IommuMode>().unwrap(), IommuMode::NoIommu);
        assert!(!IommuMode::ALL.contains(&IommuMode::NoIommu));
    }

    #[test]
    fn mode_properties() {
        assert_eq!(IommuMode::VfioType1.iommu_type(), Some(IommuType::Type1));
        assert_eq!(
            IommuMode::IommufdCompatType1v2.iommu_type(),
            Some(IommuType::Type1v2)
        );
        assert_eq!(IommuMode::Iommufd.iommu_type(), None);
        assert!(!IommuMode::VfioType1v2.needs_iommufd());
        assert!(IommuMode::IommufdCompatType1.needs_iommufd());
        assert!(IommuMode::IommufdCompatType1.uses_groups());
        assert!(!IommuMode::Iommufd.uses_groups());
    }

    #[test]
    fn best_mode_needs_both_nodes() {
        assert_eq!(IommuMode::best_of(true, true), IommuMode::Iommufd);
        assert_eq!(IommuMode::best_of(true, false), IommuMode::VfioType1v2);
        assert_eq!(IommuMode::best_of(false, true), IommuMode::VfioType1v2);
        assert_eq!(IommuMode::best_of(false, false), IommuMode::VfioType1v2);
    }
}
