//! The LockStatus heartbeat (spec §6.10): on schedule from the start, verified by a core
//! issuer, with the rejections counted since the previous report and the health files.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Outcome, World, attempt};
use latchkey::Reason;
use latchkey::frame::{LockStatus, StatusFlags};

const INTERVAL: Duration = Duration::from_secs(1);

fn count(st: &LockStatus, reason: Reason) -> u32 {
    st.counters
        .iter()
        .find(|c| c.reason == reason.code())
        .map_or(0, |c| c.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_arrive_on_schedule_verify_and_carry_the_rejections_since_the_last() {
    let mut w = World::new("status").await;
    // Subscribed before the lock starts: the first report goes out as soon as MQTT is up.
    let (_observer, mut rx) = w.observe_events("status").await;
    let mut opts = w.lock_options(None);
    opts.status.interval = INTERVAL;
    let lock = w.start_lock(opts).await;

    let first = w.next_status(&mut rx, 5).await;
    assert_eq!(first.lock_id, w.lock_id);
    assert!(first.uptime_s <= 2, "{first:?}");
    assert_eq!(first.battery_pct, None, "no battery file: unknown (255)");
    assert_eq!(first.flags, StatusFlags::NONE);
    assert_eq!(
        (first.sessions, first.revocations, first.lockouts),
        (0, 0, 0)
    );

    // Refused inputs of three paths: grants-topic messages, quiet beacons (rssi), a Select.
    let (mut guest, _) = w.installed_guest(&lock, 31, 0).await;
    let before = lock.stats().message_rejections;
    for payload in [&[0x01][..], &[0x01, 0x01, 0x00], &[0x02, 0x01]] {
        w.publish_grants(payload).await;
    }
    common::wait_stats(&lock, "three messages refused", |s| {
        s.message_rejections == before + 3
    })
    .await;
    w.air.set_rssi("guest", "lock", -90);
    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        a.outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );

    // Every refusal is in exactly one report: the sums reach the daemon's own counts and
    // stay there.
    let mut totals: BTreeMap<u16, u64> = BTreeMap::new();
    let mut previous = first.timestamp_ms;
    let mut last = first.clone();
    let settled = |totals: &BTreeMap<u16, u64>| {
        let s = lock.stats();
        count_all(totals, Reason::NoPendingAuth) == s.select_rejections
            && count_all(totals, Reason::RssiTooLow) == s.beacon_rejections
            && count_all(totals, Reason::Truncated) + count_all(totals, Reason::UnsupportedVersion)
                == s.message_rejections
    };
    for _ in 0..8 {
        if settled(&totals) {
            break;
        }
        let st = w.next_status(&mut rx, 5).await;
        let gap = st.timestamp_ms - previous;
        assert!(
            (800..=2_500).contains(&gap),
            "reports {gap} ms apart, not every {INTERVAL:?}"
        );
        previous = st.timestamp_ms;
        for c in &st.counters {
            *totals.entry(c.reason).or_default() += u64::from(c.count);
        }
        assert!(st.uptime_s >= last.uptime_s);
        last = st;
    }
    let s = lock.stats();
    assert!(settled(&totals), "{totals:?} vs {s:?}");
    // Two truncated frames and one of another version; the Select; each beacon report.
    assert_eq!(count_all(&totals, Reason::Truncated), 2, "{totals:?}");
    assert_eq!(count_all(&totals, Reason::UnsupportedVersion), 1);
    assert_eq!(count_all(&totals, Reason::NoPendingAuth), 1);
    assert!(count_all(&totals, Reason::RssiTooLow) >= 2, "{totals:?}");
    assert_eq!(last.sessions, 1);

    // The guest stopped: later reports carry no refusal.
    let quiet = w.next_status(&mut rx, 5).await;
    let quiet = if quiet.counters.is_empty() {
        quiet
    } else {
        w.next_status(&mut rx, 5).await
    };
    assert!(quiet.counters.is_empty(), "{quiet:?}");
    assert_eq!(count(&quiet, Reason::NoPendingAuth), 0);
    assert_eq!(lock.stats().events_lost, 0);
    assert!(lock.stats().statuses_published >= 3);
    lock.shutdown().await.unwrap();
}

fn count_all(totals: &BTreeMap<u16, u64>, reason: Reason) -> u64 {
    totals.get(&reason.code()).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn battery_mains_and_clock_files_are_reported() {
    let mut w = World::new("health").await;
    let dir = tempfile::tempdir().unwrap();
    let battery = dir.path().join("capacity");
    let mains = dir.path().join("online");
    std::fs::write(&battery, "87\n").unwrap();
    std::fs::write(&mains, "1\n").unwrap();
    let (_observer, mut rx) = w.observe_events("health").await;
    let mut opts = w.lock_options(None);
    opts.status.interval = INTERVAL;
    opts.status.battery_capacity_file = Some(battery.clone());
    opts.status.mains_online_file = Some(mains.clone());
    opts.status.clock_synced_file = Some(dir.path().join("synchronized"));
    let lock = w.start_lock(opts).await;

    let st = w.next_status(&mut rx, 5).await;
    assert_eq!(st.battery_pct, Some(87));
    assert_eq!(
        st.flags,
        StatusFlags::MAINS_POWER | StatusFlags::CLOCK_UNSYNCHRONISED
    );

    // Read at every report: the charge drops, mains goes away, the clock synchronises; an
    // unreadable charge is reported as unknown.
    std::fs::write(&battery, "12\n").unwrap();
    std::fs::write(&mains, "0\n").unwrap();
    std::fs::write(dir.path().join("synchronized"), "").unwrap();
    let st = next_with(&mut w, &mut rx, |st| st.battery_pct == Some(12)).await;
    assert_eq!(st.flags, StatusFlags::NONE);
    std::fs::remove_file(&battery).unwrap();
    next_with(&mut w, &mut rx, |st| st.battery_pct.is_none()).await;
    lock.shutdown().await.unwrap();
}

/// The next status satisfying `want`, within a few reports.
async fn next_with(
    w: &mut World,
    rx: &mut tokio::sync::mpsc::Receiver<latchkey_transport::mqtt::Incoming>,
    want: impl Fn(&LockStatus) -> bool,
) -> LockStatus {
    for _ in 0..4 {
        let st = w.next_status(rx, 5).await;
        if want(&st) {
            return st;
        }
    }
    panic!("no status with the expected figures in 4 reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_status_is_queued_while_mqtt_is_down_and_one_goes_out_at_the_reconnect() {
    let mut w = World::new("statusdown").await;
    let mut opts = w.lock_options(None);
    // Long enough that a report right after the reconnect can only be the reconnect's.
    opts.status.interval = Duration::from_secs(3);
    let lock = w.start_lock(opts).await;
    common::wait_stats(&lock, "the first status", |s| s.statuses_published == 1).await;
    let mut state = lock.mqtt_state();

    let broker = w.broker.take().unwrap();
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .unwrap();
    common::within(
        10,
        "the lock sees the broker go",
        state.wait_for(|s| *s != latchkey_transport::mqtt::ConnectionState::Connected),
    )
    .await
    .unwrap();
    let down = lock.stats().statuses_published;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        lock.stats().statuses_published,
        down,
        "a status was queued while down"
    );

    w.broker = Some(common::start_broker(w.addr).await);
    common::wait_connected(&mut state).await;
    let back = tokio::time::Instant::now();
    common::wait_stats(&lock, "a status at the reconnect", |s| {
        s.statuses_published == down + 1
    })
    .await;
    assert!(
        back.elapsed() < Duration::from_secs(1),
        "{:?}",
        back.elapsed()
    );
    lock.shutdown().await.unwrap();
}
