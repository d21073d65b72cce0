#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backpack::fuzzing::cluster_state(data));
