//! What the lock does when the core says unlock: log only, run a command, or pulse a GPIO
//! line. Actions never block the event loop: commands and pulse ends run on their own
//! tasks, and shutdown waits for them so a door is never left mid-cycle.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey::LockId;
use latchkey::lock::Unlock;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Default limit on an unlock command's run time; it is killed after this.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a command's output copied into the log.
const OUTPUT_LOG_LIMIT: usize = 1024;

/// What an unlock does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UnlockAction {
    /// Only log `UNLOCK grant=… guest=…` (the default; for demos and dry runs).
    #[default]
    Log,
    /// Run `command` with `/bin/sh -c`, with the environment variables `LATCHKEY_LOCK_ID`,
    /// `LATCHKEY_GRANT_ID`, `LATCHKEY_GUEST_ID` and `LATCHKEY_SESSION_ID` (lowercase hex).
    /// It is killed after `timeout`; its output is logged.
    Command {
        /// Shell command line.
        command: String,
        /// Run-time limit.
        timeout: Duration,
    },
    /// Drive a GPIO line active for a pulse (a relay or strike), via the Linux GPIO
    /// character device.
    Gpio(GpioAction),
}

impl UnlockAction {
    /// A command action with the default 10 s timeout.
    pub fn command(command: impl Into<String>) -> Self {
        Self::Command {
            command: command.into(),
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

/// A GPIO pulse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioAction {
    /// Chip device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// Line offset on the chip.
    pub line: u32,
    /// How long the line stays active.
    pub pulse: Duration,
    /// Active means electrically low (many relay boards).
    pub active_low: bool,
}

/// The action could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The GPIO line cannot be requested.
    #[error("cannot open GPIO line {line} on {chip}: {detail}")]
    Gpio {
        /// Chip path.
        chip: PathBuf,
        /// Line offset.
        line: u32,
        /// Why.
        detail: String,
    },
    /// The unlock command cannot be started.
    #[error("cannot start unlock command: {0}")]
    Spawn(#[source] std::io::Error),
    /// The configuration is unusable (e.g. an empty command).
    #[error("invalid unlock action: {0}")]
    Invalid(&'static str),
}

/// Carries out [`UnlockAction`]s for the daemon.
pub(crate) struct Actuator {
    lock_id: LockId,
    kind: Kind,
    tasks: JoinSet<()>,
    failures: Arc<AtomicU64>,
}

enum Kind {
    Log,
    Command { command: String, timeout: Duration },
    Gpio(Arc<gpio::Line>),
}

impl fmt::Debug for Actuator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Log => "log",
            Kind::Command { .. } => "command",
            Kind::Gpio(_) => "gpio",
        };
        f.debug_struct("Actuator")
            .field("kind", &kind)
            .field("running", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Actuator {
    /// Prepares the action: a GPIO line is requested now, so a wrong chip or line fails at
    /// start rather than at the first unlock.
    pub(crate) fn open(lock_id: LockId, action: &UnlockAction) -> Result<Self, ActionError> {
        let kind = match action {
            UnlockAction::Log => Kind::Log,
            UnlockAction::Command { command, timeout } => {
                if command.trim().is_empty() {
                    return Err(ActionError::Invalid("unlock.command is empty"));
                }
                Kind::Command {
                    command: command.clone(),
                    timeout: *timeout,
                }
            }
            UnlockAction::Gpio(g) => Kind::Gpio(Arc::new(gpio::Line::open(g)?)),
        };
        Ok(Self {
            lock_id,
            kind,
            tasks: JoinSet::new(),
            failures: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Count of actions that failed (could not start, timed out, exited non-zero).
    pub(crate) fn failures(&self) -> Arc<AtomicU64> {
        self.failures.clone()
    }

    /// Starts the action for `unlock`. Returns once it is started, not finished.
    pub(crate) fn fire(&mut self, unlock: &Unlock) -> Result<(), ActionError> {
        // Reap finished tasks so the set stays small.
        while self.tasks.try_join_next().is_some() {}
        let result = match &self.kind {
            Kind::Log => Ok(()),
            Kind::Command { command, timeout } => {
                let (command, timeout) = (command.clone(), *timeout);
                self.spawn_command(&command, timeout, unlock)
            }
            Kind::Gpio(line) => {
                let line = line.clone();
                line.pulse(&mut self.tasks)
            }
        };
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn spawn_command(
        &mut self,
        command: &str,
        timeout: Duration,
        unlock: &Unlock,
    ) -> Result<(), ActionError> {
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .env("LATCHKEY_LOCK_ID", self.lock_id.to_string())
            .env("LATCHKEY_GRANT_ID", unlock.grant_id.to_string())
            .env("LATCHKEY_GUEST_ID", unlock.guest_id.to_string())
            .env("LATCHKEY_SESSION_ID", unlock.session_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out command is killed when its future is dropped.
            .kill_on_drop(true)
            .spawn()
            .map_err(ActionError::Spawn)?;
        let pid = child.id();
        let failures = self.failures.clone();
        let grant = unlock.grant_id;
        self.tasks.spawn(async move {
            match tokio::time::timeout(timeout, child.wait_with_output()).await {
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    warn!(%grant, ?pid, timeout_s = timeout.as_secs_f64(), "unlock command timed out and was killed");
                }
                Ok(Err(e)) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    warn!(%grant, ?pid, error = %e, "unlock command could not be waited for");
                }
                Ok(Ok(out)) => {
                    let stdout = clip(&out.stdout);
                    let stderr = clip(&out.stderr);
                    if out.status.success() {
                        info!(%grant, ?pid, %stdout, %stderr, "unlock command finished");
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        warn!(%grant, ?pid, status = %out.status, %stdout, %stderr, "unlock command failed");
                    }
                }
            }
        });
        Ok(())
    }

    /// Waits for running actions (commands up to their timeout, GPIO pulses to their end)
    /// and leaves a GPIO line inactive.
    pub(crate) async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
        if let Kind::Gpio(line) = &self.kind {
            line.release();
        }
    }
}

fn clip(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(OUTPUT_LOG_LIMIT)]);
    text.trim().to_owned()
}

#[cfg(target_os = "linux")]
mod gpio {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use gpiocdev::line::Value;
    use gpiocdev::request::Request;
    use tokio::task::JoinSet;
    use tracing::warn;

    use super::{ActionError, GpioAction};

    /// A requested output line. Overlapping pulses extend the active time: only the last
    /// pulse's end turns the line off.
    pub(super) struct Line {
        request: Request,
        chip: PathBuf,
        line: u32,
        pulse: Duration,
        generation: AtomicU64,
    }

    impl Line {
        pub(super) fn open(cfg: &GpioAction) -> Result<Self, ActionError> {
            let mut builder = Request::builder();
            builder
                .on_chip(&cfg.chip)
                .with_consumer("latchkey-lock")
                .with_line(cfg.line)
                .as_output(Value::Inactive);
            if cfg.active_low {
                builder.as_active_low();
            }
            let request = builder.request().map_err(|e| ActionError::Gpio {
                chip: cfg.chip.clone(),
                line: cfg.line,
                detail: e.to_string(),
            })?;
            Ok(Self {
                request,
                chip: cfg.chip.clone(),
                line: cfg.line,
                pulse: cfg.pulse,
                generation: AtomicU64::new(0),
            })
        }

        pub(super) fn pulse(self: Arc<Self>, tasks: &mut JoinSet<()>) -> Result<(), ActionError> {
            let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            self.request
                .set_lone_value(Value::Active)
                .map_err(|e| ActionError::Gpio {
                    chip: self.chip.clone(),
                    line: self.line,
                    detail: e.to_string(),
                })?;
            tasks.spawn(async move {
                tokio::time::sleep(self.pulse).await;
                if self.generation.load(Ordering::Acquire) == generation {
                    self.release();
                }
            });
            Ok(())
        }

        pub(super) fn release(&self) {
            if let Err(e) = self.request.set_lone_value(Value::Inactive) {
                warn!(error = %e, "cannot set the GPIO line inactive");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod gpio {
    use std::sync::Arc;

    use tokio::task::JoinSet;

    use super::{ActionError, GpioAction};

    /// GPIO character devices exist only on Linux.
    pub(super) struct Line;

    impl Line {
        pub(super) fn open(cfg: &GpioAction) -> Result<Self, ActionError> {
            Err(ActionError::Gpio {
                chip: cfg.chip.clone(),
                line: cfg.line,
                detail: "GPIO character devices need Linux".to_owned(),
            })
        }

        pub(super) fn pulse(self: Arc<Self>, _: &mut JoinSet<()>) -> Result<(), ActionError> {
            Ok(())
        }

        pub(super) fn release(&self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey::{GrantId, GuestId, SessionId};

    fn unlock() -> Unlock {
        Unlock {
            session_id: SessionId([7; 8]),
            grant_id: GrantId([1; 16]),
            guest_id: GuestId([2; 16]),
            unlocks: 1,
            max_unlocks: 0,
        }
    }

    #[test]
    fn a_missing_gpio_chip_fails_at_open_with_its_name() {
        let action = UnlockAction::Gpio(GpioAction {
            chip: "/dev/latchkey-no-such-gpiochip".into(),
            line: 17,
            pulse: Duration::from_millis(100),
            active_low: false,
        });
        let err = Actuator::open(LockId([0; 16]), &action).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/dev/latchkey-no-such-gpiochip"), "{msg}");
        assert!(msg.contains("17"), "{msg}");
    }

    #[test]
    fn an_empty_command_is_refused() {
        assert!(matches!(
            Actuator::open(LockId([0; 16]), &UnlockAction::command("  ")),
            Err(ActionError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_and_counted() {
        let action = UnlockAction::Command {
            command: "exec sleep 20".into(),
            timeout: Duration::from_millis(200),
        };
        let mut a = Actuator::open(LockId([0; 16]), &action).unwrap();
        let started = std::time::Instant::now();
        a.fire(&unlock()).unwrap();
        a.finish().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(a.failures().load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_failing_command_is_counted() {
        let mut a = Actuator::open(LockId([0; 16]), &UnlockAction::command("exit 3")).unwrap();
        a.fire(&unlock()).unwrap();
        a.finish().await;
        assert_eq!(a.failures().load(Ordering::Relaxed), 1);
    }
}
