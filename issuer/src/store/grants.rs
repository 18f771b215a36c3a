//! Grants and their revocations (they replace `grants.json` and `revocations.json`).
//!
//! A grant is written before it is published, so every grant that left the issuer can be
//! revoked after a restart. Live: not revoked, `not_after` in the future. A revocation is
//! stored signed; it is pending (re-published) until its lock confirms it with a kind-4
//! event or the revoked grant expires. Unlock events are counted per grant.

use latchkey::frame::{EventKind, LockEvent, RevocationView};
use latchkey::{GrantId, GuestId, LiveGrant, LockId, SessionId, UnixMillis};
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::access::AccessEntry;
use super::audit::{self, AuditSource, NewAudit, kinds};
use super::db::{int, parse_id, parse_id_opt, uint, uint_opt};
use crate::error::IssuerdError;
use crate::policy::{AccountingWindow, GrantUsage, Usage};

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// Its guest (unknown only for revocations imported from `revocations.json`).
    pub guest_id: Option<GuestId>,
    /// Its session.
    pub session_id: SessionId,
    /// Issued at, Unix s (unknown for grants imported from `grants.json`).
    pub issued_at: Option<u64>,
    /// Start of validity, Unix s (unknown for imported grants).
    pub not_before: Option<u64>,
    /// End of validity, Unix s.
    pub not_after: u64,
    /// The unlock limit written into the LockGrant (0: none).
    pub max_unlocks: u16,
    /// Unlocks the lock reported under it.
    pub unlocks: u32,
    /// When the lock reported it installed, Unix ms.
    pub installed_at_ms: Option<u64>,
    /// When it was revoked, Unix ms.
    pub revoked_at_ms: Option<u64>,
    /// How often its Revocation was published.
    pub revocation_publishes: u32,
    /// When the lock confirmed the revocation, Unix ms.
    pub revocation_confirmed_at_ms: Option<u64>,
}

impl GrantRecord {
    /// Whether it can still be used at `now_s` (not revoked, not expired).
    pub fn is_live(&self, now_s: u64) -> bool {
        self.revoked_at_ms.is_none() && self.not_after > now_s
    }
}

/// A grant just issued, to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewGrant {
    /// The grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// Its guest.
    pub guest_id: GuestId,
    /// Its session.
    pub session_id: SessionId,
    /// Issued at, Unix s.
    pub issued_at: u64,
    /// Start of validity, Unix s.
    pub not_before: u64,
    /// End of validity, Unix s.
    pub not_after: u64,
    /// Unlock limit in the LockGrant (0: none).
    pub max_unlocks: u16,
}

/// Which grants [`Store::grants_page`] lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// `Some(true)`: live only (not revoked, `not_after` after `now_s`); `Some(false)`: past
    /// only; `None`: all.
    pub live: Option<bool>,
    /// "Live" is judged at this time, Unix s.
    pub now_s: u64,
    /// At this lock.
    pub lock_id: Option<LockId>,
    /// Of this guest.
    pub guest_id: Option<GuestId>,
}

/// A signed Revocation the issuer re-publishes until the lock reports it applied (a kind-4
/// LockEvent for the grant) or the revoked grant would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRevocation {
    /// The revoked grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// The revoked grant's not_after (Unix s): no need to deliver after it.
    pub expires_at: u64,
    /// The signed Revocation.
    pub payload: Vec<u8>,
    /// How often it was published so far (0: revoked while no daemon ran).
    pub publishes: u32,
    /// When to publish it next (not stored: after a restart, at once).
    pub next_publish: UnixMillis,
}

/// What recording a verified lock event did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventEffect {
    /// `false`: the event was recorded before (a redelivery); nothing else was done.
    pub new: bool,
    /// The event confirmed a pending revocation.
    pub revocation_confirmed: bool,
    /// The guest of the event's grant, when the issuer knows the grant.
    pub guest_id: Option<GuestId>,
    /// The audit entries written, in order (the event's, then `revocation_confirmed`'s).
    pub audit: Vec<NewAudit>,
}

const COLUMNS: &str = "grant_id, lock_id, guest_id, session_id, issued_at, not_before, not_after, \
                       max_unlocks, unlocks, installed_at_ms, revoked_at_ms, revocation_publishes, \
                       revocation_confirmed_at_ms";

type RawGrant = (
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
);

fn finish(r: RawGrant) -> Result<GrantRecord, IssuerdError> {
    let (
        grant,
        lock,
        guest,
        session,
        issued,
        nb,
        na,
        max,
        unlocks,
        installed,
        revoked,
        publishes,
        confirmed,
    ) = r;
    Ok(GrantRecord {
        grant_id: parse_id("grants", &grant)?,
        lock_id: parse_id("grants", &lock)?,
        guest_id: parse_id_opt("grants", guest.as_deref())?,
        session_id: parse_id("grants", &session)?,
        issued_at: uint_opt(issued),
        not_before: uint_opt(nb),
        not_after: uint(na),
        max_unlocks: u16::try_from(max).unwrap_or(u16::MAX),
        unlocks: u32::try_from(unlocks).unwrap_or(u32::MAX),
        installed_at_ms: uint_opt(installed),
        revoked_at_ms: uint_opt(revoked),
        revocation_publishes: u32::try_from(publishes).unwrap_or(0),
        revocation_confirmed_at_ms: uint_opt(confirmed),
    })
}

fn select(
    conn: &Connection,
    where_: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<RawGrant>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM grants WHERE {where_} ORDER BY not_after, grant_id"
    ))?;
    stmt.query_map(args, |r| RawGrant::try_from(r))?.collect()
}

/// Stores a signed revocation of a grant (published `publishes` times so far).
pub(crate) fn store_revocation(
    conn: &Connection,
    grant: &GrantId,
    payload: &[u8],
    publishes: u32,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    conn.execute(
        "UPDATE grants SET revoked_at_ms = ?2, revocation_payload = ?3, revocation_publishes = ?4
         WHERE grant_id = ?1 AND revoked_at_ms IS NULL",
        params![grant.to_string(), int(now_ms), payload, publishes],
    )
    .map(|n| n == 1)
}

impl Store {
    /// Records a grant just issued, before it is published: the grant, the guest's
    /// `last_used_ms`, and a `grant_issued` audit entry, in one transaction. Returns the
    /// audit entry.
    pub fn record_grant(&mut self, g: &NewGrant, now_ms: u64) -> Result<NewAudit, IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        tx.execute(
            "INSERT INTO grants (grant_id, lock_id, guest_id, session_id, issued_at, not_before,
                                 not_after, max_unlocks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                g.grant_id.to_string(),
                g.lock_id.to_string(),
                g.guest_id.to_string(),
                g.session_id.to_string(),
                int(g.issued_at),
                int(g.not_before),
                int(g.not_after),
                g.max_unlocks,
            ],
        )
        .map_err(IssuerdError::db(&path, "record a grant"))?;
        tx.execute(
            "UPDATE guests SET last_used_ms = ?2 WHERE guest_id = ?1",
            params![g.guest_id.to_string(), int(now_ms)],
        )
        .map_err(IssuerdError::db(&path, "note the guest's last use"))?;
        let entry = NewAudit::new(now_ms, AuditSource::Issuer, kinds::GRANT_ISSUED)
            .lock(g.lock_id)
            .guest(g.guest_id)
            .grant(g.grant_id, g.session_id)
            .detail(serde_json::json!({
                "not_before": g.not_before,
                "not_after": g.not_after,
                "max_unlocks": g.max_unlocks,
            }));
        audit::commit_with(tx, &path, &entry)?;
        Ok(entry)
    }

    /// Records the revocation of a live grant (signed payload, published `publishes`
    /// times, 0 if no daemon runs) with a `grant_revoked` audit entry. `false` if the
    /// grant is unknown or already revoked.
    pub fn record_revocation(
        &mut self,
        grant: &GrantId,
        payload: &[u8],
        publishes: u32,
        now_ms: u64,
        actor: &str,
    ) -> Result<bool, IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let recorded = revoke_in(&tx, grant, payload, publishes, now_ms, actor)
            .map_err(IssuerdError::db(&path, "record a revocation"))?;
        tx.commit().map_err(IssuerdError::db(&path, "commit"))?;
        Ok(recorded)
    }

    /// Revokes a guest and records the revocations of its grants, in one transaction: what
    /// `revoke-guest` does when no daemon runs (the daemon publishes them at its start).
    pub fn record_offline_revocations(
        &mut self,
        guest: Option<&GuestId>,
        revocations: &[(GrantId, Vec<u8>)],
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        if let Some(g) = guest {
            let newly = tx
                .query_row(
                    "SELECT revoked_at_ms IS NULL FROM guests WHERE guest_id = ?1",
                    [g.to_string()],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(IssuerdError::db(&path, "look up a guest"))?
                .ok_or(IssuerdError::UnknownGuest(*g))?;
            if newly {
                super::guests::mark_revoked(&tx, g, now_ms)
                    .map_err(IssuerdError::db(&path, "revoke a guest"))?;
                audit::insert(
                    &tx,
                    &NewAudit::new(now_ms, AuditSource::Admin, kinds::GUEST_REVOKED)
                        .guest(*g)
                        .actor(actor),
                )
                .map_err(IssuerdError::db(&path, "record the audit entry"))?;
            }
        }
        for (grant, payload) in revocations {
            if !revoke_in(&tx, grant, payload, 0, now_ms, actor)
                .map_err(IssuerdError::db(&path, "record a revocation"))?
            {
                return Err(IssuerdError::GrantNotLive(*grant));
            }
        }
        tx.commit().map_err(IssuerdError::db(&path, "commit"))
    }

    /// Notes that a pending revocation was published again (`publishes` in all); the first
    /// publication of one revoked offline is audited.
    pub fn note_revocation_published(
        &mut self,
        grant: &GrantId,
        lock: &LockId,
        publishes: u32,
        now_ms: u64,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let before: Option<i64> = tx
            .query_row(
                "SELECT revocation_publishes FROM grants WHERE grant_id = ?1",
                [grant.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(IssuerdError::db(&path, "read a revocation"))?;
        tx.execute(
            "UPDATE grants SET revocation_publishes = ?2 WHERE grant_id = ?1",
            params![grant.to_string(), publishes],
        )
        .map_err(IssuerdError::db(&path, "count a publication"))?;
        if before == Some(0) {
            audit::insert(
                &tx,
                &NewAudit::new(now_ms, AuditSource::Issuer, kinds::REVOCATION_PUBLISHED)
                    .lock(*lock)
                    .grant(*grant, SessionId::ZERO),
            )
            .map_err(IssuerdError::db(&path, "record the audit entry"))?;
        }
        tx.commit().map_err(IssuerdError::db(&path, "commit"))
    }

    /// Records a verified lock event, in one transaction: the audit entry (with the
    /// event's id, so a redelivery is recognised and nothing else is done), the lock's
    /// `last_seen_ms` and timestamp high-water mark, and the event's effect on its grant:
    /// an unlock is counted, an installation noted, a revocation's application (the lock's
    /// time) noted and a pending revocation confirmed.
    pub fn record_lock_event(
        &mut self,
        ev: &LockEvent,
        now_ms: u64,
    ) -> Result<EventEffect, IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let err = |a| IssuerdError::db(&path, a);
        let lock = ev.lock_id.to_string();
        let grant = ev.grant_id.to_string();
        let guest: Option<String> = tx
            .query_row(
                "SELECT guest_id FROM grants WHERE grant_id = ?1 AND lock_id = ?2",
                [&grant, &lock],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("look up the event's grant"))?
            .flatten();
        let guest_id: Option<GuestId> = parse_id_opt("grants", guest.as_deref())?;
        let mut entry = NewAudit::new(now_ms, AuditSource::Lock, ev.kind.name())
            .lock(ev.lock_id)
            .grant(ev.grant_id, ev.session_id)
            .reason_code(ev.reason)
            .message(ev.event_id, ev.timestamp_ms);
        entry.guest_id = guest_id;
        if !audit::insert(&tx, &entry).map_err(err("record a lock event"))? {
            return Ok(EventEffect::default());
        }
        super::locks::note_message(&tx, &ev.lock_id, now_ms, ev.timestamp_ms, None)
            .map_err(err("note the lock as seen"))?;
        let mut effect = EventEffect {
            new: true,
            revocation_confirmed: false,
            guest_id,
            audit: vec![entry],
        };
        match ev.kind {
            EventKind::Unlock => {
                tx.execute(
                    "UPDATE grants SET unlocks = unlocks + 1 WHERE grant_id = ?1 AND lock_id = ?2",
                    [&grant, &lock],
                )
                .map_err(err("count an unlock"))?;
            }
            EventKind::GrantInstalled => {
                tx.execute(
                    "UPDATE grants SET installed_at_ms = coalesce(installed_at_ms, ?3)
                     WHERE grant_id = ?1 AND lock_id = ?2",
                    params![grant, lock, int(now_ms)],
                )
                .map_err(err("note an installation"))?;
            }
            EventKind::RevocationApplied => {
                tx.execute(
                    "UPDATE grants SET revocation_applied_lock_ms =
                        min(coalesce(revocation_applied_lock_ms, ?3), ?3)
                     WHERE grant_id = ?1 AND lock_id = ?2",
                    params![grant, lock, int(ev.timestamp_ms)],
                )
                .map_err(err("note a revocation applied"))?;
                let n = tx
                    .execute(
                        "UPDATE grants SET revocation_confirmed_at_ms = ?3
                         WHERE grant_id = ?1 AND lock_id = ?2 AND revocation_payload IS NOT NULL
                           AND revocation_confirmed_at_ms IS NULL",
                        params![grant, lock, int(now_ms)],
                    )
                    .map_err(err("confirm a revocation"))?;
                if n == 1 {
                    effect.revocation_confirmed = true;
                    let mut confirmed =
                        NewAudit::new(now_ms, AuditSource::Issuer, kinds::REVOCATION_CONFIRMED)
                            .lock(ev.lock_id)
                            .grant(ev.grant_id, ev.session_id);
                    confirmed.guest_id = guest_id;
                    audit::insert(&tx, &confirmed).map_err(err("record the audit entry"))?;
                    effect.audit.push(confirmed);
                }
            }
            EventKind::Rejection | EventKind::Lockout | EventKind::LockoutEnded => {}
        }
        tx.commit().map_err(err("commit"))?;
        Ok(effect)
    }

    /// Live grants (not revoked, unexpired at `now_s`) with a known guest: what the core
    /// restores after a restart.
    pub fn live_grants(&self, now_s: u64) -> Result<Vec<LiveGrant>, IssuerdError> {
        let rows = select(
            &self.conn,
            "revoked_at_ms IS NULL AND not_after > ?1 AND guest_id IS NOT NULL",
            [int(now_s)],
        )
        .map_err(self.err("read live grants"))?;
        rows.into_iter()
            .map(finish)
            .filter_map(|g| match g {
                Ok(g) => g.guest_id.map(|guest_id| {
                    Ok(LiveGrant {
                        grant_id: g.grant_id,
                        lock_id: g.lock_id,
                        guest_id,
                        session_id: g.session_id,
                        not_after: g.not_after,
                    })
                }),
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    /// Revocations not confirmed by their lock whose grant has not expired at `now_s`.
    pub fn pending_revocations(&self, now_s: u64) -> Result<Vec<PendingRevocation>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT grant_id, lock_id, not_after, revocation_payload, revocation_publishes
                 FROM grants
                 WHERE revocation_payload IS NOT NULL AND revocation_confirmed_at_ms IS NULL
                   AND not_after > ?1
                 ORDER BY revoked_at_ms, grant_id",
            )
            .map_err(self.err("read pending revocations"))?;
        let rows = stmt
            .query_map([int(now_s)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(self.err("read pending revocations"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("read pending revocations"))?;
        rows.into_iter()
            .map(|(grant, lock, not_after, payload, publishes)| {
                Ok(PendingRevocation {
                    grant_id: parse_id("grants", &grant)?,
                    lock_id: parse_id("grants", &lock)?,
                    expires_at: uint(not_after),
                    payload,
                    publishes: u32::try_from(publishes).unwrap_or(0),
                    next_publish: UnixMillis(0),
                })
            })
            .collect()
    }

    /// One grant.
    pub fn grant(&self, grant: &GrantId) -> Result<Option<GrantRecord>, IssuerdError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM grants WHERE grant_id = ?1"),
                [grant.to_string()],
                |r| RawGrant::try_from(r),
            )
            .optional()
            .map_err(self.err("read a grant"))?
            .map(finish)
            .transpose()
    }

    /// Grants matching `filter`, newest issued first, `limit` from `offset`; and how many
    /// match.
    pub fn grants_page(
        &self,
        filter: &GrantFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<GrantRecord>, u64), IssuerdError> {
        let live = "(revoked_at_ms IS NULL AND not_after > ?1)";
        let cond = format!(
            "(?2 IS NULL OR (?2 = 1) = {live}) AND (?3 IS NULL OR lock_id = ?3)
             AND (?4 IS NULL OR guest_id = ?4)"
        );
        let args = params![
            int(filter.now_s),
            filter.live.map(i64::from),
            filter.lock_id.map(|l| l.to_string()),
            filter.guest_id.map(|g| g.to_string()),
        ];
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM grants WHERE {cond}"),
                args,
                |r| r.get(0),
            )
            .map_err(self.err("count grants"))?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM grants WHERE {cond}
                 ORDER BY coalesce(issued_at, 0) DESC, grant_id LIMIT ?5 OFFSET ?6"
            ))
            .map_err(self.err("list grants"))?;
        let rows = stmt
            .query_map(
                params![
                    int(filter.now_s),
                    filter.live.map(i64::from),
                    filter.lock_id.map(|l| l.to_string()),
                    filter.guest_id.map(|g| g.to_string()),
                    limit,
                    int(offset)
                ],
                |r| RawGrant::try_from(r),
            )
            .map_err(self.err("list grants"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list grants"))?;
        let grants = rows.into_iter().map(finish).collect::<Result<_, _>>()?;
        Ok((grants, uint(total)))
    }

    /// How many grants are live at `now_s`.
    pub fn live_grant_count(&self, now_s: u64) -> Result<u64, IssuerdError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM grants WHERE revoked_at_ms IS NULL AND not_after > ?1",
                [int(now_s)],
                |r| r.get::<_, i64>(0),
            )
            .map(uint)
            .map_err(self.err("count live grants"))
    }

    /// A guest's grants whose validity ends after `since_s` (0: all), oldest end first.
    pub fn grants_of_guest(
        &self,
        guest: &GuestId,
        since_s: u64,
    ) -> Result<Vec<GrantRecord>, IssuerdError> {
        select(
            &self.conn,
            "guest_id = ?1 AND not_after > ?2",
            params![guest.to_string(), int(since_s)],
        )
        .map_err(self.err("read a guest's grants"))?
        .into_iter()
        .map(finish)
        .collect()
    }

    /// A lock's grants whose validity ends after `since_s` (0: all), oldest end first.
    pub fn grants_at_lock(
        &self,
        lock: &LockId,
        since_s: u64,
    ) -> Result<Vec<GrantRecord>, IssuerdError> {
        select(
            &self.conn,
            "lock_id = ?1 AND not_after > ?2",
            params![lock.to_string(), int(since_s)],
        )
        .map_err(self.err("read a lock's grants"))?
        .into_iter()
        .map(finish)
        .collect()
    }

    /// How much of a rule's unlock limit is used: the grants of its guest at its lock
    /// issued since the rule was created, each with the lock's timestamp high-water mark,
    /// added up by the policy's accounting ([`Usage::from_grants`]).
    pub fn rule_usage(
        &self,
        rule: &AccessEntry,
        now_s: u64,
        window: &AccountingWindow,
    ) -> Result<Usage, IssuerdError> {
        let grants = self.grant_usages(&rule.guest_id, &rule.lock_id, rule.created_at_ms / 1000)?;
        Ok(Usage::from_grants(now_s, window, &grants))
    }

    /// The accounting figures of the grants of `guest` at `lock` issued at or after
    /// `issued_since_s`.
    pub fn grant_usages(
        &self,
        guest: &GuestId,
        lock: &LockId,
        issued_since_s: u64,
    ) -> Result<Vec<GrantUsage>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT g.max_unlocks, g.unlocks, g.not_after, g.revocation_applied_lock_ms,
                        l.lock_time_high_water_ms
                 FROM grants g JOIN locks l ON l.lock_id = g.lock_id
                 WHERE g.guest_id = ?1 AND g.lock_id = ?2 AND g.issued_at >= ?3",
            )
            .map_err(self.err("read a rule's grants"))?;
        let rows = stmt
            .query_map(
                params![guest.to_string(), lock.to_string(), int(issued_since_s)],
                |r| {
                    Ok(GrantUsage {
                        max_unlocks: u16::try_from(r.get::<_, i64>(0)?).unwrap_or(u16::MAX),
                        unlocks: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX),
                        not_after: uint(r.get(2)?),
                        revocation_applied_at: uint_opt(r.get(3)?).map(|ms| ms / 1000),
                        lock_high_water_ms: uint_opt(r.get(4)?),
                    })
                },
            )
            .map_err(self.err("read a rule's grants"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("read a rule's grants"))
    }
}

fn revoke_in(
    conn: &Connection,
    grant: &GrantId,
    payload: &[u8],
    publishes: u32,
    now_ms: u64,
    actor: &str,
) -> rusqlite::Result<bool> {
    if !store_revocation(conn, grant, payload, publishes, now_ms)? {
        return Ok(false);
    }
    let (lock, guest, session): (String, Option<String>, String) = conn.query_row(
        "SELECT lock_id, guest_id, session_id FROM grants WHERE grant_id = ?1",
        [grant.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut e = NewAudit::new(now_ms, AuditSource::Admin, kinds::GRANT_REVOKED)
        .actor(actor)
        .detail(serde_json::json!({
            "published": publishes > 0,
            "expires_at": RevocationView::parse(payload).ok().map(|v| v.fields.expires_at),
        }));
    e.lock_id = lock.parse().ok();
    e.guest_id = guest.and_then(|g| g.parse().ok());
    e.grant_id = Some(*grant);
    e.session_id = session.parse().ok();
    audit::insert(conn, &e)?;
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::guests::tests::lock;
    use crate::store::{AccessChange, NewGuest, testing};
    use latchkey::EventId;
    use latchkey::crypto::EnrollmentKey;

    const WINDOW: AccountingWindow = AccountingWindow {
        max_clock_skew_s: 0,
        event_window_s: 100,
    };

    /// A lock and a guest with an access rule there (the default role, no limit).
    pub(crate) fn setup(s: &mut Store) -> (LockId, GuestId) {
        let l = lock(s, 1);
        let g = GuestId([2; 16]);
        s.enroll_guest(
            &NewGuest {
                guest_id: g,
                name: String::new(),
                key: EnrollmentKey::from_bytes([3; 32]),
                locks: vec![l],
                access: AccessChange::default(),
            },
            false,
            0,
            "test",
            || Ok(()),
        )
        .unwrap();
        (l, g)
    }

    fn grant(
        n: u8,
        lock_id: LockId,
        guest_id: GuestId,
        not_after: u64,
        max_unlocks: u16,
    ) -> NewGrant {
        NewGrant {
            grant_id: GrantId([n; 16]),
            lock_id,
            guest_id,
            session_id: SessionId([n; 8]),
            issued_at: 100,
            not_before: 70,
            not_after,
            max_unlocks,
        }
    }

    fn event(lock_id: LockId, n: u8, kind: EventKind, grant: GrantId) -> LockEvent {
        LockEvent {
            lock_id,
            event_id: EventId([n; 16]),
            timestamp_ms: 1_000 * u64::from(n),
            kind,
            reason: 0,
            grant_id: grant,
            session_id: SessionId([grant.0[0]; 8]),
        }
    }

    #[test]
    fn grants_are_live_until_revoked_or_expired_and_revocations_pending_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let (l, g) = setup(&mut s);
        s.record_grant(&grant(1, l, g, 1_000, 0), 100_000).unwrap();
        s.record_grant(&grant(2, l, g, 2_000, 0), 100_000).unwrap();
        assert_eq!(s.guest(&g).unwrap().unwrap().last_used_ms, Some(100_000));
        assert_eq!(s.live_grants(500).unwrap().len(), 2);
        assert_eq!(s.live_grants(1_500).unwrap().len(), 1, "the first expired");

        assert!(
            s.record_revocation(&GrantId([2; 16]), b"signed", 1, 200_000, "cli")
                .unwrap()
        );
        assert!(
            !s.record_revocation(&GrantId([2; 16]), b"again", 1, 200_001, "cli")
                .unwrap()
        );
        assert!(
            !s.record_revocation(&GrantId([9; 16]), b"x", 1, 0, "cli")
                .unwrap()
        );
        assert!(
            s.live_grants(500)
                .unwrap()
                .iter()
                .all(|x| x.grant_id != GrantId([2; 16]))
        );
        let pending = s.pending_revocations(500).unwrap();
        assert_eq!(
            (pending.len(), pending[0].payload.as_slice()),
            (1, &b"signed"[..])
        );
        assert!(
            s.pending_revocations(2_000).unwrap().is_empty(),
            "the grant expired"
        );

        // A confirmation from another lock does nothing; the right one ends it, once.
        let other = event(
            LockId([8; 16]),
            1,
            EventKind::RevocationApplied,
            GrantId([2; 16]),
        );
        assert!(!s.record_lock_event(&other, 1).unwrap().revocation_confirmed);
        let ev = event(l, 2, EventKind::RevocationApplied, GrantId([2; 16]));
        let eff = s.record_lock_event(&ev, 2).unwrap();
        assert!(eff.new && eff.revocation_confirmed);
        assert_eq!(eff.guest_id, Some(g));
        assert!(s.pending_revocations(500).unwrap().is_empty());
        assert_eq!(
            s.record_lock_event(&ev, 3).unwrap(),
            EventEffect::default(),
            "redelivery"
        );
    }

    #[test]
    fn usage_counts_confirmed_unlocks_and_what_unsettled_grants_may_still_add() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let (l, g) = setup(&mut s);
        let rule = s.access_rule(&g, &l).unwrap().unwrap();
        s.record_grant(&grant(1, l, g, 1_000, 5), 0).unwrap();
        s.record_grant(&grant(2, l, g, 3_000, 3), 0).unwrap();
        // Events stamped (lock clock) before either grant's end.
        for n in 10..12 {
            s.record_lock_event(&event(l, n, EventKind::Unlock, GrantId([1; 16])), 0)
                .unwrap();
        }
        s.record_lock_event(&event(l, 12, EventKind::Unlock, GrantId([2; 16])), 0)
            .unwrap();
        // The same unlock event again counts once.
        s.record_lock_event(&event(l, 12, EventKind::Unlock, GrantId([2; 16])), 0)
            .unwrap();
        let u = s.rule_usage(&rule, 500, &WINDOW).unwrap();
        assert_eq!(
            u,
            Usage {
                confirmed_unlocks: 3,
                outstanding_allocation: 3 + 2
            }
        );
        // Past the first grant's end plus the window, only its confirmed unlocks count.
        let u = s.rule_usage(&rule, 1_100, &WINDOW).unwrap();
        assert_eq!(
            u,
            Usage {
                confirmed_unlocks: 3,
                outstanding_allocation: 2
            }
        );
        // A confirmed revocation releases the allocation at once, and its lock time is kept.
        s.record_revocation(&GrantId([2; 16]), b"r", 1, 0, "cli")
            .unwrap();
        s.record_lock_event(
            &event(l, 13, EventKind::RevocationApplied, GrantId([2; 16])),
            0,
        )
        .unwrap();
        assert_eq!(
            s.rule_usage(&rule, 600, &WINDOW)
                .unwrap()
                .outstanding_allocation,
            3,
            "only the first grant's, which its lock has not passed yet"
        );
        let rec = s.grant(&GrantId([1; 16])).unwrap().unwrap();
        assert_eq!((rec.unlocks, rec.max_unlocks), (2, 5));
        let installed = event(l, 14, EventKind::GrantInstalled, GrantId([1; 16]));
        s.record_lock_event(&installed, 77).unwrap();
        assert_eq!(
            s.grant(&GrantId([1; 16])).unwrap().unwrap().installed_at_ms,
            Some(77)
        );
        // A message of the lock stamped at the first grant's end settles it too.
        let mut late = event(l, 15, EventKind::Rejection, GrantId::ZERO);
        late.timestamp_ms = 1_000_000;
        let effect = s.record_lock_event(&late, 90).unwrap();
        assert_eq!(effect.audit.len(), 1);
        assert_eq!(s.lock(&l).unwrap().unwrap().last_seen_ms, Some(90));
        assert_eq!(
            s.rule_usage(&rule, 600, &WINDOW).unwrap(),
            Usage {
                confirmed_unlocks: 3,
                outstanding_allocation: 0
            }
        );
        // Grants issued before the rule was created do not count against it.
        let mut newer = rule.clone();
        newer.created_at_ms = 101_000;
        assert_eq!(
            s.rule_usage(&newer, 600, &WINDOW).unwrap(),
            Usage::default()
        );
    }
}
