//! The shim protocol's JSON lines, raw: see `latchkey_fuzz::shim::raw`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| latchkey_fuzz::shim::raw(data));
