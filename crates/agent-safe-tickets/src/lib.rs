//! agent-safe signing keys, identity tokens, execution tickets and the persistent single-use nonce store.
