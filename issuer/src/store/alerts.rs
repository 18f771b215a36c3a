//! Anomaly alerts, as the anomaly scorer raises them and an administrator acknowledges
//! them. The scorer decides what an alert says; this file stores and lists them.

use latchkey::{GuestId, LockId};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params, params_from_iter};

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{int, parse_id_opt, uint, uint_opt};
use crate::error::IssuerdError;

/// An alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Its id (unique).
    pub alert_id: String,
    /// Raised at, Unix ms.
    pub at_ms: u64,
    /// What was detected (`unusual_hour`, `failure_burst`, …).
    pub kind: String,
    /// How bad (`info`, `warning`, `critical`, as the scorer says).
    pub severity: String,
    /// The scorer's score.
    pub score: f64,
    /// Lock concerned.
    pub lock_id: Option<LockId>,
    /// Guest concerned.
    pub guest_id: Option<GuestId>,
    /// The scorer's details.
    pub detail: serde_json::Value,
    /// Acknowledged at, Unix ms.
    pub acknowledged_at_ms: Option<u64>,
    /// By whom.
    pub acknowledged_by: Option<String>,
}

impl Alert {
    /// As JSON (ids hex, times Unix ms).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "alert_id": self.alert_id,
            "at_ms": self.at_ms,
            "kind": self.kind,
            "severity": self.severity,
            "score": self.score,
            "lock_id": self.lock_id.map(|x| x.to_string()),
            "guest_id": self.guest_id.map(|x| x.to_string()),
            "detail": self.detail,
            "acknowledged_at_ms": self.acknowledged_at_ms,
            "acknowledged_by": self.acknowledged_by,
        })
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only those not acknowledged.
    pub unacknowledged_only: bool,
    /// At this lock.
    pub lock_id: Option<LockId>,
    /// About this guest.
    pub guest_id: Option<GuestId>,
    /// Raised at or after, Unix ms.
    pub since_ms: Option<u64>,
}

impl AlertFilter {
    fn where_clause(&self) -> (String, Vec<Value>) {
        let mut conds = vec!["1".to_owned()];
        let mut args = Vec::new();
        if self.unacknowledged_only {
            conds.push("acknowledged_at_ms IS NULL".to_owned());
        }
        if let Some(l) = self.lock_id {
            args.push(Value::Text(l.to_string()));
            conds.push(format!("lock_id = ?{}", args.len()));
        }
        if let Some(g) = self.guest_id {
            args.push(Value::Text(g.to_string()));
            conds.push(format!("guest_id = ?{}", args.len()));
        }
        if let Some(t) = self.since_ms {
            args.push(Value::Integer(int(t)));
            conds.push(format!("at_ms >= ?{}", args.len()));
        }
        (format!("WHERE {}", conds.join(" AND ")), args)
    }
}

const COLUMNS: &str = "alert_id, at_ms, kind, severity, score, lock_id, guest_id, detail_json, \
                       acknowledged_at_ms, acknowledged_by";

type RawAlert = (
    String,
    i64,
    String,
    String,
    f64,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    Option<String>,
);

fn finish(r: RawAlert) -> Result<Alert, IssuerdError> {
    let (alert_id, at, kind, severity, score, lock, guest, detail, acked, by) = r;
    Ok(Alert {
        lock_id: parse_id_opt("alerts", lock.as_deref())?,
        guest_id: parse_id_opt("alerts", guest.as_deref())?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        alert_id,
        at_ms: uint(at),
        kind,
        severity,
        score,
        acknowledged_at_ms: uint_opt(acked),
        acknowledged_by: by,
    })
}

impl Store {
    /// Stores an alert; `false` if one with its id is already stored.
    pub fn insert_alert(&mut self, a: &Alert) -> Result<bool, IssuerdError> {
        if a.alert_id.is_empty()
            || a.kind.is_empty()
            || a.severity.is_empty()
            || !a.score.is_finite()
        {
            return Err(IssuerdError::invalid(
                "alert",
                "alert_id, kind and severity must be non-empty and the score finite",
            ));
        }
        self.conn
            .execute(
                "INSERT INTO alerts (alert_id, at_ms, kind, severity, score, lock_id, guest_id,
                                     detail_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (alert_id) DO NOTHING",
                params![
                    a.alert_id,
                    int(a.at_ms),
                    a.kind,
                    a.severity,
                    a.score,
                    a.lock_id.map(|x| x.to_string()),
                    a.guest_id.map(|x| x.to_string()),
                    a.detail.to_string(),
                ],
            )
            .map(|n| n == 1)
            .map_err(self.err("store an alert"))
    }

    /// Alerts matching `filter`, newest first.
    pub fn alerts(
        &self,
        filter: &AlertFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Alert>, IssuerdError> {
        let (clause, mut args) = filter.where_clause();
        args.push(Value::Integer(i64::from(limit)));
        args.push(Value::Integer(int(offset)));
        let n = args.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts {clause} ORDER BY at_ms DESC, alert_id LIMIT ?{} OFFSET ?{n}",
            n - 1
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("list alerts"))?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| RawAlert::try_from(r))
            .map_err(self.err("list alerts"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list alerts"))?;
        rows.into_iter().map(finish).collect()
    }

    /// One alert.
    pub fn alert(&self, alert_id: &str) -> Result<Option<Alert>, IssuerdError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM alerts WHERE alert_id = ?1"),
                [alert_id],
                |r| RawAlert::try_from(r),
            )
            .optional()
            .map_err(self.err("read an alert"))?
            .map(finish)
            .transpose()
    }

    /// How many alerts match `filter`.
    pub fn alert_count(&self, filter: &AlertFilter) -> Result<u64, IssuerdError> {
        let (clause, args) = filter.where_clause();
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM alerts {clause}"),
                params_from_iter(args),
                |r| r.get::<_, i64>(0),
            )
            .map(uint)
            .map_err(self.err("count alerts"))
    }

    /// Acknowledges an alert (the first acknowledgement is kept).
    pub fn acknowledge_alert(
        &mut self,
        alert_id: &str,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let known: Option<Option<i64>> = tx
            .query_row(
                "SELECT acknowledged_at_ms FROM alerts WHERE alert_id = ?1",
                [alert_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(IssuerdError::db(&path, "look up an alert"))?;
        match known {
            None => return Err(IssuerdError::UnknownAlert(alert_id.to_owned())),
            Some(Some(_)) => return Ok(()),
            Some(None) => {}
        }
        tx.execute(
            "UPDATE alerts SET acknowledged_at_ms = ?2, acknowledged_by = ?3 WHERE alert_id = ?1",
            params![alert_id, int(now_ms), actor],
        )
        .map_err(IssuerdError::db(&path, "acknowledge an alert"))?;
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, "alert_acknowledged")
                .actor(actor)
                .detail(serde_json::json!({ "alert_id": alert_id })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn alert(id: &str, at: u64) -> Alert {
        Alert {
            alert_id: id.into(),
            at_ms: at,
            kind: "failure_burst".into(),
            severity: "warning".into(),
            score: 0.9,
            lock_id: Some(LockId([1; 16])),
            guest_id: None,
            detail: serde_json::json!({ "failures": 12 }),
            acknowledged_at_ms: None,
            acknowledged_by: None,
        }
    }

    #[test]
    fn alerts_are_stored_once_listed_newest_first_and_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        assert!(s.insert_alert(&alert("a1", 10)).unwrap());
        assert!(!s.insert_alert(&alert("a1", 10)).unwrap());
        assert!(s.insert_alert(&alert("a2", 20)).unwrap());
        let mut nan = alert("a3", 30);
        nan.score = f64::NAN;
        assert!(s.insert_alert(&nan).is_err());

        let open = AlertFilter {
            unacknowledged_only: true,
            ..Default::default()
        };
        let list = s.alerts(&open, 10, 0).unwrap();
        assert_eq!(
            list.iter().map(|a| a.alert_id.as_str()).collect::<Vec<_>>(),
            ["a2", "a1"]
        );
        assert_eq!(list[0].detail["failures"], 12);
        s.acknowledge_alert("a2", 50, "cli").unwrap();
        s.acknowledge_alert("a2", 60, "web:bob").unwrap();
        assert_eq!(s.alert_count(&open).unwrap(), 1);
        let all = s.alerts(&AlertFilter::default(), 10, 0).unwrap();
        assert_eq!(
            all[0].acknowledged_at_ms,
            Some(50),
            "the first acknowledgement stays"
        );
        assert_eq!(all[0].acknowledged_by.as_deref(), Some("cli"));
        assert!(matches!(
            s.acknowledge_alert("nope", 0, "cli"),
            Err(IssuerdError::UnknownAlert(_))
        ));
        let at_lock = AlertFilter {
            lock_id: Some(LockId([2; 16])),
            ..Default::default()
        };
        assert_eq!(s.alert_count(&at_lock).unwrap(), 0);
    }
}
