//! Tests of the dispatch module.
