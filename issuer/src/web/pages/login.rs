//! Login and logout. A failed login, for whatever reason (unknown user, wrong password,
//! locked account), gets the same answer, after the same argon2 work; failures are counted
//! per account and lock it for a while ([`throttle`](crate::web::throttle)). A login always
//! starts a new session (fixation: a token planted before login is never promoted).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use zeroize::Zeroizing;

use crate::password::{MAX_PASSWORD_BYTES, PasswordCheck, verify_password};
use crate::web::app::{AppState, backend_error_page};
use crate::web::backend::AdminBackend;
use crate::web::csrf::{AuthedForm, read_form, tokens_match};
use crate::web::form::Fields;
use crate::web::layout::{self, bare_page, html_response, notice, notice_text};
use crate::web::model::{AdminEvent, AdminEventKind, LoginState, SessionRecord};
use crate::web::session::{
    login_cookie_name, random_token, session_cookie_name, set_cookie, token_cookie, token_hash,
};

/// Longest user name accepted, characters.
const MAX_USER_CHARS: usize = 64;

/// What the login page says after any failed login.
pub const LOGIN_FAILED: &str = "Invalid user or password.";

fn login_form(token: &str, user: &str, message: Option<(&str, bool)>) -> Markup {
    bare_page(
        "Log in",
        html! {
            @if let Some((text, error)) = message {
                (notice(text, error))
            }
            form.login method="post" action="/login" {
                input type="hidden" name="login_token" value=(token);
                label for="user" { "User" }
                input #user type="text" name="user" value=(user) autocomplete="username"
                    maxlength=(MAX_USER_CHARS) required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password"
                    maxlength=(MAX_PASSWORD_BYTES) required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login page with a fresh login token (and its cookie).
fn login_page<B: AdminBackend>(
    app: &AppState<B>,
    status: StatusCode,
    user: &str,
    message: Option<(&str, bool)>,
) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(page) => return page,
    };
    let mut response = html_response(status, login_form(&token, user, message));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app.config, login_cookie_name(&app.config), Some(&token)),
    );
    response
}

/// `GET /login`.
pub(crate) async fn show<B: AdminBackend>(
    State(app): State<AppState<B>>,
    request: Request,
) -> Response {
    let fields = Fields::parse(request.uri().query().unwrap_or("").as_bytes());
    let message = notice_text(fields.get("notice")).map(|t| (t, false));
    login_page(&app, StatusCode::OK, "", message)
}

/// `POST /login`.
pub(crate) async fn submit<B: AdminBackend>(
    State(app): State<AppState<B>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let fields = match read_form(&parts.headers, body, app.config.body_limit_bytes).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let cookie_token = token_cookie(&parts.headers, login_cookie_name(&app.config)).unwrap_or("");
    if !tokens_match(fields.get_raw("login_token").unwrap_or(""), cookie_token) {
        tracing::warn!("admin web: login form without its login token refused");
        return login_page(
            &app,
            StatusCode::FORBIDDEN,
            "",
            Some((
                "The login form expired or was not sent by this site; log in again.",
                true,
            )),
        );
    }
    let typed = fields.get("user").unwrap_or("");
    let overlong = typed.chars().count() > MAX_USER_CHARS;
    let user: String = typed.chars().take(MAX_USER_CHARS).collect();
    let password = Zeroizing::new(fields.get_raw("password").unwrap_or("").to_owned());
    if user.is_empty() || password.is_empty() {
        return login_page(
            &app,
            StatusCode::BAD_REQUEST,
            &user,
            Some(("Enter your user name and password.", true)),
        );
    }
    let _one_at_a_time = app.login_gate.lock().await;
    let now = app.now_ms();
    let account = if overlong {
        None
    } else {
        match app.backend.admin_user(&user).await {
            Ok(a) => a,
            Err(e) => return backend_error_page(&e),
        }
    };
    let locked = account
        .as_ref()
        .is_some_and(|a| app.policy.is_locked(&a.login, now));
    // Locked accounts and unknown users verify the dummy hash: every failure costs the same.
    let stored = match &account {
        Some(a) if !locked => a.password_hash.clone(),
        _ => app.dummy_hash.clone(),
    };
    let check = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || verify_password(&password, &stored)).await
    };
    let check = match check {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "admin web: password check did not finish");
            return layout::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The login could not be checked; try again.",
            );
        }
    };
    let Some(account) = account.filter(|_| !locked) else {
        let why = if locked {
            "account locked"
        } else {
            "unknown user"
        };
        // Debug-formatted: the name is whatever was typed.
        tracing::warn!(user = ?user, why, "admin web: login refused");
        return failed(&app, now, &user, AdminEventKind::LoginFailed).await;
    };
    match check {
        PasswordCheck::Match => {}
        PasswordCheck::Mismatch => {
            let state = app.policy.after_failure(&account.login, now);
            if let Err(e) = app.backend.set_login_state(&account.name, state).await {
                return backend_error_page(&e);
            }
            let kind = match state.locked_until_ms {
                Some(until) => {
                    tracing::warn!(user = %account.name, until_ms = until, "admin web: too many failed logins, account locked");
                    AdminEventKind::LoginLockedOut {
                        locked_until_ms: until,
                    }
                }
                None => {
                    tracing::warn!(user = %account.name, failures = state.failed_logins, "admin web: wrong password");
                    AdminEventKind::LoginFailed
                }
            };
            return failed(&app, now, &account.name, kind).await;
        }
        PasswordCheck::UnusableHash(why) => {
            tracing::error!(
                user = %account.name, why,
                "admin web: the account's password hash is not argon2id; set a new password \
                 with `latchkey-issuer admin-user passwd`"
            );
            return failed(&app, now, &account.name, AdminEventKind::LoginFailed).await;
        }
    }
    if account.login != LoginState::default()
        && let Err(e) = app
            .backend
            .set_login_state(&account.name, LoginState::default())
            .await
    {
        return backend_error_page(&e);
    }
    start_session(&app, &parts.headers, &account.name, now).await
}

/// Records a failed login and shows the generic answer.
async fn failed<B: AdminBackend>(
    app: &AppState<B>,
    now: u64,
    user: &str,
    kind: AdminEventKind,
) -> Response {
    let event = AdminEvent {
        at_ms: now,
        user: user.to_owned(),
        kind,
    };
    if let Err(e) = app.backend.record_admin_event(&event).await {
        return backend_error_page(&e);
    }
    login_page(
        app,
        StatusCode::UNAUTHORIZED,
        user,
        Some((LOGIN_FAILED, true)),
    )
}

/// Creates the session of a successful login and sends the browser to the dashboard.
async fn start_session<B: AdminBackend>(
    app: &AppState<B>,
    headers: &axum::http::HeaderMap,
    user: &str,
    now: u64,
) -> Response {
    let idle_ms = u64::try_from(app.config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let life_ms = u64::try_from(app.config.session_lifetime.as_millis()).unwrap_or(u64::MAX);
    let backend = &app.backend;
    if let Err(e) = backend
        .delete_expired_sessions(now, now.saturating_sub(idle_ms))
        .await
    {
        return backend_error_page(&e);
    }
    // Rotation: whatever session the browser held before is ended.
    if let Some(old) = token_cookie(headers, session_cookie_name(&app.config))
        && let Err(e) = backend.delete_session(token_hash(old)).await
    {
        return backend_error_page(&e);
    }
    let (token, csrf) = match (random_token(), random_token()) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(page), _) | (_, Err(page)) => return page,
    };
    let record = SessionRecord {
        token_sha256: token_hash(&token),
        user: user.to_owned(),
        csrf_token: csrf,
        created_at_ms: now,
        last_seen_ms: now,
        expires_at_ms: now.saturating_add(life_ms),
    };
    if let Err(e) = backend.create_session(&record).await {
        return backend_error_page(&e);
    }
    let event = AdminEvent {
        at_ms: now,
        user: user.to_owned(),
        kind: AdminEventKind::LoginSucceeded,
    };
    if let Err(e) = backend.record_admin_event(&event).await {
        return backend_error_page(&e);
    }
    tracing::info!(user, "admin web: login");
    let mut response = layout::see_other("/");
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&app.config, session_cookie_name(&app.config), Some(&token)),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&app.config, login_cookie_name(&app.config), None),
    );
    response
}

/// `POST /logout`.
pub(crate) async fn logout<B: AdminBackend>(
    State(app): State<AppState<B>>,
    form: AuthedForm,
) -> Response {
    let session = form.session;
    if let Err(e) = app.backend.delete_session(session.token_sha256).await {
        return backend_error_page(&e);
    }
    let event = AdminEvent {
        at_ms: app.now_ms(),
        user: session.user.clone(),
        kind: AdminEventKind::LoggedOut,
    };
    if let Err(e) = app.backend.record_admin_event(&event).await {
        return backend_error_page(&e);
    }
    tracing::info!(user = %session.user, "admin web: logout");
    let mut response = layout::see_other("/login?notice=logged-out");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app.config, session_cookie_name(&app.config), None),
    );
    response
}
