//! One check per parser of `latchkey::frame`. For every input: no panic, and a rejection
//! names an LK-FRM-* reason (exactly the expected one for the fixed-length frames). For
//! every accepted input: decode → encode → decode is the identity, through the frame's own
//! encoder and through the harness's JSON `decode`/`encode` (what a shim must reproduce),
//! and the annotated layout covers the frame exactly.

use latchkey::Reason;
use latchkey::frame::*;
use latchkey_harness::iut::reference as shim_ref;
use serde_json::Value;

/// LK-FRM-1..4: the only reasons a parser may give.
fn assert_frame_reason(r: Reason, frame: &str, data: &[u8]) {
    assert!(
        matches!(
            r,
            Reason::Truncated
                | Reason::TrailingBytes
                | Reason::UnsupportedVersion
                | Reason::WrongType
                | Reason::FieldOutOfRange
        ),
        "{frame}: parser rejected {} with non-frame reason {r:?}",
        crate::common::hex(data)
    );
}

/// The reason a fixed-length frame must be rejected with (LK-FRM-1, then LK-FRM-2, then
/// LK-FRM-3), or `None` if it must be accepted.
fn fixed_reason(data: &[u8], len: usize, version: bool, ty: Option<u8>) -> Option<Reason> {
    if data.len() < len {
        Some(Reason::Truncated)
    } else if data.len() > len {
        Some(Reason::TrailingBytes)
    } else if version && data[0] != latchkey::constants::VERSION {
        Some(Reason::UnsupportedVersion)
    } else if ty.is_some_and(|t| data[1] != t) {
        Some(Reason::WrongType)
    } else {
        None
    }
}

/// The harness's JSON decoder must agree with the parser, and for a valid frame its encoder
/// must give the bytes back.
fn json_round_trip(frame: &str, data: &[u8], parsed: Result<(), Reason>) {
    let out = shim_ref::decode(frame, data).expect("known frame name");
    match parsed {
        Ok(()) => {
            assert_eq!(out["result"], "valid", "{frame}: harness decode disagrees");
            let bytes = shim_ref::encode(frame, &out["fields"])
                .unwrap_or_else(|e| panic!("{frame}: harness cannot re-encode its decode: {e}"));
            assert_eq!(
                bytes, data,
                "{frame}: harness decode → encode is not the identity"
            );
            let again = shim_ref::decode(frame, &bytes).expect("known frame name");
            assert_eq!(
                again, out,
                "{frame}: harness decode → encode → decode differs"
            );
        }
        Err(r) => {
            assert_eq!(
                out["result"], "invalid",
                "{frame}: harness decode disagrees"
            );
            assert_eq!(
                out["reason"],
                Value::from(r.name()),
                "{frame}: reason differs"
            );
        }
    }
}

/// The annotated layout of a frame: contiguous spans from 0 within the bytes; for an
/// accepted frame they cover it exactly.
pub fn check_layout(kind: FrameKind, data: &[u8], accepted: bool) {
    let spans = layout(kind, data);
    let mut at = 0;
    for s in &spans {
        assert!(
            s.start == at && s.start <= s.end && s.end <= data.len(),
            "{kind:?}: layout span {s:?} not contiguous within {} bytes",
            data.len()
        );
        at = s.end;
    }
    if accepted {
        assert_eq!(at, data.len(), "{kind:?}: layout does not cover the frame");
    }
}

/// Checks a fixed frame's `encode` into buffers too small and large enough.
fn check_encode(
    frame: &str,
    data: &[u8],
    encode: impl Fn(&mut [u8]) -> Result<usize, BufferTooSmall>,
) {
    let mut big = vec![0u8; data.len() + 7];
    assert_eq!(encode(&mut big), Ok(data.len()), "{frame}: encode length");
    assert_eq!(&big[..data.len()], data, "{frame}: encode bytes");
    if !data.is_empty() {
        let mut small = vec![0u8; data.len() - 1];
        assert_eq!(
            encode(&mut small),
            Err(BufferTooSmall { needed: data.len() }),
            "{frame}: encode into a short buffer"
        );
    }
}

/// Beacon (spec §5.1).
pub fn beacon(data: &[u8]) {
    let parsed = BeaconView::parse(data);
    let want = fixed_reason(data, BEACON_LEN, true, None);
    assert_eq!(parsed.err(), want, "beacon: wrong verdict");
    if let Ok(v) = parsed {
        let f = Beacon::from(v);
        assert_eq!(&f.to_bytes()[..], data, "beacon: decode → encode");
        assert_eq!(v.as_bytes(), data);
        assert_eq!(
            v.mac_input(),
            &Beacon::mac_input(f.step, &f.tag, f.attempt)[..]
        );
        let bytes = f.to_bytes();
        let again = BeaconView::parse(&bytes).expect("re-encoded beacon parses");
        assert_eq!(Beacon::from(again), f, "beacon: decode → encode → decode");
        check_encode("beacon", data, |b| f.encode(b));
    }
    json_round_trip("beacon", data, parsed.map(|_| ()));
    check_layout(FrameKind::Beacon, data, parsed.is_ok());
}

/// Select (spec §5.3).
pub fn select(data: &[u8]) {
    let parsed = SelectView::parse(data);
    let want = fixed_reason(data, SELECT_LEN, true, None);
    assert_eq!(parsed.err(), want, "select: wrong verdict");
    if let Ok(v) = parsed {
        let f = Select::from(v);
        assert_eq!(&f.to_bytes()[..], data, "select: decode → encode");
        let bytes = f.to_bytes();
        let again = SelectView::parse(&bytes).expect("re-encoded select parses");
        assert_eq!(Select::from(again), f, "select: decode → encode → decode");
        check_encode("select", data, |b| f.encode(b));
    }
    json_round_trip("select", data, parsed.map(|_| ()));
    check_layout(FrameKind::Select, data, parsed.is_ok());
}

/// Challenge (spec §5.3).
pub fn challenge(data: &[u8]) {
    let parsed = ChallengeView::parse(data);
    let want = fixed_reason(data, CHALLENGE_LEN, true, None);
    assert_eq!(parsed.err(), want, "challenge: wrong verdict");
    if let Ok(v) = parsed {
        let f = Challenge::from(v);
        assert_eq!(&f.to_bytes()[..], data, "challenge: decode → encode");
        assert_eq!(v.lock_mac(), &f.lock_mac[..]);
        let bytes = f.to_bytes();
        let again = ChallengeView::parse(&bytes).expect("re-encoded challenge parses");
        assert_eq!(
            Challenge::from(again),
            f,
            "challenge: decode → encode → decode"
        );
        check_encode("challenge", data, |b| f.encode(b));
    }
    json_round_trip("challenge", data, parsed.map(|_| ()));
    check_layout(FrameKind::Challenge, data, parsed.is_ok());
}

/// Response (spec §5.3): no version byte, so every 20-byte value parses.
pub fn response(data: &[u8]) {
    let parsed = ResponseView::parse(data);
    let want = fixed_reason(data, RESPONSE_LEN, false, None);
    assert_eq!(parsed.err(), want, "response: wrong verdict");
    if let Ok(v) = parsed {
        let f = Response::from(v);
        assert_eq!(&f.to_bytes()[..], data, "response: decode → encode");
        assert_eq!(v.mac(), &f.mac[..]);
        let bytes = f.to_bytes();
        let again = ResponseView::parse(&bytes).expect("re-encoded response parses");
        assert_eq!(
            Response::from(again),
            f,
            "response: decode → encode → decode"
        );
        check_encode("response", data, |b| f.encode(b));
    }
    json_round_trip("response", data, parsed.map(|_| ()));
    check_layout(FrameKind::Response, data, parsed.is_ok());
}

/// GuestGrant (spec §6.4).
pub fn guest_grant(data: &[u8]) {
    let parsed = GuestGrantView::parse(data);
    let want = fixed_reason(
        data,
        GUEST_GRANT_LEN,
        true,
        Some(MessageType::GuestGrant as u8),
    );
    assert_eq!(parsed.err(), want, "guest_grant: wrong verdict");
    if let Ok(v) = parsed {
        assert_eq!(v.header.to_bytes(), v.header_bytes, "guest_grant: header");
        let sealed: [u8; 48] = v.sealed.try_into().expect("48-byte seal");
        let mut out = [0u8; GUEST_GRANT_LEN];
        check_encode("guest_grant", data, |b| {
            v.header.encode(&v.nonce, &sealed, b)
        });
        v.header
            .encode(&v.nonce, &sealed, &mut out)
            .expect("buffer fits");
        let again = GuestGrantView::parse(&out).expect("re-encoded guest grant parses");
        assert_eq!(again, v, "guest_grant: decode → encode → decode");
        assert_eq!(MessageType::of(data), Ok(MessageType::GuestGrant));
    }
    json_round_trip("guest_grant", data, parsed.map(|_| ()));
    check_layout(FrameKind::GuestGrant, data, parsed.is_ok());
}

/// GrantRequest (spec §6.5).
pub fn grant_request(data: &[u8]) {
    let parsed = GrantRequestView::parse(data);
    let want = fixed_reason(
        data,
        GRANT_REQUEST_LEN,
        true,
        Some(MessageType::GrantRequest as u8),
    );
    assert_eq!(parsed.err(), want, "grant_request: wrong verdict");
    if let Ok(v) = parsed {
        assert_eq!(v.header.to_bytes(), v.header_bytes, "grant_request: header");
        let sealed: [u8; 20] = v.sealed.try_into().expect("20-byte seal");
        check_encode("grant_request", data, |b| {
            v.header.encode(&v.nonce, &sealed, b)
        });
        let mut out = [0u8; GRANT_REQUEST_LEN];
        v.header
            .encode(&v.nonce, &sealed, &mut out)
            .expect("buffer fits");
        let again = GrantRequestView::parse(&out).expect("re-encoded request parses");
        assert_eq!(again, v, "grant_request: decode → encode → decode");
        assert_eq!(MessageType::of(data), Ok(MessageType::GrantRequest));
    }
    json_round_trip("grant_request", data, parsed.map(|_| ()));
    check_layout(FrameKind::GrantRequest, data, parsed.is_ok());
}

/// LockGrant (spec §6.3).
pub fn lock_grant(data: &[u8]) {
    let parsed = LockGrantView::parse(data);
    match parsed {
        Ok(v) => {
            assert_eq!(v.header.to_bytes(), v.header_bytes, "lock_grant: header");
            assert_eq!(v.signed.len(), LOCK_GRANT_HEADER_LEN + 2 + v.wrapped.len());
            assert_eq!(v.signed, &data[..v.signed.len()]);
            let mut out = Vec::new();
            v.header
                .encode_unsigned(v.wrapped, &mut out)
                .expect("accepted wrapped length re-encodes");
            assert_eq!(out, v.signed, "lock_grant: signed part");
            append_signature(&mut out, v.signature).expect("accepted signature re-encodes");
            assert_eq!(out, data, "lock_grant: decode → encode");
            let again = LockGrantView::parse(&out).expect("re-encoded lock grant parses");
            assert_eq!(again, v, "lock_grant: decode → encode → decode");
            assert_eq!(MessageType::of(data), Ok(MessageType::LockGrant));
        }
        Err(r) => assert_frame_reason(r, "lock_grant", data),
    }
    json_round_trip("lock_grant", data, parsed.map(|_| ()));
    check_layout(FrameKind::LockGrant, data, parsed.is_ok());
}

/// Revocation (spec §6.3).
pub fn revocation(data: &[u8]) {
    let parsed = RevocationView::parse(data);
    match parsed {
        Ok(v) => {
            assert_eq!(
                v.fields.signed_prefix(),
                v.signed,
                "revocation: signed prefix"
            );
            let mut out = Vec::new();
            v.fields.encode_unsigned(&mut out);
            append_signature(&mut out, v.signature).expect("accepted signature re-encodes");
            assert_eq!(out, data, "revocation: decode → encode");
            let again = RevocationView::parse(&out).expect("re-encoded revocation parses");
            assert_eq!(again, v, "revocation: decode → encode → decode");
            assert_eq!(MessageType::of(data), Ok(MessageType::Revocation));
        }
        Err(r) => assert_frame_reason(r, "revocation", data),
    }
    json_round_trip("revocation", data, parsed.map(|_| ()));
    check_layout(FrameKind::Revocation, data, parsed.is_ok());
}

/// LockEvent (spec §6.6).
pub fn lock_event(data: &[u8]) {
    let parsed = LockEventView::parse(data);
    match parsed {
        Ok(v) => {
            assert_eq!(
                v.fields.signed_prefix(),
                v.signed,
                "lock_event: signed prefix"
            );
            let mut out = Vec::new();
            v.fields.encode_unsigned(&mut out);
            append_signature(&mut out, v.signature).expect("accepted signature re-encodes");
            assert_eq!(out, data, "lock_event: decode → encode");
            let again = LockEventView::parse(&out).expect("re-encoded event parses");
            assert_eq!(again, v, "lock_event: decode → encode → decode");
            assert_eq!(MessageType::of(data), Ok(MessageType::LockEvent));
        }
        Err(r) => assert_frame_reason(r, "lock_event", data),
    }
    json_round_trip("lock_event", data, parsed.map(|_| ()));
    check_layout(FrameKind::LockEvent, data, parsed.is_ok());
}

/// LockStatus (spec §6.10): a rejection is an LK-FRM reason; an accepted status satisfies
/// the field ranges of LK-FRM-4 (battery, flags, at most 32 counters in strictly increasing
/// reason order), and decode → encode → decode is the identity.
pub fn lock_status(data: &[u8]) {
    let parsed = LockStatusView::parse(data);
    match &parsed {
        Ok(v) => {
            let f = &v.fields;
            assert!(
                f.battery_pct.is_none_or(|p| p <= 100),
                "lock_status: battery {:?} accepted",
                f.battery_pct
            );
            assert_eq!(f.flags.bits() & !StatusFlags::ALL.bits(), 0);
            assert!(f.counters.len() <= MAX_STATUS_COUNTERS);
            assert!(
                f.counters.windows(2).all(|w| w[0].reason < w[1].reason),
                "lock_status: counters accepted out of order"
            );
            assert_eq!(
                v.signed.len(),
                LOCK_STATUS_FIXED_LEN + 6 * f.counters.len()
            );
            assert_eq!(v.signed, &data[..v.signed.len()]);
            let mut out = Vec::new();
            f.encode_unsigned(&mut out)
                .expect("an accepted status re-encodes");
            assert_eq!(out, v.signed, "lock_status: signed prefix");
            append_signature(&mut out, v.signature).expect("accepted signature re-encodes");
            assert_eq!(out, data, "lock_status: decode → encode");
            let again = LockStatusView::parse(&out).expect("re-encoded status parses");
            assert_eq!(&again, v, "lock_status: decode → encode → decode");
            assert_eq!(MessageType::of(data), Ok(MessageType::LockStatus));
        }
        Err(r) => assert_frame_reason(*r, "lock_status", data),
    }
    json_round_trip("lock_status", data, parsed.as_ref().map(|_| ()).map_err(|r| *r));
    check_layout(FrameKind::LockStatus, data, parsed.is_ok());
}

/// `MessageType::of` (the dispatch of a shared MQTT topic) and `layout` of every kind.
/// The type must follow from the first two bytes alone, and agree with every parser that
/// accepts the payload.
pub fn message_type(data: &[u8]) {
    let t = MessageType::of(data);
    let want = match data {
        [] | [_] => Err(Reason::Truncated),
        [v, ..] if *v != latchkey::constants::VERSION => Err(Reason::UnsupportedVersion),
        [_, 1, ..] => Ok(MessageType::LockGrant),
        [_, 2, ..] => Ok(MessageType::Revocation),
        [_, 3, ..] => Ok(MessageType::GuestGrant),
        [_, 4, ..] => Ok(MessageType::GrantRequest),
        [_, 5, ..] => Ok(MessageType::LockEvent),
        [_, 6, ..] => Ok(MessageType::LockStatus),
        _ => Err(Reason::WrongType),
    };
    assert_eq!(t, want, "MessageType::of({})", crate::common::hex(data));
    if let Ok(t) = t {
        assert_eq!(data[1], t as u8);
    }
    let accepted = [
        (
            MessageType::LockGrant,
            FrameKind::LockGrant,
            LockGrantView::parse(data).is_ok(),
        ),
        (
            MessageType::Revocation,
            FrameKind::Revocation,
            RevocationView::parse(data).is_ok(),
        ),
        (
            MessageType::GuestGrant,
            FrameKind::GuestGrant,
            GuestGrantView::parse(data).is_ok(),
        ),
        (
            MessageType::GrantRequest,
            FrameKind::GrantRequest,
            GrantRequestView::parse(data).is_ok(),
        ),
        (
            MessageType::LockEvent,
            FrameKind::LockEvent,
            LockEventView::parse(data).is_ok(),
        ),
        (
            MessageType::LockStatus,
            FrameKind::LockStatus,
            LockStatusView::parse(data).is_ok(),
        ),
    ];
    for (ty, kind, ok) in accepted {
        if ok {
            assert_eq!(
                t,
                Ok(ty),
                "{kind:?} accepted but MessageType::of says {t:?}"
            );
        }
        check_layout(kind, data, ok);
    }
    for kind in [
        FrameKind::Beacon,
        FrameKind::Select,
        FrameKind::Challenge,
        FrameKind::Response,
    ] {
        check_layout(kind, data, false);
    }
}
