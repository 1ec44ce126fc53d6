//! The sPAPR TCE IOMMU backend (POWER): info, EEH, memory registration, DMA windows.

use super::*;

/// Dynamic DMA window capabilities of an sPAPR TCE IOMMU.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_ddw_info {
    /// Bitmap of supported IOMMU page sizes.
    pub pgsizes: u64,
    /// Most dynamic windows the platform can create.
    pub max_dynamic_windows_supported: u32,
    /// Most levels a multi-level TCE table may have.
    pub levels: u32,
}

/// Argument of `VFIO_IOMMU_SPAPR_TCE_GET_INFO`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_IOMMU_SPAPR_INFO_*` bits.
    pub flags: u32,
    /// PCI bus address where the default 32-bit DMA window starts.
    pub dma32_window_start: u32,
    /// Size of the default 32-bit DMA window in bytes.
    pub dma32_window_size: u32,
    /// Dynamic DMA window details, valid with [`VFIO_IOMMU_SPAPR_INFO_DDW`].
    pub ddw: vfio_iommu_spapr_tce_ddw_info,
}
/// sPAPR info flag: dynamic DMA windows are supported.
pub const VFIO_IOMMU_SPAPR_INFO_DDW: u32 = 1 << 0;
/// Reads sPAPR TCE IOMMU information into a [`vfio_iommu_spapr_tce_info`].
pub const VFIO_IOMMU_SPAPR_TCE_GET_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 12);

/// EEH error to inject, for [`VFIO_EEH_PE_INJECT_ERR`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_eeh_pe_err {
    /// Error type.
    pub r#type: u32,
    /// Error function.
    pub func: u32,
    /// Address the error applies to.
    pub addr: u64,
    /// Address mask.
    pub mask: u64,
}

/// The anonymous union at the end of [`vfio_eeh_pe_op`].
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub union vfio_eeh_pe_op_u {
    /// Error description for [`VFIO_EEH_PE_INJECT_ERR`].
    pub err: vfio_eeh_pe_err,
}

impl vfio_eeh_pe_op_u {
    /// The union's only member.
    fn err(&self) -> vfio_eeh_pe_err {
        // SAFETY: `err` is the only member and fills the whole union; it is made of integers
        // without padding, so any bit pattern is a valid value.
        unsafe { self.err }
    }
}

impl Default for vfio_eeh_pe_op_u {
    fn default() -> Self {
        Self {
            err: vfio_eeh_pe_err::default(),
        }
    }
}

impl PartialEq for vfio_eeh_pe_op_u {
    fn eq(&self, other: &Self) -> bool {
        self.err() == other.err()
    }
}

impl Eq for vfio_eeh_pe_op_u {}

impl fmt::Debug for vfio_eeh_pe_op_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("vfio_eeh_pe_op_u")
            .field("err", &self.err())
            .finish()
    }
}

/// Argument of `VFIO_EEH_PE_OP`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct vfio_eeh_pe_op {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Operation, `VFIO_EEH_PE_*`.
    pub op: u32,
    /// C anonymous union holding `err`.
    pub u: vfio_eeh_pe_op_u,
}

/// EEH operation: disable EEH.
pub const VFIO_EEH_PE_DISABLE: u32 = 0;
/// EEH operation: enable EEH.
pub const VFIO_EEH_PE_ENABLE: u32 = 1;
/// EEH operation: re-enable I/O of a frozen PE.
pub const VFIO_EEH_PE_UNFREEZE_IO: u32 = 2;
/// EEH operation: re-enable DMA of a frozen PE.
pub const VFIO_EEH_PE_UNFREEZE_DMA: u32 = 3;
/// EEH operation: return the PE state (`VFIO_EEH_PE_STATE_*`) as the ioctl result.
pub const VFIO_EEH_PE_GET_STATE: u32 = 4;
/// EEH PE state: working normally.
pub const VFIO_EEH_PE_STATE_NORMAL: i32 = 0;
/// EEH PE state: reset in progress.
pub const VFIO_EEH_PE_STATE_RESET: i32 = 1;
/// EEH PE state: DMA and I/O stopped.
pub const VFIO_EEH_PE_STATE_STOPPED: i32 = 2;
/// EEH PE state: DMA stopped.
pub const VFIO_EEH_PE_STATE_STOPPED_DMA: i32 = 4;
/// EEH PE state: unavailable.
pub const VFIO_EEH_PE_STATE_UNAVAIL: i32 = 5;
/// EEH operation: deassert PE reset.
pub const VFIO_EEH_PE_RESET_DEACTIVATE: u32 = 5;
/// EEH operation: hot reset.
pub const VFIO_EEH_PE_RESET_HOT: u32 = 6;
/// EEH operation: fundamental reset.
pub const VFIO_EEH_PE_RESET_FUNDAMENTAL: u32 = 7;
/// EEH operation: reconfigure the PE after a reset.
pub const VFIO_EEH_PE_CONFIGURE: u32 = 8;
/// EEH operation: inject the error described in `err`.
pub const VFIO_EEH_PE_INJECT_ERR: u32 = 9;
/// Performs an EEH operation on the container's PE with a [`vfio_eeh_pe_op`].
pub const VFIO_EEH_PE_OP: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 21);

/// Argument of `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` and `..._UNREGISTER_MEMORY`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_register_memory {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Process virtual address of the memory.
    pub vaddr: u64,
    /// Length in bytes.
    pub size: u64,
}
/// Pins and accounts user memory for later sPAPR DMA mapping.
pub const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 17);
/// Releases memory registered with `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`.
pub const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: IoctlRequest =
    request_none(VFIO_TYPE, VFIO_BASE + 18);

/// Argument of `VFIO_IOMMU_SPAPR_TCE_CREATE`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_create {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// IOMMU page shift of the new window (input).
    pub page_shift: u32,
    /// Reserved.
    pub __resv1: u32,
    /// Size of the new window in bytes (input).
    pub window_size: u64,
    /// Levels of the TCE table (input).
    pub levels: u32,
    /// Reserved.
    pub __resv2: u32,
    /// PCI bus address where the new window starts (output).
    pub start_addr: u64,
}
/// Creates an additional sPAPR DMA window with a [`vfio_iommu_spapr_tce_create`].
pub const VFIO_IOMMU_SPAPR_TCE_CREATE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 19);

/// Argument of `VFIO_IOMMU_SPAPR_TCE_REMOVE`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_remove {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Start address identifying the window to remove.
    pub start_addr: u64,
}
/// Removes an sPAPR DMA window created with `VFIO_IOMMU_SPAPR_TCE_CREATE`.
pub const VFIO_IOMMU_SPAPR_TCE_REMOVE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 20);
