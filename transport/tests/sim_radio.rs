//! Simulated air: adverts, RSSI, loss, GATT exchanges. Runs on tokio's paused clock, so
//! every delay is exact and no test waits in real time.

mod common;

use std::time::Duration;

use latchkey_transport::radio::{
    AdvertReport, AttError, ConnId, GattLink, GattServiceSpec, GuestRadio, LockEvents, LockRadio,
    LockRadioEvent, RadioError, SimAir, SimAirConfig,
};
use tokio::time::Instant;
use uuid::Uuid;

const COMPANY: u16 = 0xFFFF;

fn spec() -> GattServiceSpec {
    GattServiceSpec {
        service: Uuid::from_u128(0x6c6b0001_4c4b_4c4b_8000_4c6174636b79),
        challenge_char: Uuid::from_u128(0x6c6b0002_4c4b_4c4b_8000_4c6174636b79),
        response_char: Uuid::from_u128(0x6c6b0003_4c4b_4c4b_8000_4c6174636b79),
    }
}

/// Everything queued now (the clock is paused, so nothing arrives while draining).
fn drain_adverts(events: &mut LockEvents) -> Vec<AdvertReport> {
    let mut out = Vec::new();
    while let Some(ev) = events.try_recv() {
        match ev {
            LockRadioEvent::Advert(r) => out.push(r),
            other => panic!("unexpected event {other:?}"),
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn adverts_reach_the_scanner_with_per_link_rssi() {
    let air = SimAir::default();
    air.set_rssi("near", "lock", -42);
    let lock = air.radio("lock");
    let near = air.radio("near");
    let far = air.radio("far");
    let mut events = lock.start_lock(spec()).await.expect("start lock");

    near.set_advertisement(COMPANY, vec![1; 23])
        .await
        .expect("adv");
    far.set_advertisement(0x1234, vec![2; 5])
        .await
        .expect("adv");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut got = drain_adverts(&mut events);
    got.sort_by_key(|r| r.data[0]);
    assert_eq!(
        got,
        vec![
            AdvertReport {
                company_id: COMPANY,
                data: vec![1; 23],
                rssi: -42
            },
            AdvertReport {
                company_id: 0x1234,
                data: vec![2; 5],
                rssi: -60
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn advertisement_repeats_at_the_configured_interval() {
    let air = SimAir::default(); // 100 ms interval, 1 ms latency
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");
    guest
        .set_advertisement(COMPANY, vec![9])
        .await
        .expect("adv");
    // Sent at 0, 100, …, 1000 ms; each arrives 1 ms later.
    tokio::time::sleep(Duration::from_millis(1005)).await;
    assert_eq!(drain_adverts(&mut events).len(), 11);
}

#[tokio::test(start_paused = true)]
async fn loss_one_drops_every_advert_and_connection() {
    let air = SimAir::new(SimAirConfig {
        loss: 1.0,
        ..SimAirConfig::default()
    });
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");
    guest
        .set_advertisement(COMPANY, vec![1])
        .await
        .expect("adv");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(drain_adverts(&mut events).is_empty());
    match guest.connect(spec().service, Duration::from_secs(1)).await {
        Err(RadioError::NotFound { service, .. }) => assert_eq!(service, spec().service),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn partial_loss_is_reproducible_from_the_seed() {
    async fn heard(seed: u64) -> usize {
        let air = SimAir::new(SimAirConfig {
            seed,
            loss: 0.5,
            ..SimAirConfig::default()
        });
        let lock = air.radio("lock");
        let guest = air.radio("guest");
        let mut events = lock.start_lock(spec()).await.expect("start lock");
        guest
            .set_advertisement(COMPANY, vec![1])
            .await
            .expect("adv");
        tokio::time::sleep(Duration::from_millis(9_950)).await; // 100 adverts
        drain_adverts(&mut events).len()
    }
    let first = heard(7).await;
    assert_eq!(first, heard(7).await);
    assert!(
        (25..=75).contains(&first),
        "heard {first} of 100 at 50% loss"
    );
}

#[tokio::test(start_paused = true)]
async fn replacing_the_advertisement_switches_the_data() {
    let air = SimAir::default();
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");

    guest
        .set_advertisement(COMPANY, b"step-1".to_vec())
        .await
        .expect("adv");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = drain_adverts(&mut events);
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|r| r.data == b"step-1"));

    guest
        .set_advertisement(COMPANY, b"step-2".to_vec())
        .await
        .expect("adv");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = drain_adverts(&mut events);
    assert_eq!(after.len(), 3, "new advert starts at once and repeats");
    assert!(after.iter().all(|r| r.data == b"step-2"), "{after:?}");

    guest.stop_advertising().await.expect("stop");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(drain_adverts(&mut events).is_empty());
}

#[tokio::test(start_paused = true)]
async fn oversize_advertisement_is_refused() {
    let air = SimAir::default();
    let guest = air.radio("guest");
    match guest.set_advertisement(COMPANY, vec![0; 25]).await {
        Err(RadioError::AdvertTooLong { len: 25, max: 24 }) => {}
        other => panic!("expected AdvertTooLong, got {other:?}"),
    }
}

/// What the scripted lock saw.
#[derive(Debug, Default)]
struct Seen {
    writes: Vec<(ConnId, Uuid, Vec<u8>)>,
    reads: Vec<(ConnId, Uuid)>,
    disconnects: Vec<ConnId>,
}

/// A lock that accepts the select write, serves a 33-byte challenge, and rejects the
/// response with application error 0x85. Returns what it saw once it sees a disconnect.
async fn scripted_lock(mut events: LockEvents, challenge: Vec<u8>) -> Seen {
    let mut seen = Seen::default();
    while let Some(ev) = events.recv().await {
        match ev {
            LockRadioEvent::Advert(_) => {}
            LockRadioEvent::GattWrite {
                conn,
                characteristic,
                value,
                reply,
            } => {
                seen.writes.push((conn, characteristic, value));
                let answer = if characteristic == spec().challenge_char {
                    Ok(())
                } else {
                    Err(AttError::Application(0x85))
                };
                let _ = reply.send(answer);
            }
            LockRadioEvent::GattRead {
                conn,
                characteristic,
                reply,
            } => {
                seen.reads.push((conn, characteristic));
                let _ = reply.send(Ok(challenge.clone()));
            }
            LockRadioEvent::Disconnected { conn } => {
                seen.disconnects.push(conn);
                break;
            }
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn write_read_write_exchange_with_application_error_and_disconnect() {
    let air = SimAir::default(); // 10 ms one-way GATT latency, MTU 23
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let events = lock.start_lock(spec()).await.expect("start lock");
    let challenge: Vec<u8> = (0..33).collect();
    let lock_task = tokio::spawn(scripted_lock(events, challenge.clone()));

    let link = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");
    let conn = link.conn_id().expect("sim knows the conn id");

    link.write(spec().challenge_char, &[1; 11])
        .await
        .expect("select accepted");

    let start = Instant::now();
    let value = link
        .read(spec().challenge_char)
        .await
        .expect("read challenge");
    assert_eq!(value, challenge);
    // 33 bytes at MTU 23: Read (22 bytes) + one Read Blob (11 bytes) = 2 round trips.
    assert_eq!(start.elapsed(), Duration::from_millis(40));

    match link.write(spec().response_char, &[2; 20]).await {
        Err(RadioError::Att(AttError::Application(0x85))) => {}
        other => panic!("expected application error 0x85, got {other:?}"),
    }
    link.disconnect().await.expect("disconnect");

    let seen = lock_task.await.expect("lock task");
    assert_eq!(
        seen.writes,
        vec![
            (conn, spec().challenge_char, vec![1; 11]),
            (conn, spec().response_char, vec![2; 20]),
        ]
    );
    assert_eq!(
        seen.reads,
        vec![(conn, spec().challenge_char)],
        "one read event per long read"
    );
    assert_eq!(seen.disconnects, vec![conn]);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_link_is_a_disconnect_and_reconnects_get_new_ids() {
    let air = SimAir::default();
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");

    let first = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");
    let second = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");
    let (a, b) = (first.conn_id().expect("id"), second.conn_id().expect("id"));
    assert_ne!(a, b);
    drop(first);
    match common::within(1, "disconnect event", events.recv()).await {
        Some(LockRadioEvent::Disconnected { conn }) => assert_eq!(conn, a),
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn characteristic_properties_are_enforced_by_the_stack() {
    let air = SimAir::default();
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");
    let link = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");

    match link.read(spec().response_char).await {
        Err(RadioError::Att(AttError::ReadNotPermitted)) => {}
        other => panic!("expected ReadNotPermitted, got {other:?}"),
    }
    let stranger = Uuid::from_u128(42);
    assert!(matches!(
        link.write(stranger, b"x").await,
        Err(RadioError::UnknownCharacteristic(u)) if u == stranger
    ));
    assert!(matches!(
        link.write(spec().response_char, &[0; 513]).await,
        Err(RadioError::ValueTooLong { len: 513, max: 512 })
    ));
    assert!(
        events.try_recv().is_none(),
        "the lock must not see refused requests"
    );
}

#[tokio::test(start_paused = true)]
async fn unanswered_and_dropped_replies() {
    let air = SimAir::new(SimAirConfig {
        att_timeout: Duration::from_secs(5),
        ..SimAirConfig::default()
    });
    let lock = air.radio("lock");
    let guest = air.radio("guest");
    let mut events = lock.start_lock(spec()).await.expect("start lock");
    let link = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");

    let (result, held) = tokio::join!(link.write(spec().challenge_char, b"a"), async {
        // Hold the reply without answering: the guest times out.
        events.recv().await
    });
    assert!(matches!(result, Err(RadioError::Timeout(t)) if t == Duration::from_secs(5)));
    drop(held);

    let (result, ()) = tokio::join!(link.write(spec().challenge_char, b"b"), async {
        // Drop the reply unanswered: the guest sees "unlikely error".
        drop(events.recv().await);
    });
    assert!(
        matches!(result, Err(RadioError::Att(AttError::UnlikelyError))),
        "{result:?}"
    );

    drop(events);
    assert!(matches!(
        link.write(spec().challenge_char, b"c").await,
        Err(RadioError::Disconnected)
    ));
}

#[tokio::test(start_paused = true)]
async fn guest_connects_to_the_strongest_lock_and_lock_cannot_start_twice() {
    let air = SimAir::default();
    air.set_rssi("lock-a", "guest", -80);
    air.set_rssi("lock-b", "guest", -50);
    let (lock_a, lock_b) = (air.radio("lock-a"), air.radio("lock-b"));
    let guest = air.radio("guest");
    let mut events_a = lock_a.start_lock(spec()).await.expect("start a");
    let mut events_b = lock_b.start_lock(spec()).await.expect("start b");
    assert!(matches!(
        lock_a.start_lock(spec()).await,
        Err(RadioError::AlreadyStarted)
    ));

    let link = guest
        .connect(spec().service, Duration::from_secs(1))
        .await
        .expect("connect");
    let (result, ev) = tokio::join!(link.write(spec().challenge_char, b"x"), async {
        match events_b.recv().await {
            Some(LockRadioEvent::GattWrite { reply, .. }) => {
                let _ = reply.send(Ok(()));
                true
            }
            _ => false,
        }
    });
    result.expect("write to strongest lock");
    assert!(ev, "lock-b (stronger) got the write");
    assert!(events_a.try_recv().is_none(), "lock-a got nothing");
}
