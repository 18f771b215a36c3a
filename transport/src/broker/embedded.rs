//! The embedded broker: rumqttd on its own threads behind a front listener we own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Notification};
use tracing::{error, info};

use super::config::rumqttd_config;
use super::error::BrokerError;
use super::front::Front;
use super::probe;
use crate::rng::SplitMix64;

/// How long `start` waits for a real MQTT round trip through the new broker.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_RETRY: Duration = Duration::from_millis(20);

/// An in-process MQTT 3.1.1 broker for single-machine deployments and tests.
///
/// Layout: clients connect to a listener this type owns on the requested address; each
/// connection is spliced to rumqttd, which listens on a private loopback port.
///
/// # What stopping can and cannot do
///
/// rumqttd 0.20 has no shutdown API: its router and server threads run until the process
/// exits. [`EmbeddedBroker::stop`] (and drop) therefore:
/// - closes the public listener, so the port is free again at once, and
/// - drops every client connection, so clients see the broker go away;
///
/// but rumqttd's threads and its private loopback port stay allocated (idle, unreachable)
/// until the process exits. A new `EmbeddedBroker` on the same address is a fresh rumqttd
/// with no sessions, subscriptions or retained messages from the old one.
#[derive(Debug)]
pub struct EmbeddedBroker {
    local_addr: SocketAddr,
    front: Front,
    rumqttd: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0 picks a free port; see
    /// [`EmbeddedBroker::local_addr`]).
    ///
    /// Returns [`BrokerError::Bind`] when `addr` cannot be bound — typically because another
    /// process (maybe another broker) holds the port — instead of silently talking to it.
    /// Returns only after a real MQTT CONNECT/PUBLISH through `addr` has been seen by this
    /// broker's own router, so the broker is ready for clients.
    ///
    /// Blocks for up to 5 s (normally a few milliseconds); from async code, call it before
    /// starting the runtime or through `tokio::task::spawn_blocking`.
    pub fn start(addr: SocketAddr) -> Result<Self, BrokerError> {
        // Bind the public socket first: an occupied port fails here, loudly and race-free.
        let public =
            TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
        let local_addr = public
            .local_addr()
            .map_err(|source| BrokerError::Bind { addr, source })?;

        let internal = pick_loopback_port()?;
        let mut broker = Broker::new(rumqttd_config(internal));

        // A local link subscribed to a random topic lets us recognise our own broker: a
        // stranger on the internal port would answer CONNECT but never deliver this.
        let mut rng = SplitMix64::from_entropy();
        let nonce = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        let probe_topic = format!("latchkey/broker-probe/{nonce}");
        let (mut link_tx, mut link_rx) = broker
            .link(&format!("latchkey-broker-selfcheck-{nonce}"))
            .map_err(|e| BrokerError::Link(e.to_string()))?;
        link_tx
            .subscribe(probe_topic.clone())
            .map_err(|e| BrokerError::Link(e.to_string()))?;

        let rumqttd = thread::Builder::new()
            .name("latchkey-rumqttd".to_owned())
            .spawn(move || match broker.start() {
                // start() returns only once every server thread died, e.g. a failed bind.
                Ok(()) => error!("rumqttd stopped: its listener failed (see rumqttd log)"),
                Err(e) => error!(error = %e, "rumqttd failed to start"),
            })
            .map_err(|source| BrokerError::Setup {
                context: "rumqttd thread",
                source,
            })?;

        let front = Front::spawn(public, internal)?;
        let this = Self {
            local_addr,
            front,
            rumqttd,
        };

        // A wildcard bind address is reachable through loopback.
        let probe_addr = match local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, local_addr.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, local_addr.port()))
            }
            _ => local_addr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let client_id = format!("latchkey-probe-{nonce}");
        let reason = loop {
            if !this.is_running() {
                break "rumqttd exited (could not bind its internal port)".to_owned();
            }
            match probe::connect_and_publish(probe_addr, &client_id, &probe_topic, nonce.as_bytes())
            {
                Ok(()) if saw_probe(&mut link_rx, &probe_topic, nonce.as_bytes(), deadline) => {
                    info!(addr = %local_addr, "embedded MQTT broker ready");
                    return Ok(this);
                }
                Ok(()) => {
                    break "a broker answered but it was not ours (probe publish not routed)"
                        .to_owned();
                }
                Err(reason) if Instant::now() >= deadline => break reason,
                Err(_) => thread::sleep(PROBE_RETRY),
            }
        };
        Err(BrokerError::NotReady {
            addr: local_addr,
            timeout: READY_TIMEOUT,
            reason,
        })
    }

    /// The address clients should connect to (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `mqtt://` URL string for [`EmbeddedBroker::local_addr`].
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.local_addr)
    }

    /// True while both the public listener and rumqttd are alive.
    pub fn is_running(&self) -> bool {
        self.front.is_running() && !self.rumqttd.is_finished()
    }

    /// Closes the public port and drops all client connections. See the type docs for what
    /// remains of rumqttd afterwards.
    pub fn stop(mut self) {
        self.front.stop();
        info!(addr = %self.local_addr, "embedded MQTT broker stopped");
    }
}

fn pick_loopback_port() -> Result<SocketAddr, BrokerError> {
    // Ask the OS for a free port, then release it for rumqttd; a thief in between is caught
    // by the self-check probe.
    let probe =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| BrokerError::Setup {
            context: "internal loopback port",
            source,
        })?;
    probe.local_addr().map_err(|source| BrokerError::Setup {
        context: "internal loopback port",
        source,
    })
}

/// Waits (until `deadline`) for the router to deliver our probe publish to the local link.
fn saw_probe(
    link_rx: &mut rumqttd::local::LinkRx,
    topic: &str,
    payload: &[u8],
    deadline: Instant,
) -> bool {
    // Give the router at least a moment even if the retry loop used up the deadline.
    let deadline = deadline.max(Instant::now() + Duration::from_millis(500));
    loop {
        match link_rx.recv_deadline(deadline) {
            Ok(Some(Notification::Forward(fwd))) => {
                if fwd.publish.topic.as_ref() == topic.as_bytes()
                    && fwd.publish.payload.as_ref() == payload
                {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
