//! Fuzz the action loader: any bytes as an action file must give a value or an error.
#![no_main]

use std::path::PathBuf;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = agent_safe_registry::Registry::from_sources([(PathBuf::from("actions/fuzz.yaml"), data)]);
});
