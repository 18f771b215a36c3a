//! The beacon path never allocates, and the lock's memory for 100,000 sessions is bounded
//! (issue #6). A counting global allocator measures both; these are tests, not benchmarks,
//! because they assert exact properties rather than timings.
//!
//! The tests share the live-bytes counter, so they run one at a time (`SERIAL`).
//! Allocations are counted per thread: libtest's own threads allocate (to report a
//! finished test) while the next test is measuring.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use latchkey::Reason;
use latchkey::lock::BeaconOutcome;

#[path = "../benches/fixture/mod.rs"]
mod fixture;
use fixture::{Fixture, RSSI_NEAR, with_bad_mac, with_unknown_tag};

/// Counts allocations and live bytes, passing everything to the system allocator.
struct Counting;

thread_local! {
    /// Allocations made by this thread (const-initialised, no destructor: usable from
    /// inside the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

// SAFETY: every call is forwarded unchanged to `System`; the counters are atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocation() {
    // A thread being torn down has no counter left; it is not a measuring thread.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations made by the calling thread so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn live() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[test]
fn the_beacon_path_never_allocates() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 64 sessions with a replay cache the run fills to exactly its cap.
    const SESSIONS: usize = 64;
    const REPLAY: usize = 4_096;
    let mut fx = Fixture::new(SESSIONS, REPLAY).expect("fixture");
    let step = fx.step();
    // Every beacon built before counting starts.
    let valid: Vec<[u8; 23]> = (0..REPLAY)
        .map(|i| fx.guests[i % SESSIONS].next_beacon(step))
        .collect();
    let bad = with_bad_mac(fx.guests[0].beacon(step, u16::MAX));
    let unknown = with_unknown_tag(valid[0]);
    let mut outcomes = Vec::with_capacity(REPLAY + 8);

    // The counter sees this thread's allocations (else zero would prove nothing).
    let probe = allocations();
    drop(std::hint::black_box(Box::new(0u64)));
    assert_eq!(allocations(), probe + 1, "the counting allocator counts");

    let before = allocations();
    for b in &valid {
        outcomes.push(fx.hear(b));
    }
    // A replay of a pending beacon, a replay after it was replaced, and every rejection.
    outcomes.push(fx.hear(&valid[REPLAY - 1]));
    outcomes.push(fx.hear(&valid[0]));
    outcomes.push(fx.hear(&bad));
    outcomes.push(fx.hear(&unknown));
    outcomes.push(fx.lock.handle_beacon(fx.now, 0x004C, &valid[0], RSSI_NEAR));
    outcomes.push(fx.lock.handle_beacon(fx.now, 0xFFFF, &valid[0], -100));
    outcomes.push(
        fx.lock
            .handle_beacon(fx.now, 0xFFFF, &valid[0][..10], RSSI_NEAR),
    );
    let after = allocations();

    assert_eq!(
        after - before,
        0,
        "the beacon path allocated {} times",
        after - before
    );
    assert!(
        outcomes[..REPLAY]
            .iter()
            .all(|o| matches!(o, Ok(BeaconOutcome::Armed { .. }))),
        "every fresh beacon armed"
    );
    assert_eq!(
        fx.lock.stats().replay,
        REPLAY,
        "the replay cache is at its cap"
    );
    assert_eq!(
        &outcomes[REPLAY..],
        &[
            Ok(BeaconOutcome::AlreadyPending),
            Err(Reason::Replay),
            Err(Reason::BadBeaconMac),
            Err(Reason::UnknownTag),
            Err(Reason::ForeignCompany),
            Err(Reason::RssiTooLow),
            Err(Reason::Truncated),
        ]
    );
    // At the cap, a new beacon is refused, still without allocating.
    let one_more = fx.guests[1].next_beacon(step);
    let before = allocations();
    let refused = fx.hear(&one_more);
    assert_eq!(allocations() - before, 0);
    assert_eq!(refused, Err(Reason::ReplayCacheFull));
}

/// LK-REV-5 adds a lookup on the miss path: it allocates nothing either, and valid beacons
/// of the other sessions still arm.
#[test]
fn the_revoked_and_unknown_beacon_paths_never_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut fx = Fixture::new(4, 64).expect("fixture");
    fx.revoke(1).expect("revoked");
    let step = fx.step();
    let revoked = fx.guests[1].beacon(step, 7);
    let unknown = with_unknown_tag(revoked);
    let valid = fx.guests[2].next_beacon(step);
    let before = allocations();
    let outcomes = [
        fx.hear(&revoked),
        fx.hear(&with_bad_mac(revoked)),
        fx.lock.handle_beacon(fx.now, 0xFFFF, &revoked, -100),
        fx.hear(&unknown),
    ];
    let armed = fx.hear(&valid);
    let ids = fx.lock.revoked_beacon_ids(&revoked);
    assert_eq!(allocations() - before, 0);
    assert!(
        matches!(armed, Ok(BeaconOutcome::Armed { .. })),
        "{armed:?}"
    );
    assert_eq!(
        outcomes,
        [
            Err(Reason::SessionRevoked),
            Err(Reason::BadBeaconMac),
            Err(Reason::RssiTooLow),
            Err(Reason::UnknownTag),
        ]
    );
    assert_eq!(
        ids.map(|(g, s, _)| (g, s)),
        Some((fx.guests[1].grant_id, fx.guests[1].session_id))
    );
}

#[test]
fn a_lock_with_100k_sessions_and_a_full_replay_cache_fits_in_64_mib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SESSIONS: usize = 100_000;
    const REPLAY: usize = 4_096; // the default replay capacity
    const REPLAY_BIG: usize = 1_000_000; // its maximum, to price one entry
    const MIB: f64 = (1 << 20) as f64;

    // Tables are sized to their caps at construction, so each figure is a lock's whole
    // footprint for its configuration. The fixture's guest-side vector is subtracted.
    // The lock's default caps except sessions and replay capacity (the fixture's benches
    // raise the pending and challenge caps; a deployment sized for 100,000 guests need not).
    let config = |sessions: usize, replay: usize| {
        let mut cfg = fixture::lock_config(sessions, replay).expect("config");
        cfg.max_pending = latchkey::constants::MAX_PENDING.default;
        cfg.max_challenges = latchkey::constants::MAX_CHALLENGES.default;
        cfg
    };
    let lock_bytes = |sessions: usize, replay: usize, fill: usize| -> usize {
        let base = live();
        let mut fx = Fixture::with_config(config(sessions, replay), sessions).expect("fixture");
        if fill > 0 {
            fx.fill_replay(0, fill).expect("fill the replay cache");
            assert_eq!(fx.lock.stats().replay, fill);
        }
        assert_eq!(fx.lock.stats().sessions, sessions);
        let guest_side = fx.guests.capacity() * std::mem::size_of::<fixture::GuestSide>();
        live() - base - guest_side
    };
    let one = lock_bytes(1, REPLAY, 0);
    let full = lock_bytes(SESSIONS, REPLAY, REPLAY);
    let per_session = (full - one) as f64 / (SESSIONS - 1) as f64;
    let big_replay = lock_bytes(1, REPLAY_BIG, 0);
    let per_replay_entry = (big_replay - one) as f64 / (REPLAY_BIG - REPLAY) as f64;

    eprintln!(
        "lock memory: {SESSIONS} sessions with a full replay cache ({REPLAY} entries): \
         {:.1} MiB; {per_session:.0} B per session (slot, ids, keys, expanded CMAC key, \
         3 tags in the index, expiry); {per_replay_entry:.1} B per replay entry \
         (preallocated; measured from a {REPLAY_BIG}-entry cache)",
        full as f64 / MIB,
    );
    assert!(
        (full as f64) <= 64.0 * MIB,
        "the lock's state is {:.1} MiB, over the 64 MiB bound",
        full as f64 / MIB
    );
    // Every table is preallocated: filling the replay cache and installing sessions grow
    // nothing beyond the construction-time figure.
    let empty_100k = lock_bytes(SESSIONS, REPLAY, 0);
    let empty_lock = {
        let base = live();
        let lock = latchkey::Lock::new(config(SESSIONS, REPLAY)).expect("lock");
        let bytes = live() - base;
        drop(lock);
        bytes
    };
    assert!(
        empty_100k <= empty_lock + empty_lock / 20,
        "installing {SESSIONS} sessions grew the lock from {empty_lock} to {empty_100k} bytes"
    );
}
