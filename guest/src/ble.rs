//! The BLE part of an unlock (docs/daemons.md, "Guest" steps 2–5): advertise the core's
//! beacon, connect, Select, read and verify the Challenge, write the Response.
//!
//! Every decision is the core's ([`Guest`]); this module only moves bytes and keeps time.
//! Nothing here keys on a device address: phones randomise them, and the lock proves who
//! it is cryptographically (LK-GST-2).

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use latchkey::frame::{BEACON_LEN, BeaconView};
use latchkey::{Guest, LockId, Reason};
use latchkey_transport::radio::{AttError, GattLink, GuestRadio, RadioError};
use rand_chacha::ChaCha20Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::{WallClock, until};
use crate::error::{GuestError, UnlockStep};
use crate::gatt::{CHALLENGE_CHAR_UUID, RESPONSE_CHAR_UUID, SERVICE_UUID};
use crate::options::Timeouts;

/// Shortest sleep between two advertisement refreshes: a wall clock a hair behind tokio's
/// timer must not turn the wait for a step boundary into a busy loop.
const MIN_REFRESH: Duration = Duration::from_millis(5);

/// How long past the attempt's limit the outer timeout waits, so that a step whose own
/// budget ends with the attempt (finding the lock) reports its specific error, not a
/// generic timeout, even on a loaded machine.
const STEP_GRACE: Duration = Duration::from_millis(500);

/// Cleanup (stop advertising, disconnect) must not hang an unlock that already ended.
const CLEANUP_LIMIT: Duration = Duration::from_secs(2);

/// BlueZ answers Device1.Disconnect only after its 2 s `DISCONNECT_TIMER` (time for
/// profiles to close), then sends HCI Disconnect; seen in the real-BlueZ end-to-end traces.
const DISCONNECT_LIMIT: Duration = Duration::from_secs(3);

/// Step durations of a BLE attempt that reached an outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BleTimings {
    pub(crate) connect: Duration,
    pub(crate) select: Duration,
    pub(crate) challenge: Duration,
    pub(crate) response: Duration,
    pub(crate) select_tries: u32,
    /// When the lock's answer arrived (before cleanup: stopping the advertisement and
    /// disconnecting take BlueZ seconds that are not part of the unlock).
    pub(crate) outcome_at: Instant,
}

/// One unlock attempt's borrowed world.
pub(crate) struct Attempt<'a, R: GuestRadio> {
    pub(crate) guest: &'a mut Guest,
    pub(crate) radio: &'a R,
    pub(crate) clock: &'a dyn WallClock,
    pub(crate) rng: &'a mut ChaCha20Rng,
    pub(crate) company_id: u16,
    pub(crate) timeouts: Timeouts,
}

impl<R: GuestRadio> Attempt<'_, R> {
    /// Runs the attempt to an outcome, a timeout or cancellation, then stops advertising
    /// and disconnects whatever happened.
    pub(crate) async fn run(
        mut self,
        lock: LockId,
        cancel: &CancellationToken,
    ) -> Result<BleTimings, GuestError> {
        self.guest
            .start_unlock(self.clock.now(), lock, self.rng)
            .map_err(|reason| GuestError::GrantUnusable { lock, reason })?;
        let mut link: Option<R::Link> = None;
        let mut at = UnlockStep::Advertise;
        let limit = self.timeouts.attempt;
        let ended = tokio::select! {
            r = tokio::time::timeout(limit + STEP_GRACE, self.steps(lock, &mut link, &mut at)) => Some(r),
            _ = cancel.cancelled() => None,
        };
        let result = match ended {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(GuestError::AttemptTimeout {
                step: at,
                waited: limit,
            }),
            None => Err(GuestError::Cancelled),
        };
        // After an outcome the core has already ended the attempt; otherwise end it now.
        self.guest.cancel_unlock();
        match tokio::time::timeout(CLEANUP_LIMIT, self.radio.stop_advertising()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "could not stop advertising"),
            Err(_) => warn!("stopping the advertisement timed out"),
        }
        if let Some(link) = link.take() {
            match tokio::time::timeout(DISCONNECT_LIMIT, link.disconnect()).await {
                Ok(Ok(())) => debug!("disconnected from the lock"),
                Ok(Err(e)) => debug!(error = %e, "disconnect failed (link already gone?)"),
                Err(_) => warn!("disconnecting from the lock timed out"),
            }
        }
        result
    }

    async fn steps(
        &mut self,
        lock: LockId,
        link_slot: &mut Option<R::Link>,
        at: &mut UnlockStep,
    ) -> Result<BleTimings, GuestError> {
        let t = self.timeouts;
        let radio = self.radio;
        let started = Instant::now();
        let mut adv = Advertiser {
            current: None,
            company_id: self.company_id,
            lock,
        };
        adv.refresh(self.guest, radio, self.clock).await?;

        *at = UnlockStep::Connect;
        let connect_limit = t.connect.min(t.attempt.saturating_sub(started.elapsed()));
        let connected = adv
            .while_advertising(
                self.guest,
                radio,
                self.clock,
                radio.connect(SERVICE_UUID, connect_limit),
            )
            .await?;
        let link = match connected {
            Ok(l) => link_slot.insert(l),
            Err(RadioError::NotFound { .. }) => {
                return Err(GuestError::NoLockFound {
                    waited: connect_limit,
                });
            }
            Err(source) => {
                return Err(GuestError::Radio {
                    step: UnlockStep::Connect,
                    source,
                });
            }
        };
        let connect_done = Instant::now();
        info!(conn = ?link.conn_id(), elapsed_ms = ms(connect_done - started), "connected to a lock");

        *at = UnlockStep::Select;
        let mut tries = 0u32;
        loop {
            // Each Select names the beacon of the step current now (spec §7.3 "selected").
            let select = self
                .guest
                .select(self.clock.now())
                .map_err(|reason| GuestError::GrantUnusable { lock, reason })?;
            tries += 1;
            let written = adv
                .while_advertising(
                    self.guest,
                    radio,
                    self.clock,
                    link.write(CHALLENGE_CHAR_UUID, &select),
                )
                .await?;
            match written {
                Ok(()) => break,
                Err(RadioError::Att(AttError::Application(code)))
                    if Reason::from_att_code(code) == Some(Reason::NoPendingAuth)
                        && connect_done.elapsed() + t.select_retry_every < t.select_retry_for =>
                {
                    // The lock may not have scanned the beacon yet: keep advertising, retry.
                    debug!(tries, "Select refused with no_pending_auth; retrying");
                    adv.while_advertising(
                        self.guest,
                        radio,
                        self.clock,
                        tokio::time::sleep(t.select_retry_every),
                    )
                    .await?;
                }
                Err(e) => return Err(refusal(UnlockStep::Select, e)),
            }
        }
        let select_done = Instant::now();
        info!(
            tries,
            elapsed_ms = ms(select_done - connect_done),
            "Select accepted"
        );
        // Spec §7.3: after a successful Select the guest SHOULD stop advertising.
        if let Err(e) = radio.stop_advertising().await {
            warn!(error = %e, "could not stop advertising after the Select");
        }

        *at = UnlockStep::Challenge;
        let challenge = link
            .read(CHALLENGE_CHAR_UUID)
            .await
            .map_err(|e| refusal(UnlockStep::Challenge, e))?;
        let response = self
            .guest
            .handle_challenge(self.clock.now(), &challenge)
            .map_err(|reason| GuestError::ChallengeRejected { reason })?;
        let challenge_done = Instant::now();
        info!(
            elapsed_ms = ms(challenge_done - select_done),
            "challenge verified: the lock holds our session"
        );

        *at = UnlockStep::Response;
        let att = match link.write(RESPONSE_CHAR_UUID, &response).await {
            Ok(()) => None,
            Err(RadioError::Att(att)) => Some(att),
            // The write may have reached the lock: the outcome is unknown, not a refusal.
            Err(source) => return Err(GuestError::OutcomeUnknown { source }),
        };
        let response_done = Instant::now();
        match self
            .guest
            .handle_write_result(att.map_or(Ok(()), |a| Err(a.code())))
        {
            Ok(()) => Ok(BleTimings {
                connect: connect_done - started,
                select: select_done - connect_done,
                challenge: challenge_done - select_done,
                response: response_done - challenge_done,
                select_tries: tries,
                outcome_at: response_done,
            }),
            Err(Some(reason)) => Err(GuestError::Refused {
                step: UnlockStep::Response,
                reason,
            }),
            Err(None) => Err(GuestError::RefusedUnspecified {
                step: UnlockStep::Response,
                att: att.unwrap_or(AttError::UnlikelyError),
            }),
        }
    }
}

/// A failed GATT operation: the lock's refusal (ATT error) or a radio failure.
fn refusal(step: UnlockStep, e: RadioError) -> GuestError {
    match e {
        RadioError::Att(att) => match att {
            AttError::Application(code) => match Reason::from_att_code(code) {
                Some(reason) => GuestError::Refused { step, reason },
                None => GuestError::RefusedUnspecified { step, att },
            },
            other => GuestError::RefusedUnspecified { step, att: other },
        },
        source => GuestError::Radio { step, source },
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Keeps the advertisement equal to the core's beacon, re-registering it at every step
/// boundary the core names through `poll_timeout` (LK-ADV-2 needs a fresh step and tag).
struct Advertiser {
    current: Option<[u8; BEACON_LEN]>,
    company_id: u16,
    lock: LockId,
}

impl Advertiser {
    async fn refresh<R: GuestRadio>(
        &mut self,
        guest: &mut Guest,
        radio: &R,
        clock: &dyn WallClock,
    ) -> Result<(), GuestError> {
        match guest.advertisement(clock.now()) {
            Some(beacon) if self.current != Some(beacon) => {
                radio
                    .set_advertisement(self.company_id, beacon.to_vec())
                    .await
                    .map_err(|source| GuestError::Radio {
                        step: UnlockStep::Advertise,
                        source,
                    })?;
                if let Ok(view) = BeaconView::parse(&beacon) {
                    debug!(
                        step = view.step().0,
                        attempt = view.attempt(),
                        "advertising beacon"
                    );
                }
                self.current = Some(beacon);
            }
            Some(_) => {}
            // The grant expired mid-attempt: nothing valid is left to advertise, and the
            // lock would refuse the Select anyway.
            None => {
                return Err(GuestError::GrantUnusable {
                    lock: self.lock,
                    reason: Reason::GrantExpired,
                });
            }
        }
        Ok(())
    }

    /// Drives `fut` to completion while refreshing the advertisement at each wake-up the
    /// core asks for.
    async fn while_advertising<R: GuestRadio, F: Future>(
        &mut self,
        guest: &mut Guest,
        radio: &R,
        clock: &dyn WallClock,
        fut: F,
    ) -> Result<F::Output, GuestError> {
        let mut fut = pin!(fut);
        loop {
            let wake = guest
                .poll_timeout()
                .map(|at| until(clock.now(), at).max(MIN_REFRESH));
            let refresh_due = async {
                match wake {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                out = &mut fut => return Ok(out),
                () = refresh_due => self.refresh(guest, radio, clock).await?,
            }
        }
    }
}
