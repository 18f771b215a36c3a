//! The GATT half of an unlock at the lock (issue #6: "challenge build and response verify:
//! each ≤ 2× the cost of its MACs"):
//!
//! * `handshake/challenge_build`: `Lock::handle_select` — Select parse, pending lookup,
//!   nonce from the RNG, `lock_mac`, challenge record; baseline `handshake/lock_mac`.
//! * `handshake/response_verify`: `Lock::handle_response` — Response parse, challenge
//!   lookup, every check, `response_mac`, constant-time compare, unlock; baseline
//!   `handshake/response_mac` (the MAC and its comparison).
//!
//! Each timed batch is at most 256 operations on 256 connections (the lock's challenge cap
//! in the fixture); arming beacons, Selects and Responses are prepared untimed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latchkey::crypto::{MacContext, ct_eq, lock_mac, response_mac};
use latchkey::frame::{ChallengeView, Response, Select};
use latchkey::lock::ConnId;
use latchkey::{SessionId, Step};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

mod fixture;
use fixture::{Fixture, LOCK};

const BATCH: usize = 256;
const REPLAY: usize = 65_536;

/// Runs `iters` operations in batches of at most [`BATCH`]; `batch(n)` prepares `n`
/// operations untimed, times them, tidies up untimed, and returns the timed part.
fn in_batches(iters: u64, mut batch: impl FnMut(usize) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = BATCH.min(usize::try_from(left).unwrap_or(BATCH));
        total += batch(n);
        left -= n as u64;
    }
    total
}

/// Arms one authentication per guest `0..n` and returns their Selects.
fn arm(fx: &mut Fixture, n: usize) -> Vec<(ConnId, [u8; 11], u16)> {
    let step = fx.step();
    // Attempt numbers wrap after 65,536 per guest: forget the replays well before.
    if fx.lock.stats().replay + n > REPLAY / 2 {
        let all: Vec<usize> = (0..fx.guests.len()).collect();
        fx.forget_replays(&all);
    }
    (0..n)
        .map(|i| {
            let attempt = fx.guests[i].next_attempt;
            let b = fx.guests[i].next_beacon(step);
            fx.hear(&b).unwrap_or_else(|r| panic!("arming beacon: {r}"));
            let sel = Select {
                tag: fx.guests[i].tag,
                attempt,
            }
            .to_bytes();
            (ConnId(i as u64), sel, attempt)
        })
        .collect()
}

fn context(session_id: SessionId, challenge: &[u8], step: Step, attempt: u16) -> MacContext {
    let ch = ChallengeView::parse(challenge).unwrap_or_else(|r| panic!("challenge: {r}"));
    MacContext {
        lock_id: LOCK,
        session_id,
        nonce: ch.nonce(),
        lock_time: ch.lock_time(),
        step,
        attempt,
    }
}

fn handshake(c: &mut Criterion) {
    let mut fx = Fixture::new(BATCH, REPLAY).unwrap_or_else(|e| panic!("fixture: {e}"));
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let step = fx.step();
    let now = fx.now;
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));

    group.bench_function("challenge_build", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                let sels = arm(&mut fx, n);
                let t = Instant::now();
                for (conn, sel, _) in &sels {
                    let ch = fx.lock.handle_select(now, *conn, black_box(sel), &mut rng);
                    black_box(ch).unwrap_or_else(|r| panic!("select: {r}"));
                }
                let took = t.elapsed();
                for (conn, _, _) in &sels {
                    fx.lock.handle_disconnect(*conn);
                }
                took
            })
        })
    });

    group.bench_function("response_verify", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                let sels = arm(&mut fx, n);
                let responses: Vec<(ConnId, [u8; 20])> = sels
                    .iter()
                    .enumerate()
                    .map(|(i, (conn, sel, attempt))| {
                        let ch = fx
                            .lock
                            .handle_select(now, *conn, sel, &mut rng)
                            .unwrap_or_else(|r| panic!("select: {r}"))
                            .to_bytes();
                        let g = &fx.guests[i];
                        let ctx = context(g.session_id, &ch, step, *attempt);
                        let phone_time = now.secs_u32();
                        let r = Response {
                            phone_time,
                            step,
                            mac: response_mac(&g.resp, &ctx, phone_time),
                        };
                        (*conn, r.to_bytes())
                    })
                    .collect();
                let t = Instant::now();
                for (conn, r) in &responses {
                    let u = fx.lock.handle_response(now, *conn, black_box(r));
                    black_box(u).unwrap_or_else(|r| panic!("response: {r}"));
                }
                t.elapsed()
            })
        })
    });

    // The MACs alone, with the same key sizes and inputs.
    let ctx = MacContext {
        lock_id: LOCK,
        session_id: fx.guests[0].session_id,
        nonce: [0x11; 12],
        lock_time: now.secs_u32(),
        step,
        attempt: 3,
    };
    let k = fx.guests[0].resp;
    group.bench_function("lock_mac", |b| {
        b.iter(|| lock_mac(black_box(&k), black_box(&ctx)))
    });
    let expected = response_mac(&k, &ctx, 5);
    group.bench_function("response_mac", |b| {
        b.iter(|| ct_eq(&response_mac(black_box(&k), black_box(&ctx), 5), &expected))
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
