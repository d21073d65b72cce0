#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backpack::fuzzing::queue_item(data));
