//! What the admin pages show and what their forms submit: plain data passed across
//! [`AdminBackend`](super::AdminBackend). Times are Unix milliseconds (`_ms`) or seconds
//! (`_s`), UTC; identifiers are the protocol's.

use std::fmt;

use latchkey::{GrantId, GuestId, LockId};
use zeroize::Zeroizing;

use super::backend::BackendError;
use crate::policy::{AccessRule, AccessRuleSpec, RuleError, WeeklySchedule};

/// A slice of a long list: `limit` items from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Items skipped.
    pub offset: u64,
    /// Most items returned.
    pub limit: u32,
}

/// One page of a list, and how many items the whole (filtered) list has.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page, in the list's order.
    pub items: Vec<T>,
    /// Items in the whole filtered list.
    pub total: u64,
}

/// Figures of the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overview {
    /// Registered locks.
    pub locks: u64,
    /// Enrolled guests, revoked or not.
    pub guests: u64,
    /// Guests not revoked.
    pub active_guests: u64,
    /// Grants neither expired nor revoked.
    pub live_grants: u64,
    /// Alerts not acknowledged.
    pub open_alerts: u64,
}

/// Unlocks and rejections recorded in one interval `[start_ms, start_ms + bucket)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityBucket {
    /// Start of the interval.
    pub start_ms: u64,
    /// Unlock events (lock event kind 1).
    pub unlocks: u64,
    /// Refusals: lock rejections (kind 2) and refused grant requests.
    pub rejections: u64,
}

/// The last LockStatus a lock sent (spec §6.7), as the locks page shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStatusView {
    /// Seconds since the lock started.
    pub uptime_s: u32,
    /// Battery charge; `None`: no battery or unknown.
    pub battery_pct: Option<u8>,
    /// Runs on mains power.
    pub mains_power: bool,
    /// The lock's clock is not synchronised.
    pub clock_unsynchronised: bool,
    /// The tamper switch is set.
    pub tamper: bool,
    /// Installed sessions.
    pub sessions: u32,
    /// Remembered revocations.
    pub revocations: u32,
    /// Guests locked out right now.
    pub lockouts: u16,
}

/// A registered lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView {
    /// The lock.
    pub lock_id: LockId,
    /// Its display name.
    pub name: String,
    /// Its IANA time zone (schedules are in its local time).
    pub timezone: String,
    /// When the issuer last heard from it (event or status).
    pub last_seen_ms: Option<u64>,
    /// Its last status message, if any.
    pub status: Option<LockStatusView>,
}

pub use crate::policy::Role;

/// The rule of one guest at one lock, as the forms submit it. [`AccessSpec::to_rule`] checks
/// it the policy's way (the schedule with [`WeeklySchedule::parse`], the rule with
/// [`AccessRule::new`]); the web layer calls it on every submitted form and a backend calls it
/// before it writes, so an invalid rule is shown next to its field and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    /// The guest's role at the lock.
    pub role: Role,
    /// Access starts (Unix s, UTC); `None`: now.
    pub valid_from_s: Option<u64>,
    /// Access ends (Unix s, UTC); `None`: never.
    pub valid_until_s: Option<u64>,
    /// Weekly schedule in the lock's local time, e.g. `Mon-Fri 08:00-18:00; Sat 09:00-12:00`;
    /// `None`: any time.
    pub schedule: Option<String>,
    /// Most unlocks over the rule's life; `None`: no limit.
    pub max_unlocks: Option<u32>,
}

impl AccessSpec {
    /// The policy's rule of this form, or why not, naming the form field at fault.
    pub fn to_rule(&self) -> Result<AccessRule, BackendError> {
        let schedule = self
            .schedule
            .as_deref()
            .map(WeeklySchedule::parse)
            .transpose()
            .map_err(|e| BackendError::Invalid {
                field: "schedule",
                message: e.to_string(),
            })?;
        AccessRule::new(AccessRuleSpec {
            role: self.role,
            valid_from: self.valid_from_s,
            valid_until: self.valid_until_s,
            schedule,
            max_unlocks: self.max_unlocks,
        })
        .map_err(|e| {
            let field = match e {
                RuleError::GuestWithoutEnd | RuleError::EmptyWindow { .. } => "valid_until",
                RuleError::AdminWithSchedule => "schedule",
                RuleError::AdminWithUnlockLimit | RuleError::ZeroUnlockLimit => "max_unlocks",
            };
            BackendError::Invalid {
                field,
                message: e.to_string(),
            }
        })
    }

    /// The form of a stored rule (the schedule as its canonical text).
    pub fn from_rule(rule: &AccessRule) -> Self {
        Self {
            role: rule.role(),
            valid_from_s: rule.valid_from(),
            valid_until_s: rule.valid_until(),
            schedule: rule.schedule().map(ToString::to_string),
            max_unlocks: rule.max_unlocks(),
        }
    }
}

/// A guest's access at one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessView {
    /// The lock.
    pub lock_id: LockId,
    /// Its display name.
    pub lock_name: String,
    /// The rule.
    pub spec: AccessSpec,
}

/// An enrolled guest (without its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestView {
    /// The guest.
    pub guest_id: GuestId,
    /// Its display name.
    pub name: String,
    /// Version of its enrollment key (1, then +1 per rotation).
    pub key_version: u32,
    /// When it was enrolled.
    pub created_at_ms: u64,
    /// When its enrollment was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
    /// When it was last granted access.
    pub last_used_ms: Option<u64>,
    /// Its access, one entry per lock.
    pub access: Vec<AccessView>,
}

/// Filter of the guests list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestQuery {
    /// Only guests whose name contains this text (case-insensitive).
    pub name_contains: Option<String>,
}

/// Which grants a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GrantState {
    /// Neither expired nor revoked at `now_ms`.
    #[default]
    Live,
    /// Expired or revoked.
    Past,
    /// All of them.
    All,
}

impl GrantState {
    /// Every state, in the order the filter lists them.
    pub const ALL: [GrantState; 3] = [GrantState::Live, GrantState::Past, GrantState::All];

    /// The name used in query strings.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantState::Live => "live",
            GrantState::Past => "past",
            GrantState::All => "all",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<GrantState> {
        GrantState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Filter of the grants list (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantQuery {
    /// Live, past or all, judged at `now_ms`.
    pub state: GrantState,
    /// The time "live" is judged at.
    pub now_ms: u64,
    /// Only grants of this lock.
    pub lock_id: Option<LockId>,
    /// Only grants of this guest.
    pub guest_id: Option<GuestId>,
}

/// An issued grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// The grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// The lock's display name.
    pub lock_name: String,
    /// Its guest.
    pub guest_id: GuestId,
    /// The guest's display name.
    pub guest_name: String,
    /// When it was issued (Unix s).
    pub issued_at_s: u64,
    /// Start of validity (Unix s).
    pub not_before_s: u64,
    /// End of validity (Unix s).
    pub not_after_s: u64,
    /// Its unlock limit; 0 = none.
    pub max_unlocks: u16,
    /// Unlocks the lock reported for it.
    pub unlocks: u32,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

impl GrantView {
    /// Neither revoked nor expired at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.revoked_at_ms.is_none() && self.not_after_s.saturating_mul(1000) > now_ms
    }
}

/// Who wrote an audit record: the registry's own type.
pub use crate::store::AuditSource;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its row id (increasing).
    pub id: u64,
    /// When the issuer recorded it.
    pub at_ms: u64,
    /// Who wrote it.
    pub source: AuditSource,
    /// What happened, snake_case (`unlock`, `rejection`, `grant_issued`, `grant_revoked`, …).
    pub kind: String,
    /// The reason's name (spec §8.13), for refusals.
    pub reason: Option<String>,
    /// The operator who acted, for admin records.
    pub actor: Option<String>,
    /// The lock concerned.
    pub lock_id: Option<LockId>,
    /// The guest concerned.
    pub guest_id: Option<GuestId>,
    /// The grant concerned.
    pub grant_id: Option<GrantId>,
    /// Anything else, as text (shown as is, escaped).
    pub detail: String,
}

/// Filter of the audit log (newest first). Every field narrows the list; `None` is "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records about this lock.
    pub lock_id: Option<LockId>,
    /// Only records about this guest.
    pub guest_id: Option<GuestId>,
    /// Only records about this grant.
    pub grant_id: Option<GrantId>,
    /// Only records from this source.
    pub source: Option<AuditSource>,
    /// Only records of this kind (exact).
    pub kind: Option<String>,
    /// Only records with this reason name (exact).
    pub reason: Option<String>,
    /// Only records at or after this time.
    pub from_ms: Option<u64>,
    /// Only records before this time.
    pub until_ms: Option<u64>,
}

/// An anomaly alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// The alert.
    pub alert_id: String,
    /// When it was raised.
    pub at_ms: u64,
    /// What the detector saw (`unusual_hour`, `failure_burst`, …).
    pub kind: String,
    /// `low`, `medium`, `high` or `critical` (others are shown as they are).
    pub severity: String,
    /// The detector's score.
    pub score: f64,
    /// The lock concerned.
    pub lock_id: Option<LockId>,
    /// The guest concerned.
    pub guest_id: Option<GuestId>,
    /// The detector's explanation, as text.
    pub detail: String,
    /// When an operator acknowledged it.
    pub acknowledged_at_ms: Option<u64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
}

/// Filter of the alerts list (newest first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Also list acknowledged alerts.
    pub include_acknowledged: bool,
}

/// A guest to enroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollGuest {
    /// Its display name.
    pub name: String,
    /// The locks it may open (at least one), all with the same rule.
    pub locks: Vec<LockId>,
    /// The rule at each of them.
    pub access: AccessSpec,
}

/// A guest's new enrollment bundle: shown once (QR code and text), never stored by the web
/// layer, zeroized when dropped.
pub struct Enrollment {
    /// The guest.
    pub guest_id: GuestId,
    /// The compact JSON bundle (the QR code's text): holds the guest's enrollment key.
    pub bundle: Zeroizing<String>,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("guest_id", &self.guest_id)
            .field("bundle", &"<secret>")
            .finish()
    }
}

/// What revoking a guest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevokedGuest {
    /// Its live grants revoked with it.
    pub grants_revoked: u32,
}

/// Failed-login accounting of one admin user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    /// Failures in the current window.
    pub failed_logins: u32,
    /// When the current window's first failure happened.
    pub first_failure_ms: u64,
    /// Logins are refused until then.
    pub locked_until_ms: Option<u64>,
}

/// An operator account.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// Login name.
    pub name: String,
    /// argon2id PHC string (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    /// Failed-login accounting.
    pub login: LoginState,
}

impl fmt::Debug for AdminUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUser")
            .field("name", &self.name)
            .field("password_hash", &"<hash>")
            .field("login", &self.login)
            .finish()
    }
}

/// A logged-in session as stored: the cookie's token only as its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie's token (the token itself is never stored).
    pub token_sha256: [u8; 32],
    /// The admin user.
    pub user: String,
    /// The session's CSRF token (hex), sent in every form.
    pub csrf_token: Zeroizing<String>,
    /// Login time.
    pub created_at_ms: u64,
    /// Last request (updated at most once a minute).
    pub last_seen_ms: u64,
    /// Absolute end of the session.
    pub expires_at_ms: u64,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user", &self.user)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Sign-in events, for the audit trail (source `admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminEventKind {
    /// A user logged in.
    LoginSucceeded,
    /// A login failed (unknown user, wrong password, or account locked).
    LoginFailed,
    /// Too many failures: the account is locked until `locked_until_ms`.
    LoginLockedOut {
        /// End of the lockout.
        locked_until_ms: u64,
    },
    /// A user logged out.
    LoggedOut,
}

impl AdminEventKind {
    /// The audit kind (`admin_login`, `admin_login_failed`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            AdminEventKind::LoginSucceeded => "admin_login",
            AdminEventKind::LoginFailed => "admin_login_failed",
            AdminEventKind::LoginLockedOut { .. } => "admin_locked_out",
            AdminEventKind::LoggedOut => "admin_logout",
        }
    }
}

/// A sign-in event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    /// When.
    pub at_ms: u64,
    /// The user name as submitted (may name no account; at most 64 characters).
    pub user: String,
    /// What happened.
    pub kind: AdminEventKind,
}
