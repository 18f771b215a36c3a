//! Parser target `revocation`: see `latchkey_fuzz::frames::revocation`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::revocation(data));
