//! Fuzz the inventory loader.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = agent_safe_registry::Inventory::from_source(Path::new("inventory.yaml"), data);
});
