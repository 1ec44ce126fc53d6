//! Property tests of the parsers of bytes that come from the kernel, a device or a caller:
//! each is compared with a simple reference model written here, on inputs proptest generates
//! (well-formed ones built by an encoder, then corrupted at random). The fuzz targets in fuzz/
//! check the same parsers' invariants on arbitrary bytes.

mod caps;
mod lists;
mod misc;
