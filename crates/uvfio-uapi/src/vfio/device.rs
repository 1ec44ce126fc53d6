//! Device ioctls: info, regions, interrupts and reset, the fixed region and IRQ indices of
//! vfio-pci and vfio-ccw, PCI hot reset, and ioeventfd.

use super::*;

/// Argument of `VFIO_DEVICE_GET_INFO`; a capability chain may follow when `argsz` allows it.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_info {
    /// Size of the caller's buffer; the kernel raises it when the chain does not fit.
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*` bits.
    pub flags: u32,
    /// Number of regions (highest region index + 1).
    pub num_regions: u32,
    /// Number of IRQ indices (highest IRQ index + 1).
    pub num_irqs: u32,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Padding (6.4+); kernels before it end the struct at `cap_offset` (20 bytes) and may
    /// start the capability chain right there.
    pub pad: u32,
}
/// Device flag: the device supports `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// Device flag: vfio-pci device.
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// Device flag: vfio-platform device.
pub const VFIO_DEVICE_FLAGS_PLATFORM: u32 = 1 << 2;
/// Device flag: vfio-amba device.
pub const VFIO_DEVICE_FLAGS_AMBA: u32 = 1 << 3;
/// Device flag: vfio-ccw (s390 channel I/O) device.
pub const VFIO_DEVICE_FLAGS_CCW: u32 = 1 << 4;
/// Device flag: vfio-ap (s390 crypto adapter) device.
pub const VFIO_DEVICE_FLAGS_AP: u32 = 1 << 5;
/// Device flag: vfio-fsl-mc (NXP Management Complex) device.
pub const VFIO_DEVICE_FLAGS_FSL_MC: u32 = 1 << 6;
/// Device flag: the info reply may carry a capability chain.
pub const VFIO_DEVICE_FLAGS_CAPS: u32 = 1 << 7;
/// Device flag: vfio-cdx (AMD CDX bus) device.
pub const VFIO_DEVICE_FLAGS_CDX: u32 = 1 << 8;
/// Reads device information into a [`vfio_device_info`].
pub const VFIO_DEVICE_GET_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 7);

/// `device_api` string of a mediated vfio-pci device type.
pub const VFIO_DEVICE_API_PCI_STRING: &str = "vfio-pci";
/// `device_api` string of a mediated vfio-platform device type.
pub const VFIO_DEVICE_API_PLATFORM_STRING: &str = "vfio-platform";
/// `device_api` string of a mediated vfio-amba device type.
pub const VFIO_DEVICE_API_AMBA_STRING: &str = "vfio-amba";
/// `device_api` string of a mediated vfio-ccw device type.
pub const VFIO_DEVICE_API_CCW_STRING: &str = "vfio-ccw";
/// `device_api` string of a mediated vfio-ap device type.
pub const VFIO_DEVICE_API_AP_STRING: &str = "vfio-ap";

/// Device-info capability ID: s390 zPCI base data (layout in `<linux/vfio_zdev.h>`).
pub const VFIO_DEVICE_INFO_CAP_ZPCI_BASE: u16 = 1;
/// Device-info capability ID: s390 zPCI function group data.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_GROUP: u16 = 2;
/// Device-info capability ID: s390 zPCI utility string.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_UTIL: u16 = 3;
/// Device-info capability ID: s390 zPCI function path.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_PFIP: u16 = 4;
/// Device-info capability ID: the PCIe AtomicOp completer sizes the root port supports.
pub const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP: u16 = 5;

/// Capability [`VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_info_cap_pci_atomic_comp {
    /// The capability header.
    pub header: vfio_info_cap_header,
    /// `VFIO_PCI_ATOMIC_COMP*` bits.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
}
/// AtomicOp completion of 32-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP32: u32 = 1 << 0;
/// AtomicOp completion of 64-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP64: u32 = 1 << 1;
/// AtomicOp completion of 128-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP128: u32 = 1 << 2;

// ---------------------------------------------------------------------------------------------
// Device ioctls: regions
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_GET_REGION_INFO`; a capability chain may follow when `argsz` allows.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info {
    /// Size of the caller's buffer; the kernel raises it when the chain does not fit.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*` bits.
    pub flags: u32,
    /// Region index to describe, set by the caller.
    pub index: u32,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Size of the region in bytes (0 if not implemented).
    pub size: u64,
    /// Offset of the region within the device fd, for pread/pwrite/mmap.
    pub offset: u64,
}
/// Region flag: the region can be read.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
/// Region flag: the region can be written.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
/// Region flag: the region can be mmapped.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
/// Region flag: the info reply may carry a capability chain.
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;
/// Reads the description of one region into a [`vfio_region_info`].
pub const VFIO_DEVICE_GET_REGION_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 8);

/// Region capability ID: list of the mmappable areas of the region.
pub const VFIO_REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;

/// One mmappable area of a region, as listed by the sparse-mmap capability.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_sparse_mmap_area {
    /// Offset of the area from the start of the region.
    pub offset: u64,
    /// Size of the area in bytes.
    pub size: u64,
}

/// Sparse-mmap region capability (version 1), header part.
///
/// In memory it is followed by `nr_areas` [`vfio_region_sparse_mmap_area`] (C: `areas[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_sparse_mmap {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_SPARSE_MMAP`].
    pub header: vfio_info_cap_header,
    /// Number of areas that follow.
    pub nr_areas: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Zero-length stand-in for C's `areas[]`: adds no size, only C's alignment.
    pub areas: [vfio_region_sparse_mmap_area; 0],
}

/// Region capability ID: device-specific region type and subtype.
pub const VFIO_REGION_INFO_CAP_TYPE: u16 = 2;

/// Region type capability (version 1).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_type {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_TYPE`].
    pub header: vfio_info_cap_header,
    /// Region type (`VFIO_REGION_TYPE_*`), global per bus driver.
    pub r#type: u32,
    /// Region subtype, meaningful for the given type.
    pub subtype: u32,
}

/// Region type bit: the low 16 bits hold a PCI vendor ID.
pub const VFIO_REGION_TYPE_PCI_VENDOR_TYPE: u32 = 1 << 31;
/// Mask of the PCI vendor ID in a vendor region type.
pub const VFIO_REGION_TYPE_PCI_VENDOR_MASK: u32 = 0xffff;
/// Region type: graphics.
pub const VFIO_REGION_TYPE_GFX: u32 = 1;
/// Region type: s390 channel I/O.
pub const VFIO_REGION_TYPE_CCW: u32 = 2;
/// Region type: the removed v1 migration region.
pub const VFIO_REGION_TYPE_MIGRATION_DEPRECATED: u32 = 3;

/// Intel (8086) subtype: IGD OpRegion.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION: u32 = 1;
/// Intel (8086) subtype: IGD host bridge config space.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG: u32 = 2;
/// Intel (8086) subtype: IGD LPC bridge config space.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG: u32 = 3;
/// NVIDIA (10de) subtype: NVLink2 GPU RAM (no longer provided).
pub const VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM: u32 = 1;
/// IBM (1014) subtype: NPU NVLink2 ATSD register (no longer provided).
pub const VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD: u32 = 1;
/// Graphics subtype: EDID region ([`vfio_region_gfx_edid`]).
pub const VFIO_REGION_SUBTYPE_GFX_EDID: u32 = 1;

/// Layout of the graphics EDID region.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_gfx_edid {
    /// Offset of the EDID blob from the region start (read-only).
    pub edid_offset: u32,
    /// Largest EDID blob the region can hold (read-only).
    pub edid_max_size: u32,
    /// Size of the current EDID blob.
    pub edid_size: u32,
    /// Maximum display width, 0 for no limit (read-only).
    pub max_xres: u32,
    /// Maximum display height, 0 for no limit (read-only).
    pub max_yres: u32,
    /// Display link state, `VFIO_DEVICE_GFX_LINK_STATE_*`.
    pub link_state: u32,
}
/// EDID link state: monitor on.
pub const VFIO_DEVICE_GFX_LINK_STATE_UP: u32 = 1;
/// EDID link state: monitor off.
pub const VFIO_DEVICE_GFX_LINK_STATE_DOWN: u32 = 2;

/// Channel I/O subtype: asynchronous command region.
pub const VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD: u32 = 1;
/// Channel I/O subtype: subchannel information block region.
pub const VFIO_REGION_SUBTYPE_CCW_SCHIB: u32 = 2;
/// Channel I/O subtype: channel report word region.
pub const VFIO_REGION_SUBTYPE_CCW_CRW: u32 = 3;

/// Migration subtype of the removed v1 migration region.
pub const VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED: u32 = 1;

/// Header of the removed v1 migration region.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_migration_info {
    /// `VFIO_DEVICE_STATE_V1_*` bits.
    pub device_state: u32,
    /// Reserved.
    pub reserved: u32,
    /// Bytes of migration data still pending.
    pub pending_bytes: u64,
    /// Offset of the data window within the region.
    pub data_offset: u64,
    /// Size of the data in the window.
    pub data_size: u64,
}
/// v1 migration state: stopped.
pub const VFIO_DEVICE_STATE_V1_STOP: u32 = 0;
/// v1 migration state bit: running.
pub const VFIO_DEVICE_STATE_V1_RUNNING: u32 = 1 << 0;
/// v1 migration state bit: saving.
pub const VFIO_DEVICE_STATE_V1_SAVING: u32 = 1 << 1;
/// v1 migration state bit: resuming.
pub const VFIO_DEVICE_STATE_V1_RESUMING: u32 = 1 << 2;
/// Mask of all v1 migration state bits.
pub const VFIO_DEVICE_STATE_MASK: u32 =
    VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;

/// Whether a v1 migration state is valid: resuming may not be combined with other bits.
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_VALID(state: u32) -> bool {
    if state & VFIO_DEVICE_STATE_V1_RESUMING != 0 {
        state & VFIO_DEVICE_STATE_MASK == VFIO_DEVICE_STATE_V1_RESUMING
    } else {
        true
    }
}

/// Whether a v1 migration state is the error state (saving and resuming both set).
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_IS_ERROR(state: u32) -> bool {
    state & VFIO_DEVICE_STATE_MASK == VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
}

/// Replaces the state bits of a v1 migration state with the error state, keeping other bits.
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_SET_ERROR(state: u32) -> u32 {
    (state & !VFIO_DEVICE_STATE_MASK) | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
}

/// Region capability ID: the MSI-X table of this BAR may be mmapped.
pub const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: u16 = 3;

/// Region capability ID: NVLink2 GPU RAM system address (no longer provided).
pub const VFIO_REGION_INFO_CAP_NVLINK2_SSATGT: u16 = 4;

/// NVLink2 target address capability (no longer provided).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_nvlink2_ssatgt {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_NVLINK2_SSATGT`].
    pub header: vfio_info_cap_header,
    /// Compressed system address of the GPU RAM.
    pub tgt: u64,
}

/// Region capability ID: NVLink2 link speed (no longer provided).
pub const VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD: u16 = 5;

/// NVLink2 link speed capability (no longer provided).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_nvlink2_lnkspd {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD`].
    pub header: vfio_info_cap_header,
    /// Link speed taken from the device tree.
    pub link_speed: u32,
    /// Padding.
    pub __pad: u32,
}

// ---------------------------------------------------------------------------------------------
// Device ioctls: interrupts and reset
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_GET_IRQ_INFO`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_irq_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_IRQ_INFO_*` bits.
    pub flags: u32,
    /// IRQ index to describe, set by the caller.
    pub index: u32,
    /// Number of interrupts (vectors) in this index.
    pub count: u32,
}
/// IRQ flag: the index can signal through an eventfd.
pub const VFIO_IRQ_INFO_EVENTFD: u32 = 1 << 0;
/// IRQ flag: the index supports the mask and unmask actions.
pub const VFIO_IRQ_INFO_MASKABLE: u32 = 1 << 1;
/// IRQ flag: the line is masked after each signal until unmasked (level-triggered).
pub const VFIO_IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
/// IRQ flag: the set of enabled vectors cannot grow without disabling the index first.
pub const VFIO_IRQ_INFO_NORESIZE: u32 = 1 << 3;
/// Reads the description of one IRQ index into a [`vfio_irq_info`].
pub const VFIO_DEVICE_GET_IRQ_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 9);

/// Argument of `VFIO_DEVICE_SET_IRQS`, header part.
///
/// In memory it is followed by `count` data items (C: `__u8 data[]`): nothing for
/// `DATA_NONE`, one `u8` per vector for `DATA_BOOL`, one `i32` eventfd per vector for
/// `DATA_EVENTFD`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_irq_set {
    /// Size of the struct plus its data.
    pub argsz: u32,
    /// One `VFIO_IRQ_SET_DATA_*` bit and one `VFIO_IRQ_SET_ACTION_*` bit.
    pub flags: u32,
    /// IRQ index the action applies to.
    pub index: u32,
    /// First vector (subindex) of the range.
    pub start: u32,
    /// Number of vectors in the range.
    pub count: u32,
}
/// IRQ-set data: none; act on the whole range.
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// IRQ-set data: one `u8` boolean per vector.
pub const VFIO_IRQ_SET_DATA_BOOL: u32 = 1 << 1;
/// IRQ-set data: one `i32` eventfd per vector, -1 to unassign.
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// IRQ-set action: mask the interrupts.
pub const VFIO_IRQ_SET_ACTION_MASK: u32 = 1 << 3;
/// IRQ-set action: unmask the interrupts.
pub const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
/// IRQ-set action: trigger (signal) the interrupts, or bind their eventfds.
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// Configures signalling, masking or unmasking of interrupts with a [`vfio_irq_set`].
pub const VFIO_DEVICE_SET_IRQS: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 10);
/// Mask of the `VFIO_IRQ_SET_DATA_*` bits.
pub const VFIO_IRQ_SET_DATA_TYPE_MASK: u32 =
    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
/// Mask of the `VFIO_IRQ_SET_ACTION_*` bits.
pub const VFIO_IRQ_SET_ACTION_TYPE_MASK: u32 =
    VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;
/// Resets the device.
pub const VFIO_DEVICE_RESET: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 11);

// ---------------------------------------------------------------------------------------------
// Fixed region and IRQ indices of vfio-pci and vfio-ccw
// ---------------------------------------------------------------------------------------------

/// vfio-pci region index of BAR 0.
pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
/// vfio-pci region index of BAR 1.
pub const VFIO_PCI_BAR1_REGION_INDEX: u32 = 1;
/// vfio-pci region index of BAR 2.
pub const VFIO_PCI_BAR2_REGION_INDEX: u32 = 2;
/// vfio-pci region index of BAR 3.
pub const VFIO_PCI_BAR3_REGION_INDEX: u32 = 3;
/// vfio-pci region index of BAR 4.
pub const VFIO_PCI_BAR4_REGION_INDEX: u32 = 4;
/// vfio-pci region index of BAR 5.
pub const VFIO_PCI_BAR5_REGION_INDEX: u32 = 5;
/// vfio-pci region index of the expansion ROM.
pub const VFIO_PCI_ROM_REGION_INDEX: u32 = 6;
/// vfio-pci region index of PCI config space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// vfio-pci region index of the legacy VGA ranges.
pub const VFIO_PCI_VGA_REGION_INDEX: u32 = 8;
/// Number of fixed vfio-pci regions; higher indices are described by a type capability.
pub const VFIO_PCI_NUM_REGIONS: u32 = 9;

/// vfio-pci IRQ index of legacy INTx.
pub const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
/// vfio-pci IRQ index of MSI.
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
/// vfio-pci IRQ index of MSI-X.
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
/// vfio-pci IRQ index of the AER error notification.
pub const VFIO_PCI_ERR_IRQ_INDEX: u32 = 3;
/// vfio-pci IRQ index of the device-release request notification.
pub const VFIO_PCI_REQ_IRQ_INDEX: u32 = 4;
/// Number of vfio-pci IRQ indices.
pub const VFIO_PCI_NUM_IRQS: u32 = 5;

/// vfio-ccw region index of the I/O region.
pub const VFIO_CCW_CONFIG_REGION_INDEX: u32 = 0;
/// Number of fixed vfio-ccw regions.
pub const VFIO_CCW_NUM_REGIONS: u32 = 1;

/// vfio-ccw IRQ index of I/O completion.
pub const VFIO_CCW_IO_IRQ_INDEX: u32 = 0;
/// vfio-ccw IRQ index of channel report words.
pub const VFIO_CCW_CRW_IRQ_INDEX: u32 = 1;
/// vfio-ccw IRQ index of the device-release request notification.
pub const VFIO_CCW_REQ_IRQ_INDEX: u32 = 2;
/// Number of vfio-ccw IRQ indices.
pub const VFIO_CCW_NUM_IRQS: u32 = 3;

/// vfio-ap IRQ index of the device-release request notification.
pub const VFIO_AP_REQ_IRQ_INDEX: u32 = 0;
/// Number of vfio-ap IRQ indices.
pub const VFIO_AP_NUM_IRQS: u32 = 1;

// ---------------------------------------------------------------------------------------------
// PCI hot reset
// ---------------------------------------------------------------------------------------------

/// One device affected by a PCI hot reset.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_dependent_device {
    /// IOMMU group of the device; with [`VFIO_PCI_HOT_RESET_FLAG_DEV_ID`] in the info's flags
    /// (a cdev device), its iommufd device id instead, or [`VFIO_PCI_DEVID_NOT_OWNED`]. (C: an
    /// anonymous union of `group_id` and `devid`, both `__u32`.)
    pub group_id: u32,
    /// PCI segment (domain).
    pub segment: u16,
    /// PCI bus number.
    pub bus: u8,
    /// PCI device and function number.
    pub devfn: u8,
}

/// Argument of `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, header part.
///
/// In memory it is followed by `count` [`vfio_pci_dependent_device`] (C: `devices[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_hot_reset_info {
    /// Size of the struct plus room for the devices.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Number of dependent devices (filled in even when they do not fit).
    pub count: u32,
}
/// [`vfio_pci_dependent_device::group_id`] as a device id: an affected device this iommufd
/// does not have open (so a hot reset is refused).
pub const VFIO_PCI_DEVID_NOT_OWNED: u32 = u32::MAX;
/// [`vfio_pci_dependent_device::group_id`] as a device id: an affected device this iommufd
/// owns that has no id yet (opened but not bound).
pub const VFIO_PCI_DEVID_OWNED: u32 = 0;
/// Hot reset info flag: the entries carry device ids (the device was opened through its cdev).
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID: u32 = 1 << 0;
/// Hot reset info flag: every affected device is owned by the caller's iommufd.
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED: u32 = 1 << 1;
/// Lists the devices a PCI hot reset of this device would affect.
pub const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: IoctlRequest =
    request_none(VFIO_TYPE, VFIO_BASE + 12);

/// Argument of `VFIO_DEVICE_PCI_HOT_RESET`, header part.
///
/// In memory it is followed by `count` `i32` group fds (C: `group_fds[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_hot_reset {
    /// Size of the struct plus its group fds.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Number of group fds that follow.
    pub count: u32,
}
/// Performs a PCI hot reset, proving ownership of every affected group by fd.
pub const VFIO_DEVICE_PCI_HOT_RESET: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 13);

// ---------------------------------------------------------------------------------------------
// ioeventfd
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_IOEVENTFD`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_ioeventfd {
    /// Size of this struct.
    pub argsz: u32,
    /// Exactly one `VFIO_DEVICE_IOEVENTFD_{8,16,32,64}` width bit.
    pub flags: u32,
    /// Device fd offset to write to.
    pub offset: u64,
    /// Value to write.
    pub data: u64,
    /// Eventfd that triggers the write, -1 to remove it.
    pub fd: i32,
    /// Reserved, zero (6.x names the former implicit padding).
    pub reserved: u32,
}
/// ioeventfd width: 1-byte write.
pub const VFIO_DEVICE_IOEVENTFD_8: u32 = 1 << 0;
/// ioeventfd width: 2-byte write.
pub const VFIO_DEVICE_IOEVENTFD_16: u32 = 1 << 1;
/// ioeventfd width: 4-byte write.
pub const VFIO_DEVICE_IOEVENTFD_32: u32 = 1 << 2;
/// ioeventfd width: 8-byte write.
pub const VFIO_DEVICE_IOEVENTFD_64: u32 = 1 << 3;
/// Mask of the ioeventfd width bits.
pub const VFIO_DEVICE_IOEVENTFD_SIZE_MASK: u32 = 0xf;
/// Makes the kernel write `data` at `offset` whenever the eventfd fires.
pub const VFIO_DEVICE_IOEVENTFD: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 16);
