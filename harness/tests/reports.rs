//! Reports of a fixed run: snapshots of each rendering plus the facts other tools rely on
//! (the closing line, well-formed and escaped XML, escaped HTML).

use latchkey_harness::model::{CaseResult, Expectation, RunReport, Verdict};
use latchkey_harness::report::{self, Progress, html, json, junit, terminal};
use quick_xml::events::Event;
use serde_json::json;

const NASTY: &str = "reply <&>\"' mismatch\u{1}\u{7}";

fn case(id: &str, kind: &str, role: &str, reqs: &[&str], verdict: Verdict) -> CaseResult {
    CaseResult {
        id: id.into(),
        kind: kind.into(),
        role: role.into(),
        requirements: reqs.iter().map(|r| r.to_string()).collect(),
        result: Expectation::Valid,
        comment: format!("comment of {id}"),
        verdict,
        detail: String::new(),
        failed_step: None,
        input: None,
        expected: None,
        actual: None,
        duration_ms: 0,
    }
}

fn sample() -> RunReport {
    let passed = CaseResult {
        input: Some(json!({"key": "00ff", "step": 7})),
        expected: Some(json!({"tag": "a1b2"})),
        actual: Some(json!({"tag": "a1b2"})),
        ..case(
            "beacon-tag-basic",
            "primitives",
            "any",
            &["LK-ADV-2"],
            Verdict::Passed,
        )
    };
    let failed = CaseResult {
        result: Expectation::Invalid,
        detail: format!("step 2: {NASTY}"),
        failed_step: Some(2),
        input: Some(json!({"type": "unlock_request", "t": 1000})),
        expected: Some(json!({
            "type": "unlock_result",
            "status": "ok",
            "nested": {"a": 1, "b": 2},
            "list": [1, 2],
            "gone": true
        })),
        actual: Some(json!({
            "type": "unlock_result",
            "status": "denied",
            "nested": {"a": 1, "b": 3},
            "list": [1, 2, 3],
            "extra": "x"
        })),
        ..case(
            "lock-unlock-stale-step",
            "scenarios",
            "lock",
            &["LK-ADV-10", "LK-UNLOCK-1"],
            Verdict::Failed,
        )
    };
    let script = CaseResult {
        detail: "decoder said <script>alert(1)</script>".into(),
        ..case(
            "beacon-frame-short",
            "frames",
            "any",
            &["LK-FRAME-1"],
            Verdict::Failed,
        )
    };
    let unimplemented = CaseResult {
        detail: "role issuer not supported".into(),
        ..case(
            "issuer-grant-basic",
            "scenarios",
            "issuer",
            &["LK-GRANT-1"],
            Verdict::Unimplemented,
        )
    };
    let disabled = CaseResult {
        detail: "disabled by config: needs RSSI".into(),
        ..case(
            "guest-rssi-floor",
            "scenarios",
            "guest",
            &["LK-RSSI-2"],
            Verdict::Disabled,
        )
    };
    RunReport {
        implementation: "acme-lock <v2>".into(),
        harness_version: "0.1.0".into(),
        results: vec![passed, failed, script, unimplemented, disabled],
        uncovered: vec!["LK-ADV-10".into(), "LK-TIME-1".into()],
    }
}

/// Accepts `N passed, M failed` optionally followed by `, K unimplemented, D disabled`.
fn parse_closing_line(line: &str) -> Option<[usize; 4]> {
    let parts: Vec<&str> = line.split(", ").collect();
    let words = ["passed", "failed", "unimplemented", "disabled"];
    if parts.len() != 2 && parts.len() != 4 {
        return None;
    }
    let mut counts = [0; 4];
    for (i, part) in parts.iter().enumerate() {
        let (n, word) = part.split_once(' ')?;
        if word != words[i] || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        counts[i] = n.parse().ok()?;
    }
    Some(counts)
}

#[test]
fn terminal_snapshot() {
    insta::assert_snapshot!("terminal", terminal::render(&sample()));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!("junit", junit::render(&sample()));
}

#[test]
fn html_snapshot() {
    insta::assert_snapshot!("html", html::render(&sample()));
}

#[test]
fn terminal_ends_with_the_closing_line_ci_tools_parse() {
    let text = terminal::render(&sample());
    assert!(text.ends_with('\n'));
    let last = text.lines().last().unwrap();
    assert_eq!(last, "1 passed, 2 failed, 1 unimplemented, 1 disabled");
    assert_eq!(parse_closing_line(last), Some([1, 2, 1, 1]));
    // The parser itself accepts the short form and rejects near misses.
    assert_eq!(parse_closing_line("3 passed, 0 failed"), Some([3, 0, 0, 0]));
    assert_eq!(parse_closing_line("3 passed 0 failed"), None);
    assert_eq!(parse_closing_line("passed, 0 failed"), None);
}

#[test]
fn terminal_lists_failures_with_step_expected_and_actual() {
    let text = terminal::render(&sample());
    assert!(text.contains("lock-unlock-stale-step [LK-ADV-10, LK-UNLOCK-1]"));
    assert!(text.contains("    step:     2\n"));
    assert!(text.contains(r#"expected: {"type":"unlock_result","status":"ok","#));
    assert!(text.contains(r#"actual:   {"type":"unlock_result","status":"denied","#));
    assert!(text.contains("issuer-grant-basic: role issuer not supported"));
    assert!(text.contains("    detail:   step 2: reply <&>\"' mismatch\\u{1}\\u{7}\n"));
    assert!(text.contains("requirements without coverage: LK-ADV-10, LK-TIME-1"));
}

#[test]
fn terminal_reports_full_coverage() {
    let mut report = sample();
    report.uncovered.clear();
    report.results.retain(|r| r.verdict == Verdict::Passed);
    let text = terminal::render(&report);
    assert!(
        text.contains("coverage: every requirement has an accepting and a rejecting passing case")
    );
    assert!(!text.contains("FAILED ("));
    assert!(!text.contains("UNIMPLEMENTED ("));
    assert!(text.ends_with("\n1 passed, 0 failed, 0 unimplemented, 0 disabled\n"));
}

/// What a parsed `<testcase>` holds.
#[derive(Debug, Default)]
struct Testcase {
    classname: String,
    name: String,
    failure_message: Option<String>,
    failure_text: String,
    skipped_message: Option<String>,
}

fn current(cases: &mut [Testcase]) -> &mut Testcase {
    cases.last_mut().expect("inside a <testcase>")
}

/// Parses the JUnit document with quick-xml, failing on any well-formedness error.
fn parse_junit(xml: &str) -> (Vec<(String, String)>, Vec<Testcase>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut suites = Vec::new();
    let mut cases: Vec<Testcase> = Vec::new();
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let opt_attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> Option<String> {
            e.attributes()
                .map(|a| a.expect("well-formed attribute"))
                .find(|a| a.key.as_ref() == name)
                .map(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("valid escapes")
                        .into_owned()
                })
        };
        let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> String {
            opt_attr(e, name).unwrap_or_else(|| panic!("attribute {name} present"))
        };
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let tag = e.name().as_ref().to_string();
                match tag.as_str() {
                    "testsuite" => suites.push((
                        attr(e, "name"),
                        format!(
                            "tests={} failures={} skipped={}",
                            attr(e, "tests"),
                            attr(e, "failures"),
                            attr(e, "skipped")
                        ),
                    )),
                    "testcase" => cases.push(Testcase {
                        classname: attr(e, "classname"),
                        name: attr(e, "name"),
                        ..Testcase::default()
                    }),
                    "failure" => current(&mut cases).failure_message = opt_attr(e, "message"),
                    "skipped" => current(&mut cases).skipped_message = opt_attr(e, "message"),
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(tag);
                }
            }
            Event::End(_) => {
                stack.pop().expect("balanced tags");
            }
            Event::Text(t) if stack.last().map(String::as_str) == Some("failure") => {
                let text = t.xml10_content().into_owned();
                current(&mut cases).failure_text.push_str(&text);
            }
            Event::GeneralRef(r) if stack.last().map(String::as_str) == Some("failure") => {
                let entity = format!("&{};", r.xml10_content());
                let text = quick_xml::escape::unescape(&entity)
                    .expect("known entity")
                    .into_owned();
                current(&mut cases).failure_text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    (suites, cases)
}

#[test]
fn junit_is_well_formed_and_groups_by_kind_and_role() {
    let xml = junit::render(&sample());
    let (suites, cases) = parse_junit(&xml);
    assert_eq!(
        suites,
        [
            ("frames/any".into(), "tests=1 failures=1 skipped=0".into()),
            (
                "primitives/any".into(),
                "tests=1 failures=0 skipped=0".into()
            ),
            (
                "scenarios/guest".into(),
                "tests=1 failures=0 skipped=1".into()
            ),
            (
                "scenarios/issuer".into(),
                "tests=1 failures=0 skipped=1".into()
            ),
            (
                "scenarios/lock".into(),
                "tests=1 failures=1 skipped=0".into()
            ),
        ]
    );
    assert_eq!(cases.len(), 5);
    let lock = cases
        .iter()
        .find(|c| c.name == "lock-unlock-stale-step")
        .unwrap();
    assert_eq!(lock.classname, "latchkey.scenarios.lock");
    assert!(
        lock.failure_text
            .contains("requirements: LK-ADV-10, LK-UNLOCK-1\n")
    );
    assert!(lock.failure_text.contains("step: 2\n"));
    assert!(
        lock.failure_text
            .contains(r#"actual: {"type":"unlock_result","status":"denied""#)
    );
    let issuer = cases
        .iter()
        .find(|c| c.name == "issuer-grant-basic")
        .unwrap();
    assert_eq!(
        issuer.skipped_message.as_deref(),
        Some("UNIMPLEMENTED: role issuer not supported")
    );
    let guest = cases.iter().find(|c| c.name == "guest-rssi-floor").unwrap();
    assert_eq!(
        guest.skipped_message.as_deref(),
        Some("DISABLED: disabled by config: needs RSSI")
    );
}

#[test]
fn junit_escapes_markup_and_drops_control_characters() {
    let xml = junit::render(&sample());
    assert!(xml.contains(r#"message="step 2: reply &lt;&amp;&gt;&quot;&apos; mismatch""#));
    assert!(!xml.contains('\u{1}') && !xml.contains('\u{7}'));
    let (_, cases) = parse_junit(&xml);
    let lock = cases
        .iter()
        .find(|c| c.name == "lock-unlock-stale-step")
        .unwrap();
    // Round trip: what a CI tool reads is the detail minus the control characters.
    assert_eq!(
        lock.failure_message.as_deref(),
        Some("step 2: reply <&>\"' mismatch")
    );
    assert!(
        lock.failure_text
            .ends_with("detail: step 2: reply <&>\"' mismatch")
    );
    assert_eq!(junit::attr("a\nb\tc"), "a&#10;b&#9;c");
    assert_eq!(junit::text("a]]>b"), "a]]&gt;b");
}

#[test]
fn html_escapes_everything_from_the_report() {
    let page = html::render(&sample());
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("decoder said &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("acme-lock &lt;v2&gt;"));
    // Control characters from a shim become visible escapes.
    assert!(page.contains("mismatch\\u{1}\\u{7}</pre>"));
    assert!(!page.contains('\u{1}'));
    // Our one inline script, and nothing fetched from elsewhere.
    assert_eq!(page.matches("<script>").count(), 1);
    assert!(!page.contains("src=") && !page.contains("http://") && !page.contains("https://"));
}

#[test]
fn html_links_requirements_to_cases_and_marks_differences() {
    let page = html::render(&sample());
    // Requirement rows in natural order, each with badges linking to the cases.
    let adv2 = page.find(r#"id="req-LK-ADV-2""#).unwrap();
    let adv10 = page.find(r#"id="req-LK-ADV-10""#).unwrap();
    assert!(adv2 < adv10);
    assert!(page.contains(
        r##"<a class="badge failed" href="#case-lock-unlock-stale-step" title="FAILED, invalid (must reject)">"##
    ));
    assert!(
        page.contains(
            r#"<section class="case filterable failed" id="case-lock-unlock-stale-step""#
        )
    );
    // A requirement with no cases at all still shows up, as not covered.
    assert!(page.contains(r#"id="req-LK-TIME-1""#));
    // The diff marks what differs, what is missing and what is extra.
    assert!(page.contains(r#"<div class="exp">-     &quot;b&quot;: 2</div>"#));
    assert!(page.contains(r#"<div class="act">+     &quot;b&quot;: 3</div>"#));
    assert!(
        page.contains(
            r#"title="missing from the actual output">-   &quot;gone&quot;: true,</div>"#
        )
    );
    assert!(page.contains(r#"title="only in the actual output (not compared)">+   &quot;extra&quot;: &quot;x&quot;</div>"#));
    assert!(page.contains(r#"<div class="same">      &quot;a&quot;: 1,</div>"#));
}

#[test]
fn json_diff_compares_per_key() {
    use html::Diff;
    let e = json!({"a": 1, "b": {"c": 2}, "m": 0});
    let a = json!({"a": 1, "b": {"c": 3}, "x": 9});
    assert_eq!(
        html::diff(&e, &a),
        Diff::Object(vec![
            ("a", Diff::Equal(&json!(1))),
            (
                "b",
                Diff::Object(vec![(
                    "c",
                    Diff::Different {
                        expected: &json!(2),
                        actual: &json!(3)
                    }
                )])
            ),
            ("m", Diff::Missing(&json!(0))),
            ("x", Diff::Extra(&json!(9))),
        ])
    );
    assert_eq!(html::diff(&e, &e), Diff::Equal(&e));
    assert_eq!(
        html::diff(&json!([1]), &json!({})),
        Diff::Different {
            expected: &json!([1]),
            actual: &json!({})
        }
    );
}

#[test]
fn json_round_trips() {
    let report = sample();
    let text = json::render(&report).unwrap();
    assert!(text.starts_with("{\n  \"implementation\": \"acme-lock <v2>\","));
    let back: RunReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn write_all_writes_the_requested_files() {
    let dir = tempfile::tempdir().unwrap();
    let (j, x, h) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.html"),
    );
    report::write_all(&sample(), Some(&j), Some(&x), None).unwrap();
    assert!(j.exists() && x.exists() && !h.exists());
    report::write_all(&sample(), None, None, Some(&h)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&h).unwrap(),
        html::render(&sample())
    );
}

#[test]
fn progress_is_hidden_when_disabled() {
    let mut progress = Progress::new(3, false);
    assert!(!progress.is_visible());
    progress.inc("a", Verdict::Passed);
    progress.inc("b", Verdict::Failed);
    progress.finish();
}
