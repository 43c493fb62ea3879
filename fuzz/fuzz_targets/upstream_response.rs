#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| usher::fuzzing::upstream_response(data));
