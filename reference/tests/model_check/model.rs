//! The Latchkey model: one issuer, one lock (`LOCK_A`) and one honest guest, all three the
//! real reference machines (see `roles.rs`), and a Dolev–Yao attacker that owns the MQTT
//! broker and the radio.
//!
//! A state is the three roles' normalised input logs, the clocks, everything the attacker
//! has observed (interned frames), and the facts the properties are stated over (grants
//! issued, revocations applied, unlocks with the challenge and response that produced them,
//! challenges the guest accepted). Two histories that leave every role with the same log and
//! the attacker with the same knowledge are the same state.

use std::sync::Arc;

use latchkey::frame::{BeaconView, Select};
use latchkey::lock::MessageOutcome;
use latchkey::{GrantId, Reason, SessionId, UnixMillis};
use stateright::{Model, Property};

use crate::common::{GUEST, LOCK_A, T0};
use crate::roles::{
    GuestIn, GuestOut, GuestRole, Issued, IssuerIn, IssuerOut, IssuerRole, LockIn, LockOut,
    LockRole, LogId, MsgId, Mutant, bytes, intern, last_time, step,
};

/// Clock offsets from the issuer's clock (ms). The spec bounds |lock − guest| by
/// `max_clock_skew_s` (30 s) and the lock's lag behind the issuer by `backdate_s` (30 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clocks {
    pub lock_ms: i64,
    pub guest_ms: i64,
}

/// Which of the model's knobs a check uses.
#[derive(Clone, Debug)]
pub struct Config {
    pub clocks: Vec<Clocks>,
    /// Time steps the attacker may take (ms).
    pub ticks: Vec<u64>,
    pub max_ticks: u8,
    /// Grant requests the guest makes.
    pub max_requests: u8,
    /// Revocations the issuer makes.
    pub max_revocations: u8,
    /// Unlock attempts the guest starts.
    pub max_attempts: u8,
    /// Validity the guest requests (s).
    pub validity_s: u32,
    /// Actions applied to every initial state (a common prefix, to spend depth on attacks).
    pub opening: Vec<Action>,
    /// The attacker has its own GATT connection (conn 2): it can Select any beacon it heard,
    /// relay the challenge to the guest and the response back.
    pub attacker_gatt: bool,
    /// The attacker may drop MQTT messages for good (the unrestricted network).
    pub drops: bool,
    /// Global stabilisation: the `Stabilize` action ends the attacker's run (see `stabilize`).
    pub stabilize: bool,
    pub mutant: Mutant,
}

/// The guest's and the lock's connection ids.
pub const CONN_GUEST: u8 = 1;
pub const CONN_ATTACKER: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    Issuer,
    Lock,
    Guest,
}

/// An MQTT message published by a role (the broker is the attacker's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mqtt {
    pub id: MsgId,
    pub to: Dest,
    pub delivered: bool,
    pub dropped: bool,
}

/// A Challenge the lock returned for a Select on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chal {
    pub id: MsgId,
    pub conn: u8,
    pub select: MsgId,
}

/// An unlock, with what produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnlockFact {
    pub grant_id: GrantId,
    pub session_id: SessionId,
    pub guest_id: latchkey::GuestId,
    pub conn: u8,
    /// The last challenge the lock issued on that connection.
    pub challenge: Option<MsgId>,
    pub response: MsgId,
    /// The lock's clock.
    pub lock_now: UnixMillis,
    /// A Revocation of this grant had been applied by the lock before.
    pub after_revocation: bool,
    /// The response was produced by the honest guest (not built by the attacker).
    pub response_from_guest: bool,
}

/// A Challenge the guest accepted (answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Answer {
    pub challenge: MsgId,
    /// The guest's own latest Select when it accepted.
    pub guest_select: Option<MsgId>,
    /// The session of the grant it held.
    pub guest_session: Option<SessionId>,
}

/// Refusals seen, for `sometimes` witnesses that the attacks were tried.
pub mod seen {
    pub const REQUEST_REPLAY: u16 = 1 << 0;
    pub const REVOKED_REFUSED: u16 = 1 << 1;
    pub const RESPONSE_REPLAY_REFUSED: u16 = 1 << 2;
    pub const GUEST_REFUSED_CHALLENGE: u16 = 1 << 3;
    pub const EXPIRED_REFUSED: u16 = 1 << 4;
    pub const BEACON_REPLAY_REFUSED: u16 = 1 << 5;
}

/// A vector shared between a state and its successors until one of them changes it (most
/// actions change few of them; the BFS frontier holds millions of states).
pub type Shared<T> = Arc<Vec<T>>;

fn mutate<T: Clone>(v: &mut Shared<T>) -> &mut Vec<T> {
    Arc::make_mut(v)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub clocks: Clocks,
    /// Issuer time since T0 (ms).
    pub t: u64,
    pub stable: bool,
    pub n_ticks: u8,
    pub n_requests: u8,
    pub n_revocations: u8,
    pub n_attempts: u8,
    /// The roles' input logs (interned, see `roles::log_of`).
    pub issuer: LogId,
    pub lock: LogId,
    pub guest: LogId,
    // What the attacker has observed (and the network carries).
    pub mqtt: Shared<Mqtt>,
    pub beacons: Shared<MsgId>,
    pub challenges: Shared<Chal>,
    pub responses: Shared<MsgId>,
    /// Last challenge the lock issued, per connection (index = conn id).
    pub conn_chal: [Option<MsgId>; 3],
    // The guest as the driver sees it.
    pub attempting: bool,
    pub guest_select: Option<MsgId>,
    pub guest_grant: Option<GrantId>,
    // Facts.
    pub issued: Shared<Issued>,
    pub issuer_revoked: Shared<GrantId>,
    pub lock_revoked: Shared<GrantId>,
    pub guest_accepted: Shared<GrantId>,
    pub unlocks: Shared<UnlockFact>,
    pub answers: Shared<Answer>,
    pub seen: u16,
    /// Set at stabilisation: the guest held no grant that was live on both clocks and not
    /// revoked by the issuer, so liveness does not apply.
    pub excused: bool,
    /// Set at stabilisation: the post-GST honest run unlocked.
    pub unlocked_after_gst: bool,
}

impl State {
    fn at(&self, off: i64) -> UnixMillis {
        UnixMillis((T0.0 as i64 + self.t as i64 + off) as u64)
    }
    pub fn issuer_now(&self) -> UnixMillis {
        self.at(0)
    }
    pub fn lock_now(&self) -> UnixMillis {
        self.at(self.clocks.lock_ms)
    }
    pub fn guest_now(&self) -> UnixMillis {
        self.at(self.clocks.guest_ms)
    }
    pub fn grant(&self, g: &GrantId) -> Option<&Issued> {
        self.issued.iter().find(|i| i.grant_id == *g)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Time passes (ms) on every clock; the lock's driver runs its timer.
    Tick(u64),
    /// The guest publishes a GrantRequest.
    GuestRequests,
    /// The broker delivers published MQTT message `k` (again, possibly: QoS 1 duplicates and
    /// replays, in any order).
    Deliver(usize),
    /// The broker drops MQTT message `k` for good.
    Drop(usize),
    /// The issuer revokes issued grant `k`.
    IssuerRevokes(usize),
    /// The guest starts an unlock attempt (it advertises from now on; every advertisement
    /// is heard by the attacker).
    GuestStarts,
    /// The lock hears observed beacon `k` (the guest's current one, or a replay).
    LockHears(usize),
    /// The guest writes Select on its connection (`write: false`: the write is lost).
    GuestSelects { write: bool },
    /// The attacker writes, on its own connection, a Select built from observed beacon `k`.
    AttackerSelects(usize),
    /// The guest reads observed challenge `k` (the lock's or one the attacker serves), and
    /// writes its response on its connection (`write: false`: the write is lost).
    GuestReads { k: usize, write: bool },
    /// The attacker writes observed response `k` on connection `conn`.
    AttackerResponds { k: usize, conn: u8 },
    /// The guest's driver aborts its attempt.
    GuestCancels,
    /// Global stabilisation time: the attacker stops, the network delivers, the guest tries.
    Stabilize,
}

pub struct LatchkeyModel {
    pub cfg: Config,
}

impl LatchkeyModel {
    fn m(&self) -> Mutant {
        self.cfg.mutant
    }

    fn issuer(&self, s: &mut State, i: IssuerIn) -> IssuerOut {
        let (out, log) = step::<IssuerRole>(self.m(), s.issuer, i);
        s.issuer = log;
        out
    }

    /// Feeds the lock. Its driver honours §7.1: when time has passed since the lock's last
    /// input, it first calls `handle_timeout(now)` (which is at or after every instant
    /// `poll_timeout` asked for), then feeds the input.
    fn lock(&self, s: &mut State, i: LockIn) -> LockOut {
        let now = s.lock_now();
        if last_time::<LockRole>(s.lock).is_none_or(|t| t < now) {
            let (_, log) = step::<LockRole>(self.m(), s.lock, LockIn::Timeout(now));
            s.lock = log;
        }
        let (out, log) = step::<LockRole>(self.m(), s.lock, i);
        s.lock = log;
        out
    }

    fn guest(&self, s: &mut State, i: GuestIn) -> GuestOut {
        let (out, log) = step::<GuestRole>(self.m(), s.guest, i);
        s.guest = log;
        out
    }

    fn publish(s: &mut State, id: MsgId, to: Dest) {
        mutate(&mut s.mqtt).push(Mqtt {
            id,
            to,
            delivered: false,
            dropped: false,
        });
    }

    fn lock_select(&self, s: &mut State, conn: u8, select: MsgId) {
        let now = s.lock_now();
        if let LockOut::Select(Ok(ch)) = self.lock(s, LockIn::Select(now, conn, select)) {
            mutate(&mut s.challenges).push(Chal {
                id: ch,
                conn,
                select,
            });
            s.conn_chal[conn as usize] = Some(ch);
        }
    }

    fn lock_response(&self, s: &mut State, conn: u8, resp: MsgId) -> Result<(), Reason> {
        let now = s.lock_now();
        let LockOut::Response(r) = self.lock(s, LockIn::Response(now, conn, resp)) else {
            unreachable!("a Response yields a response outcome")
        };
        match r {
            Ok(u) => {
                mutate(&mut s.unlocks).push(UnlockFact {
                    grant_id: u.grant_id,
                    session_id: u.session_id,
                    guest_id: u.guest_id,
                    conn,
                    challenge: s.conn_chal[conn as usize],
                    response: resp,
                    lock_now: now,
                    after_revocation: s.lock_revoked.contains(&u.grant_id),
                    response_from_guest: s.responses.contains(&resp),
                });
                Ok(())
            }
            Err(e) => {
                if s.unlocks.iter().any(|u| u.response == resp) {
                    s.seen |= seen::RESPONSE_REPLAY_REFUSED;
                }
                match e {
                    Reason::SessionRevoked => s.seen |= seen::REVOKED_REFUSED,
                    Reason::SessionExpired => s.seen |= seen::EXPIRED_REFUSED,
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// Applies one action to a copy of `s` (no budget checks: `actions` does those).
    pub fn apply(&self, s: &State, a: Action) -> State {
        let mut s = s.clone();
        match a {
            Action::Tick(ms) => {
                // The lock's timer runs lazily: see `lock`.
                s.t += ms;
                s.n_ticks += 1;
            }
            Action::GuestRequests => {
                s.n_requests += 1;
                let i = GuestIn::Request(s.guest_now(), self.cfg.validity_s);
                if let GuestOut::Request(id) = self.guest(&mut s, i) {
                    Self::publish(&mut s, id, Dest::Issuer);
                }
            }
            Action::Deliver(k) => {
                mutate(&mut s.mqtt)[k].delivered = true;
                let Mqtt { id, to, .. } = s.mqtt[k];
                match to {
                    Dest::Issuer => {
                        let i = IssuerIn::Request(s.issuer_now(), id);
                        match self.issuer(&mut s, i) {
                            IssuerOut::Request(Ok(g)) => {
                                mutate(&mut s.issued).push(g);
                                Self::publish(&mut s, g.lock_grant, Dest::Lock);
                                Self::publish(&mut s, g.guest_grant, Dest::Guest);
                            }
                            IssuerOut::Request(Err(Reason::RequestReplay)) => {
                                s.seen |= seen::REQUEST_REPLAY;
                            }
                            _ => {}
                        }
                    }
                    Dest::Lock => {
                        let now = s.lock_now();
                        match self.lock(&mut s, LockIn::Mqtt(now, id)) {
                            LockOut::Mqtt(Ok(MessageOutcome::Revocation(o)))
                                if !s.lock_revoked.contains(&o.grant_id) =>
                            {
                                mutate(&mut s.lock_revoked).push(o.grant_id);
                            }
                            LockOut::Mqtt(Err(Reason::GrantRevoked)) => {
                                s.seen |= seen::REVOKED_REFUSED;
                            }
                            LockOut::Mqtt(Err(Reason::GrantExpired)) => {
                                s.seen |= seen::EXPIRED_REFUSED;
                            }
                            _ => {}
                        }
                    }
                    Dest::Guest => {
                        let now = s.guest_now();
                        if let GuestOut::Grant(Ok(info)) =
                            self.guest(&mut s, GuestIn::Grant(now, id))
                        {
                            s.guest_grant = Some(info.grant_id);
                            if !s.guest_accepted.contains(&info.grant_id) {
                                mutate(&mut s.guest_accepted).push(info.grant_id);
                            }
                        }
                    }
                }
            }
            Action::Drop(k) => mutate(&mut s.mqtt)[k].dropped = true,
            Action::IssuerRevokes(k) => {
                s.n_revocations += 1;
                let g = s.issued[k].grant_id;
                let i = IssuerIn::Revoke(s.issuer_now(), g);
                if let IssuerOut::Revoke(Some(id)) = self.issuer(&mut s, i) {
                    mutate(&mut s.issuer_revoked).push(g);
                    Self::publish(&mut s, id, Dest::Lock);
                }
            }
            Action::GuestStarts => {
                s.n_attempts += 1;
                let now = s.guest_now();
                if let GuestOut::Start(Ok(())) = self.guest(&mut s, GuestIn::Start(now)) {
                    s.attempting = true;
                    s.guest_select = None;
                }
            }
            Action::LockHears(k) => {
                let now = s.lock_now();
                let b = s.beacons[k];
                if let LockOut::Beacon(Err(Reason::Replay)) =
                    self.lock(&mut s, LockIn::Beacon(now, b))
                {
                    s.seen |= seen::BEACON_REPLAY_REFUSED;
                }
            }
            Action::GuestSelects { write } => {
                let now = s.guest_now();
                if let GuestOut::Select(Ok(sel)) = self.guest(&mut s, GuestIn::Select(now)) {
                    s.guest_select = Some(sel);
                    if write {
                        self.lock_select(&mut s, CONN_GUEST, sel);
                    }
                }
            }
            Action::AttackerSelects(k) => {
                let b = bytes(s.beacons[k]);
                let v = BeaconView::parse(&b).expect("observed beacons parse");
                let sel = Select {
                    tag: v.tag(),
                    attempt: v.attempt(),
                }
                .to_bytes();
                let sel = intern(&sel);
                self.lock_select(&mut s, CONN_ATTACKER, sel);
            }
            Action::GuestReads { k, write } => {
                let ch = s.challenges[k].id;
                let now = s.guest_now();
                match self.guest(&mut s, GuestIn::Challenge(now, ch)) {
                    GuestOut::Challenge(Ok(resp)) => {
                        let answer = Answer {
                            challenge: ch,
                            guest_select: s.guest_select,
                            guest_session: s
                                .guest_grant
                                .and_then(|g| s.grant(&g))
                                .map(|g| g.session_id),
                        };
                        mutate(&mut s.answers).push(answer);
                        if !s.responses.contains(&resp) {
                            mutate(&mut s.responses).push(resp);
                        }
                        if write {
                            let r = self.lock_response(&mut s, CONN_GUEST, resp);
                            let r = r.map_err(|e| e.att_code());
                            self.guest(&mut s, GuestIn::WriteResult(r));
                            s.attempting = false;
                        }
                    }
                    GuestOut::Challenge(Err(Reason::BadLockMac | Reason::SessionMismatch)) => {
                        s.seen |= seen::GUEST_REFUSED_CHALLENGE;
                    }
                    _ => {}
                }
            }
            Action::AttackerResponds { k, conn } => {
                let r = s.responses[k];
                let _ = self.lock_response(&mut s, conn, r);
            }
            Action::GuestCancels => {
                self.guest(&mut s, GuestIn::Cancel);
                s.attempting = false;
            }
            Action::Stabilize => return self.stabilize(&s),
        }
        self.observe_advert(&mut s);
        s
    }

    /// A passive radio observer hears every advertisement: the guest's current beacon joins
    /// the attacker's knowledge after every action.
    fn observe_advert(&self, s: &mut State) {
        if !s.attempting {
            return;
        }
        let now = s.guest_now();
        if let GuestOut::Advert(Some(b)) = self.guest(s, GuestIn::Advert(now))
            && !s.beacons.contains(&b)
        {
            mutate(&mut s.beacons).push(b);
        }
    }

    /// Whether the guest holds a grant live on both clocks and not revoked by the issuer.
    pub fn guest_has_live_grant(s: &State) -> bool {
        let Some(g) = s.guest_grant.and_then(|g| s.grant(&g)) else {
            return false;
        };
        !s.issuer_revoked.contains(&g.grant_id)
            && s.lock_now().secs() < g.not_after
            && s.guest_now().secs() < g.not_after
            && s.lock_now().secs() >= g.not_before
    }

    /// Global stabilisation time (GST). From here the network is fair and the attacker is
    /// gone: (1) every published MQTT message not dropped for good is delivered, in
    /// publication order (QoS 1 with a persistent session: at-least-once, and a message
    /// published meanwhile is delivered too); (2) the guest's driver aborts a stale attempt
    /// and makes up to two attempts, each: start, the lock hears the current advertisement,
    /// Select written on the guest's connection, the Challenge read, the Response written,
    /// the write result returned. No time passes. The run ends there (a terminal state).
    fn stabilize(&self, s: &State) -> State {
        let mut s = s.clone();
        s.stable = true;
        let mut k = 0;
        while k < s.mqtt.len() {
            if !s.mqtt[k].delivered && !s.mqtt[k].dropped {
                s = self.apply(&s, Action::Deliver(k));
            }
            k += 1;
        }
        s.excused = !Self::guest_has_live_grant(&s);
        if s.attempting {
            s = self.apply(&s, Action::GuestCancels);
        }
        let before = s.unlocks.len();
        for _ in 0..2 {
            s = self.apply(&s, Action::GuestStarts);
            if !s.attempting {
                break;
            }
            let now = s.guest_now();
            let GuestOut::Advert(Some(b)) = self.guest(&mut s, GuestIn::Advert(now)) else {
                break;
            };
            let Some(kb) = s.beacons.iter().position(|x| *x == b) else {
                break;
            };
            s = self.apply(&s, Action::LockHears(kb));
            let n = s.challenges.len();
            s = self.apply(&s, Action::GuestSelects { write: true });
            if s.challenges.len() > n {
                s = self.apply(&s, Action::GuestReads { k: n, write: true });
            } else {
                s = self.apply(&s, Action::GuestCancels);
            }
            if s.unlocks.len() > before {
                s.unlocked_after_gst = true;
                break;
            }
            s = self.apply(&s, Action::GuestCancels);
        }
        s
    }

    fn initial(&self, clocks: Clocks) -> State {
        let mut s = State {
            clocks,
            t: 0,
            stable: false,
            n_ticks: 0,
            n_requests: 0,
            n_revocations: 0,
            n_attempts: 0,
            issuer: 0,
            lock: 0,
            guest: 0,
            mqtt: Shared::default(),
            beacons: Shared::default(),
            challenges: Shared::default(),
            responses: Shared::default(),
            conn_chal: [None; 3],
            attempting: false,
            guest_select: None,
            guest_grant: None,
            issued: Shared::default(),
            issuer_revoked: Shared::default(),
            lock_revoked: Shared::default(),
            guest_accepted: Shared::default(),
            unlocks: Shared::default(),
            answers: Shared::default(),
            seen: 0,
            excused: false,
            unlocked_after_gst: false,
        };
        for a in &self.cfg.opening {
            s = self.apply(&s, *a);
        }
        s
    }
}

// ------------------------------------------------------------------------------ properties

pub const P_LIVE_GRANT: &str =
    "LK-RSP-6/LK-ADV-5 lock unlocks only for a guest holding a live grant for that lock";
pub const P_ONCE: &str = "LK-RSP-2 a response is accepted at most once";
pub const P_REVOKED: &str = "LK-REV-3/LK-GRT-7 no unlock after revocation";
pub const P_EXPIRED: &str = "LK-RSP-7 no unlock after not_after";
pub const P_REQUEST_REPLAY: &str = "LK-ISS-5 a replayed request yields no new grant";
pub const P_GUEST_LOCK: &str =
    "LK-GST-2 the guest accepts a challenge only from the lock that holds its session";
pub const P_UNLOCK: &str = "sometimes: the guest unlocks";
pub const P_RELAY: &str = "sometimes: a relayed unlock on the attacker's connection (§11.3)";
pub const P_SEEN_REQUEST_REPLAY: &str = "sometimes: the issuer refuses a replayed request";
pub const P_SEEN_REVOKED: &str = "sometimes: the lock refuses a revoked grant or session";
pub const P_SEEN_RESPONSE_REPLAY: &str = "sometimes: the lock refuses a response that unlocked";
pub const P_SEEN_GUEST_REFUSES: &str = "sometimes: the guest refuses a challenge";
pub const P_SEEN_EXPIRED: &str = "sometimes: the lock refuses an expired grant or session";
pub const P_SEEN_BEACON_REPLAY: &str = "sometimes: the lock refuses a replayed beacon";
pub const P_LIVENESS: &str =
    "liveness: after GST an honest guest with a live grant eventually unlocks";
pub const P_GST_UNLOCK: &str = "sometimes: the post-GST run unlocks";

fn live_grant_holder(s: &State, u: &UnlockFact) -> bool {
    let Some(g) = s.grant(&u.grant_id) else {
        return false;
    };
    g.lock_id == LOCK_A
        && g.guest_id == u.guest_id
        && g.guest_id == GUEST
        && g.session_id == u.session_id
        && s.guest_accepted.contains(&u.grant_id)
        && u.response_from_guest
        && !u.after_revocation
        && u.lock_now.secs() >= g.not_before
        && u.lock_now.secs() < g.not_after
}

fn accepted_at_most_once(s: &State) -> bool {
    s.unlocks.iter().enumerate().all(|(i, u)| {
        s.unlocks[i + 1..].iter().all(|v| {
            v.response != u.response && (u.challenge.is_none() || v.challenge != u.challenge)
        })
    })
}

fn one_grant_per_request(s: &State) -> bool {
    s.issued.iter().enumerate().all(|(i, g)| {
        s.issued[i + 1..]
            .iter()
            .all(|h| h.request_id != g.request_id)
    })
}

fn guest_accepts_only_its_lock(s: &State) -> bool {
    s.answers.iter().all(|a| {
        s.challenges.iter().any(|c| {
            c.id == a.challenge
                && Some(c.select) == a.guest_select
                && latchkey::frame::ChallengeView::parse(&bytes(c.id))
                    .is_ok_and(|v| Some(v.session_id()) == a.guest_session)
        })
    })
}

impl Model for LatchkeyModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.cfg.clocks.iter().map(|c| self.initial(*c)).collect()
    }

    fn actions(&self, s: &State, out: &mut Vec<Action>) {
        if s.stable {
            return;
        }
        let c = &self.cfg;
        if c.stabilize {
            out.push(Action::Stabilize);
        }
        if s.n_ticks < c.max_ticks {
            out.extend(c.ticks.iter().map(|ms| Action::Tick(*ms)));
        }
        if s.n_requests < c.max_requests {
            out.push(Action::GuestRequests);
        }
        for (k, m) in s.mqtt.iter().enumerate() {
            if !m.dropped {
                out.push(Action::Deliver(k));
                if c.drops && !m.delivered {
                    out.push(Action::Drop(k));
                }
            }
        }
        if s.n_revocations < c.max_revocations {
            for (k, g) in s.issued.iter().enumerate() {
                if !s.issuer_revoked.contains(&g.grant_id) {
                    out.push(Action::IssuerRevokes(k));
                }
            }
        }
        if s.n_attempts < c.max_attempts && s.guest_grant.is_some() {
            out.push(Action::GuestStarts);
        }
        out.extend((0..s.beacons.len()).map(Action::LockHears));
        if s.attempting {
            out.push(Action::GuestSelects { write: true });
            out.push(Action::GuestSelects { write: false });
            for k in 0..s.challenges.len() {
                out.push(Action::GuestReads { k, write: true });
                out.push(Action::GuestReads { k, write: false });
            }
        }
        if c.attacker_gatt {
            out.extend((0..s.beacons.len()).map(Action::AttackerSelects));
        }
        for k in 0..s.responses.len() {
            out.push(Action::AttackerResponds {
                k,
                conn: CONN_GUEST,
            });
            if c.attacker_gatt {
                out.push(Action::AttackerResponds {
                    k,
                    conn: CONN_ATTACKER,
                });
            }
        }
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        let n = self.apply(s, a);
        (n != *s).then_some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![
            Property::<Self>::always(P_LIVE_GRANT, |_, s| {
                s.unlocks.iter().all(|u| live_grant_holder(s, u))
            }),
            Property::<Self>::always(P_ONCE, |_, s| accepted_at_most_once(s)),
            Property::<Self>::always(P_REVOKED, |_, s| {
                s.unlocks.iter().all(|u| !u.after_revocation)
            }),
            Property::<Self>::always(P_EXPIRED, |_, s| {
                s.unlocks.iter().all(|u| {
                    s.grant(&u.grant_id)
                        .is_some_and(|g| u.lock_now.secs() < g.not_after)
                })
            }),
            Property::<Self>::always(P_REQUEST_REPLAY, |_, s| one_grant_per_request(s)),
            Property::<Self>::always(P_GUEST_LOCK, |_, s| guest_accepts_only_its_lock(s)),
            Property::<Self>::sometimes(P_UNLOCK, |_, s| !s.unlocks.is_empty()),
        ];
        if self.cfg.attacker_gatt {
            p.push(Property::<Self>::sometimes(P_RELAY, |_, s| {
                s.unlocks.iter().any(|u| u.conn == CONN_ATTACKER)
            }));
        }
        type Witness = (&'static str, fn(&LatchkeyModel, &State) -> bool);
        let witnesses: [Witness; 6] = [
            (P_SEEN_REQUEST_REPLAY, |_, s| {
                s.seen & seen::REQUEST_REPLAY != 0
            }),
            (P_SEEN_REVOKED, |_, s| s.seen & seen::REVOKED_REFUSED != 0),
            (P_SEEN_RESPONSE_REPLAY, |_, s| {
                s.seen & seen::RESPONSE_REPLAY_REFUSED != 0
            }),
            (P_SEEN_GUEST_REFUSES, |_, s| {
                s.seen & seen::GUEST_REFUSED_CHALLENGE != 0
            }),
            (P_SEEN_EXPIRED, |_, s| s.seen & seen::EXPIRED_REFUSED != 0),
            (P_SEEN_BEACON_REPLAY, |_, s| {
                s.seen & seen::BEACON_REPLAY_REFUSED != 0
            }),
        ];
        p.extend(witnesses.iter().map(|(n, f)| Property::sometimes(n, *f)));
        if self.cfg.stabilize {
            p.push(Property::<Self>::eventually(P_LIVENESS, |_, s| {
                !s.unlocks.is_empty() || (s.stable && s.excused)
            }));
            p.push(Property::<Self>::sometimes(P_GST_UNLOCK, |_, s| {
                s.unlocked_after_gst
            }));
        }
        p
    }
}
