//! `latchkey-harness vectors generate`: the vectors are the reference's behaviour on fixed
//! keys and seeded randomness. Regenerating must reproduce the checked-in files exactly.

mod guest;
mod issuer;
pub mod kit;
mod lock;
mod static_cases;

use std::path::Path;

use crate::model::{Case, VECTORS_VERSION, VectorFile};

const GENERATOR: &str = "latchkey-harness vectors generate";

fn file(kind: &str, description: &str, keys: &kit::Keys, cases: Vec<Case>) -> VectorFile {
    VectorFile {
        latchkey_vectors: VECTORS_VERSION,
        kind: kind.into(),
        description: description.into(),
        generator: GENERATOR.into(),
        keys: keys.table.clone(),
        cases,
    }
}

/// A complete shim-protocol exchange with the reference: the requests the harness sends for
/// one primitive, one frame and the `lock-unlock` scenario, each followed by the reply.
/// Written to `vectors/shim-transcript.jsonl` (`>` request, `<` reply).
pub fn transcript(files: &[VectorFile]) -> String {
    use crate::iut::reference::ReferenceIut;
    use serde_json::{Value, json};
    let mut iut = ReferenceIut::default();
    let mut out = String::new();
    let mut exchange = |req: Value| {
        let reply = iut.handle(&req);
        out.push_str(&format!("> {req}\n< {reply}\n"));
    };
    exchange(json!({"op": "hello", "protocol": 1}));
    let find = |id: &str| {
        files
            .iter()
            .find_map(|f| f.cases.iter().find(|c| c.id == id).map(|c| (f, c)))
    };
    if let Some((_, c)) = find("prim-beacon-tag-2")
        && let crate::model::CaseBody::Primitive {
            primitive, input, ..
        } = &c.body
    {
        exchange(json!({"op": "primitive", "name": primitive, "input": input}));
    }
    if let Some((_, c)) = find("frame-beacon-valid")
        && let crate::model::CaseBody::Frame {
            frame,
            bytes,
            fields,
            ..
        } = &c.body
    {
        exchange(json!({"op": "decode", "frame": frame, "bytes": bytes}));
        exchange(json!({"op": "encode", "frame": frame, "fields": fields}));
    }
    if let Some((_, c)) = find("frame-beacon-truncated")
        && let crate::model::CaseBody::Frame { frame, bytes, .. } = &c.body
    {
        exchange(json!({"op": "decode", "frame": frame, "bytes": bytes}));
    }
    if let Some((f, c)) = find("lock-unlock")
        && let crate::model::CaseBody::Scenario { config, steps } = &c.body
    {
        exchange(json!({"op": "reset"}));
        let config = crate::vectors::expand_keys(config, &f.keys).unwrap_or(Value::Null);
        exchange(json!({"op": "create", "role": c.role, "config": config}));
        for s in steps {
            exchange(json!({"op": "input", "t": s.t, "input": s.input}));
        }
    }
    exchange(json!({"op": "bye"}));
    out
}

/// Builds every vector file (in [`crate::vectors::FILES`] order) from the keys in `key_dir`.
pub fn all(key_dir: &Path) -> Result<Vec<(String, VectorFile)>, String> {
    let k = kit::Keys::load(key_dir)?;
    Ok(vec![
        (
            "primitives.json".into(),
            file(
                "primitives",
                "Key schedule, tags, MACs, signature inputs and seals.",
                &k,
                static_cases::primitives(&k),
            ),
        ),
        (
            "frames.json".into(),
            file(
                "frames",
                "Every frame and message, valid and malformed.",
                &k,
                static_cases::frames(&k),
            ),
        ),
        (
            "lock.json".into(),
            file(
                "scenarios",
                "Timed scripts of inputs to a lock.",
                &k,
                lock::cases(&k),
            ),
        ),
        (
            "guest.json".into(),
            file(
                "scenarios",
                "Timed scripts of inputs to a guest.",
                &k,
                guest::cases(&k),
            ),
        ),
        (
            "issuer.json".into(),
            file(
                "scenarios",
                "Timed scripts of inputs to an issuer.",
                &k,
                issuer::cases(&k),
            ),
        ),
    ])
}
