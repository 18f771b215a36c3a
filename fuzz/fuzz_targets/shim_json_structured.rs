//! The shim protocol's JSON lines, assembled from arbitrary ops, names and fields: see
//! `latchkey_fuzz::shim::structured`.
#![no_main]

use latchkey_fuzz::shim::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|reqs: Vec<Request>| latchkey_fuzz::shim::structured(&reqs));
