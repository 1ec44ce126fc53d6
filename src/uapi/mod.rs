//! The kernel ABI: every constant, `#[repr(C)]` struct and ioctl request of `<linux/vfio.h>`
//! ([`vfio`]) and `<linux/iommufd.h>` ([`iommufd`]) under the kernel's own names, the
//! capability-chain parser ([`caps`]), and,
//! crate-private, the buffers and the only `ioctl(2)` calls of the crate.
//!
//! Everything above this module is safe Rust: it holds fds only through the typed wrappers of
//! the private `ioctl` module.

pub(crate) mod buf;
pub mod caps;
pub(crate) mod ioctl;
pub mod iommufd;
pub(crate) mod node;
// Union field reads in the raw definitions are the only unsafe there.
#[allow(unsafe_code)]
pub mod vfio;
