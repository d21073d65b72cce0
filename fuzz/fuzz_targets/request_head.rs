#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backpack::fuzzing::request_head(data));
