//! The lock's scan-verify hot path (issue #6 targets, `benches/README.md`):
//!
//! * `bare/*`: one AES-128-CMAC of the beacon's 15 bytes, key schedule precomputed, through
//!   the backend the lock uses (`short_cmac`), the `aes` crate alone (`short_cmac_aes_crate`)
//!   and the `cmac` crate (`cmac_crate`): the baselines the ratios divide by.
//! * `lock/valid_1_session`: a fresh valid beacon through `Lock::handle_beacon`, all checks,
//!   replay cache insert and pending-authentication record.
//! * `lock/valid_100k_sessions_full_replay`: the same phone's beacons in a lock holding
//!   100,000 sessions, its replay cache (default capacity, 4,096) kept between half full
//!   and full by another guest's beacons.
//! * `lock/crowd_64_of_100k_sessions_full_replay` and
//!   `lock/stress_100k_sessions_32k_active_1m_replay` (no targets): 64 and 32,768 phones
//!   at once, spread over the session table, so lookups miss the CPU caches the way a
//!   crowded lock's do; the stress case also has a 1,000,000-entry replay cache.
//! * `lock/bad_mac`, `lock/foreign_company`, `lock/unknown_tag`: rejections.
//! * `lock/revoked_session`, `lock/unknown_tag_with_tombstones` (no targets): the beacon of
//!   a revoked session, recognised by its tombstone (LK-REV-5), and an unknown tag in a lock
//!   that keeps one, which pays the tombstone lookup that a lock without tombstones skips.
//!
//! Valid beacons are never repeated (a repeat is a replay, a different path): each is built
//! outside the timed region with a new attempt number; when a session's attempt numbers run
//! out, its replay entries are forgotten through the `testkit` hook, also untimed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::Aes128;
use cmac::{Cmac, KeyInit, Mac};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use latchkey::crypto::ShortCmac;
use latchkey::frame::Beacon;
use latchkey::lock::BeaconOutcome;
use latchkey::{Reason, Step};

mod fixture;
use fixture::{COMPANY, Fixture, RSSI_NEAR, with_bad_mac, with_unknown_tag};

/// Beacons built per untimed batch.
const CHUNK: usize = 4_096;
/// The lock's default replay capacity (`REPLAY_CAPACITY`).
const REPLAY_DEFAULT: usize = 4_096;

/// Feeds fresh valid beacons from `working` guests, round robin.
struct ValidStream {
    fx: Fixture,
    working: Vec<usize>,
    cursor: usize,
    /// Replay entries a run may add before it forgets them (untimed).
    headroom: usize,
    added: usize,
    batch: Vec<[u8; 23]>,
}

impl ValidStream {
    fn new(fx: Fixture, working: Vec<usize>, headroom: usize) -> Self {
        Self {
            fx,
            working,
            cursor: 0,
            headroom,
            added: 0,
            batch: Vec::with_capacity(CHUNK),
        }
    }

    /// Forgets every replay entry the working set added, so it can change.
    fn forget_all(&mut self) {
        self.fx.forget_replays(&self.working);
        self.added = 0;
    }

    fn run(&mut self, iters: u64) -> Duration {
        let step: Step = self.fx.step();
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = CHUNK
                .min(self.headroom)
                .min(usize::try_from(left).unwrap_or(CHUNK));
            if self.added + n > self.headroom {
                self.fx.forget_replays(&self.working);
                self.added = 0;
            }
            self.batch.clear();
            for _ in 0..n {
                let g = self.working[self.cursor % self.working.len()];
                self.cursor += 1;
                self.batch.push(self.fx.guests[g].next_beacon(step));
            }
            let t = Instant::now();
            let mut armed = 0usize;
            for b in &self.batch {
                let out = self.fx.hear(black_box(b));
                armed += usize::from(matches!(out, Ok(BeaconOutcome::Armed { .. })));
            }
            total += t.elapsed();
            assert_eq!(armed, n, "every fresh valid beacon arms");
            self.added += n;
            left -= n as u64;
        }
        total
    }
}

fn fixture(sessions: usize, replay_capacity: usize) -> Fixture {
    Fixture::new(sessions, replay_capacity).unwrap_or_else(|e| panic!("fixture: {e}"))
}

fn bare(c: &mut Criterion) {
    let fx = fixture(1, 1024);
    let g = &fx.guests[0];
    let step = fx.step();
    let input = Beacon::mac_input(step, &g.tag, 7);
    let key = [0x2Bu8; 16];
    let short = ShortCmac::new(&key);
    let portable = ShortCmac::new_portable(&key);
    let keyed = <Cmac<Aes128> as KeyInit>::new_from_slice(&key).expect("16-byte key");

    let mut group = c.benchmark_group("bare");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("short_cmac", short.backend()), |b| {
        b.iter(|| short.mac_15(black_box(&input)))
    });
    // Each MAC's input depends on the previous MAC: the latency of one CMAC whose result
    // is needed before going on, as the lock needs it (the unchained form above lets the
    // CPU overlap consecutive AES calls, which measures throughput instead).
    group.bench_function(
        BenchmarkId::new("short_cmac_chained", short.backend()),
        |b| {
            let mut x = input;
            b.iter(|| {
                let m = short.mac_15(&x);
                x[..15].copy_from_slice(&m[..15]);
                m
            })
        },
    );
    group.bench_function("short_cmac_aes_crate", |b| {
        b.iter(|| portable.mac(black_box(&input)))
    });
    group.bench_function("cmac_crate", |b| {
        b.iter(|| {
            let mut m = keyed.clone();
            m.update(black_box(&input));
            m.finalize()
        })
    });
    group.finish();
}

fn lock(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock");
    group.throughput(Throughput::Elements(1));

    // One session, the default replay capacity, half of it the run's headroom.
    let headroom = REPLAY_DEFAULT / 2;
    let mut one = ValidStream::new(fixture(1, REPLAY_DEFAULT), vec![0], headroom);
    group.bench_function("valid_1_session", |b| b.iter_custom(|n| one.run(n)));

    let valid = one.fx.guests[0].beacon(one.fx.step(), u16::MAX);
    let bad = with_bad_mac(valid);
    let unknown = with_unknown_tag(valid);
    let fx = &mut one.fx;
    assert_eq!(fx.hear(&bad), Err(Reason::BadBeaconMac));
    group.bench_function("bad_mac", |b| b.iter(|| fx.hear(black_box(&bad))));
    assert_eq!(fx.hear(&unknown), Err(Reason::UnknownTag));
    group.bench_function("unknown_tag", |b| b.iter(|| fx.hear(black_box(&unknown))));
    let now = fx.now;
    assert_ne!(COMPANY, 0x004C);
    assert_eq!(
        fx.lock.handle_beacon(now, 0x004C, &valid, RSSI_NEAR),
        Err(Reason::ForeignCompany)
    );
    group.bench_function("foreign_company", |b| {
        b.iter(|| {
            fx.lock
                .handle_beacon(now, black_box(0x004C), black_box(&valid), RSSI_NEAR)
        })
    });

    // A revoked session's beacon and an unknown tag once a tombstone exists.
    let mut fx = fixture(2, REPLAY_DEFAULT);
    fx.revoke(1).unwrap_or_else(|e| panic!("revoke: {e}"));
    let revoked = fx.guests[1].beacon(fx.step(), 1);
    let unknown = with_unknown_tag(revoked);
    assert_eq!(fx.hear(&revoked), Err(Reason::SessionRevoked));
    assert_eq!(fx.hear(&unknown), Err(Reason::UnknownTag));
    group.bench_function("revoked_session", |b| {
        b.iter(|| fx.hear(black_box(&revoked)))
    });
    group.bench_function("unknown_tag_with_tombstones", |b| {
        b.iter(|| fx.hear(black_box(&unknown)))
    });

    // The scale target: the same phone's valid beacons, now in a lock holding 100,000
    // sessions with the default replay cache kept between half full and full.
    const SESSIONS: usize = 100_000;
    let mut fx = fixture(SESSIONS, REPLAY_DEFAULT);
    fill(&mut fx, REPLAY_DEFAULT - headroom, 1);
    let mut many = ValidStream::new(fx, vec![SESSIONS / 2], headroom);
    group.bench_function("valid_100k_sessions_full_replay", |b| {
        b.iter_custom(|n| many.run(n))
    });
    // No target: 64 phones at once (the default pending cap, a crowd at the door) spread
    // over the 100,000 sessions: their state no longer fits the L1 cache.
    many.forget_all();
    many.working = (0..64).map(|i| (i * 1_562) % SESSIONS).collect();
    group.bench_function("crowd_64_of_100k_sessions_full_replay", |b| {
        b.iter_custom(|n| many.run(n))
    });
    drop(many);

    // A stress figure, no target: 32,768 guests advertising at once over 100,000 sessions
    // and a 1,000,000-entry replay cache. Every lookup misses the CPU caches, so this is
    // bound by memory latency; it shows what a lock pays when the crowd outgrows them.
    const REPLAY_MAX: usize = 1_000_000;
    let mut fx = fixture(SESSIONS, REPLAY_MAX);
    fill(&mut fx, REPLAY_MAX - 65_536, 1);
    let working: Vec<usize> = (0..32_768).map(|i| (i * 3) % SESSIONS).collect();
    let mut crowd = ValidStream::new(fx, working, 65_536);
    group.bench_function("stress_100k_sessions_32k_active_1m_replay", |b| {
        b.iter_custom(|n| crowd.run(n))
    });
    let stats = crowd.fx.lock.stats();
    eprintln!(
        "stress fixture after the run: {} sessions, {} tags, {} replay entries, {} pending",
        stats.sessions, stats.tags, stats.replay, stats.pending
    );
    group.finish();
}

/// Fills the replay cache by `count` entries with beacons of guests `1, 4, 7, …` (outside
/// the working sets above), at most 65,536 attempts each.
fn fill(fx: &mut Fixture, count: usize, first: usize) {
    let mut left = count;
    let mut g = first;
    while left > 0 {
        let n = left.min(65_536);
        fx.fill_replay(g, n).unwrap_or_else(|e| panic!("fill: {e}"));
        left -= n;
        g += 3;
    }
    assert!(fx.lock.stats().replay >= count, "replay cache filled");
}

criterion_group!(benches, bare, lock);
criterion_main!(benches);
