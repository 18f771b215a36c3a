//! An implementation under test in a child process, speaking the shim protocol over
//! JSON lines: one request line on its stdin, one reply line on its stdout.
//!
//! Rules the harness applies to the shim's stdout (SHIM.md repeats them):
//! - blank lines are ignored;
//! - lines starting with `#` are the shim's log lines and are ignored;
//! - every other line is a reply and must be one JSON object;
//! - a line that arrives while no request is outstanding is garbage.
//!
//! Stderr is free-form; its last 8 KiB are kept and quoted when the shim crashes.
//!
//! The shim runs as `sh -c <command>` in its own process group, so a timeout kills
//! the shell and everything it started. After a crash, timeout or garbage the process
//! is dead until [`Iut::restart`].

use super::{Iut, IutError, check_reply};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The shim protocol version this harness speaks.
pub const SHIM_PROTOCOL: u64 = 1;

/// How much of the shim's stderr is kept for crash reports.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// Offending lines are quoted up to this many characters.
const GARBAGE_QUOTE_CHARS: usize = 200;

/// How long to wait for a process that closed its stdout to exit, and for its stderr to
/// drain, before reporting the crash anyway.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// An external implementation driven through a shim process.
#[derive(Debug)]
pub struct ShimProcess {
    command: String,
    timeout: Duration,
    name: String,
    /// `None` once the process is dead (crash, timeout, garbage) or before a restart.
    running: Option<Running>,
}

impl ShimProcess {
    /// Starts `sh -c command` and performs the hello handshake. `timeout` bounds every
    /// reply, the handshake's included.
    pub fn spawn(command: &str, timeout: Duration) -> Result<Self, IutError> {
        let mut shim = ShimProcess {
            command: command.to_string(),
            timeout,
            name: String::new(),
            running: None,
        };
        shim.start()?;
        Ok(shim)
    }

    /// Whether a process is currently alive from the harness's point of view.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The process id of the running shell, if any (for diagnostics and tests).
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// The per-reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn start(&mut self) -> Result<(), IutError> {
        self.stop();
        self.running = Some(Running::spawn(&self.command)?);
        let reply = self.call(&json!({"op": "hello", "protocol": SHIM_PROTOCOL}))?;
        match parse_hello(reply) {
            Ok(name) => {
                self.name = name;
                Ok(())
            }
            Err(e) => {
                self.stop();
                Err(e)
            }
        }
    }

    /// Kills and reaps whatever process is left.
    fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.kill();
        }
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// Kills the process and turns `error` into the call's result.
    fn fail<T>(&mut self, error: IutError) -> Result<T, IutError> {
        self.stop();
        Err(error)
    }

    /// Reports a crash: waits briefly for the exit status and the last stderr output.
    fn crashed<T>(&mut self, what: &str) -> Result<T, IutError> {
        let message = match self.running.take() {
            Some(mut running) => running.crash_report(what),
            None => what.to_string(),
        };
        Err(IutError::Crashed(message))
    }
}

impl Iut for ShimProcess {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn call(&mut self, request: &Value) -> Result<Value, IutError> {
        let timeout = self.timeout;
        let Some(running) = self.running.as_mut() else {
            return Err(IutError::Crashed(
                "shim process is not running (not restarted after an earlier failure)".into(),
            ));
        };

        // A line already waiting answers nothing we asked: the shim is out of step.
        match running.lines.try_recv() {
            Ok(line) => {
                let quoted = quote(&line);
                return self.fail(IutError::Garbage(format!("unsolicited line: {quoted}")));
            }
            Err(TryRecvError::Disconnected) => return self.crashed("stdout closed"),
            Err(TryRecvError::Empty) => {}
        }

        let mut line = request.to_string();
        line.push('\n');
        if running.requests.send(line).is_err() {
            return self.crashed("stdin closed");
        }

        match running.lines.recv_timeout(timeout) {
            Ok(line) => match serde_json::from_str::<Value>(&line) {
                Ok(reply @ Value::Object(_)) => Ok(reply),
                _ => self.fail(IutError::Garbage(quote(&line))),
            },
            Err(RecvTimeoutError::Disconnected) => self.crashed("stdout closed"),
            Err(RecvTimeoutError::Timeout) => {
                let ms = self.timeout_ms();
                self.fail(IutError::Timeout(ms))
            }
        }
    }

    fn restart(&mut self) -> Result<(), IutError> {
        self.start()
    }
}

impl Drop for ShimProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks the hello reply and returns the implementation's name.
fn parse_hello(reply: Value) -> Result<String, IutError> {
    let reply = check_reply(reply)?;
    let protocol = reply.get("protocol").and_then(Value::as_u64);
    match protocol {
        Some(SHIM_PROTOCOL) => {}
        Some(n) => {
            return Err(IutError::Refused(format!(
                "shim speaks protocol {n}, harness speaks {SHIM_PROTOCOL}"
            )));
        }
        None => {
            return Err(IutError::Garbage(format!(
                "hello reply without a numeric \"protocol\": {}",
                quote(&reply.to_string())
            )));
        }
    }
    match reply.get("implementation").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(IutError::Garbage(format!(
            "hello reply without an \"implementation\" name: {}",
            quote(&reply.to_string())
        ))),
    }
}

/// Truncates a line for quoting in an error.
fn quote(line: &str) -> String {
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(GARBAGE_QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// A live child process and its plumbing.
#[derive(Debug)]
struct Running {
    child: Child,
    /// Request lines for the stdin writer, which a shim that never reads cannot block.
    requests: Sender<String>,
    /// Reply lines from the stdout reader; disconnected at EOF.
    lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    stderr_reader: JoinHandle<()>,
}

impl Running {
    fn spawn(command: &str) -> Result<Self, IutError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group, so a kill reaches whatever the shell started too.
            .process_group(0)
            .spawn()
            .map_err(|e| IutError::Spawn(format!("sh -c {command:?}: {e}")))?;

        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_and_reap(&mut child);
            return Err(IutError::Spawn("child pipes missing".into()));
        };

        let (requests, to_write) = mpsc::channel();
        let stdin_writer = thread::Builder::new()
            .name("shim-stdin".into())
            .spawn(move || write_lines(stdin, &to_write));
        let (tx, lines) = mpsc::channel();
        let stdout_reader = thread::Builder::new()
            .name("shim-stdout".into())
            .spawn(move || read_lines(stdout, tx));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        let tail = Arc::clone(&stderr_tail);
        let stderr_reader = thread::Builder::new()
            .name("shim-stderr".into())
            .spawn(move || read_tail(stderr, &tail));
        let (Ok(_), Ok(_), Ok(stderr_reader)) = (stdin_writer, stdout_reader, stderr_reader) else {
            kill_and_reap(&mut child);
            return Err(IutError::Spawn("could not start reader threads".into()));
        };
        Ok(Running {
            child,
            requests,
            lines,
            stderr_tail,
            stderr_reader,
        })
    }

    fn kill(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// After EOF or a broken pipe: the exit status (killing the process if it lingers)
    /// and the stderr tail.
    fn crash_report(&mut self, what: &str) -> String {
        let status = match wait_for_exit(&mut self.child, EXIT_GRACE) {
            Some(status) => status.to_string(),
            None => "still running after closing its pipes (killed)".to_string(),
        };
        // With the whole group gone stderr reaches EOF; what is left in the pipe is still
        // read, so give the reader a moment to drain it.
        kill_and_reap(&mut self.child);
        let deadline = Instant::now() + EXIT_GRACE;
        while !self.stderr_reader.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let tail = self.stderr_tail();
        if tail.is_empty() {
            format!("{what}; {status}; no stderr output")
        } else {
            format!("{what}; {status}; stderr tail:\n{tail}")
        }
    }

    fn stderr_tail(&self) -> String {
        let tail = match self.stderr_tail.lock() {
            Ok(guard) => guard.iter().copied().collect::<Vec<u8>>(),
            // A panicking reader thread still left valid bytes behind.
            Err(poisoned) => poisoned.into_inner().iter().copied().collect(),
        };
        String::from_utf8_lossy(&tail).trim().to_string()
    }
}

/// Kills the child's process group (and the child itself), then reaps it. The group is
/// killed even when the shell has exited: what it left running in the background goes too.
fn kill_and_reap(child: &mut Child) {
    // Errors mean the group or the child is already gone; the reap is what matters.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_for_exit(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// Writes request lines until the harness hangs up or the pipe breaks (the stdout reader
/// then sees EOF, which is how the crash is reported).
fn write_lines(mut stdin: ChildStdin, to_write: &Receiver<String>) {
    while let Ok(line) = to_write.recv() {
        if stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
    }
}

/// Sends every reply line of `stdout`; skips blank and `#` log lines. Dropping `tx` at
/// EOF or on a read error is how the caller learns the stream ended.
fn read_lines(stdout: impl Read, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if tx.send(line.to_string()).is_err() {
            return;
        }
    }
}

/// Keeps the last [`STDERR_TAIL_BYTES`] of `stderr`.
fn read_tail(mut stderr: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let Ok(mut tail) = tail.lock() else { return };
        tail.extend(&buf[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }
}
