//! The admin web's only way to the issuer: every page reads through [`AdminBackend`] and
//! every action goes through it, with the acting operator's name for the audit trail. The
//! daemon implements it over its registry (and routes revocations through its loop, so
//! they are published); tests use `testing::FakeBackend`.

use std::future::Future;

use latchkey::{GrantId, GuestId, LockId};

use super::model::{
    AccessSpec, ActivityBucket, AdminEvent, AdminUser, AlertQuery, AlertView, AuditEntry,
    AuditFilter, EnrollGuest, Enrollment, GrantQuery, GrantView, GuestQuery, GuestView, LockView,
    LoginState, Overview, Page, Paging, RevokedGuest, SessionRecord,
};

/// Why the backend could not answer. Every message is shown to the operator as it is, so it
/// says what is wrong and, where there is one, the fix; it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The lock, guest, grant or alert does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A submitted value is refused (HTTP 400): the form is shown again with `message` next
    /// to `field` (the form field's name: `name`, `locks`, `role`, `valid_from`,
    /// `valid_until`, `schedule`, `max_unlocks`, `lock`).
    #[error("{field}: {message}")]
    Invalid {
        /// The form field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The action does not apply in the current state, e.g. the grant already expired or the
    /// guest is revoked (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The registry or the daemon cannot be reached right now (HTTP 503; logged).
    #[error("{0}")]
    Unavailable(String),
}

/// Everything the admin pages read and every action they take.
///
/// Methods return `Send` futures so the web server can run them on any tokio worker; an
/// implementation writes `async fn` in its `impl` block. Actions take `actor`, the
/// logged-in operator's name, and must record it in the audit trail. Lists are newest first
/// unless said otherwise.
pub trait AdminBackend: Send + Sync + 'static {
    // ---- dashboard --------------------------------------------------------------------

    /// Counts shown on the dashboard; live grants are judged at `now_ms`.
    fn overview(&self, now_ms: u64) -> impl Future<Output = Result<Overview, BackendError>> + Send;

    /// Unlocks and rejections in `buckets` consecutive intervals of `bucket_ms`, the first
    /// starting at `from_ms`; exactly `buckets` entries, oldest first, empty ones included.
    fn activity(
        &self,
        from_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> impl Future<Output = Result<Vec<ActivityBucket>, BackendError>> + Send;

    // ---- reads ------------------------------------------------------------------------

    /// Every registered lock, by name.
    fn list_locks(&self) -> impl Future<Output = Result<Vec<LockView>, BackendError>> + Send;

    /// Enrolled guests matching `query`, by name.
    fn list_guests(
        &self,
        query: &GuestQuery,
        paging: Paging,
    ) -> impl Future<Output = Result<Page<GuestView>, BackendError>> + Send;

    /// One guest; `Ok(None)` if it is not enrolled.
    fn guest(
        &self,
        guest_id: GuestId,
    ) -> impl Future<Output = Result<Option<GuestView>, BackendError>> + Send;

    /// Grants matching `query`.
    fn list_grants(
        &self,
        query: &GrantQuery,
        paging: Paging,
    ) -> impl Future<Output = Result<Page<GrantView>, BackendError>> + Send;

    /// Audit records matching `filter`.
    fn audit(
        &self,
        filter: &AuditFilter,
        paging: Paging,
    ) -> impl Future<Output = Result<Page<AuditEntry>, BackendError>> + Send;

    /// Anomaly alerts matching `query`.
    fn list_alerts(
        &self,
        query: &AlertQuery,
        paging: Paging,
    ) -> impl Future<Output = Result<Page<AlertView>, BackendError>> + Send;

    // ---- actions (each recorded with `actor`) -----------------------------------------

    /// Enrolls a guest with a fresh enrollment key; returns its bundle (shown once).
    fn enroll_guest(
        &self,
        actor: &str,
        guest: &EnrollGuest,
    ) -> impl Future<Output = Result<Enrollment, BackendError>> + Send;

    /// Sets (`Some`) or removes (`None`) a guest's access at a lock.
    fn set_access(
        &self,
        actor: &str,
        guest_id: GuestId,
        lock_id: LockId,
        access: Option<&AccessSpec>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Revokes a guest's enrollment and every live grant of it (Revocations published).
    fn revoke_guest(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> impl Future<Output = Result<RevokedGuest, BackendError>> + Send;

    /// Revokes one live grant (its Revocation is published).
    fn revoke_grant(
        &self,
        actor: &str,
        grant_id: GrantId,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Gives a guest a new enrollment key (the old one stops working); returns the new
    /// bundle (shown once).
    fn rotate_guest_key(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> impl Future<Output = Result<Enrollment, BackendError>> + Send;

    /// Marks an alert acknowledged by `actor`.
    fn acknowledge_alert(
        &self,
        actor: &str,
        alert_id: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    // ---- operators and sessions -------------------------------------------------------

    /// The operator account `name`; `Ok(None)` if there is none.
    fn admin_user(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<AdminUser>, BackendError>> + Send;

    /// Stores an account's failed-login accounting (after a failure, a lockout or a
    /// success). Logins are serialised by the web layer, so read-modify-write is safe.
    fn set_login_state(
        &self,
        name: &str,
        state: LoginState,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Records a sign-in event in the audit trail (source `admin`).
    fn record_admin_event(
        &self,
        event: &AdminEvent,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stores a new session.
    fn create_session(
        &self,
        session: &SessionRecord,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The session whose token hashes to `token_sha256`; `Ok(None)` if there is none.
    fn session(
        &self,
        token_sha256: [u8; 32],
    ) -> impl Future<Output = Result<Option<SessionRecord>, BackendError>> + Send;

    /// Sets a session's `last_seen_ms`.
    fn touch_session(
        &self,
        token_sha256: [u8; 32],
        last_seen_ms: u64,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Deletes a session (logout, expiry); deleting a missing one is not an error.
    fn delete_session(
        &self,
        token_sha256: [u8; 32],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Deletes every session with `expires_at_ms <= now_ms` or `last_seen_ms <= idle_cutoff_ms`.
    fn delete_expired_sessions(
        &self,
        now_ms: u64,
        idle_cutoff_ms: u64,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
