//! Replays vectors against an implementation under test and judges each case.

use std::collections::BTreeMap;
use std::time::Instant;

use latchkey::crypto::rsa::{DS_LOCK_GRANT, DS_REVOCATION, RsaPrivateKey, RsaPublicKey};
use latchkey::crypto::{EnrollmentKey, open_guest_grant};
use latchkey::frame::{GuestGrantView, LockGrantView, RevocationView};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use crate::coverage;
use crate::iut::{Iut, IutError, request};
use crate::model::{Case, CaseBody, CaseResult, KeyPair, RunReport, VectorFile, Verdict};
use crate::report::Progress;
use crate::vectors::expand_keys;

/// Which cases to run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these roles (`lock`, `guest`, `issuer`, `any`).
    pub roles: Vec<String>,
    /// Only cases covering one of these requirement ids.
    pub requirements: Vec<String>,
    /// Only case ids containing one of these substrings.
    pub cases: Vec<String>,
}

impl Filter {
    /// Whether `c` passes the filter.
    pub fn accepts(&self, c: &Case) -> bool {
        (self.roles.is_empty() || self.roles.contains(&c.role))
            && (self.requirements.is_empty()
                || c.requirements.iter().any(|r| self.requirements.contains(r)))
            && (self.cases.is_empty() || self.cases.iter().any(|s| c.id.contains(s.as_str())))
    }
}

/// Every case of `files` that passes `filter`, with its file's kind.
pub fn selected<'a>(files: &'a [VectorFile], filter: &Filter) -> Vec<(&'a VectorFile, &'a Case)> {
    files
        .iter()
        .flat_map(|f| f.cases.iter().map(move |c| (f, c)))
        .filter(|(_, c)| filter.accepts(c))
        .collect()
}

/// Runs the selected cases against `iut`.
pub fn run(iut: &mut dyn Iut, files: &[VectorFile], filter: &Filter, progress: bool) -> RunReport {
    let cases = selected(files, filter);
    let mut bar = Progress::new(cases.len() as u64, progress);
    let mut results = Vec::with_capacity(cases.len());
    for (file, case) in cases {
        let r = run_case(iut, file, case);
        bar.inc(&r.id, r.verdict);
        results.push(r);
    }
    bar.finish();
    let uncovered = coverage::uncovered_by_results(&results);
    RunReport {
        implementation: iut.name(),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        results,
        uncovered,
    }
}

struct Failure {
    verdict: Verdict,
    /// The shim crashed, hung or spoke garbage: restart it before the next case.
    restart: bool,
    detail: String,
    step: Option<usize>,
    input: Option<Value>,
    expected: Option<Value>,
    actual: Option<Value>,
}

impl Failure {
    fn from_iut(e: IutError, step: Option<usize>, input: Option<Value>) -> Box<Self> {
        let verdict = if matches!(e, IutError::Unimplemented(_)) {
            Verdict::Unimplemented
        } else {
            Verdict::Failed
        };
        let restart = matches!(
            e,
            IutError::Crashed(_) | IutError::Timeout(_) | IutError::Garbage(_)
        );
        Box::new(Self {
            verdict,
            restart,
            detail: e.to_string(),
            step,
            input,
            expected: None,
            actual: None,
        })
    }
    fn mismatch(
        detail: String,
        step: Option<usize>,
        input: Value,
        expected: Value,
        actual: Value,
    ) -> Box<Self> {
        Box::new(Self {
            verdict: Verdict::Failed,
            restart: false,
            detail,
            step,
            input: Some(input),
            expected: Some(expected),
            actual: Some(actual),
        })
    }
}

/// Runs one case.
pub fn run_case(iut: &mut dyn Iut, file: &VectorFile, case: &Case) -> CaseResult {
    let start = Instant::now();
    let outcome = match &case.body {
        CaseBody::Primitive {
            primitive,
            input,
            output,
        } => run_primitive(iut, &file.keys, primitive, input, output),
        CaseBody::Frame {
            frame,
            bytes,
            fields,
            reason,
        } => run_frame(iut, frame, bytes, fields.as_ref(), reason.as_deref()),
        CaseBody::Scenario { config, steps } => {
            run_scenario(iut, &file.keys, &case.role, config, steps)
        }
    };
    let mut r = CaseResult {
        id: case.id.clone(),
        kind: file.kind.clone(),
        role: case.role.clone(),
        requirements: case.requirements.clone(),
        result: case.result,
        comment: case.comment.clone(),
        verdict: Verdict::Passed,
        detail: String::new(),
        failed_step: None,
        input: None,
        expected: None,
        actual: None,
        duration_ms: start.elapsed().as_millis() as u64,
    };
    if let Err(f) = outcome {
        if f.restart {
            // The shim is dead or confused: start it afresh for the next case.
            if let Err(e) = iut.restart() {
                r.detail = format!("{} (restart failed: {e})", f.detail);
            }
        }
        r.verdict = f.verdict;
        if r.detail.is_empty() {
            r.detail = f.detail;
        }
        r.failed_step = f.step;
        r.input = f.input;
        r.expected = f.expected;
        r.actual = f.actual;
    }
    r
}

fn run_primitive(
    iut: &mut dyn Iut,
    keys: &BTreeMap<String, KeyPair>,
    name: &str,
    input: &Value,
    expected: &Value,
) -> Result<(), Box<Failure>> {
    let input = expand_keys(input, keys)
        .map_err(|e| Failure::from_iut(IutError::Refused(e.to_string()), None, None))?;
    let req = json!({"op": "primitive", "name": name, "input": input});
    let reply = request(iut, &req).map_err(|e| Failure::from_iut(e, None, Some(req.clone())))?;
    let actual = reply.get("output").cloned().unwrap_or(Value::Null);
    subset(expected, &actual).map_err(|d| Failure::mismatch(d, None, req, expected.clone(), actual))
}

fn run_frame(
    iut: &mut dyn Iut,
    frame: &str,
    bytes: &str,
    fields: Option<&Value>,
    reason: Option<&str>,
) -> Result<(), Box<Failure>> {
    let req = json!({"op": "decode", "frame": frame, "bytes": bytes});
    let reply = request(iut, &req).map_err(|e| Failure::from_iut(e, None, Some(req.clone())))?;
    let actual = reply.get("output").cloned().unwrap_or(Value::Null);
    let expected = match (fields, reason) {
        (Some(f), _) => json!({"result": "valid", "fields": f}),
        (None, Some(r)) => json!({"result": "invalid", "reason": r}),
        (None, None) => json!({"result": "invalid"}),
    };
    subset(&expected, &actual)
        .map_err(|d| Failure::mismatch(d, None, req.clone(), expected.clone(), actual))?;
    if let Some(f) = fields {
        let req = json!({"op": "encode", "frame": frame, "fields": f});
        let reply =
            request(iut, &req).map_err(|e| Failure::from_iut(e, None, Some(req.clone())))?;
        let got = reply.get("bytes").cloned().unwrap_or(Value::Null);
        if got != json!(bytes) {
            return Err(Failure::mismatch(
                "encode(fields) differs from the bytes".into(),
                None,
                req,
                json!({"bytes": bytes}),
                json!({"bytes": got}),
            ));
        }
    }
    Ok(())
}

fn run_scenario(
    iut: &mut dyn Iut,
    keys: &BTreeMap<String, KeyPair>,
    role: &str,
    config: &Value,
    steps: &[crate::model::Step],
) -> Result<(), Box<Failure>> {
    let raw_config = config;
    let config = expand_keys(config, keys)
        .map_err(|e| Failure::from_iut(IutError::Refused(e.to_string()), None, None))?;
    request(iut, &json!({"op": "reset"})).map_err(|e| Failure::from_iut(e, None, None))?;
    let create = json!({"op": "create", "role": role, "config": config});
    request(iut, &create).map_err(|e| Failure::from_iut(e, None, Some(create.clone())))?;
    let mut outputs: Vec<Value> = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let input = resolve_input(&s.input, &outputs).map_err(|d| {
            Failure::mismatch(d, Some(i), s.input.clone(), s.expect.clone(), Value::Null)
        })?;
        let req = json!({"op": "input", "t": s.t, "input": input});
        let reply =
            request(iut, &req).map_err(|e| Failure::from_iut(e, Some(i), Some(req.clone())))?;
        let actual = reply.get("output").cloned().unwrap_or(Value::Null);
        let verdict = match s.expect.get("verify") {
            Some(v) => verify(&s.expect, v, &actual, &outputs, keys),
            None => match implied_grant_check(role, raw_config, &s.expect) {
                Some(v) => verify(&s.expect, &v, &actual, &outputs, keys),
                None => subset(&s.expect, &actual),
            },
        };
        verdict.map_err(|d| {
            Failure::mismatch(d, Some(i), req.clone(), s.expect.clone(), actual.clone())
        })?;
        outputs.push(actual);
    }
    Ok(())
}

/// An issuer step that expects a grant but names no `verify` check (e.g. the first grant of
/// a replay or capacity scenario) still carries randomness in its grant: RSA-OAEP seeds,
/// RSA-PSS salts, and every id or nonce drawn after them. Byte equality would tie the
/// verdict to one RSA library's use of the RNG (the aws-lc-rs provider draws from its own
/// DRBG), so the same semantic check as [`verify`] is applied, with its fields taken from the
/// expected grant and the scenario's key references. `None` when the step is not such a
/// grant or the keys are not named references.
fn implied_grant_check(role: &str, raw_config: &Value, expect: &Value) -> Option<Value> {
    if role != "issuer" || expect["outcome"] != "granted" {
        return None;
    }
    let lg = hex::decode(expect["lock_grant"].as_str()?).ok()?;
    let lg = LockGrantView::parse(&lg).ok()?;
    let gg = hex::decode(expect["guest_grant"].as_str()?).ok()?;
    let gg = GuestGrantView::parse(&gg).ok()?;
    let h = lg.header;
    let issuer = raw_config["signing_key"].as_str()?.strip_prefix("key:")?;
    let lock_id = h.lock_id.to_string();
    let guest_id = h.guest_id.to_string();
    let lock = raw_config["locks"]
        .as_array()?
        .iter()
        .find(|l| l["lock_id"].as_str() == Some(lock_id.as_str()))?["public_key"]
        .as_str()?
        .strip_prefix("pub:")?;
    let enrollment_key = raw_config["guests"]
        .as_array()?
        .iter()
        .find(|g| g["guest_id"].as_str() == Some(guest_id.as_str()))?["enrollment_key"]
        .clone();
    Some(json!({
        "lock_key": format!("key:{lock}"),
        "issuer_key": format!("pub:{issuer}"),
        "enrollment_key": enrollment_key,
        "lock_id": lock_id,
        "guest_id": guest_id,
        "request_id": gg.header.request_id.to_string(),
        "issued_at": h.issued_at,
        "validity_s": h.not_after.saturating_sub(h.issued_at),
        "max_unlocks": h.max_unlocks,
    }))
}

/// Substitutes references to earlier outputs: `grant_id_from_step: k` becomes the grant id
/// of the LockGrant the implementation produced at step k.
pub fn resolve_input(input: &Value, outputs: &[Value]) -> Result<Value, String> {
    let Some(k) = input.get("grant_id_from_step").and_then(Value::as_u64) else {
        return Ok(input.clone());
    };
    let out = outputs
        .get(k as usize)
        .ok_or_else(|| format!("step {k} has no output yet"))?;
    let lg =
        hex::decode(out["lock_grant"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let v = LockGrantView::parse(&lg)
        .map_err(|r| format!("step {k}'s lock_grant does not parse: {r}"))?;
    let mut m = input.as_object().cloned().unwrap_or_default();
    m.remove("grant_id_from_step");
    m.insert("grant_id".into(), json!(v.header.grant_id.to_string()));
    Ok(Value::Object(m))
}

/// `expected ⊆ actual`: every key of an expected object matches recursively; other values
/// are equal.
pub fn subset(expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    None => return Err(format!("`{k}` missing (expected {ev})")),
                    Some(av) => subset(ev, av).map_err(|d| format!("`{k}`: {d}"))?,
                }
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("expected {expected}, got {actual}")),
    }
}

fn key_private(
    keys: &BTreeMap<String, KeyPair>,
    v: &Value,
    k: &str,
) -> Result<RsaPrivateKey, String> {
    let hexed = expand_keys(&v[k], keys).map_err(|e| e.to_string())?;
    let der = hex::decode(hexed.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| format!("`{k}`: {e}"))
}

fn key_public(
    keys: &BTreeMap<String, KeyPair>,
    v: &Value,
    k: &str,
) -> Result<RsaPublicKey, String> {
    let hexed = expand_keys(&v[k], keys).map_err(|e| e.to_string())?;
    let der = hex::decode(hexed.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("`{k}`: {e}"))
}

fn bytes_of(actual: &Value, k: &str) -> Result<Vec<u8>, String> {
    hex::decode(
        actual[k]
            .as_str()
            .ok_or_else(|| format!("output has no `{k}`"))?,
    )
    .map_err(|e| format!("`{k}`: {e}"))
}

fn eq<T: PartialEq + std::fmt::Display>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}"))
    }
}

/// Semantic checks for outputs that carry randomness (RSA-OAEP, RSA-PSS): the grant must
/// verify under the issuer key, unwrap under the lock key to the same session key the guest
/// grant seals, and carry the right identities, validity and unlock limit.
fn verify(
    expect: &Value,
    v: &Value,
    actual: &Value,
    outputs: &[Value],
    keys: &BTreeMap<String, KeyPair>,
) -> Result<(), String> {
    eq(
        "outcome",
        actual["outcome"].clone(),
        expect["outcome"].clone(),
    )?;
    let issuer = key_public(keys, v, "issuer_key")?;
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    match expect["outcome"].as_str() {
        Some("granted") => {
            let lg_bytes = bytes_of(actual, "lock_grant")?;
            let lg = LockGrantView::parse(&lg_bytes).map_err(|r| format!("lock_grant: {r}"))?;
            let h = lg.header;
            if !issuer.verify(DS_LOCK_GRANT, lg.signed, lg.signature) {
                return Err("lock_grant: signature does not verify under the issuer key".into());
            }
            eq(
                "lock_grant.lock_id",
                h.lock_id.to_string(),
                v["lock_id"].as_str().unwrap_or_default().to_string(),
            )?;
            eq(
                "lock_grant.guest_id",
                h.guest_id.to_string(),
                v["guest_id"].as_str().unwrap_or_default().to_string(),
            )?;
            eq(
                "lock_grant.issued_at",
                h.issued_at,
                v["issued_at"].as_u64().unwrap_or_default(),
            )?;
            eq(
                "validity (not_after − issued_at)",
                h.not_after.saturating_sub(h.issued_at),
                v["validity_s"].as_u64().unwrap_or_default(),
            )?;
            // The access policy's unlock limit (LK-ISS-12, LK-LIM-1); absent means none.
            eq(
                "lock_grant.max_unlocks",
                u64::from(h.max_unlocks),
                v["max_unlocks"].as_u64().unwrap_or_default(),
            )?;
            if h.not_before > h.issued_at {
                return Err("lock_grant: not_before after issued_at".into());
            }
            let lock = key_private(keys, v, "lock_key")?;
            let k_lock = lock
                .unwrap_session_key(&mut rng, lg.header_bytes, lg.wrapped)
                .ok_or("lock_grant: session key does not unwrap under the lock key with the header as OAEP label")?;
            let gg_bytes = bytes_of(actual, "guest_grant")?;
            let gg = GuestGrantView::parse(&gg_bytes).map_err(|r| format!("guest_grant: {r}"))?;
            let g = gg.header;
            eq(
                "guest_grant.request_id",
                g.request_id.to_string(),
                v["request_id"].as_str().unwrap_or_default().to_string(),
            )?;
            eq("guest_grant.grant_id", g.grant_id, h.grant_id)?;
            eq("guest_grant.session_id", g.session_id, h.session_id)?;
            eq("guest_grant.lock_id", g.lock_id, h.lock_id)?;
            eq("guest_grant.guest_id", g.guest_id, h.guest_id)?;
            eq("guest_grant.not_before", g.not_before, h.not_before)?;
            eq("guest_grant.not_after", g.not_after, h.not_after)?;
            let enr = EnrollmentKey::from_bytes(
                hex::decode(v["enrollment_key"].as_str().unwrap_or_default())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or("verify.enrollment_key must be 32 bytes hex")?,
            );
            let k_guest = open_guest_grant(&enr, &gg).map_err(|r| format!("guest_grant: {r}"))?;
            if k_guest != k_lock {
                return Err("the guest's and the lock's session keys differ".into());
            }
            Ok(())
        }
        Some("revocation") => {
            let k = v["grant_from_step"]
                .as_u64()
                .ok_or("verify.grant_from_step missing")? as usize;
            let granted = outputs.get(k).ok_or("verify: no such step")?;
            let lg_bytes = bytes_of(granted, "lock_grant")?;
            let lg =
                LockGrantView::parse(&lg_bytes).map_err(|r| format!("step {k} lock_grant: {r}"))?;
            let rb = bytes_of(actual, "bytes")?;
            let r = RevocationView::parse(&rb).map_err(|e| format!("revocation: {e}"))?;
            if !issuer.verify(DS_REVOCATION, r.signed, r.signature) {
                return Err("revocation: signature does not verify under the issuer key".into());
            }
            eq("revocation.lock_id", r.fields.lock_id, lg.header.lock_id)?;
            eq("revocation.grant_id", r.fields.grant_id, lg.header.grant_id)?;
            eq(
                "revocation.session_id",
                r.fields.session_id,
                lg.header.session_id,
            )?;
            eq(
                "revocation.expires_at",
                r.fields.expires_at,
                lg.header.not_after,
            )
        }
        other => Err(format!("no semantic check for outcome {other:?}")),
    }
}
