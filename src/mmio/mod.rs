//! Device register access: region mappings with volatile, bounds-checked accessors and a pread/pwrite fallback.
