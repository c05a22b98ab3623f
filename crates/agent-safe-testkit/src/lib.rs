//! Test helpers shared by agent-safe's test suites. Never published, never in a release build:
//! crates use it as a dev-dependency only.
//!
//! [`TestServer`] is the one loopback HTTP/1.1 server the tests use where something plays a
//! remote service (a webhook, the Kubernetes API server, STS, an approval notifier's endpoint):
//! hyper on a runtime of its own, so synchronous and `#[tokio::test]` tests use it alike. It
//! records every request, answers as the test says ([`Reply`]), holds answers until released,
//! goes down and comes back on the same port, and reports connections that broke the protocol.
//!
//! [`moto`] (feature `moto`) finds or starts moto's AWS-compatible server for the AWS suites;
//! [`postgres`] (feature `postgres`) a PostgreSQL server and a fresh database per test.

mod http;
#[cfg(feature = "moto")]
pub mod moto;
#[cfg(feature = "postgres")]
mod pg_server;
#[cfg(feature = "postgres")]
pub mod postgres;

pub use http::{Reply, Request, TestServer};
