//! Fuzz the audit verifier: any bytes as a log must give a report or an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = agent_safe_audit::verify_reader(std::io::Cursor::new(data));
});
