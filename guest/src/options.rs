//! What a [`Guestd`](crate::Guestd) needs: the enrollment, the broker connection, and time
//! limits.

use std::path::PathBuf;
use std::time::Duration;

use latchkey::topics::DEFAULT_PREFIX;
use latchkey_transport::mqtt::MqttConfig;

use crate::bundle::EnrollmentBundle;

/// Default validity requested for a grant. Short: a grant is only needed for one unlock,
/// and a leaked session key is worth less the sooner it expires. The issuer may cap it.
pub const DEFAULT_GRANT_VALIDITY_S: u32 = 600;

/// Time limits of one unlock. The defaults follow the design and the spec's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long [`Guestd::new`](crate::Guestd::new) waits for the broker's CONNACK.
    /// Default 10 s.
    pub mqtt_connect: Duration,
    /// How long to wait for the GuestGrant (all requests together). Default 20 s.
    pub grant: Duration,
    /// When no grant answered a request within this time, a new request (new request id)
    /// is published. Default 5 s.
    pub grant_retry: Duration,
    /// The BLE attempt, from the first advertisement to the outcome. Default 12 s: the spec
    /// (§7.3) asks to abort after `connection_window_ms + response_budget_ms`.
    pub attempt: Duration,
    /// Finding and connecting to the lock (bounded by what is left of `attempt`).
    /// Default 10 s, the lock's connection window.
    pub connect: Duration,
    /// While the lock answers the Select with `no_pending_auth` (it may not have heard the
    /// beacon yet, spec §7.3 "selected"), the Select is repeated for this long. Default 2 s.
    pub select_retry_for: Duration,
    /// Pause between two such Selects. Default 200 ms.
    pub select_retry_every: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            mqtt_connect: Duration::from_secs(10),
            grant: Duration::from_secs(20),
            grant_retry: Duration::from_secs(5),
            attempt: Duration::from_secs(12),
            connect: Duration::from_secs(10),
            select_retry_for: Duration::from_secs(2),
            select_retry_every: Duration::from_millis(200),
        }
    }
}

/// Everything a guest daemon is configured with.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// Identity, enrollment key, broker, locks.
    pub bundle: EnrollmentBundle,
    /// The broker connection. Keep the client id stable (`latchkey-guest-{guest_id}`) so
    /// the broker's persistent session holds grants sent while the guest was offline.
    pub mqtt: MqttConfig,
    /// Topic prefix, `latchkey/v1` by default.
    pub topic_prefix: String,
    /// Bluetooth company id to advertise under (the lock must expect the same one).
    pub company_id: u16,
    /// Validity to request for a grant, in seconds (the issuer may grant less).
    pub grant_validity_s: u32,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Where accepted grants are kept across restarts (the CLI uses STATE_DIR/grants);
    /// `None` keeps them in memory only.
    pub grant_dir: Option<PathBuf>,
}

impl GuestOptions {
    /// Options from a bundle: its broker with client id `latchkey-guest-{guest_id}`, its
    /// company id, the default prefix, validity and timeouts.
    pub fn new(bundle: EnrollmentBundle) -> Self {
        let mqtt = MqttConfig::new(bundle.broker_url().clone(), client_id(&bundle));
        Self {
            company_id: bundle.company_id(),
            bundle,
            mqtt,
            topic_prefix: DEFAULT_PREFIX.to_owned(),
            grant_validity_s: DEFAULT_GRANT_VALIDITY_S,
            timeouts: Timeouts::default(),
            grant_dir: None,
        }
    }
}

/// The stable MQTT client id of a guest: `latchkey-guest-{guest_id}`.
pub fn client_id(bundle: &EnrollmentBundle) -> String {
    format!("latchkey-guest-{}", bundle.guest_id())
}
