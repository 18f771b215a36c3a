//! Seed corpus generator: `cargo run --release --features seedgen --bin seedgen [-- DIR]`
//! (from `fuzz/`; DIR defaults to `fuzz/corpus`). Writes, one file per seed:
//!
//! * parser targets: every frame of `vectors/frames.json` (valid and malformed) and every
//!   frame a scenario of `vectors/{lock,guest,issuer}.json` feeds or expects, by kind;
//! * `message_type`: every MQTT message among those;
//! * `shim_json`: each request of `vectors/shim-transcript.jsonl`, the whole transcript as
//!   one multi-line input, a `decode` request per frame case, and each scenario as
//!   `create` + `input` lines (keys expanded);
//! * `lock_sm`, `guest_sm`, `issuer_sm`: action sequences that reach deep states (an unlock,
//!   a revocation during a challenge, replays, caps), encoded in `arbitrary`'s byte format.
//!   Each seed is decoded back and run, and the generator fails if it does not decode to
//!   what was encoded or does not reach what it is for.
//!
//! The seeds are then minimised with `cargo fuzz cmin -s none <target>` (`fuzz/update-corpus`
//! does all of it; see README.md). `seedgen decode lock_sm FILE` prints the actions a
//! state-machine input (a crash artifact, say) decodes to.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use latchkey::frame::MessageType;
use latchkey_fuzz::common::{Delta, Mutation};
use latchkey_fuzz::{guest_sm, issuer_sm, lock_sm};
use latchkey_harness::model::CaseBody;
use latchkey_harness::vectors;
use serde_json::{Value, json};

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Out {
    dir: PathBuf,
    written: BTreeSet<(String, u64)>,
}

impl Out {
    fn put(&mut self, target: &str, bytes: &[u8]) {
        let h = fnv(bytes);
        if !self.written.insert((target.to_string(), h)) {
            return;
        }
        let d = self.dir.join(target);
        fs::create_dir_all(&d).expect("create corpus dir");
        fs::write(d.join(format!("seed-{h:016x}")), bytes).expect("write seed");
    }

    /// A frame, by kind name; MQTT messages also go to `message_type`.
    fn frame(&mut self, kind: &str, bytes: &[u8]) {
        self.put(kind, bytes);
        if matches!(
            kind,
            "lock_grant"
                | "revocation"
                | "guest_grant"
                | "grant_request"
                | "lock_event"
                | "lock_status"
        ) {
            self.put("message_type", bytes);
        }
    }
}

fn hexv(v: &Value) -> Option<Vec<u8>> {
    hex::decode(v.as_str()?).ok()
}

fn mqtt_kind(b: &[u8]) -> Option<&'static str> {
    Some(match MessageType::of(b).ok()? {
        MessageType::LockGrant => "lock_grant",
        MessageType::Revocation => "revocation",
        MessageType::GuestGrant => "guest_grant",
        MessageType::GrantRequest => "grant_request",
        MessageType::LockEvent => "lock_event",
        MessageType::LockStatus => "lock_status",
    })
}

fn from_vectors(out: &mut Out, dir: &Path) {
    let files = vectors::load_all(dir).expect("vectors load");
    // shim_json takes a few of each kind: it is the slowest target and its seeds are large.
    let mut shim_quota: std::collections::BTreeMap<String, usize> = Default::default();
    let mut shim_take = |kind: String, n: usize| {
        let c = shim_quota.entry(kind).or_default();
        *c += 1;
        *c <= n
    };
    for file in &files {
        for case in &file.cases {
            match &case.body {
                CaseBody::Frame { frame, bytes, .. } => {
                    if let Ok(b) = hex::decode(bytes) {
                        out.frame(frame, &b);
                        if shim_take(format!("decode {frame} {:?}", case.result), 1) {
                            let req = json!({"op": "decode", "frame": frame, "bytes": bytes});
                            out.put("shim_json", req.to_string().as_bytes());
                        }
                    }
                }
                CaseBody::Scenario { config, steps } => {
                    for s in steps {
                        let ty = s.input["type"].as_str().unwrap_or_default();
                        if let Some(p) = hexv(&s.input["payload"]) {
                            let kind = match (case.role.as_str(), ty) {
                                ("lock", "beacon") => Some("beacon"),
                                ("lock", "select") => Some("select"),
                                ("lock", "response") => Some("response"),
                                ("guest", "grant") => Some("guest_grant"),
                                ("guest", "challenge") => Some("challenge"),
                                ("issuer", "request") => Some("grant_request"),
                                ("issuer", "lock_message" | "event") => mqtt_kind(&p),
                                _ => mqtt_kind(&p),
                            };
                            if let Some(k) = kind {
                                out.frame(k, &p);
                            }
                        }
                        let e = &s.expect;
                        let produced = match e["outcome"].as_str().unwrap_or_default() {
                            "challenge" => Some("challenge"),
                            "request" => Some("grant_request"),
                            "beacon" => Some("beacon"),
                            "select" => Some("select"),
                            "response" => Some("response"),
                            "revocation" => Some("revocation"),
                            _ => None,
                        };
                        if let (Some(k), Some(b)) = (produced, hexv(&e["bytes"])) {
                            out.frame(k, &b);
                        }
                        for (k, f) in [("lock_grant", "lock_grant"), ("guest_grant", "guest_grant")]
                        {
                            if let Some(b) = hexv(&e[k]) {
                                out.frame(f, &b);
                            }
                        }
                    }
                    // The scenario as shim lines (skipping steps that refer to earlier outputs).
                    if !shim_take(format!("scenario {}", case.role), 2) {
                        continue;
                    }
                    let Ok(cfg) = vectors::expand_keys(config, &file.keys) else {
                        continue;
                    };
                    let mut lines =
                        vec![json!({"op": "create", "role": case.role, "config": cfg}).to_string()];
                    for s in steps.iter().take(8) {
                        if s.input.get("grant_id_from_step").is_some() {
                            continue;
                        }
                        lines.push(json!({"op": "input", "t": s.t, "input": s.input}).to_string());
                    }
                    out.put("shim_json", lines.join("\n").as_bytes());
                }
                CaseBody::Primitive {
                    primitive, input, ..
                } => {
                    if !shim_take(format!("primitive {primitive}"), 1) {
                        continue;
                    }
                    let Ok(input) = vectors::expand_keys(input, &file.keys) else {
                        continue;
                    };
                    let req = json!({"op": "primitive", "name": primitive, "input": input});
                    out.put("shim_json", req.to_string().as_bytes());
                }
            }
        }
    }
    let transcript = fs::read_to_string(dir.join("shim-transcript.jsonl")).expect("transcript");
    let reqs: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .collect();
    for r in &reqs {
        out.put("shim_json", r.as_bytes());
    }
    out.put("shim_json", reqs.join("\n").as_bytes());
}

// ---------------------------------------------------------------- state-machine seeds

fn lock_seeds(out: &mut Out) {
    use lock_sm::{Action as A, How, Setup};
    let setup = |budget: u8| Setup {
        seed: 1,
        max_sessions: 1,
        max_pending: 1,
        max_challenges: 1,
        budget,
        window: 1,
        skew: 1,
        rssi: 0,
        lockout: 0,
    };
    // Lockout after one failed handshake, for 10 s (LK-LCK-1..3).
    let lockout_setup = Setup {
        lockout: 1,
        ..setup(1)
    };
    let grant = |which: u8| A::Grant {
        which,
        via_message: true,
        mutation: Mutation::None,
    };
    let revoke = |which: u8| A::Revoke {
        which,
        via_message: true,
        mutation: Mutation::None,
    };
    let beacon = |session: u8, attempt: u8| A::Beacon {
        session,
        step: 2,
        attempt,
        rssi: -50,
        foreign: false,
        mutation: Mutation::None,
    };
    let select = |conn: u8, session: u8, attempt: u8| A::Select {
        conn,
        session,
        step: 2,
        attempt,
        mutation: Mutation::None,
    };
    let respond = |conn: u8, how: How| A::Respond {
        conn,
        how,
        skew: 0,
        mutation: Mutation::None,
    };
    let unlock = vec![
        grant(0),
        beacon(0, 7),
        A::Advance(Delta::Ms(150)),
        select(1, 0, 7),
        A::Advance(Delta::Ms(60)),
        respond(1, How::Correct),
    ];
    let mut seeds: Vec<(Setup, Vec<A>, &str)> = vec![(setup(1), unlock.clone(), "unlock")];
    // Unlock, then the same beacon, Select and response again (replays), then a bad MAC.
    let mut replay = unlock.clone();
    replay.extend([
        beacon(0, 7),
        select(1, 0, 7),
        respond(1, How::Replay),
        beacon(0, 8),
        select(2, 0, 8),
        A::Respond {
            conn: 2,
            how: How::Correct,
            skew: 0,
            mutation: Mutation::FlipBit(100),
        },
    ]);
    seeds.push((setup(1), replay, "unlock"));
    // Revocation while a challenge is outstanding, then the response.
    seeds.push((
        setup(2),
        vec![
            grant(1),
            beacon(1, 1),
            select(0, 1, 1),
            revoke(1),
            respond(0, How::Correct),
            grant(1),
        ],
        "revoked",
    ));
    // Time passes across steps and backwards; the session expires; timers run.
    seeds.push((
        setup(0),
        vec![
            grant(2),
            beacon(2, 1),
            A::Advance(Delta::Steps(2)),
            A::Advance(Delta::BackSteps(1)),
            beacon(2, 2),
            A::TimeoutAtPoll,
            A::Advance(Delta::Minutes(2)),
            A::Timeout,
            beacon(2, 3),
            A::Advance(Delta::Extreme(3)),
            A::Timeout,
        ],
        "armed",
    ));
    // Sixteen revocations fill the list; grant 0 is revoked and evicted first.
    let mut revs = vec![revoke(31)];
    revs.extend((7..23).map(revoke));
    revs.extend([grant(0), grant(4), grant(5)]);
    seeds.push((setup(1), revs, "revoked"));
    // Many attempts of one session: the replay cache and the pending cap fill.
    let mut many = vec![grant(0)];
    many.extend((0..20).map(|a| beacon(0, a)));
    many.extend([select(0, 0, 19), select(1, 0, 18), A::Disconnect(0)]);
    seeds.push((setup(0), many, "armed"));
    // The refused grants.
    seeds.push((setup(0), (7..14).map(grant).collect(), "refused"));
    // A failed handshake locks the guest out: its beacons are refused, then the lockout
    // ends at its timer and the guest unlocks (LK-LCK-1..3).
    let mut lockout = unlock.clone();
    lockout.extend([
        beacon(0, 8),
        select(1, 0, 8),
        respond(1, How::WrongStep),
        beacon(0, 9),
        A::Advance(Delta::Ms(9_000)),
        A::TimeoutAtPoll,
        A::TimeoutAtPoll,
        beacon(0, 10),
        select(1, 0, 10),
        respond(1, How::Correct),
    ]);
    seeds.push((lockout_setup, lockout, "lockout"));
    // Grant 1 may unlock once: after its unlock, its beacons are refused (LK-LIM-2).
    seeds.push((
        setup(1),
        vec![
            grant(1),
            beacon(1, 1),
            select(0, 1, 1),
            respond(0, How::Correct),
            A::RestoreCount {
                session: 1,
                count: 1,
            },
            beacon(1, 2),
        ],
        "limited",
    ));
    // A revoked session's beacon is recognised by its tombstone (LK-REV-5); a status report.
    seeds.push((
        setup(1),
        vec![
            grant(0),
            beacon(0, 1),
            revoke(0),
            beacon(0, 2),
            A::Advance(Delta::Steps(1)),
            beacon(0, 3),
            A::Status {
                uptime: 100,
                battery: 80,
                flags: 5,
                counters: [(3, 10), (9, 1), (3, 2)],
                all_reasons: true,
            },
        ],
        "tombstoned",
    ));
    for (s, actions, goal) in seeds {
        let bytes = lock_sm::encode(&s, &actions);
        let (s2, a2) = lock_sm::decode(&bytes).expect("decodes");
        assert_eq!(
            (&s2, &a2),
            (&s, &actions),
            "lock_sm seed does not round-trip"
        );
        let sum = lock_sm::run(&bytes);
        let reached = match goal {
            "unlock" => sum.unlocks > 0,
            "revoked" => sum.revoked > 0,
            "armed" => sum.armed > 0,
            "lockout" => sum.lockouts > 0 && sum.unlocks > 1,
            "limited" => sum.limited > 0,
            "tombstoned" => sum.tombstoned > 1 && sum.statuses > 0,
            _ => sum.refusals > 0,
        };
        assert!(reached, "lock_sm seed for {goal} reached only {sum:?}");
        out.put("lock_sm", &bytes);
    }
}

/// Inputs that reproduce findings: written to `regressions/lock_sm/`, not to the corpus
/// (`run-all` replays them; the finding is fixed, so they must pass).
fn lock_regressions(dir: &Path) {
    use lock_sm::{Action as A, How, Setup};
    let setup = Setup {
        seed: 1,
        max_sessions: 0,
        max_pending: 0,
        max_challenges: 0,
        budget: 2,
        window: 1,
        skew: 1,
        rssi: 0,
        lockout: 0,
    };
    let grant = A::Grant {
        which: 0,
        via_message: true,
        mutation: Mutation::None,
    };
    let revoke = |which: u8| A::Revoke {
        which,
        via_message: true,
        mutation: Mutation::None,
    };
    // The lock's clock runs 5 s behind the issuer's. Grant 0 (issued at T0) installs; its
    // beacon arms; a Select gets a challenge. Grant 0 is revoked (revocation issued at
    // T0 + 1), sixteen more revocations evict that entry (floor = min(T0 + 1, now_s) =
    // T0 − 5, below the grant), grant 0 is delivered again (MQTT redelivery) and installs
    // in the same slot, and the response to the challenge issued before the revocation
    // unlocks. LK-REV-3: such a challenge "can never unlock".
    let mut actions = vec![
        A::Advance(Delta::BackMs(5_000)),
        grant.clone(),
        A::Beacon {
            session: 0,
            step: 2,
            attempt: 7,
            rssi: -50,
            foreign: false,
            mutation: Mutation::None,
        },
        A::Select {
            conn: 0,
            session: 0,
            step: 2,
            attempt: 7,
            mutation: Mutation::None,
        },
        revoke(0),
    ];
    actions.extend((15..31).map(revoke));
    actions.push(grant);
    actions.push(A::Respond {
        conn: 0,
        how: How::Correct,
        skew: 0,
        mutation: Mutation::None,
    });
    let bytes = lock_sm::encode(&setup, &actions);
    assert_eq!(lock_sm::decode(&bytes), Some((setup, actions)));
    let sum = lock_sm::run(&bytes);
    assert_eq!(sum.unlocks, 0, "the regression unlocks again: {sum:?}");
    let d = dir.join("lock_sm");
    fs::create_dir_all(&d).expect("create regressions dir");
    fs::write(
        d.join("challenge-survives-revocation-eviction-reinstall"),
        bytes,
    )
    .expect("write regression");
}

fn guest_seeds(out: &mut Out) {
    use guest_sm::{Action as A, ChallengeHow, Flaw, Setup};
    let setup = Setup {
        seed: 3,
        max_outstanding: 2,
        skew: 1,
    };
    let deliver = |req: u8, flaw: Flaw| A::Deliver {
        req,
        session: 9,
        nb: -30,
        na: 3600,
        flaw,
        mutation: Mutation::None,
    };
    let challenge = |how: ChallengeHow| A::Challenge {
        how,
        nonce: 1,
        lock_time: 0,
        mutation: Mutation::None,
    };
    let full = vec![
        A::Request {
            lock: 0,
            validity: 600,
        },
        deliver(0, Flaw::None),
        A::StartUnlock(0),
        A::Advertise,
        A::Poll,
        A::Select,
        challenge(ChallengeHow::WrongKeys),
        challenge(ChallengeHow::Correct),
        A::WriteResult { ok: true, code: 0 },
    ];
    let mut flawed = vec![
        A::Request {
            lock: 1,
            validity: 60,
        },
        A::Request {
            lock: 0,
            validity: 60,
        },
        A::Request {
            lock: 2,
            validity: 0,
        },
    ];
    flawed.extend([
        deliver(0, Flaw::WrongGuest),
        deliver(1, Flaw::WrongLock),
        deliver(1, Flaw::WrongKey),
        deliver(2, Flaw::None),
        A::StartUnlock(2),
        A::Select,
        challenge(ChallengeHow::WrongSession),
        challenge(ChallengeHow::WrongStep),
        challenge(ChallengeHow::WrongAttempt),
        A::Advance(Delta::Minutes(90)),
        challenge(ChallengeHow::Correct),
        A::Drop(2),
        A::WriteResult {
            ok: false,
            code: 0x87,
        },
    ]);
    for (actions, want_response) in [(full, true), (flawed, false)] {
        let bytes = guest_sm::encode(&setup, &actions);
        let (s2, a2) = guest_sm::decode(&bytes).expect("decodes");
        assert_eq!(
            (&s2, &a2),
            (&setup, &actions),
            "guest_sm seed does not round-trip"
        );
        let sum = guest_sm::run(&bytes);
        assert!(sum.grants > 0, "guest_sm seed installs nothing: {sum:?}");
        assert_eq!(sum.responses > 0, want_response, "guest_sm seed: {sum:?}");
        out.put("guest_sm", &bytes);
    }
}

fn issuer_seeds(out: &mut Out) {
    use issuer_sm::{Action as A, Setup};
    let setup = Setup {
        seed: 5,
        window: 1,
        validity: 1,
        backdate: 1,
        live: 1,
        rate: 2,
        policy: 0,
        events: 1,
    };
    let req = |guest: u8, lock: u8, rid: u8| A::Request {
        guest,
        other_topic: false,
        other_key: false,
        lock,
        rid,
        ts: 0,
        validity: 600,
        mutation: Mutation::None,
    };
    let seeds = vec![
        vec![
            req(0, 0, 1),
            A::Replay(0),
            req(0, 0, 1),
            A::Revoke(0),
            A::Event {
                which: 0,
                topic: 0,
                mutation: Mutation::None,
            },
            A::Event {
                which: 2,
                topic: 0,
                mutation: Mutation::None,
            },
        ],
        vec![
            req(1, 1, 2),
            req(2, 0, 3),
            req(3, 0, 4),
            A::RevokeGuest(1),
            req(1, 0, 5),
            A::Enroll(1),
            A::Enroll(3),
            req(3, 2, 6),
            A::Advance(Delta::Minutes(61)),
            A::TimeoutAtPoll,
            A::Request {
                guest: 0,
                other_topic: true,
                other_key: true,
                lock: 0,
                rid: 7,
                ts: -120,
                validity: 0,
                mutation: Mutation::None,
            },
        ],
    ];
    let event = |which: u8| A::Event {
        which,
        topic: 0,
        mutation: Mutation::None,
    };
    // Lock messages: accepted, replayed, a status, stale and future ones, and the cache of
    // lock A filled past its capacity (LK-EVT-3, LK-EVT-4).
    let mut messages = vec![req(0, 0, 1), event(0), event(0), event(24), event(24)];
    messages.extend((1..20).map(event));
    messages.extend([event(0), event(26), event(27), A::Timeout]);
    let mut seeds: Vec<(Setup, Vec<A>, &str)> = seeds
        .into_iter()
        .map(|a| (setup.clone(), a, "granted"))
        .collect();
    seeds.push((
        Setup {
            events: 0,
            ..setup.clone()
        },
        messages,
        "events",
    ));
    // A burst of 1 an hour: the second request is rate-limited (LK-ISS-11); guest 0's
    // access ends at T0 + 100 s (LK-ISS-12).
    seeds.push((
        Setup {
            rate: 0,
            policy: 1,
            ..setup.clone()
        },
        vec![
            req(0, 0, 1),
            req(0, 0, 2),
            A::Advance(Delta::Minutes(2)),
            req(0, 0, 3),
            A::Timeout,
        ],
        "limits",
    ));
    for (setup, actions, goal) in seeds {
        let bytes = issuer_sm::encode(&setup, &actions);
        let (s2, a2) = issuer_sm::decode(&bytes).expect("decodes");
        assert_eq!(
            (&s2, &a2),
            (&setup, &actions),
            "issuer_sm seed does not round-trip"
        );
        let sum = issuer_sm::run(&bytes);
        let reached = match goal {
            "events" => sum.events > 20 && sum.old_events > 2,
            "limits" => sum.granted > 0 && sum.rate_limited > 0 && sum.policy_refused > 0,
            _ => sum.granted > 0 && sum.refused > 0,
        };
        assert!(reached, "issuer_sm seed for {goal}: {sum:?}");
        out.put("issuer_sm", &bytes);
    }
}

/// `seedgen decode TARGET FILE`: prints the actions a state-machine input decodes to.
fn decode(target: &str, file: &Path) {
    let data = fs::read(file).expect("read input");
    match target {
        "lock_sm" => println!("{:#?}", lock_sm::decode(&data)),
        "guest_sm" => println!("{:#?}", guest_sm::decode(&data)),
        "issuer_sm" => println!("{:#?}", issuer_sm::decode(&data)),
        other => panic!("decode: {other} is not a state-machine target"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("decode") && args.len() == 4 {
        return decode(&args[2], Path::new(&args[3]));
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("corpus"));
    let mut out = Out {
        dir,
        written: BTreeSet::new(),
    };
    from_vectors(&mut out, &here.join("../vectors"));
    lock_seeds(&mut out);
    lock_regressions(&here.join("regressions"));
    guest_seeds(&mut out);
    issuer_seeds(&mut out);
    let mut per: std::collections::BTreeMap<&str, usize> = Default::default();
    for (t, _) in &out.written {
        *per.entry(t.as_str()).or_default() += 1;
    }
    for (t, n) in per {
        println!("{t:24} {n:4} seeds");
    }
}
