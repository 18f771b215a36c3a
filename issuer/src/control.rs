//! The control socket `STATE_DIR/control.sock` (mode 0600): one JSON request per line, one
//! JSON reply per line.
//!
//! ```text
//! → {"cmd":"revoke_grant","grant_id":"<32 hex>"}
//! ← {"ok":true,"revoked":[{"grant_id":"…","lock_id":"…"}]}
//! → {"cmd":"revoke_guest","guest_id":"<32 hex>"}
//! ← {"ok":true,"revoked":[…every live grant of the guest…]}
//! → {"cmd":"revoke_grants_of","guest_id":"<32 hex>"}   (the enrollment stays)
//! ← {"ok":true,"revoked":[…]}
//! → {"cmd":"status"}
//! ← {"ok":true,"status":{…}}
//! ← {"ok":false,"error":"grant … is not live (unknown, expired or already revoked)"}
//! ```
//!
//! Lines are capped at 64 KiB, a connection idle for 60 s is closed, and at most 16
//! connections are served at once: the socket is private, but a stuck client must not pin
//! the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use latchkey::{GrantId, GuestId};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::IssuerdError;
use crate::serde_ids::hexid;
use crate::state::StatePaths;
use crate::status::{IssuerStatus, RevokedGrant};

/// The actor of changes requested over the control socket (audit trail).
pub(crate) const ACTOR_CONTROL: &str = "control";

const MAX_LINE: usize = 64 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_CONNECTIONS: usize = 16;
/// A status reply lists every live grant; allow it to be large.
const MAX_REPLY: u64 = 256 * 1024 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Revoke one live grant.
    RevokeGrant {
        /// The grant.
        #[serde(with = "hexid")]
        grant_id: GrantId,
    },
    /// Revoke a guest's enrollment and all its live grants.
    RevokeGuest {
        /// The guest.
        #[serde(with = "hexid")]
        guest_id: GuestId,
    },
    /// Revoke every live grant of a guest, keeping its enrollment (after a key rotation).
    RevokeGrantsOf {
        /// The guest.
        #[serde(with = "hexid")]
        guest_id: GuestId,
    },
    /// The issuer's status.
    Status,
}

/// A control reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Grants revoked by the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Vec<RevokedGrant>>,
    /// The status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<IssuerStatus>>,
}

impl ControlReply {
    fn error(e: impl ToString) -> Self {
        Self {
            ok: false,
            error: Some(e.to_string()),
            ..Self::default()
        }
    }
}

/// A request to the daemon's loop, with the actor recorded in the audit trail (`control`,
/// `web:NAME`) and where its answer goes.
#[derive(Debug)]
pub(crate) enum Command {
    RevokeGrant(
        GrantId,
        String,
        oneshot::Sender<Result<RevokedGrant, IssuerdError>>,
    ),
    RevokeGuest(
        GuestId,
        String,
        oneshot::Sender<Result<Vec<RevokedGrant>, IssuerdError>>,
    ),
    RevokeGrantsOf(
        GuestId,
        String,
        oneshot::Sender<Result<Vec<RevokedGrant>, IssuerdError>>,
    ),
    Status(oneshot::Sender<IssuerStatus>),
}

/// Binds the control socket mode 0600, replacing a stale one (the caller holds the state
/// directory's daemon lock, so no live daemon owns it).
pub(crate) fn bind(paths: &StatePaths) -> Result<UnixListener, IssuerdError> {
    let path = paths.control_socket();
    match std::fs::remove_file(&path) {
        Ok(()) => debug!(path = %path.display(), "removed stale control socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(IssuerdError::Io {
                action: "remove stale control socket",
                path,
                source: e,
            });
        }
    }
    let listener = UnixListener::bind(&path).map_err(|source| IssuerdError::Io {
        // The usual surprise: sun_path holds at most 107 bytes.
        action: "bind control socket (paths over 107 bytes do not fit)",
        path: path.clone(),
        source,
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(IssuerdError::io("set permissions of", &path))?;
    Ok(listener)
}

/// Accepts control connections until cancelled.
pub(crate) async fn serve(
    listener: UnixListener,
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            warn!(
                max = MAX_CONNECTIONS,
                "too many control connections; refusing one"
            );
            let mut s = stream;
            let _ = write_reply(&mut s, &ControlReply::error("too many control connections")).await;
            continue;
        };
        let commands = commands.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            connection(stream, commands, cancel).await;
            drop(permit);
        });
    }
}

enum Line {
    Text(Vec<u8>),
    Eof,
    TooLong,
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut TokioBufReader<R>) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let n = tokio::io::AsyncReadExt::take(&mut *r, MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(buf))
}

async fn connection(
    stream: UnixStream,
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = TokioBufReader::new(read);
    loop {
        let line = tokio::select! {
            _ = cancel.cancelled() => return,
            l = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut reader)) => l,
        };
        let line = match line {
            Err(_) => {
                debug!("control connection idle; closing");
                return;
            }
            Ok(Err(e)) => {
                debug!(error = %e, "control connection read failed");
                return;
            }
            Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                let _ = write_reply(
                    &mut write,
                    &ControlReply::error(format!("request line longer than {MAX_LINE} bytes")),
                )
                .await;
                return;
            }
            Ok(Ok(Line::Text(t))) => t,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match serde_json::from_slice::<ControlRequest>(&line) {
            Err(e) => ControlReply::error(format!(
                "invalid request: {e} (expected e.g. {{\"cmd\":\"status\"}})"
            )),
            Ok(req) => execute(&commands, req).await,
        };
        if write_reply(&mut write, &reply).await.is_err() {
            return;
        }
    }
}

async fn write_reply<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    reply: &ControlReply,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    w.write_all(&bytes).await?;
    w.flush().await
}

async fn execute(commands: &mpsc::Sender<Command>, req: ControlRequest) -> ControlReply {
    match req {
        ControlRequest::RevokeGrant { grant_id } => {
            info!(grant = %grant_id, "control: revoke grant");
            match ask(commands, |tx| {
                Command::RevokeGrant(grant_id, ACTOR_CONTROL.to_owned(), tx)
            })
            .await
            {
                Ok(r) => ControlReply {
                    ok: true,
                    revoked: Some(vec![r]),
                    ..Default::default()
                },
                Err(e) => ControlReply::error(e),
            }
        }
        ControlRequest::RevokeGuest { guest_id } => {
            info!(guest = %guest_id, "control: revoke guest");
            match ask(commands, |tx| {
                Command::RevokeGuest(guest_id, ACTOR_CONTROL.to_owned(), tx)
            })
            .await
            {
                Ok(r) => ControlReply {
                    ok: true,
                    revoked: Some(r),
                    ..Default::default()
                },
                Err(e) => ControlReply::error(e),
            }
        }
        ControlRequest::RevokeGrantsOf { guest_id } => {
            info!(guest = %guest_id, "control: revoke the guest's grants");
            match ask(commands, |tx| {
                Command::RevokeGrantsOf(guest_id, ACTOR_CONTROL.to_owned(), tx)
            })
            .await
            {
                Ok(r) => ControlReply {
                    ok: true,
                    revoked: Some(r),
                    ..Default::default()
                },
                Err(e) => ControlReply::error(e),
            }
        }
        ControlRequest::Status => {
            let (tx, rx) = oneshot::channel();
            if commands.send(Command::Status(tx)).await.is_err() {
                return ControlReply::error(IssuerdError::Stopped);
            }
            match rx.await {
                Ok(s) => ControlReply {
                    ok: true,
                    status: Some(Box::new(s)),
                    ..Default::default()
                },
                Err(_) => ControlReply::error(IssuerdError::Stopped),
            }
        }
    }
}

/// Sends a command to the loop and waits for its answer.
pub(crate) async fn ask<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<Result<T, IssuerdError>>) -> Command,
) -> Result<T, IssuerdError> {
    let (tx, rx) = oneshot::channel();
    commands
        .send(make(tx))
        .await
        .map_err(|_| IssuerdError::Stopped)?;
    rx.await.map_err(|_| IssuerdError::Stopped)?
}

/// Sends one request to the issuer running on `state_dir` and returns its reply (the CLI's
/// side; blocking). A reply with `ok: false` is returned as [`IssuerdError::Control`].
pub fn request(state_dir: &Path, req: &ControlRequest) -> Result<ControlReply, IssuerdError> {
    let path = StatePaths::new(state_dir).control_socket();
    let unreachable = |source| IssuerdError::ControlUnreachable {
        path: path.clone(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(unreachable)?;
    let mut line = serde_json::to_vec(req).map_err(|e| IssuerdError::Control(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(unreachable)?;
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_REPLY));
    let mut reply = Vec::new();
    reader.read_until(b'\n', &mut reply).map_err(unreachable)?;
    if reply.is_empty() {
        return Err(IssuerdError::Control(
            "the issuer closed the control connection without replying".to_owned(),
        ));
    }
    let reply: ControlReply = serde_json::from_slice(&reply)
        .map_err(|e| IssuerdError::Control(format!("unreadable reply from the issuer: {e}")))?;
    if !reply.ok {
        return Err(IssuerdError::Control(
            reply
                .error
                .unwrap_or_else(|| "the issuer refused the request".to_owned()),
        ));
    }
    Ok(reply)
}
