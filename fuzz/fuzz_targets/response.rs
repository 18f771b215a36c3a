//! Parser target `response`: see `latchkey_fuzz::frames::response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::response(data));
