//! [`DmaPod`]: the plain data types that may be copied in and out of DMA memory, and the
//! [`dma_pod!`](crate::dma_pod) macro that implements it after checking a struct's layout.
//!
//! # Safety
//!
//! The DMA accessors read a `T: DmaPod` out of memory a device may have written with any bytes
//! at all, and write a `T` as its raw bytes. That is sound exactly when every bit pattern of
//! `size_of::<T>()` bytes is a valid `T` (so any bytes read are a value) and `T` has no padding
//! (so viewing a value as bytes never reads uninitialised memory). The implementations below
//! are for the primitive integers and floats, which have both properties, and for arrays of
//! such types, which inherit them (arrays have no padding between elements). The macro
//! implements the trait for a struct only after compile-time checks that prove both
//! properties: every field is `DmaPod`, and the fields, in order, tile the struct with no gap.
#![allow(unsafe_code)]

/// Plain data that can travel through DMA memory: any bit pattern is a valid value, and there
/// are no padding bytes.
///
/// Implemented for the primitive integers, `f32`/`f64`, and arrays of `DmaPod` types. For your
/// own `#[repr(C)]` descriptors, use [`dma_pod!`](crate::dma_pod), which checks the layout at
/// compile time, rather than an `unsafe impl`.
///
/// # Safety
///
/// An implementor must guarantee that:
/// - every bit pattern of `size_of::<Self>()` bytes is a valid value of the type (no `bool`,
///   `char`, enums, references, `NonZero*`, or types with invariants unsafe code relies on);
/// - the type has no padding bytes (its fields tile it exactly);
/// - it has a stable layout (`#[repr(C)]`, `#[repr(transparent)]` or a primitive).
pub unsafe trait DmaPod: Copy + Send + Sync + 'static {}

macro_rules! impl_pod {
    ($($t:ty),*) => {
        $(
            // SAFETY: a primitive integer or float: every bit pattern is valid, no padding.
            unsafe impl DmaPod for $t {}
        )*
    };
}

impl_pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of N values without padding or invalid bit patterns has neither itself.
unsafe impl<T: DmaPod, const N: usize> DmaPod for [T; N] {}

/// Implements [`DmaPod`](crate::dma::DmaPod) for a struct after proving, at compile time, that
/// it is safe: every listed field has the listed type, every field type is `DmaPod`, and the
/// fields, in the order given, tile the struct without gaps (no padding, nothing unlisted).
///
/// Give the struct `#[repr(C)]` (the check also passes for a Rust layout that happens to
/// match, but only `repr(C)` promises to keep it).
///
/// # Examples
///
/// ```
/// use uvfio::dma_pod;
///
/// /// A transmit descriptor of a NIC.
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, Default, PartialEq)]
/// struct TxDesc {
///     addr: u64,
///     len: u16,
///     cso: u8,
///     cmd: u8,
///     status: u8,
///     css: u8,
///     special: u16,
/// }
///
/// dma_pod!(TxDesc { addr: u64, len: u16, cso: u8, cmd: u8, status: u8, css: u8, special: u16 });
/// ```
///
/// A struct with padding does not compile:
///
/// ```compile_fail
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// struct Padded {
///     a: u8,
///     b: u32,
/// }
/// uvfio::dma_pod!(Padded { a: u8, b: u32 });
/// ```
#[macro_export]
macro_rules! dma_pod {
    ($($t:ty { $($field:ident : $ft:ty),* $(,)? }),+ $(,)?) => {
        $(
            const _: () = {
                #[allow(dead_code)]
                fn fields_have_the_listed_types(v: &$t) {
                    $( let _: &$ft = &v.$field; )*
                }
                #[allow(dead_code)]
                fn field_types_are_dma_pod() {
                    fn pod<T: $crate::dma::DmaPod>() {}
                    $( pod::<$ft>(); )*
                }
                let mut expected = 0usize;
                $(
                    assert!(
                        ::core::mem::offset_of!($t, $field) == expected,
                        concat!(
                            "dma_pod!: field `", stringify!($field), "` of `", stringify!($t),
                            "` is not right after the previous one: padding, or fields listed \
                             out of order"
                        )
                    );
                    expected += ::core::mem::size_of::<$ft>();
                )*
                assert!(
                    expected == ::core::mem::size_of::<$t>(),
                    concat!(
                        "dma_pod!: the listed fields do not cover all of `", stringify!($t),
                        "`: trailing padding, or fields missing"
                    )
                );
            };
            #[allow(unsafe_code)]
            // SAFETY: the checks above prove that the listed fields, all `DmaPod`, tile the
            // struct without gaps: any bit pattern is valid and there is no padding.
            unsafe impl $crate::dma::DmaPod for $t {}
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::DmaPod;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct Desc {
        addr: u64,
        len: u32,
        flags: [u8; 4],
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct Ring {
        head: u16,
        tail: u16,
        pad: u32,
        descs: [Desc; 2],
    }

    crate::dma_pod!(
        Desc {
            addr: u64,
            len: u32,
            flags: [u8; 4]
        },
        Ring {
            head: u16,
            tail: u16,
            pad: u32,
            descs: [Desc; 2]
        },
    );

    fn is_pod<T: DmaPod>() -> usize {
        std::mem::size_of::<T>()
    }

    #[test]
    fn checked_structs_and_arrays_are_pod() {
        assert_eq!(is_pod::<Desc>(), 16);
        assert_eq!(is_pod::<Ring>(), 40);
        assert_eq!(is_pod::<[u64; 3]>(), 24);
        assert_eq!(is_pod::<f64>(), 8);
    }
}
