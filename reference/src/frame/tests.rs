//! Unit tests of the frame layer's small pieces that the scenario tests reach only
//! indirectly: dispatch by message type, encoders' lengths, view accessors. Several were
//! added for mutants `cargo mutants` found uncaught (docs/assurance.md).

use super::*;
use crate::{SessionId, Step};

#[test]
fn message_type_dispatch_checks_length_version_and_type() {
    assert_eq!(MessageType::of(&[]), Err(Reason::Truncated));
    assert_eq!(MessageType::of(&[0x01]), Err(Reason::Truncated));
    assert_eq!(
        MessageType::of(&[0x02, 0x01]),
        Err(Reason::UnsupportedVersion)
    );
    assert_eq!(
        MessageType::of(&[0x00, 0x03, 0xAA]),
        Err(Reason::UnsupportedVersion)
    );
    for (byte, ty) in [
        (0x01, MessageType::LockGrant),
        (0x02, MessageType::Revocation),
        (0x03, MessageType::GuestGrant),
        (0x04, MessageType::GrantRequest),
        (0x05, MessageType::LockEvent),
        (0x06, MessageType::LockStatus),
    ] {
        assert_eq!(MessageType::of(&[0x01, byte]), Ok(ty));
        assert_eq!(ty as u8, byte);
    }
    assert_eq!(MessageType::of(&[0x01, 0x07]), Err(Reason::WrongType));
    assert_eq!(MessageType::of(&[0x01, 0x00, 0x01]), Err(Reason::WrongType));
}

#[test]
fn buffer_too_small_says_how_many_bytes_are_needed() {
    let e = BufferTooSmall { needed: 23 };
    assert_eq!(
        alloc::format!("{e}"),
        "output buffer too small: frame needs 23 bytes"
    );
}

#[test]
fn fixed_frames_encode_their_length_and_refuse_short_buffers() {
    let beacon = Beacon {
        step: Step(7),
        tag: [1; 8],
        attempt: 2,
        mac: [3; 8],
    };
    let challenge = Challenge {
        nonce: [4; NONCE_LEN],
        lock_time: 5,
        session_id: SessionId([6; 8]),
        lock_mac: [7; 8],
    };
    let response = Response {
        phone_time: 8,
        step: Step(9),
        mac: [10; 12],
    };
    let select = Select {
        tag: [11; 8],
        attempt: 12,
    };
    let mut out = [0u8; 64];
    assert_eq!(beacon.encode(&mut out), Ok(BEACON_LEN));
    assert_eq!(out[..BEACON_LEN], beacon.to_bytes());
    assert_eq!(challenge.encode(&mut out), Ok(CHALLENGE_LEN));
    assert_eq!(out[..CHALLENGE_LEN], challenge.to_bytes());
    assert_eq!(response.encode(&mut out), Ok(RESPONSE_LEN));
    assert_eq!(out[..RESPONSE_LEN], response.to_bytes());
    assert_eq!(select.encode(&mut out), Ok(SELECT_LEN));
    assert_eq!(out[..SELECT_LEN], select.to_bytes());
    let mut short = [0u8; 10];
    assert_eq!(
        beacon.encode(&mut short),
        Err(BufferTooSmall { needed: BEACON_LEN })
    );
    assert_eq!(
        challenge.encode(&mut short),
        Err(BufferTooSmall {
            needed: CHALLENGE_LEN
        })
    );
}

#[test]
fn beacon_view_accessors_return_the_frame_bytes() {
    let b = Beacon {
        step: Step(0x0102_0304),
        tag: [0xA1; 8],
        attempt: 0xBEEF,
        mac: [0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8],
    }
    .to_bytes();
    let v = BeaconView::parse(&b).expect("valid beacon");
    assert_eq!(v.as_bytes(), &b);
    assert_eq!(v.mac(), &b[15..23]);
    assert_eq!(
        v.mac_bytes(),
        [0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8]
    );
    assert_eq!(v.mac_input()[..], b[..15]);
}
