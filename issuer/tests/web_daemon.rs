//! The admin web served by the daemon, over plain HTTP on a real socket: an operator added
//! with `latchkey-issuer admin-user add` logs in (the web counts a failed login in the
//! columns `admin-user list` shows), reads the registry, and revokes a grant, whose
//! Revocation reaches the lock as one from the control socket would. A taken port is a
//! startup error.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::body::Bytes;
use axum::http::Request;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use latchkey::frame::RevocationView;
use latchkey_issuer::store::{AuditFilter, kinds};
use latchkey_issuer::{IssuerEvent, IssuerdError, WebOptions};

const OPERATOR: &str = "alice";
const PASSWORD: &str = "a long operator passphrase";

struct Reply {
    status: u16,
    cookies: Vec<String>,
    body: String,
}

impl Reply {
    /// The value of cookie `name` set by this reply.
    fn cookie(&self, name: &str) -> String {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of the hidden form field `name`.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        self.body
            .split(&marker)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned()
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<String>,
) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("cookie", cookie);
    if form.is_some() {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", format!("http://{addr}"))
            .header("sec-fetch-site", "same-origin");
    }
    let body = Full::new(Bytes::from(form.unwrap_or_default()));
    let resp = client.request(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        cookies,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn try_login(addr: SocketAddr, password: &str) -> Reply {
    let page = http(addr, "GET", "/login", "", None).await;
    assert_eq!(page.status, 200);
    let cookie = format!("lk_login={}", page.cookie("lk_login"));
    let body = form(&[
        ("login_token", &page.hidden("login_token")),
        ("user", OPERATOR),
        ("password", password),
    ]);
    http(addr, "POST", "/login", &cookie, Some(body)).await
}

fn cli(state: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn web_on(addr: SocketAddr) -> impl FnOnce(&mut latchkey_issuer::IssuerOptions) {
    move |o| {
        let mut web = WebOptions::new("mqtt://127.0.0.1:1883");
        web.config.listen = addr;
        o.web = Some(web);
    }
}

#[tokio::test]
async fn an_operator_added_by_the_cli_logs_in_and_revokes_a_grant_through_the_daemon() {
    let p = Provisioned::new();
    let pw = p.dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    cli(
        &p.state(),
        &[
            "admin-user",
            "add",
            OPERATOR,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );

    let mut r = Running::start_with(&p, web_on("127.0.0.1:0".parse().unwrap())).await;
    let addr = r.issuer.web_addr().expect("the web is served");
    assert_ne!(addr.port(), 0, "the bound port is reported");

    // A wrong password: refused, and counted where `admin-user list` reads it.
    assert_eq!(try_login(addr, "not the password").await.status, 401);
    let users: serde_json::Value =
        serde_json::from_str(&cli(&p.state(), &["admin-user", "list", "--json"])).unwrap();
    assert_eq!(users[0]["failed_logins"], 1);
    assert!(users[0]["first_failure_ms"].as_u64().is_some());

    let ok = try_login(addr, PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let session = format!("lk_session={}", ok.cookie("lk_session"));
    let users: serde_json::Value =
        serde_json::from_str(&cli(&p.state(), &["admin-user", "list", "--json"])).unwrap();
    assert_eq!(users[0]["failed_logins"], 0, "a success clears the count");
    assert!(users[0]["last_login_ms"].as_u64().is_some());

    // The registry as the pages show it.
    let locks = http(addr, "GET", "/locks", &session, None).await;
    assert!(
        locks.body.contains(&p.lock_id.to_string()),
        "{}",
        locks.body
    );
    let guest = http(
        addr,
        "GET",
        &format!("/guests/{}", p.guest_id),
        &session,
        None,
    )
    .await;
    assert_eq!(guest.status, 200);
    assert!(
        guest.body.contains("resident"),
        "the default role: {}",
        guest.body
    );

    // A grant, revoked in the web: published to the lock as by the control socket.
    let (grant_id, _) = grant(&mut r.lock, &mut r.guest).await;
    let grants = http(addr, "GET", "/grants", &session, None).await;
    assert!(grants.body.contains(&format!("/grants/{grant_id}/revoke")));
    let csrf = grants.hidden("csrf");
    let revoke_path = format!("/grants/{grant_id}/revoke");
    let revoke = || {
        http(
            addr,
            "POST",
            &revoke_path,
            &session,
            Some(form(&[("csrf", &csrf)])),
        )
    };
    let revoked = revoke().await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    expect_event(&mut r.events, "the revocation", |e| {
        matches!(e, IssuerEvent::GrantRevoked { grant_id: g, .. } if *g == grant_id).then_some(())
    })
    .await;
    let rev = r
        .lock
        .peer
        .next(10_000)
        .await
        .expect("the Revocation at the lock");
    assert_eq!(
        RevocationView::parse(&rev.payload).unwrap().fields.grant_id,
        grant_id
    );
    let again = revoke().await;
    assert_eq!(again.status, 409, "no longer live");
    r.issuer.shutdown().await;

    let revocations = store(&p.state())
        .audit(
            &AuditFilter {
                grant_id: Some(grant_id),
                kind: Some(kinds::GRANT_REVOKED.into()),
                ..Default::default()
            },
            10,
            0,
        )
        .unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].entry.actor.as_deref(), Some("web:alice"));
}

#[tokio::test]
async fn a_taken_web_port_is_a_startup_error() {
    let p = Provisioned::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut o = options(&p.state());
    web_on(addr)(&mut o);
    let e = latchkey_issuer::Issuerd::start(o).await.unwrap_err();
    assert!(matches!(e, IssuerdError::Web(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("admin web"),
        "{text}"
    );
    // Nothing was left holding the state directory: the issuer starts without the web.
    let issuer = start_issuer(&p.state()).await;
    assert!(issuer.web_addr().is_none());
    issuer.shutdown().await;
}
