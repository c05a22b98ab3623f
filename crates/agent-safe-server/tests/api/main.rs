//! The HTTP API over a real socket on 127.0.0.1 (one test binary, a module per topic).

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod auth;
mod endpoints;
mod limits;
mod reload;
mod soak;
mod support;
mod tls;
