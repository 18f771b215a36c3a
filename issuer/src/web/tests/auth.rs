//! Login, lockout, sessions.

use std::time::Duration;

use axum::http::StatusCode;

use super::{ADMIN, Browser, Harness, PASSWORD, TestResult, form_body};
use crate::web::AdminEventKind;
use crate::web::pages::login::LOGIN_FAILED;
use crate::web::session::token_hash;

#[tokio::test]
async fn login_with_the_right_password_starts_a_session_stored_only_as_its_hash() -> TestResult {
    let h = Harness::new();
    let reply = h.try_login(ADMIN, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), "/");
    let set = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lk_session="))
        .unwrap_or("")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP on localhost: no Secure flag"
    );
    let token = reply.cookie("lk_session").unwrap_or_default();
    assert_eq!(token.len(), 64, "256 bits as hex");
    let sessions = h.backend.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].token_sha256,
        token_hash(&token),
        "stored as SHA-256 of the token"
    );
    assert_eq!(sessions[0].user, ADMIN);
    assert!(!format!("{:?}", sessions[0]).contains(&token));
    assert_eq!(
        reply.cookie("lk_login").as_deref(),
        Some(""),
        "the login cookie is deleted"
    );
    let events = h.backend.admin_events();
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(AdminEventKind::LoginSucceeded)
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_generic_answer() -> TestResult {
    let h = Harness::new();
    let wrong = h.try_login(ADMIN, "not it").await;
    let unknown = h.try_login("mallory", PASSWORD).await;
    for reply in [&wrong, &unknown] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains(LOGIN_FAILED), "{}", reply.body);
        assert_eq!(reply.cookie("lk_session"), None);
    }
    assert!(h.backend.sessions().is_empty());
    assert_eq!(
        h.backend.login_state(ADMIN).map(|s| s.failed_logins),
        Some(1)
    );
    let kinds: Vec<_> = h.backend.admin_events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [AdminEventKind::LoginFailed, AdminEventKind::LoginFailed]
    );
    Ok(())
}

#[tokio::test]
async fn after_max_failures_the_account_is_locked_then_unlocks_by_itself() -> TestResult {
    let h = Harness::new();
    for _ in 0..5 {
        assert_eq!(
            h.try_login(ADMIN, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = h.backend.login_state(ADMIN).and_then(|s| s.locked_until_ms);
    assert_eq!(locked, Some(super::T0 + 15 * 60_000));
    assert!(matches!(
        h.backend.admin_events().last().map(|e| e.kind),
        Some(AdminEventKind::LoginLockedOut { .. })
    ));
    // Locked: even the right password gets the generic answer, and no session.
    let refused = h.try_login(ADMIN, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains(LOGIN_FAILED));
    assert!(h.backend.sessions().is_empty());
    h.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        h.try_login(ADMIN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        h.backend.login_state(ADMIN).unwrap_or_default(),
        crate::web::LoginState::default(),
        "a success clears the count"
    );
    Ok(())
}

#[tokio::test]
async fn a_login_form_without_its_login_token_is_refused() -> TestResult {
    let h = Harness::new();
    let body = form_body(&[
        ("user", ADMIN),
        ("password", PASSWORD),
        ("login_token", &"a".repeat(64)),
    ]);
    let reply = h
        .post("/login", &format!("lk_login={}", "b".repeat(64)), &body)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let no_cookie = h.post("/login", "", &body).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(h.backend.sessions().is_empty());
    assert_eq!(
        h.backend.login_state(ADMIN).map(|s| s.failed_logins),
        Some(0),
        "not counted as a failure"
    );
    Ok(())
}

#[tokio::test]
async fn pages_without_a_session_send_the_browser_to_login() -> TestResult {
    let h = Harness::new();
    for path in [
        "/",
        "/locks",
        "/guests",
        "/guests/new",
        "/grants",
        "/audit",
        "/alerts",
    ] {
        let reply = h.get(path, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.header("location"), "/login", "{path}");
    }
    let forged = Browser {
        cookie: format!("lk_session={}", "0".repeat(64)),
        csrf: String::new(),
    };
    assert_eq!(h.get("/", Some(&forged)).await.header("location"), "/login");
    Ok(())
}

#[tokio::test]
async fn a_session_ends_after_the_idle_timeout() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    h.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        h.get("/", Some(&b)).await.status,
        StatusCode::OK,
        "used within the idle timeout"
    );
    h.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        h.get("/", Some(&b)).await.status,
        StatusCode::OK,
        "the last request renewed it"
    );
    h.clock.advance(Duration::from_secs(30 * 60));
    let expired = h.get("/", Some(&b)).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.header("location"), "/login?notice=session-expired");
    assert!(
        h.backend.sessions().is_empty(),
        "the expired session is deleted"
    );
    Ok(())
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_when_in_use() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    for _ in 0..(12 * 60 / 20 - 1) {
        h.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(h.get("/locks", Some(&b)).await.status, StatusCode::OK);
    }
    h.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(
        h.get("/locks", Some(&b)).await.status,
        StatusCode::SEE_OTHER,
        "12 h after login"
    );
    Ok(())
}

#[tokio::test]
async fn a_login_replaces_the_session_the_browser_held() -> TestResult {
    let h = Harness::new();
    let first = h.login().await;
    let form = h.get("/login", None).await;
    let cookie = format!(
        "{}; lk_login={}",
        first.cookie,
        form.cookie("lk_login").unwrap_or_default()
    );
    let body = form_body(&[
        (
            "login_token",
            &form.hidden("login_token").unwrap_or_default(),
        ),
        ("user", ADMIN),
        ("password", PASSWORD),
    ]);
    let reply = h.post("/login", &cookie, &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let second = reply.cookie("lk_session").unwrap_or_default();
    assert_ne!(format!("lk_session={second}"), first.cookie, "a new token");
    assert_eq!(h.backend.sessions().len(), 1, "the old session is gone");
    assert_eq!(h.get("/", Some(&first)).await.status, StatusCode::SEE_OTHER);
    Ok(())
}

#[tokio::test]
async fn logout_deletes_the_session_and_the_cookie() -> TestResult {
    let h = Harness::new();
    let b = h.login().await;
    let reply = h
        .post("/logout", &b.cookie, &form_body(&[("csrf", &b.csrf)]))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), "/login?notice=logged-out");
    assert_eq!(reply.cookie("lk_session").as_deref(), Some(""));
    assert!(h.backend.sessions().is_empty());
    assert_eq!(h.get("/", Some(&b)).await.status, StatusCode::SEE_OTHER);
    let login = h.get("/login?notice=logged-out", None).await;
    assert!(login.body.contains("You are logged out."));
    Ok(())
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_secure_with_the_host_prefix() -> TestResult {
    let h = Harness::with_config(crate::web::WebConfig {
        served_over_https: true,
        ..crate::web::WebConfig::default()
    });
    let form = h.get("/login", None).await;
    let token = form.cookie("__Host-lk_login").unwrap_or_default();
    let body = form_body(&[
        (
            "login_token",
            &form.hidden("login_token").unwrap_or_default(),
        ),
        ("user", ADMIN),
        ("password", PASSWORD),
    ]);
    let reply = h
        .post_with(
            "/login",
            &format!("__Host-lk_login={token}"),
            &body,
            &[("origin", "https://127.0.0.1:8080")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let set = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-lk_session="))
        .unwrap_or("")
        .to_owned();
    assert!(set.ends_with("; Secure"), "{set}");
    Ok(())
}
