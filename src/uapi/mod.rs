//! The kernel ABI: every constant, `#[repr(C)]` struct and ioctl request of `<linux/vfio.h>`
//! under the kernel's own names, the capability-chain parser, and the only `ioctl(2)` calls of the
//! crate.

pub mod caps;
pub mod vfio;
