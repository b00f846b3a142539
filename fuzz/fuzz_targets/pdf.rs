#![no_main]

// The check lives in the main crate, shared with tests/fuzz_corpus.rs. The
// hook is set after libFuzzer's own, which aborts on every panic, even one
// the PDF reader catches.
libfuzzer_sys::fuzz_target!(init: wa_ai_bridge::fuzzing::quiet_caught_pdf_panics(), |data: &[u8]| {
    wa_ai_bridge::fuzzing::pdf(data)
});
