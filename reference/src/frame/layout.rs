//! Field layouts of every frame, for annotated hex dumps (the demo, the harness reports).
//! Offsets are the spec's; variable-length messages are laid out from their length fields.

use alloc::vec::Vec;

/// The frames and messages of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// BLE beacon payload.
    Beacon,
    /// GATT Select.
    Select,
    /// GATT challenge.
    Challenge,
    /// GATT response.
    Response,
    /// MQTT LockGrant.
    LockGrant,
    /// MQTT Revocation.
    Revocation,
    /// MQTT GuestGrant.
    GuestGrant,
    /// MQTT GrantRequest.
    GrantRequest,
    /// MQTT LockEvent.
    LockEvent,
    /// MQTT LockStatus.
    LockStatus,
}

/// One named field: bytes `start..end` of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Field name as in the spec.
    pub name: &'static str,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

fn fixed(fields: &[(&'static str, usize)]) -> Vec<FieldSpan> {
    let mut at = 0;
    fields
        .iter()
        .map(|(name, len)| {
            let f = FieldSpan {
                name,
                start: at,
                end: at + len,
            };
            at += len;
            f
        })
        .collect()
}

fn len_at(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..at + 2) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => 0,
    }
}

/// The field layout of `bytes` read as `kind`. Fields past the end of `bytes` are clipped,
/// so a truncated frame shows what it has.
pub fn layout(kind: FrameKind, bytes: &[u8]) -> Vec<FieldSpan> {
    let mut v = match kind {
        FrameKind::Beacon => fixed(&[
            ("version", 1),
            ("step", 4),
            ("tag", 8),
            ("attempt", 2),
            ("beacon_mac", 8),
        ]),
        FrameKind::Select => fixed(&[("version", 1), ("tag", 8), ("attempt", 2)]),
        FrameKind::Challenge => fixed(&[
            ("version", 1),
            ("nonce", 12),
            ("lock_time", 4),
            ("session_id", 8),
            ("lock_mac", 8),
        ]),
        FrameKind::Response => fixed(&[("phone_time", 4), ("step", 4), ("resp_mac", 12)]),
        FrameKind::LockGrant => {
            let n = len_at(bytes, 84);
            let m = len_at(bytes, 86 + n);
            fixed(&[
                ("version", 1),
                ("type", 1),
                ("lock_id", 16),
                ("grant_id", 16),
                ("session_id", 8),
                ("guest_id", 16),
                ("issued_at", 8),
                ("not_before", 8),
                ("not_after", 8),
                ("max_unlocks", 2),
                ("wrapped_len", 2),
                ("wrapped", n),
                ("sig_len", 2),
                ("sig", m),
            ])
        }
        FrameKind::Revocation => {
            let m = len_at(bytes, 74);
            fixed(&[
                ("version", 1),
                ("type", 1),
                ("lock_id", 16),
                ("revocation_id", 16),
                ("grant_id", 16),
                ("session_id", 8),
                ("issued_at", 8),
                ("expires_at", 8),
                ("sig_len", 2),
                ("sig", m),
            ])
        }
        FrameKind::GuestGrant => fixed(&[
            ("version", 1),
            ("type", 1),
            ("guest_id", 16),
            ("lock_id", 16),
            ("request_id", 16),
            ("grant_id", 16),
            ("session_id", 8),
            ("issued_at", 8),
            ("not_before", 8),
            ("not_after", 8),
            ("nonce", 12),
            ("sealed_key+tag", 48),
        ]),
        FrameKind::GrantRequest => fixed(&[
            ("version", 1),
            ("type", 1),
            ("guest_id", 16),
            ("lock_id", 16),
            ("request_id", 16),
            ("timestamp", 8),
            ("nonce", 12),
            ("sealed_validity+tag", 20),
        ]),
        FrameKind::LockEvent => {
            let m = len_at(bytes, 69);
            fixed(&[
                ("version", 1),
                ("type", 1),
                ("lock_id", 16),
                ("event_id", 16),
                ("timestamp_ms", 8),
                ("kind", 1),
                ("reason", 2),
                ("grant_id", 16),
                ("session_id", 8),
                ("sig_len", 2),
                ("sig", m),
            ])
        }
        FrameKind::LockStatus => {
            let n = bytes.get(58).map_or(0, |n| usize::from(*n));
            let m = len_at(bytes, 59 + 6 * n);
            fixed(&[
                ("version", 1),
                ("type", 1),
                ("lock_id", 16),
                ("status_id", 16),
                ("timestamp_ms", 8),
                ("uptime_s", 4),
                ("battery_pct", 1),
                ("flags", 1),
                ("sessions", 4),
                ("revocations", 4),
                ("lockouts", 2),
                ("counter_count", 1),
                ("counters", 6 * n),
                ("sig_len", 2),
                ("sig", m),
            ])
        }
    };
    v.retain(|f| f.start < bytes.len());
    for f in v.iter_mut() {
        f.end = f.end.min(bytes.len());
    }
    v
}
