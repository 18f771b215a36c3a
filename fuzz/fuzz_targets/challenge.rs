//! Parser target `challenge`: see `latchkey_fuzz::frames::challenge`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::challenge(data));
