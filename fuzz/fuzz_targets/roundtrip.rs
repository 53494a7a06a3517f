//! `roundtrip` fuzz target: see [`clusterer_fuzz::checks::roundtrip`].

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| clusterer_fuzz::checks::roundtrip(data));
