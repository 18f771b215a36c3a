//! Parser target `message_type`: see `latchkey_fuzz::frames::message_type`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::frames::message_type(data));
