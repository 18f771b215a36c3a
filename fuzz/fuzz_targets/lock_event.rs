//! Parser target `lock_event`: see `latchkey_fuzz::frames::lock_event`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::lock_event(data));
