//! `mqtt://` and `mqtts://` broker URLs.

use std::fmt;
use std::str::FromStr;

/// Default port for plain MQTT.
pub const DEFAULT_PORT: u16 = 1883;
/// Default port for MQTT over TLS.
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// Transport security selected by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `mqtt://`: plain TCP.
    Mqtt,
    /// `mqtts://`: TLS over TCP.
    Mqtts,
}

/// A parsed broker URL: `mqtt://[user[:pass]@]host[:port]` or `mqtts://…`.
///
/// The user name and password may be percent-encoded. `Display` and `Debug` never show
/// the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
}

/// Why a broker URL was rejected. Messages never contain the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttUrlError {
    /// No `scheme://` prefix.
    #[error("MQTT URL has no scheme: expected mqtt://host[:port] or mqtts://host[:port]")]
    MissingScheme,
    /// A scheme other than `mqtt` or `mqtts`.
    #[error("unsupported MQTT URL scheme {0:?}: expected \"mqtt\" or \"mqtts\"")]
    UnsupportedScheme(String),
    /// Nothing between `//` (or `@`) and the port.
    #[error("MQTT URL has an empty host")]
    EmptyHost,
    /// `[` without a matching `]`, or junk after `]`.
    #[error("MQTT URL has a malformed IPv6 literal (expected [addr] or [addr]:port)")]
    BadIpv6Literal,
    /// The port is not a number in `1..=65535`.
    #[error("MQTT URL port {0:?} is not a number in 1..=65535")]
    InvalidPort(String),
    /// A path, query or fragment after the authority.
    #[error("MQTT URL must not have a path, query or fragment (found {0:?})")]
    UnexpectedPath(String),
    /// `@` with nothing before it, or `:pass@` with no user.
    #[error("MQTT URL has credentials with an empty user name")]
    EmptyUser,
    /// A `%` not followed by two hex digits, or decoded bytes that are not UTF-8.
    #[error("MQTT URL user name or password has invalid percent-encoding")]
    BadPercentEncoding,
}

impl MqttUrl {
    /// Parses a broker URL. See the type docs for the accepted shape.
    pub fn parse(input: &str) -> Result<Self, MqttUrlError> {
        let (scheme, rest) = input.split_once("://").ok_or(MqttUrlError::MissingScheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Scheme::Mqtt,
            "mqtts" | "ssl" => Scheme::Mqtts,
            other => return Err(MqttUrlError::UnsupportedScheme(other.to_owned())),
        };

        // Everything up to the first '/', '?' or '#' is the authority; a lone "/" is harmless.
        let (authority, tail) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !tail.is_empty() && tail != "/" {
            return Err(MqttUrlError::UnexpectedPath(tail.to_owned()));
        }

        // The last '@' separates credentials, so an unencoded '@' in a password still works.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                if user.is_empty() {
                    return Err(MqttUrlError::EmptyUser);
                }
                (
                    Some(percent_decode(user)?),
                    pass.map(percent_decode).transpose()?,
                )
            }
        };

        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None => match scheme {
                Scheme::Mqtt => DEFAULT_PORT,
                Scheme::Mqtts => DEFAULT_TLS_PORT,
            },
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(MqttUrlError::InvalidPort(p.to_owned())),
            },
        };
        if host.is_empty() {
            return Err(MqttUrlError::EmptyHost);
        }

        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            username,
            password,
        })
    }

    /// The scheme (plain or TLS).
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// True for `mqtts://`.
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Mqtts
    }

    /// Host name or IP address, without IPv6 brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port, defaulted from the scheme when absent.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Decoded user name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Decoded password, if any. Never log this.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Host in the form a `host:port` string needs (IPv6 literals get brackets back).
    pub(crate) fn host_for_connect(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl FromStr for MqttUrl {
    type Err = MqttUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}")?;
            if self.password.is_some() {
                // The password is a secret: show that one is set, never its value.
                write!(f, ":***")?;
            }
            write!(f, "@")?;
        }
        write!(f, "{}:{}", self.host_for_connect(), self.port)
    }
}

impl fmt::Debug for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MqttUrl({self})")
    }
}

/// Splits `host[:port]` / `[v6][:port]`; the port is returned unparsed.
fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), MqttUrlError> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']').ok_or(MqttUrlError::BadIpv6Literal)?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(MqttUrlError::BadIpv6Literal),
            },
        };
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((hostport, None)),
    }
}

fn percent_decode(s: &str) -> Result<String, MqttUrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(MqttUrlError::BadPercentEncoding)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| MqttUrlError::BadPercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_host_gets_default_port() {
        let u = MqttUrl::parse("mqtt://broker.local").unwrap();
        assert_eq!(u.scheme(), Scheme::Mqtt);
        assert_eq!(u.host(), "broker.local");
        assert_eq!(u.port(), 1883);
        assert_eq!(u.username(), None);
        assert_eq!(u.password(), None);
    }

    #[test]
    fn tls_scheme_gets_8883() {
        let u = MqttUrl::parse("mqtts://broker.local").unwrap();
        assert!(u.is_tls());
        assert_eq!(u.port(), 8883);
    }

    #[test]
    fn explicit_port_and_credentials() {
        let u = MqttUrl::parse("mqtt://alice:s3cr%40t@10.0.0.5:1999/").unwrap();
        assert_eq!(u.host(), "10.0.0.5");
        assert_eq!(u.port(), 1999);
        assert_eq!(u.username(), Some("alice"));
        assert_eq!(u.password(), Some("s3cr@t"));
    }

    #[test]
    fn user_without_password() {
        let u = MqttUrl::parse("mqtts://bob@h:1").unwrap();
        assert_eq!(u.username(), Some("bob"));
        assert_eq!(u.password(), None);
    }

    #[test]
    fn ipv6_literal() {
        let u = MqttUrl::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.port(), 1884);
        assert_eq!(u.host_for_connect(), "[::1]");
        let u = MqttUrl::parse("mqtt://[fe80::1]").unwrap();
        assert_eq!(u.port(), 1883);
    }

    #[test]
    fn display_and_debug_redact_password() {
        let u = MqttUrl::parse("mqtt://alice:hunter2@h").unwrap();
        assert_eq!(u.to_string(), "mqtt://alice:***@h:1883");
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_malformed_urls() {
        use MqttUrlError::*;
        let cases: &[(&str, MqttUrlError)] = &[
            ("broker:1883", MissingScheme),
            ("http://h", UnsupportedScheme("http".into())),
            ("mqtt://", EmptyHost),
            ("mqtt://:1883", EmptyHost),
            ("mqtt://h:0", InvalidPort("0".into())),
            ("mqtt://h:70000", InvalidPort("70000".into())),
            ("mqtt://h:abc", InvalidPort("abc".into())),
            ("mqtt://h/topic", UnexpectedPath("/topic".into())),
            ("mqtt://h?x=1", UnexpectedPath("?x=1".into())),
            ("mqtt://[::1", BadIpv6Literal),
            ("mqtt://[::1]x", BadIpv6Literal),
            ("mqtt://:pw@h", EmptyUser),
            ("mqtt://u:%zz@h", BadPercentEncoding),
        ];
        for (input, want) in cases {
            assert_eq!(MqttUrl::parse(input).as_ref(), Err(want), "input {input}");
        }
    }

    #[test]
    fn error_messages_never_contain_password() {
        let err = MqttUrl::parse("mqtt://u:topsecret@h:bad").unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }
}
