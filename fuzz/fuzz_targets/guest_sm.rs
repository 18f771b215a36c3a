//! State-machine target `guest_sm`: see `latchkey_fuzz::guest_sm`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::guest_sm::run(data);
});
