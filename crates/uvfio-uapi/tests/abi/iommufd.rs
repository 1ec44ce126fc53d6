//! `uvfio_uapi::iommufd` against `<linux/iommufd.h>` of the project kernel's source
//! (`$UVFIO_ABI_HEADERS`): the host's linux-libc-dev (6.1) has no iommufd.h, so these tests are
//! ignored by a plain `cargo test` and run by tests/run-all.sh after the full flavour is built.

use std::mem::{align_of, offset_of, size_of, MaybeUninit};

use uvfio_uapi::iommufd::*;

use crate::machinery::*;

abi_list! {
    structs {
        iommu_destroy { size, id }
        iommu_ioas_alloc { size, flags, out_ioas_id }
        iommu_iova_range { start, last }
        iommu_ioas_iova_ranges {
            size, ioas_id, num_iovas, __reserved, allowed_iovas, out_iova_alignment
        }
        iommu_ioas_allow_iovas { size, ioas_id, num_iovas, __reserved, allowed_iovas }
        iommu_ioas_map { size, flags, ioas_id, __reserved, user_va, length, iova }
        iommu_ioas_copy { size, flags, dst_ioas_id, src_ioas_id, length, dst_iova, src_iova }
        iommu_ioas_unmap { size, ioas_id, iova, length }
        iommu_option { size, option_id, op, __reserved, object_id, val64 }
        iommu_vfio_ioas { size, ioas_id, op, __reserved }
        iommu_hwpt_vtd_s1 { flags, pgtbl_addr, addr_width, __reserved }
        iommu_hwpt_alloc {
            size, flags, dev_id, pt_id, out_hwpt_id, __reserved, data_type, data_len,
            data_uptr, fault_id, __reserved2
        }
        iommu_hw_info_vtd { flags, __reserved, cap_reg, ecap_reg }
        iommu_hw_info {
            size, flags, dev_id, data_len, data_uptr, out_data_type, out_max_pasid_log2,
            __reserved, out_capabilities
        }
        iommu_hwpt_set_dirty_tracking { size, flags, hwpt_id, __reserved }
        iommu_hwpt_get_dirty_bitmap {
            size, hwpt_id, flags, __reserved, iova, length, page_size, data
        }
        iommu_hwpt_vtd_s1_invalidate { addr, npages, flags, __reserved }
        iommu_hwpt_invalidate {
            size, hwpt_id, data_uptr, data_type, entry_len, entry_num, __reserved
        }
        iommu_hwpt_pgfault {
            flags, dev_id, pasid, grpid, perm, __reserved, addr, length, cookie
        }
        iommu_hwpt_page_response { cookie, code }
        iommu_fault_alloc { size, flags, out_fault_id, out_fault_fd }
    }

    consts {
        u8: [IOMMUFD_TYPE]
        u16: [
            IOMMU_OPTION_OP_SET, IOMMU_OPTION_OP_GET,
            IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET, IOMMU_VFIO_IOAS_CLEAR,
        ]
        u64: [
            IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_WPE,
            IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_PCI_PASID_EXEC,
            IOMMU_HW_CAP_PCI_PASID_PRIV,
        ]
        u32: [
            IOMMUFD_CMD_BASE, IOMMUFD_CMD_DESTROY, IOMMUFD_CMD_IOAS_ALLOC,
            IOMMUFD_CMD_IOAS_ALLOW_IOVAS, IOMMUFD_CMD_IOAS_COPY, IOMMUFD_CMD_IOAS_IOVA_RANGES,
            IOMMUFD_CMD_IOAS_MAP, IOMMUFD_CMD_IOAS_UNMAP, IOMMUFD_CMD_OPTION,
            IOMMUFD_CMD_VFIO_IOAS, IOMMUFD_CMD_HWPT_ALLOC, IOMMUFD_CMD_GET_HW_INFO,
            IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
            IOMMUFD_CMD_HWPT_INVALIDATE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
            IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_MAP_READABLE,
            IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_HUGE_PAGES,
            IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
            IOMMU_HWPT_FAULT_ID_VALID,
            IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_DATA_VTD_S1,
            IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
            IOMMU_HW_INFO_TYPE_NONE, IOMMU_HW_INFO_TYPE_INTEL_VTD,
            IOMMU_HWPT_DIRTY_TRACKING_ENABLE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
            IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_VTD_INV_FLAGS_LEAF,
            IOMMU_PGFAULT_FLAGS_PASID_VALID, IOMMU_PGFAULT_FLAGS_LAST_PAGE,
            IOMMU_PGFAULT_PERM_READ, IOMMU_PGFAULT_PERM_WRITE, IOMMU_PGFAULT_PERM_EXEC,
            IOMMU_PGFAULT_PERM_PRIV,
            IOMMUFD_PAGE_RESP_SUCCESS, IOMMUFD_PAGE_RESP_INVALID,
        ]
    }

    strings {}

    ioctls {
        IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS,
        IOMMU_IOAS_MAP, IOMMU_IOAS_COPY, IOMMU_IOAS_UNMAP, IOMMU_OPTION, IOMMU_VFIO_IOAS,
        IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO, IOMMU_HWPT_SET_DIRTY_TRACKING,
        IOMMU_HWPT_GET_DIRTY_BITMAP, IOMMU_HWPT_INVALIDATE, IOMMU_FAULT_QUEUE_ALLOC,
    }

    fns {}
}

/// Header names deliberately absent from the list, each with the reason.
const SKIPPED: &[(&str, &str)] = &[
    ("_IOMMUFD_H", "include guard; defines no value"),
    (
        "iommufd_ioas_map_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_option",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_option_ops",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_vfio_ioas_op",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_hwpt_alloc_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_vtd_s1_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_data_type",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hw_info_vtd_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hw_info_type",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_hw_capabilities",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_hwpt_set_dirty_tracking_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_hwpt_get_dirty_bitmap_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_invalidate_data_type",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_vtd_s1_invalidate_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_pgfault_flags",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommu_hwpt_pgfault_perm",
        "enum tag only; its enumerators are checked one by one",
    ),
    (
        "iommufd_page_response_code",
        "enum tag only; its enumerators are checked one by one",
    ),
];

/// Public items of `src/iommufd.rs` that have no C name of their own.
const RUST_ONLY: &[(&str, &str)] = &[(
    "IoctlRequest",
    "re-export of the vfio module's request type; every request is checked by value",
)];

header_tests!(name: "linux/iommufd.h", rust: "src/iommufd.rs", tag: "iommufd");
