//! Client configuration and its translation into rumqttc options.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::rustls;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::backoff::Backoff;
use super::error::MqttError;
use super::url::MqttUrl;

/// Default cap on incoming and outgoing payload size.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

/// PEM files for `mqtts://` connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) that sign the broker's certificate. `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and private key for mutual TLS. Requires `ca_file`.
    pub client_auth: Option<ClientAuthFiles>,
}

/// Client certificate chain and private key (PEM) for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthFiles {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key_file: PathBuf,
}

/// Everything [`MqttClient`](super::MqttClient) needs to connect.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker URL (credentials are taken from it).
    pub url: MqttUrl,
    /// Client id; also the key of the persistent session on the broker, so keep it stable.
    pub client_id: String,
    /// TLS material for `mqtts://`; must be `None` for `mqtt://`.
    pub tls: Option<TlsFiles>,
    /// MQTT keep-alive: zero (off) or whole seconds in `1..=65535`. Default 30 s.
    pub keep_alive: Duration,
    /// Reconnect backoff. Default base 100 ms, cap 30 s.
    pub backoff: Backoff,
    /// Largest payload accepted or sent; bigger incoming payloads are dropped with a
    /// warning, bigger outgoing ones are refused. Default 64 KiB.
    pub max_payload: usize,
    /// Capacity of the incoming-publish channel. When full, the event loop waits for the
    /// consumer (backpressure) rather than buffering without bound. Default 256.
    pub incoming_capacity: usize,
}

impl MqttConfig {
    /// A config with the defaults documented on each field.
    pub fn new(url: MqttUrl, client_id: impl Into<String>) -> Self {
        Self {
            url,
            client_id: client_id.into(),
            tls: None,
            keep_alive: Duration::from_secs(30),
            backoff: Backoff::default(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            incoming_capacity: 256,
        }
    }

    /// Builds the rumqttc options: persistent session (`clean_session = false`) so QoS 1
    /// messages published while this client was offline are delivered when it returns,
    /// credentials from the URL, TLS from [`TlsFiles`].
    ///
    /// Reads and checks the TLS files now, so a bad path or PEM fails here with a clear
    /// error instead of as an endless reconnect loop later.
    pub fn mqtt_options(&self) -> Result<MqttOptions, MqttError> {
        if self.client_id.is_empty() {
            return Err(MqttError::EmptyClientId);
        }
        let ka = self.keep_alive;
        if !(ka.is_zero()
            || (ka.subsec_nanos() == 0 && (1..=u64::from(u16::MAX)).contains(&ka.as_secs())))
        {
            return Err(MqttError::InvalidKeepAlive(ka));
        }

        let mut options = MqttOptions::new(
            self.client_id.clone(),
            self.url.host_for_connect(),
            self.url.port(),
        );
        options.set_clean_session(false);
        options.set_keep_alive(ka);
        options.set_request_channel_capacity(64);
        // Let frames somewhat larger than our payload cap through rumqttc, so an oversize
        // payload is dropped by us with a warning instead of failing the connection (which
        // with a persistent session would redeliver it forever).
        let incoming_frame_limit = self.max_payload.saturating_mul(2).max(1024 * 1024);
        let outgoing_frame_limit = self.max_payload.saturating_add(FRAME_OVERHEAD);
        options.set_max_packet_size(incoming_frame_limit, outgoing_frame_limit);
        if let Some(user) = self.url.username() {
            options.set_credentials(user, self.url.password().unwrap_or_default());
        }

        match (&self.tls, self.url.is_tls()) {
            (Some(_), false) => return Err(MqttError::TlsWithoutMqtts),
            (None, false) => {}
            (tls, true) => {
                options.set_transport(Transport::tls_with_config(tls_configuration(tls)?));
            }
        }
        Ok(options)
    }
}

/// Room for the topic and fixed/variable headers on top of the payload cap.
pub(crate) const FRAME_OVERHEAD: usize = 4 * 1024;

fn tls_configuration(tls: &Option<TlsFiles>) -> Result<TlsConfiguration, MqttError> {
    // rustls needs a process-wide crypto provider; install ours unless one already is, so
    // a second provider pulled in elsewhere in the build cannot make rustls panic.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let files = tls.clone().unwrap_or_default();
    match files.ca_file {
        Some(ca_path) => {
            let ca = read_file("CA", &ca_path)?;
            check_certs("CA", &ca_path, &ca)?;
            let client_auth = match &files.client_auth {
                None => None,
                Some(auth) => {
                    let cert = read_file("client certificate", &auth.cert_file)?;
                    check_certs("client certificate", &auth.cert_file, &cert)?;
                    let key = read_file("client key", &auth.key_file)?;
                    if PrivateKeyDer::from_pem_slice(&key).is_err() {
                        return Err(MqttError::BadPem {
                            what: "client key",
                            path: auth.key_file.clone(),
                            expected: "private key (PKCS#8, PKCS#1 or SEC1)",
                        });
                    }
                    Some((cert, key))
                }
            };
            Ok(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            })
        }
        None if files.client_auth.is_some() => Err(MqttError::ClientAuthNeedsCa),
        None => {
            // rumqttc's own default panics when the system store cannot be read; do it here
            // with an error instead.
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "no certificates found".to_owned());
                return Err(MqttError::NoSystemRoots(why));
            }
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(TlsConfiguration::Rustls(Arc::new(config)))
        }
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, MqttError> {
    std::fs::read(path).map_err(|source| MqttError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn check_certs(what: &'static str, path: &Path, pem: &[u8]) -> Result<(), MqttError> {
    let mut certs = CertificateDer::pem_slice_iter(pem);
    match certs.next() {
        Some(Ok(_)) => Ok(()),
        _ => Err(MqttError::BadPem {
            what,
            path: path.to_owned(),
            expected: "certificate",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> MqttConfig {
        MqttConfig::new(MqttUrl::parse(url).unwrap(), "lock-1")
    }

    /// A scratch directory unique to this test process and name.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("latchkey-transport-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    // PEM framing and base64 are all that is checked up front; rustls parses DER at connect.
    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn persistent_session_credentials_and_keepalive() {
        let mut c = cfg("mqtt://user:pw@example.org:1999");
        c.keep_alive = Duration::from_secs(15);
        let o = c.mqtt_options().unwrap();
        assert!(!o.clean_session());
        assert_eq!(o.client_id(), "lock-1");
        assert_eq!(o.broker_address(), ("example.org".to_owned(), 1999));
        assert_eq!(o.keep_alive(), Duration::from_secs(15));
        let login = o.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("user", "pw")
        );
        assert!(matches!(o.transport(), Transport::Tcp));
    }

    #[test]
    fn rejects_bad_client_id_and_keepalive() {
        let mut c = cfg("mqtt://h");
        c.client_id.clear();
        assert!(matches!(c.mqtt_options(), Err(MqttError::EmptyClientId)));
        for ka in [Duration::from_millis(500), Duration::from_secs(70_000)] {
            let mut c = cfg("mqtt://h");
            c.keep_alive = ka;
            assert!(matches!(
                c.mqtt_options(),
                Err(MqttError::InvalidKeepAlive(_))
            ));
        }
    }

    #[test]
    fn tls_files_need_mqtts() {
        let mut c = cfg("mqtt://h");
        c.tls = Some(TlsFiles::default());
        assert!(matches!(c.mqtt_options(), Err(MqttError::TlsWithoutMqtts)));
    }

    #[test]
    fn mutual_tls_from_pem_files() {
        let dir = scratch("mtls");
        let (ca, cert, key) = (dir.join("ca.pem"), dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&ca, CERT_PEM).unwrap();
        std::fs::write(&cert, CERT_PEM).unwrap();
        std::fs::write(&key, KEY_PEM).unwrap();
        let mut c = cfg("mqtts://h");
        c.tls = Some(TlsFiles {
            ca_file: Some(ca),
            client_auth: Some(ClientAuthFiles {
                cert_file: cert,
                key_file: key,
            }),
        });
        let o = c.mqtt_options().unwrap();
        assert_eq!(o.broker_address().1, 8883);
        match o.transport() {
            Transport::Tls(TlsConfiguration::Simple {
                ca, client_auth, ..
            }) => {
                assert_eq!(ca, CERT_PEM.as_bytes());
                let (c, k) = client_auth.unwrap();
                assert_eq!(
                    (c.as_slice(), k.as_slice()),
                    (CERT_PEM.as_bytes(), KEY_PEM.as_bytes())
                );
            }
            _ => panic!("expected TLS with client auth"),
        }
    }

    #[test]
    fn tls_file_problems_are_typed() {
        let dir = scratch("badtls");
        let missing = dir.join("missing.pem");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not pem").unwrap();

        let mut c = cfg("mqtts://h");
        c.tls = Some(TlsFiles {
            ca_file: Some(missing.clone()),
            client_auth: None,
        });
        match c.mqtt_options() {
            Err(MqttError::ReadFile {
                what: "CA", path, ..
            }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }

        c.tls = Some(TlsFiles {
            ca_file: Some(garbage.clone()),
            client_auth: None,
        });
        assert!(matches!(
            c.mqtt_options(),
            Err(MqttError::BadPem { what: "CA", .. })
        ));

        c.tls = Some(TlsFiles {
            ca_file: None,
            client_auth: Some(ClientAuthFiles {
                cert_file: garbage.clone(),
                key_file: garbage,
            }),
        });
        assert!(matches!(
            c.mqtt_options(),
            Err(MqttError::ClientAuthNeedsCa)
        ));
    }
}
