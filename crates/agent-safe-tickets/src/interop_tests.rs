//! Interop with tokens minted by the Python implementation.
