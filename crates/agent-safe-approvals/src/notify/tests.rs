//! Tests of the notify module.
