//! The server's integration tests (one test binary, a module per topic): the HTTP API over a
//! real socket on 127.0.0.1, and the MCP server.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod auth;
mod checkpoints;
mod endpoints;
mod limits;
mod mcp;
mod reload;
mod soak;
mod support;
mod tls;
