//! Which types may be copied in and out of DMA memory, proven by zerocopy's derives.
//!
//! The typed accessors of [`DmaMemory`](super::DmaMemory) are bound on
//! [`zerocopy`](crate::zerocopy)'s traits instead of a trait of this crate:
//!
//! - reads ([`DmaMemory::read`](super::DmaMemory::read),
//!   [`read_slice`](super::DmaMemory::read_slice)) need [`FromBytes`]: every bit pattern is a
//!   valid value, so whatever bytes a device wrote are a value (no references, `bool`, `char`,
//!   enums, `NonZero*`);
//! - writes ([`write`](super::DmaMemory::write), [`write_slice`](super::DmaMemory::write_slice))
//!   need [`IntoBytes`] + [`Immutable`]: no padding and no interior mutability, so viewing a
//!   value as bytes never reads uninitialised or changing memory.
//!
//! The derives check a struct field by field at compile time, with no `unsafe` in the driver:
//! a `#![forbid(unsafe_code)]` crate can declare its descriptors. This replaces the former
//! `dma_pod!` macro, whose field-type check deref coercion defeated (a `&'static u64` field
//! listed as `u64` passed, so a read handed out a device-forged reference). With derives, the
//! macro's "a field was not listed" failure no longer exists: the derive sees every field.
//!
//! # Examples
//!
//! ```
//! #![forbid(unsafe_code)]
//! use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! /// A transmit descriptor of a NIC.
//! #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
//! #[repr(C)]
//! struct TxDesc {
//!     addr: u64,
//!     len: u16,
//!     cso: u8,
//!     cmd: u8,
//!     status: u8,
//!     css: u8,
//!     special: u16,
//! }
//!
//! fn first(ring: &impl uvfio::DmaMemory) -> uvfio::Result<TxDesc> {
//!     ring.read::<TxDesc>(0)
//! }
//! ```
//!
//! The derives refuse what is not plain data. A reference field (the hole of `dma_pod!`):
//!
//! ```compile_fail,E0277
//! use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//! #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy)]
//! #[repr(C)]
//! struct Evil {
//!     p: &'static u64,
//! }
//! ```
//!
//! A struct with padding (3 bytes after `a`) cannot be written:
//!
//! ```compile_fail,E0277
//! use uvfio::zerocopy::{Immutable, IntoBytes};
//! #[derive(IntoBytes, Immutable, Clone, Copy)]
//! #[repr(C)]
//! struct Padded {
//!     a: u8,
//!     b: u32,
//! }
//! ```
//!
//! A `bool` field (only 0 and 1 are valid) cannot be read from device-written bytes:
//!
//! ```compile_fail,E0277
//! use uvfio::zerocopy::FromBytes;
//! #[derive(FromBytes, Clone, Copy)]
//! #[repr(C)]
//! struct Flagged {
//!     addr: u64,
//!     done: bool,
//! }
//! ```
//!
//! Nor an enum field (only its listed discriminants are valid):
//!
//! ```compile_fail,E0277
//! use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes};
//! #[derive(IntoBytes, Immutable, Clone, Copy)]
//! #[repr(u8)]
//! enum Kind {
//!     Read = 1,
//!     Write = 2,
//! }
//! #[derive(FromBytes, Clone, Copy)]
//! #[repr(C)]
//! struct Cmd {
//!     kind: Kind,
//!     rest: [u8; 7],
//! }
//! ```
//!
//! And the accessors accept nothing else: a type without the derives does not compile.
//!
//! ```compile_fail,E0277
//! fn forged(ring: &impl uvfio::DmaMemory) -> &'static u64 {
//!     ring.read::<&'static u64>(0).unwrap()
//! }
//! ```
//!
//! ```compile_fail,E0277
//! fn flag(ring: &impl uvfio::DmaMemory) -> bool {
//!     ring.read::<bool>(0).unwrap()
//! }
//! ```

#[allow(unused_imports)] // For the intra-doc links above.
use zerocopy::{FromBytes, Immutable, IntoBytes};

#[cfg(test)]
mod tests {
    use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

    #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
    #[repr(C)]
    struct Desc {
        addr: u64,
        len: u32,
        flags: [u8; 4],
    }

    #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
    #[repr(C)]
    struct Ring {
        head: u16,
        tail: u16,
        pad: u32,
        descs: [Desc; 2],
    }

    fn is_plain<T: FromBytes + IntoBytes + Immutable>() -> usize {
        std::mem::size_of::<T>()
    }

    #[test]
    fn derived_structs_and_arrays_are_plain_data() {
        assert_eq!(is_plain::<Desc>(), 16);
        assert_eq!(is_plain::<Ring>(), 40);
        assert_eq!(is_plain::<[u64; 3]>(), 24);
        assert_eq!(is_plain::<f64>(), 8);
    }
}
