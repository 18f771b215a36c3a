//! The vectors against the reference, in process and through the shim; drift; coverage;
//! the schema; broken implementations caught; frame fuzzing.

use std::path::Path;
use std::time::Duration;

use latchkey_harness::broken::{BrokenIut, Fault};
use latchkey_harness::iut::Iut as _;
use latchkey_harness::iut::reference::ReferenceIut;
use latchkey_harness::iut::shim_client::ShimProcess;
use latchkey_harness::model::{VectorFile, Verdict};
use latchkey_harness::runner::{self, Filter};
use latchkey_harness::{coverage, fuzz, generate, vectors};

fn files() -> Vec<VectorFile> {
    vectors::load_all(&vectors::default_dir()).expect("vectors load")
}

fn shim_command(extra: &str) -> String {
    format!("{} shim {extra}", env!("CARGO_BIN_EXE_latchkey-harness"))
}

fn failures(rep: &latchkey_harness::model::RunReport) -> Vec<String> {
    rep.results
        .iter()
        .filter(|r| r.verdict != Verdict::Passed)
        .map(|r| format!("{}: {}", r.id, r.detail))
        .collect()
}

#[test]
fn every_vector_passes_against_the_reference_in_process() {
    let files = files();
    let rep = runner::run(
        &mut ReferenceIut::default(),
        &files,
        &Filter::default(),
        false,
    );
    assert!(rep.results.len() > 150, "only {} cases", rep.results.len());
    assert_eq!(failures(&rep), Vec::<String>::new());
    assert_eq!(rep.uncovered, Vec::<String>::new());
}

/// Every vector case against the reference with each compiled-in RSA provider (aws-lc-rs
/// with the harness's default `aws-lc-rs` feature): the same verdict, case by case, as with
/// the default provider. aws-lc-rs draws PSS salts and OAEP seeds from its own DRBG, so its
/// grants differ in bytes; the runner checks them by verifying and unwrapping.
#[test]
fn every_vector_passes_against_the_reference_with_every_rsa_provider() {
    use latchkey::crypto::provider::rsa_providers;
    let files = files();
    let verdicts = |iut: &mut ReferenceIut| {
        let rep = runner::run(iut, &files, &Filter::default(), false);
        assert_eq!(
            failures(&rep),
            Vec::<String>::new(),
            "{}",
            rep.implementation
        );
        assert_eq!(rep.uncovered, Vec::<String>::new());
        rep.results
            .iter()
            .map(|r| (r.id.clone(), r.verdict))
            .collect::<Vec<_>>()
    };
    let baseline = verdicts(&mut ReferenceIut::default());
    assert_eq!(
        rsa_providers().len(),
        if cfg!(feature = "aws-lc-rs") { 2 } else { 1 }
    );
    for p in rsa_providers() {
        let mut iut = ReferenceIut::with_provider(*p);
        assert!(iut.name().contains(p.name()));
        assert_eq!(verdicts(&mut iut), baseline, "provider {}", p.name());
    }
}

#[test]
fn every_vector_passes_against_the_reference_through_the_shim() {
    let files = files();
    let mut shim =
        ShimProcess::spawn(&shim_command(""), Duration::from_secs(10)).expect("shim starts");
    let rep = runner::run(&mut shim, &files, &Filter::default(), false);
    assert!(rep.implementation.starts_with("latchkey-reference"));
    assert_eq!(failures(&rep), Vec::<String>::new());
}

#[test]
fn vectors_do_not_drift_from_the_reference() {
    let dir = vectors::default_dir();
    for (name, file) in generate::all(&dir.join("keys")).expect("generate") {
        let _ = &file;
        let on_disk = std::fs::read_to_string(dir.join(&name)).expect("checked-in file");
        assert!(
            on_disk == vectors::to_text(&file),
            "vectors/{name} differs from what the reference generates: run `cargo run -p latchkey-harness -- vectors generate` and review the diff"
        );
    }
}

#[test]
fn the_worked_shim_transcript_is_current_and_replays_through_the_shim() {
    let files = files();
    let want = generate::transcript(&files);
    let on_disk = std::fs::read_to_string(vectors::default_dir().join("shim-transcript.jsonl"))
        .expect("transcript");
    assert!(
        on_disk == want,
        "vectors/shim-transcript.jsonl is stale: run `cargo run -p latchkey-harness -- vectors generate`"
    );
    // Every request line, sent to the shim binary, gets exactly the recorded reply.
    let mut shim = ShimProcess::spawn(&shim_command(""), Duration::from_secs(10)).expect("shim");
    let lines: Vec<&str> = on_disk.lines().collect();
    for pair in lines.chunks(2).skip(1) {
        let req: serde_json::Value =
            serde_json::from_str(pair[0].trim_start_matches("> ")).expect("request");
        let want: serde_json::Value =
            serde_json::from_str(pair[1].trim_start_matches("< ")).expect("reply");
        if req["op"] == "bye" {
            break;
        }
        let got = latchkey_harness::iut::Iut::call(&mut shim, &req).expect("reply");
        assert_eq!(got, want, "request {req}");
    }
}

#[test]
fn every_testable_requirement_has_accepting_and_rejecting_cases() {
    let files = files();
    assert_eq!(coverage::uncovered_static(&files), Vec::<String>::new());
    assert_eq!(coverage::unknown_in_vectors(&files), Vec::<String>::new());
    // The spec's requirement list is real: the families the protocol defines are all there.
    let spec = coverage::spec_requirements();
    for id in [
        "LK-ADV-9",
        "LK-RSP-7",
        "LK-GRT-9",
        "LK-REV-4",
        "LK-GST-5",
        "LK-ISS-10",
        "LK-EVT-2",
        "LK-TIM-1",
    ] {
        assert!(spec.contains(id), "{id} missing from the spec");
    }
}

#[test]
fn vector_files_match_the_published_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/schema/latchkey-vectors.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema"))
            .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    for name in vectors::FILES {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(vectors::default_dir().join(name)).expect("file"),
        )
        .expect("json");
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    // And the schema is not vacuous: a case without requirements is refused.
    let mut bad: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors::default_dir().join("lock.json")).expect("file"),
    )
    .expect("json");
    bad["cases"][0]["requirements"] = serde_json::json!([]);
    assert!(!validator.is_valid(&bad));
}

#[test]
fn every_broken_implementation_is_caught() {
    let files = files();
    for fault in Fault::ALL {
        let rep = runner::run(
            &mut BrokenIut::new(*fault),
            &files,
            &Filter::default(),
            false,
        );
        let failed: Vec<&str> = rep
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::Failed)
            .map(|r| r.id.as_str())
            .collect();
        assert!(!failed.is_empty(), "{fault:?} passed every vector");
    }
}

#[test]
fn a_broken_implementation_behind_a_shim_is_caught() {
    let files = files();
    let mut shim = ShimProcess::spawn(&shim_command("--broken skip-rssi"), Duration::from_secs(10))
        .expect("shim starts");
    let filter = Filter {
        requirements: vec!["LK-ADV-4".into()],
        ..Filter::default()
    };
    let rep = runner::run(&mut shim, &files, &filter, false);
    let failed: Vec<&str> = rep
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::Failed)
        .map(|r| r.id.as_str())
        .collect();
    assert!(failed.contains(&"lock-adv-4-rssi-low"), "{failed:?}");
}

#[test]
fn filters_select_by_role_requirement_and_id() {
    let files = files();
    let by_role = runner::selected(
        &files,
        &Filter {
            roles: vec!["guest".into()],
            ..Filter::default()
        },
    );
    assert!(!by_role.is_empty() && by_role.iter().all(|(_, c)| c.role == "guest"));
    let by_req = runner::selected(
        &files,
        &Filter {
            requirements: vec!["LK-SEL-2".into()],
            ..Filter::default()
        },
    );
    assert!(
        by_req
            .iter()
            .all(|(_, c)| c.requirements.iter().any(|r| r == "LK-SEL-2"))
    );
    assert!(by_req.len() >= 2);
    let by_id = runner::selected(
        &files,
        &Filter {
            cases: vec!["lock-unlock".into()],
            ..Filter::default()
        },
    );
    assert_eq!(by_id.len(), 1);
}

#[test]
fn frame_fuzzing_finds_nothing_in_the_reference_and_catches_a_missing_mac_check() {
    let files = files();
    let findings = fuzz::run(&mut ReferenceIut::default(), &files, 7, 400);
    assert!(findings.is_empty(), "{:?}", findings.first());
    let findings = fuzz::run(&mut BrokenIut::new(Fault::SkipBeaconMac), &files, 7, 400);
    assert!(
        !findings.is_empty(),
        "a lock without the beacon MAC check survived 400 mutated frames"
    );
    // Reproducible: the same seed gives the same findings.
    let again = fuzz::run(&mut BrokenIut::new(Fault::SkipBeaconMac), &files, 7, 400);
    assert_eq!(findings.len(), again.len());
    assert_eq!(findings[0].mutation, again[0].mutation);
}

#[test]
fn an_unimplemented_role_is_reported_as_unimplemented_not_passed() {
    let files = files();
    // A shim that implements only primitives and frames.
    let script = r#"while IFS= read -r line; do
      case "$line" in
        *'"op":"hello"'*) echo '{"ok":true,"protocol":1,"implementation":"partial"}';;
        *'"op":"create"'*) echo '{"ok":false,"unimplemented":"no roles"}';;
        *'"op":"reset"'*) echo '{"ok":true}';;
        *) echo '{"ok":false,"unimplemented":"nothing"}';;
      esac
    done"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("partial.sh");
    std::fs::write(&path, script).expect("write");
    let mut shim = ShimProcess::spawn(&format!("sh {}", path.display()), Duration::from_secs(5))
        .expect("spawn");
    let filter = Filter {
        roles: vec!["issuer".into()],
        ..Filter::default()
    };
    let rep = runner::run(&mut shim, &files, &filter, false);
    assert!(rep.count(Verdict::Unimplemented) > 0);
    assert_eq!(rep.count(Verdict::Passed), 0);
    assert_eq!(rep.count(Verdict::Failed), 0);
}

#[test]
fn a_shim_that_crashes_or_hangs_fails_that_case_and_the_run_continues() {
    let files = files();
    let dir = tempfile::tempdir().expect("tempdir");
    // A proxy in front of the reference shim that dies on one input and hangs on another.
    let script = format!(
        r#"coproc REF {{ {bin} shim; }}
while IFS= read -r line; do
  case "$line" in
    *'"rssi":-71'*) echo "dying on purpose" >&2; exit 3;;
    *'"rssi":127'*) sleep 30;;
  esac
  printf '%s\n' "$line" >&"${{REF[1]}}"
  IFS= read -r reply <&"${{REF[0]}}"
  printf '%s\n' "$reply"
done"#,
        bin = env!("CARGO_BIN_EXE_latchkey-harness")
    );
    let path = dir.path().join("flaky.sh");
    std::fs::write(&path, script).expect("write");
    let mut shim = ShimProcess::spawn(
        &format!("bash {}", path.display()),
        Duration::from_millis(1500),
    )
    .expect("spawn");
    let filter = Filter {
        requirements: vec!["LK-ADV-4".into()],
        ..Filter::default()
    };
    let rep = runner::run(&mut shim, &files, &filter, false);
    let by_id = |id: &str| rep.results.iter().find(|r| r.id == id).expect("case ran");
    let crashed = by_id("lock-adv-4-rssi-low");
    assert_eq!(crashed.verdict, Verdict::Failed);
    assert!(crashed.detail.contains("crashed"), "{}", crashed.detail);
    let hung = by_id("lock-adv-4-rssi-unavailable");
    assert_eq!(hung.verdict, Verdict::Failed);
    assert!(hung.detail.contains("did not answer"), "{}", hung.detail);
    // The case after them ran against a restarted shim and passed.
    assert_eq!(
        by_id("lock-adv-4-rssi-at-threshold").verdict,
        Verdict::Passed
    );
    assert_eq!(by_id("lock-unlock").verdict, Verdict::Passed);
}
