//! A real Mosquitto broker as a test fixture.
//!
//! [`Mosquitto::start`] writes a generated config into a temporary directory, starts
//! `mosquitto -c` on a free loopback port as a child process and returns once the port
//! accepts connections. Dropping it kills the broker. [`Mosquitto::stop`] (SIGTERM, so
//! Mosquitto writes its persistence file) or [`Mosquitto::kill`] (SIGKILL) followed by
//! [`Mosquitto::restart`] brings the same broker back on the same port with the same
//! persistence directory.
//!
//! Three [`Mode`]s:
//! - [`Mode::Plain`]: `mqtt://`, anonymous clients allowed (the protocol suite).
//! - [`Mode::Tls`]: `mqtts://` with a server certificate, anonymous clients allowed.
//! - [`Mode::MutualTls`]: the shipped `deploy/mosquitto/mosquitto.conf` with only its paths
//!   and port rewritten, so `require_certificate`, `use_identity_as_username`,
//!   `use_username_as_clientid` and the shipped `deploy/mosquitto/acl` are what is tested.
//!
//! Certificates are generated per test with `rcgen`: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and client certificates whose CN is the identity
//! ([`Mosquitto::client_tls`]).
//!
//! If `mosquitto` is not installed the fixture panics with the install command, unless
//! `LATCHKEY_SKIP_MOSQUITTO=1` is set: then [`Mosquitto::start`] returns `None` after
//! printing loudly that the test was skipped.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex, PoisonError};

use latchkey_demo::Endpoint;
use latchkey_transport::mqtt::{ClientAuthFiles, MqttConfig, MqttUrl, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// How long a started broker may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which kind of listener the broker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain MQTT, anonymous clients allowed.
    Plain,
    /// MQTT over TLS (server certificate only), anonymous clients allowed.
    Tls,
    /// The shipped deployment config: mutual TLS, CN = username = client id, shipped ACL.
    MutualTls,
}

impl Mode {
    /// Every mode, for suites that run against each.
    pub const ALL: [Mode; 3] = [Mode::Plain, Mode::Tls, Mode::MutualTls];
}

/// A running (or stopped, restartable) Mosquitto.
#[derive(Debug)]
pub struct Mosquitto {
    mode: Mode,
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    pki: Option<Arc<Pki>>,
    child: Option<Child>,
    starts: u32,
}

/// The path of the `mosquitto` binary, or `None` after announcing a skip if it is absent
/// and `LATCHKEY_SKIP_MOSQUITTO=1`. Panics with the install instruction otherwise.
pub fn mosquitto_binary(test: &str) -> Option<PathBuf> {
    if let Some(found) = find_binary() {
        return Some(found);
    }
    if std::env::var("LATCHKEY_SKIP_MOSQUITTO").as_deref() == Ok("1") {
        // Straight to the process's stderr, past the test harness's output capture, so
        // the skip is seen even when the test passes.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! SKIPPED {test}: mosquitto is not installed and LATCHKEY_SKIP_MOSQUITTO=1.\n\
             !! This test did NOT run. Install it with: apt-get install -y mosquitto\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return None;
    }
    panic!(
        "{test} needs the `mosquitto` broker, which was not found in PATH or /usr/sbin.\n\
         Install it (Debian/Ubuntu): apt-get update && apt-get install -y mosquitto\n\
         To skip these tests explicitly instead, set LATCHKEY_SKIP_MOSQUITTO=1 (CI never does)."
    );
}

fn find_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // Debian installs it in sbin, which is not on an unprivileged user's PATH.
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

impl Mosquitto {
    /// Starts a broker in `mode` on a free loopback port, or returns `None` if Mosquitto is
    /// absent and the test run opted out (see the module docs). `test` names the caller in
    /// the skip message.
    pub fn start(mode: Mode, test: &str) -> Option<Self> {
        let binary = mosquitto_binary(test)?;
        let dir = tempfile::Builder::new()
            .prefix("latchkey-mosquitto-")
            .tempdir()
            .expect("temp dir for mosquitto");
        fs::create_dir_all(dir.path().join("data")).expect("persistence dir");
        let pki = match mode {
            Mode::Plain => None,
            Mode::Tls | Mode::MutualTls => Some(Arc::new(Pki::generate(&dir.path().join("pki")))),
        };
        let mut this = Self {
            mode,
            binary,
            port: 0,
            config: dir.path().join("mosquitto.conf"),
            log: dir.path().join("mosquitto.log"),
            dir,
            pki,
            child: None,
            starts: 0,
        };
        // A port that was free a moment ago can be taken before Mosquitto binds it; retry
        // with a new one in that (rare) case.
        let mut last_error = String::new();
        for _ in 0..5 {
            this.port = free_port();
            fs::write(&this.config, this.render_config()).expect("write mosquitto.conf");
            match this.spawn() {
                Ok(()) => return Some(this),
                Err(e) => last_error = e,
            }
        }
        panic!("mosquitto did not start: {last_error}");
    }

    /// The mode it runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker URL for clients.
    pub fn url(&self) -> MqttUrl {
        let scheme = match self.mode {
            Mode::Plain => "mqtt",
            Mode::Tls | Mode::MutualTls => "mqtts",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
            .parse()
            .expect("valid broker URL")
    }

    /// The TLS files a client with certificate CN `identity` uses: `None` in plain mode,
    /// the CA only in TLS mode, the CA and a client certificate in mutual-TLS mode.
    pub fn client_tls(&self, identity: &str) -> Option<TlsFiles> {
        let pki = self.pki.as_ref()?;
        Some(TlsFiles {
            ca_file: Some(pki.ca_file.clone()),
            client_auth: match self.mode {
                Mode::MutualTls => Some(pki.client(identity)),
                _ => None,
            },
        })
    }

    /// The endpoint for a [`Site`](latchkey_demo::Site): this URL, and per identity the
    /// TLS files of [`Mosquitto::client_tls`].
    pub fn endpoint(&self) -> Endpoint {
        let mode = self.mode;
        match self.pki.clone() {
            None => Endpoint::plain(self.url()),
            Some(pki) => Endpoint::with_tls(self.url(), move |identity| {
                Some(TlsFiles {
                    ca_file: Some(pki.ca_file.clone()),
                    client_auth: (mode == Mode::MutualTls).then(|| pki.client(identity)),
                })
            }),
        }
    }

    /// A ready client config for `identity` with client id `client_id`.
    pub fn client_config(&self, identity: &str, client_id: &str) -> MqttConfig {
        let mut config = MqttConfig::new(self.url(), client_id);
        config.tls = self.client_tls(identity);
        config
    }

    /// The CA certificate (TLS modes).
    pub fn ca_file(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.ca_file.as_path())
    }

    /// A client certificate and key for CN `identity` signed by the broker's CA, also in
    /// TLS mode (where the broker does not ask for it).
    pub fn client_auth(&self, identity: &str) -> Option<ClientAuthFiles> {
        self.pki.as_ref().map(|p| p.client(identity))
    }

    /// True while the broker process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the broker gracefully (SIGTERM; Mosquitto saves its persistence file) and
    /// waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }

    /// Kills the broker (SIGKILL: state since the last autosave is lost) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same config and persistence
    /// directory (stopping it first if it still runs).
    pub fn restart(&mut self) {
        self.stop();
        // The port was ours a moment ago; TIME_WAIT is no obstacle (Mosquitto sets
        // SO_REUSEADDR), but give a slow kernel a few tries.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("mosquitto did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Everything the broker logged so far (all its runs).
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut out);
        }
        out
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "mosquitto exited with {status} on port {}; its log:\n{}",
                    self.port,
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "mosquitto did not accept connections on {addr} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn render_config(&self) -> String {
        let data = format!("{}/", self.dir.path().join("data").display());
        // Mosquitto started as root drops privileges to user `mosquitto`, which then cannot
        // read our root-owned 0600 keys or write the temp persistence dir. `user root` keeps
        // it as the user that started it (when not started as root the option is ignored).
        let common = format!(
            "user root\n\
             persistence true\n\
             persistence_location {data}\n\
             log_dest stderr\n\
             log_type all\n\
             connection_messages true\n"
        );
        match (self.mode, &self.pki) {
            (Mode::Plain, _) => format!(
                "{common}listener {port} 127.0.0.1\nallow_anonymous true\n",
                port = self.port
            ),
            (Mode::Tls, Some(pki)) => format!(
                "{common}listener {port} 127.0.0.1\n\
                 cafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
                 allow_anonymous true\n",
                port = self.port,
                ca = pki.ca_file.display(),
                cert = pki.server_cert.display(),
                key = pki.server_key.display(),
            ),
            (Mode::MutualTls, Some(pki)) => shipped_config_for_test(self.port, pki, &data),
            (_, None) => unreachable!("TLS modes always have a PKI"),
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Path of a file under the repository's `deploy/` folder.
pub fn deploy_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(rel)
}

/// `deploy/mosquitto/mosquitto.conf` with only machine-specific values replaced: the
/// listener (a loopback test port), the certificate paths, the ACL path (the shipped ACL)
/// and the persistence directory; `user root` is added (see `render_config`).
fn shipped_config_for_test(port: u16, pki: &Pki, data: &str) -> String {
    let shipped = fs::read_to_string(deploy_file("mosquitto/mosquitto.conf"))
        .expect("read deploy/mosquitto/mosquitto.conf");
    let acl = deploy_file("mosquitto/acl");
    let mut out = String::from("user root\n");
    let mut replaced = Vec::new();
    for line in shipped.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        let value = match key {
            "listener" => Some(format!("{port} 127.0.0.1")),
            "cafile" => Some(pki.ca_file.display().to_string()),
            "certfile" => Some(pki.server_cert.display().to_string()),
            "keyfile" => Some(pki.server_key.display().to_string()),
            "acl_file" => Some(acl.display().to_string()),
            "persistence_location" => Some(data.to_owned()),
            _ => None,
        };
        match value {
            Some(v) => {
                replaced.push(key.to_owned());
                out.push_str(&format!("{key} {v}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for key in [
        "listener",
        "cafile",
        "certfile",
        "keyfile",
        "acl_file",
        "persistence_location",
        "require_certificate",
        "use_identity_as_username",
    ] {
        assert!(
            replaced.iter().any(|k| k == key) || shipped.lines().any(|l| l.starts_with(key)),
            "deploy/mosquitto/mosquitto.conf has no `{key}` line"
        );
    }
    out
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A throwaway certificate authority with a server certificate for 127.0.0.1/localhost.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    ca_file: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    ca_params: CertificateParams,
    ca_key_pem: String,
    // Client certificates are made on first use, possibly from several threads.
    issuing: Mutex<()>,
}

impl Pki {
    fn generate(dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("pki dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Latchkey test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let ca_file = dir.join("ca.crt");
        fs::write(&ca_file, ca_cert.pem()).expect("write CA");

        let pki = Self {
            dir: dir.to_owned(),
            ca_file,
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            ca_params,
            ca_key_pem: ca_key.serialize_pem(),
            issuing: Mutex::new(()),
        };
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        pki.sign(params, &pki.server_cert, &pki.server_key);
        pki
    }

    /// Certificate + key files for CN `identity` (made once, then reused).
    pub fn client(&self, identity: &str) -> ClientAuthFiles {
        let cert_file = self.dir.join(format!("client-{identity}.crt"));
        let key_file = self.dir.join(format!("client-{identity}.key"));
        let _one_at_a_time = self.issuing.lock().unwrap_or_else(PoisonError::into_inner);
        if !cert_file.exists() {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
            params.distinguished_name.push(DnType::CommonName, identity);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            self.sign(params, &cert_file, &key_file);
        }
        ClientAuthFiles {
            cert_file,
            key_file,
        }
    }

    fn sign(&self, mut params: CertificateParams, cert_file: &Path, key_file: &Path) {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("leaf key");
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).expect("CA key");
        let issuer = Issuer::from_params(&self.ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign leaf");
        fs::write(cert_file, cert.pem()).expect("write cert");
        write_private(key_file, &key.serialize_pem());
    }
}

/// Writes `contents` to `path` with mode 0600.
pub fn write_private(path: &Path, contents: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .expect("create private file");
    f.write_all(contents.as_bytes())
        .expect("write private file");
}
