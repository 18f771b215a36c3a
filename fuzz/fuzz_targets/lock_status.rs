//! Parser target `lock_status`: see `latchkey_fuzz::frames::lock_status`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::lock_status(data));
