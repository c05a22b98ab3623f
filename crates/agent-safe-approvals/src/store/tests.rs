//! Tests of the store module.
