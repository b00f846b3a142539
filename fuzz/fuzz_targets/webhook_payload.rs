#![no_main]

// The check lives in the main crate, shared with tests/fuzz_corpus.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| wa_ai_bridge::fuzzing::webhook_payload(data));
