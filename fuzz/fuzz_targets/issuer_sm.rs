//! State-machine target `issuer_sm`: see `latchkey_fuzz::issuer_sm`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::issuer_sm::run(data);
});
