//! Tests of the nonce stores.
