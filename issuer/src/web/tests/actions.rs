//! Actions: enroll (bundle shown once), rotate, access, revoke, acknowledge; each with
//! the operator's name; refused input shown again in the form.

use axum::http::StatusCode;

use super::{ADMIN, Harness, TestResult, form_body};
use crate::web::{AuditSource, Role};

#[tokio::test]
async fn enrolling_shows_the_bundle_once_as_qr_and_text_and_the_page_is_not_stored() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let form = h.get("/guests/new", Some(&b)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Front door") && form.body.contains("Back door"));
    let front = h.front.to_string();
    let body = form_body(&[
        ("csrf", &b.csrf),
        ("name", "Carol"),
        ("locks", &front),
        ("role", "resident"),
        ("valid_from", "2025-03-01T00:00"),
        ("valid_until", "2025-04-01T00:00"),
        ("schedule", "Mon-Fri 08:00-18:00; Sat 09:00-12:00"),
        ("max_unlocks", "40"),
    ]);
    let reply = h.post("/guests", &b.cookie, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.body.contains("<svg class=\"qr\""), "a QR code");
    assert!(
        reply
            .body
            .contains("This is the only time this bundle is shown")
    );
    let guests = h.backend.guests();
    assert_eq!(guests.len(), 1);
    let guest = &guests[0];
    assert_eq!(guest.name, "Carol");
    let spec = &guest.access[0].spec;
    assert_eq!(spec.role, Role::Resident);
    assert_eq!(
        (spec.valid_from_s, spec.valid_until_s),
        (Some(1_740_787_200), Some(1_743_465_600))
    );
    assert_eq!(
        spec.schedule.as_deref(),
        Some("Mon-Fri 08:00-18:00; Sat 09:00-12:00")
    );
    assert_eq!(spec.max_unlocks, Some(40));
    // The bundle text is on the page (JSON, escaped) and nowhere else afterwards.
    let key = super::between(&reply.body, "&quot;enrollment_key&quot;:&quot;", "&quot;")
        .unwrap_or_default();
    assert_eq!(key.len(), 64, "{}", reply.body);
    for path in [
        format!("/guests/{}", guest.guest_id),
        "/guests".into(),
        "/audit".into(),
        "/".into(),
    ] {
        let page = h.get(&path, Some(&b)).await;
        assert!(!page.body.contains(&key), "{path} shows the key again");
        assert!(!page.body.contains("<svg class=\"qr\""), "{path}");
    }
    let audit = h.backend.audit_entries();
    let enrolled = audit.iter().find(|e| e.kind == "guest_enrolled");
    assert_eq!(
        enrolled.and_then(|e| e.actor.as_deref()),
        Some(ADMIN),
        "the actor is passed on"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_enrollment_shows_every_problem_in_the_form_and_keeps_the_values() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let body = form_body(&[
        ("csrf", &b.csrf),
        ("name", "<b>Dave</b>\u{7}"),
        ("locks", "nothex"),
        ("role", "king"),
        ("valid_from", "2025-04-01T00:00"),
        ("valid_until", "2025-03-01T00:00"),
        ("max_unlocks", "0"),
    ]);
    let reply = h.post("/guests", &b.cookie, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    for message in [
        "control characters",
        "is not a lock id",
        "choose admin, resident or guest",
        "must be after the start",
        "max unlocks must be a whole number",
    ] {
        assert!(
            reply.body.contains(message),
            "missing {message:?}: {}",
            reply.body
        );
    }
    assert!(
        reply.body.contains("value=\"2025-04-01T00:00\""),
        "values are kept"
    );
    assert!(!reply.body.contains("<b>Dave"), "and escaped");
    let no_lock = h
        .post(
            "/guests",
            &b.cookie,
            &form_body(&[("csrf", &b.csrf), ("name", "Dave")]),
        )
        .await;
    assert!(no_lock.body.contains("choose at least one lock"));
    assert!(h.backend.guests().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_schedule_the_backend_refuses_is_shown_next_to_its_field() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let front = h.front.to_string();
    let body = form_body(&[
        ("csrf", &b.csrf),
        ("name", "Eve"),
        ("locks", &front),
        ("schedule", "weekdays, mornings"),
    ]);
    let reply = h.post("/guests", &b.cookie, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // The policy's grammar speaks, with where and what.
    let why = crate::policy::WeeklySchedule::parse("weekdays, mornings")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(why.starts_with("at character"), "{why}");
    assert!(reply.body.contains("at character"), "{}", reply.body);
    // An admin takes no unlock limit: the policy's rule check, next to its field.
    let admin = form_body(&[
        ("csrf", &b.csrf),
        ("name", "Eve"),
        ("locks", &front),
        ("role", "admin"),
        ("max_unlocks", "3"),
    ]);
    let reply = h.post("/guests", &b.cookie, &admin).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .body
            .contains("an admin is not restricted by an unlock limit"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(&format!("value=\"{front}\" checked")),
        "the lock stays ticked"
    );
    assert!(h.backend.guests().is_empty());
    Ok(())
}

#[tokio::test]
async fn rotating_a_key_shows_a_new_bundle() -> TestResult {
    let h = Harness::new();
    let guest = h.enroll("Fay").await;
    let b = h.login().await;
    let reply = h
        .post(
            &format!("/guests/{guest}/rotate-key"),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("New enrollment key") && reply.body.contains("<svg class=\"qr\""));
    assert_eq!(h.backend.guests()[0].key_version, 2);
    Ok(())
}

#[tokio::test]
async fn revoking_a_grant_takes_a_post_with_a_valid_token_and_is_audited() -> TestResult {
    let h = Harness::new();
    let guest = h.enroll("Gus").await;
    let grant = h.backend.issue_grant(guest, h.front, 600)?;
    let b = h.login().await;
    let list = h.get("/grants", Some(&b)).await;
    assert!(
        list.body
            .contains(&format!("action=\"/grants/{grant}/revoke\""))
    );
    let reply = h
        .post(
            &format!("/grants/{grant}/revoke"),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        "/grants?state=all&notice=grant-revoked"
    );
    assert!(h.backend.grants()[0].revoked_at_ms.is_some());
    let entry = h
        .backend
        .audit_entries()
        .into_iter()
        .find(|e| e.kind == "grant_revoked");
    let entry = entry.ok_or("no audit record of the revocation")?;
    assert_eq!(
        (entry.source, entry.actor.as_deref(), entry.grant_id),
        (AuditSource::Admin, Some(ADMIN), Some(grant))
    );
    // Again: the grant is no longer live.
    let again = h
        .post(
            &format!("/grants/{grant}/revoke"),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("is not live"));
    let unknown = h
        .post(
            &format!("/grants/{}/revoke", "ab".repeat(16)),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn revoking_a_guest_needs_the_confirmation_box() -> TestResult {
    let h = Harness::new();
    let guest = h.enroll("Hal").await;
    h.backend.issue_grant(guest, h.front, 600)?;
    let b = h.login().await;
    let path = format!("/guests/{guest}/revoke");
    let unconfirmed = h
        .post(&path, &b.cookie, &form_body(&[("csrf", &b.csrf)]))
        .await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(unconfirmed.body.contains("tick the box to confirm"));
    assert!(h.backend.guests()[0].revoked_at_ms.is_none());
    let reply = h
        .post(
            &path,
            &b.cookie,
            &form_body(&[("csrf", &b.csrf), ("confirm", "yes")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(h.backend.guests()[0].revoked_at_ms.is_some());
    assert!(
        h.backend.grants()[0].revoked_at_ms.is_some(),
        "its grants go with it"
    );
    let page = h
        .get(&format!("/guests/{guest}?notice=guest-revoked"), Some(&b))
        .await;
    assert!(page.body.contains("Guest revoked"));
    assert!(
        !page.body.contains("Rotate enrollment key"),
        "no actions on a revoked guest"
    );
    Ok(())
}

#[tokio::test]
async fn access_is_set_and_removed_per_lock() -> TestResult {
    let h = Harness::new();
    let guest = h.enroll("Ida").await;
    let b = h.login().await;
    let back = h.back.to_string();
    let path = format!("/guests/{guest}/access");
    let bad = h
        .post(
            &path,
            &b.cookie,
            &form_body(&[("csrf", &b.csrf), ("lock", &back), ("max_unlocks", "many")]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("max unlocks must be a whole number"));
    assert_eq!(h.backend.guests()[0].access.len(), 1);
    let ok = h
        .post(
            &path,
            &b.cookie,
            &form_body(&[
                ("csrf", &b.csrf),
                ("lock", &back),
                ("role", "resident"),
                ("max_unlocks", "3"),
            ]),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let access = &h.backend.guests()[0].access;
    assert_eq!(access.len(), 2);
    assert_eq!(
        (access[1].spec.role, access[1].spec.max_unlocks),
        (Role::Resident, Some(3))
    );
    let removed = h
        .post(
            &format!("{path}/remove"),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf), ("lock", &back)]),
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(h.backend.guests()[0].access.len(), 1);
    Ok(())
}

#[tokio::test]
async fn acknowledging_an_alert_records_who_did_it() -> TestResult {
    let h = Harness::new();
    let id = h.backend.add_alert(
        "failure_burst",
        "medium",
        0.7,
        Some(h.front),
        None,
        "6 failures in 60 s",
    );
    let b = h.login().await;
    let open = h.get("/alerts", Some(&b)).await;
    assert!(open.body.contains("6 failures in 60 s") && open.body.contains("Acknowledge"));
    let reply = h
        .post(
            &format!("/alerts/{id}/acknowledge"),
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let alert = &h.backend.alerts()[0];
    assert_eq!(alert.acknowledged_by.as_deref(), Some(ADMIN));
    assert!(
        h.get("/alerts", Some(&b)).await.body.contains("No alert."),
        "no longer open"
    );
    assert!(
        h.get("/alerts?show=all", Some(&b))
            .await
            .body
            .contains("acknowledged by alice")
    );
    let bad = h
        .post(
            "/alerts/..%2F..%2Fx/acknowledge",
            &b.cookie,
            &form_body(&[("csrf", &b.csrf)]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    Ok(())
}
