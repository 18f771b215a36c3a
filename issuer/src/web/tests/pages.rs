//! Every page renders, escapes what it shows, carries the security headers; filters and
//! paging work; bad input is answered with messages, never a 500.

use axum::http::StatusCode;
use latchkey::Reason;

use super::{Harness, T0, TestResult};
use crate::web::{CONTENT_SECURITY_POLICY, LockStatusView};

const HOSTILE: &str = "<script>alert(1)</script>";

/// Data with hostile strings in every free-text place a page shows.
async fn hostile_harness() -> (Harness, super::Browser, latchkey::GuestId) {
    let h = Harness::new();
    let evil_lock = h
        .backend
        .add_lock("<img src=x onerror=alert(2)>", "\"><b>tz");
    h.backend.set_lock_status(
        evil_lock,
        T0,
        Some(LockStatusView {
            battery_pct: Some(5),
            ..LockStatusView::default()
        }),
    );
    let guest = h.enroll(HOSTILE).await;
    let grant = h
        .backend
        .issue_grant(guest, h.front, 600)
        .unwrap_or_else(|e| panic!("{e}"));
    h.backend
        .record_lock_event(T0, h.front, Some(guest), Some(grant), "unlock", None);
    h.backend.record_lock_event(
        T0,
        h.front,
        Some(guest),
        None,
        "rejection",
        Some(Reason::BadResponseMac),
    );
    h.backend.add_alert(
        "unusual_hour",
        "high",
        0.97,
        Some(h.front),
        Some(guest),
        "\"><script>alert(3)</script>",
    );
    let b = h.login().await;
    (h, b, guest)
}

#[tokio::test]
async fn every_page_renders_and_escapes_hostile_strings() -> TestResult {
    let (h, b, guest) = hostile_harness().await;
    let guest_page = format!("/guests/{guest}");
    for path in [
        "/",
        "/locks",
        "/guests",
        "/guests/new",
        guest_page.as_str(),
        "/grants",
        "/grants?state=all",
        "/audit",
        "/alerts",
        "/alerts?show=all",
    ] {
        let reply = h.get(path, Some(&b)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert!(
            reply.header("content-type").starts_with("text/html"),
            "{path}"
        );
        for raw in ["<script>alert", "<img src=x", "<b>tz"] {
            assert!(!reply.body.contains(raw), "{path} shows {raw:?} unescaped");
        }
    }
    let guests = h.get("/guests", Some(&b)).await;
    assert!(
        guests
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown, escaped"
    );
    let alerts = h.get("/alerts", Some(&b)).await;
    assert!(
        alerts.body.contains("&quot;&gt;&lt;script&gt;alert(3)"),
        "{}",
        alerts.body
    );
    Ok(())
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_pages_are_not_stored() -> TestResult {
    let (h, b, _) = hostile_harness().await;
    for (path, browser) in [
        ("/", Some(&b)),
        ("/audit", Some(&b)),
        ("/login", None),
        ("/nowhere", Some(&b)),
        ("/", None),
    ] {
        let reply = h.get(path, browser).await;
        assert_eq!(
            reply.header("content-security-policy"),
            CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(reply.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(reply.header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(reply.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(reply.header("cache-control"), "no-store", "{path}");
    }
    let css = h.get("/static/admin.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert_eq!(css.header("x-content-type-options"), "nosniff");
    let dashboard = h.get("/", Some(&b)).await;
    assert!(!dashboard.body.contains("<script"), "no script at all");
    assert!(!dashboard.body.contains(" style="), "no inline style (CSP)");
    assert_eq!(
        h.get("/nowhere", Some(&b)).await.status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn the_dashboard_charts_the_last_24_hours_and_30_days() -> TestResult {
    let h = Harness::new();
    let guest = h.enroll("Ann").await;
    let hour = 3_600_000;
    for (ago, kind) in [
        (0, "unlock"),
        (0, "unlock"),
        (2 * hour, "rejection"),
        (25 * hour, "unlock"),
        (40 * 24 * hour, "unlock"),
    ] {
        let reason = (kind == "rejection").then_some(Reason::BadResponseMac);
        h.backend
            .record_lock_event(T0 - ago, h.front, Some(guest), None, kind, reason);
    }
    let b = h.login().await;
    let page = h.get("/", Some(&b)).await;
    assert!(
        page.body.contains(
            "Last 24 hours, per hour (UTC) — <span class=\"legend-unlocks\">■ unlocks 2</span>"
        ),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"legend-rejections\">■ rejections 1</span>")
    );
    assert!(
        page.body.contains(
            "Last 30 days, per day (UTC) — <span class=\"legend-unlocks\">■ unlocks 3</span>"
        ),
        "40 days ago is out"
    );
    assert!(
        page.body.contains("<title>14:00: 2 unlocks</title>"),
        "T0 is 14:05 UTC"
    );
    assert_eq!(page.body.matches("<svg").count(), 2);
    Ok(())
}

#[tokio::test]
async fn audit_filters_narrow_the_log() -> TestResult {
    let h = Harness::new();
    let ann = h.enroll("Ann").await;
    let bob = h.enroll("Bob").await;
    h.backend
        .record_lock_event(T0 - 7_200_000, h.front, Some(ann), None, "unlock", None);
    h.backend.record_lock_event(
        T0 - 3_600_000,
        h.back,
        Some(bob),
        None,
        "rejection",
        Some(Reason::BadResponseMac),
    );
    h.backend.record_lock_event(
        T0,
        h.front,
        Some(bob),
        None,
        "rejection",
        Some(Reason::ClockSkew),
    );
    let b = h.login().await;
    let rows = |body: &str| body.matches("<td class=\"time\">").count();
    let all = h.get("/audit?source=lock", Some(&b)).await;
    assert_eq!(rows(&all.body), 3);
    let cases = [
        (format!("/audit?lock={}", h.back), 1),
        (format!("/audit?guest={bob}&source=lock"), 2),
        ("/audit?kind=rejection".to_owned(), 2),
        ("/audit?reason=clock_skew".to_owned(), 1),
        (
            "/audit?source=lock&from=2025-03-01T12:00&until=2025-03-01T13:00".to_owned(),
            1,
        ),
        (
            format!(
                "/audit?kind=rejection&lock={}&guest={bob}&reason=bad_response_mac",
                h.back
            ),
            1,
        ),
        ("/audit?kind=grant_revoked".to_owned(), 0),
    ];
    for (path, expected) in cases {
        let reply = h.get(&path, Some(&b)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(rows(&reply.body), expected, "{path}");
    }
    let filtered = h.get(&format!("/audit?lock={}", h.back), Some(&b)).await;
    assert!(
        filtered.body.contains(&format!(
            "<option value=\"{}\" selected>Back door</option>",
            h.back
        )),
        "the filter is shown back"
    );
    Ok(())
}

#[tokio::test]
async fn audit_pages_keep_the_filters() -> TestResult {
    let h = Harness::new();
    let ann = h.enroll("Ann").await;
    for i in 0..25 {
        h.backend
            .record_lock_event(T0 - i * 1000, h.front, Some(ann), None, "unlock", None);
    }
    let b = h.login().await;
    let rows = |body: &str| body.matches("<td class=\"time\">").count();
    let first = h.get("/audit?kind=unlock", Some(&b)).await;
    assert_eq!(rows(&first.body), 10);
    assert!(
        first.body.contains("Entries 1–10 of 25 · page 1 of 3"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains("href=\"/audit?kind=unlock&amp;page=2\""),
        "the next link keeps the filter"
    );
    let last = h.get("/audit?kind=unlock&page=3", Some(&b)).await;
    assert_eq!(rows(&last.body), 5);
    assert!(
        last.body
            .contains("href=\"/audit?kind=unlock&amp;page=2\" rel=\"prev\"")
    );
    assert!(!last.body.contains("rel=\"next\""));
    let past = h.get("/audit?kind=unlock&page=9", Some(&b)).await;
    assert_eq!(past.status, StatusCode::OK);
    assert!(past.body.contains("is past the end"));
    Ok(())
}

#[tokio::test]
async fn invalid_filters_are_explained_never_a_server_error() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let reply = h.get("/audit?lock=ZZ&guest=12&from=2025-13-01&until=yesterday&reason=bogus&source=moon&kind=Drop%20Table&page=0", Some(&b)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    for message in [
        "is not a lock id",
        "is not a guest id",
        "2025-03-01T14:05",
        "is not a reason name",
        "choose issuer, lock or admin",
        "snake_case",
        "page must be",
    ] {
        assert!(reply.body.contains(message), "missing {message:?}");
    }
    assert!(
        !reply.body.contains("<td class=\"time\">"),
        "no results with a bad filter"
    );
    let reversed = h
        .get("/audit?from=2025-03-02&until=2025-03-01", Some(&b))
        .await;
    assert_eq!(reversed.status, StatusCode::BAD_REQUEST);
    assert!(reversed.body.contains("must be after"));
    for path in [
        "/grants?state=later",
        "/grants?lock=1",
        "/alerts?show=some",
        "/guests?page=-1",
        "/guests/not-an-id",
        "/guests/%00",
    ] {
        let reply = h.get(path, Some(&b)).await;
        assert!(
            reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.status
        );
    }
    Ok(())
}

#[tokio::test]
async fn grants_list_filters_live_and_past() -> TestResult {
    let h = Harness::new();
    let ann = h.enroll("Ann").await;
    h.backend.issue_grant(ann, h.front, 60)?;
    h.clock.advance(std::time::Duration::from_secs(120));
    h.backend.issue_grant(ann, h.front, 600)?;
    let b = h.login().await;
    let count = |body: &str| body.matches("class=\"badge ").count();
    assert_eq!(
        count(&h.get("/grants", Some(&b)).await.body),
        1,
        "live by default"
    );
    let past = h.get("/grants?state=past", Some(&b)).await;
    assert_eq!(count(&past.body), 1);
    assert!(past.body.contains(">expired<"));
    assert_eq!(count(&h.get("/grants?state=all", Some(&b)).await.body), 2);
    assert_eq!(
        count(
            &h.get(&format!("/grants?state=all&lock={}", h.back), Some(&b))
                .await
                .body
        ),
        0
    );
    Ok(())
}

#[tokio::test]
async fn times_at_a_lock_are_shown_in_utc_and_in_the_locks_zone() -> TestResult {
    let h = Harness::new();
    let ann = h.enroll("Ann").await;
    let grant = h.backend.issue_grant(ann, h.front, 600)?;
    let b = h.login().await;
    let not_after = h
        .backend
        .grants()
        .iter()
        .find(|g| g.grant_id == grant)
        .map(|g| g.not_after_s)
        .unwrap_or_default();
    let utc = crate::web::timefmt::format_utc(not_after * 1000);
    let paris =
        crate::web::timefmt::format_in_zone(not_after * 1000, "Europe/Paris").unwrap_or_default();
    let grants = h.get("/grants", Some(&b)).await;
    assert!(grants.body.contains(&utc), "{}", grants.body);
    assert!(
        grants.body.contains(&format!("{paris} at the lock")),
        "the front door is in Paris: {}",
        grants.body
    );
    // The audit log shows the grant's record at the lock too; a UTC lock has no second line.
    let audit = h.get("/audit?kind=grant_issued", Some(&b)).await;
    assert!(audit.body.contains("at the lock"), "{}", audit.body);
    let back = h.backend.issue_grant(ann, h.back, 600);
    assert!(back.is_err(), "Ann has no access at the back door");
    Ok(())
}

#[tokio::test]
async fn a_backend_outage_is_a_503_page() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    h.backend.set_unavailable(true);
    let reply = h.get("/locks", Some(&b)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("cannot be reached"));
    Ok(())
}

#[tokio::test]
async fn locks_show_health() -> TestResult {
    let h = Harness::new();
    h.backend.set_lock_status(
        h.front,
        T0 - 60_000,
        Some(LockStatusView {
            tamper: true,
            ..LockStatusView::default()
        }),
    );
    h.backend
        .set_lock_status(h.back, T0 - 60_000, Some(LockStatusView::default()));
    let b = h.login().await;
    let page = h.get("/locks", Some(&b)).await;
    assert!(page.body.contains("tamper switch set"));
    assert!(page.body.contains("<span class=\"badge ok\""));
    assert!(page.body.contains("<span class=\"badge alarm\""));
    assert!(page.body.contains("Europe/Paris"));
    assert!(page.body.contains("1 min ago"));
    Ok(())
}
