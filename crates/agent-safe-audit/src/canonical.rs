//! Canonical JSON (CPython `json.dumps(v, sort_keys=True)`): the implementation lives in
//! `agent_safe_core::canonical`, shared with ticket params digests; re-exported here because
//! it is the audit log's line format.

pub use agent_safe_core::canonical::*;
