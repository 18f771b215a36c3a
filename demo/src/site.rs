//! A whole Latchkey deployment in one process, for the demo and the end-to-end tests:
//! a broker endpoint, an issuer state directory in a temporary folder, locks and guests on
//! one [`SimAir`].
//!
//! Everything goes through the daemons' real entry points and files: `keygen`,
//! `add_lock` (whose `lock.toml` the lock then loads), `enroll_guest` (whose bundle the
//! guest then loads), [`Issuerd::start`], [`Lockd::start`], [`Guestd::new`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use latchkey::{Guest, GuestConfig, GuestId, LockId, topics};
use latchkey_guest::{EnrollmentBundle, GuestOptions, Guestd};
use latchkey_issuer::state::StatePaths;
use latchkey_issuer::store::{KekSource, OpenMode, Store};
use latchkey_issuer::{
    AddLockOptions, BrokerChoice, EnrollGuestOptions, IssuerOptions, Issuerd, IssuerdHandle,
    KeygenOptions, WebOptions,
};
use latchkey_lock::{ConfigOverrides, LoadedLockConfig, LockOptions, Lockd, LockdHandle};
use latchkey_transport::mqtt::{
    Backoff, ConnectionState, Incoming, MqttClient, MqttConfig, MqttUrl, QoS, TlsFiles,
};
use latchkey_transport::radio::{SimAir, SimRadio};
use tokio::sync::mpsc;

use crate::error::DemoError;

/// How long to wait for a connection, a subscription or a delivery before giving up.
pub const WAIT: Duration = Duration::from_secs(20);

/// Validity asked for by the readiness probe's grants.
const PROBE_GRANT_VALIDITY_S: u32 = 60;

/// Name of the issuer's state directory inside the site's directory.
const ISSUER_STATE: &str = "issuer-state";

/// The identity the broker sees for the issuer (its certificate CN under mutual TLS).
pub const ISSUER_IDENTITY: &str = "issuer";

type TlsFor = dyn Fn(&str) -> Option<TlsFiles> + Send + Sync;

/// How clients reach the broker: its URL, and the TLS files for each identity.
#[derive(Clone)]
pub struct Endpoint {
    url: MqttUrl,
    tls: Arc<TlsFor>,
}

impl Endpoint {
    /// A plain `mqtt://` broker.
    pub fn plain(url: MqttUrl) -> Self {
        Self {
            url,
            tls: Arc::new(|_| None),
        }
    }

    /// A broker whose clients use `tls(identity)` (CA, and a client certificate whose CN
    /// is the identity under mutual TLS).
    pub fn with_tls(
        url: MqttUrl,
        tls: impl Fn(&str) -> Option<TlsFiles> + Send + Sync + 'static,
    ) -> Self {
        Self {
            url,
            tls: Arc::new(tls),
        }
    }

    /// The broker URL.
    pub fn url(&self) -> &MqttUrl {
        &self.url
    }

    /// The TLS files of `identity`.
    pub fn tls(&self, identity: &str) -> Option<TlsFiles> {
        (self.tls)(identity)
    }

    /// A client configuration for `identity` with client id `client_id`.
    pub fn config(&self, identity: &str, client_id: &str) -> MqttConfig {
        let mut c = MqttConfig::new(self.url.clone(), client_id);
        c.tls = self.tls(identity);
        // Reconnect quickly after a broker restart (tests restart brokers on purpose).
        c.backoff = Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        };
        c
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.to_string())
            .finish_non_exhaustive()
    }
}

/// A registered lock: its id and the files `add-lock` wrote.
#[derive(Debug, Clone)]
pub struct LockSetup {
    /// The lock's id.
    pub lock_id: LockId,
    /// `lock.toml` written by `add-lock`.
    pub config_file: PathBuf,
    /// Name of its radio on the air.
    pub radio: String,
    /// A guest enrolled for this lock only, used to prove the lock receives grants
    /// ([`Site::wait_lock_ready`]).
    pub probe: GuestSetup,
}

/// An enrolled guest: its id and the enrollment bundle `enroll-guest` wrote.
#[derive(Debug, Clone)]
pub struct GuestSetup {
    /// The guest's id.
    pub guest_id: GuestId,
    /// The bundle file.
    pub bundle_file: PathBuf,
    /// Name of its radio on the air.
    pub radio: String,
}

/// A deployment: broker endpoint, issuer state, one simulated air.
pub struct Site {
    dir: tempfile::TempDir,
    endpoint: Endpoint,
    air: SimAir,
    issuer: Option<IssuerdHandle>,
    issuer_tweak: Arc<dyn Fn(&mut IssuerOptions) + Send + Sync>,
    issuer_fingerprint: String,
    counter: u32,
    admin_web: bool,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("dir", &self.dir.path())
            .field("endpoint", &self.endpoint)
            .field("issuer_running", &self.issuer.is_some())
            .finish_non_exhaustive()
    }
}

impl Site {
    /// A new deployment in a fresh temporary directory: generates the issuer's key
    /// (`latchkey-issuer keygen`). The issuer is not started yet.
    pub fn new(endpoint: Endpoint, air: SimAir) -> Result<Self, DemoError> {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-site-")
            .tempdir()
            .map_err(|e| DemoError::io("create a temporary directory", e))?;
        let key = latchkey_issuer::keygen_with(
            &dir.path().join(ISSUER_STATE),
            &KeygenOptions::default(),
        )?;
        Ok(Self {
            dir,
            endpoint,
            air,
            issuer: None,
            issuer_tweak: Arc::new(|_| {}),
            issuer_fingerprint: key.fingerprint,
            counter: 0,
            admin_web: false,
        })
    }

    /// SHA-256 of the issuer's public key (SPKI DER), hex.
    pub fn issuer_fingerprint(&self) -> &str {
        &self.issuer_fingerprint
    }

    /// Changes the issuer's options before every (re)start, e.g. shorter retry intervals.
    pub fn tweak_issuer(&mut self, f: impl Fn(&mut IssuerOptions) + Send + Sync + 'static) {
        self.issuer_tweak = Arc::new(f);
    }

    /// Serves the admin web from the issuer (on 127.0.0.1, a free port; see
    /// [`Site::admin_web_url`]) at its next start; its enrollment bundles name this site's
    /// broker.
    pub fn serve_admin_web(&mut self) {
        self.admin_web = true;
    }

    /// The admin web's base URL (`http://127.0.0.1:PORT`), while the issuer serves it.
    pub fn admin_web_url(&self) -> Option<String> {
        let addr = self.issuer.as_ref()?.web_addr()?;
        Some(format!("http://{addr}"))
    }

    /// The temporary directory holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The issuer's state directory.
    pub fn issuer_state(&self) -> PathBuf {
        self.dir.path().join(ISSUER_STATE)
    }

    /// The broker endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The simulated air.
    pub fn air(&self) -> &SimAir {
        &self.air
    }

    /// The options the issuer is started with.
    pub fn issuer_options(&self) -> IssuerOptions {
        let mut o = IssuerOptions::new(self.issuer_state());
        o.broker = BrokerChoice::External(
            self.endpoint
                .config(ISSUER_IDENTITY, latchkey_issuer::config::DEFAULT_CLIENT_ID),
        );
        if self.admin_web {
            let mut web = WebOptions::new(self.endpoint.url.to_string());
            web.config.listen = (std::net::Ipv4Addr::LOCALHOST, 0).into();
            o.web = Some(web);
        }
        (self.issuer_tweak)(&mut o);
        o
    }

    /// Starts the issuer and waits until the broker confirmed its subscriptions.
    pub async fn start_issuer(&mut self) -> Result<&IssuerdHandle, DemoError> {
        if self.issuer.is_none() {
            let handle = Issuerd::start(self.issuer_options()).await?;
            handle.wait_subscribed(WAIT).await?;
            self.issuer = Some(handle);
        }
        self.issuer()
    }

    /// The running issuer.
    pub fn issuer(&self) -> Result<&IssuerdHandle, DemoError> {
        self.issuer
            .as_ref()
            .ok_or_else(|| DemoError::Unexpected("the issuer is not running".into()))
    }

    /// Stops the issuer gracefully (its state directory stays).
    pub async fn stop_issuer(&mut self) {
        if let Some(h) = self.issuer.take() {
            h.shutdown().await;
        }
    }

    fn next_name(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{}", self.counter)
    }

    /// `latchkey-issuer add-lock`: a new lock key pair, `lock.toml`, registration.
    pub fn add_lock(&mut self) -> Result<LockSetup, DemoError> {
        let radio = self.next_name("lock");
        let out = self.dir.path().join(&radio);
        let opts = AddLockOptions::new(&out, self.endpoint.url.to_string());
        let added = latchkey_issuer::add_lock_with(&self.issuer_state(), &opts)?;
        let probe = self.enroll_guest(&[added.lock_id])?;
        Ok(LockSetup {
            lock_id: added.lock_id,
            config_file: added.config_file,
            radio,
            probe,
        })
    }

    /// `latchkey-issuer enroll-guest`: a new enrollment key and bundle for `locks`.
    pub fn enroll_guest(&mut self, locks: &[LockId]) -> Result<GuestSetup, DemoError> {
        let radio = self.next_name("phone");
        let bundle_file = self.dir.path().join(format!("{radio}-enrollment.json"));
        let opts =
            EnrollGuestOptions::new(locks.to_vec(), &bundle_file, self.endpoint.url.to_string());
        let guest_id = latchkey_issuer::enroll_guest_with(&self.issuer_state(), &opts)?;
        Ok(GuestSetup {
            guest_id,
            bundle_file,
            radio,
        })
    }

    /// Enrollment by QR code only, as a phone does it: `latchkey-issuer enroll-guest
    /// --name NAME --qr-png` writes no bundle file, and the phone's bundle is what
    /// `latchkey-guest enroll --qr-image` reads from the PNG. Returns the guest and the PNG.
    pub fn enroll_guest_by_qr(
        &mut self,
        locks: &[LockId],
        name: &str,
    ) -> Result<(GuestSetup, PathBuf), DemoError> {
        let radio = self.next_name("phone");
        let png = self.dir.path().join(format!("{radio}-enrollment.png"));
        let bundle_file = self.dir.path().join(format!("{radio}-enrollment.json"));
        let mut opts =
            EnrollGuestOptions::new(locks.to_vec(), &bundle_file, self.endpoint.url.to_string());
        opts.out_file = None;
        opts.qr_png = Some(png.clone());
        opts.name = name.to_owned();
        let guest_id = latchkey_issuer::enroll_guest_with(&self.issuer_state(), &opts)?;
        let bundle = EnrollmentBundle::load_qr_png(&png)?;
        if bundle.guest_id() != guest_id {
            return Err(DemoError::Unexpected(format!(
                "the QR code names guest {}, enrolled {guest_id}",
                bundle.guest_id()
            )));
        }
        bundle.save(&bundle_file)?;
        Ok((
            GuestSetup {
                guest_id,
                bundle_file,
                radio,
            },
            png,
        ))
    }

    /// The issuer's registry, opened beside the running daemon (SQLite allows readers),
    /// for reading the audit trail and the alerts.
    pub fn registry(&self) -> Result<Store, DemoError> {
        Ok(Store::open(
            &StatePaths::new(self.issuer_state()),
            &KekSource::Auto,
            OpenMode::Existing,
        )?)
    }

    /// The lock's options, loaded from the `lock.toml` that `add-lock` wrote, with the
    /// simulated air and this endpoint's TLS files.
    pub fn lock_options(&self, lock: &LockSetup) -> Result<LockOptions, DemoError> {
        let identity = lock.lock_id.to_string();
        let tls = self.endpoint.tls(&identity);
        let overrides = ConfigOverrides {
            adapter: Some("sim".into()),
            ca_file: tls.as_ref().and_then(|t| t.ca_file.clone()),
            cert_file: tls
                .as_ref()
                .and_then(|t| t.client_auth.as_ref())
                .map(|a| a.cert_file.clone()),
            key_file: tls
                .as_ref()
                .and_then(|t| t.client_auth.as_ref())
                .map(|a| a.key_file.clone()),
            ..ConfigOverrides::default()
        };
        let loaded = LoadedLockConfig::load(Some(&lock.config_file), &overrides)?;
        let mut options = loaded.options;
        options.mqtt.backoff = self.endpoint.config(&identity, "x").backoff;
        Ok(options)
    }

    /// Starts a lock daemon with `options` on its radio.
    pub async fn start_lock_with(
        &self,
        lock: &LockSetup,
        options: LockOptions,
    ) -> Result<LockdHandle, DemoError> {
        let handle = Lockd::start(options, self.air.radio(&lock.radio)).await?;
        self.wait_lock_ready(lock, &handle).await?;
        Ok(handle)
    }

    /// Starts a lock daemon from its `lock.toml` and waits until it receives grants.
    pub async fn start_lock(&self, lock: &LockSetup) -> Result<LockdHandle, DemoError> {
        self.start_lock_with(lock, self.lock_options(lock)?).await
    }

    /// Waits until `lockd` is connected and subscribed to its grants topic, so it cannot
    /// miss a grant even on a broker without persistence. The proof is a real grant: the
    /// lock's own probe guest (enrolled by [`Site::add_lock`]) sends GrantRequests until
    /// the lock reports a newly installed grant. This goes through the issuer like any
    /// grant, so it also works under the shipped ACL, where only the issuer (whose session
    /// must not be taken over) may publish to a lock.
    pub async fn wait_lock_ready(
        &self,
        lock: &LockSetup,
        lockd: &LockdHandle,
    ) -> Result<(), DemoError> {
        let mut state = lockd.mqtt_state();
        let connected = matches!(
            tokio::time::timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Connected)).await,
            Ok(Ok(_))
        );
        if !connected {
            return Err(DemoError::Timeout("the lock's MQTT connection".into()));
        }
        let probe = &lock.probe;
        let bundle = EnrollmentBundle::load(&probe.bundle_file)?;
        let mut core = Guest::new(GuestConfig::new(
            bundle.guest_id(),
            bundle.enrollment_key().clone(),
        ))
        .map_err(|e| DemoError::Unexpected(format!("probe guest: {e}")))?;
        let mut rng =
            latchkey_guest::os_seeded().map_err(|e| DemoError::Unexpected(e.to_string()))?;
        let identity = probe.guest_id.to_string();
        let (client, _incoming) = self
            .mqtt_client(&identity, &format!("latchkey-guest-{identity}"))
            .await?;
        let topic = topics::requests(topics::DEFAULT_PREFIX, &probe.guest_id);
        let before = lockd.stats().grants_installed;
        let mut stats = lockd.stats_watch();
        let ready = tokio::time::timeout(WAIT, async {
            loop {
                let frame = core.request_grant(
                    latchkey_guest::clock::system_now(),
                    lock.lock_id,
                    PROBE_GRANT_VALIDITY_S,
                    &mut rng,
                );
                client
                    .publish(&topic, frame.to_vec(), QoS::AtLeastOnce, false)
                    .await?;
                // Never keep the watch's borrow: the lock's task needs it to publish.
                let installed = matches!(
                    tokio::time::timeout(
                        Duration::from_millis(500),
                        stats.wait_for(|s| s.grants_installed > before),
                    )
                    .await,
                    Ok(Ok(_))
                );
                if installed {
                    return Ok::<(), DemoError>(());
                }
            }
        })
        .await;
        client.shutdown().await;
        ready.map_err(|_| DemoError::Timeout("the lock's grants subscription".into()))?
    }

    /// The guest's options from its bundle, with this endpoint's TLS files.
    pub fn guest_options(&self, guest: &GuestSetup) -> Result<GuestOptions, DemoError> {
        let bundle = EnrollmentBundle::load(&guest.bundle_file)?;
        let mut options = GuestOptions::new(bundle);
        let identity = guest.guest_id.to_string();
        options.mqtt.tls = self.endpoint.tls(&identity);
        options.mqtt.backoff = self.endpoint.config(&identity, "x").backoff;
        Ok(options)
    }

    /// A guest daemon (connected to the broker) on its radio.
    pub async fn guest(&self, guest: &GuestSetup) -> Result<Guestd<SimRadio>, DemoError> {
        self.guest_with(guest, self.guest_options(guest)?).await
    }

    /// A guest daemon with explicit options.
    pub async fn guest_with(
        &self,
        guest: &GuestSetup,
        options: GuestOptions,
    ) -> Result<Guestd<SimRadio>, DemoError> {
        Ok(Guestd::new(options, self.air.radio(&guest.radio)).await?)
    }

    /// A raw MQTT client with `identity`'s TLS files, connected.
    pub async fn mqtt_client(
        &self,
        identity: &str,
        client_id: &str,
    ) -> Result<(MqttClient, mpsc::Receiver<Incoming>), DemoError> {
        let (client, rx) = MqttClient::spawn(self.endpoint.config(identity, client_id))?;
        let mut state = client.state();
        tokio::time::timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Connected))
            .await
            .map_err(|_| DemoError::Timeout(format!("MQTT connection of {client_id}")))?
            .map_err(|_| DemoError::Unexpected("MQTT client stopped".into()))?;
        Ok((client, rx))
    }

    /// Stops the issuer (locks and guests are owned by the caller).
    pub async fn shutdown(mut self) {
        self.stop_issuer().await;
    }
}
