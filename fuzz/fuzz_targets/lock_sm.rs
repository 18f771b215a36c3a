//! State-machine target `lock_sm`: see `latchkey_fuzz::lock_sm`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::lock_sm::run(data);
});
