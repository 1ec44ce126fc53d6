//! ABI test: `uvfio::uapi::vfio` against the system's `<linux/vfio.h>`.
//!
//! One declarative list (the `abi_list!` invocation below) names every struct, field, constant,
//! ioctl request and macro function once. The macro expands it into both sides of the check:
//! - the text of a C program that includes `<linux/vfio.h>` and prints, for each item, its
//!   `sizeof`, `_Alignof`, `offsetof`, field size and field type, or its value;
//! - the same facts computed from the Rust definitions.
//!
//! `abi_matches_c_header` compiles and runs the C program with `$CC` (default `cc`) and compares
//! the two sides line by line. `list_covers_whole_header` scans the header the compiler actually
//! includes and fails for every `#define`, enumerator, `struct` or struct field that the list
//! misses. `list_covers_whole_rust_module` does the same the other way round for the public
//! items of `src/uapi/vfio.rs`. A missing compiler or header is a failure, never a skip.

#![allow(clippy::undocumented_unsafe_blocks)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::mem::{align_of, offset_of, size_of, MaybeUninit};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use uvfio::uapi::vfio::*;

// -------------------------------------------------------------------------------------------
// The list
// -------------------------------------------------------------------------------------------

abi_list! {
    structs {
        vfio_info_cap_header { id, version, next }
        vfio_group_status { argsz, flags }
        vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset }
        vfio_region_info { argsz, flags, index, cap_offset, size, offset }
        vfio_region_sparse_mmap_area { offset, size }
        vfio_region_info_cap_sparse_mmap { header, nr_areas, reserved }
            [areas: vfio_region_sparse_mmap_area]
        vfio_region_info_cap_type { header, r#type, subtype }
        vfio_region_gfx_edid {
            edid_offset, edid_max_size, edid_size, max_xres, max_yres, link_state
        }
        vfio_device_migration_info {
            device_state, reserved, pending_bytes, data_offset, data_size
        }
        vfio_region_info_cap_nvlink2_ssatgt { header, tgt }
        vfio_region_info_cap_nvlink2_lnkspd { header, link_speed, __pad }
        vfio_irq_info { argsz, flags, index, count }
        vfio_irq_set { argsz, flags, index, start, count } [data: u8]
        vfio_pci_dependent_device { group_id, segment, bus, devfn }
        vfio_pci_hot_reset_info { argsz, flags, count } [devices: vfio_pci_dependent_device]
        vfio_pci_hot_reset { argsz, flags, count } [group_fds: i32]
        vfio_device_gfx_plane_info {
            argsz, flags, drm_plane_type, drm_format, drm_format_mod, width, height, stride,
            size, x_pos, y_pos, x_hot, y_hot,
            region_index => u.region_index,
            dmabuf_id => u.dmabuf_id
        }
        vfio_device_ioeventfd { argsz, flags, offset, data, fd }
        vfio_device_feature { argsz, flags } [data: u8]
        vfio_device_feature_migration { flags }
        vfio_device_feature_mig_state { device_state, data_fd }
        vfio_device_low_power_entry_with_wakeup { wakeup_eventfd, reserved }
        vfio_device_feature_dma_logging_control { page_size, num_ranges, __reserved, ranges }
        vfio_device_feature_dma_logging_range { iova, length }
        vfio_device_feature_dma_logging_report { iova, length, page_size, bitmap }
        vfio_iommu_type1_info { argsz, flags, iova_pgsizes, cap_offset }
        vfio_iova_range { start, end }
        vfio_iommu_type1_info_cap_iova_range { header, nr_iovas, reserved }
            [iova_ranges: vfio_iova_range]
        vfio_iommu_type1_info_cap_migration {
            header, flags, pgsize_bitmap, max_dirty_bitmap_size
        }
        vfio_iommu_type1_info_dma_avail { header, avail }
        vfio_iommu_type1_dma_map { argsz, flags, vaddr, iova, size }
        vfio_bitmap { pgsize, size, data }
        vfio_iommu_type1_dma_unmap { argsz, flags, iova, size } [data: u8]
        vfio_iommu_type1_dirty_bitmap { argsz, flags } [data: u8]
        vfio_iommu_type1_dirty_bitmap_get { iova, size, bitmap }
        vfio_iommu_spapr_tce_ddw_info { pgsizes, max_dynamic_windows_supported, levels }
        vfio_iommu_spapr_tce_info {
            argsz, flags, dma32_window_start, dma32_window_size, ddw
        }
        vfio_eeh_pe_err { r#type, func, addr, mask }
        vfio_eeh_pe_op { argsz, flags, op, err => u.err }
        vfio_iommu_spapr_register_memory { argsz, flags, vaddr, size }
        vfio_iommu_spapr_tce_create {
            argsz, flags, page_shift, __resv1, window_size, levels, __resv2, start_addr
        }
        vfio_iommu_spapr_tce_remove { argsz, flags, start_addr }
    }

    consts {
        i32: [
            VFIO_API_VERSION,
            VFIO_EEH_PE_STATE_NORMAL, VFIO_EEH_PE_STATE_RESET, VFIO_EEH_PE_STATE_STOPPED,
            VFIO_EEH_PE_STATE_STOPPED_DMA, VFIO_EEH_PE_STATE_UNAVAIL,
        ]
        u8: [VFIO_TYPE, VFIO_BASE]
        u16: [
            VFIO_DEVICE_INFO_CAP_ZPCI_BASE, VFIO_DEVICE_INFO_CAP_ZPCI_GROUP,
            VFIO_DEVICE_INFO_CAP_ZPCI_UTIL, VFIO_DEVICE_INFO_CAP_ZPCI_PFIP,
            VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_CAP_TYPE,
            VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_NVLINK2_SSATGT,
            VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD,
            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
            VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
        ]
        u64: [VFIO_MIGRATION_STOP_COPY, VFIO_MIGRATION_P2P]
        u32: [
            // extensions
            VFIO_TYPE1_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_DMA_CC_IOMMU,
            VFIO_EEH, VFIO_TYPE1_NESTING_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU, VFIO_NOIOMMU_IOMMU,
            VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR,
            // group and device info
            VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_FLAGS_CONTAINER_SET,
            VFIO_DEVICE_FLAGS_RESET, VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_PLATFORM,
            VFIO_DEVICE_FLAGS_AMBA, VFIO_DEVICE_FLAGS_CCW, VFIO_DEVICE_FLAGS_AP,
            VFIO_DEVICE_FLAGS_FSL_MC, VFIO_DEVICE_FLAGS_CAPS,
            // regions
            VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE, VFIO_REGION_INFO_FLAG_MMAP,
            VFIO_REGION_INFO_FLAG_CAPS,
            VFIO_REGION_TYPE_PCI_VENDOR_TYPE, VFIO_REGION_TYPE_PCI_VENDOR_MASK,
            VFIO_REGION_TYPE_GFX, VFIO_REGION_TYPE_CCW, VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
            VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION, VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
            VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG, VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
            VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD, VFIO_REGION_SUBTYPE_GFX_EDID,
            VFIO_DEVICE_GFX_LINK_STATE_UP, VFIO_DEVICE_GFX_LINK_STATE_DOWN,
            VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD, VFIO_REGION_SUBTYPE_CCW_SCHIB,
            VFIO_REGION_SUBTYPE_CCW_CRW, VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
            // v1 migration region
            VFIO_DEVICE_STATE_V1_STOP, VFIO_DEVICE_STATE_V1_RUNNING, VFIO_DEVICE_STATE_V1_SAVING,
            VFIO_DEVICE_STATE_V1_RESUMING, VFIO_DEVICE_STATE_MASK,
            // interrupts
            VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_AUTOMASKED,
            VFIO_IRQ_INFO_NORESIZE,
            VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD,
            VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_IRQ_SET_ACTION_TYPE_MASK,
            // vfio-pci and vfio-ccw indices (C enumerators)
            VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR1_REGION_INDEX, VFIO_PCI_BAR2_REGION_INDEX,
            VFIO_PCI_BAR3_REGION_INDEX, VFIO_PCI_BAR4_REGION_INDEX, VFIO_PCI_BAR5_REGION_INDEX,
            VFIO_PCI_ROM_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_VGA_REGION_INDEX,
            VFIO_PCI_NUM_REGIONS,
            VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX, VFIO_PCI_NUM_IRQS,
            VFIO_CCW_CONFIG_REGION_INDEX, VFIO_CCW_NUM_REGIONS,
            VFIO_CCW_IO_IRQ_INDEX, VFIO_CCW_CRW_IRQ_INDEX, VFIO_CCW_REQ_IRQ_INDEX,
            VFIO_CCW_NUM_IRQS,
            // graphics and ioeventfd
            VFIO_GFX_PLANE_TYPE_PROBE, VFIO_GFX_PLANE_TYPE_DMABUF, VFIO_GFX_PLANE_TYPE_REGION,
            VFIO_DEVICE_IOEVENTFD_8, VFIO_DEVICE_IOEVENTFD_16, VFIO_DEVICE_IOEVENTFD_32,
            VFIO_DEVICE_IOEVENTFD_64, VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
            // device features
            VFIO_DEVICE_FEATURE_MASK, VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET,
            VFIO_DEVICE_FEATURE_PROBE,
            VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, VFIO_DEVICE_FEATURE_MIGRATION,
            VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
            VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
            VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
            VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
            // enum vfio_device_mig_state
            VFIO_DEVICE_STATE_ERROR, VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING,
            VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_RESUMING,
            VFIO_DEVICE_STATE_RUNNING_P2P,
            // Type1 IOMMU
            VFIO_IOMMU_INFO_PGSIZES, VFIO_IOMMU_INFO_CAPS,
            VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_MAP_FLAG_VADDR,
            VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_ALL,
            VFIO_DMA_UNMAP_FLAG_VADDR,
            VFIO_IOMMU_DIRTY_PAGES_FLAG_START, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
            VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
            // sPAPR and EEH
            VFIO_IOMMU_SPAPR_INFO_DDW,
            VFIO_EEH_PE_DISABLE, VFIO_EEH_PE_ENABLE, VFIO_EEH_PE_UNFREEZE_IO,
            VFIO_EEH_PE_UNFREEZE_DMA, VFIO_EEH_PE_GET_STATE, VFIO_EEH_PE_RESET_DEACTIVATE,
            VFIO_EEH_PE_RESET_HOT, VFIO_EEH_PE_RESET_FUNDAMENTAL, VFIO_EEH_PE_CONFIGURE,
            VFIO_EEH_PE_INJECT_ERR,
        ]
    }

    strings {
        VFIO_DEVICE_API_PCI_STRING, VFIO_DEVICE_API_PLATFORM_STRING, VFIO_DEVICE_API_AMBA_STRING,
        VFIO_DEVICE_API_CCW_STRING, VFIO_DEVICE_API_AP_STRING,
    }

    ioctls {
        VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU,
        VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER,
        VFIO_GROUP_GET_DEVICE_FD,
        VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO,
        VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
        VFIO_DEVICE_PCI_HOT_RESET, VFIO_DEVICE_QUERY_GFX_PLANE, VFIO_DEVICE_GET_GFX_DMABUF,
        VFIO_DEVICE_IOEVENTFD, VFIO_DEVICE_FEATURE,
        VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_IOMMU_ENABLE,
        VFIO_IOMMU_DISABLE, VFIO_IOMMU_DIRTY_PAGES,
        VFIO_IOMMU_SPAPR_TCE_GET_INFO, VFIO_EEH_PE_OP, VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
        VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, VFIO_IOMMU_SPAPR_TCE_CREATE,
        VFIO_IOMMU_SPAPR_TCE_REMOVE,
    }

    // Function-like macros of the header, implemented as `const fn(u32)`; compared over
    // `FN_INPUTS`.
    fns {
        VFIO_DEVICE_STATE_VALID, VFIO_DEVICE_STATE_IS_ERROR, VFIO_DEVICE_STATE_SET_ERROR,
    }
}

/// Header names deliberately absent from the list, each with the reason.
const SKIPPED: &[(&str, &str)] = &[
    ("VFIO_H", "include guard; defines no value"),
    (
        "vfio_device_mig_state",
        "enum tag only; the enumerators are u32 constants and are checked one by one",
    ),
];

/// Public items of `src/uapi/vfio.rs` that have no C name of their own.
const RUST_ONLY: &[(&str, &str)] = &[
    (
        "IoctlRequest",
        "type alias for nix's ioctl_num_type; every request is checked by value",
    ),
    (
        "vfio_device_gfx_plane_info_u",
        "names C's anonymous union; its members are checked through the enclosing struct",
    ),
    (
        "vfio_eeh_pe_op_u",
        "names C's anonymous union; its members are checked through the enclosing struct",
    ),
];

/// Arguments on which the function-like macros are compared.
const FN_INPUTS: &[u32] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    0xf,
    0x10,
    0x17,
    0x8000_0004,
    0x8000_0006,
    0xffff_fff8,
    u32::MAX,
];

// -------------------------------------------------------------------------------------------
// The macro: one list, two sides
// -------------------------------------------------------------------------------------------

/// One fact about the ABI: how C prints it and what Rust says it is.
struct Check {
    /// Unique name of the fact, e.g. `offsetof(vfio_irq_set, index)`.
    key: String,
    /// C statement fragment: a printf format for the value and the C expression.
    c_format: &'static str,
    /// The C expression, already cast to match `c_format`.
    c_expr: String,
    /// The value on the Rust side, rendered the way C prints it.
    rust: String,
}

impl Check {
    fn unsigned(key: String, c_expr: String, rust: impl Into<i128>) -> Self {
        Check {
            key,
            c_format: "%llu",
            c_expr: format!("(unsigned long long)({c_expr})"),
            rust: rust.into().to_string(),
        }
    }

    fn signed(key: String, c_expr: String, rust: impl Into<i128>) -> Self {
        Check {
            key,
            c_format: "%lld",
            c_expr: format!("(long long)({c_expr})"),
            rust: rust.into().to_string(),
        }
    }

    fn text(key: String, c_expr: String, rust: impl Into<String>) -> Self {
        Check {
            key,
            c_format: "%s",
            c_expr,
            rust: rust.into(),
        }
    }
}

/// What the list covers, by category, for the completeness tests.
struct Listed {
    /// Struct name and, for each, its C field names (flexible array members included).
    structs: Vec<(&'static str, Vec<String>)>,
    /// Every constant, string, ioctl and function name.
    names: Vec<&'static str>,
}

macro_rules! abi_list {
    (
        structs {
            $(
                $s:ident { $( $($cf:ident).+ $(=> $($rf:ident).+)? ),* $(,)? }
                $( [ $flex:ident : $elem:ty ] )?
            )*
        }
        consts { $( $t:ident : [ $($c:ident),* $(,)? ] )* }
        strings { $($str:ident),* $(,)? }
        ioctls { $($io:ident),* $(,)? }
        fns { $($f:ident),* $(,)? }
    ) => {
        /// Every fact of the list, C and Rust side by side.
        fn checks() -> Vec<Check> {
            let mut out = Vec::new();
            $(
                {
                    let s = stringify!($s);
                    out.push(Check::unsigned(
                        format!("sizeof(struct {s})"),
                        format!("sizeof(struct {s})"),
                        size_of::<$s>() as u64,
                    ));
                    out.push(Check::unsigned(
                        format!("_Alignof(struct {s})"),
                        format!("_Alignof(struct {s})"),
                        align_of::<$s>() as u64,
                    ));
                    $(
                        let c_path = c_name(stringify!($($cf).+));
                        let (offset, size, kind) =
                            field_info_pick!($s; [$($cf).+]; [$($($rf).+)?]);
                        out.push(Check::unsigned(
                            format!("offsetof({s}, {c_path})"),
                            format!("offsetof(struct {s}, {c_path})"),
                            offset as u64,
                        ));
                        out.push(Check::unsigned(
                            format!("sizeof({s}.{c_path})"),
                            format!("sizeof(((struct {s} *)0)->{c_path})"),
                            size as u64,
                        ));
                        out.push(Check::text(
                            format!("type of {s}.{c_path}"),
                            format!("KIND(((struct {s} *)0)->{c_path})"),
                            kind,
                        ));
                    )*
                    $(
                        let flex = stringify!($flex);
                        out.push(Check::unsigned(
                            format!("offsetof({s}, {flex}[]) == sizeof"),
                            format!("offsetof(struct {s}, {flex})"),
                            size_of::<$s>() as u64,
                        ));
                        out.push(Check::unsigned(
                            format!("sizeof({s}.{flex}[0])"),
                            format!("sizeof(((struct {s} *)0)->{flex}[0])"),
                            size_of::<$elem>() as u64,
                        ));
                        out.push(Check::text(
                            format!("type of {s}.{flex}[0]"),
                            format!("KIND(((struct {s} *)0)->{flex}[0])"),
                            short_type_name::<$elem>(),
                        ));
                    )?
                }
            )*
            $(
                $(
                    {
                        let name = stringify!($c);
                        let ty = c_int_type(stringify!($t));
                        let value: $t = $c;
                        let (key, c_expr) = (name.to_string(), format!("({ty})({name})"));
                        out.push(if is_signed(stringify!($t)) {
                            Check::signed(key, c_expr, value)
                        } else {
                            Check::unsigned(key, c_expr, value)
                        });
                        // Catches a C value that the Rust type would truncate or re-sign.
                        out.push(Check::unsigned(
                            format!("{name} fits {ty}"),
                            format!("({name}) == ({ty})({name})"),
                            1u8,
                        ));
                    }
                )*
            )*
            $(
                {
                    let value: &str = $str;
                    let name = stringify!($str).to_string();
                    out.push(Check::text(name.clone(), name, value));
                }
            )*
            $(
                {
                    let value: IoctlRequest = $io;
                    out.push(Check::unsigned(
                        stringify!($io).to_string(),
                        format!("(unsigned long)({})", stringify!($io)),
                        i128::from(value),
                    ));
                }
            )*
            $(
                for &arg in FN_INPUTS {
                    out.push(Check::unsigned(
                        format!("{}({arg:#x})", stringify!($f)),
                        format!("{}((__u32){arg}u)", stringify!($f)),
                        i128::from($f(arg)),
                    ));
                }
            )*
            out
        }

        /// The list's coverage, for the completeness tests.
        fn listed() -> Listed {
            Listed {
                structs: vec![
                    $(
                        (
                            stringify!($s),
                            vec![
                                $( c_name(stringify!($($cf).+)), )*
                                $( stringify!($flex).to_string(), )?
                            ],
                        ),
                    )*
                ],
                names: vec![
                    $( $( stringify!($c), )* )*
                    $( stringify!($str), )*
                    $( stringify!($io), )*
                    $( stringify!($f), )*
                ],
            }
        }
    };
}
use abi_list;

/// Offset, size and type name of a field, by its C path or, if given, its Rust path.
macro_rules! field_info_pick {
    ($s:ident; [$($c:ident).+]; []) => {
        field_info!($s; $($c).+)
    };
    ($s:ident; [$($c:ident).+]; [$($r:ident).+]) => {
        field_info!($s; $($r).+)
    };
}
use field_info_pick;

/// Offset, size and type name of the field at a Rust path.
///
/// A nested path (`u.region_index`, a member of a Rust union standing in for a C anonymous
/// union) is measured as `offset_of!` of the outer field plus the member's address difference
/// inside it, because nested `offset_of!` needs Rust 1.82 and the crate's MSRV is older.
macro_rules! field_info {
    ($s:ident; $f:ident) => {{
        let value = MaybeUninit::<$s>::uninit();
        let base = value.as_ptr();
        // SAFETY: `addr_of!` only computes the address of a field inside `value`; nothing is
        // read and no reference to uninitialised memory is created.
        let place = unsafe { std::ptr::addr_of!((*base).$f) };
        (offset_of!($s, $f), pointee_size(place), pointee_type_name(place))
    }};
    ($s:ident; $f:ident $(. $rest:ident)+) => {{
        let value = MaybeUninit::<$s>::uninit();
        let base = value.as_ptr();
        // SAFETY: as above, only addresses inside `value` are computed; nothing is read.
        let (outer, place) = unsafe {
            (
                std::ptr::addr_of!((*base).$f),
                std::ptr::addr_of!((*base).$f $(. $rest)+),
            )
        };
        let inner = place as *const u8 as usize - outer as *const u8 as usize;
        (offset_of!($s, $f) + inner, pointee_size(place), pointee_type_name(place))
    }};
}
use field_info;

/// The C spelling of a field path written in Rust tokens (`r#type` is `type`).
fn c_name(tokens: &str) -> String {
    tokens.replace("r#", "").replace(' ', "")
}

/// The C type a constant of the given Rust type is used as.
fn c_int_type(rust: &str) -> &'static str {
    match rust {
        "u8" => "__u8",
        "u16" => "__u16",
        "u32" => "__u32",
        "u64" => "__u64",
        "i32" => "__s32",
        other => panic!("abi_list: no C type for Rust type {other}"),
    }
}

fn is_signed(rust: &str) -> bool {
    rust.starts_with('i')
}

fn pointee_size<T>(_: *const T) -> usize {
    size_of::<T>()
}

fn pointee_type_name<T>(_: *const T) -> String {
    short_type_name::<T>()
}

/// `std::any::type_name` without module paths: `u32`, `*mut u64`, `vfio_iova_range`.
fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::new();
    for (i, part) in full.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(part.rsplit("::").next().unwrap_or(part));
    }
    out
}

// -------------------------------------------------------------------------------------------
// Running the C side
// -------------------------------------------------------------------------------------------

/// The C compiler command: `$CC` split on whitespace, or `cc`.
fn compiler() -> (String, Vec<String>) {
    let cc = std::env::var("CC")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cc".to_string());
    let mut words = cc.split_whitespace().map(str::to_string);
    let program = words.next().expect("non-empty CC");
    (program, words.collect())
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "ABI test cannot run: {what} failed to start ({e}): {cmd:?}\n\
             A C compiler (set $CC, default `cc`) and the Linux uAPI headers \
             (package linux-libc-dev) are required; this test does not skip."
        ),
    }
}

/// A fresh scratch directory for this process.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("abi-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The C program printing one `key<TAB>value` line per check.
fn c_source(checks: &[Check], listed: &Listed) -> String {
    let mut src = String::new();
    src.push_str("/* Generated by uvfio tests/abi.rs; do not edit. */\n");
    src.push_str("#include <stddef.h>\n#include <stdio.h>\n#include <linux/vfio.h>\n\n");
    src.push_str("#define KIND(x) _Generic((x), \\\n");
    for (c, rust) in [
        ("__u8", "u8"),
        ("__s8", "i8"),
        ("__u16", "u16"),
        ("__s16", "i16"),
        ("__u32", "u32"),
        ("__s32", "i32"),
        ("__u64", "u64"),
        ("__s64", "i64"),
        ("__u64 *", "*mut u64"),
    ] {
        writeln!(src, "\t{c}: \"{rust}\", \\").unwrap();
    }
    for (s, _) in &listed.structs {
        writeln!(src, "\tstruct {s}: \"{s}\", \\").unwrap();
    }
    src.push_str("\tdefault: \"(other)\")\n\nint main(void)\n{\n");
    for check in checks {
        assert!(
            !check.key.contains(['"', '\\', '\t', '\n']),
            "bad key {}",
            check.key
        );
        writeln!(
            src,
            "\tprintf(\"%s\\t{}\\n\", \"{}\", {});",
            check.c_format, check.key, check.c_expr
        )
        .unwrap();
    }
    src.push_str("\treturn 0;\n}\n");
    src
}

/// Compiles and runs the C program; returns its key/value lines.
fn c_values(checks: &[Check], listed: &Listed) -> BTreeMap<String, String> {
    let dir = scratch_dir("values");
    let src_path = dir.join("abi.c");
    let bin_path = dir.join("abi");
    std::fs::write(&src_path, c_source(checks, listed)).expect("write abi.c");

    let (cc, cc_args) = compiler();
    let out = run(
        Command::new(&cc)
            .args(&cc_args)
            .args(["-std=c11", "-Wall", "-o"])
            .arg(&bin_path)
            .arg(&src_path),
        "the C compiler",
    );
    assert!(
        out.status.success(),
        "compiling the ABI probe {} with `{cc}` failed ({}):\n{}",
        src_path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&mut Command::new(&bin_path), "the compiled ABI probe");
    assert!(
        out.status.success(),
        "the ABI probe {} failed: {}",
        bin_path.display(),
        out.status
    );
    let stdout = String::from_utf8(out.stdout).expect("probe output is UTF-8");
    let mut map = BTreeMap::new();
    for line in stdout.lines() {
        let (key, value) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("malformed probe line {line:?}"));
        assert!(
            map.insert(key.to_string(), value.to_string()).is_none(),
            "duplicate key {key}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    map
}

#[test]
fn abi_matches_c_header() {
    let checks = checks();
    let listed = listed();
    let c = c_values(&checks, &listed);

    let mut failures = Vec::new();
    for check in &checks {
        match c.get(&check.key) {
            None => failures.push(format!("{}: missing from the C output", check.key)),
            Some(c_value) if *c_value != check.rust => failures.push(format!(
                "{}: C = {c_value}, Rust = {}",
                check.key, check.rust
            )),
            Some(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ABI checks differ between <linux/vfio.h> and uvfio::uapi::vfio:\n  {}",
        failures.len(),
        checks.len(),
        failures.join("\n  ")
    );

    let fields: usize = listed.structs.iter().map(|(_, f)| f.len()).sum();
    eprintln!(
        "abi: {} checks passed ({} structs, {} fields, {} names)",
        checks.len(),
        listed.structs.len(),
        fields,
        listed.names.len()
    );
}

// -------------------------------------------------------------------------------------------
// Completeness: header -> list
// -------------------------------------------------------------------------------------------

/// Path of the `linux/vfio.h` the C compiler resolves, read from its preprocessor line markers.
fn compiler_header_path() -> PathBuf {
    let (cc, cc_args) = compiler();
    let mut child = Command::new(&cc)
        .args(&cc_args)
        .args(["-E", "-x", "c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "ABI test cannot run: the C compiler `{cc}` failed to start ({e}). \
                 Set $CC or install gcc; this test does not skip."
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"#include <linux/vfio.h>\n")
        .expect("write to preprocessor");
    let out = child.wait_with_output().expect("preprocessor output");
    assert!(
        out.status.success(),
        "`{cc} -E` cannot include <linux/vfio.h> (install linux-libc-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.split('"').nth(1))
        .find(|p| p.ends_with("/linux/vfio.h"))
        .unwrap_or_else(|| panic!("no line marker for linux/vfio.h in `{cc} -E` output"));
    PathBuf::from(path)
}

/// The names a C header defines, as the completeness test sees them.
#[derive(Default)]
struct HeaderNames {
    /// `#define` names, function-like or not.
    defines: BTreeSet<String>,
    /// Enumerators of every enum.
    enumerators: BTreeSet<String>,
    /// Enum tags.
    enum_tags: BTreeSet<String>,
    /// Struct name and its member names (anonymous union members flattened).
    structs: BTreeMap<String, Vec<String>>,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Removes `/* */` and `//` comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), Some(l)) if l < b => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (None, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (Some(b), _) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..].find("*/").expect("unterminated comment") + b + 4;
                out.push(' ');
                rest = &rest[end..];
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The text between the brace at `open` and its matching close brace.
fn braced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in header");
}

/// The last identifier in a declaration, ignoring array brackets.
fn declared_name(decl: &str) -> Option<String> {
    let decl = decl.split('[').next().unwrap_or(decl);
    let end = decl.rfind(is_ident_char)? + 1;
    let start = decl[..end]
        .rfind(|c| !is_ident_char(c))
        .map_or(0, |i| i + 1);
    Some(decl[start..end].to_string())
}

fn parse_header(raw: &str) -> HeaderNames {
    let mut names = HeaderNames::default();

    // Preprocessor lines (joined over backslash continuations) are read, then blanked out.
    let text = strip_comments(&raw.replace("\\\n", " "));
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(directive) = trimmed.strip_prefix('#') {
            if let Some(def) = directive.trim_start().strip_prefix("define") {
                let def = def.trim_start();
                let end = def.find(|c| !is_ident_char(c)).unwrap_or(def.len());
                names.defines.insert(def[..end].to_string());
            }
            code.push('\n');
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }

    // `struct NAME {` and `enum [NAME] {` definitions.
    let tokens: Vec<(usize, &str)> = {
        let mut v = Vec::new();
        let mut start = None;
        for (i, c) in code.char_indices() {
            if is_ident_char(c) {
                start.get_or_insert(i);
            } else {
                if let Some(s) = start.take() {
                    v.push((s, &code[s..i]));
                }
                if c == '{' {
                    v.push((i, "{"));
                }
            }
        }
        v
    };
    for (i, &(_, word)) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).map(|t| t.1);
        let after = tokens.get(i + 2).copied();
        match (word, next) {
            ("struct", Some(name)) if name != "{" => {
                if let Some((open, "{")) = after {
                    let fields = braced(&code, open)
                        .split(';')
                        .map(|decl| decl.replace(['{', '}'], " ").replace("union", " "))
                        .filter_map(|decl| declared_name(&decl))
                        .collect();
                    names.structs.insert(name.to_string(), fields);
                }
            }
            ("enum", Some(next)) => {
                let open = if next == "{" {
                    Some(tokens[i + 1].0)
                } else {
                    names.enum_tags.insert(next.to_string());
                    after.filter(|t| t.1 == "{").map(|t| t.0)
                };
                if let Some(open) = open {
                    for item in braced(&code, open).split(',') {
                        if let Some(name) = declared_name(item.split('=').next().unwrap_or(item)) {
                            names.enumerators.insert(name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn list_covers_whole_header() {
    let path = compiler_header_path();
    let raw = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = parse_header(&raw);
    let listed = listed();
    let names: BTreeSet<&str> = listed.names.iter().copied().collect();
    let skipped: BTreeSet<&str> = SKIPPED.iter().map(|(n, _)| *n).collect();
    let listed_structs: BTreeMap<&str, &Vec<String>> =
        listed.structs.iter().map(|(s, f)| (*s, f)).collect();

    let mut missing = Vec::new();
    for name in header.defines.iter().chain(&header.enumerators) {
        if !names.contains(name.as_str()) && !skipped.contains(name.as_str()) {
            missing.push(format!("constant/macro {name}"));
        }
    }
    for tag in &header.enum_tags {
        if !skipped.contains(tag.as_str()) {
            missing.push(format!("enum {tag}"));
        }
    }
    for (s, c_fields) in &header.structs {
        if skipped.contains(s.as_str()) {
            continue;
        }
        let Some(fields) = listed_structs.get(s.as_str()) else {
            missing.push(format!("struct {s}"));
            continue;
        };
        if *fields != c_fields {
            missing.push(format!(
                "struct {s}: header fields {c_fields:?}, list has {fields:?}"
            ));
        }
    }
    // Entries of the list or allowlist that the header does not have (stale names).
    for name in &names {
        if !header.defines.contains(*name) && !header.enumerators.contains(*name) {
            missing.push(format!("{name} is listed but not in the header"));
        }
    }
    for s in listed_structs.keys() {
        if !header.structs.contains_key(*s) {
            missing.push(format!("struct {s} is listed but not in the header"));
        }
    }
    for (name, _) in SKIPPED {
        let known = header.defines.contains(*name)
            || header.enum_tags.contains(*name)
            || header.structs.contains_key(*name);
        if !known {
            missing.push(format!("allowlisted {name} is not in the header"));
        }
    }

    assert!(
        missing.is_empty(),
        "the ABI list and {} disagree:\n  {}",
        path.display(),
        missing.join("\n  ")
    );
    eprintln!(
        "abi: {} covers {} defines, {} enumerators, {} structs (skipped: {:?})",
        path.display(),
        header.defines.len(),
        header.enumerators.len(),
        header.structs.len(),
        SKIPPED
    );
}

// -------------------------------------------------------------------------------------------
// Completeness: Rust module -> list
// -------------------------------------------------------------------------------------------

#[test]
fn list_covers_whole_rust_module() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/uapi/vfio.rs");
    let text = std::fs::read_to_string(&path).expect("read src/uapi/vfio.rs");
    let listed = listed();
    let mut known: BTreeSet<&str> = listed.names.iter().copied().collect();
    known.extend(listed.structs.iter().map(|(s, _)| *s));
    known.extend(RUST_ONLY.iter().map(|(n, _)| *n));

    let mut unchecked = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("pub ") else {
            continue;
        };
        let rest = rest.strip_prefix("const fn ").unwrap_or(rest);
        let Some(rest) = [
            "const ", "struct ", "union ", "type ", "fn ", "static ", "enum ",
        ]
        .iter()
        .find_map(|kw| rest.strip_prefix(kw)) else {
            continue;
        };
        let end = rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        if !known.contains(name) {
            unchecked.push(name.to_string());
        }
    }
    assert!(
        unchecked.is_empty(),
        "public items of src/uapi/vfio.rs that the ABI list does not check: {unchecked:?}"
    );
}
