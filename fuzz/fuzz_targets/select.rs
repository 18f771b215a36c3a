//! Parser target `select`: see `latchkey_fuzz::frames::select`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::select(data));
