//! The audit trail: what the issuer did and refused, what locks reported (verified), and
//! what administrators changed. Append-only but for [`Store::prune_audit`].
//!
//! A verified lock message is stored with its message id; `UNIQUE (lock_id, message_id)`
//! makes a redelivered one a no-op ([`Store::append_audit`] returns `false`) and lets a
//! restarted issuer rebuild its per-lock replay cache ([`Store::recent_lock_messages`]). A
//! refused lock message is stored as a refusal, without the id it claims: an unverified id
//! must not occupy a verified one's slot.

use latchkey::{GrantId, GuestId, LockId, Reason, SessionId};
use rusqlite::types::Value;
use std::path::Path;

use rusqlite::{Connection, Transaction, params, params_from_iter};

use super::Store;
use super::db::{int, parse_id_opt, uint, uint_opt};
use crate::error::IssuerdError;

/// Audit `kind` values written by this crate.
pub mod kinds {
    /// A grant was issued (source issuer).
    pub const GRANT_ISSUED: &str = "grant_issued";
    /// A grant request was refused (source issuer; reason set).
    pub const REQUEST_REFUSED: &str = "request_refused";
    /// A Revocation was first published (source issuer).
    pub const REVOCATION_PUBLISHED: &str = "revocation_published";
    /// The lock confirmed a revocation (source issuer).
    pub const REVOCATION_CONFIRMED: &str = "revocation_confirmed";
    /// A message on a lock's events topic was refused (source issuer; reason set).
    pub const LOCK_MESSAGE_REFUSED: &str = "lock_message_refused";
    /// Verified lock events (source lock): the event kind's name.
    pub const UNLOCK: &str = "unlock";
    /// A verified lock event: the lock refused something (reason set).
    pub const REJECTION: &str = "rejection";
    /// A verified lock event: a grant was installed.
    pub const GRANT_INSTALLED: &str = "grant_installed";
    /// A verified lock event: a revocation was applied.
    pub const REVOCATION_APPLIED: &str = "revocation_applied";
    /// A verified lock event: a guest was locked out (reason: the failure that did it).
    pub const LOCKOUT: &str = "lockout";
    /// A verified lock event: a lockout ended.
    pub const LOCKOUT_ENDED: &str = "lockout_ended";
    /// A verified LockStatus (source lock; the status, counters by reason, as detail).
    pub const STATUS: &str = "status";
    /// Admin: a guest was revoked.
    pub const GUEST_REVOKED: &str = "guest_revoked";
    /// Admin: a grant was revoked.
    pub const GRANT_REVOKED: &str = "grant_revoked";
}

/// Who wrote an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditSource {
    /// The issuer daemon's own decisions.
    Issuer,
    /// A lock's verified report.
    Lock,
    /// An administrator (CLI, control socket, web).
    Admin,
}

impl AuditSource {
    /// Every source, in the order the admin web's filter lists them.
    pub const ALL: [AuditSource; 3] = [AuditSource::Issuer, AuditSource::Lock, AuditSource::Admin];

    /// The column value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issuer => "issuer",
            Self::Lock => "lock",
            Self::Admin => "admin",
        }
    }

    /// Parses a column value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "issuer" => Self::Issuer,
            "lock" => Self::Lock,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Issuer time, Unix ms.
    pub at_ms: u64,
    /// Who.
    pub source: AuditSource,
    /// What (see [`kinds`]).
    pub kind: String,
    /// Reason name, if any.
    pub reason: Option<String>,
    /// Reason code, if any.
    pub reason_code: Option<u16>,
    /// Lock concerned.
    pub lock_id: Option<LockId>,
    /// Guest concerned.
    pub guest_id: Option<GuestId>,
    /// Grant concerned.
    pub grant_id: Option<GrantId>,
    /// Session concerned.
    pub session_id: Option<SessionId>,
    /// A verified lock message's id (hex).
    pub message_id: Option<String>,
    /// The lock's clock in that message, Unix ms.
    pub lock_time_ms: Option<u64>,
    /// The administrator (`cli`, `web:NAME`, `control`).
    pub actor: Option<String>,
    /// Anything else, as JSON.
    pub detail: Option<serde_json::Value>,
}

impl NewAudit {
    /// An entry with only its time, source and kind.
    pub fn new(at_ms: u64, source: AuditSource, kind: impl Into<String>) -> Self {
        Self {
            at_ms,
            source,
            kind: kind.into(),
            reason: None,
            reason_code: None,
            lock_id: None,
            guest_id: None,
            grant_id: None,
            session_id: None,
            message_id: None,
            lock_time_ms: None,
            actor: None,
            detail: None,
        }
    }

    /// With a reason.
    pub fn reason(mut self, r: Reason) -> Self {
        self.reason = Some(r.name().to_owned());
        self.reason_code = Some(r.code());
        self
    }

    /// With a reason code from a lock (0: none; an unknown code keeps only the number).
    pub fn reason_code(mut self, code: u16) -> Self {
        if code != 0 {
            self.reason = Reason::from_code(code).map(|r| r.name().to_owned());
            self.reason_code = Some(code);
        }
        self
    }

    /// With a lock.
    pub fn lock(mut self, id: LockId) -> Self {
        self.lock_id = Some(id);
        self
    }

    /// With a guest.
    pub fn guest(mut self, id: GuestId) -> Self {
        self.guest_id = Some(id);
        self
    }

    /// With a grant and its session (all-zero ids, the protocol's "none", are left out).
    pub fn grant(mut self, grant: GrantId, session: SessionId) -> Self {
        self.grant_id = (grant != GrantId::ZERO).then_some(grant);
        self.session_id = (session != SessionId::ZERO).then_some(session);
        self
    }

    /// With a verified lock message's id and clock.
    pub fn message(mut self, id: impl ToString, lock_time_ms: u64) -> Self {
        self.message_id = Some(id.to_string());
        self.lock_time_ms = Some(lock_time_ms);
        self
    }

    /// With the administrator.
    pub fn actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_owned());
        self
    }

    /// With details.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Its row id (increasing).
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
}

impl AuditEntry {
    /// One line for people: time (UTC), source, kind, then the fields that are set
    /// (`audit`, `show-guest`, `show-lock`, the demo).
    pub fn line(&self) -> String {
        let x = &self.entry;
        let mut parts = vec![
            crate::time::show_utc_ms(x.at_ms),
            format!("{:<6}", x.source.as_str()),
            x.kind.clone(),
        ];
        if let Some(r) = &x.reason {
            parts.push(format!("reason={r}"));
        } else if let Some(c) = x.reason_code {
            parts.push(format!("reason_code={c}"));
        }
        if let Some(l) = x.lock_id {
            parts.push(format!("lock={l}"));
        }
        if let Some(g) = x.guest_id {
            parts.push(format!("guest={g}"));
        }
        if let Some(g) = x.grant_id {
            parts.push(format!("grant={g}"));
        }
        if let Some(a) = &x.actor {
            parts.push(format!("by={a}"));
        }
        if let Some(d) = &x.detail {
            parts.push(d.to_string());
        }
        parts.join("  ")
    }

    /// As JSON (ids as hex, times as Unix ms).
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.entry;
        serde_json::json!({
            "id": self.id,
            "at_ms": e.at_ms,
            "source": e.source.as_str(),
            "kind": e.kind,
            "reason": e.reason,
            "reason_code": e.reason_code,
            "lock_id": e.lock_id.map(|x| x.to_string()),
            "guest_id": e.guest_id.map(|x| x.to_string()),
            "grant_id": e.grant_id.map(|x| x.to_string()),
            "session_id": e.session_id.map(|x| x.to_string()),
            "message_id": e.message_id,
            "lock_time_ms": e.lock_time_ms,
            "actor": e.actor,
            "detail": e.detail,
        })
    }
}

/// Which entries to read; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// At this lock.
    pub lock_id: Option<LockId>,
    /// About this guest.
    pub guest_id: Option<GuestId>,
    /// About this grant.
    pub grant_id: Option<GrantId>,
    /// Of this kind.
    pub kind: Option<String>,
    /// With this reason (name).
    pub reason: Option<String>,
    /// From this source.
    pub source: Option<AuditSource>,
    /// At or after, Unix ms.
    pub since_ms: Option<u64>,
    /// Before, Unix ms.
    pub until_ms: Option<u64>,
}

impl AuditFilter {
    fn where_clause(&self) -> (String, Vec<Value>) {
        let mut conds = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        let mut add = |cond: &str, v: Value| {
            args.push(v);
            conds.push(format!("{cond} ?{}", args.len()));
        };
        if let Some(l) = self.lock_id {
            add("lock_id =", Value::Text(l.to_string()));
        }
        if let Some(g) = self.guest_id {
            add("guest_id =", Value::Text(g.to_string()));
        }
        if let Some(g) = self.grant_id {
            add("grant_id =", Value::Text(g.to_string()));
        }
        if let Some(k) = &self.kind {
            add("kind =", Value::Text(k.clone()));
        }
        if let Some(r) = &self.reason {
            add("reason =", Value::Text(r.clone()));
        }
        if let Some(s) = self.source {
            add("source =", Value::Text(s.as_str().to_owned()));
        }
        if let Some(t) = self.since_ms {
            add("at_ms >=", Value::Integer(int(t)));
        }
        if let Some(t) = self.until_ms {
            add("at_ms <", Value::Integer(int(t)));
        }
        if conds.is_empty() {
            (String::new(), args)
        } else {
            (format!("WHERE {}", conds.join(" AND ")), args)
        }
    }
}

/// Counts in one time bucket, for a chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditBucket {
    /// Start of the bucket, Unix ms.
    pub start_ms: u64,
    /// Unlocks reported by locks.
    pub unlocks: u64,
    /// Rejections reported by locks.
    pub lock_rejections: u64,
    /// Grant requests the issuer refused.
    pub request_refusals: u64,
}

/// A verified lock message remembered in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockMessageId {
    /// The lock.
    pub lock_id: LockId,
    /// The message (event or status) id.
    pub message_id: [u8; 16],
    /// The lock's clock in it, Unix ms.
    pub lock_time_ms: u64,
}

/// Most buckets one chart query returns.
const MAX_BUCKETS: u64 = 10_000;

const COLUMNS: &str = "id, at_ms, source, kind, reason, reason_code, lock_id, guest_id, grant_id, \
                       session_id, message_id, lock_time_ms, actor, detail_json";

/// Appends `entry` and commits `tx`: a change and its audit entry land together or not at
/// all.
pub(crate) fn commit_with(
    tx: Transaction<'_>,
    path: &Path,
    entry: &NewAudit,
) -> Result<(), IssuerdError> {
    insert(&tx, entry).map_err(IssuerdError::db(path, "record the audit entry"))?;
    tx.commit().map_err(IssuerdError::db(path, "commit"))
}

/// Appends `e`; `false` if a verified message with the same (lock, id) is already there.
pub(crate) fn insert(conn: &Connection, e: &NewAudit) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO audit (at_ms, source, kind, reason, reason_code, lock_id, guest_id,
                            grant_id, session_id, message_id, lock_time_ms, actor, detail_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (lock_id, message_id) DO NOTHING",
        params![
            int(e.at_ms),
            e.source.as_str(),
            e.kind,
            e.reason,
            e.reason_code,
            e.lock_id.map(|x| x.to_string()),
            e.guest_id.map(|x| x.to_string()),
            e.grant_id.map(|x| x.to_string()),
            e.session_id.map(|x| x.to_string()),
            e.message_id,
            e.lock_time_ms.map(int),
            e.actor,
            e.detail.as_ref().map(serde_json::Value::to_string),
        ],
    )?;
    Ok(n == 1)
}

/// A row, in [`COLUMNS`] order.
type RawEntry = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn finish(r: RawEntry) -> Result<AuditEntry, IssuerdError> {
    let (
        id,
        at_ms,
        source,
        kind,
        reason,
        reason_code,
        lock,
        guest,
        grant,
        session,
        message_id,
        lock_time_ms,
        actor,
        detail_json,
    ) = r;
    let source = AuditSource::parse(&source).ok_or_else(|| IssuerdError::CorruptRow {
        table: "audit",
        key: id.to_string(),
        detail: format!("unknown source {source:?}"),
    })?;
    Ok(AuditEntry {
        id,
        entry: NewAudit {
            at_ms: uint(at_ms),
            source,
            kind,
            reason,
            reason_code: reason_code.and_then(|c| u16::try_from(c).ok()),
            lock_id: parse_id_opt("audit", lock.as_deref())?,
            guest_id: parse_id_opt("audit", guest.as_deref())?,
            grant_id: parse_id_opt("audit", grant.as_deref())?,
            session_id: parse_id_opt("audit", session.as_deref())?,
            message_id,
            lock_time_ms: uint_opt(lock_time_ms),
            actor,
            // Detail written by this crate is JSON; anything else is kept as a string.
            detail: detail_json
                .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        },
    })
}

impl Store {
    /// Appends an entry. `false`: a verified lock message with the same (lock, message id)
    /// is already recorded (a redelivery).
    pub fn append_audit(&mut self, e: &NewAudit) -> Result<bool, IssuerdError> {
        insert(&self.conn, e).map_err(self.err("append to the audit trail"))
    }

    /// Entries matching `filter`, newest first, skipping `offset` and returning at most
    /// `limit`.
    pub fn audit(
        &self,
        filter: &AuditFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<AuditEntry>, IssuerdError> {
        let (clause, mut args) = filter.where_clause();
        args.push(Value::Integer(i64::from(limit)));
        args.push(Value::Integer(int(offset)));
        let n = args.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM audit {clause} ORDER BY at_ms DESC, id DESC LIMIT ?{} OFFSET ?{n}",
            n - 1
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(self.err("read the audit trail"))?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| RawEntry::try_from(r))
            .map_err(self.err("read the audit trail"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("read the audit trail"))?;
        rows.into_iter().map(finish).collect()
    }

    /// How many entries match `filter` (for paging).
    pub fn audit_count(&self, filter: &AuditFilter) -> Result<u64, IssuerdError> {
        let (clause, args) = filter.where_clause();
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM audit {clause}"),
                params_from_iter(args),
                |r| r.get::<_, i64>(0),
            )
            .map(uint)
            .map_err(self.err("count audit entries"))
    }

    /// Unlocks, lock rejections and refused requests per `bucket_ms` from `since_ms` up to
    /// `until_ms`, optionally at one lock; every bucket is present, empty ones as zeros.
    pub fn audit_buckets(
        &self,
        since_ms: u64,
        until_ms: u64,
        bucket_ms: u64,
        lock: Option<&LockId>,
    ) -> Result<Vec<AuditBucket>, IssuerdError> {
        if bucket_ms == 0 || until_ms <= since_ms {
            return Err(IssuerdError::invalid(
                "chart range",
                "the range must be non-empty and the bucket longer than 0 ms",
            ));
        }
        let count = (until_ms - since_ms).div_ceil(bucket_ms);
        if count > MAX_BUCKETS {
            return Err(IssuerdError::invalid(
                "chart range",
                format!("{count} buckets; at most {MAX_BUCKETS}: widen the buckets"),
            ));
        }
        let mut out: Vec<AuditBucket> = (0..count)
            .map(|i| AuditBucket {
                start_ms: since_ms + i * bucket_ms,
                ..Default::default()
            })
            .collect();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT (at_ms - ?1) / ?3,
                        sum(source = 'lock' AND kind = 'unlock'),
                        sum(source = 'lock' AND kind = 'rejection'),
                        sum(source = 'issuer' AND kind = 'request_refused')
                 FROM audit
                 WHERE at_ms >= ?1 AND at_ms < ?2 AND (?4 IS NULL OR lock_id = ?4)
                 GROUP BY 1",
            )
            .map_err(self.err("count audit entries per bucket"))?;
        let rows = stmt
            .query_map(
                params![
                    int(since_ms),
                    int(until_ms),
                    int(bucket_ms),
                    lock.map(ToString::to_string)
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(self.err("count audit entries per bucket"))?;
        for row in rows {
            let (i, unlocks, rejections, refusals) =
                row.map_err(self.err("count audit entries per bucket"))?;
            if let Some(b) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                b.unlocks = uint(unlocks);
                b.lock_rejections = uint(rejections);
                b.request_refusals = uint(refusals);
            }
        }
        Ok(out)
    }

    /// Entries recorded at or after `since_ms` whose row id is above `after_id`, oldest first
    /// (in the order they were written), at most `limit`: for replaying the trail in pages.
    pub fn audit_ascending(
        &self,
        since_ms: u64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit WHERE at_ms >= ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))
            .map_err(self.err("read the audit trail"))?;
        let rows = stmt
            .query_map(params![int(since_ms), after_id, limit], |r| {
                RawEntry::try_from(r)
            })
            .map_err(self.err("read the audit trail"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("read the audit trail"))?;
        rows.into_iter().map(finish).collect()
    }

    /// Verified lock messages recorded at or after `since_ms` (issuer time): what a
    /// restarted issuer restores into its per-lock replay cache.
    pub fn recent_lock_messages(&self, since_ms: u64) -> Result<Vec<LockMessageId>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT lock_id, message_id, lock_time_ms FROM audit
                 WHERE source = 'lock' AND message_id IS NOT NULL AND at_ms >= ?1
                 ORDER BY id",
            )
            .map_err(self.err("read recent lock messages"))?;
        let rows = stmt
            .query_map([int(since_ms)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(self.err("read recent lock messages"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("read recent lock messages"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (lock, id, t) in rows {
            let mut message_id = [0u8; 16];
            if hex::decode_to_slice(&id, &mut message_id).is_err() {
                return Err(IssuerdError::CorruptRow {
                    table: "audit",
                    key: format!("{lock}/{id}"),
                    detail: "message id is not 32 hex digits".to_owned(),
                });
            }
            out.push(LockMessageId {
                lock_id: super::db::parse_id("audit", &lock)?,
                message_id,
                lock_time_ms: uint_opt(t).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Deletes entries older than `before_ms`; returns how many.
    pub fn prune_audit(&mut self, before_ms: u64) -> Result<u64, IssuerdError> {
        self.conn
            .execute("DELETE FROM audit WHERE at_ms < ?1", [int(before_ms)])
            .map(|n| n as u64)
            .map_err(self.err("prune the audit trail"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn a_redelivered_lock_message_is_recorded_once_but_refusals_always() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let lock = LockId([1; 16]);
        let ev = NewAudit::new(10, AuditSource::Lock, kinds::UNLOCK)
            .lock(lock)
            .message("ab".repeat(16), 9);
        assert!(s.append_audit(&ev).unwrap());
        assert!(!s.append_audit(&ev).unwrap(), "same lock and message id");
        // The same id at another lock is another message.
        assert!(s.append_audit(&ev.clone().lock(LockId([2; 16]))).unwrap());
        let refused = NewAudit::new(11, AuditSource::Issuer, kinds::LOCK_MESSAGE_REFUSED)
            .lock(lock)
            .reason(Reason::BadEventSignature);
        assert!(s.append_audit(&refused).unwrap());
        assert!(s.append_audit(&refused).unwrap(), "refusals carry no id");
        let recent = s.recent_lock_messages(0).unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].message_id, [0xab; 16]);
        assert_eq!(recent[0].lock_time_ms, 9);
        assert!(s.recent_lock_messages(11).unwrap().is_empty());
    }

    #[test]
    fn audit_filters_narrow_and_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let (l1, l2) = (LockId([1; 16]), LockId([2; 16]));
        let g = GuestId([3; 16]);
        for i in 0..10u64 {
            let lock = if i % 2 == 0 { l1 } else { l2 };
            s.append_audit(
                &NewAudit::new(1_000 + i, AuditSource::Lock, kinds::UNLOCK)
                    .lock(lock)
                    .guest(g)
                    .message(format!("{i:032x}"), i),
            )
            .unwrap();
        }
        s.append_audit(
            &NewAudit::new(2_000, AuditSource::Issuer, kinds::REQUEST_REFUSED)
                .guest(g)
                .reason(Reason::BadSeal),
        )
        .unwrap();
        let all = AuditFilter::default();
        assert_eq!(s.audit_count(&all).unwrap(), 11);
        let page = s.audit(&all, 3, 0).unwrap();
        assert_eq!(page[0].entry.kind, kinds::REQUEST_REFUSED, "newest first");
        assert_eq!(page[1].entry.at_ms, 1_009);
        let next = s.audit(&all, 3, 3).unwrap();
        assert_eq!(next[0].entry.at_ms, 1_007);

        let at_l1 = AuditFilter {
            lock_id: Some(l1),
            ..Default::default()
        };
        assert_eq!(s.audit_count(&at_l1).unwrap(), 5);
        let window = AuditFilter {
            lock_id: Some(l2),
            since_ms: Some(1_003),
            until_ms: Some(1_007),
            ..Default::default()
        };
        let got: Vec<u64> = s
            .audit(&window, 100, 0)
            .unwrap()
            .iter()
            .map(|e| e.entry.at_ms)
            .collect();
        assert_eq!(got, vec![1_005, 1_003]);
        let bad_seal = AuditFilter {
            reason: Some("bad_seal".into()),
            source: Some(AuditSource::Issuer),
            ..Default::default()
        };
        let r = s.audit(&bad_seal, 10, 0).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].entry.reason_code, Some(Reason::BadSeal.code()));
        assert_eq!(r[0].to_json()["guest_id"], g.to_string());
        let kind = AuditFilter {
            kind: Some(kinds::GRANT_ISSUED.into()),
            ..Default::default()
        };
        assert_eq!(s.audit_count(&kind).unwrap(), 0);

        assert_eq!(s.prune_audit(1_005).unwrap(), 5);
        assert_eq!(s.audit_count(&all).unwrap(), 6);
    }

    #[test]
    fn buckets_count_unlocks_rejections_and_refusals_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let l = LockId([1; 16]);
        let mut n = 0u32;
        let mut add = |at: u64, source, kind: &str| {
            n += 1;
            s.append_audit(
                &NewAudit::new(at, source, kind)
                    .lock(l)
                    .message(format!("{n:032x}"), at),
            )
            .unwrap();
        };
        add(0, AuditSource::Lock, kinds::UNLOCK);
        add(50, AuditSource::Lock, kinds::UNLOCK);
        add(120, AuditSource::Lock, kinds::REJECTION);
        add(250, AuditSource::Issuer, kinds::REQUEST_REFUSED);
        add(300, AuditSource::Lock, kinds::UNLOCK);
        let b = s.audit_buckets(0, 300, 100, None).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].start_ms, b[0].unlocks), (0, 2));
        assert_eq!((b[1].lock_rejections, b[1].unlocks), (1, 0));
        assert_eq!(b[2].request_refusals, 1);
        let other = s
            .audit_buckets(0, 300, 100, Some(&LockId([9; 16])))
            .unwrap();
        assert!(other.iter().all(|b| b.unlocks == 0));
        assert!(s.audit_buckets(0, 1_000_000_000, 1, None).is_err());
        assert!(s.audit_buckets(5, 5, 1, None).is_err());
    }
}
