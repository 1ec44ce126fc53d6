//! POWER's sPAPR TCE IOMMU and EEH (Enhanced Error Handling).
//!
//! **These calls only work on POWER (ppc64) hosts.** The crate's tests run on x86 and check
//! how the requests are built (and that the calls are refused on a type1 container without
//! reaching the kernel); the calls themselves have not been run against a POWER kernel by this
//! crate's CI.
//!
//! The sPAPR IOMMU translates DMA through *windows*: a default 32-bit window (usually 1 or 2
//! GiB at address 0) and, with the v2 IOMMU and dynamic DMA windows (DDW), up to
//! [`SpaprDdwInfo::max_dynamic_windows`] windows the user creates, each with its own IOMMU
//! page size and table depth. Memory must be *pre-registered* (pinned and accounted) before it
//! can be mapped. DPDK's recipe, which [`Container::spapr_setup_dma_window`] and
//! [`SpaprWindow::for_memory`] follow:
//!
//! 1. size the window to the highest address that will be mapped, rounded up to a power of
//!    two, with the page size of the memory (the huge page size);
//! 2. remove the default window (`VFIO_IOMMU_SPAPR_TCE_REMOVE` at `dma32_window_start`);
//! 3. create the new window (`VFIO_IOMMU_SPAPR_TCE_CREATE`) with a one-level table, retrying
//!    with more levels up to [`SpaprDdwInfo::max_levels`] if the kernel refuses;
//! 4. require the window to start at 0 (IOVAs are then the addresses themselves);
//! 5. map with `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` then `VFIO_IOMMU_MAP_DMA`, unmap in reverse
//!    ([`Container::spapr_map_dma`], [`Container::spapr_unmap_dma`]); refuse maps past the
//!    window.
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_IOMMU_SPAPR_TCE_*`, `VFIO_IOMMU_SPAPR_*_MEMORY`,
//!   `VFIO_EEH_PE_OP`
//! - Kernel docs, "VFIO - Virtual Function I/O", section "VFIO bus driver API" / sPAPR
//!   (<https://docs.kernel.org/driver-api/vfio.html>)
//! - `drivers/vfio/vfio_iommu_spapr_tce.c`, DPDK `lib/eal/linux/eal_vfio.c`
//!
//! # Safety
//!
//! [`Container::spapr_map_dma`] is an `unsafe fn` with the memory contract of
//! [`Container::map_dma_raw`], which it forwards. Registering memory, windows and EEH
//! operations give no device access to memory and are safe.
#![allow(unsafe_code)]

use crate::container::{Container, IommuType};
use crate::error::{Errno, Error, Object, Result};
use crate::iommu::DmaAccess;
use crate::uapi::vfio;

/// Dynamic DMA window capabilities (`struct vfio_iommu_spapr_tce_ddw_info`).
#[doc(alias = "vfio_iommu_spapr_tce_ddw_info")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpaprDdwInfo {
    /// Supported IOMMU page sizes, as a bitmap (bit n: 2^n bytes).
    pub page_sizes: u64,
    /// How many dynamic windows can exist at once.
    pub max_dynamic_windows: u32,
    /// The deepest TCE table a window may use.
    pub max_levels: u32,
}

impl SpaprDdwInfo {
    /// Whether IOMMU pages of `bytes` (a power of two) are supported.
    pub fn supports_page_size(&self, bytes: u64) -> bool {
        bytes.is_power_of_two() && self.page_sizes & bytes != 0
    }
}

/// `VFIO_IOMMU_SPAPR_TCE_GET_INFO`: the default window and DDW capabilities.
#[doc(alias = "vfio_iommu_spapr_tce_info")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpaprTceInfo {
    /// The `VFIO_IOMMU_SPAPR_INFO_*` flags.
    pub flags: u32,
    /// Where the default 32-bit window starts.
    pub dma32_window_start: u32,
    /// The default window's size in bytes.
    pub dma32_window_size: u32,
    /// Dynamic DMA windows, when supported (`VFIO_IOMMU_SPAPR_INFO_DDW`, v2 IOMMU only).
    pub ddw: Option<SpaprDdwInfo>,
}

impl SpaprTceInfo {
    /// Decodes the kernel's answer.
    pub fn from_raw(raw: &vfio::vfio_iommu_spapr_tce_info) -> SpaprTceInfo {
        SpaprTceInfo {
            flags: raw.flags,
            dma32_window_start: raw.dma32_window_start,
            dma32_window_size: raw.dma32_window_size,
            ddw: (raw.flags & vfio::VFIO_IOMMU_SPAPR_INFO_DDW != 0).then_some(SpaprDdwInfo {
                page_sizes: raw.ddw.pgsizes,
                max_dynamic_windows: raw.ddw.max_dynamic_windows_supported,
                max_levels: raw.ddw.levels,
            }),
        }
    }
}

/// A DMA window to create with `VFIO_IOMMU_SPAPR_TCE_CREATE`.
#[doc(alias = "vfio_iommu_spapr_tce_create")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpaprWindow {
    /// log2 of the IOMMU page size (21 for 2 MiB pages, 24 for 16 MiB).
    pub page_shift: u32,
    /// The window's size in bytes (a power of two).
    pub window_size: u64,
    /// Levels of the TCE table (1 to [`SpaprDdwInfo::max_levels`]).
    pub levels: u32,
}

impl SpaprWindow {
    /// DPDK's sizing: a window from 0 to `highest_end` (the end, exclusive, of the highest
    /// address that will be mapped: the highest virtual address when IOVA = VA, the end of
    /// system RAM when IOVA = PA) rounded up to a power of two, at least one page, with IOMMU
    /// pages of `page_size` bytes (the huge page size of the memory) and a one-level table.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `highest_end` is 0 or needs a window past 2^63, or
    /// `page_size` is not a power of two; [`Error::NotSupported`] when `ddw` does not list
    /// `page_size`.
    pub fn for_memory(highest_end: u64, page_size: u64, ddw: &SpaprDdwInfo) -> Result<SpaprWindow> {
        const OP: &str = "SpaprWindow::for_memory";
        if !page_size.is_power_of_two() {
            return Err(Error::invalid(
                OP,
                Object::Container,
                format!("the page size {page_size:#x} is not a power of two"),
            ));
        }
        if !ddw.supports_page_size(page_size) {
            return Err(Error::NotSupported {
                op: OP,
                object: Object::Container.into(),
                reason: format!(
                    "IOMMU pages of {page_size:#x} bytes (supported: bitmap {:#x}); consider a \
                     huge page size the platform supports",
                    ddw.page_sizes
                )
                .into(),
                errno: Errno::ENOTSUP,
            });
        }
        let size = match highest_end.checked_next_power_of_two() {
            Some(s) if highest_end != 0 && s <= 1 << 63 => s.max(page_size),
            _ => {
                return Err(Error::out_of_range(
                    OP,
                    Object::Container,
                    format!("no window can cover addresses up to {highest_end:#x}"),
                ))
            }
        };
        Ok(SpaprWindow {
            page_shift: page_size.trailing_zeros(),
            window_size: size,
            levels: 1,
        })
    }

    /// QEMU's estimate of the table levels this window needs when the table is built of
    /// `host_page_size` pages: one more level per factor of 2^6 in table pages (after QEMU's
    /// 2019 fix of the calculation). A starting point when one level is refused.
    pub fn estimated_levels(&self, host_page_size: u64) -> u32 {
        let entries = self.window_size >> self.page_shift.min(63);
        let pages = (entries.saturating_mul(8) / host_page_size.max(1)).max(1);
        let pages = pages.checked_next_power_of_two().unwrap_or(1 << 63);
        pages.trailing_zeros() / 6 + 1
    }

    /// The kernel request for this window.
    pub fn to_request(&self) -> vfio::vfio_iommu_spapr_tce_create {
        vfio::vfio_iommu_spapr_tce_create {
            argsz: crate::uapi::buf::argsz_of::<vfio::vfio_iommu_spapr_tce_create>(),
            flags: 0,
            page_shift: self.page_shift,
            __resv1: 0,
            window_size: self.window_size,
            levels: self.levels,
            __resv2: 0,
            start_addr: 0,
        }
    }
}

/// An EEH error to inject (`struct vfio_eeh_pe_err`), for testing a driver's recovery.
#[doc(alias = "vfio_eeh_pe_err")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EehError {
    /// The error type (`EEH_ERR_TYPE_32` = 0, `EEH_ERR_TYPE_64` = 1).
    pub kind: u32,
    /// The error function (`EEH_ERR_FUNC_*`: load/store/DMA on memory, I/O or config space).
    pub func: u32,
    /// The address the error applies to.
    pub addr: u64,
    /// The address mask.
    pub mask: u64,
}

/// An operation on the container's EEH partitionable endpoint (`VFIO_EEH_PE_OP`).
#[doc(alias = "vfio_eeh_pe_op")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EehPeOp {
    /// `VFIO_EEH_PE_DISABLE`.
    Disable,
    /// `VFIO_EEH_PE_ENABLE`.
    Enable,
    /// `VFIO_EEH_PE_UNFREEZE_IO`: let MMIO through again after a freeze.
    UnfreezeIo,
    /// `VFIO_EEH_PE_UNFREEZE_DMA`: let DMA through again after a freeze.
    UnfreezeDma,
    /// `VFIO_EEH_PE_RESET_DEACTIVATE`: end a reset.
    ResetDeactivate,
    /// `VFIO_EEH_PE_RESET_HOT`: start a hot reset.
    ResetHot,
    /// `VFIO_EEH_PE_RESET_FUNDAMENTAL`: start a fundamental reset.
    ResetFundamental,
    /// `VFIO_EEH_PE_CONFIGURE`: restore the PE's configuration after a reset.
    Configure,
    /// `VFIO_EEH_PE_INJECT_ERR`: inject an error.
    InjectError(EehError),
}

impl EehPeOp {
    /// The `VFIO_EEH_PE_*` operation number.
    pub const fn raw(&self) -> u32 {
        match self {
            EehPeOp::Disable => vfio::VFIO_EEH_PE_DISABLE,
            EehPeOp::Enable => vfio::VFIO_EEH_PE_ENABLE,
            EehPeOp::UnfreezeIo => vfio::VFIO_EEH_PE_UNFREEZE_IO,
            EehPeOp::UnfreezeDma => vfio::VFIO_EEH_PE_UNFREEZE_DMA,
            EehPeOp::ResetDeactivate => vfio::VFIO_EEH_PE_RESET_DEACTIVATE,
            EehPeOp::ResetHot => vfio::VFIO_EEH_PE_RESET_HOT,
            EehPeOp::ResetFundamental => vfio::VFIO_EEH_PE_RESET_FUNDAMENTAL,
            EehPeOp::Configure => vfio::VFIO_EEH_PE_CONFIGURE,
            EehPeOp::InjectError(_) => vfio::VFIO_EEH_PE_INJECT_ERR,
        }
    }

    /// The kernel request for this operation.
    pub fn to_request(&self) -> vfio::vfio_eeh_pe_op {
        let err = match *self {
            EehPeOp::InjectError(e) => vfio::vfio_eeh_pe_err {
                r#type: e.kind,
                func: e.func,
                addr: e.addr,
                mask: e.mask,
            },
            _ => vfio::vfio_eeh_pe_err::default(),
        };
        vfio::vfio_eeh_pe_op {
            argsz: crate::uapi::buf::argsz_of::<vfio::vfio_eeh_pe_op>(),
            flags: 0,
            op: self.raw(),
            u: vfio::vfio_eeh_pe_op_u { err },
        }
    }
}

/// The state of an EEH partitionable endpoint (`VFIO_EEH_PE_GET_STATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EehPeState {
    /// `VFIO_EEH_PE_STATE_NORMAL`: working.
    Normal,
    /// `VFIO_EEH_PE_STATE_RESET`: a reset is in progress.
    Reset,
    /// `VFIO_EEH_PE_STATE_STOPPED`: MMIO and DMA are frozen.
    Stopped,
    /// `VFIO_EEH_PE_STATE_STOPPED_DMA`: DMA is frozen.
    StoppedDma,
    /// `VFIO_EEH_PE_STATE_UNAVAIL`: the state cannot be read.
    Unavailable,
    /// A value this crate does not know.
    Other(i32),
}

impl EehPeState {
    /// Decodes the ioctl's result.
    pub const fn from_raw(raw: i32) -> EehPeState {
        match raw {
            vfio::VFIO_EEH_PE_STATE_NORMAL => EehPeState::Normal,
            vfio::VFIO_EEH_PE_STATE_RESET => EehPeState::Reset,
            vfio::VFIO_EEH_PE_STATE_STOPPED => EehPeState::Stopped,
            vfio::VFIO_EEH_PE_STATE_STOPPED_DMA => EehPeState::StoppedDma,
            vfio::VFIO_EEH_PE_STATE_UNAVAIL => EehPeState::Unavailable,
            other => EehPeState::Other(other),
        }
    }
}

impl Container {
    fn require_spapr(&self, op: &'static str) -> Result<()> {
        match self.iommu() {
            Some(IommuType::SpaprTce | IommuType::SpaprTceV2) => Ok(()),
            other => Err(Error::NotSupported {
                op,
                object: Object::Container.into(),
                reason: format!("needs an sPAPR TCE IOMMU (POWER); the container has {other:?}")
                    .into(),
                errno: Errno::EINVAL,
            }),
        }
    }

    /// `VFIO_IOMMU_ENABLE`—Enables the sPAPR IOMMU (needed before mapping with the v1
    /// IOMMU; also accounts the default window's memory).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`EBUSY` when already enabled, `ENOMEM` past `RLIMIT_MEMLOCK`).
    #[doc(alias = "VFIO_IOMMU_ENABLE")]
    pub fn spapr_enable(&self) -> Result<()> {
        self.require_spapr("spapr_enable")?;
        self.fd()
            .iommu_enable()
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_DISABLE`—Disables the sPAPR IOMMU.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`].
    #[doc(alias = "VFIO_IOMMU_DISABLE")]
    pub fn spapr_disable(&self) -> Result<()> {
        self.require_spapr("spapr_disable")?;
        self.fd()
            .iommu_disable()
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_SPAPR_TCE_GET_INFO`—The default window and dynamic window capabilities.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`].
    #[doc(alias = "VFIO_IOMMU_SPAPR_TCE_GET_INFO")]
    pub fn spapr_tce_info(&self) -> Result<SpaprTceInfo> {
        self.require_spapr("spapr_tce_info")?;
        self.fd()
            .spapr_tce_get_info()
            .map(|raw| SpaprTceInfo::from_raw(&raw))
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`—Pre-registers (pins and accounts) `size` bytes at
    /// `vaddr` (both page aligned) so that parts of it can be mapped (v2 IOMMU).
    ///
    /// Safe: registering gives no device access to the memory; only mapping does.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`EINVAL` when unaligned, `ENOMEM` past `RLIMIT_MEMLOCK`).
    #[doc(alias = "VFIO_IOMMU_SPAPR_REGISTER_MEMORY")]
    #[doc(alias = "vfio_iommu_spapr_register_memory")]
    pub fn spapr_register_memory(&self, vaddr: *const u8, size: u64) -> Result<()> {
        self.require_spapr("spapr_register_memory")?;
        self.fd()
            .spapr_register_memory(true, vaddr as u64, size)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY`—Undoes [`Container::spapr_register_memory`].
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`EBUSY` while part of it is still mapped, `ENOENT` when not registered).
    #[doc(alias = "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY")]
    pub fn spapr_unregister_memory(&self, vaddr: *const u8, size: u64) -> Result<()> {
        self.require_spapr("spapr_unregister_memory")?;
        self.fd()
            .spapr_register_memory(false, vaddr as u64, size)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_SPAPR_TCE_CREATE`—Creates a DMA window; returns its start address (the
    /// kernel picks it).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`EINVAL` for an unsupported page size or level count, `ENOSPC` when no window slot is
    /// free).
    #[doc(alias = "VFIO_IOMMU_SPAPR_TCE_CREATE")]
    pub fn spapr_create_window(&self, window: &SpaprWindow) -> Result<u64> {
        self.require_spapr("spapr_create_window")?;
        self.fd()
            .spapr_tce_create(&window.to_request())
            .map(|created| created.start_addr)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_SPAPR_TCE_REMOVE`—Removes the window starting at `start_addr` (the default
    /// window too).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`EINVAL` when no window starts there).
    #[doc(alias = "VFIO_IOMMU_SPAPR_TCE_REMOVE")]
    pub fn spapr_remove_window(&self, start_addr: u64) -> Result<()> {
        self.require_spapr("spapr_remove_window")?;
        self.fd()
            .spapr_tce_remove(start_addr)
            .map_err(|f| f.on(Object::Container))
    }

    /// DPDK's window setup (see the [module docs](self)): removes the default window, creates
    /// `window` trying one table level more after each refusal up to
    /// [`SpaprDdwInfo::max_levels`], and checks that it starts at 0. Returns the window as
    /// created (with the levels that worked).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] without an sPAPR IOMMU or when the window does not start at 0
    /// (it is removed again); [`Error::Ioctl`] from the last failed step.
    pub fn spapr_setup_dma_window(&self, window: SpaprWindow) -> Result<SpaprWindow> {
        let info = self.spapr_tce_info()?;
        self.spapr_remove_window(u64::from(info.dma32_window_start))?;
        let max_levels = info
            .ddw
            .map_or(window.levels, |d| d.max_levels.max(window.levels));
        let mut attempt = window;
        let start = loop {
            match self.spapr_create_window(&attempt) {
                Ok(start) => break start,
                Err(e) if attempt.levels >= max_levels => return Err(e),
                Err(_) => attempt.levels += 1,
            }
        };
        if start != 0 {
            // Best effort: the window is useless to an IOVA = address scheme.
            let _ = self.spapr_remove_window(start);
            return Err(Error::NotSupported {
                op: "spapr_setup_dma_window",
                object: Object::Container.into(),
                reason: format!("the kernel placed the window at {start:#x}, not at 0").into(),
                errno: Errno::ENOTSUP,
            });
        }
        Ok(attempt)
    }

    /// Registers then maps `size` bytes at `vaddr` to `iova` (DPDK's sPAPR map); if the map
    /// fails, the registration is undone. `iova + size` must lie inside a window.
    ///
    /// # Safety
    ///
    /// As [`Container::map_dma_raw`].
    ///
    /// # Errors
    ///
    /// As [`Container::spapr_register_memory`] and [`Container::map_dma_raw`].
    pub unsafe fn spapr_map_dma(
        &self,
        vaddr: *const u8,
        iova: u64,
        size: u64,
        access: DmaAccess,
    ) -> Result<()> {
        self.spapr_register_memory(vaddr, size)?;
        // SAFETY: forwarded from the caller.
        let mapped = unsafe { self.map_dma_raw(vaddr, iova, size, access) };
        if let Err(e) = mapped {
            let _ = self.spapr_unregister_memory(vaddr, size);
            return Err(e);
        }
        Ok(())
    }

    /// Unmaps `size` bytes at `iova`, then unregisters the memory at `vaddr` (DPDK's sPAPR
    /// unmap).
    ///
    /// # Errors
    ///
    /// As [`Container::unmap_dma`] and [`Container::spapr_unregister_memory`].
    pub fn spapr_unmap_dma(&self, vaddr: *const u8, iova: u64, size: u64) -> Result<()> {
        self.require_spapr("spapr_unmap_dma")?;
        self.unmap_dma(iova, size)?;
        self.spapr_unregister_memory(vaddr, size)
    }

    /// `VFIO_EEH_PE_OP`—Performs an EEH operation on the container's partitionable endpoint.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] unless the container has an sPAPR IOMMU; [`Error::Ioctl`]
    /// (`ENODEV` without EEH support; see [`Extension::Eeh`](crate::Extension::Eeh)).
    #[doc(alias = "VFIO_EEH_PE_OP")]
    pub fn eeh_pe_op(&self, op: EehPeOp) -> Result<()> {
        self.require_spapr("eeh_pe_op")?;
        self.fd()
            .eeh_pe_op(&op.to_request())
            .map(drop)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_EEH_PE_OP` with `VFIO_EEH_PE_GET_STATE`—The endpoint's state.
    ///
    /// # Errors
    ///
    /// As [`Container::eeh_pe_op`].
    #[doc(alias = "VFIO_EEH_PE_GET_STATE")]
    pub fn eeh_pe_state(&self) -> Result<EehPeState> {
        self.require_spapr("eeh_pe_state")?;
        let request = vfio::vfio_eeh_pe_op {
            argsz: crate::uapi::buf::argsz_of::<vfio::vfio_eeh_pe_op>(),
            op: vfio::VFIO_EEH_PE_GET_STATE,
            ..Default::default()
        };
        self.fd()
            .eeh_pe_op(&request)
            .map(EehPeState::from_raw)
            .map_err(|f| f.on(Object::Container))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddw() -> SpaprDdwInfo {
        // POWER9: 4 KiB, 64 KiB, 2 MiB, 1 GiB pages; 2 windows; 5 levels.
        SpaprDdwInfo {
            page_sizes: (1 << 12) | (1 << 16) | (1 << 21) | (1 << 30),
            max_dynamic_windows: 2,
            max_levels: 5,
        }
    }

    #[test]
    fn info_decodes_ddw_only_when_flagged() {
        let mut raw = vfio::vfio_iommu_spapr_tce_info {
            argsz: 32,
            flags: 0,
            dma32_window_start: 0,
            dma32_window_size: 1 << 31,
            ddw: vfio::vfio_iommu_spapr_tce_ddw_info {
                pgsizes: 1 << 16,
                max_dynamic_windows_supported: 1,
                levels: 4,
            },
        };
        assert_eq!(SpaprTceInfo::from_raw(&raw).ddw, None);
        raw.flags = vfio::VFIO_IOMMU_SPAPR_INFO_DDW;
        let info = SpaprTceInfo::from_raw(&raw);
        assert_eq!(info.dma32_window_size, 1 << 31);
        assert_eq!(
            info.ddw,
            Some(SpaprDdwInfo {
                page_sizes: 1 << 16,
                max_dynamic_windows: 1,
                max_levels: 4
            })
        );
        assert!(info.ddw.unwrap().supports_page_size(1 << 16));
        assert!(!info.ddw.unwrap().supports_page_size(1 << 21));
        assert!(!info.ddw.unwrap().supports_page_size(3));
    }

    #[test]
    fn windows_are_sized_the_dpdk_way() {
        // Hugepage memory ending at 0x7fff_a000_0000 (IOVA = VA): a 2^47 window of 2 MiB pages.
        let w = SpaprWindow::for_memory(0x7fff_a000_0000, 2 << 20, &ddw()).unwrap();
        assert_eq!(
            w,
            SpaprWindow {
                page_shift: 21,
                window_size: 1 << 47,
                levels: 1
            }
        );
        // IOVA = PA, RAM up to 0x1f_ffff_ffff: 128 GiB.
        let w = SpaprWindow::for_memory(0x20_0000_0000, 1 << 30, &ddw()).unwrap();
        assert_eq!((w.window_size, w.page_shift), (1 << 37, 30));
        // Tiny memory still gets one whole page.
        let w = SpaprWindow::for_memory(0x1000, 1 << 30, &ddw()).unwrap();
        assert_eq!(w.window_size, 1 << 30);
        // Refusals.
        let e = |r: Result<SpaprWindow>| r.unwrap_err().errno();
        assert_eq!(
            e(SpaprWindow::for_memory(1 << 40, 1 << 24, &ddw())),
            Errno::ENOTSUP
        );
        assert_eq!(
            e(SpaprWindow::for_memory(1 << 40, 3 << 20, &ddw())),
            Errno::EINVAL
        );
        assert_eq!(
            e(SpaprWindow::for_memory(0, 1 << 21, &ddw())),
            Errno::ERANGE
        );
        assert_eq!(
            e(SpaprWindow::for_memory(u64::MAX, 1 << 21, &ddw())),
            Errno::ERANGE
        );
    }

    #[test]
    fn create_requests_and_level_estimates() {
        let w = SpaprWindow {
            page_shift: 16,
            window_size: 1 << 40,
            levels: 2,
        };
        let r = w.to_request();
        assert_eq!(r.argsz, 40);
        assert_eq!((r.page_shift, r.window_size, r.levels), (16, 1 << 40, 2));
        assert_eq!((r.flags, r.start_addr), (0, 0));
        // 2^24 entries * 8 bytes / 64 KiB = 2^11 pages of table: QEMU asks for 2 levels.
        assert_eq!(w.estimated_levels(1 << 16), 2);
        // A 2 GiB window of 64 KiB pages needs 4 pages of TCEs: one level.
        let small = SpaprWindow {
            page_shift: 16,
            window_size: 1 << 31,
            levels: 1,
        };
        assert_eq!(small.estimated_levels(1 << 16), 1);
    }

    #[test]
    fn eeh_requests_carry_the_operation_and_the_error() {
        let ops = [
            (EehPeOp::Disable, 0),
            (EehPeOp::Enable, 1),
            (EehPeOp::UnfreezeIo, 2),
            (EehPeOp::UnfreezeDma, 3),
            (EehPeOp::ResetDeactivate, 5),
            (EehPeOp::ResetHot, 6),
            (EehPeOp::ResetFundamental, 7),
            (EehPeOp::Configure, 8),
        ];
        for (op, raw) in ops {
            let r = op.to_request();
            assert_eq!((r.argsz, r.flags, r.op), (40, 0, raw), "{op:?}");
            assert_eq!(r.u, vfio::vfio_eeh_pe_op_u::default());
        }
        let err = EehError {
            kind: 1,
            func: 4,
            addr: 0x1000,
            mask: !0xfff,
        };
        let r = EehPeOp::InjectError(err).to_request();
        assert_eq!(r.op, 9);
        let expected = vfio::vfio_eeh_pe_op_u {
            err: vfio::vfio_eeh_pe_err {
                r#type: 1,
                func: 4,
                addr: 0x1000,
                mask: !0xfff,
            },
        };
        assert_eq!(r.u, expected);
        assert_eq!(EehPeState::from_raw(0), EehPeState::Normal);
        assert_eq!(EehPeState::from_raw(1), EehPeState::Reset);
        assert_eq!(EehPeState::from_raw(2), EehPeState::Stopped);
        assert_eq!(EehPeState::from_raw(4), EehPeState::StoppedDma);
        assert_eq!(EehPeState::from_raw(5), EehPeState::Unavailable);
        assert_eq!(EehPeState::from_raw(3), EehPeState::Other(3));
    }
}
