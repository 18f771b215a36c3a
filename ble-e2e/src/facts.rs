//! What one boot left in its run folder, parsed: marks, the daemons' JSON logs, the guests'
//! outcomes, the attacker's record and the decoded HCI trace.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::btmon::Trace;

/// A timestamped fact written by the scenario script (`mark NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Its name, e.g. `g1_end`.
    pub name: String,
    /// Unix time in milliseconds (the UML machine's clock is the host's).
    pub at_ms: i64,
    /// Free text (a failure's message).
    pub text: String,
}

/// One line of a daemon's JSON log (tracing-subscriber's `json().flatten_event(true)`).
#[derive(Debug, Clone, Default)]
pub struct LogLine {
    /// Unix time in milliseconds, when the line has a parseable timestamp.
    pub at_ms: Option<i64>,
    /// `INFO`, `DEBUG`, … (empty for a line that is not JSON).
    pub level: String,
    /// The event's message (the whole line when it is not JSON).
    pub message: String,
    /// The event's fields.
    pub fields: Map<String, Value>,
}

impl LogLine {
    /// Parses one line; a line that is not a JSON object is kept as its text.
    pub fn parse(line: &str) -> Self {
        let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(line) else {
            return Self {
                message: line.to_owned(),
                ..Self::default()
            };
        };
        let take = |obj: &mut Map<String, Value>, k: &str| match obj.remove(k) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let timestamp = take(&mut obj, "timestamp");
        Self {
            at_ms: parse_rfc3339_ms(&timestamp),
            level: take(&mut obj, "level"),
            message: take(&mut obj, "message"),
            fields: obj,
        }
    }

    /// A string field.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// An integer field.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.fields.get(key).and_then(Value::as_i64)
    }

    /// The rejection reason's name: the `reason` field up to its requirement
    /// (`"replay (LK-ADV-9)"` → `"replay"`).
    pub fn reason(&self) -> Option<&str> {
        self.str("reason")
            .map(|r| r.split_once(' ').map_or(r, |(name, _)| name))
    }

    /// Whether it was logged at or after `mark` (false without a timestamp).
    pub fn after(&self, at_ms: i64) -> bool {
        self.at_ms.is_some_and(|t| t >= at_ms)
    }
}

/// Unix milliseconds of an RFC 3339 timestamp.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One `latchkey-guest unlock` run.
#[derive(Debug, Clone, Default)]
pub struct GuestRun {
    /// Its exit status (`None`: it never finished).
    pub exit: Option<i32>,
    /// Its JSON outcome on stdout.
    pub outcome: Option<Value>,
}

impl GuestRun {
    /// `"unlocked"` or `"failed"`.
    pub fn outcome_name(&self) -> Option<&str> {
        self.outcome.as_ref()?.get("outcome")?.as_str()
    }

    /// The failure's message (failed runs).
    pub fn message(&self) -> Option<&str> {
        self.outcome.as_ref()?.get("message")?.as_str()
    }

    /// The grant that unlocked (`grant_id`, unlocked runs).
    pub fn grant_id(&self) -> Option<&str> {
        self.outcome.as_ref()?.get("grant_id")?.as_str()
    }

    /// The held grant the guest dropped for a fresh one, and the lock's answer to it
    /// (`fallback.dropped_grant`, `fallback.refused`).
    pub fn fallback(&self) -> Option<(&str, &str)> {
        let fb = self.outcome.as_ref()?.get("fallback")?;
        Some((
            fb.get("dropped_grant")?.as_str()?,
            fb.get("refused")?.as_str()?,
        ))
    }

    /// A step's duration in ms from the unlock report (`timings_ms.STEP`).
    pub fn timing_ms(&self, step: &str) -> Option<f64> {
        self.outcome
            .as_ref()?
            .get("timings_ms")?
            .get(step)?
            .as_f64()
    }

    /// First advertisement to the lock's answer: the whole unlock minus the grant.
    pub fn advert_to_unlock_ms(&self) -> Option<f64> {
        Some(self.timing_ms("total")? - self.timing_ms("grant")?)
    }
}

/// Everything a boot produced.
#[derive(Debug, Default)]
pub struct Facts {
    /// Whether init.sh reached its end (`done` exists).
    pub finished: bool,
    /// The scenario script's marks, in order.
    pub marks: Vec<Mark>,
    /// The lock's log.
    pub lock: Vec<LogLine>,
    /// The issuer's log.
    pub issuer: Vec<LogLine>,
    /// Guest runs by label (`g1`, `after_revoke`, …).
    pub guests: BTreeMap<String, GuestRun>,
    /// Guest ids by enrolled name (`g1` → hex).
    pub guest_ids: BTreeMap<String, String>,
    /// The replay attacker's record, if it ran.
    pub attacker: Option<Value>,
    /// bluetoothd's output.
    pub bluetoothd: String,
    /// The decoded HCI trace, if btmon wrote one and it could be decoded.
    pub trace: Option<Trace>,
}

impl Facts {
    /// Reads the run folder `dir`. `guest_ids` maps enrolled names to guest ids.
    pub fn collect(dir: &Path, guest_ids: BTreeMap<String, String>, trace: Option<Trace>) -> Self {
        let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
        let log = |name: &str| -> Vec<LogLine> {
            read(&format!("logs/{name}.log"))
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(LogLine::parse)
                .collect()
        };
        let mut guests = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(label) = name.strip_suffix(".exit") else {
                    continue;
                };
                let exit = read(&name).trim().parse().ok();
                let outcome = read(&format!("{label}.out"))
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str::<Value>(l).ok());
                guests.insert(label.to_owned(), GuestRun { exit, outcome });
            }
        }
        Self {
            finished: dir.join("done").exists(),
            marks: parse_marks(&read("marks")),
            lock: log("lock"),
            issuer: log("issuer"),
            guests,
            guest_ids,
            attacker: serde_json::from_str(&read("attacker.json")).ok(),
            bluetoothd: read("logs/bluetoothd.log"),
            trace,
        }
    }

    /// The first mark named `name`.
    pub fn mark(&self, name: &str) -> Option<&Mark> {
        self.marks.iter().find(|m| m.name == name)
    }

    /// The guest run labelled `label` (a default, never-finished run when absent).
    pub fn guest(&self, label: &str) -> GuestRun {
        self.guests.get(label).cloned().unwrap_or_default()
    }

    /// The lock's log lines whose message starts with `prefix`.
    pub fn lock_lines<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a LogLine> + 'a {
        self.lock
            .iter()
            .filter(move |l| l.message.starts_with(prefix))
    }

    /// The issuer's log lines whose message starts with `prefix`.
    pub fn issuer_lines<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a LogLine> + 'a {
        self.issuer
            .iter()
            .filter(move |l| l.message.starts_with(prefix))
    }

    /// The lock's unlocks.
    pub fn unlocks(&self) -> Vec<&LogLine> {
        self.lock_lines("UNLOCK").collect()
    }

    /// The lock's beacon rejections (first and repeated reports alike).
    pub fn beacon_rejections(&self) -> Vec<&LogLine> {
        self.lock_lines("beacon rejected").collect()
    }

    /// The lock's beacons that armed an authentication.
    pub fn beacons_armed(&self) -> Vec<&LogLine> {
        self.lock_lines("beacon armed").collect()
    }

    /// A failure mark's text, if the script failed.
    pub fn fatal(&self) -> Option<&str> {
        self.mark("fatal").map(|m| m.text.as_str())
    }
}

/// `NAME UNIX_MS [TEXT]` lines; malformed lines are skipped.
pub fn parse_marks(text: &str) -> Vec<Mark> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let name = parts.next()?.to_owned();
            let at_ms = parts.next()?.parse().ok()?;
            let text = parts.next().unwrap_or("").trim().to_owned();
            Some(Mark { name, at_ms, text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_log_lines_are_split_into_time_level_message_and_fields() {
        let l = LogLine::parse(
            r#"{"timestamp":"2026-11-25T03:50:12.345678Z","level":"DEBUG","message":"beacon rejected","reason":"rssi_too_low (LK-ADV-4)","rssi":-90,"target":"latchkey_lock::daemon"}"#,
        );
        assert_eq!(l.at_ms, Some(1_795_578_612_345));
        assert_eq!(l.level, "DEBUG");
        assert_eq!(l.message, "beacon rejected");
        assert_eq!(l.reason(), Some("rssi_too_low"));
        assert_eq!(l.int("rssi"), Some(-90));
        assert!(l.after(1_795_578_612_345) && !l.after(1_795_578_612_346));
    }

    #[test]
    fn a_line_that_is_not_json_is_kept_as_text() {
        let l = LogLine::parse("thread 'main' panicked at src/x.rs:1:1");
        assert_eq!(l.message, "thread 'main' panicked at src/x.rs:1:1");
        assert_eq!(l.at_ms, None);
        assert!(!l.after(0));
        assert_eq!(l.reason(), None);
    }

    #[test]
    fn marks_keep_their_text_and_skip_garbage() {
        let m = parse_marks("boot 100\nfatal 250 lock radio did not start\n\nbroken\nx y\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "fatal");
        assert_eq!(m[1].at_ms, 250);
        assert_eq!(m[1].text, "lock radio did not start");
    }

    #[test]
    fn a_run_folder_is_collected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::create_dir(d.join("logs")).expect("mkdir");
        fs::write(d.join("marks"), "boot 1\ng1_end 9\n").expect("write");
        fs::write(d.join("g1.exit"), "0\n").expect("write");
        fs::write(
            d.join("g1.out"),
            r#"{"outcome":"unlocked","timings_ms":{"grant":40.5,"total":300.0}}"#,
        )
        .expect("write");
        fs::write(d.join("x.exit"), "1\n").expect("write");
        fs::write(
            d.join("logs/lock.log"),
            "{\"timestamp\":\"2026-11-25T00:00:00Z\",\"level\":\"INFO\",\"message\":\"UNLOCK grant=a guest=b\",\"guest\":\"b\"}\n",
        )
        .expect("write");
        fs::write(d.join("done"), "").expect("write");
        let f = Facts::collect(d, BTreeMap::new(), None);
        assert!(f.finished);
        assert_eq!(f.guest("g1").exit, Some(0));
        assert_eq!(f.guest("g1").outcome_name(), Some("unlocked"));
        assert_eq!(f.guest("g1").advert_to_unlock_ms(), Some(259.5));
        assert_eq!(f.guest("x").exit, Some(1));
        assert_eq!(f.guest("x").outcome_name(), None);
        assert_eq!(f.guest("missing").exit, None);
        assert_eq!(f.unlocks().len(), 1);
        assert_eq!(f.unlocks()[0].str("guest"), Some("b"));
        assert_eq!(f.mark("g1_end").map(|m| m.at_ms), Some(9));
        assert!(f.fatal().is_none());
    }
}
