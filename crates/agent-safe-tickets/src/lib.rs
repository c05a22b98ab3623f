//! agent-safe signing keys, identity tokens, execution tickets and the persistent single-use nonce store.
//!
//! - [`SigningKey`] / [`VerifyingKey`] / [`KeySet`]: HS256 secrets (Python-compatible) and Ed25519
//!   key pairs, with key ids for rotation; [`load_key_file`] / [`write_key_files`].
//! - [`IdentityManager`]: mints and validates agent identity tokens (SPEC §7.1).
//! - [`TicketIssuer`] / [`TicketValidator`]: execution tickets bound to an action, a target and a
//!   digest of the exact params, single use through a [`NonceStore`] (SPEC §7.2).
//! - [`FileNonceStore`]: nonces shared by processes and kept across restarts.
//!
//! Tokens are JWTs. Time always comes from the injected [`agent_safe_core::Clock`]; no check
//! reads the wall clock. See `docs/tickets.md` for formats, validation order and the threat model.

mod canonical;
mod identity;
mod jwt;
mod keyfile;
mod keys;
mod nonce;
mod ticket;

/// The benchmark figures (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod bench;
/// The contract every nonce store keeps, for backends' tests (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub use nonce::contract as nonce_contract;

pub use canonical::{canonical_json, params_digest};
pub use identity::{
    DEFAULT_IDENTITY_TTL, DEFAULT_ISSUER, IdentityClaims, IdentityManager, TokenError,
    VerifiedIdentity,
};
pub use jwt::{Audience, MAX_TOKEN_BYTES};
pub use keyfile::{KeyFiles, load_key_file, load_verifying_key_file, write_key_files};
pub use keys::{KeyAlgorithm, KeyError, KeySet, MIN_HS256_KEY_BYTES, SigningKey, VerifyingKey};
pub use nonce::{
    CompactionStats, FileNonceStore, MAX_NONCE_LEN, MemoryNonceStore, NONCE_GRACE, NonceStore,
    NonceStoreError, check_nonce,
};
pub use ticket::{
    DEFAULT_TICKET_AUDIENCE, DEFAULT_TICKET_TTL, Expected, TICKET_TYPE, TicketError, TicketIssuer,
    TicketValidation, TicketValidator, ValidatedTicket,
};

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod test_support;
