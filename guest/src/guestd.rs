//! The guest daemon: one [`Guest`] core, one broker connection, one radio.

use std::fmt;
use std::sync::Arc;

use latchkey::guest::GuestGrantInfo;
use latchkey::{Guest, GuestConfig, GuestId, LockId, Reason, UnixMillis};
use latchkey_transport::mqtt::ConnectionState;
use latchkey_transport::radio::GuestRadio;
use rand_chacha::ChaCha20Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ble::Attempt;
use crate::bundle::EnrollmentBundle;
use crate::clock::{SystemClock, WallClock};
use crate::error::{GuestError, UnlockStep};
use crate::grant::{GrantChannel, GuestStats, Obtained};
use crate::grant_store::GrantStore;
use crate::options::{GuestOptions, Timeouts};
use crate::report::{GrantFallback, StepTimings, UnlockReport};
use crate::rng;

/// A guest (phone) daemon: gets grants over MQTT and unlocks over BLE.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use latchkey_guest::{EnrollmentBundle, GuestOptions, Guestd};
/// use latchkey_transport::radio::SimAir;
///
/// let bundle = EnrollmentBundle::load("guest-state/enrollment.json")?;
/// let lock = bundle.locks()[0];
/// let air = SimAir::default();
/// let mut guest = Guestd::new(GuestOptions::new(bundle), air.radio("phone")).await?;
/// let report = guest.unlock(lock).await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct Guestd<R: GuestRadio> {
    guest: Guest,
    radio: R,
    channel: GrantChannel,
    rng: ChaCha20Rng,
    clock: Arc<dyn WallClock>,
    bundle: EnrollmentBundle,
    company_id: u16,
    grant_validity_s: u32,
    timeouts: Timeouts,
}

impl<R: GuestRadio> Guestd<R> {
    /// Builds the daemon and connects to the broker (waiting up to
    /// `timeouts.mqtt_connect` for it), with the system clock and an OS-seeded CSPRNG.
    pub async fn new(opts: GuestOptions, radio: R) -> Result<Self, GuestError> {
        Self::with_env(opts, radio, Arc::new(SystemClock), rng::os_seeded()?).await
    }

    /// Like [`Guestd::new`] with an injected clock and CSPRNG (tests, simulations).
    pub async fn with_env(
        opts: GuestOptions,
        radio: R,
        clock: Arc<dyn WallClock>,
        rng: ChaCha20Rng,
    ) -> Result<Self, GuestError> {
        check(&opts)?;
        let bundle = opts.bundle;
        let mut cfg = GuestConfig::new(bundle.guest_id(), bundle.enrollment_key().clone());
        cfg.company_id = opts.company_id;
        let mut guest = Guest::new(cfg).map_err(|e| GuestError::InvalidConfig(e.to_string()))?;
        let store = match &opts.grant_dir {
            Some(dir) => Some(GrantStore::open(dir).map_err(|e| {
                GuestError::InvalidConfig(format!("grant folder {}: {e}", dir.display()))
            })?),
            None => None,
        };
        if let Some(store) = &store {
            restore_grants(&mut guest, store, clock.now());
        }
        let channel =
            GrantChannel::connect(opts.mqtt, &guest, &opts.topic_prefix, &opts.timeouts, store)
                .await?;
        info!(guest = %bundle.guest_id(), "guest ready");
        Ok(Self {
            guest,
            radio,
            channel,
            rng,
            clock,
            bundle,
            company_id: opts.company_id,
            grant_validity_s: opts.grant_validity_s,
            timeouts: opts.timeouts,
        })
    }

    /// Unlocks `lock`: grant (reused or requested), then the BLE exchange. Advertising
    /// stops and the GATT link closes whatever the outcome.
    pub async fn unlock(&mut self, lock: LockId) -> Result<UnlockReport, GuestError> {
        self.unlock_until(lock, &CancellationToken::new()).await
    }

    /// [`Guestd::unlock`] that gives up with [`GuestError::Cancelled`] when `cancel` fires
    /// (e.g. on SIGINT), still stopping the advertisement and disconnecting.
    ///
    /// A held grant the lock does not accept — its beacons arm nothing (`no_pending_auth`:
    /// the grant was revoked, its unlocks are spent, or the lock lost its state) or the lock
    /// says it is dead — would fail every later unlock until it expires. It is dropped, and
    /// one fresh grant is requested and tried within this unlock
    /// ([`UnlockReport::fallback`], or [`GuestError::FreshGrantFailed`]).
    pub async fn unlock_until(
        &mut self,
        lock: LockId,
        cancel: &CancellationToken,
    ) -> Result<UnlockReport, GuestError> {
        if !self.bundle.covers(&lock) {
            return Err(GuestError::LockNotEnrolled { lock });
        }
        let started = Instant::now();
        let held = self.try_unlock(lock, cancel, started).await;
        let (obtained, err) = match held {
            Ok(report) => return Ok(report),
            Err((obtained, err)) => (obtained, err),
        };
        let Some(obtained) = obtained.filter(|o| o.reused && fresh_grant_may_help(&err)) else {
            return Err(err);
        };
        let refused = err.reason().unwrap_or(Reason::NoPendingAuth);
        let dropped = obtained.info.grant_id;
        info!(
            %lock, grant = %dropped, refused = %refused,
            "the lock did not accept the held grant; dropped, requesting a fresh one"
        );
        self.drop_grant(&lock);
        match self.try_unlock(lock, cancel, started).await {
            Ok(mut report) => {
                report.fallback = Some(GrantFallback {
                    dropped_grant: dropped,
                    refused,
                });
                Ok(report)
            }
            Err((_, GuestError::Cancelled)) => Err(GuestError::Cancelled),
            Err((_, source)) => Err(GuestError::FreshGrantFailed {
                lock,
                dropped,
                refused,
                source: Box::new(source),
            }),
        }
    }

    /// One grant (held or requested) and one BLE attempt. On failure, also the grant it
    /// used, if it got one.
    async fn try_unlock(
        &mut self,
        lock: LockId,
        cancel: &CancellationToken,
        started: Instant,
    ) -> Result<UnlockReport, (Option<Obtained>, GuestError)> {
        let grant_started = Instant::now();
        let obtained = tokio::select! {
            r = self.channel.obtain(
                &mut self.guest,
                &mut self.rng,
                self.clock.as_ref(),
                lock,
                self.grant_validity_s,
                &self.timeouts,
            ) => r.map_err(|e| (None, e))?,
            _ = cancel.cancelled() => return Err((None, GuestError::Cancelled)),
        };
        let grant_time = grant_started.elapsed();
        let attempt = Attempt {
            guest: &mut self.guest,
            radio: &self.radio,
            clock: self.clock.as_ref(),
            rng: &mut self.rng,
            company_id: self.company_id,
            timeouts: self.timeouts,
        };
        match attempt.run(lock, cancel).await {
            Ok(ble) => {
                let report = UnlockReport {
                    lock_id: lock,
                    grant_id: obtained.info.grant_id,
                    session_id: obtained.info.session_id,
                    grant_reused: obtained.reused,
                    grant_requests: obtained.requests,
                    select_tries: ble.select_tries,
                    timings: StepTimings {
                        grant: grant_time,
                        connect: ble.connect,
                        select: ble.select,
                        challenge: ble.challenge,
                        response: ble.response,
                        total: ble.outcome_at.saturating_duration_since(started),
                    },
                    fallback: None,
                };
                info!(%lock, grant = %report.grant_id, total_ms = report.timings.total.as_millis() as u64, "UNLOCKED");
                Ok(report)
            }
            Err(e) => {
                // A grant the lock says is dead would fail every later attempt too.
                if e.reason().is_some_and(grant_is_dead) {
                    info!(%lock, "dropping the grant the lock refused; the next unlock requests a new one");
                    self.drop_grant(&lock);
                }
                Err((Some(obtained), e))
            }
        }
    }

    /// This guest's identity.
    pub fn guest_id(&self) -> GuestId {
        self.bundle.guest_id()
    }

    /// The grant held for `lock`, if any (it may have expired).
    pub fn held_grant(&self, lock: &LockId) -> Option<GuestGrantInfo> {
        self.guest.grant(lock)
    }

    /// Forgets the grant held for `lock`, so the next unlock requests a new one.
    pub fn drop_grant(&mut self, lock: &LockId) {
        self.guest.drop_grant(lock);
        self.channel.forget(lock);
    }

    /// Processes the grants that arrived since the last call (an idle daemon otherwise
    /// reads them at its next unlock).
    pub fn poll_grants(&mut self) {
        self.channel.drain(&mut self.guest, self.clock.as_ref());
    }

    /// Counters of the grant channel.
    pub fn stats(&self) -> GuestStats {
        self.channel.stats
    }

    /// The broker connection state.
    pub fn mqtt_state(&self) -> ConnectionState {
        self.channel.state()
    }

    /// The radio.
    pub fn radio(&self) -> &R {
        &self.radio
    }

    /// Disconnects from the broker (the persistent session keeps our grants topic).
    pub async fn shutdown(self) {
        self.channel.shutdown().await;
    }
}

impl<R: GuestRadio> fmt::Debug for Guestd<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guestd")
            .field("guest_id", &self.bundle.guest_id())
            .field("company_id", &self.company_id)
            .field("mqtt", &self.channel.state())
            .field("stats", &self.channel.stats)
            .finish_non_exhaustive()
    }
}

/// Re-installs the stored grants; expired or unusable ones are deleted.
fn restore_grants(guest: &mut Guest, store: &GrantStore, now: UnixMillis) {
    for (lock, payload) in store.load() {
        match guest.restore_grant(now, &payload) {
            Ok(info) if info.lock_id == lock => {
                info!(%lock, grant = %info.grant_id, not_after = info.not_after, "stored grant restored");
            }
            Ok(info) => {
                warn!(%lock, stored_for = %info.lock_id, "stored grant is for another lock; deleted");
                guest.drop_grant(&info.lock_id);
                store.remove(&lock);
            }
            Err(reason) => {
                debug!(%lock, %reason, "stored grant unusable; deleted");
                store.remove(&lock);
            }
        }
    }
}

/// A refusal that says the session itself is gone at the lock, whatever the guest does.
fn grant_is_dead(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::SessionExpired
            | Reason::SessionRevoked
            | Reason::GrantExpired
            | Reason::BadResponseMac
            | Reason::UnlockLimitReached
    )
}

/// Whether a held grant's failure may be cured by a fresh grant: the lock armed nothing for
/// its beacons (`no_pending_auth` at the Select: revoked, spent, or the lock lost its state)
/// or refused the grant as dead. Not a lockout (it is the guest's, not the grant's), nor a
/// radio problem or a missing lock.
fn fresh_grant_may_help(err: &GuestError) -> bool {
    match err {
        GuestError::Refused {
            step: UnlockStep::Select,
            reason: Reason::NoPendingAuth,
        } => true,
        GuestError::Refused { reason, .. } | GuestError::GrantUnusable { reason, .. } => {
            grant_is_dead(*reason)
        }
        _ => false,
    }
}

fn check(opts: &GuestOptions) -> Result<(), GuestError> {
    let bad = |m: String| Err(GuestError::InvalidConfig(m));
    if opts.grant_validity_s == 0 {
        return bad("grant_validity_s must be at least 1 second".into());
    }
    let p = &opts.topic_prefix;
    if p.is_empty() || p.contains(['+', '#', '\0']) || p.ends_with('/') {
        return bad(format!(
            "topic prefix {p:?} must be non-empty, without '+', '#' or a trailing '/'"
        ));
    }
    let t = &opts.timeouts;
    for (name, d) in [
        ("mqtt_connect", t.mqtt_connect),
        ("grant", t.grant),
        ("grant_retry", t.grant_retry),
        ("attempt", t.attempt),
        ("connect", t.connect),
        ("select_retry_every", t.select_retry_every),
    ] {
        if d.is_zero() {
            return bad(format!("timeout {name} must be more than zero"));
        }
    }
    Ok(())
}
