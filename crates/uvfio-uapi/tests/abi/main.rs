//! ABI test: the modules of `uvfio_uapi` against the kernel's C headers.
//!
//! One declarative list per header (the `abi_list!` invocations in `vfio.rs` and `iommufd.rs`)
//! names every struct, field, constant, ioctl request and macro function once. The macro expands
//! it into both sides of the check:
//! - the text of a C program that includes the header and prints, for each item, its `sizeof`,
//!   `_Alignof`, `offsetof`, field size and field type, or its value;
//! - the same facts computed from the Rust definitions.
//!
//! `abi_matches_c_header` compiles and runs the C program with `$CC` (default `cc`) and compares
//! the two sides line by line. `list_covers_whole_header` scans the header the compiler actually
//! includes and fails for every `#define`, enumerator, `struct` or struct field that the list
//! misses. `list_covers_whole_rust_module` does the same the other way round for the public
//! items of the Rust module. A missing compiler or header is a failure, never a skip.
//!
//! `vfio`: `<linux/vfio.h>` of the system's linux-libc-dev. `iommufd`: `<linux/iommufd.h>` of
//! the kernel source the project's test kernel is built from (`$UVFIO_ABI_HEADERS`; the host's
//! linux-libc-dev 6.1 has no iommufd.h), ignored by a plain `cargo test` and run by
//! tests/run-all.sh once the full flavour is provisioned.

#![allow(clippy::undocumented_unsafe_blocks)]

mod iommufd;
mod machinery;
mod module;
mod parse;
mod vfio;
