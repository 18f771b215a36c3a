//! Model checking (stateright) of the real reference machines against a network and radio
//! attacker. The model is in `model_check/model.rs`, the replay of the real roles in
//! `model_check/roles.rs`; `docs/model-checking.md` explains both and records the numbers.
//!
//! CI runs the bounded checks (`cargo test -p latchkey --test model_check`). The deep checks
//! are ignored by default; run them one at a time (each uses every core, ~6 GB at most):
//!
//! ```sh
//! cargo test -p latchkey --release --test model_check -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `LATCHKEY_MODEL_DEPTH=n` overrides the depth bound of the safety and liveness checks run
//! (not of the mutant checks).

mod common;
#[path = "model_check/model.rs"]
mod model;
#[path = "model_check/roles.rs"]
mod roles;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use model::*;
use roles::{Mutant, REPLAYS};
use stateright::{Checker, Expectation, HasDiscoveries, Model};

/// What one run found.
struct Run {
    discoveries: HashMap<&'static str, stateright::Path<State, Action>>,
}

impl Run {
    fn found(&self, name: &str) -> bool {
        self.discoveries.contains_key(name)
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn depth_override(default: usize) -> usize {
    std::env::var("LATCHKEY_MODEL_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a bounded BFS and prints states explored, unique states, max depth and time.
fn check(name: &str, cfg: Config, depth: usize, finish: Option<HasDiscoveries>) -> Run {
    let model = LatchkeyModel { cfg };
    let replays = REPLAYS.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut b = model.checker().threads(threads()).target_max_depth(depth);
    if let Some(f) = finish {
        b = b.finish_when(f);
    }
    if std::env::var("MC_DFS").is_ok_and(|v| v == "1") {
        let c = b.spawn_dfs().join();
        return report(name, depth, start, replays, &c);
    }
    let c = b.spawn_bfs().join();
    report(name, depth, start, replays, &c)
}

fn report(
    name: &str,
    depth: usize,
    start: Instant,
    replays: usize,
    c: &impl Checker<LatchkeyModel>,
) -> Run {
    let elapsed = start.elapsed();
    println!(
        "[{name}] depth bound {depth}: {} states explored, {} unique, max depth {}, {:.1?} \
         ({} threads, {} role replays)",
        c.state_count(),
        c.unique_state_count(),
        c.max_depth(),
        elapsed,
        threads(),
        REPLAYS.load(Ordering::Relaxed) - replays,
    );
    if std::env::var_os("LATCHKEY_MODEL_TABLES").is_some() {
        println!(
            "  memo/log table sizes (issuer, lock, guest): {:?}",
            roles::table_sizes()
        );
        println!("  size of State: {} bytes", std::mem::size_of::<State>());
    }
    let discoveries = c.discoveries();
    for p in c.model().properties() {
        let verdict = match (&p.expectation, discoveries.contains_key(p.name)) {
            (Expectation::Sometimes, true) => "reached",
            (Expectation::Sometimes, false) => "NOT reached",
            (_, false) => "holds",
            (_, true) => "VIOLATED",
        };
        println!("  {verdict:>11}  {}", p.name);
    }
    for p in c.model().properties() {
        if p.expectation == Expectation::Sometimes || !discoveries.contains_key(p.name) {
            continue;
        }
        // stateright keeps the last violating state it met; print a shortest one instead.
        let bad = |s: &State| match p.expectation {
            Expectation::Always => !(p.condition)(c.model(), s),
            // A terminal (post-GST) state where the condition never held: the condition is
            // monotone along a path (`unlocks` only grows), so checking the last state suffices.
            _ => s.stable && !(p.condition)(c.model(), s),
        };
        match shortest(c.model(), bad, depth) {
            Some(t) => println!("  counterexample for \"{}\" (shortest):\n{t}", p.name),
            None => println!(
                "  counterexample for \"{}\":\n{:?}",
                p.name, discoveries[p.name]
            ),
        }
    }
    Run { discoveries }
}

/// A shortest path (single-threaded BFS over the same model) to a state where `bad` holds.
fn shortest(m: &LatchkeyModel, bad: impl Fn(&State) -> bool, depth: usize) -> Option<String> {
    let mut seen: HashMap<State, Option<(State, Action)>> = HashMap::new();
    let mut frontier = Vec::new();
    for s in m.init_states() {
        seen.insert(s.clone(), None);
        frontier.push(s);
    }
    for _ in 0..depth {
        let mut next = Vec::new();
        for s in frontier {
            if bad(&s) {
                return Some(trace(&seen, s));
            }
            let mut actions = Vec::new();
            m.actions(&s, &mut actions);
            for a in actions {
                if let Some(n) = m.next_state(&s, a)
                    && !seen.contains_key(&n)
                {
                    seen.insert(n.clone(), Some((s.clone(), a)));
                    next.push(n);
                }
            }
        }
        frontier = next;
    }
    None
}

fn trace(seen: &HashMap<State, Option<(State, Action)>>, last: State) -> String {
    let mut steps = Vec::new();
    let mut s = last.clone();
    while let Some(Some((prev, a))) = seen.get(&s) {
        steps.push((*a, s.clone()));
        s = prev.clone();
    }
    steps.reverse();
    let mut out = format!(
        "    clocks: lock {:+} ms, guest {:+} ms (from the issuer's)\n",
        s.clocks.lock_ms, s.clocks.guest_ms
    );
    for (a, s) in &steps {
        out.push_str(&format!("    {:<40} -> t=+{} ms\n", format!("{a:?}"), s.t));
    }
    out.push_str(&format!(
        "    final: unlocks={:?}\n           issued={:?}\n           lock_revoked={:?} \
         issuer_revoked={:?} excused={} stable={}\n",
        last.unlocks,
        last.issued
            .iter()
            .map(|g| (g.grant_id, g.request_id, g.not_after))
            .collect::<Vec<_>>(),
        last.lock_revoked,
        last.issuer_revoked,
        last.excused,
        last.stable
    ));
    out
}

/// Every `always`/`eventually` property holds, and each of `reached` was reached.
fn assert_safe_and_reached(
    run: &Run,
    cfg_props: &[(&'static str, Expectation)],
    reached: &[&'static str],
) {
    for (name, exp) in cfg_props {
        if *exp != Expectation::Sometimes {
            assert!(!run.found(name), "property violated: {name}");
        }
    }
    for name in reached {
        assert!(run.found(name), "never reached: {name}");
    }
}

fn props(cfg: &Config) -> Vec<(&'static str, Expectation)> {
    LatchkeyModel { cfg: cfg.clone() }
        .properties()
        .into_iter()
        .map(|p| (p.name, p.expectation))
        .collect()
}

const S: u64 = 1000;

/// Clock offsets (lock, guest) from the issuer, all within the spec's bounds.
fn clocks(all: bool) -> Vec<Clocks> {
    let c = |lock_ms, guest_ms| Clocks { lock_ms, guest_ms };
    if all {
        vec![
            c(0, 0),
            c(0, 30 * S as i64),
            c(0, -30 * S as i64),
            c(30 * S as i64, 0),
            c(-30 * S as i64, 0),
        ]
    } else {
        vec![c(0, 0), c(0, 30 * S as i64)]
    }
}

/// Time steps: +0.2 s (within every budget), +2.5 s (crosses the 2 s response budget; four
/// cross the 10 s connection window), +30 s (a step boundary), +1 h (the grant's not_after).
fn ticks(deep: bool) -> Vec<u64> {
    if deep {
        vec![200, 2_500, 30 * S, 3_600 * S]
    } else {
        vec![2_500, 30 * S, 3_600 * S]
    }
}

/// MQTT scenario: the guest's request was published and answered; the LockGrant and the
/// GuestGrant are in flight. The attacker owns the broker (delivers anything it saw, any
/// number of times, in any order, or never), the issuer may revoke, time may jump, and the
/// guest makes one attempt (the attacker replays beacons and responses and serves stale
/// challenges, but has no GATT connection of its own).
pub fn mqtt_config(deep: bool) -> Config {
    Config {
        clocks: clocks(deep),
        ticks: ticks(deep),
        max_ticks: 2,
        max_requests: if deep { 2 } else { 1 },
        max_revocations: 1,
        max_attempts: 1,
        validity_s: 3_600,
        opening: vec![Action::GuestRequests, Action::Deliver(0)],
        attacker_gatt: false,
        drops: false,
        stabilize: false,
        mutant: Mutant::None,
    }
}

/// Radio scenario: the grant is installed at the lock and held by the guest. The attacker
/// hears every advertisement and GATT value, replays beacons, has its own connection to the
/// lock (Selects any beacon it heard, relays challenges and responses), serves old
/// challenges to the guest, writes old responses; the issuer may revoke; time may jump.
/// The grant is valid for 30 s and the lock runs 0.1 s behind the issuer, so +30 s then
/// +0.2 s crosses not_after between a challenge and its response, inside the budget.
pub fn radio_config(deep: bool) -> Config {
    let c = |lock_ms, guest_ms| Clocks { lock_ms, guest_ms };
    Config {
        clocks: if deep {
            vec![c(-100, -100), c(-100, 29_900), c(-100, -30_100), c(0, 0)]
        } else {
            vec![c(-100, -100), c(-100, 29_900)]
        },
        ticks: vec![200, 2_500, 30 * S],
        opening: vec![
            Action::GuestRequests,
            Action::Deliver(0),
            Action::Deliver(1),
            Action::Deliver(2),
        ],
        validity_s: 30,
        attacker_gatt: true,
        max_requests: 1,
        max_attempts: 2,
        max_ticks: if deep { 3 } else { 2 },
        ..mqtt_config(deep)
    }
}

/// The liveness model: the radio and MQTT attacker (no drops) until GST, then a fair network.
pub fn fair_config(deep: bool) -> Config {
    Config {
        stabilize: true,
        attacker_gatt: true,
        max_attempts: 2,
        max_ticks: if deep { 2 } else { 1 },
        ..mqtt_config(deep)
    }
}

const CI_MQTT_DEPTH: usize = 9;
const CI_RADIO_DEPTH: usize = 8;
const CI_FAIR_DEPTH: usize = 7;
const DEEP_MQTT_DEPTH: usize = 10;
const DEEP_RADIO_DEPTH: usize = 10;
const DEEP_FAIR_DEPTH: usize = 9;

fn safety(name: &str, cfg: Config, depth: usize, reached: &[&'static str]) {
    let expected = props(&cfg);
    let run = check(name, cfg, depth_override(depth), None);
    assert_safe_and_reached(&run, &expected, reached);
}

/// Witnesses the MQTT scenario must reach: an unlock, and each MQTT-side attack refused.
const MQTT_REACHED: &[&str] = &[
    P_UNLOCK,
    P_SEEN_REQUEST_REPLAY,
    P_SEEN_REVOKED,
    P_SEEN_EXPIRED,
];

/// Witnesses the radio scenario must reach: an unlock, a relayed unlock, and each
/// radio-side attack refused.
const RADIO_REACHED: &[&str] = &[
    P_UNLOCK,
    P_RELAY,
    P_SEEN_REVOKED,
    P_SEEN_RESPONSE_REPLAY,
    P_SEEN_GUEST_REFUSES,
    P_SEEN_EXPIRED,
    P_SEEN_BEACON_REPLAY,
];

#[test]
fn model_check_ci_mqtt() {
    safety("ci mqtt", mqtt_config(false), CI_MQTT_DEPTH, MQTT_REACHED);
}

#[test]
fn model_check_ci_radio() {
    safety(
        "ci radio",
        radio_config(false),
        CI_RADIO_DEPTH,
        RADIO_REACHED,
    );
}

#[test]
fn model_check_ci_liveness_with_fair_network() {
    let cfg = fair_config(false);
    let run = check(
        "ci liveness (fair)",
        cfg,
        depth_override(CI_FAIR_DEPTH),
        None,
    );
    assert!(!run.found(P_LIVENESS), "liveness violated");
    assert!(run.found(P_GST_UNLOCK), "no post-GST unlock: vacuous");
    for p in [
        P_LIVE_GRANT,
        P_ONCE,
        P_REVOKED,
        P_EXPIRED,
        P_REQUEST_REPLAY,
        P_GUEST_LOCK,
    ] {
        assert!(!run.found(p), "property violated: {p}");
    }
}

#[test]
fn model_check_liveness_fails_when_the_network_drops() {
    let cfg = Config {
        drops: true,
        ..fair_config(false)
    };
    let run = check(
        "unrestricted network (drops): liveness",
        cfg,
        CI_FAIR_DEPTH,
        Some(HasDiscoveries::AnyOf(BTreeSet::from([P_LIVENESS]))),
    );
    assert!(run.found(P_LIVENESS), "expected a liveness counterexample");
}

fn mutant(m: Mutant, cfg: Config, property: &'static str) {
    let cfg = Config { mutant: m, ..cfg };
    let run = check(
        &format!("mutant {m:?}"),
        cfg,
        CI_MQTT_DEPTH,
        Some(HasDiscoveries::AnyOf(BTreeSet::from([property]))),
    );
    assert!(
        run.found(property),
        "{m:?}: no counterexample for {property}"
    );
}

#[test]
fn model_check_mutant_lock_replays_response() {
    mutant(Mutant::LockReplaysResponse, radio_config(false), P_ONCE);
}

#[test]
fn model_check_mutant_lock_ignores_revocation() {
    mutant(
        Mutant::LockIgnoresRevocation,
        radio_config(false),
        P_REVOKED,
    );
}

#[test]
fn model_check_mutant_issuer_forgets_requests() {
    mutant(
        Mutant::IssuerForgetsRequests,
        mqtt_config(false),
        P_REQUEST_REPLAY,
    );
}

#[test]
#[ignore = "deep check: cargo test -p latchkey --release --test model_check -- --ignored"]
fn model_check_deep_mqtt() {
    let mut reached = MQTT_REACHED.to_vec();
    reached.extend([P_SEEN_BEACON_REPLAY, P_SEEN_RESPONSE_REPLAY]);
    safety("deep mqtt", mqtt_config(true), DEEP_MQTT_DEPTH, &reached);
}

#[test]
#[ignore = "deep check: cargo test -p latchkey --release --test model_check -- --ignored"]
fn model_check_deep_radio() {
    safety(
        "deep radio",
        radio_config(true),
        DEEP_RADIO_DEPTH,
        RADIO_REACHED,
    );
}

#[test]
#[ignore = "deep check: cargo test -p latchkey --release --test model_check -- --ignored"]
fn model_check_deep_liveness_with_fair_network() {
    let run = check(
        "deep liveness (fair)",
        fair_config(true),
        depth_override(DEEP_FAIR_DEPTH),
        None,
    );
    assert!(!run.found(P_LIVENESS), "liveness violated");
    assert!(run.found(P_GST_UNLOCK), "no post-GST unlock: vacuous");
}
