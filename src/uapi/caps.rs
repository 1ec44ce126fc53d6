//! Bounds-checked, loop-safe parsing of `vfio_info_cap_header` chains.

/// Why a capability chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapChainError {
    /// Placeholder until the parser lands.
    #[error("offset {offset} is outside the buffer")]
    OutOfBounds {
        /// The offending offset.
        offset: usize,
    },
}
