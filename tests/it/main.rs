//! The one integration-test binary: a module per topic.

mod end_to_end;
mod no_panic;
