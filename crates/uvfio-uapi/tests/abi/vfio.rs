//! `uvfio_uapi::vfio` against `<linux/vfio.h>` of the project kernel's source
//! (`$UVFIO_ABI_HEADERS`, 6.12): the host's linux-libc-dev (6.1) lacks the cdev, PRE_COPY and
//! newer feature items, so the header tests are ignored by a plain `cargo test` and run by
//! tests/run-all.sh after the full flavour is built.

use std::mem::{align_of, offset_of, size_of, MaybeUninit};

use uvfio_uapi::vfio::*;

use crate::machinery::*;

abi_list! {
    structs {
        vfio_info_cap_header { id, version, next }
        vfio_group_status { argsz, flags }
        vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }
        vfio_device_info_cap_pci_atomic_comp { header, flags, reserved }
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
        vfio_pci_dependent_device { group_id, devid => group_id, segment, bus, devfn }
        vfio_pci_hot_reset_info { argsz, flags, count } [devices: vfio_pci_dependent_device]
        vfio_pci_hot_reset { argsz, flags, count } [group_fds: i32]
        vfio_device_gfx_plane_info {
            argsz, flags, drm_plane_type, drm_format, drm_format_mod, width, height, stride,
            size, x_pos, y_pos, x_hot, y_hot,
            region_index => u.region_index,
            dmabuf_id => u.dmabuf_id,
            reserved
        }
        vfio_device_ioeventfd { argsz, flags, offset, data, fd, reserved }
        vfio_device_bind_iommufd { argsz, flags, iommufd, out_devid }
        vfio_device_attach_iommufd_pt { argsz, flags, pt_id }
        vfio_device_detach_iommufd_pt { argsz, flags }
        vfio_precopy_info { argsz, flags, initial_bytes, dirty_bytes }
        vfio_device_feature_mig_data_size { stop_copy_length }
        vfio_device_feature_bus_master { op }
        vfio_device_feature { argsz, flags } [data: u8]
        vfio_device_feature_migration { flags }
        vfio_device_feature_mig_state { device_state, data_fd }
        vfio_device_low_power_entry_with_wakeup { wakeup_eventfd, reserved }
        vfio_device_feature_dma_logging_control { page_size, num_ranges, __reserved, ranges }
        vfio_device_feature_dma_logging_range { iova, length }
        vfio_device_feature_dma_logging_report { iova, length, page_size, bitmap }
        vfio_iommu_type1_info { argsz, flags, iova_pgsizes, cap_offset, pad }
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
            VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD, VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
            VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
        ]
        u64: [VFIO_MIGRATION_STOP_COPY, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY]
        u32: [
            // extensions
            VFIO_TYPE1_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_DMA_CC_IOMMU,
            VFIO_EEH, VFIO_TYPE1_NESTING_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU, VFIO_NOIOMMU_IOMMU,
            VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR,
            // group and device info
            VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_FLAGS_CONTAINER_SET,
            VFIO_DEVICE_FLAGS_RESET, VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_PLATFORM,
            VFIO_DEVICE_FLAGS_AMBA, VFIO_DEVICE_FLAGS_CCW, VFIO_DEVICE_FLAGS_AP,
            VFIO_DEVICE_FLAGS_FSL_MC, VFIO_DEVICE_FLAGS_CAPS, VFIO_DEVICE_FLAGS_CDX,
            VFIO_PCI_ATOMIC_COMP32, VFIO_PCI_ATOMIC_COMP64, VFIO_PCI_ATOMIC_COMP128,
            VFIO_AP_REQ_IRQ_INDEX, VFIO_AP_NUM_IRQS,
            VFIO_PCI_DEVID_OWNED, VFIO_PCI_DEVID_NOT_OWNED,
            VFIO_PCI_HOT_RESET_FLAG_DEV_ID, VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
            VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_NR,
            VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_BUS_MASTER,
            VFIO_DEVICE_FEATURE_CLEAR_MASTER, VFIO_DEVICE_FEATURE_SET_MASTER,
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
        VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT,
        VFIO_MIG_GET_PRECOPY_INFO,
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

/// Public items of `src/vfio/` that have no C name of their own.
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

header_tests!(name: "linux/vfio.h", rust: "src/vfio", tag: "vfio");
