//! Admin web users (argon2id password hashes from [`crate::password`], the admin web's
//! failed-login accounting) and their sessions (stored by the SHA-256 of the cookie token,
//! never the token).

use rusqlite::{OptionalExtension, Row, params};

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{int, uint, uint_opt};
use crate::error::IssuerdError;

/// An admin user (never the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// Login name.
    pub name: String,
    /// Created at, Unix ms.
    pub created_at_ms: u64,
    /// Password last set at, Unix ms.
    pub password_changed_at_ms: u64,
    /// Failed logins in the current window (the admin web's throttling).
    pub failed_logins: u32,
    /// When the current window's first failure happened, Unix ms.
    pub first_failure_ms: Option<u64>,
    /// Logins refused until, Unix ms.
    pub locked_until_ms: Option<u64>,
    /// Last successful login, Unix ms.
    pub last_login_ms: Option<u64>,
}

/// A web session.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSession {
    /// Hex SHA-256 of the cookie's token.
    pub token_sha256: String,
    /// Its user.
    pub user: String,
    /// The token every form must carry.
    pub csrf_token: String,
    /// Created at, Unix ms.
    pub created_at_ms: u64,
    /// Last request at, Unix ms.
    pub last_seen_ms: u64,
    /// Absolute expiry, Unix ms.
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for AdminSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSession")
            .field("user", &self.user)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// `Ok` if a statement touched the user's row, else "no such user".
fn exists(rows: usize, name: &str) -> Result<(), IssuerdError> {
    if rows == 0 {
        Err(IssuerdError::UnknownAdminUser(name.to_owned()))
    } else {
        Ok(())
    }
}

/// Checks a login name: 1–64 of `A–Z a–z 0–9 . _ - @`.
pub(crate) fn check_user_name(name: &str) -> Result<(), IssuerdError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(IssuerdError::invalid(
            "admin user name",
            format!("{name:?}: use 1 to 64 of A-Z a-z 0-9 . _ - @"),
        ))
    }
}

const USER_COLUMNS: &str = "name, created_at_ms, password_changed_at_ms, failed_logins, \
                            locked_until_ms, last_login_ms, first_failure_ms";

fn user(r: &Row<'_>) -> rusqlite::Result<AdminUser> {
    Ok(AdminUser {
        name: r.get(0)?,
        created_at_ms: uint(r.get(1)?),
        password_changed_at_ms: uint(r.get(2)?),
        failed_logins: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
        locked_until_ms: uint_opt(r.get(4)?),
        last_login_ms: uint_opt(r.get(5)?),
        first_failure_ms: uint_opt(r.get(6)?),
    })
}

fn session(r: &Row<'_>) -> rusqlite::Result<AdminSession> {
    Ok(AdminSession {
        token_sha256: r.get(0)?,
        user: r.get(1)?,
        csrf_token: r.get(2)?,
        created_at_ms: uint(r.get(3)?),
        last_seen_ms: uint(r.get(4)?),
        expires_at_ms: uint(r.get(5)?),
    })
}

impl Store {
    /// Adds an admin user with a password hash from
    /// [`hash_new_password`](crate::password::hash_new_password).
    pub fn add_admin_user(
        &mut self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        check_user_name(name)?;
        self.change_admin_user(name, "admin_user_added", now_ms, actor, |tx| {
            let n = tx.execute(
                "INSERT INTO admin_users (name, password_hash, created_at_ms, password_changed_at_ms)
                 VALUES (?1, ?2, ?3, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, password_hash, int(now_ms)],
            )?;
            Ok(if n == 1 {
                Ok(())
            } else {
                Err(IssuerdError::AdminUserExists(name.to_owned()))
            })
        })
    }

    /// Sets a user's password: clears its failed logins and lockout and ends its sessions.
    pub fn set_admin_password(
        &mut self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        self.change_admin_user(name, "admin_password_changed", now_ms, actor, |tx| {
            let n = tx.execute(
                "UPDATE admin_users SET password_hash = ?2, password_changed_at_ms = ?3,
                                        failed_logins = 0, first_failure_ms = NULL,
                                        locked_until_ms = NULL
                 WHERE name = ?1",
                params![name, password_hash, int(now_ms)],
            )?;
            tx.execute("DELETE FROM admin_sessions WHERE user = ?1", [name])?;
            Ok(exists(n, name))
        })
    }

    /// Removes an admin user and its sessions.
    pub fn remove_admin_user(
        &mut self,
        name: &str,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        self.change_admin_user(name, "admin_user_removed", now_ms, actor, |tx| {
            let n = tx.execute("DELETE FROM admin_users WHERE name = ?1", [name])?;
            Ok(exists(n, name))
        })
    }

    /// Runs `change` on user `name` and records `kind`, in one transaction. `change` says
    /// whether it applies (`Err` leaves everything as it was).
    fn change_admin_user(
        &mut self,
        name: &str,
        kind: &'static str,
        now_ms: u64,
        actor: &str,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Result<(), IssuerdError>>,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        change(&tx).map_err(IssuerdError::db(&path, "change an admin user"))??;
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, kind)
                .actor(actor)
                .detail(serde_json::json!({ "user": name })),
        )
    }

    /// Every admin user, by name.
    pub fn admin_users(&self) -> Result<Vec<AdminUser>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {USER_COLUMNS} FROM admin_users ORDER BY name"
            ))
            .map_err(self.err("list admin users"))?;
        stmt.query_map([], user)
            .map_err(self.err("list admin users"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list admin users"))
    }

    /// One admin user.
    pub fn admin_user(&self, name: &str) -> Result<Option<AdminUser>, IssuerdError> {
        self.conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM admin_users WHERE name = ?1"),
                [name],
                user,
            )
            .optional()
            .map_err(self.err("read an admin user"))
    }

    /// A user's password hash, to verify a login with
    /// [`verify_password`](crate::password::verify_password).
    pub fn admin_password_hash(&self, name: &str) -> Result<Option<String>, IssuerdError> {
        self.conn
            .query_row(
                "SELECT password_hash FROM admin_users WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read a password hash"))
    }

    /// Stores a user's failed-login accounting, as the admin web's throttling computed it
    /// (`web::throttle`): failures in the current window, when the window began, and the end
    /// of a lockout.
    pub fn set_admin_login_state(
        &mut self,
        name: &str,
        failed_logins: u32,
        first_failure_ms: Option<u64>,
        locked_until_ms: Option<u64>,
    ) -> Result<(), IssuerdError> {
        let n = self
            .conn
            .execute(
                "UPDATE admin_users SET failed_logins = ?2, first_failure_ms = ?3,
                                        locked_until_ms = ?4
                 WHERE name = ?1",
                params![
                    name,
                    failed_logins,
                    first_failure_ms.map(int),
                    locked_until_ms.map(int)
                ],
            )
            .map_err(self.err("store a user's failed logins"))?;
        exists(n, name)
    }

    /// Notes a successful login.
    pub fn record_login_success(&mut self, name: &str, now_ms: u64) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "UPDATE admin_users SET last_login_ms = ?2 WHERE name = ?1",
                params![name, int(now_ms)],
            )
            .map(|_| ())
            .map_err(self.err("note a login"))
    }

    /// Stores a new session.
    pub fn create_admin_session(&mut self, s: &AdminSession) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "INSERT INTO admin_sessions (token_sha256, user, csrf_token, created_at_ms,
                                             last_seen_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.token_sha256,
                    s.user,
                    s.csrf_token,
                    int(s.created_at_ms),
                    int(s.last_seen_ms),
                    int(s.expires_at_ms)
                ],
            )
            .map(|_| ())
            .map_err(self.err("store a session"))
    }

    /// The session with this token hash.
    pub fn admin_session(&self, token_sha256: &str) -> Result<Option<AdminSession>, IssuerdError> {
        self.conn
            .query_row(
                "SELECT token_sha256, user, csrf_token, created_at_ms, last_seen_ms, expires_at_ms
                 FROM admin_sessions WHERE token_sha256 = ?1",
                [token_sha256],
                session,
            )
            .optional()
            .map_err(self.err("read a session"))
    }

    /// Notes a request in a session.
    pub fn touch_admin_session(
        &mut self,
        token_sha256: &str,
        now_ms: u64,
    ) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "UPDATE admin_sessions SET last_seen_ms = ?2 WHERE token_sha256 = ?1",
                params![token_sha256, int(now_ms)],
            )
            .map(|_| ())
            .map_err(self.err("touch a session"))
    }

    /// Ends a session.
    pub fn delete_admin_session(&mut self, token_sha256: &str) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "DELETE FROM admin_sessions WHERE token_sha256 = ?1",
                [token_sha256],
            )
            .map(|_| ())
            .map_err(self.err("end a session"))
    }

    /// Deletes sessions past their absolute expiry or idle since before `idle_before_ms`.
    pub fn purge_admin_sessions(
        &mut self,
        now_ms: u64,
        idle_before_ms: u64,
    ) -> Result<u64, IssuerdError> {
        self.conn
            .execute(
                "DELETE FROM admin_sessions WHERE expires_at_ms <= ?1 OR last_seen_ms < ?2",
                params![int(now_ms), int(idle_before_ms)],
            )
            .map(|n| n as u64)
            .map_err(self.err("purge sessions"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{PasswordCheck, hash_new_password, verify_password};
    use crate::store::testing;

    #[test]
    fn admin_users_sessions_and_lockout() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let h = hash_new_password("first password!").unwrap();
        s.add_admin_user("alice", &h, 1, "cli").unwrap();
        assert!(matches!(
            s.add_admin_user("alice", &h, 2, "cli"),
            Err(IssuerdError::AdminUserExists(_))
        ));
        assert!(s.add_admin_user("bad name", &h, 2, "cli").is_err());

        let sess = AdminSession {
            token_sha256: "a".repeat(64),
            user: "alice".into(),
            csrf_token: "c".into(),
            created_at_ms: 10,
            last_seen_ms: 10,
            expires_at_ms: 1_000,
        };
        s.create_admin_session(&sess).unwrap();
        assert_eq!(
            s.admin_session(&sess.token_sha256).unwrap().unwrap().user,
            "alice"
        );
        s.touch_admin_session(&sess.token_sha256, 20).unwrap();
        assert_eq!(
            s.admin_session(&sess.token_sha256)
                .unwrap()
                .unwrap()
                .last_seen_ms,
            20
        );

        // The web's accounting is stored as it computed it.
        s.set_admin_login_state("alice", 2, Some(100), None)
            .unwrap();
        let u = s.admin_user("alice").unwrap().unwrap();
        assert_eq!(
            (u.failed_logins, u.first_failure_ms, u.locked_until_ms),
            (2, Some(100), None)
        );
        s.set_admin_login_state("alice", 0, None, Some(60_102))
            .unwrap();
        assert_eq!(
            s.admin_user("alice").unwrap().unwrap().locked_until_ms,
            Some(60_102)
        );
        assert!(matches!(
            s.set_admin_login_state("nobody", 1, None, None),
            Err(IssuerdError::UnknownAdminUser(_))
        ));

        // A new password lifts the lockout and ends every session.
        let h2 = hash_new_password("second password!").unwrap();
        s.set_admin_password("alice", &h2, 200, "cli").unwrap();
        assert!(s.admin_session(&sess.token_sha256).unwrap().is_none());
        assert_eq!(
            s.admin_user("alice").unwrap().unwrap().locked_until_ms,
            None
        );
        assert_eq!(
            verify_password(
                "second password!",
                &s.admin_password_hash("alice").unwrap().unwrap()
            ),
            PasswordCheck::Match
        );
        assert!(matches!(
            s.set_admin_password("bob", &h2, 0, "cli"),
            Err(IssuerdError::UnknownAdminUser(_))
        ));

        s.create_admin_session(&sess).unwrap();
        assert_eq!(s.purge_admin_sessions(1_000, 0).unwrap(), 1, "expired");
        s.record_login_success("alice", 300).unwrap();
        assert_eq!(s.admin_users().unwrap()[0].last_login_ms, Some(300));
        s.remove_admin_user("alice", 400, "cli").unwrap();
        assert!(s.admin_users().unwrap().is_empty());
    }
}
