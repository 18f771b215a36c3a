//! Implementations under test. Every IUT speaks the shim protocol (harness/SHIM.md): one
//! JSON request object in, one JSON reply object out. The reference answers in process;
//! an external implementation answers through a child process's stdin/stdout.

use serde_json::Value;
use std::fmt;

pub mod reference;
pub mod shim_client;

/// Why a call to the implementation did not produce a usable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IutError {
    /// The implementation said it does not implement this (reported as UNIMPLEMENTED).
    Unimplemented(String),
    /// The implementation answered with an error object (`{"ok":false,"error":…}`).
    Refused(String),
    /// The process exited or closed its stdout; carries the tail of its stderr.
    Crashed(String),
    /// No reply within the per-case timeout; the process was killed.
    Timeout(u64),
    /// The reply was not a JSON object on one line.
    Garbage(String),
    /// The process could not be started.
    Spawn(String),
}

impl fmt::Display for IutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IutError::Unimplemented(m) => write!(f, "unimplemented: {m}"),
            IutError::Refused(m) => write!(f, "implementation error: {m}"),
            IutError::Crashed(m) => write!(f, "shim crashed: {m}"),
            IutError::Timeout(ms) => write!(f, "shim did not answer within {ms} ms (killed)"),
            IutError::Garbage(m) => {
                write!(f, "shim printed something that is not a JSON reply: {m}")
            }
            IutError::Spawn(m) => write!(f, "could not start shim: {m}"),
        }
    }
}

impl std::error::Error for IutError {}

/// An implementation under test.
pub trait Iut {
    /// A name for reports.
    fn name(&self) -> String;
    /// Sends one request object and returns the raw reply object.
    fn call(&mut self, request: &Value) -> Result<Value, IutError>;
    /// Starts over after a crash, hang or garbage (external shims restart their process).
    fn restart(&mut self) -> Result<(), IutError> {
        Ok(())
    }
}

/// Interprets a raw reply: `{"ok":true,…}` is returned whole; `{"ok":false,"unimplemented":m}`
/// and `{"ok":false,"error":m}` become errors; anything else is garbage.
pub fn check_reply(reply: Value) -> Result<Value, IutError> {
    match reply.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(reply),
        Some(false) => {
            if let Some(m) = reply.get("unimplemented") {
                Err(IutError::Unimplemented(
                    m.as_str().unwrap_or("(no detail)").to_string(),
                ))
            } else {
                let m = reply
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("(no detail)");
                Err(IutError::Refused(m.to_string()))
            }
        }
        None => Err(IutError::Garbage(format!(
            "reply without boolean \"ok\": {reply}"
        ))),
    }
}

/// Sends a request and interprets the reply.
pub fn request(iut: &mut dyn Iut, req: &Value) -> Result<Value, IutError> {
    check_reply(iut.call(req)?)
}
