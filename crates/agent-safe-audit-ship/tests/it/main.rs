//! Audit shipping's integration tests: one test binary, a module per destination.

mod ship;
#[cfg(feature = "s3")]
mod ship_s3;
