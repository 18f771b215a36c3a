//! Frame fuzzing against an implementation under test: replay a scenario up to a step that
//! the implementation must accept, then feed a mutated copy of that step's frame instead. A
//! mutated frame must be rejected with a reason; an acceptance, a crash or garbage is a
//! finding, printed with everything needed to reproduce it.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::iut::{Iut, request};
use crate::model::{CaseBody, VectorFile};
use crate::runner::resolve_input;
use crate::vectors::expand_keys;

/// A mutated frame the implementation did not reject.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Iteration number (with the seed, reproduces the input).
    pub iteration: u64,
    /// Scenario the frame came from.
    pub case: String,
    /// Step index that was mutated.
    pub step: usize,
    /// The mutation applied.
    pub mutation: String,
    /// The mutated input.
    pub input: Value,
    /// What the implementation answered (or its error).
    pub outcome: String,
}

/// Mutations of one frame.
pub fn mutate(rng: &mut ChaCha20Rng, b: &[u8]) -> (String, Vec<u8>) {
    let mut v = b.to_vec();
    let pick = |rng: &mut ChaCha20Rng, n: usize| {
        if n == 0 {
            0
        } else {
            (rng.next_u64() % n as u64) as usize
        }
    };
    match rng.next_u32() % 5 {
        0 if !v.is_empty() => {
            let bit = pick(rng, v.len() * 8);
            v[bit / 8] ^= 1 << (bit % 8);
            (format!("flip bit {bit}"), v)
        }
        1 if !v.is_empty() => {
            let n = pick(rng, v.len());
            v.truncate(n);
            (format!("truncate to {n}"), v)
        }
        2 => {
            let n = 1 + pick(rng, 8);
            for _ in 0..n {
                v.push(rng.next_u32() as u8);
            }
            (format!("extend by {n}"), v)
        }
        3 if v.len() >= 8 => {
            let (a, c) = (pick(rng, v.len() - 3), pick(rng, v.len() - 3));
            for i in 0..4 {
                v.swap(a + i, c + i);
            }
            if v == b {
                v[0] ^= 0xFF;
                (
                    format!("swap 4 bytes at {a} and {c} (equal; then flip byte 0)"),
                    v,
                )
            } else {
                (format!("swap 4 bytes at {a} and {c}"), v)
            }
        }
        _ if !v.is_empty() => {
            let i = pick(rng, v.len());
            let x = (rng.next_u32() as u8) | 1;
            v[i] ^= x;
            (format!("xor byte {i} with {x:#04x}"), v)
        }
        _ => {
            v.push(0);
            ("extend by 1".into(), v)
        }
    }
}

const ACCEPTING: &[&str] = &[
    "armed",
    "challenge",
    "unlock",
    "installed",
    "revoked",
    "response",
    "granted",
    "event",
    "status",
];

/// Runs `iterations` mutations with `seed`; returns the findings.
pub fn run(iut: &mut dyn Iut, files: &[VectorFile], seed: u64, iterations: u64) -> Vec<Finding> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Scenario steps whose input carries a frame and whose expected outcome is acceptance.
    let mut targets = Vec::new();
    for f in files {
        for c in &f.cases {
            if let CaseBody::Scenario { steps, .. } = &c.body {
                for (i, s) in steps.iter().enumerate() {
                    let accepting = s.expect["outcome"]
                        .as_str()
                        .is_some_and(|o| ACCEPTING.contains(&o));
                    if accepting && s.input.get("payload").is_some() {
                        targets.push((f, c, i));
                    }
                }
            }
        }
    }
    let mut findings = Vec::new();
    if targets.is_empty() {
        return findings;
    }
    for it in 0..iterations {
        let (f, c, k) = targets[(rng.next_u64() % targets.len() as u64) as usize];
        let CaseBody::Scenario { config, steps } = &c.body else {
            continue;
        };
        let payload =
            hex::decode(steps[k].input["payload"].as_str().unwrap_or_default()).unwrap_or_default();
        let (mutation, mutated) = mutate(&mut rng, &payload);
        if mutated == payload {
            continue;
        }
        let finding = |input: Value, outcome: String| Finding {
            iteration: it,
            case: c.id.clone(),
            step: k,
            mutation: mutation.clone(),
            input,
            outcome,
        };
        let Ok(config) = expand_keys(config, &f.keys) else {
            continue;
        };
        let setup = request(iut, &json!({"op": "reset"})).and_then(|_| {
            request(
                iut,
                &json!({"op": "create", "role": c.role, "config": config}),
            )
        });
        if let Err(e) = setup {
            findings.push(finding(Value::Null, e.to_string()));
            let _ = iut.restart();
            continue;
        }
        let mut outputs = Vec::new();
        let mut broken = None;
        for s in &steps[..k] {
            let input = resolve_input(&s.input, &outputs).unwrap_or_else(|_| s.input.clone());
            match request(iut, &json!({"op": "input", "t": s.t, "input": input})) {
                Ok(r) => outputs.push(r["output"].clone()),
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(e) = broken {
            findings.push(finding(
                Value::Null,
                format!("replaying the prefix failed: {e}"),
            ));
            let _ = iut.restart();
            continue;
        }
        let mut input =
            resolve_input(&steps[k].input, &outputs).unwrap_or_else(|_| steps[k].input.clone());
        input["payload"] = json!(hex::encode(&mutated));
        match request(
            iut,
            &json!({"op": "input", "t": steps[k].t, "input": input.clone()}),
        ) {
            Ok(r) => {
                let out = &r["output"];
                let rejected = out["outcome"] == json!("rejected")
                    && out["reason"].as_str().is_some_and(|s| !s.is_empty());
                if !rejected {
                    findings.push(finding(input, format!("not rejected: {out}")));
                }
            }
            Err(e) => {
                findings.push(finding(input, e.to_string()));
                let _ = iut.restart();
            }
        }
    }
    findings
}
