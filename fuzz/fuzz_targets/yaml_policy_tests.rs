//! Fuzz the policy-test file parser.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _: Result<agent_safe_pdp::testing::TestFile, _> =
        agent_safe_registry::yaml::from_slice(Path::new("tests.yaml"), data);
});
