//! Properties over all inputs: encode/decode round trips, every single-bit flip of a valid
//! beacon, challenge and response is rejected, and no input makes anything panic.

mod common;

use common::*;
use latchkey::frame::*;
use latchkey::lock::{BeaconOutcome, ConnId};
use latchkey::{GrantId, GuestId, LockId, RequestId, SessionId, Step};
use proptest::prelude::*;

fn arb16() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn beacon_round_trip(step: u32, tag: [u8; 8], attempt: u16, mac: [u8; 8]) {
        let b = Beacon { step: Step(step), tag, attempt, mac };
        let bytes = b.to_bytes();
        prop_assert_eq!(Beacon::from(BeaconView::parse(&bytes).unwrap()), b);
    }

    #[test]
    fn fixed_frames_decode_encode_identity(mut raw in proptest::collection::vec(any::<u8>(), 33)) {
        raw[0] = 0x01;
        if let Ok(v) = BeaconView::parse(&raw[..BEACON_LEN]) {
            prop_assert_eq!(&Beacon::from(v).to_bytes()[..], &raw[..BEACON_LEN]);
        }
        if let Ok(v) = SelectView::parse(&raw[..SELECT_LEN]) {
            prop_assert_eq!(&Select::from(v).to_bytes()[..], &raw[..SELECT_LEN]);
        }
        let v = ChallengeView::parse(&raw[..CHALLENGE_LEN]).unwrap();
        prop_assert_eq!(&Challenge::from(v).to_bytes()[..], &raw[..CHALLENGE_LEN]);
        let v = ResponseView::parse(&raw[..RESPONSE_LEN]).unwrap();
        prop_assert_eq!(&Response::from(v).to_bytes()[..], &raw[..RESPONSE_LEN]);
    }

    #[test]
    fn guest_grant_and_request_round_trip(ids in proptest::array::uniform4(arb16()), sid: [u8; 8],
        times: [u64; 3], nonce: [u8; 12], sealed in proptest::collection::vec(any::<u8>(), 48)) {
        let h = GuestGrantHeader {
            guest_id: GuestId(ids[0]), lock_id: LockId(ids[1]), request_id: RequestId(ids[2]),
            grant_id: GrantId(ids[3]), session_id: SessionId(sid),
            issued_at: times[0], not_before: times[1], not_after: times[2],
        };
        let mut buf = [0u8; GUEST_GRANT_LEN];
        let sealed: [u8; 48] = sealed.try_into().unwrap();
        h.encode(&nonce, &sealed, &mut buf).unwrap();
        let v = GuestGrantView::parse(&buf).unwrap();
        prop_assert_eq!(v.header, h);
        prop_assert_eq!(v.nonce, nonce);
        prop_assert_eq!(v.sealed, &sealed[..]);

        let r = GrantRequestHeader { guest_id: GuestId(ids[0]), lock_id: LockId(ids[1]), request_id: RequestId(ids[2]), timestamp: times[0] };
        let mut buf = [0u8; GRANT_REQUEST_LEN];
        let s20: [u8; 20] = sealed[..20].try_into().unwrap();
        r.encode(&nonce, &s20, &mut buf).unwrap();
        let v = GrantRequestView::parse(&buf).unwrap();
        prop_assert_eq!(v.header, r);
        prop_assert_eq!(v.sealed, &s20[..]);
    }

    #[test]
    fn signed_messages_round_trip(ids in proptest::array::uniform4(arb16()), sid: [u8; 8], times: [u64; 3],
        wrapped_len in 256usize..=512, sig_len in 256usize..=512, fill: u8, max_unlocks: u16, kind in 1u8..=6) {
        let h = LockGrantHeader {
            lock_id: LockId(ids[0]), grant_id: GrantId(ids[1]), session_id: SessionId(sid),
            guest_id: GuestId(ids[2]), issued_at: times[0], not_before: times[1], not_after: times[2],
            max_unlocks,
        };
        let wrapped = vec![fill; wrapped_len];
        let sig = vec![fill ^ 0xFF; sig_len];
        let mut out = Vec::new();
        h.encode_unsigned(&wrapped, &mut out).unwrap();
        let signed_len = out.len();
        append_signature(&mut out, &sig).unwrap();
        let v = LockGrantView::parse(&out).unwrap();
        prop_assert_eq!(v.header, h);
        prop_assert_eq!(v.wrapped, &wrapped[..]);
        prop_assert_eq!(v.signature, &sig[..]);
        prop_assert_eq!(v.signed.len(), signed_len);

        let r = Revocation { lock_id: LockId(ids[0]), revocation_id: latchkey::RevocationId(ids[3]), grant_id: GrantId(ids[1]),
            session_id: SessionId(sid), issued_at: times[0], expires_at: times[1] };
        r.encode_unsigned(&mut out);
        append_signature(&mut out, &sig).unwrap();
        prop_assert_eq!(RevocationView::parse(&out).unwrap().fields, r);

        let e = LockEvent { lock_id: LockId(ids[0]), event_id: latchkey::EventId(ids[3]), timestamp_ms: times[0],
            kind: EventKind::from_u8(kind).unwrap(), reason: 21, grant_id: GrantId(ids[1]), session_id: SessionId(sid) };
        e.encode_unsigned(&mut out);
        append_signature(&mut out, &sig).unwrap();
        prop_assert_eq!(LockEventView::parse(&out).unwrap().fields, e);
    }

    /// LockStatus: every encodable status decodes to itself; the encoder refuses exactly
    /// what the parser refuses (battery 101..=254, more than 32 counters, unsorted or
    /// repeated reason codes).
    #[test]
    fn lock_status_round_trips(ids in proptest::array::uniform2(arb16()), ts: u64, uptime: u32,
        battery: u8, flags in 0u8..8, counts: [u32; 3], sessions: u32, revocations: u32, lockouts: u16,
        codes in proptest::collection::btree_set(any::<u16>(), 0..=40), sig_len in 256usize..=512) {
        let counters: Vec<StatusCounter> = codes.iter().enumerate()
            .map(|(i, c)| StatusCounter { reason: *c, count: counts[i % 3] }).collect();
        let st = LockStatus {
            lock_id: LockId(ids[0]), status_id: latchkey::EventId(ids[1]), timestamp_ms: ts,
            uptime_s: uptime, battery_pct: (battery != BATTERY_UNKNOWN).then_some(battery),
            flags: StatusFlags::from_bits(flags).unwrap(), sessions, revocations, lockouts, counters,
        };
        let mut out = Vec::new();
        let valid = battery <= 100 || battery == BATTERY_UNKNOWN;
        match st.encode_unsigned(&mut out) {
            Ok(()) => {
                prop_assert!(valid && st.counters.len() <= MAX_STATUS_COUNTERS);
                prop_assert_eq!(out.len(), LOCK_STATUS_FIXED_LEN + 6 * st.counters.len());
                append_signature(&mut out, &vec![0xA5; sig_len]).unwrap();
                let v = LockStatusView::parse(&out).unwrap();
                prop_assert_eq!(&v.fields, &st);
                prop_assert_eq!(v.signature.len(), sig_len);
                for f in layout(FrameKind::LockStatus, &out) {
                    prop_assert!(f.start <= f.end && f.end <= out.len());
                }
                prop_assert_eq!(layout(FrameKind::LockStatus, &out).last().map(|f| f.end), Some(out.len()));
            }
            Err(r) => {
                prop_assert_eq!(r, latchkey::Reason::FieldOutOfRange);
                prop_assert!(!valid || st.counters.len() > MAX_STATUS_COUNTERS);
            }
        }
    }

    #[test]
    fn no_parser_panics(raw in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = BeaconView::parse(&raw);
        let _ = SelectView::parse(&raw);
        let _ = ChallengeView::parse(&raw);
        let _ = ResponseView::parse(&raw);
        let _ = LockGrantView::parse(&raw);
        let _ = RevocationView::parse(&raw);
        let _ = GuestGrantView::parse(&raw);
        let _ = GrantRequestView::parse(&raw);
        let _ = LockEventView::parse(&raw);
        let _ = LockStatusView::parse(&raw);
        let _ = MessageType::of(&raw);
        for k in [FrameKind::Beacon, FrameKind::LockGrant, FrameKind::Revocation, FrameKind::LockEvent, FrameKind::LockStatus] {
            for f in layout(k, &raw) {
                prop_assert!(f.start <= f.end && f.end <= raw.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Random bytes at every input of every role: typed rejections, never a panic, never an
    /// unlock or a grant.
    #[test]
    fn no_role_input_panics(raw in proptest::collection::vec(any::<u8>(), 0..700), rssi: i16, dt in 0u64..100_000) {
        let mut w = World::new();
        w.grant();
        let now = w.now.plus_ms(dt);
        let armed = matches!(w.lock.handle_beacon(now, 0xFFFF, &raw, rssi), Ok(BeaconOutcome::Armed { .. }));
        prop_assert!(!armed);
        prop_assert!(w.lock.handle_select(now, ConnId(5), &raw, &mut w.rng).is_err());
        prop_assert!(w.lock.handle_response(now, ConnId(5), &raw).is_err());
        prop_assert!(w.lock.handle_message(now, &raw, &mut w.rng).is_err());
        prop_assert!(w.guest.handle_grant(now, &raw).is_err());
        prop_assert!(w.guest.handle_challenge(now, &raw).is_err());
        prop_assert!(w.issuer.handle_request(now, GUEST, &raw, &mut w.rng).is_err());
        prop_assert!(w.issuer.handle_lock_message(now, LOCK_A, &raw).is_err());
        prop_assert!(w.lock.revoked_beacon_ids(&raw).is_none());
    }
}

#[test]
fn every_single_bit_flip_of_a_valid_beacon_is_rejected() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    for bit in 0..b.len() * 8 {
        let mut f = b;
        f[bit / 8] ^= 1 << (bit % 8);
        let r = w.hear(&f);
        assert!(r.is_err(), "bit {bit}: {r:?}");
    }
    assert!(matches!(w.hear(&b), Ok(BeaconOutcome::Armed { .. })));
}

#[test]
fn every_single_bit_flip_of_a_valid_challenge_is_rejected_by_the_guest() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).unwrap();
    let ch = w.challenge().unwrap();
    for bit in 0..ch.len() * 8 {
        let mut f = ch;
        f[bit / 8] ^= 1 << (bit % 8);
        let r = w.guest.handle_challenge(w.now, &f);
        assert!(r.is_err(), "bit {bit}");
    }
    assert!(w.guest.handle_challenge(w.now, &ch).is_ok());
}

#[test]
fn every_single_bit_flip_of_a_valid_response_is_rejected_by_the_lock() {
    // 160 failed handshakes of one guest: lockout (LK-LCK-1) would refuse its beacons after
    // the fifth, so it is off here; lk_lck_* test it.
    let mut cfg = lock_config();
    cfg.lockout_threshold = 0;
    let mut w = World::with_lock_config(cfg);
    w.grant();
    for bit in 0..RESPONSE_LEN * 8 {
        w.guest.cancel_unlock();
        let b = w.beacon();
        w.hear(&b).unwrap();
        let ch = w.challenge().unwrap();
        let mut resp = w.guest.handle_challenge(w.now, &ch).unwrap();
        resp[bit / 8] ^= 1 << (bit % 8);
        let r = w.lock.handle_response(w.now, w.conn, &resp);
        assert!(r.is_err(), "bit {bit}");
    }
    w.guest.cancel_unlock();
    assert!(w.unlock().is_ok());
}
