//! Tests of the rules module.
