//! Pass/fail of each scenario, from the facts of its boot. Every check that fails is
//! reported (not only the first), with what was seen instead.

use crate::btmon::AdvDataSet;
use crate::facts::{Facts, GuestRun, LogLine};
use crate::scenario::{ATTACKER_DBM, FAR_DBM, NEAR_DBM};
use crate::world::LOCK_ID;

/// A scenario's outcome: failed checks (none means passed) and measured figures.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Each failed check, with what was seen.
    pub failures: Vec<String>,
    /// Measured figures: name and value in milliseconds (or a count).
    pub figures: Vec<(String, f64)>,
    /// Facts worth printing even on a pass (reasons seen, counts).
    pub notes: Vec<String>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    fn figure(&mut self, name: &str, value: Option<f64>) {
        if let Some(v) = value {
            self.figures.push((name.to_owned(), v));
        }
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks every scenario shares: the boot finished and no helper failed.
fn base(f: &Facts) -> Verdict {
    let mut v = Verdict::default();
    if let Some(text) = f.fatal() {
        v.failures
            .push(format!("the scenario script failed: {text}"));
    }
    v.check(f.finished, || {
        "the UML machine did not reach the end of its script (timeout or crash)".into()
    });
    let panics: Vec<&LogLine> = f
        .lock
        .iter()
        .chain(&f.issuer)
        .filter(|l| l.message.contains("panicked"))
        .collect();
    v.check(panics.is_empty(), || {
        format!("a daemon panicked: {}", panics[0].message)
    });
    // Our daemons log ERROR only for faults (a failed unlock action, a lost broker…);
    // the embedded broker's own ERROR lines about closed connections are not ours.
    let errors: Vec<&LogLine> = f
        .lock
        .iter()
        .chain(&f.issuer)
        .filter(|l| {
            l.level == "ERROR" && l.str("target").is_some_and(|t| t.starts_with("latchkey"))
        })
        .collect();
    v.check(errors.is_empty(), || {
        format!("a daemon logged an error: {}", errors[0].message)
    });
    // Every lock message verifies at the issuer (signature, window, replay: LK-EVT-1..4).
    let refused: Vec<&LogLine> = f.issuer_lines("lock event refused").collect();
    v.check(refused.is_empty(), || {
        format!(
            "the issuer refused {} message(s) of the lock: {}",
            refused.len(),
            reasons(&refused)
        )
    });
    v.figure(
        "boot to BlueZ ready (ms)",
        span(
            f.mark("boot").map(|m| m.at_ms),
            f.mark("stack_up").map(|m| m.at_ms),
        ),
    );
    v
}

fn span(from: Option<i64>, to: Option<i64>) -> Option<f64> {
    Some((to? - from?) as f64)
}

/// Checks that guest run `label` unlocked; records its timings.
fn unlocked(v: &mut Verdict, f: &Facts, label: &str) -> GuestRun {
    let g = f.guest(label);
    v.check(
        g.exit == Some(0) && g.outcome_name() == Some("unlocked"),
        || {
            format!(
                "guest {label} should have unlocked; exit {:?}, outcome {:?}: {}",
                g.exit,
                g.outcome_name(),
                g.message().unwrap_or("-")
            )
        },
    );
    v.figure(
        &format!("{label}: advertising start to unlock (ms)"),
        g.advert_to_unlock_ms(),
    );
    v.figure(
        &format!("{label}: grant over MQTT (ms)"),
        g.timing_ms("grant"),
    );
    v.figure(
        &format!("{label}: advertising to GATT connected (ms)"),
        g.timing_ms("connect"),
    );
    g
}

/// Checks that guest run `label` did not unlock (exit 1, a failed outcome).
fn refused(v: &mut Verdict, f: &Facts, label: &str) -> GuestRun {
    let g = f.guest(label);
    v.check(
        g.exit == Some(1) && g.outcome_name() == Some("failed"),
        || {
            format!(
                "guest {label} should have been refused (exit 1); exit {:?}, outcome {:?}",
                g.exit,
                g.outcome_name()
            )
        },
    );
    if let Some(m) = g.message() {
        v.notes.push(format!("{label}: {m}"));
    }
    g
}

fn guest_id<'a>(f: &'a Facts, name: &str) -> &'a str {
    f.guest_ids.get(name).map_or("?", String::as_str)
}

/// The lock's unlocks for guest `name`.
fn unlocks_of<'a>(f: &'a Facts, name: &str) -> Vec<&'a LogLine> {
    let id = guest_id(f, name);
    f.unlocks()
        .into_iter()
        .filter(|l| l.str("guest") == Some(id))
        .collect()
}

fn lock_beacon_to_unlock_ms(f: &Facts) -> Option<f64> {
    let armed = f.beacons_armed().first()?.at_ms;
    let unlock = f.unlocks().first()?.at_ms;
    span(armed, unlock)
}

fn reasons(lines: &[&LogLine]) -> String {
    let mut names: Vec<&str> = lines.iter().filter_map(|l| l.reason()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Scenario 1: a guest unlocks over real BLE.
pub fn unlock(f: &Facts) -> Verdict {
    let mut v = base(f);
    unlocked(&mut v, f, "g1");
    let armed = f.beacons_armed();
    v.check(
        armed
            .iter()
            .any(|l| l.int("rssi") == Some(i64::from(NEAR_DBM))),
        || {
            format!(
                "the lock never armed an authentication from a beacon heard at {NEAR_DBM} dBm \
                 (armed: {})",
                armed.len()
            )
        },
    );
    let unlocks = f.unlocks();
    v.check(unlocks.len() == 1 && unlocks_of(f, "g1").len() == 1, || {
        format!(
            "the lock should have unlocked once for g1; it logged {} unlocks",
            unlocks.len()
        )
    });
    v.figure(
        "lock: beacon armed to unlock (ms)",
        lock_beacon_to_unlock_ms(f),
    );
    // The heartbeat (spec §6.10): queued once MQTT was up, verified by the issuer.
    let queued: Vec<&LogLine> = f.lock_lines("lock status queued").collect();
    v.check(!queued.is_empty(), || {
        "the lock queued no LockStatus (`lock status queued`)".into()
    });
    let verified: Vec<&LogLine> = f
        .issuer_lines("lock status")
        .filter(|l| l.str("lock") == Some(LOCK_ID))
        .collect();
    v.check(!verified.is_empty(), || {
        "the issuer logged no verified LockStatus of the lock (`lock status`)".into()
    });
    v.figure(
        "first status: queued by the lock to verified by the issuer (ms)",
        span(
            queued.first().and_then(|l| l.at_ms),
            verified.first().and_then(|l| l.at_ms),
        ),
    );
    v
}

/// Scenario 2: beacons below the RSSI threshold.
pub fn rssi_too_low(f: &Facts) -> Verdict {
    let mut v = base(f);
    refused(&mut v, f, "g1");
    v.check(f.unlocks().is_empty(), || "the lock unlocked".into());
    v.check(f.beacons_armed().is_empty(), || {
        "a beacon below the threshold armed an authentication".into()
    });
    let low: Vec<&LogLine> = f
        .beacon_rejections()
        .into_iter()
        .filter(|l| l.reason() == Some("rssi_too_low"))
        .collect();
    v.check(
        low.iter()
            .any(|l| l.int("rssi") == Some(i64::from(FAR_DBM))),
        || {
            format!(
                "the lock never logged rssi_too_low for a beacon at {FAR_DBM} dBm (beacon \
                 rejections seen: {})",
                reasons(&f.beacon_rejections())
            )
        },
    );
    v.figure("beacons rejected as rssi_too_low", Some(low.len() as f64));
    v
}

/// Scenario 3: a revoked guest: its stored grant is refused at the lock (which names the
/// revoked session, LK-REV-5), and its fallback request for a fresh grant gets nothing.
pub fn revoked(f: &Facts) -> Verdict {
    let mut v = base(f);
    let g1 = unlocked(&mut v, f, "g1");
    let grant = g1.grant_id().unwrap_or("?");
    let revoked_at = f.mark("revoked").map(|m| m.at_ms);
    v.check(revoked_at.is_some(), || {
        "the revocation never reached the lock".into()
    });
    let revoked_at = revoked_at.unwrap_or(i64::MAX);
    v.check(f.lock_lines("revocation applied").count() >= 1, || {
        "the lock did not log `revocation applied`".into()
    });
    let late_unlocks = f
        .unlocks()
        .into_iter()
        .filter(|l| l.after(revoked_at))
        .count();
    v.check(late_unlocks == 0, || {
        format!("the lock unlocked {late_unlocks} time(s) after the revocation")
    });
    v.check(f.unlocks().len() == 1, || {
        format!(
            "expected exactly one unlock (before the revocation), saw {}",
            f.unlocks().len()
        )
    });
    // The lock tells the revoked session's beacons from noise, names its grant and
    // publishes the rejection, which the issuer verifies.
    let revoked_beacons: Vec<&LogLine> = f
        .beacon_rejections()
        .into_iter()
        .filter(|l| {
            l.after(revoked_at)
                && l.reason() == Some("session_revoked")
                && l.str("grant") == Some(grant)
        })
        .collect();
    v.check(!revoked_beacons.is_empty(), || {
        format!(
            "the lock logged no session_revoked beacon of grant {grant} after the revocation \
             (rejections seen: {})",
            reasons(&lock_rejections_after(f, revoked_at))
        )
    });
    let published = f
        .issuer_lines("lock event: rejection")
        .filter(|l| l.reason() == Some("session_revoked") && l.str("grant") == Some(grant))
        .count();
    v.check(published >= 1, || {
        format!("the issuer received no session_revoked rejection event of grant {grant}")
    });
    // The guest dropped the grant the lock refused and asked for a fresh one: none came.
    let after = refused(&mut v, f, "after_revoke");
    v.check(after.fallback() == Some((grant, "no_pending_auth")), || {
        format!(
            "the guest should have dropped grant {grant} (refused no_pending_auth) for a fresh \
             request; its fallback: {:?}",
            after.fallback()
        )
    });
    v.check(
        after.message().is_some_and(|m| m.contains("no grant")),
        || {
            format!(
                "the revoked guest's fresh request should end without a grant; it ended with: {}",
                after.message().unwrap_or("-")
            )
        },
    );
    let g1_id = guest_id(f, "g1");
    let refusals: Vec<&LogLine> = f
        .issuer_lines("grant request refused")
        .filter(|l| l.after(revoked_at) && l.str("guest") == Some(g1_id))
        .collect();
    v.check(
        refusals.iter().any(|l| l.reason() == Some("guest_revoked")),
        || {
            format!(
                "the issuer did not refuse the revoked guest's request as guest_revoked \
                 (refusals: {})",
                reasons(&refusals)
            )
        },
    );
    v.notes.push(format!(
        "lock rejections after the revocation: {}",
        reasons(&lock_rejections_after(f, revoked_at))
    ));
    v.notes.push(format!(
        "issuer refusals after the revocation: {}",
        reasons(&refusals)
    ));
    v.figure(
        "distinct revoked-session beacons named by the lock",
        Some(revoked_beacons.len() as f64),
    );
    v
}

fn lock_rejections_after(f: &Facts, at_ms: i64) -> Vec<&LogLine> {
    f.lock
        .iter()
        .filter(|l| l.after(at_ms) && l.reason().is_some())
        .collect()
}

/// Scenario 4: beacons replayed by a third controller after the guest left.
pub fn replay(f: &Facts) -> Verdict {
    let mut v = base(f);
    unlocked(&mut v, f, "g1");
    let left = f.mark("g1_end").map_or(i64::MAX, |m| m.at_ms);
    let captured = attacker_count(f, "captured");
    let replayed = attacker_count(f, "replayed");
    v.check(captured > 0, || "the attacker recorded no beacon".into());
    v.check(replayed > 0, || "the attacker re-advertised nothing".into());
    let attacker_rssi = Some(i64::from(ATTACKER_DBM));
    let heard: Vec<&LogLine> = f
        .beacon_rejections()
        .into_iter()
        .filter(|l| l.after(left) && l.int("rssi") == attacker_rssi)
        .collect();
    v.check(!heard.is_empty(), || {
        format!(
            "the lock logged no rejection of a beacon at the attacker's {ATTACKER_DBM} dBm after \
             the guest left: the replay was not heard, so nothing was shown"
        )
    });
    let armed_by_attacker = f
        .beacons_armed()
        .into_iter()
        .filter(|l| l.int("rssi") == attacker_rssi)
        .count();
    v.check(armed_by_attacker == 0, || {
        format!("{armed_by_attacker} replayed beacon(s) armed an authentication")
    });
    let late = f.unlocks().into_iter().filter(|l| l.after(left)).count();
    v.check(late == 0 && f.unlocks().len() == 1, || {
        format!(
            "expected one unlock, before the guest left; saw {} ({late} after)",
            f.unlocks().len()
        )
    });
    v.notes.push(format!(
        "replayed beacons rejected for: {} ({} reports)",
        reasons(&heard),
        heard.len()
    ));
    v.figure("replayed beacons recorded", Some(captured as f64));
    v.figure(
        "replayed reports rejected by the lock",
        Some(heard.len() as f64),
    );
    v
}

fn attacker_count(f: &Facts, key: &str) -> usize {
    f.attacker
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|x| x.as_array())
        .map_or(0, Vec::len)
}

/// Scenario 7: lockout as a lever. An attacker holding the lock's link steals two of the
/// guest's pending authentications and fails them; the lock locks the guest out, refuses
/// its beacons `locked_out` (a fresh grant too), reports both ends of the lockout, and lets
/// the guest in once it ended.
pub fn lockout(f: &Facts) -> Verdict {
    let mut v = base(f);
    let g1 = guest_id(f, "g1");
    let stolen = attacker_count(f, "stolen");
    let answers: Vec<&str> = f
        .attacker
        .as_ref()
        .and_then(|a| a.get("answers"))
        .and_then(|x| x.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let bad_mac = format!("att 0x{:02x}", BAD_RESPONSE_MAC_ATT);
    v.check(stolen >= 2, || {
        format!("the attacker stole {stolen} pending authentication(s), not 2")
    });
    v.check(
        answers.len() >= 2 && answers.iter().all(|a| *a == bad_mac),
        || format!("the lock should have answered each forged Response {bad_mac}: {answers:?}"),
    );
    // LK-LCK-1: the lock locked that guest out, for the failure's reason.
    let started: Vec<&LogLine> = f
        .lock_lines("guest locked out")
        .filter(|l| l.str("guest") == Some(g1))
        .collect();
    v.check(
        started.len() == 1 && started[0].reason() == Some("bad_response_mac"),
        || {
            format!(
                "the lock should have locked g1 out once for bad_response_mac; it logged {} \
                 lockout(s) ({})",
                started.len(),
                reasons(&started)
            )
        },
    );
    let locked_at = started.first().and_then(|l| l.at_ms).unwrap_or(i64::MAX);
    let ended_at = f.mark("lockout_ended").map_or(i64::MAX, |m| m.at_ms);
    // LK-LCK-2: while locked out, its beacons never arm, whatever the grant.
    let locked_out: Vec<&LogLine> = f
        .beacon_rejections()
        .into_iter()
        .filter(|l| l.after(locked_at) && l.reason() == Some("locked_out"))
        .collect();
    v.check(!locked_out.is_empty(), || {
        "the lock logged no locked_out beacon of the locked-out guest".into()
    });
    let locked = refused(&mut v, f, "locked");
    v.check(locked.fallback().is_some(), || {
        "the locked-out guest should have tried a fresh grant too (fallback)".into()
    });
    let early = f
        .unlocks()
        .into_iter()
        .filter(|l| !l.after(ended_at))
        .count();
    v.check(early == 0, || {
        format!("the lock unlocked {early} time(s) before the lockout ended")
    });
    // LK-LCK-3: it ended by itself; both ends reached the issuer as verified events.
    let ended: Vec<&LogLine> = f
        .lock_lines("lockout ended")
        .filter(|l| l.str("guest") == Some(g1))
        .collect();
    v.check(ended.len() == 1, || {
        format!(
            "the lock should have ended the lockout once; it did {} times",
            ended.len()
        )
    });
    for kind in ["lockout", "lockout_ended"] {
        let n = f
            .issuer_lines(&format!("lock event: {kind}"))
            .filter(|l| l.str("kind") == Some(kind))
            .count();
        v.check(n == 1, || {
            format!("the issuer should have verified one `{kind}` event; it logged {n}")
        });
    }
    unlocked(&mut v, f, "after");
    v.check(unlocks_of(f, "g1").len() == 1, || {
        format!(
            "the lock should have unlocked once, after the lockout; it did {} times",
            unlocks_of(f, "g1").len()
        )
    });
    v.figure(
        "lockout: started to ended at the lock (ms)",
        span(
            started.first().and_then(|l| l.at_ms),
            ended.first().and_then(|l| l.at_ms),
        ),
    );
    v.figure(
        "beacon reports refused locked_out",
        Some(locked_out.len() as f64),
    );
    v.notes.push(format!("attacker's answers: {answers:?}"));
    v
}

/// ATT code of `bad_response_mac` (spec §5.8).
const BAD_RESPONSE_MAC_ATT: u8 = 0x87;

/// Scenario 5: two guests at once.
pub fn two_guests(f: &Facts) -> Verdict {
    let mut v = base(f);
    unlocked(&mut v, f, "g1");
    unlocked(&mut v, f, "g2");
    for name in ["g1", "g2"] {
        let n = unlocks_of(f, name).len();
        v.check(n == 1, || {
            format!("the lock should have unlocked once for {name}; it did {n} times")
        });
    }
    v
}

/// Scenario 6: the beacon advertisement as BlueZ put it on the air, as built for
/// production (non-connectable, no Flags) and in the worst case with the Flags AD.
pub fn advert_flags(f: &Facts) -> Verdict {
    let mut v = base(f);
    unlocked(&mut v, f, "plain");
    unlocked(&mut v, f, "flags");
    let unlocks = f.unlocks().len();
    v.check(unlocks == 2, || {
        format!("the lock should have unlocked for both beacons; it did {unlocks} times")
    });
    for needle in [
        "too long",
        "InvalidLength",
        "Failed to register advertisement",
    ] {
        v.check(!f.bluetoothd.contains(needle), || {
            format!("bluetoothd logged {needle:?}")
        });
    }
    let Some(trace) = &f.trace else {
        v.failures
            .push("no HCI trace decoded by btmon (logs/btmon.log)".into());
        return v;
    };
    let company = format!("({})", crate::world::COMPANY_ID);
    let (flagged, plain): (Vec<AdvDataSet>, Vec<AdvDataSet>) = trace
        .adv_data_sets()
        .into_iter()
        .filter(|s| s.index == 1 && s.text.contains(&company))
        .partition(AdvDataSet::has_flags);
    v.check(!plain.is_empty(), || {
        "no beacon without Flags (the production one) was set on hci1".into()
    });
    v.check(!flagged.is_empty(), || {
        "no beacon with the Flags AD was set on hci1 (--beacon-flags)".into()
    });
    for s in plain.iter().chain(&flagged) {
        v.check(s.data_len.is_some_and(|n| n <= 31), || {
            format!(
                "advertising data longer than a legacy PDU: {:?} bytes",
                s.data_len
            )
        });
        v.check(s.status_ok, || {
            format!("the controller refused the advertising data:\n{}", s.text)
        });
        v.check(s.legacy_pdu, || {
            format!("the beacon is not sent as a legacy PDU:\n{}", s.text)
        });
        v.check(s.interval_ms.is_some_and(|ms| ms <= 100.0), || {
            format!(
                "the beacon's advertising interval is {:?} ms, not the spec's 100 ms or less \
                 (BlueZ 5.66 applies MinInterval/MaxInterval only with bluetoothd --experimental)",
                s.interval_ms
            )
        });
    }
    // The size accounting of spec §5.2: the production beacon leaves room for the Flags.
    v.check(
        plain
            .iter()
            .all(|s| s.data_len.is_some_and(|n| n + 3 <= 31)),
        || "the production beacon leaves no room for a 3-byte Flags AD".into(),
    );
    let lens = |sets: &[AdvDataSet]| {
        let mut l: Vec<usize> = sets.iter().filter_map(|s| s.data_len).collect();
        l.dedup();
        format!("{l:?}")
    };
    v.notes.push(format!(
        "beacon data on hci1: {} sets without Flags, lengths {}; {} with Flags, lengths {}",
        plain.len(),
        lens(&plain),
        flagged.len(),
        lens(&flagged)
    ));
    if let Some(ms) = plain.first().and_then(|s| s.interval_ms) {
        v.figures
            .push(("beacon advertising interval (ms)".into(), ms));
    }
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::facts::{Mark, parse_marks};

    fn line(at_ms: i64, message: &str, fields: serde_json::Value) -> LogLine {
        LogLine {
            at_ms: Some(at_ms),
            level: "INFO".into(),
            message: message.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn guest_ok() -> GuestRun {
        GuestRun {
            exit: Some(0),
            outcome: Some(json!({"outcome":"unlocked","timings_ms":{"grant":50.0,"total":800.0}})),
        }
    }

    fn guest_failed(message: &str) -> GuestRun {
        GuestRun {
            exit: Some(1),
            outcome: Some(json!({"outcome":"failed","reason":null,"message":message})),
        }
    }

    fn facts() -> Facts {
        Facts {
            finished: true,
            marks: parse_marks("boot 0\nstack_up 900\ng1_start 1000\ng1_end 2000\n"),
            guest_ids: BTreeMap::from([("g1".into(), "aa".into()), ("g2".into(), "bb".into())]),
            ..Facts::default()
        }
    }

    /// Both guests unlocked, one unlock each at the lock.
    fn two_unlocked() -> Facts {
        let mut f = facts();
        f.guests.insert("g1".into(), guest_ok());
        f.guests.insert("g2".into(), guest_ok());
        f.lock = vec![
            line(1500, "UNLOCK", json!({"guest": "aa"})),
            line(1600, "UNLOCK", json!({"guest": "bb"})),
        ];
        f
    }

    /// The lock's status, queued at 950 and verified by the issuer at 960.
    fn with_status(f: &mut Facts) {
        f.lock
            .push(line(950, "lock status queued", json!({"reasons": 0})));
        f.issuer.push(line(
            960,
            "lock status",
            json!({"lock": LOCK_ID, "uptime_s": 0}),
        ));
    }

    #[test]
    fn unlock_passes_with_an_armed_beacon_one_unlock_and_a_verified_status() {
        let mut f = facts();
        f.guests.insert("g1".into(), guest_ok());
        f.lock = vec![
            line(1100, "beacon armed an authentication", json!({"rssi": -58})),
            line(1500, "UNLOCK grant=x guest=aa", json!({"guest": "aa"})),
        ];
        with_status(&mut f);
        let v = unlock(&f);
        assert!(v.passed(), "{:?}", v.failures);
        let fig: BTreeMap<_, _> = v.figures.iter().cloned().collect();
        assert_eq!(fig["g1: advertising start to unlock (ms)"], 750.0);
        assert_eq!(fig["lock: beacon armed to unlock (ms)"], 400.0);
        assert_eq!(fig["boot to BlueZ ready (ms)"], 900.0);
        assert_eq!(
            fig["first status: queued by the lock to verified by the issuer (ms)"],
            10.0
        );
    }

    #[test]
    fn unlock_fails_without_a_status_or_with_a_refused_lock_message() {
        let mut f = facts();
        f.guests.insert("g1".into(), guest_ok());
        f.lock = vec![
            line(1100, "beacon armed an authentication", json!({"rssi": -58})),
            line(1500, "UNLOCK grant=x guest=aa", json!({"guest": "aa"})),
        ];
        let v = unlock(&f);
        assert_eq!(v.failures.len(), 2, "{:#?}", v.failures);
        assert!(v.failures[0].contains("queued no LockStatus"));
        assert!(v.failures[1].contains("no verified LockStatus"));
        with_status(&mut f);
        // A status of another lock does not count; a refused message fails any scenario.
        f.issuer[0].fields.insert("lock".into(), json!("00"));
        f.issuer.push(line(
            970,
            "lock event refused",
            json!({"reason": "stale_event (LK-EVT-3)"}),
        ));
        let v = unlock(&f);
        assert_eq!(v.failures.len(), 2, "{:#?}", v.failures);
        assert!(v.failures[0].contains("stale_event"), "{:?}", v.failures);
    }

    #[test]
    fn unlock_fails_on_every_missing_piece_at_once() {
        let mut f = facts();
        f.finished = false;
        f.guests.insert("g1".into(), guest_failed("timeout"));
        f.lock = vec![line(
            1100,
            "beacon armed an authentication",
            json!({"rssi": 127}),
        )];
        with_status(&mut f);
        let v = unlock(&f);
        assert_eq!(v.failures.len(), 4, "{:#?}", v.failures);
        assert!(v.failures[0].contains("did not reach the end"));
        assert!(v.failures[1].contains("should have unlocked"));
        assert!(v.failures[2].contains("-58 dBm"));
        assert!(v.failures[3].contains("0 unlocks"));
    }

    #[test]
    fn a_script_failure_and_a_panic_fail_any_scenario() {
        let mut f = facts();
        f.guests.insert("g1".into(), guest_ok());
        f.marks.push(Mark {
            name: "fatal".into(),
            at_ms: 5,
            text: "lock radio did not start".into(),
        });
        f.lock = vec![line(1, "thread 'tokio' panicked at x.rs", json!({}))];
        let v = two_guests(&f);
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("lock radio did not start"))
        );
        assert!(v.failures.iter().any(|m| m.contains("panicked")));
    }

    #[test]
    fn our_error_lines_fail_a_scenario_the_brokers_do_not() {
        let mut f = two_unlocked();
        let mut broker = line(
            1,
            "no-connection id 1 is already gone",
            json!({"target": "rumqttd::router"}),
        );
        broker.level = "ERROR".into();
        f.issuer.push(broker);
        assert!(two_guests(&f).passed());
        let mut ours = line(
            2,
            "unlock action failed to start",
            json!({"target": "latchkey_lock::daemon"}),
        );
        ours.level = "ERROR".into();
        f.lock.push(ours);
        let v = two_guests(&f);
        assert_eq!(
            v.failures,
            ["a daemon logged an error: unlock action failed to start"]
        );
    }

    #[test]
    fn rssi_too_low_needs_the_reason_at_the_far_rssi_and_no_unlock() {
        let mut f = facts();
        f.guests
            .insert("g1".into(), guest_failed("not selected: no_pending_auth"));
        f.lock = vec![line(
            1100,
            "beacon rejected",
            json!({"reason": "rssi_too_low (LK-ADV-4)", "rssi": -90}),
        )];
        assert!(rssi_too_low(&f).passed());
        f.lock.push(line(1200, "UNLOCK", json!({"guest": "aa"})));
        f.lock[0].fields.insert("rssi".into(), json!(-80));
        let v = rssi_too_low(&f);
        assert_eq!(v.failures.len(), 2, "{:#?}", v.failures);
    }

    #[test]
    fn replay_needs_the_attackers_reports_rejected_after_the_guest_left() {
        let mut f = facts();
        f.guests.insert("g1".into(), guest_ok());
        f.attacker = Some(json!({"captured": ["0a"], "replayed": ["0a"]}));
        f.lock = vec![
            line(1100, "beacon armed an authentication", json!({"rssi": -58})),
            line(1500, "UNLOCK", json!({"guest": "aa"})),
            line(
                2500,
                "beacon rejected",
                json!({"reason": "replay (LK-ADV-9)", "rssi": -61}),
            ),
        ];
        let v = replay(&f);
        assert!(v.passed(), "{:?}", v.failures);
        assert!(v.notes[0].contains("replay"), "{:?}", v.notes);
        // Heard only before the guest left: nothing shown.
        f.lock[2].at_ms = Some(1900);
        assert!(!replay(&f).passed());
        // A replayed beacon that armed an authentication, and a late unlock.
        f.lock[2].at_ms = Some(2500);
        f.lock.push(line(
            2600,
            "beacon armed an authentication",
            json!({"rssi": -61}),
        ));
        f.lock.push(line(2700, "UNLOCK", json!({"guest": "aa"})));
        assert_eq!(replay(&f).failures.len(), 2);
    }

    fn guest_unlocked_with(grant: &str) -> GuestRun {
        GuestRun {
            exit: Some(0),
            outcome: Some(
                json!({"outcome":"unlocked","grant_id":grant,"fallback":null,
                "timings_ms":{"grant":50.0,"total":800.0}}),
            ),
        }
    }

    /// The `revoked` boot as it should go: g1 unlocks with grant `gg`, the lock applies the
    /// revocation and names the revoked session's beacon, the issuer verifies that event
    /// and refuses the fallback request.
    fn revoked_facts() -> Facts {
        let mut f = facts();
        f.marks.extend(parse_marks("revoked 3000\n"));
        f.guests.insert("g1".into(), guest_unlocked_with("gg"));
        f.guests.insert(
            "after_revoke".into(),
            GuestRun {
                exit: Some(1),
                outcome: Some(json!({"outcome":"failed","reason":null,
                    "message":"the lock did not accept the grant held for lock x \
                        (no_pending_auth), so it was dropped and a fresh grant requested: \
                        no grant for lock x arrived within 6 s",
                    "fallback":{"dropped_grant":"gg","refused":"no_pending_auth"}})),
            },
        );
        f.lock = vec![
            line(1500, "UNLOCK", json!({"guest": "aa"})),
            line(2900, "revocation applied", json!({})),
            line(
                3400,
                "beacon rejected",
                json!({"reason": "session_revoked (LK-REV-5)", "grant": "gg", "rssi": -58}),
            ),
            line(
                3500,
                "select rejected",
                json!({"reason": "no_pending_auth (LK-SEL-1)"}),
            ),
        ];
        f.issuer = vec![
            line(
                3450,
                "lock event: rejection",
                json!({"reason": "session_revoked (LK-REV-5)", "grant": "gg"}),
            ),
            line(
                4000,
                "grant request refused",
                json!({"reason": "guest_revoked (LK-ISS-3)", "guest": "aa"}),
            ),
        ];
        f
    }

    #[test]
    fn revoked_needs_the_named_beacon_the_fallback_and_the_issuers_refusal() {
        let f = revoked_facts();
        let v = revoked(&f);
        assert!(v.passed(), "{:?}", v.failures);
        assert!(v.notes[1].contains("session_revoked"), "{:?}", v.notes);
    }

    #[test]
    fn revoked_fails_on_each_missing_piece() {
        // The lock named no revoked beacon (say, unknown_tag after a restart without state),
        // the issuer got no event, the guest did not fall back, the issuer refused nothing
        // and the lock unlocked again.
        let mut f = revoked_facts();
        f.lock[2]
            .fields
            .insert("reason".into(), json!("unknown_tag (LK-ADV-3)"));
        f.issuer.clear();
        f.guests.insert(
            "after_revoke".into(),
            guest_failed("the lock refused the Select write: no_pending_auth"),
        );
        f.lock.push(line(3600, "UNLOCK", json!({"guest": "aa"})));
        let v = revoked(&f);
        assert_eq!(v.failures.len(), 7, "{:#?}", v.failures);
        assert!(v.failures.iter().any(|m| m.contains("unknown_tag")));
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("should have dropped grant gg"))
        );
    }

    /// The `lockout` boot as it should go (g1 is guest `aa`).
    fn lockout_facts() -> Facts {
        let mut f = facts();
        f.marks
            .extend(parse_marks("locked_out 3000\nlockout_ended 14000\n"));
        f.attacker = Some(
            json!({"stolen": ["0a", "0b"], "answers": ["att 0x87", "att 0x87"],
            "missed": []}),
        );
        for run in ["stolen1", "stolen2"] {
            f.guests.insert(
                run.into(),
                guest_failed("no lock advertising the Latchkey service"),
            );
        }
        f.guests.insert(
            "locked".into(),
            GuestRun {
                exit: Some(1),
                outcome: Some(json!({"outcome":"failed","message":"… no_pending_auth",
                    "fallback":{"dropped_grant":"gg","refused":"no_pending_auth"}})),
            },
        );
        f.guests.insert("after".into(), guest_ok());
        let reason = |r: &str| json!({"reason": r, "guest": "aa"});
        f.lock = vec![
            line(
                2900,
                "guest locked out after repeated failed handshakes",
                reason("bad_response_mac (LK-RSP-6)"),
            ),
            line(3500, "beacon rejected", reason("locked_out (LK-LCK-2)")),
            line(12900, "lockout ended", json!({"guest": "aa"})),
            line(15000, "UNLOCK grant=gg guest=aa", json!({"guest": "aa"})),
        ];
        f.issuer = vec![
            line(2950, "lock event: lockout", json!({"kind": "lockout"})),
            line(
                12950,
                "lock event: lockout_ended",
                json!({"kind": "lockout_ended"}),
            ),
        ];
        f
    }

    #[test]
    fn lockout_needs_the_stolen_handshakes_both_ends_reported_and_the_late_unlock() {
        let v = lockout(&lockout_facts());
        assert!(v.passed(), "{:?}", v.failures);
        let fig: BTreeMap<_, _> = v.figures.iter().cloned().collect();
        assert_eq!(fig["lockout: started to ended at the lock (ms)"], 10_000.0);
    }

    #[test]
    fn lockout_fails_when_the_guest_gets_in_early_or_an_end_goes_unreported() {
        let mut f = lockout_facts();
        // An unlock while locked out, no lockout_ended event, a refusal for another reason.
        f.lock.push(line(4000, "UNLOCK", json!({"guest": "aa"})));
        f.issuer.pop();
        f.lock[1]
            .fields
            .insert("reason".into(), json!("replay (LK-ADV-7)"));
        let v = lockout(&f);
        assert_eq!(v.failures.len(), 4, "{:#?}", v.failures);
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("before the lockout ended"))
        );
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("`lockout_ended` event"))
        );
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("no locked_out beacon"))
        );
        assert!(
            v.failures
                .iter()
                .any(|m| m.contains("unlocked once, after"))
        );
    }

    #[test]
    fn two_guests_need_one_unlock_each() {
        let mut f = two_unlocked();
        assert!(two_guests(&f).passed());
        f.lock.pop();
        assert_eq!(two_guests(&f).failures.len(), 1);
    }
}
