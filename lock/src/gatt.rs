//! The Latchkey GATT service (spec §5.3) and the challenges served per connection.

use std::collections::HashMap;

use latchkey::frame::CHALLENGE_LEN;
use latchkey::{SessionId, UnixMillis};
use latchkey_transport::radio::{ConnId, GattServiceSpec};
use uuid::Uuid;

/// The Latchkey primary service, also advertised (connectable) by the lock.
pub const SERVICE_UUID: Uuid = Uuid::from_u128(0x6c6b0001_4c4b_4c4b_8000_4c6174636b79);
/// The select/challenge characteristic: write Select, read Challenge.
pub const CHALLENGE_CHAR_UUID: Uuid = Uuid::from_u128(0x6c6b0002_4c4b_4c4b_8000_4c6174636b79);
/// The response characteristic: write Response.
pub const RESPONSE_CHAR_UUID: Uuid = Uuid::from_u128(0x6c6b0003_4c4b_4c4b_8000_4c6174636b79);

/// The service as the transports take it.
pub fn service_spec() -> GattServiceSpec {
    GattServiceSpec {
        service: SERVICE_UUID,
        challenge_char: CHALLENGE_CHAR_UUID,
        response_char: RESPONSE_CHAR_UUID,
    }
}

/// A challenge the core issued on one connection; reads serve these exact bytes
/// (LK-CHL-1: byte-identical until consumed or discarded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served {
    pub(crate) bytes: [u8; CHALLENGE_LEN],
    pub(crate) session_id: SessionId,
    pub(crate) issued_at: UnixMillis,
}

/// Challenges by connection. Keyed by [`ConnId`], never by a device address: phones
/// randomise addresses, and two phones may even share one.
#[derive(Debug, Default)]
pub(crate) struct Challenges {
    by_conn: HashMap<ConnId, Served>,
}

impl Challenges {
    pub(crate) fn insert(&mut self, conn: ConnId, served: Served) {
        self.by_conn.insert(conn, served);
    }

    /// The challenge to serve, if it is still within the response budget (the core drops
    /// it after that, so serving it would only invite a `late_response`).
    pub(crate) fn get(&self, conn: ConnId, now: UnixMillis, budget_ms: u64) -> Option<&Served> {
        self.by_conn
            .get(&conn)
            .filter(|s| now.since(s.issued_at) <= budget_ms)
    }

    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Served> {
        self.by_conn.remove(&conn)
    }

    /// Forgets challenges past the response budget.
    pub(crate) fn prune(&mut self, now: UnixMillis, budget_ms: u64) {
        self.by_conn
            .retain(|_, s| now.since(s.issued_at) <= budget_ms);
    }

    pub(crate) fn len(&self) -> usize {
        self.by_conn.len()
    }
}
