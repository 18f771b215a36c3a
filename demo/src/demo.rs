//! The one-process demo: an embedded broker, the issuer, a lock and a phone on one
//! simulated air. Enrollment by QR code and one real unlock with the timing of each step,
//! two attacks that must be refused, then the guest's revocation: the lock refuses its
//! grant, the issuer refuses it a new one, and the audit trail and an alert say so.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use latchkey::crypto::EnrollmentKey;
use latchkey::frame::EventKind;
use latchkey::{GrantId, GuestId, LockId, Reason};
use latchkey_guest::{EnrollmentBundle, GuestError, Guestd, UnlockReport};
use latchkey_issuer::anomaly::{Alert, AlertKind};
use latchkey_issuer::store::{AuditFilter, kinds};
use latchkey_issuer::{IssuerEvent, RevokedGrant};
use latchkey_lock::LockdHandle;
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::MqttUrl;
use latchkey_transport::radio::{SimAir, SimAirConfig, SimRadio};
use tokio::sync::broadcast;

use crate::attack::{Replayer, Sniffer};
use crate::error::DemoError;
use crate::site::{Endpoint, GuestSetup, Site};

/// What the demo can be asked to change.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// RSSI (dBm) at which every radio hears every other.
    pub rssi_dbm: i16,
    /// How long the wrong-key guest waits for a grant before giving up.
    pub grant_timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            rssi_dbm: -55,
            grant_timeout: Duration::from_secs(3),
        }
    }
}

/// The four outcomes the demo checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemoOutcome {
    /// The enrolled guest unlocked.
    pub unlocked: bool,
    /// The replayed beacon did not unlock.
    pub replay_refused: bool,
    /// The wrong-key guest got no grant, and the issuer said `bad_seal`.
    pub wrong_key_refused: bool,
    /// After its revocation the guest did not unlock: the lock refused its grant
    /// (`session_revoked`), the issuer a new one (`guest_revoked`), both audited.
    pub revoked_refused: bool,
}

impl DemoOutcome {
    /// True when all four are as expected.
    pub fn all_expected(&self) -> bool {
        self.unlocked && self.replay_refused && self.wrong_key_refused && self.revoked_refused
    }
}

const OK: &str = "\u{2714}";
const FAIL: &str = "\u{2718}";

fn short<T: ToString>(id: T) -> String {
    let s = id.to_string();
    format!("{}…", &s[..s.len().min(8)])
}

fn ms(d: Duration) -> String {
    format!("{:>8.1} ms", d.as_secs_f64() * 1000.0)
}

fn heading(n: u32, title: &str) {
    println!();
    println!("{n}. {title}");
    println!("{}", "─".repeat(title.chars().count() + 3));
}

/// Runs the demo, printing as it goes. Errors are infrastructure failures (a daemon that
/// does not start); protocol outcomes are in the returned [`DemoOutcome`].
pub async fn run(opts: &DemoOptions) -> Result<DemoOutcome, DemoError> {
    let t0 = Instant::now();
    println!("Latchkey demo: one process, an MQTT broker, the issuer, a lock and a phone");
    println!("on a simulated Bluetooth LE air. Every step goes through the real daemons.");
    println!();

    let broker = tokio::task::spawn_blocking(|| {
        EmbeddedBroker::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    })
    .await
    .map_err(|e| DemoError::Unexpected(format!("broker start task: {e}")))??;
    let url: MqttUrl = broker
        .url()
        .parse()
        .map_err(|e| DemoError::Unexpected(format!("broker URL: {e}")))?;
    println!("  broker  {url} (embedded, loopback, free port)");

    let air = SimAir::new(SimAirConfig {
        default_rssi: opts.rssi_dbm,
        ..SimAirConfig::default()
    });
    let mut site = Site::new(Endpoint::plain(url), air.clone())?;
    println!(
        "  issuer  key generated (latchkey-issuer keygen), SHA-256 {}",
        short(site.issuer_fingerprint())
    );
    site.start_issuer().await?;
    println!("          running; subscribed to latchkey/v1/requests/+ and locks/+/events");

    let lock = site.add_lock()?;
    let lock_options = site.lock_options(&lock)?;
    let threshold = lock_options.tunables.rssi_threshold_dbm;
    let company_id = lock_options.company_id;
    let lockd = site.start_lock_with(&lock, lock_options).await?;
    println!(
        "  lock    {} registered (add-lock), started from its lock.toml, subscribed",
        short(lock.lock_id)
    );
    let (guest, qr_png) = site.enroll_guest_by_qr(&[lock.lock_id], "Alice")?;
    println!(
        "  guest   {} \"Alice\" enrolled for that lock (enroll-guest --qr-png); the phone",
        short(guest.guest_id)
    );
    println!(
        "          read its enrollment bundle from the {}-byte QR code PNG (enroll --qr-image)",
        std::fs::metadata(&qr_png).map_or(0, |m| m.len())
    );
    println!(
        "  air     every radio hears every other at {} dBm; the lock accepts ≥ {threshold} dBm",
        opts.rssi_dbm
    );

    let mut outcome = DemoOutcome::default();

    // 1. The real unlock, with a sniffer listening.
    heading(1, "Unlock");
    let sniffer = Sniffer::start(&air, "attacker-sniffer", company_id).await?;
    // From now on: the lock may already refuse a repeat of the beacon while the phone is
    // still advertising it, and reports a refused beacon once.
    let beacon_events = site.issuer()?.subscribe();
    let mut unlocks = lockd.unlocks();
    // The phone waits for a grant as long as the wrong-key phone does (step 4 waits for
    // one that must not come).
    let mut guest_options = site.guest_options(&guest)?;
    guest_options.timeouts.grant = opts.grant_timeout;
    let mut guestd = site.guest_with(&guest, guest_options).await?;
    match guestd.unlock(lock.lock_id).await {
        Ok(report) => {
            print_report(&report);
            let lock_saw = tokio::time::timeout(Duration::from_secs(5), unlocks.recv()).await;
            match lock_saw {
                Ok(Ok(rec))
                    if rec.grant_id == report.grant_id && rec.guest_id == guest.guest_id =>
                {
                    println!(
                        "  {OK} UNLOCKED: the lock opened for guest {} with grant {}",
                        short(rec.guest_id),
                        short(rec.grant_id)
                    );
                    outcome.unlocked = true;
                }
                other => {
                    println!("  {FAIL} the guest reports success but the lock did not: {other:?}")
                }
            }
        }
        Err(e) => println!("  {FAIL} the unlock failed: {e}"),
    }
    let captured = sniffer.stop();

    // 2. Replay of the captured beacon.
    heading(2, "Attack: a third radio replays the captured beacon");
    outcome.replay_refused = replay_attack(
        &air,
        &lockd,
        beacon_events,
        company_id,
        lock.lock_id,
        captured,
    )
    .await?;

    // 3. A guest with the wrong enrollment key.
    heading(3, "Attack: a guest enrolled with the wrong key");
    let mallory = site.enroll_guest(&[lock.lock_id])?;
    let issuer_events = site.issuer()?.subscribe();
    outcome.wrong_key_refused =
        wrong_key_attack(&site, &mallory, issuer_events, lock.lock_id, opts).await?;

    // 4. Revocation of the guest that unlocked, which still holds its grant.
    heading(4, "Revocation: the operator revokes Alice, who tries again");
    outcome.revoked_refused = revocation(&site, &lockd, &mut guestd, &guest, lock.lock_id).await?;
    guestd.shutdown().await;

    println!();
    let _ = lockd.shutdown().await;
    site.shutdown().await;
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .map_err(|e| DemoError::Unexpected(format!("broker stop task: {e}")))?;
    let total = t0.elapsed();
    if outcome.all_expected() {
        println!(
            "{OK} All four outcomes as expected (unlocked; replay refused; wrong key refused; \
             revoked guest refused) in {:.1} s.",
            total.as_secs_f64()
        );
    } else {
        println!("{FAIL} Not as expected: {outcome:?}");
    }
    Ok(outcome)
}

fn print_report(r: &UnlockReport) {
    let t = &r.timings;
    let rows = [
        (
            "grant",
            t.grant,
            format!(
                "{} GrantRequest(s) over MQTT → LockGrant + GuestGrant",
                r.grant_requests
            ),
        ),
        (
            "advertise → connected",
            t.connect,
            "beacon on air, lock armed, GATT connection".to_owned(),
        ),
        ("select", t.select, format!("{} write(s)", r.select_tries)),
        (
            "challenge",
            t.challenge,
            "read + lock MAC verified by the phone".to_owned(),
        ),
        (
            "response → unlock",
            t.response,
            "HMAC response written, lock verified it".to_owned(),
        ),
        ("total", t.total, String::new()),
    ];
    for (name, d, note) in rows {
        let line = format!("  {name:<22}{}  {note}", ms(d));
        println!("{}", line.trim_end());
    }
}

async fn replay_attack(
    air: &SimAir,
    lockd: &LockdHandle,
    mut issuer_events: broadcast::Receiver<IssuerEvent>,
    company_id: u16,
    lock_id: LockId,
    captured: Vec<Vec<u8>>,
) -> Result<bool, DemoError> {
    let Some(beacon) = captured.last().cloned() else {
        println!("  {FAIL} the sniffer captured no beacon");
        return Ok(false);
    };
    println!(
        "  the sniffer heard {} distinct beacon(s) during the unlock; replaying the last:",
        captured.len()
    );
    println!("  {}", hex(&beacon));
    let unlocks_before = lockd.stats().unlocks;
    let rejections_before = lockd.stats().beacon_rejections;
    let mut stats = lockd.stats_watch();
    let replayer = Replayer::start(air, "attacker", company_id, beacon).await?;

    // Never keep the watch's borrow: the lock's task needs it to publish new stats.
    let refused = matches!(
        tokio::time::timeout(
            Duration::from_secs(5),
            stats.wait_for(|s| s.beacon_rejections > rejections_before),
        )
        .await,
        Ok(Ok(_))
    );
    if refused {
        // The lock reports non-noise rejections as signed events; show its reason.
        let reason = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match issuer_events.recv().await {
                    Ok(IssuerEvent::LockEvent(ev))
                        if ev.lock_id == lock_id && ev.kind == EventKind::Rejection =>
                    {
                        if let Some(r) = Reason::from_code(ev.reason).filter(is_beacon_reason) {
                            return Some(r);
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        match reason {
            Some(r) => println!(
                "  lock: beacon refused — {r}; the issuer received the lock's signed rejection event"
            ),
            None => println!(
                "  lock: beacon refused (a quiet reason — unknown_tag, stale/future step or rssi_too_low — \
                 only in the lock's debug log)"
            ),
        }
    } else {
        println!("  lock: the beacon was not refused within 5 s");
    }

    let select = replayer.try_select().await?;
    match select {
        Err(refusal) => println!(
            "  attacker connects and writes the Select for it: refused — {}",
            refusal
                .reason
                .map_or_else(|| refusal.att.to_string(), |r| r.to_string())
        ),
        Ok(()) => println!(
            "  attacker connects and writes the Select for it: ACCEPTED (it still cannot answer the challenge)"
        ),
    }
    replayer.stop().await?;
    let unlocks_after = lockd.stats().unlocks;
    let ok = unlocks_after == unlocks_before && select.is_err();
    if ok {
        println!("  {OK} REFUSED: no unlock");
    } else {
        println!(
            "  {FAIL} unlocks before {unlocks_before}, after {unlocks_after}; Select accepted: {}",
            select.is_ok()
        );
    }
    Ok(ok)
}

async fn wrong_key_attack(
    site: &Site,
    mallory: &crate::site::GuestSetup,
    mut issuer_events: broadcast::Receiver<IssuerEvent>,
    lock_id: LockId,
    opts: &DemoOptions,
) -> Result<bool, DemoError> {
    let mut options = site.guest_options(mallory)?;
    let real = options.bundle.clone();
    options.bundle = EnrollmentBundle::new(
        real.guest_id(),
        EnrollmentKey::from_bytes([0x5a; 32]),
        &real.broker_url().to_string(),
        real.locks().to_vec(),
        real.company_id(),
    )?;
    options.timeouts.grant = opts.grant_timeout;
    options.timeouts.grant_retry = opts.grant_timeout;
    println!(
        "  guest {} is enrolled, but this phone seals its GrantRequest with another 256-bit key",
        short(mallory.guest_id)
    );
    let mut guestd = site.guest_with(mallory, options).await?;
    let started = Instant::now();
    let result = guestd.unlock(lock_id).await;
    let waited = started.elapsed();
    guestd.shutdown().await;

    let refusal = first_refusal(&mut issuer_events, mallory.guest_id).await;
    match refusal {
        Some(r) => println!("  issuer: request refused — {r}"),
        None => println!("  issuer: no refusal seen"),
    }
    let no_grant = matches!(result, Err(GuestError::GrantTimeout { .. }));
    match &result {
        Err(GuestError::GrantTimeout { requests, .. }) => println!(
            "  guest: no grant after {requests} request(s) in {:.1} s, so nothing to advertise",
            waited.as_secs_f64()
        ),
        Err(e) => println!("  guest: {e}"),
        Ok(r) => println!("  guest: UNLOCKED with grant {}", short(r.grant_id)),
    }
    let ok = no_grant && refusal == Some(Reason::BadSeal);
    if ok {
        println!("  {OK} REFUSED: no grant, no unlock");
    } else {
        println!("  {FAIL} expected bad_seal at the issuer and no grant");
    }
    Ok(ok)
}

/// Revokes `guest` at the running issuer, waits for the lock to apply it, and has the guest
/// (still holding its grant) try again: the lock must refuse the revoked grant's beacon
/// (`session_revoked`, LK-REV-5), the issuer the fresh grant the guest then asks for
/// (`guest_revoked`), with audit entries for both and a `revoked_guest` alert.
async fn revocation(
    site: &Site,
    lockd: &LockdHandle,
    guestd: &mut Guestd<SimRadio>,
    guest: &GuestSetup,
    lock_id: LockId,
) -> Result<bool, DemoError> {
    let started_ms = latchkey_issuer::time::now().0;
    let mut events = site.issuer()?.subscribe();
    let applied_before = lockd.stats().revocations_applied;
    let revoked = site.issuer()?.revoke_guest(guest.guest_id).await?;
    println!(
        "  issuer: guest {} revoked; {} live grant(s) revoked, each as a signed Revocation to its lock",
        short(guest.guest_id),
        revoked.len()
    );
    let mut stats = lockd.stats_watch();
    let want = applied_before + revoked.len() as u64;
    let applied = matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            stats.wait_for(|s| s.revocations_applied >= want),
        )
        .await,
        Ok(Ok(_))
    );
    if applied {
        println!(
            "  lock: Revocation verified and applied; the session is gone, its tombstone kept"
        );
    } else {
        println!("  {FAIL} the lock did not apply the revocation within 10 s");
        return Ok(false);
    }

    let unlocks_before = lockd.stats().unlocks;
    let result = guestd.unlock(lock_id).await;
    match &result {
        Ok(r) => println!("  guest: UNLOCKED with grant {}", short(r.grant_id)),
        Err(e) => println!("  guest: {e}"),
    }
    let seen = revocation_evidence(&mut events, guest.guest_id, &revoked).await;
    match seen.lock_refusal {
        Some(grant) => println!(
            "  lock: beacon of revoked grant {} refused — session_revoked; signed event to the issuer",
            short(grant)
        ),
        None => println!("  {FAIL} no session_revoked event from the lock"),
    }
    match seen.issuer_refusal {
        Some(r) => println!("  issuer: the fresh GrantRequest refused — {r}; no grant"),
        None => println!("  {FAIL} the issuer refused no request of this guest"),
    }
    if let Some(a) = &seen.alert {
        println!(
            "  alert: {} ({}, score {:.1}) published on latchkey/v1/alerts",
            a.kind.name(),
            a.severity,
            a.score
        );
    }

    // What an operator sees: `latchkey-issuer audit --guest ID`.
    let store = site.registry()?;
    let filter = AuditFilter {
        guest_id: Some(guest.guest_id),
        ..AuditFilter::default()
    };
    let mut entries = store.audit(&filter, 50, 0)?;
    entries.reverse();
    println!("  audit trail of this guest (latchkey-issuer audit --guest):");
    for e in &entries {
        println!("    {}", e.line());
    }
    let audited = |kind: &str, reason: &str| {
        entries.iter().any(|e| {
            e.entry.at_ms >= started_ms
                && e.entry.kind == kind
                && e.entry.reason.as_deref() == Some(reason)
        })
    };
    let audited_both = audited(kinds::REJECTION, Reason::SessionRevoked.name())
        && audited(kinds::REQUEST_REFUSED, Reason::GuestRevoked.name());

    let ok = result.is_err()
        && lockd.stats().unlocks == unlocks_before
        && seen.lock_refusal.is_some()
        && seen.issuer_refusal == Some(Reason::GuestRevoked)
        && audited_both;
    if ok {
        println!("  {OK} REFUSED: no unlock, no new grant; both refusals in the audit trail");
    } else {
        println!(
            "  {FAIL} expected no unlock, session_revoked at the lock, guest_revoked at the issuer, \
             both audited (audited: {audited_both})"
        );
    }
    Ok(ok)
}

/// What the issuer reported after a revocation.
#[derive(Debug, Default)]
struct RevocationEvidence {
    /// The revoked grant whose beacon the lock refused (`session_revoked`).
    lock_refusal: Option<GrantId>,
    /// The issuer's refusal of the guest's request.
    issuer_refusal: Option<Reason>,
    /// The alert about it.
    alert: Option<Alert>,
}

/// Collects, for up to 5 s, the lock's `session_revoked` event of a revoked grant, the
/// issuer's refusal of `guest`'s request, and the `revoked_guest` alert.
async fn revocation_evidence(
    events: &mut broadcast::Receiver<IssuerEvent>,
    guest: GuestId,
    revoked: &[RevokedGrant],
) -> RevocationEvidence {
    let mut seen = RevocationEvidence::default();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while seen.lock_refusal.is_none() || seen.issuer_refusal.is_none() || seen.alert.is_none() {
            match events.recv().await {
                Ok(IssuerEvent::LockEvent(ev))
                    if ev.kind == EventKind::Rejection
                        && ev.reason == Reason::SessionRevoked.code()
                        && revoked.iter().any(|r| r.grant_id == ev.grant_id) =>
                {
                    seen.lock_refusal = Some(ev.grant_id);
                }
                Ok(IssuerEvent::RequestRefused { guest_id, reason }) if guest_id == guest => {
                    seen.issuer_refusal.get_or_insert(reason);
                }
                Ok(IssuerEvent::Alert(a))
                    if a.kind == AlertKind::RevokedGuest && a.guest_id == Some(guest) =>
                {
                    seen.alert.get_or_insert(a);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
    .await;
    seen
}

/// The reason of the first refused request from `guest` already delivered on `events`.
async fn first_refusal(
    events: &mut broadcast::Receiver<IssuerEvent>,
    guest: GuestId,
) -> Option<Reason> {
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match events.recv().await {
                Ok(IssuerEvent::RequestRefused { guest_id, reason }) if guest_id == guest => {
                    return Some(reason);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A reason produced by the beacon checks (spec §7.2.1, LK-ADV-*).
pub fn is_beacon_reason(r: &Reason) -> bool {
    r.requirements()
        .first()
        .is_some_and(|q| q.starts_with("LK-ADV-"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
