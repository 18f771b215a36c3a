//! The admin web's settings ([`WebConfig`]) and its errors ([`WebError`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Where the admin web listens by default: localhost only.
pub const DEFAULT_WEB_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Everything the admin web can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// The address to bind. A non-loopback address needs `served_over_https` (plain HTTP
    /// would carry passwords and session cookies in clear).
    pub listen: SocketAddr,
    /// The pages reach browsers over HTTPS, through a TLS-terminating reverse proxy in front
    /// of `listen`: cookies get `Secure` and the `__Host-` prefix, and the expected origin is
    /// `https://…`.
    pub served_over_https: bool,
    /// The origin browsers see (`https://issuer.example.org`), when it differs from
    /// `http(s)://` + the Host header the server receives (a proxy rewriting Host). POSTs
    /// whose `Origin` is another one are refused.
    pub public_origin: Option<String>,
    /// Host header values accepted besides `localhost`, `127.0.0.1` and `[::1]` with the
    /// bound port and the host of `public_origin` (DNS-rebinding defence).
    pub extra_allowed_hosts: Vec<String>,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not.
    pub session_lifetime: Duration,
    /// After this many failed logins of one account within `login_failure_window`, the
    /// account is locked (1..=1000).
    pub login_max_failures: u32,
    /// Window in which failures are counted.
    pub login_failure_window: Duration,
    /// How long a locked account refuses every login.
    pub login_lockout: Duration,
    /// Largest request body accepted, bytes (forms are small).
    pub body_limit_bytes: usize,
    /// Rows per page of long lists (10..=500).
    pub page_size: u32,
    /// A lock not heard from for this long is shown offline.
    pub lock_offline_after: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_WEB_LISTEN,
            served_over_https: false,
            public_origin: None,
            extra_allowed_hosts: Vec::new(),
            idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            login_max_failures: 5,
            login_failure_window: Duration::from_secs(15 * 60),
            login_lockout: Duration::from_secs(15 * 60),
            body_limit_bytes: 16 * 1024,
            page_size: 50,
            lock_offline_after: Duration::from_secs(15 * 60),
        }
    }
}

impl WebConfig {
    /// Checks the settings; every error names the setting and the fix.
    pub fn validate(&self) -> Result<(), WebError> {
        if !self.listen.ip().is_loopback() && !self.served_over_https {
            return Err(WebError::Config(format!(
                "the admin web would listen on {} in plain HTTP, which carries passwords and \
                 session cookies in clear: listen on 127.0.0.1 (the default) and put a \
                 TLS-terminating reverse proxy in front for remote access, then set \
                 served_over_https",
                self.listen
            )));
        }
        if let Some(origin) = &self.public_origin {
            parse_origin(origin)?;
        }
        for host in &self.extra_allowed_hosts {
            if host.is_empty() || !host.bytes().all(is_host_byte) {
                return Err(WebError::Config(format!(
                    "allowed host {host:?} is not a host[:port] (letters, digits, '.', '-', \
                     ':', '[' and ']')"
                )));
            }
        }
        let ranges: [(&str, Duration, u64, u64); 4] = [
            ("idle_timeout", self.idle_timeout, 60, 24 * 3600),
            (
                "session_lifetime",
                self.session_lifetime,
                60,
                30 * 24 * 3600,
            ),
            (
                "login_failure_window",
                self.login_failure_window,
                10,
                24 * 3600,
            ),
            ("login_lockout", self.login_lockout, 10, 24 * 3600),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value.as_secs()) {
                return Err(WebError::Config(format!(
                    "{name} is {}s; it must be {min}..={max} s",
                    value.as_secs()
                )));
            }
        }
        if self.idle_timeout > self.session_lifetime {
            return Err(WebError::Config(
                "idle_timeout is longer than session_lifetime; make it shorter or equal".into(),
            ));
        }
        if !(1..=1000).contains(&self.login_max_failures) {
            return Err(WebError::Config(format!(
                "login_max_failures is {}; it must be 1..=1000",
                self.login_max_failures
            )));
        }
        if !(1024..=1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(WebError::Config(format!(
                "body_limit_bytes is {}; it must be 1024..=1048576",
                self.body_limit_bytes
            )));
        }
        if !(10..=500).contains(&self.page_size) {
            return Err(WebError::Config(format!(
                "page_size is {}; it must be 10..=500",
                self.page_size
            )));
        }
        Ok(())
    }

    /// The origin browsers use for these pages, if it is fixed by `public_origin`
    /// (lowercase, no trailing slash).
    pub(crate) fn fixed_origin(&self) -> Option<String> {
        self.public_origin
            .as_deref()
            .and_then(|o| parse_origin(o).ok())
            .map(|(scheme, host)| format!("{scheme}://{host}"))
    }

    /// The Host header values accepted when the server is bound to `bound`.
    pub(crate) fn allowed_hosts(&self, bound: SocketAddr) -> Vec<String> {
        let port = bound.port();
        let mut hosts = Vec::new();
        let mut add = |h: String| {
            if port == 80 || port == 443 {
                hosts.push(h.clone());
            }
            hosts.push(format!("{h}:{port}"));
        };
        add("localhost".into());
        add("127.0.0.1".into());
        add("[::1]".into());
        if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
            add(match bound.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        if let Some(Ok((_, host))) = self.public_origin.as_deref().map(parse_origin) {
            hosts.push(host);
        }
        hosts.extend(
            self.extra_allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase()),
        );
        hosts
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
}

/// Splits `scheme://host[:port]` (no path), lowercased.
fn parse_origin(origin: &str) -> Result<(&'static str, String), WebError> {
    let bad = || {
        WebError::Config(format!(
            "public_origin {origin:?} must be http://HOST[:PORT] or https://HOST[:PORT], \
             without a path"
        ))
    };
    let lower = origin.to_ascii_lowercase();
    let (scheme, host) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(bad());
    };
    if host.is_empty() || !host.bytes().all(is_host_byte) {
        return Err(bad());
    }
    Ok((scheme, host.to_owned()))
}

/// Why the admin web could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A setting is out of range or malformed.
    #[error("invalid admin web configuration: {0}")]
    Config(String),
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {addr} for the admin web: {source} (is the port taken? set another one)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("admin web server: {0}")]
    Serve(#[source] std::io::Error),
    /// Password hashing failed (e.g. no OS randomness for the salt).
    #[error("password hashing: {0}")]
    Password(String),
}

impl From<crate::password::PasswordError> for WebError {
    fn from(e: crate::password::PasswordError) -> Self {
        WebError::Password(e.0)
    }
}
