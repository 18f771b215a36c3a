//! Router-level tests: requests through `tower::ServiceExt::oneshot` against the router and
//! the in-memory backend, with a manual clock.

mod actions;
mod auth;
mod csrf;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use latchkey::{GuestId, LockId};
use tower::ServiceExt;

use super::testing::{FakeBackend, ManualClock};
use super::{AdminWeb, WebConfig};

pub(super) const HOST: &str = "127.0.0.1:8080";
pub(super) const ORIGIN: &str = "http://127.0.0.1:8080";
pub(super) const ADMIN: &str = "alice";
pub(super) const PASSWORD: &str = "correct horse battery staple";
/// 2025-03-01 14:05:09 UTC.
pub(super) const T0: u64 = 1_740_837_909_000;

pub(super) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A response, its body read.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value a `Set-Cookie` header gives cookie `name` (`None`: not set by this reply).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    }

    /// The value of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        between(&self.body, &format!("name=\"{name}\" value=\""), "\"")
    }
}

pub(super) fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_owned())
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub(super) struct Browser {
    pub cookie: String,
    pub csrf: String,
}

pub(super) struct Harness {
    pub router: Router,
    pub backend: Arc<FakeBackend>,
    pub clock: Arc<ManualClock>,
    pub front: LockId,
    pub back: LockId,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(WebConfig {
            page_size: 10,
            ..WebConfig::default()
        })
    }

    pub fn with_config(config: WebConfig) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let backend = Arc::new(FakeBackend::new(clock.clone()));
        let front = backend.add_lock("Front door", "Europe/Paris");
        let back = backend.add_lock("Back door", "UTC");
        if let Err(e) = backend.add_admin(ADMIN, PASSWORD) {
            panic!("cannot hash the test password: {e}");
        }
        let web = match AdminWeb::new(backend.clone(), config) {
            Ok(web) => web.with_clock(clock.clone()),
            Err(e) => panic!("test configuration refused: {e}"),
        };
        Self {
            router: web.router(),
            backend,
            clock,
            front,
            back,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("body: {e}"),
        };
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, browser: Option<&Browser>) -> Reply {
        let mut request = Request::get(path).header(header::HOST, HOST);
        if let Some(b) = browser {
            request = request.header(header::COOKIE, &b.cookie);
        }
        self.send(request.body(Body::empty()).unwrap_or_default())
            .await
    }

    /// A same-origin form POST, as a browser sends it from these pages.
    pub async fn post(&self, path: &str, cookie: &str, body: &str) -> Reply {
        self.post_with(
            path,
            cookie,
            body,
            &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
        )
        .await
    }

    pub async fn post_with(
        &self,
        path: &str,
        cookie: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie);
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        self.send(
            request
                .body(Body::from(body.to_owned()))
                .unwrap_or_default(),
        )
        .await
    }

    /// Submits the login form (fetching it first, for its token) with `user` / `password`.
    pub async fn try_login(&self, user: &str, password: &str) -> Reply {
        let form = self.get("/login", None).await;
        let cookie = format!("lk_login={}", form.cookie("lk_login").unwrap_or_default());
        let token = form.hidden("login_token").unwrap_or_default();
        let body = form_body(&[
            ("login_token", &token),
            ("user", user),
            ("password", password),
        ]);
        self.post("/login", &cookie, &body).await
    }

    /// Logs in as the test admin.
    pub async fn login(&self) -> Browser {
        let reply = self.try_login(ADMIN, PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "login failed: {}",
            reply.body
        );
        let cookie = format!(
            "lk_session={}",
            reply.cookie("lk_session").unwrap_or_default()
        );
        let mut browser = Browser {
            cookie,
            csrf: String::new(),
        };
        let home = self.get("/", Some(&browser)).await;
        browser.csrf = home.hidden("csrf").unwrap_or_default();
        assert_eq!(browser.csrf.len(), 64, "no CSRF token on the dashboard");
        browser
    }

    /// Enrolls a guest at the front door through the backend (not the web).
    pub async fn enroll(&self, name: &str) -> GuestId {
        use super::AdminBackend;
        let request = super::EnrollGuest {
            name: name.to_owned(),
            locks: vec![self.front],
            access: super::AccessSpec {
                role: super::Role::Resident,
                valid_from_s: None,
                valid_until_s: None,
                schedule: None,
                max_unlocks: None,
            },
        };
        match self.backend.enroll_guest("setup", &request).await {
            Ok(e) => e.guest_id,
            Err(e) => panic!("setup enrollment: {e}"),
        }
    }
}

/// `a=1&b=2`, urlencoded.
pub(super) fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}
