//! The data model of vectors and run results: what the JSON files hold and what a run
//! reports. Field names are the published schema's (`vectors/schema/`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Schema version of the vector files.
pub const VECTORS_VERSION: u32 = 1;

/// One vector file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VectorFile {
    /// Always [`VECTORS_VERSION`].
    pub latchkey_vectors: u32,
    /// `primitives`, `frames` or `scenarios`.
    pub kind: String,
    /// What this file covers.
    pub description: String,
    /// The command that wrote it.
    pub generator: String,
    /// Named RSA keys the cases refer to as `key:NAME` (private, PKCS#8 DER hex) and
    /// `pub:NAME` (public, SPKI DER hex).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, KeyPair>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// An RSA key pair used by the vectors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyPair {
    /// PKCS#8 DER, hex.
    pub pkcs8: String,
    /// SPKI DER, hex.
    pub spki: String,
}

/// One test case. `kind`-specific content lives in `body`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    /// Stable id, e.g. `lock-adv-2-stale-step`.
    pub id: String,
    /// What the case shows, for a person.
    pub comment: String,
    /// Requirement ids of the spec this case covers.
    pub requirements: Vec<String>,
    /// Free-form tags (e.g. `mutation`, `boundary`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// `valid` (the implementation must accept) or `invalid` (it must reject).
    pub result: Expectation,
    /// The role under test: `lock`, `guest`, `issuer`, or `any` for primitives and frames.
    pub role: String,
    /// Kind-specific content (see the schema).
    #[serde(flatten)]
    pub body: CaseBody,
}

/// Whether a case is accepted or rejected.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    /// Must be accepted.
    Valid,
    /// Must be rejected.
    Invalid,
}

/// The three kinds of case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CaseBody {
    /// A primitive: named function, inputs, expected output.
    Primitive {
        /// Primitive name, e.g. `beacon_tag`.
        primitive: String,
        /// Inputs (hex strings and integers).
        input: Value,
        /// Expected output fields.
        output: Value,
    },
    /// A frame decode (and, for valid frames, encode) case.
    Frame {
        /// Frame name, e.g. `beacon`.
        frame: String,
        /// The bytes, hex.
        bytes: String,
        /// Decoded fields when valid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fields: Option<Value>,
        /// The rejection reason when invalid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A timed script of inputs to one role.
    Scenario {
        /// Role configuration (keys inline as hex DER).
        config: Value,
        /// The steps.
        steps: Vec<Step>,
    },
}

/// One step of a scenario: an input at time `t` and the output expected after it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// Unix milliseconds.
    pub t: u64,
    /// The input (`type` plus fields).
    pub input: Value,
    /// The expected output (a subset match; see SHIM.md).
    pub expect: Value,
}

/// The verdict on one case.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every step matched.
    Passed,
    /// A step did not match, or the implementation crashed, hung or spoke garbage.
    Failed,
    /// The implementation said it does not implement this role or feature.
    Unimplemented,
    /// Excluded by configuration (with a reason).
    Disabled,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Vector file kind.
    pub kind: String,
    /// Role under test.
    pub role: String,
    /// Requirements covered.
    pub requirements: Vec<String>,
    /// Whether the case must be accepted or rejected.
    pub result: Expectation,
    /// The case's comment.
    pub comment: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed / is unimplemented (empty when passed).
    pub detail: String,
    /// Index of the first failing step, for scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<usize>,
    /// The input of the failing step (or the case input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// What was expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// What the implementation produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// Wall time of the case in milliseconds.
    pub duration_ms: u64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    /// Implementation under test, as it named itself.
    pub implementation: String,
    /// Harness version.
    pub harness_version: String,
    /// Case results in execution order.
    pub results: Vec<CaseResult>,
    /// Requirements with no passing accepting case or no passing rejecting case in this run.
    pub uncovered: Vec<String>,
}

impl RunReport {
    /// Count of results with this verdict.
    pub fn count(&self, v: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == v).count()
    }
}
