#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backpack::fuzzing::upload_grant(data));
