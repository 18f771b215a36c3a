//! Parser target `guest_grant`: see `latchkey_fuzz::frames::guest_grant`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::guest_grant(data));
