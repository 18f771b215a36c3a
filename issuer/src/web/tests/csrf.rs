//! CSRF token, Origin / Sec-Fetch-Site, Host, method and body checks on state changes.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::{HOST, Harness, ORIGIN, TestResult, form_body};

/// A live grant to try revoking.
async fn setup() -> (Harness, super::Browser, latchkey::GrantId) {
    let h = Harness::new();
    let guest = h.enroll("Bob").await;
    let grant = match h.backend.issue_grant(guest, h.front, 600) {
        Ok(g) => g,
        Err(e) => panic!("grant: {e}"),
    };
    let b = h.login().await;
    (h, b, grant)
}

fn revoked(h: &Harness) -> bool {
    h.backend.grants().iter().any(|g| g.revoked_at_ms.is_some())
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() -> TestResult {
    let (h, b, grant) = setup().await;
    let reply = h
        .post(&format!("/grants/{grant}/revoke"), &b.cookie, "")
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("security token"), "{}", reply.body);
    assert!(!revoked(&h));
    Ok(())
}

#[tokio::test]
async fn a_post_with_a_wrong_csrf_token_is_refused() -> TestResult {
    let (h, b, grant) = setup().await;
    let mut wrong = b.csrf.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let body = form_body(&[("csrf", &String::from_utf8(wrong)?)]);
    assert_eq!(
        h.post(&format!("/grants/{grant}/revoke"), &b.cookie, &body)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let short = form_body(&[("csrf", &b.csrf[..32])]);
    assert_eq!(
        h.post(&format!("/grants/{grant}/revoke"), &b.cookie, &short)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(!revoked(&h));
    Ok(())
}

#[tokio::test]
async fn another_sessions_token_does_not_pass() -> TestResult {
    let (h, b, grant) = setup().await;
    let other = h.login().await;
    let body = form_body(&[("csrf", &other.csrf)]);
    assert_eq!(
        h.post(&format!("/grants/{grant}/revoke"), &b.cookie, &body)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(!revoked(&h));
    Ok(())
}

#[tokio::test]
async fn a_cross_origin_post_is_refused_even_with_a_valid_token() -> TestResult {
    let (h, b, grant) = setup().await;
    let body = form_body(&[("csrf", &b.csrf)]);
    let path = format!("/grants/{grant}/revoke");
    let attempts: [&[(&str, &str)]; 4] = [
        &[("origin", "http://evil.example")],
        &[("origin", ORIGIN), ("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[],
    ];
    for extra in attempts {
        let reply = h.post_with(&path, &b.cookie, &body, extra).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{extra:?}");
        assert!(reply.body.contains("cross-site"), "{extra:?}");
    }
    assert!(!revoked(&h));
    // The same request from the page itself goes through.
    assert_eq!(
        h.post(&path, &b.cookie, &body).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(revoked(&h));
    Ok(())
}

#[tokio::test]
async fn get_never_changes_state() -> TestResult {
    let (h, b, grant) = setup().await;
    let reply = h
        .get(&format!("/grants/{grant}/revoke?csrf={}", b.csrf), Some(&b))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!revoked(&h));
    Ok(())
}

#[tokio::test]
async fn a_request_naming_another_host_is_refused() -> TestResult {
    let h = Harness::new();
    for host in ["evil.example", "evil.example:8080", "127.0.0.1:9999"] {
        let request = Request::get("/login")
            .header(header::HOST, host)
            .body(Body::empty())?;
        let reply = h.send(request).await;
        assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert_eq!(reply.cookie("lk_login"), None);
    }
    for host in [HOST, "localhost:8080", "[::1]:8080"] {
        let request = Request::get("/login")
            .header(header::HOST, host)
            .body(Body::empty())?;
        assert_eq!(h.send(request).await.status, StatusCode::OK, "{host}");
    }
    Ok(())
}

#[tokio::test]
async fn an_oversized_or_mistyped_body_is_refused_cleanly() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let huge = format!("csrf={}&name={}", b.csrf, "x".repeat(20_000));
    let reply = h.post("/guests", &b.cookie, &huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.body.contains("larger than"));
    let request = Request::post("/guests")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::COOKIE, &b.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{{\"csrf\":\"{}\"}}", b.csrf)))?;
    assert_eq!(
        h.send(request).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert!(h.backend.guests().is_empty());
    Ok(())
}
