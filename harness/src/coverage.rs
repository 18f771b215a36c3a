//! Requirement coverage: every testable MUST of the spec needs a passing accepting case and a
//! passing rejecting case.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{CaseResult, Expectation, VectorFile, Verdict};

/// The specification the vectors are checked against (compiled in).
const SPEC: &str = include_str!("../../spec/latchkey.md");

/// Requirements that no wire-level vector can observe, with the reason; they are checked
/// elsewhere (named in the reason).
pub const EXCLUDED: &[(&str, &str)] = &[
    (
        "LK-CRY-",
        "implementation hygiene (constant-time comparison, zeroization, redacted Debug); not observable on the wire; reference unit tests lk_cry_*",
    ),
    (
        "LK-DEP-",
        "deployment requirements on the broker (authentication, ACL, QoS, persistence); checked by the daemon tests against Mosquitto",
    ),
    (
        "LK-CHL-1",
        "nonce freshness from a CSPRNG: the vectors pin the nonce so outputs are reproducible; reference test lk_chl_1",
    ),
];

/// Why `id` is excluded, if it is.
pub fn exclusion(id: &str) -> Option<&'static str> {
    EXCLUDED
        .iter()
        .find(|(p, _)| id.starts_with(p))
        .map(|(_, why)| *why)
}

/// Every requirement id tagged in the spec as `**LK-…**`.
pub fn spec_requirements() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in SPEC.split("**LK-").skip(1) {
        let id: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let id = id.trim_end_matches('-');
        if part[id.len()..].starts_with("**") && id.contains('-') {
            out.insert(format!("LK-{id}"));
        }
    }
    out
}

/// (has an accepting case, has a rejecting case) per requirement, from the vector files.
pub fn by_requirement(files: &[VectorFile]) -> BTreeMap<String, (usize, usize)> {
    let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in files.iter().flat_map(|f| &f.cases) {
        for r in &c.requirements {
            let e = m.entry(r.clone()).or_default();
            match c.result {
                Expectation::Valid => e.0 += 1,
                Expectation::Invalid => e.1 += 1,
            }
        }
    }
    m
}

/// Spec requirements the vector files do not cover both ways (excluded ones left out).
pub fn uncovered_static(files: &[VectorFile]) -> Vec<String> {
    let m = by_requirement(files);
    spec_requirements()
        .into_iter()
        .filter(|id| exclusion(id).is_none())
        .filter(|id| !matches!(m.get(id), Some((v, i)) if *v > 0 && *i > 0))
        .collect()
}

/// Requirements cited by the vectors that the spec does not define (typos, stale ids).
pub fn unknown_in_vectors(files: &[VectorFile]) -> Vec<String> {
    let spec = spec_requirements();
    by_requirement(files)
        .into_keys()
        .filter(|id| !spec.contains(id))
        .collect()
}

/// Spec requirements without a PASSED accepting and a PASSED rejecting case in a run.
pub fn uncovered_by_results(results: &[CaseResult]) -> Vec<String> {
    let mut m: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.verdict == Verdict::Passed) {
        let rejecting = r.result == Expectation::Invalid;
        for req in &r.requirements {
            let e = m.entry(req.as_str()).or_default();
            if rejecting { e.1 = true } else { e.0 = true }
        }
    }
    spec_requirements()
        .into_iter()
        .filter(|id| exclusion(id).is_none())
        .filter(|id| !matches!(m.get(id.as_str()), Some((true, true))))
        .collect()
}
