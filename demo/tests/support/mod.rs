//! Shared pieces of the end-to-end tests: the environments (a broker plus a [`Site`]),
//! waits on daemon state, and the protocol suite run against every broker.
#![allow(dead_code)]

pub mod mosquitto;
pub mod suite;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use latchkey::UnixMillis;
use latchkey_demo::{Endpoint, Site};
use latchkey_guest::WallClock;
use latchkey_issuer::IssuerEvent;
use latchkey_lock::{LockStats, LockdHandle};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::radio::SimAir;
use tokio::sync::broadcast;

use mosquitto::{Mode, Mosquitto};

/// Bound on every wait for something that should happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// The broker of an environment.
#[derive(Debug)]
pub enum Broker {
    /// The transport crate's embedded broker.
    Embedded(EmbeddedBroker),
    /// A Mosquitto child process.
    Mosquitto(Mosquitto),
}

/// A broker and a deployment using it. Fields drop in order: the site (issuer) first.
#[derive(Debug)]
pub struct Env {
    pub site: Site,
    pub broker: Broker,
}

impl Env {
    /// The embedded broker on a free loopback port, the issuer started.
    pub async fn embedded() -> Env {
        let broker = tokio::task::spawn_blocking(|| {
            EmbeddedBroker::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        })
        .await
        .unwrap()
        .expect("embedded broker starts");
        let url = broker.url().parse().unwrap();
        Self::with(Endpoint::plain(url), Broker::Embedded(broker)).await
    }

    /// Mosquitto in `mode`, the issuer started; `None` if Mosquitto is absent and the run
    /// opted out (see `mosquitto.rs`).
    pub async fn mosquitto(mode: Mode, test: &str) -> Option<Env> {
        let broker = Mosquitto::start(mode, test)?;
        let endpoint = broker.endpoint();
        Some(Self::with(endpoint, Broker::Mosquitto(broker)).await)
    }

    async fn with(endpoint: Endpoint, broker: Broker) -> Env {
        let mut site = Site::new(endpoint, SimAir::default()).expect("site (issuer keygen)");
        site.start_issuer().await.expect("issuer starts");
        Env { site, broker }
    }

    /// The Mosquitto broker (panics for the embedded one).
    pub fn mosquitto_mut(&mut self) -> &mut Mosquitto {
        match &mut self.broker {
            Broker::Mosquitto(m) => m,
            Broker::Embedded(_) => panic!("not a Mosquitto environment"),
        }
    }
}

/// Waits until the lock's stats satisfy `pred`; returns a copy. Never holds the watch's
/// borrow across an await (the lock's task needs it to publish).
pub async fn wait_stats(
    lock: &LockdHandle,
    what: &str,
    pred: impl Fn(&LockStats) -> bool,
) -> LockStats {
    let mut watch = lock.stats_watch();
    let ok = matches!(
        tokio::time::timeout(WAIT, watch.wait_for(|s| pred(s))).await,
        Ok(Ok(_))
    );
    let now = lock.stats();
    assert!(
        ok,
        "timed out waiting for the lock: {what}; stats now {now:#?}"
    );
    now
}

/// The first event on `events` matching `pred`, within [`WAIT`].
pub async fn wait_event(
    events: &mut broadcast::Receiver<IssuerEvent>,
    what: &str,
    pred: impl Fn(&IssuerEvent) -> bool,
) -> IssuerEvent {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return Some(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        _ => panic!("timed out waiting for the issuer: {what}"),
    }
}

/// A wall clock running `behind` the system clock: a phone whose clock is late.
#[derive(Debug, Clone, Copy)]
pub struct LateClock(pub Duration);

impl WallClock for LateClock {
    fn now(&self) -> UnixMillis {
        let now = latchkey_guest::clock::system_now();
        UnixMillis(now.0.saturating_sub(self.0.as_millis() as u64))
    }
}

/// A late clock as the guest takes it.
pub fn late_clock(behind: Duration) -> Arc<dyn WallClock> {
    Arc::new(LateClock(behind))
}

/// Unix seconds now.
pub fn unix_now_s() -> u64 {
    latchkey_guest::clock::system_now().secs()
}
