//! Parser target `grant_request`: see `latchkey_fuzz::frames::grant_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::grant_request(data));
