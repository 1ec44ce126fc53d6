//! Device features (`VFIO_DEVICE_FEATURE`): migration, low power, DMA logging, bus master.

use super::*;

/// Argument of `VFIO_DEVICE_FEATURE`, header part.
///
/// In memory it is followed by the feature's payload (C: `__u8 data[]`), whose layout depends on
/// the feature number in `flags`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature {
    /// Size of the struct plus its payload.
    pub argsz: u32,
    /// Feature number (`VFIO_DEVICE_FEATURE_MASK` bits) plus GET/SET/PROBE bits.
    pub flags: u32,
}
/// Mask of the 16-bit feature number in [`vfio_device_feature::flags`].
pub const VFIO_DEVICE_FEATURE_MASK: u32 = 0xffff;
/// Feature flag: read the feature into the payload.
pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
/// Feature flag: write the feature from the payload.
pub const VFIO_DEVICE_FEATURE_SET: u32 = 1 << 17;
/// Feature flag: only check that the feature (and the given GET/SET) is supported.
pub const VFIO_DEVICE_FEATURE_PROBE: u32 = 1 << 18;
/// Gets, sets or probes a device feature with a [`vfio_device_feature`] buffer.
pub const VFIO_DEVICE_FEATURE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 17);

/// Feature: SR-IOV VF token, a 16-byte UUID shared by PF and VF drivers.
pub const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: u32 = 0;

/// Payload of [`VFIO_DEVICE_FEATURE_MIGRATION`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_migration {
    /// `VFIO_MIGRATION_*` bits.
    pub flags: u64,
}
/// Migration flag: STOP, STOP_COPY and RESUMING states are supported.
pub const VFIO_MIGRATION_STOP_COPY: u64 = 1 << 0;
/// Migration flag: the RUNNING_P2P state is supported as well.
pub const VFIO_MIGRATION_P2P: u64 = 1 << 1;
/// Migration flag: the PRE_COPY (and, with P2P, PRE_COPY_P2P) states are supported.
pub const VFIO_MIGRATION_PRE_COPY: u64 = 1 << 2;
/// Feature: which migration states the device supports.
pub const VFIO_DEVICE_FEATURE_MIGRATION: u32 = 1;

/// Payload of [`VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_mig_state {
    /// Migration state (`VFIO_DEVICE_STATE_*` of `enum vfio_device_mig_state`).
    pub device_state: u32,
    /// Data transfer fd opened by the transition, or -1.
    pub data_fd: i32,
}
/// Feature: read or change the device's migration state.
pub const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: u32 = 2;

/// Migration state (`enum vfio_device_mig_state`): failed, must be reset.
pub const VFIO_DEVICE_STATE_ERROR: u32 = 0;
/// Migration state: stopped, internal state frozen.
pub const VFIO_DEVICE_STATE_STOP: u32 = 1;
/// Migration state: running normally.
pub const VFIO_DEVICE_STATE_RUNNING: u32 = 2;
/// Migration state: stopped, internal state being read out through the data fd.
pub const VFIO_DEVICE_STATE_STOP_COPY: u32 = 3;
/// Migration state: stopped, loading internal state from the data fd.
pub const VFIO_DEVICE_STATE_RESUMING: u32 = 4;
/// Migration state: running, but no new peer-to-peer DMA.
pub const VFIO_DEVICE_STATE_RUNNING_P2P: u32 = 5;
/// Migration state: running, initial state readable through the data fd ahead of STOP_COPY.
pub const VFIO_DEVICE_STATE_PRE_COPY: u32 = 6;
/// Migration state: PRE_COPY without new peer-to-peer DMA.
pub const VFIO_DEVICE_STATE_PRE_COPY_P2P: u32 = 7;
/// One more than the highest migration state.
pub const VFIO_DEVICE_STATE_NR: u32 = 8;

/// Argument of [`VFIO_MIG_GET_PRECOPY_INFO`], issued on the migration data fd.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_precopy_info {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Bytes of initial state still to read.
    pub initial_bytes: u64,
    /// Bytes of state that changed since, to read.
    pub dirty_bytes: u64,
}
/// Reads how much PRE_COPY data is pending, on the migration data fd.
pub const VFIO_MIG_GET_PRECOPY_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 21);

/// Feature: allow the device to enter a low power state.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: u32 = 3;

/// Payload of [`VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_low_power_entry_with_wakeup {
    /// Eventfd signalled when the device wakes up.
    pub wakeup_eventfd: i32,
    /// Reserved, zero.
    pub reserved: u32,
}
/// Feature: allow low power, with a wake-up notification eventfd.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: u32 = 4;
/// Feature: leave and disallow low power states.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: u32 = 5;

/// Payload of [`VFIO_DEVICE_FEATURE_DMA_LOGGING_START`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_control {
    /// Requested tracking granularity; the kernel writes back the one chosen.
    pub page_size: u64,
    /// Number of entries in the `ranges` array.
    pub num_ranges: u32,
    /// Reserved, zero.
    pub __reserved: u32,
    /// User address of an array of [`vfio_device_feature_dma_logging_range`].
    pub ranges: u64,
}

/// One IOVA range to track with DMA logging.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_range {
    /// Start of the range.
    pub iova: u64,
    /// Length of the range in bytes.
    pub length: u64,
}
/// Feature: start device DMA write logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_START: u32 = 6;
/// Feature: stop device DMA write logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: u32 = 7;

/// Payload of [`VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_report {
    /// Start of the IOVA range to report.
    pub iova: u64,
    /// Length of the IOVA range in bytes.
    pub length: u64,
    /// Bytes of IOVA covered by one bit of the bitmap.
    pub page_size: u64,
    /// User address of the `u64` bitmap to set bits in.
    pub bitmap: u64,
}
/// Feature: read and clear the device's DMA write log.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: u32 = 8;

/// Payload of [`VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_mig_data_size {
    /// Estimated bytes of STOP_COPY data.
    pub stop_copy_length: u64,
}
/// Feature: the estimated size of the STOP_COPY data.
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;

/// Payload of [`VFIO_DEVICE_FEATURE_BUS_MASTER`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_bus_master {
    /// [`VFIO_DEVICE_FEATURE_CLEAR_MASTER`] or [`VFIO_DEVICE_FEATURE_SET_MASTER`].
    pub op: u32,
}
/// [`vfio_device_feature_bus_master::op`]: clear bus mastering.
pub const VFIO_DEVICE_FEATURE_CLEAR_MASTER: u32 = 0;
/// [`vfio_device_feature_bus_master::op`]: set bus mastering.
pub const VFIO_DEVICE_FEATURE_SET_MASTER: u32 = 1;
/// Feature: set or clear bus mastering without config space access (devices whose config
/// space is emulated).
pub const VFIO_DEVICE_FEATURE_BUS_MASTER: u32 = 10;
