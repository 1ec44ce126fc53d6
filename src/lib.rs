//! uvfio: safe userspace device drivers on Linux VFIO.
//!
//! (Crate documentation is written in full once the object layer lands.)

#![deny(
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

pub mod error;
pub mod pci;
pub mod uapi;

pub use error::{Errno, Error, Object, Result};
