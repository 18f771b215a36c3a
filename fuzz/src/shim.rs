//! The shim protocol's JSON lines (`harness/SHIM.md`) against the in-process reference,
//! `ReferenceIut::handle`. Whatever the request, the reply is an object with a boolean
//! `"ok"`; a refusal carries a string `"error"` (or `"unimplemented"`); a frame the shim
//! decodes as valid encodes back to the same bytes.

use arbitrary::Arbitrary;
use latchkey_harness::iut::reference::ReferenceIut;
use serde_json::{Map, Value, json};

use crate::common::{LOCK_A, LOCK_B, T0_MS, keys};

/// Most lines handled per input.
const MAX_LINES: usize = 24;

/// Checks one reply to `req` (and, for a valid decode, the encode round trip through the
/// same shim).
fn check_reply(iut: &mut ReferenceIut, req: &Value, reply: &Value) {
    let obj = reply
        .as_object()
        .unwrap_or_else(|| panic!("reply to {req} is not an object: {reply}"));
    let ok = obj
        .get("ok")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("reply to {req} has no boolean \"ok\": {reply}"));
    if !ok {
        assert!(
            obj.get("error").is_some_and(Value::is_string)
                || obj.get("unimplemented").is_some_and(Value::is_string),
            "refusal of {req} without a string \"error\": {reply}"
        );
        return;
    }
    if req.get("op").and_then(Value::as_str) == Some("decode") {
        let out = &obj["output"];
        match out["result"].as_str() {
            Some("valid") => {
                let enc = json!({"op": "encode", "frame": req["frame"], "fields": out["fields"]});
                let r = iut.handle(&enc);
                assert_eq!(
                    r["ok"],
                    Value::Bool(true),
                    "shim cannot encode what it decoded: {req} → {reply} → {r}"
                );
                assert_eq!(
                    r["bytes"].as_str().map(str::to_ascii_lowercase),
                    req["bytes"].as_str().map(str::to_ascii_lowercase),
                    "shim decode → encode is not the identity: {req} → {r}"
                );
            }
            Some("invalid") => assert!(out["reason"].is_string(), "invalid without reason"),
            _ => panic!("decode reply without result: {reply}"),
        }
    }
}

/// Raw bytes: each `\n`-separated line (at most [`MAX_LINES`]) is one request to one shim
/// instance, so a multi-line input can create a role and then feed it.
pub fn raw(data: &[u8]) {
    let mut iut = ReferenceIut::default();
    for line in data.split(|b| *b == b'\n').take(MAX_LINES) {
        let Ok(req) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let reply = iut.handle(&req);
        check_reply(&mut iut, &req, &reply);
    }
}

// ---------------------------------------------------------------- structured requests

const OPS: &[&str] = &[
    "hello",
    "create",
    "reset",
    "input",
    "primitive",
    "decode",
    "encode",
    "bye",
];
const ROLES: &[&str] = &["lock", "guest", "issuer"];
const FRAMES: &[&str] = &[
    "beacon",
    "select",
    "challenge",
    "response",
    "lock_grant",
    "revocation",
    "guest_grant",
    "grant_request",
    "lock_event",
];
const PRIMITIVES: &[&str] = &[
    "subkeys",
    "beacon_tag",
    "beacon_mac",
    "verify_beacon",
    "lock_mac",
    "response_mac",
    "signature_input",
    "verify_signature",
    "open_guest_grant",
    "open_request",
];
const INPUT_TYPES: &[&str] = &[
    "grant",
    "revocation",
    "message",
    "beacon",
    "select",
    "response",
    "disconnect",
    "timeout",
    "request_grant",
    "start_unlock",
    "advertisement",
    "challenge",
    "write_result",
    "request",
    "revoke",
    "event",
];
/// Every field name the shim reads.
const FIELDS: &[&str] = &[
    "op",
    "role",
    "config",
    "t",
    "input",
    "type",
    "name",
    "frame",
    "bytes",
    "fields",
    "payload",
    "company_id",
    "rssi",
    "conn",
    "nonce",
    "lock_id",
    "guest_id",
    "grant_id",
    "session_id",
    "request_id",
    "revocation_id",
    "event_id",
    "validity_s",
    "attempt",
    "att_error",
    "topic_guest",
    "topic_lock",
    "lock_key",
    "issuer_public_key",
    "signing_key",
    "enrollment_key",
    "public_key",
    "locks",
    "guests",
    "allowed_locks",
    "revoked",
    "tunables",
    "rng_seed",
    "session_key",
    "k_tag",
    "k_adv",
    "k_chal",
    "k_resp",
    "step",
    "mac_input",
    "beacon",
    "lock_time",
    "phone_time",
    "message",
    "tag",
    "beacon_mac",
    "lock_mac",
    "resp_mac",
    "wrapped",
    "sig",
    "sealed",
    "issued_at",
    "not_before",
    "not_after",
    "expires_at",
    "timestamp",
    "timestamp_ms",
    "kind",
    "reason",
    "rssi_threshold_dbm",
    "connection_window_ms",
    "response_budget_ms",
    "max_clock_skew_s",
    "max_grant_validity_s",
    "max_sessions",
    "max_pending",
    "max_challenges",
    "replay_capacity",
    "revocation_capacity",
    "max_outstanding_requests",
    "request_window_s",
    "request_cache_capacity",
    "backdate_s",
    "max_live_grants",
];

/// A name from a known list, or any string.
#[derive(Arbitrary, Debug)]
pub enum Name {
    /// `list[i % len]`.
    Known(u8),
    /// Anything.
    Other(String),
}

impl Name {
    fn get(&self, list: &[&str]) -> String {
        match self {
            Name::Known(i) => list[usize::from(*i) % list.len()].to_string(),
            Name::Other(s) => s.clone(),
        }
    }
}

/// The fixed keys as the shim takes them: 0..3 PKCS#8 private keys (issuer, lock A, lock B,
/// rogue), 4..7 their SPKI public keys.
fn key_hex() -> &'static [String; 8] {
    static K: std::sync::OnceLock<[String; 8]> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let k = keys();
        let all = [&k.issuer, &k.lock_a, &k.lock_b, &k.rogue];
        std::array::from_fn(|i| {
            let key = all[i % 4];
            let der = if i < 4 {
                key.to_pkcs8_der().map(|d| d.to_vec())
            } else {
                key.public_key().to_public_key_der()
            };
            hex::encode(der.unwrap_or_default())
        })
    })
}

/// A JSON scalar, biased towards what the shim expects.
#[derive(Arbitrary, Debug)]
pub enum Scalar {
    /// Lowercase hex of bytes.
    Hex(Vec<u8>),
    /// Hex of `n` copies of a byte (ids: 8, 16 or 32 bytes).
    Id(u8, u8),
    /// A fixed key: 0..3 PKCS#8 private keys, 4..7 SPKI public keys.
    Key(u8),
    /// Lock A or B as hex.
    LockId(bool),
    /// An unsigned integer.
    U64(u64),
    /// A small integer, possibly negative.
    Small(i16),
    /// A time near T0, in milliseconds.
    Time(i32),
    /// A float.
    F64(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// null.
    Null,
}

impl Scalar {
    fn value(&self) -> Value {
        match self {
            Scalar::Hex(b) => Value::String(hex::encode(b)),
            Scalar::Id(n, b) => {
                let len = [8usize, 16, 32, 12][usize::from(*n) % 4];
                Value::String(hex::encode(vec![*b; len]))
            }
            Scalar::Key(k) => Value::String(key_hex()[usize::from(k % 8)].clone()),
            Scalar::LockId(b) => Value::String(if *b { LOCK_A } else { LOCK_B }.to_string()),
            Scalar::U64(v) => json!(v),
            Scalar::Small(v) => json!(v),
            Scalar::Time(d) => json!(T0_MS.saturating_add_signed(i64::from(*d))),
            Scalar::F64(v) => json!(v),
            Scalar::Str(s) => json!(s),
            Scalar::Bool(b) => json!(b),
            Scalar::Null => Value::Null,
        }
    }
}

/// A JSON value: a scalar, or one level of array or object.
#[derive(Arbitrary, Debug)]
pub enum Val {
    /// A scalar.
    Scalar(Scalar),
    /// An array of scalars.
    Array(Vec<Scalar>),
    /// An object of scalars.
    Object(Vec<(Name, Scalar)>),
    /// An array of objects (`locks`, `guests`).
    Objects(Vec<Vec<(Name, Scalar)>>),
}

fn object(fields: &[(Name, Scalar)]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| (k.get(FIELDS), v.value()))
        .collect()
}

impl Val {
    fn value(&self) -> Value {
        match self {
            Val::Scalar(s) => s.value(),
            Val::Array(a) => Value::Array(a.iter().map(Scalar::value).collect()),
            Val::Object(o) => Value::Object(object(o)),
            Val::Objects(v) => Value::Array(v.iter().map(|o| Value::Object(object(o))).collect()),
        }
    }
}

/// One structured request: an op, the names the op uses, and fields of any kind.
#[derive(Arbitrary, Debug)]
pub struct Request {
    op: Name,
    role: Name,
    frame: Name,
    primitive: Name,
    input_type: Name,
    t: Option<i32>,
    fields: Vec<(Name, Val)>,
    input_fields: Vec<(Name, Val)>,
}

impl Request {
    /// The JSON object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let op = self.op.get(OPS);
        m.insert("op".into(), json!(op));
        match op.as_str() {
            "create" => {
                m.insert("role".into(), json!(self.role.get(ROLES)));
            }
            "decode" | "encode" => {
                m.insert("frame".into(), json!(self.frame.get(FRAMES)));
            }
            "primitive" => {
                m.insert("name".into(), json!(self.primitive.get(PRIMITIVES)));
            }
            _ => {}
        }
        if let Some(d) = self.t {
            m.insert("t".into(), json!(T0_MS.saturating_add_signed(i64::from(d))));
        }
        let mut input = Map::new();
        input.insert("type".into(), json!(self.input_type.get(INPUT_TYPES)));
        for (k, v) in &self.input_fields {
            input.insert(k.get(FIELDS), v.value());
        }
        let inner = Value::Object(input);
        match op.as_str() {
            "input" => {
                m.insert("input".into(), inner);
            }
            "primitive" => {
                m.insert("input".into(), inner);
            }
            "encode" => {
                m.insert("fields".into(), inner);
            }
            "create" => {
                m.insert("config".into(), inner);
            }
            _ => {}
        }
        for (k, v) in &self.fields {
            m.insert(k.get(FIELDS), v.value());
        }
        Value::Object(m)
    }
}

/// A sequence of structured requests to one shim instance.
pub fn structured(reqs: &[Request]) {
    let mut iut = ReferenceIut::default();
    for r in reqs.iter().take(MAX_LINES) {
        let req = r.to_json();
        let reply = iut.handle(&req);
        check_reply(&mut iut, &req, &reply);
    }
}
