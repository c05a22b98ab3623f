//! The audit log's integration tests: one test binary, a module per area.

mod compat;
mod concurrency;
