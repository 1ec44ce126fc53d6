//! What a container can be asked for: [`Extension`]s (`VFIO_CHECK_EXTENSION`), the IOMMU models
//! among them ([`IommuType`], `VFIO_SET_IOMMU`), and the set a host offers ([`Extensions`]).

use std::fmt;

#[cfg(doc)]
use super::Container;
use crate::uapi::vfio;

/// A VFIO extension (`VFIO_CHECK_EXTENSION` argument): an IOMMU model or an optional feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Extension {
    /// `VFIO_TYPE1_IOMMU`: the original type1 IOMMU (unmaps may split mappings).
    Type1Iommu,
    /// `VFIO_SPAPR_TCE_IOMMU`: POWER's TCE IOMMU, v1.
    SpaprTceIommu,
    /// `VFIO_TYPE1v2_IOMMU`: type1 with strict unmap semantics; the one to use on x86 and Arm.
    Type1v2Iommu,
    /// `VFIO_DMA_CC_IOMMU`: DMA is cache coherent for all groups in the container.
    DmaCcIommu,
    /// `VFIO_EEH`: POWER's Enhanced Error Handling is available.
    Eeh,
    /// `VFIO_TYPE1_NESTING_IOMMU`: type1 with nesting (deprecated by the kernel).
    Type1NestingIommu,
    /// `VFIO_SPAPR_TCE_v2_IOMMU`: POWER's TCE IOMMU, v2 (dynamic DMA windows, pre-registration).
    SpaprTceV2Iommu,
    /// `VFIO_NOIOMMU_IOMMU`: no IOMMU at all (unsafe mode, needs the enable_unsafe_noiommu_mode
    /// module parameter); DMA addresses are physical.
    NoIommu,
    /// `VFIO_UNMAP_ALL`: type1 can unmap the whole address space in one call.
    UnmapAll,
    /// `VFIO_UPDATE_VADDR`: type1 can invalidate and update the process address of mappings.
    UpdateVaddr,
}

impl Extension {
    /// Every extension the header defines, in the order of their numbers.
    pub const ALL: [Extension; 10] = [
        Extension::Type1Iommu,
        Extension::SpaprTceIommu,
        Extension::Type1v2Iommu,
        Extension::DmaCcIommu,
        Extension::Eeh,
        Extension::Type1NestingIommu,
        Extension::SpaprTceV2Iommu,
        Extension::NoIommu,
        Extension::UnmapAll,
        Extension::UpdateVaddr,
    ];

    /// The kernel's number for this extension.
    pub const fn raw(self) -> u32 {
        match self {
            Extension::Type1Iommu => vfio::VFIO_TYPE1_IOMMU,
            Extension::SpaprTceIommu => vfio::VFIO_SPAPR_TCE_IOMMU,
            Extension::Type1v2Iommu => vfio::VFIO_TYPE1v2_IOMMU,
            Extension::DmaCcIommu => vfio::VFIO_DMA_CC_IOMMU,
            Extension::Eeh => vfio::VFIO_EEH,
            Extension::Type1NestingIommu => vfio::VFIO_TYPE1_NESTING_IOMMU,
            Extension::SpaprTceV2Iommu => vfio::VFIO_SPAPR_TCE_v2_IOMMU,
            Extension::NoIommu => vfio::VFIO_NOIOMMU_IOMMU,
            Extension::UnmapAll => vfio::VFIO_UNMAP_ALL,
            Extension::UpdateVaddr => vfio::VFIO_UPDATE_VADDR,
        }
    }

    /// The kernel's name for this extension.
    pub const fn name(self) -> &'static str {
        match self {
            Extension::Type1Iommu => "VFIO_TYPE1_IOMMU",
            Extension::SpaprTceIommu => "VFIO_SPAPR_TCE_IOMMU",
            Extension::Type1v2Iommu => "VFIO_TYPE1v2_IOMMU",
            Extension::DmaCcIommu => "VFIO_DMA_CC_IOMMU",
            Extension::Eeh => "VFIO_EEH",
            Extension::Type1NestingIommu => "VFIO_TYPE1_NESTING_IOMMU",
            Extension::SpaprTceV2Iommu => "VFIO_SPAPR_TCE_v2_IOMMU",
            Extension::NoIommu => "VFIO_NOIOMMU_IOMMU",
            Extension::UnmapAll => "VFIO_UNMAP_ALL",
            Extension::UpdateVaddr => "VFIO_UPDATE_VADDR",
        }
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IOMMU model that [`Container::set_iommu`] can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IommuType {
    /// `VFIO_TYPE1_IOMMU`. Prefer [`IommuType::Type1v2`]: v1 lets unmaps split mappings and,
    /// under iommufd's compatibility container, disables huge IOMMU pages.
    Type1,
    /// `VFIO_TYPE1v2_IOMMU`: the default on x86 and Arm.
    Type1v2,
    /// `VFIO_SPAPR_TCE_IOMMU` (POWER).
    SpaprTce,
    /// `VFIO_SPAPR_TCE_v2_IOMMU` (POWER).
    SpaprTceV2,
    /// `VFIO_NOIOMMU_IOMMU`: no isolation and no translation. Needs
    /// `vfio.enable_unsafe_noiommu_mode=1`; DMA addresses are physical addresses. Only
    /// [`Container::set_iommu_unchecked`] (`unsafe`) selects it.
    NoIommu,
}

impl IommuType {
    /// The extension that says whether the host supports this model.
    pub const fn extension(self) -> Extension {
        match self {
            IommuType::Type1 => Extension::Type1Iommu,
            IommuType::Type1v2 => Extension::Type1v2Iommu,
            IommuType::SpaprTce => Extension::SpaprTceIommu,
            IommuType::SpaprTceV2 => Extension::SpaprTceV2Iommu,
            IommuType::NoIommu => Extension::NoIommu,
        }
    }

    /// Whether this is one of the type1 models (which share the type1 map/unmap/info ioctls).
    pub const fn is_type1(self) -> bool {
        matches!(self, IommuType::Type1 | IommuType::Type1v2)
    }
}

/// Which extensions the host's VFIO reports, as answered by `VFIO_CHECK_EXTENSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    pub(super) supported: Vec<Extension>,
}

impl Extensions {
    /// Whether `extension` is supported.
    pub fn contains(&self, extension: Extension) -> bool {
        self.supported.contains(&extension)
    }

    /// The supported extensions, in the order of their numbers.
    pub fn iter(&self) -> impl Iterator<Item = Extension> + '_ {
        self.supported.iter().copied()
    }

    /// The IOMMU model a driver should pick on this host: type1v2, else SPAPR TCE v2, else type1,
    /// else SPAPR TCE v1. No-IOMMU mode is never picked automatically.
    pub fn preferred_iommu(&self) -> Option<IommuType> {
        [
            IommuType::Type1v2,
            IommuType::SpaprTceV2,
            IommuType::Type1,
            IommuType::SpaprTce,
        ]
        .into_iter()
        .find(|t| self.contains(t.extension()))
    }
}
