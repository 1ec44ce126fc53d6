//! The kernel ABI: every constant, `#[repr(C)]` struct and ioctl request of `<linux/vfio.h>`
//! ([`vfio`]) and `<linux/iommufd.h>` ([`iommufd`]) under the kernel's own names (the
//! definitions live in the [`uvfio_uapi`] crate, for crates that want only them), the
//! capability-chain parser ([`caps`]), and,
//! crate-private, the buffers and the only `ioctl(2)` calls of the crate.
//!
//! Everything above this module is safe Rust: it holds fds only through the typed wrappers of
//! the private `ioctl` module.

pub(crate) mod buf;
pub mod caps;
pub(crate) mod ioctl;
pub(crate) mod node;

/// `<linux/iommufd.h>`: the [`uvfio_uapi`] crate's definitions, re-exported.
pub use uvfio_uapi::iommufd;
/// `<linux/vfio.h>`: the [`uvfio_uapi`] crate's definitions, re-exported.
pub use uvfio_uapi::vfio;
