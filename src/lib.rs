//! uvfio: safe userspace device drivers on Linux VFIO.
//!
//! VFIO lets a process own a PCI (or platform) device: map its registers, program its DMA
//! through the IOMMU, and receive its interrupts on eventfds. uvfio wraps every part of that
//! kernel interface in safe, owned Rust types.
//!
//! # The object model
//!
//! One type per kernel object, each owning its file descriptor (kvm-ioctls' model), and one
//! type per thing a driver holds:
//!
//! | type | what it is | created by |
//! |---|---|---|
//! | [`DmaSpace`] | the IOMMU backend a driver chose ([`IommuMode`]): a container or an iommufd IOAS; devices are opened into it, DMA memory is mapped in it | [`DmaSpace::open`] |
//! | [`Container`] | `/dev/vfio/vfio`: an IOMMU context | [`Container::new`] |
//! | [`Group`] | `/dev/vfio/N`: the devices the IOMMU cannot tell apart | [`Group::open`], [`Group::open_pci`] |
//! | [`Device`] | a device fd | [`DmaSpace::open_pci_device`], [`Group::open_device`], [`iommufd::Iommufd::open_pci_device`] |
//! | [`Region`] | a BAR or other region: mapped where the kernel allows, `pread`/`pwrite` elsewhere | [`Device::region`] |
//! | [`Interrupts`] | an enabled IRQ index, its vectors on eventfds | [`Device::enable_irqs`] |
//! | [`DmaBuffer`], [`DmaPool`] | memory the device reaches at an IOVA through the IOMMU | [`DmaBuffer::new`], [`DmaPool::new`] |
//! | [`iommufd::Iommufd`] | `/dev/iommu`: the modern front door (Linux 6.6+ with the cdev) | [`iommufd::Iommufd::new`] |
//! | [`iommufd::Ioas`] | an I/O address space of the iommufd | [`iommufd::Iommufd::alloc_ioas`] |
//! | [`mdev::MdevInstance`] | a mediated device (`/sys/bus/mdev/devices/<uuid>`), removed on drop | [`mdev::Mdevs::create`] |
//! | [`device::Migration`] | a device's migration state machine; [`device::MigrationData`] its data fd | [`Device::migration`] |
//!
//! VFIO has two front doors. The modern one, iommufd (Linux 6.6+ with `CONFIG_IOMMUFD` and
//! `CONFIG_VFIO_DEVICE_CDEV`), opens a device through its cdev (`/dev/vfio/devices/vfioN`),
//! binds it to `/dev/iommu` and attaches it to an I/O address space
//! ([`iommufd::Iommufd::open_pci_device`], [`Device::attach`]). The legacy one opens it from its
//! group in a container. [`DmaSpace`] is one API over both, in the five modes the kernel's
//! selftests name ([`IommuMode`]): the [`Device`] is the same type with the same regions,
//! interrupts, resets and features, and [`DmaBuffer`] and [`DmaPool`] map on either. A driver
//! names the backend in one line and nothing else changes:
//!
//! ```no_run
//! use uvfio::{DmaBuffer, DmaMemory, DmaSpace, IommuMode};
//!
//! let space = DmaSpace::open(IommuMode::best_available())?; // or "iommufd".parse()?
//! let device = space.open_pci_device(&"0000:00:03.0".parse()?)?;
//! let ring = DmaBuffer::new(&space, 4096)?;
//! println!("{} through {}: ring at {:#x}", device.name(), space.mode(), ring.iova());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! On the legacy path, the *group* is the unit of ownership: the kernel hands it out only when every device in it is
//! bound to vfio-pci. Groups join a container; the container's IOMMU model is set once the first
//! group has joined; devices are then opened from their group.
//!
//! Handles are cheap clones of an `Arc`. Whatever is made from a device (a region mapping, an
//! interrupt handle) keeps the device alive, a device keeps its group, and a group its container;
//! DMA memory keeps its container. Dropping undoes exactly what creation did, in the right order,
//! without panicking: a DMA buffer is unmapped from the IOMMU before its memory is freed, an
//! interrupt index is disabled before its eventfds are closed, the device fd is closed before its
//! group leaves the container.
//!
//! # Walkthrough
//!
//! The complete driver this sketches is `examples/edu.rs` (which opens its device through a
//! [`DmaSpace`]); this sketch takes the legacy path step by step.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use uvfio::device::{IrqIndex, RegionIndex};
//! use uvfio::dma::DmaMemory;
//! use uvfio::{Container, DmaBuffer, Group, IommuType};
//!
//! // 1. The container, and the host's capabilities.
//! let container = Container::new()?;
//! let extensions = container.extensions()?;
//! assert!(extensions.contains(uvfio::Extension::Type1v2Iommu));
//!
//! // 2. The group of the device (from sysfs), checked for viability, joins the container.
//! let address = "0000:00:03.0".parse()?;
//! let group = Group::open_pci(&address)?;
//! group.set_container(&container)?;
//!
//! // 3. Now the IOMMU model can be set, and the device opened.
//! container.set_iommu(IommuType::Type1v2)?;
//! let iommu = container.iommu_info()?;
//! println!("IOMMU page size {:?}, ranges {:?}", iommu.min_page_size(), iommu.iova_ranges());
//! let device = group.open_device("0000:00:03.0")?;
//! // (Steps 1-3 in one call, reusing groups already in the container:
//! // `container.open_pci_device(&address)?`.)
//!
//! // 4. Memory space and bus mastering on, BAR0 mapped; registers by offset, bounds-checked.
//! let config = device.pci_config()?;
//! config.enable_memory_space()?;
//! config.set_bus_master(true)?;
//! let bar0 = device.region(RegionIndex::BAR0)?;
//! let status = bar0.read_u32(0x08)?;
//!
//! // 5. DMA memory at an IOVA the device can use; the CPU side is volatile, never a `&[u8]`.
//! let mut ring = DmaBuffer::new(&container, 4096)?;
//! ring.write::<u64>(0, 0x1234)?;
//! bar0.write_u32(0x2800, ring.iova() as u32)?;
//!
//! // 6. An MSI-X vector on an eventfd, and a wait for it.
//! let irqs = device.enable_irqs(IrqIndex::MSIX, 1)?;
//! if let Some(count) = irqs.wait(0, Some(Duration::from_secs(1)))? {
//!     println!("vector 0 fired {count} times; status was {status:#x}");
//! }
//! // Dropping everything undoes it in reverse: MSI-X disabled, then the eventfd closed; the
//! // buffer unmapped, then freed; BAR0 unmapped; the device closed; the group released.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Which devices there are to open, without walking sysfs by hand: [`pci::discover`] lists the
//! host's PCI functions with their IDs, class, driver, IOMMU group, its viability and the
//! `/dev/vfio` nodes, and those usable through VFIO now:
//!
//! ```no_run
//! use uvfio::pci::sysfs::Sysfs;
//!
//! for f in Sysfs::new().find_vfio_devices(&"8086:100e".parse()?)? {
//!     println!("{f}"); // 0000:00:03.0 [0200] 8086:100e (vfio-pci, group 7)
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Why one cannot be opened, and making it openable: [`host`] diagnoses a function (IOMMU,
//! interrupt remapping, group viability, driver, node permissions, `RLIMIT_MEMLOCK`, DMA entry
//! limits, iommufd, no-IOMMU mode: each check with its verdict and fix) and binds functions or
//! whole groups to vfio-pci with their previous drivers recorded for a later restore. The
//! `uvfio` command (crate `uvfio-cli`) is a thin shell over it.
//!
//! # Mediated devices and migration
//!
//! [`mdev`] lists the parents and types of mediated devices and creates instances (removed on
//! drop); an instance opens like any device, from its sysfs directory
//! ([`DmaSpace::open_device_at`]). [`device::migration`] types VFIO migration v2 as
//! `include/uapi/linux/vfio.h` defines it: "The device migration Finite State Machine is
//! described by the enum vfio_device_mig_state. Some of the FSM arcs will create a migration
//! data transfer session by returning a FD". The API's arcs are the kernel's
//! (`vfio_mig_get_next_state()`); a target with no legal path is refused before any state-changing ioctl; "To
//! recover from ERROR VFIO_DEVICE_RESET must be used" ([`device::Migration::recover`]):
//!
//! ```no_run
//! use uvfio::device::{migration, MigState};
//! use uvfio::{DmaSpace, IommuMode};
//!
//! let space = DmaSpace::open(IommuMode::best_available())?;
//! let a = space.open_device_at("/sys/bus/mdev/devices/0f3b29a6-7a1b-4c1e-9e6a-000000000001")?;
//! let b = space.open_device_at("/sys/bus/mdev/devices/0f3b29a6-7a1b-4c1e-9e6a-000000000002")?;
//! let state = migration::save(&a)?; // RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY, read, STOP
//! migration::load(&b, &state)?; // ... -> STOP -> RESUMING, write, STOP
//! b.migration()?.set_state(MigState::RUNNING)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # ioctls and where they are
//!
//! | ioctl | method | run by (tests/hw) |
//! |---|---|---|
//! | `VFIO_GET_API_VERSION` | [`Container::api_version`] (checked by [`Container::new`]) | `core::container_reports_version_and_type1v2`, `container_api_version_is_0` |
//! | `VFIO_CHECK_EXTENSION` | [`Container::check_extension`], [`Container::extensions`] | `core::container_reports_version_and_type1v2` |
//! | `VFIO_SET_IOMMU` | [`Container::set_iommu`]; no-IOMMU mode only with [`Container::set_iommu_unchecked`] (`unsafe`) | `core::set_iommu_needs_a_group_first_and_only_once`; no-IOMMU: `kernel::noiommu_mode_gives_noiommu_groups` |
//! | `VFIO_IOMMU_GET_INFO` (type1) | [`Container::iommu_info`] | `core::type1_iommu_info_has_page_sizes_and_ranges` |
//! | `VFIO_IOMMU_MAP_DMA` | [`dma::DmaBuffer`], [`dma::DmaPool`] (safe, own their memory); [`Container::map_dma_raw`], [`Container::map_dma_runs`] (`unsafe`); with `VFIO_DMA_MAP_FLAG_VADDR`: [`Container::update_dma_vaddr`] | `dma::dma_round_trip_with_buffers_at_several_iovas_and_sizes`; VADDR: `dma::mapping::unmap_all_runs_and_vaddr_update` |
//! | `VFIO_IOMMU_UNMAP_DMA` | dropping a [`dma::DmaBuffer`]; [`Container::unmap_dma`], [`Container::unmap_all_dma`] (`VFIO_DMA_UNMAP_FLAG_ALL`), [`Container::invalidate_dma_vaddr`] (`FLAG_VADDR`, `unsafe`), [`Container::unmap_dma_dirty`] (`FLAG_GET_DIRTY_BITMAP`) | `dma::mapping::unmap_all_runs_and_vaddr_update`, `dma::selftest::vfio_dma_map_limit_test_*`; dirty: `dma::mapping::dirty_tracking_reports_device_writable_pages` |
//! | `VFIO_IOMMU_DIRTY_PAGES` | [`Container::start_dirty_tracking`], [`Container::stop_dirty_tracking`], [`Container::dirty_bitmap`] | `dma::mapping::dirty_tracking_reports_device_writable_pages` |
//! | `VFIO_IOMMU_ENABLE` / `DISABLE` (sPAPR) | [`Container::spapr_enable`], [`Container::spapr_disable`] | unit tests of `iommu::spapr` (x86 has no sPAPR); the refusal on type1: `dma::mapping::spapr_calls_are_refused_on_a_type1_container` |
//! | `VFIO_IOMMU_SPAPR_TCE_GET_INFO` | [`Container::spapr_tce_info`] | as above |
//! | `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` / `UNREGISTER_MEMORY` | [`Container::spapr_register_memory`], [`Container::spapr_unregister_memory`], [`Container::spapr_map_dma`], [`Container::spapr_unmap_dma`] | as above |
//! | `VFIO_IOMMU_SPAPR_TCE_CREATE` / `REMOVE` | [`Container::spapr_create_window`], [`Container::spapr_remove_window`], [`Container::spapr_setup_dma_window`] | as above |
//! | `VFIO_EEH_PE_OP` | [`Container::eeh_pe_op`], [`Container::eeh_pe_state`] | as above |
//! | `IOMMU_IOAS_ALLOC` / `IOMMU_DESTROY` | [`iommufd::Iommufd::alloc_ioas`] / dropping the last [`iommufd::Ioas`] handle | `kernel::iommufd_allocates_and_destroys_an_ioas` |
//! | `IOMMU_IOAS_MAP` / `UNMAP` | [`DmaBuffer`], [`DmaPool`] on a [`DmaSpace`] or `&Ioas` (safe); [`iommufd::Ioas::map_raw`] (`unsafe`), [`iommufd::Ioas::unmap`], [`iommufd::Ioas::unmap_all`] | `iommufd::edu_dma_round_trip_through_an_ioas`; the `dma::` tests in mode `iommufd` |
//! | `IOMMU_IOAS_COPY`, `IOVA_RANGES`, `ALLOW_IOVAS` | [`iommufd::Ioas::copy_from`], [`iommufd::Ioas::iova_ranges`], [`iommufd::Ioas::allow_iovas`] | `iommufd::iommufd_ioas_copy_area_serves_a_device_after_the_source_unmaps`, `iommufd::iommufd_ioas_iova_ranges_leave_out_the_msi_window` |
//! | `IOMMU_OPTION` (huge pages) | [`iommufd::Ioas::huge_pages`], [`iommufd::Ioas::set_huge_pages`] | `iommufd::iommufd_ioas_option_huge_pages`; RLIMIT_MODE: `hwpt::iommufd_option_rlimit_mode_round_trips` |
//! | `IOMMU_GET_HW_INFO` | [`iommufd::Iommufd::hw_info`] | `hwpt::iommufd_dirty_tracking_enforce_dirty_is_typed` |
//! | `IOMMU_HWPT_ALLOC`, `HWPT_SET_DIRTY_TRACKING`, `HWPT_GET_DIRTY_BITMAP` | [`iommufd::Ioas::alloc_hwpt`], [`Device::attach_hwpt`], [`iommufd::Hwpt::set_dirty_tracking`], [`iommufd::Hwpt::read_dirty`] | `hwpt::iommufd_ioas_hwpt_attach_replace_and_dma_through_it`; dirty tracking: its typed refusal, `hwpt::iommufd_dirty_tracking_enforce_dirty_is_typed` (QEMU's VT-d has none) |
//! | `VFIO_DEVICE_BIND_IOMMUFD` | [`iommufd::Iommufd::open_cdev`], [`iommufd::Iommufd::open_pci_device`] | `iommufd::iommufd_setup_bind_and_the_device_works_as_through_a_group` |
//! | `VFIO_DEVICE_ATTACH_IOMMUFD_PT` / `DETACH` | [`Device::attach`], [`Device::detach`] | `iommufd::iommufd_setup_attach_detach_and_invalid_pt_fails`, `hwpt::iommufd_ioas_hwpt_attach_replace_and_dma_through_it` |
//! | `VFIO_GROUP_GET_STATUS` | [`Group::status`] | `group_viable_edu` (and the other `group_viable_*`) |
//! | `VFIO_GROUP_SET_CONTAINER` / `UNSET_CONTAINER` | [`Group::set_container`], [`Group::unset_container`] | `core::two_groups_share_one_container`, `dma_lost::an_explicit_unset_container_also_unmaps` |
//! | `VFIO_GROUP_GET_DEVICE_FD` | [`Group::open_device`] | `core::open_pci_device_finds_and_reuses_the_group` |
//! | `VFIO_DEVICE_GET_INFO` | [`Device::info`] | `core::device_info_regions_and_irqs_match_the_emulated_devices` |
//! | `VFIO_DEVICE_GET_REGION_INFO` | [`Device::region_info`], [`Device::regions`] | `core::device_info_regions_and_irqs_match_the_emulated_devices`, `regions::` |
//! | `VFIO_DEVICE_GET_IRQ_INFO` | [`Device::irq_info`], [`Device::irqs`] | `core::device_info_regions_and_irqs_match_the_emulated_devices` |
//! | `VFIO_DEVICE_SET_IRQS` | [`Device::set_irqs`] (checked raw form); [`Device::enable_irqs`], [`Device::enable_irqs_with`], [`Device::notify_errors`], [`Device::notify_release_requests`] return an [`Interrupts`] handle ([`irq`]) | `irq::edu_msi_raise_and_factorial_deliver_to_the_eventfd`, `irq::msix::e1000e_msix_vectors_change_and_remove_without_disturbing_the_rest`, `irq::err_and_req_notifications` |
//! | `VFIO_DEVICE_IOEVENTFD` | [`Device::ioeventfd`], [`Device::ioeventfd_with`] return an [`irq::IoEventFd`] | `irq::ioeventfd::ioeventfd_writes_pci_testdev_registers` |
//! | `VFIO_DEVICE_RESET` | [`Device::reset`] | `core::reset_works_where_the_device_offers_it` |
//! | `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO` | [`Device::pci_hot_reset_info`] | `pci::hot_reset_info_lists_the_nvme_behind_the_root_port` |
//! | `VFIO_DEVICE_PCI_HOT_RESET` | [`Device::pci_hot_reset`] (takes the affected [`Group`]s as proof; none for a cdev device, whose iommufd proves ownership) | `pci::hot_reset_needs_the_right_groups_and_resets_the_nvme`, `iommufd::cdev_hot_reset_proves_ownership_by_iommufd_and_resets_the_nvme` |
//! | `VFIO_DEVICE_QUERY_GFX_PLANE` | [`Device::gfx_plane_supported`] (`PROBE`), [`Device::gfx_plane`] (retries mbochs' `ENOMEM`), [`Device::gfx_plane_once`]; pixels: [`Device::gfx_framebuffer`], [`device::gfx::BochsDispi::framebuffer`] | `gfx::` |
//! | `VFIO_DEVICE_GET_GFX_DMABUF` | [`Device::gfx_dmabuf`] returns a [`device::GfxDmaBuf`] | `gfx::` |
//! | `VFIO_DEVICE_FEATURE` | [`Device::feature_probe`], [`Device::features`] (`PROBE`); typed GET/SET in [`device::feature`] (low power, bus master, VF token, migration state, DMA logging) | `pci::features_probe_and_typed_not_supported`; low power: the `decoding::` tests |
//! | `VFIO_DEVICE_FEATURE_MIGRATION`, `_MIG_DEVICE_STATE`, `_MIG_DATA_SIZE` | [`device::Migration`] ([`Device::migration`]): the kernel's arcs ([`device::Migration::step`], [`device::Migration::set_state`]), [`device::migration::save`], [`device::migration::load`] | `migration::` |
//! | `VFIO_MIG_GET_PRECOPY_INFO` | [`device::MigrationData::precopy_info`] | `migration::mtty_precopy_info_and_stream` |
//! | region `mmap` / `pread` / `pwrite` | [`Device::region`], [`Device::region_with`] return a [`Region`] ([`mmio`]); config space: [`Device::pci_config`] ([`pci::config`]); ROM: [`Device::read_rom`] | `regions::`, `pci::config_space_of_every_device_matches_sysfs`, `pci::rom_and_vga_are_read_where_present` |
//!
//! Every constant, struct and ioctl number of `<linux/vfio.h>` is in [`uapi::vfio`] under the
//! kernel's name, checked against the system header by the ABI test.
//!
//! # Not covered yet
//!
//! - Of iommufd: nested hardware page tables and their invalidation, fault queues, vIOMMU and
//!   PASID (QEMU's VT-d offers the guest no nesting, so nothing could run them); `IOMMU_IOAS_MAP_FILE` (Linux 6.13, not in the
//!   6.12 kernel the project tests on).
//! - vfio-user.
//! - sPAPR TCE and EEH are typed and their requests unit-tested, but cannot run on x86.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`], which names the ioctl or operation, the object (group,
//! device, region or IRQ index) and carries the errno; see [`error`].
//!
//! # Tracing kernel calls
//!
//! With the `trace` feature (off by default), every kernel call the crate makes is a record of
//! the [`log`](https://docs.rs/log) facade, target `uvfio::kernel`: every ioctl (level `trace`),
//! region and config-space `pread`/`pwrite` (`trace`), and the set-up calls, `open` of a VFIO
//! node, `mmap` of a region, DMA memory or dma-buf, `eventfd` and sysfs writes (`debug`). A
//! record reads `OP on OBJECT (ARGS) -> RESULT in DURATION`:
//!
//! ```text
//! open on /dev/vfio/vfio -> ok fd 3 in 9.1µs
//! VFIO_IOMMU_MAP_DMA on container fd 3 (iova=0x100000 len=0x1000 vaddr=0x7f3a9c000000 flags=0x3) -> ok 0 in 14.2µs
//! VFIO_DEVICE_GET_REGION_INFO on device fd 6 (index=7 argsz=256) -> EINVAL in 1.3µs
//! ```
//!
//! The object of an ioctl is the kind of file ([`error::Object`]'s words: container, group,
//! device, iommufd) and its fd, which the `open` record (or `VFIO_GROUP_GET_DEVICE_FD`'s result)
//! ties to a node; a failed call shows the errno's name. Records are built only when a logger
//! takes them (`log::log_enabled!`), and without the feature the hook is the call itself:
//! nothing is formatted, timed or even compiled in. Any `log` logger shows them, e.g.
//! `env_logger` with `RUST_LOG=uvfio::kernel=trace`; the `uvfio` command prints them with
//! `--trace` (`-t` the set-up calls, `-tt` every ioctl too).
//!
//! ```toml
//! uvfio = { version = "0.1", features = ["trace"] }
//! ```
//!
//! # References
//!
//! - Kernel documentation, "VFIO - Virtual Function I/O":
//!   <https://docs.kernel.org/driver-api/vfio.html>
//! - `include/uapi/linux/vfio.h`

#![deny(
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
#![deny(unsafe_code)]

pub mod container;
pub mod device;
pub mod dma;
mod errno;
pub mod error;
#[cfg(test)]
mod fuzz_seeds;
pub mod group;
pub mod host;
pub mod iommu;
pub mod iommufd;
pub mod irq;
pub mod mdev;
pub mod mmio;
pub mod pci;
#[cfg(test)]
mod test_alloc;
mod trace;
pub mod uapi;

pub use container::{Container, Extension, Extensions, IommuType};
pub use device::Device;
pub use dma::{DmaBuffer, DmaMemory, DmaOptions, DmaPool};
pub use error::{Errno, Error, ErrorKind, Object, Result};
pub use group::Group;
pub use iommu::{DmaSpace, IommuMode};
pub use irq::Interrupts;
pub use mmio::{MapOptions, Region};
/// The zerocopy version whose `FromBytes`/`IntoBytes`/`Immutable` bound the typed DMA accessors
/// (see [`dma`](crate::dma#descriptors-and-other-typed-values)).
pub use zerocopy;

// The README's examples are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
