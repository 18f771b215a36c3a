//! Parser target `lock_grant`: see `latchkey_fuzz::frames::lock_grant`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::lock_grant(data));
