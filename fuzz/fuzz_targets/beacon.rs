//! Parser target `beacon`: see `latchkey_fuzz::frames::beacon`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::beacon(data));
