//! Whole-daemon figures (issue #6, last target): no target yet, measured and published in
//! `benches/DAEMON.md`.
//!
//! - `lockd/beacons_1000_phones`: beacons per second through the real lock daemon
//!   (`latchkey_lock::Lockd`, its select loop, the core's `handle_beacon`, stats, logging at
//!   `info` and the event sink) on a current-thread tokio runtime, i.e. one core. 1,000
//!   phones with live sessions at the lock (real RSA grants, delivered over MQTT through
//!   the embedded broker) advertise on a `SimAir`. The phones run on the bench's own thread
//!   and pace themselves: at most [`WINDOW`] adverts in flight, so the lock is never idle
//!   and the air never drops one. Criterion reports elements/s.
//! - `grant_to_unlock/embedded_broker`: one full unlock per iteration through the real
//!   issuer, lock and guest daemons (demo `Site`), from the guest's GrantRequest to the
//!   lock's answer to the Response write, on a default `SimAir`. p50/p99 of every run are
//!   printed and written to `$CRITERION_HOME/daemon/daemon.json` (criterion's own median
//!   is of per-sample means).
//!
//! Logs go through a `tracing` subscriber at `info` (or `RUST_LOG`) that formats every
//! line and writes it to `io::sink`: the formatting is paid, the terminal is not.
//!
//! `cargo test --benches` (criterion's test mode) runs each once with 16 phones.

use std::collections::BTreeSet;
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use latchkey::crypto::EnrollmentKey;
use latchkey::{Guest, GuestConfig, GuestId, Issuer, IssuerConfig, LockId, topics};
use latchkey_demo::{Endpoint, LockSetup, Site};
use latchkey_guest::Guestd;
use latchkey_lock::{LockStats, Lockd, LockdHandle};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{MqttUrl, QoS};
use latchkey_transport::radio::{SimAir, SimAirConfig, SimRadio};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, watch};
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn Error + Send + Sync>;

/// Phones advertising at the lock in the throughput bench.
const PHONES: usize = 1_000;
/// Phones in criterion's test mode (`cargo test --benches`).
const PHONES_QUICK: usize = 16;
/// Most adverts sent and not yet processed by the lock. At ~1 µs a beacon this is several
/// milliseconds of work, far more than the air's 1 ms latency, so the lock never waits.
const WINDOW: u64 = 4_096;
/// Adverts sent between two looks at the lock's counter.
const CHUNK: u64 = 256;
/// The lock's radio event queue (`SimAirConfig::event_capacity`): above `WINDOW`, so no
/// advert is dropped for a full queue and every one sent is processed.
const EVENT_QUEUE: usize = 8_192;
/// Every phone starts a new attempt this often. Below the lock's 10 s connection window
/// (the pending authentication stays live, so repeats stay `AlreadyPending`) and below a
/// 30 s step (the beacon follows the step).
const REFRESH: Duration = Duration::from_secs(5);
/// No progress for this long means adverts were lost: fail rather than spin.
const STALL: Duration = Duration::from_secs(5);
/// Validity asked for by the phones' grants.
const GRANT_VALIDITY_S: u32 = 3_600;

fn main() {
    init_logging();
    let quick = quick_mode();
    let mut c = Criterion::default().configure_from_args();
    let mut world: Option<World> = None;
    let mut report = Report::default();

    beacon_throughput(&mut c, &mut world, &mut report, quick);
    unlock_latency(&mut c, &mut world, &mut report, quick);

    report.print();
    if !quick && let Err(e) = report.save() {
        eprintln!("daemon bench: cannot write the JSON report: {e}");
    }
    if let Some(w) = world {
        w.stop();
    }
    c.final_summary();
}

/// Criterion's own rule: without `--bench`, or with `--test`, each bench runs once.
fn quick_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    !has("--bench") || has("--test")
}

/// The daemons' default logging (docs/daemons.md: `RUST_LOG`, default `info`), formatted
/// but written nowhere.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::sink)
        .try_init();
}

fn or_die<T>(what: &str, r: Result<T, BoxError>) -> T {
    r.unwrap_or_else(|e| panic!("daemon bench: {what}: {e}"))
}

// ------------------------------------------------------------------------------ world

/// Shared by both benches: the embedded broker, the issuer daemon and the site's files.
struct World {
    rt: Runtime,
    broker: Option<EmbeddedBroker>,
    site: Option<Site>,
}

impl World {
    fn start() -> Result<Self, BoxError> {
        // Issuer, MQTT clients, and the latency bench's lock and guest.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("bench-daemons")
            .build()?;
        let broker = EmbeddedBroker::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let url: MqttUrl = broker.url().parse()?;
        // The site's own air is the latency bench's: SimAir's defaults.
        let mut site = Site::new(Endpoint::plain(url), SimAir::new(SimAirConfig::default()))?;
        rt.block_on(async { site.start_issuer().await.map(|_| ()) })?;
        Ok(Self {
            rt,
            broker: Some(broker),
            site: Some(site),
        })
    }

    fn site(&mut self) -> Result<&mut Site, BoxError> {
        self.parts().map(|(_, site)| site)
    }

    /// The runtime and the site, borrowed together.
    fn parts(&mut self) -> Result<(&Runtime, &mut Site), BoxError> {
        let site = self.site.as_mut().ok_or("the site is gone")?;
        Ok((&self.rt, site))
    }

    fn stop(mut self) {
        if let Some(site) = self.site.take() {
            self.rt.block_on(site.shutdown());
        }
        if let Some(broker) = self.broker.take() {
            broker.stop();
        }
    }
}

fn world(world: &mut Option<World>) -> &mut World {
    if world.is_none() {
        *world = Some(or_die("start the broker and the issuer", World::start()));
    }
    match world {
        Some(w) => w,
        None => unreachable!("just set"),
    }
}

// ------------------------------------------------------------------ beacon throughput

/// A phone: its core (holding a grant for the lock) and its radio on the bench air.
struct Phone {
    guest: Guest,
    radio: SimRadio,
    beacon: Vec<u8>,
}

/// The lock daemon alone on its thread and runtime, and its phones.
struct Beacons {
    handle: Option<LockdHandle>,
    stats: watch::Receiver<LockStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The lock thread's kernel id, to read its CPU time (Linux).
    tid: Option<u32>,
    lock_id: LockId,
    company_id: u16,
    phones: Vec<Phone>,
    next: usize,
    rng: ChaCha20Rng,
    refreshed: Instant,
    setup: Duration,
    beacons: u64,
    busy: Duration,
    lock_cpu: Option<Duration>,
    driver_cpu: Option<Duration>,
    lock_wait: Option<Duration>,
}

impl Beacons {
    fn start(world: &mut World, phones: usize) -> Result<Self, BoxError> {
        let t0 = Instant::now();
        let site = world.site()?;
        let lock = site.add_lock()?;
        let mut opts = site.lock_options(&lock)?;
        // Room for every phone at once: one session, one pending authentication and a
        // replay entry per attempt (a new attempt every REFRESH, kept three steps).
        opts.tunables.max_sessions = 4_096;
        opts.tunables.max_pending = 4_096;
        opts.tunables.replay_capacity = 131_072;
        let company_id = opts.company_id;
        let lock_public = opts.lock_key.public_key();
        let issuer_key = latchkey_issuer::keys::load_private_key(
            &latchkey_issuer::state::StatePaths::new(site.issuer_state()).issuer_key(),
            "issuer key",
        )?;

        let air = SimAir::new(SimAirConfig {
            event_capacity: EVENT_QUEUE,
            ..SimAirConfig::default()
        });
        let radio = air.radio(&lock.radio);
        type Started = Result<(LockdHandle, Option<u32>), BoxError>;
        let (started_tx, started_rx) = std_mpsc::channel::<Started>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lockd".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(e.into()));
                        return;
                    }
                };
                // The daemon's task, the air's delay line, the lock's MQTT client and event
                // publisher all run here, on this one thread.
                rt.block_on(async move {
                    match Lockd::start(opts, radio).await {
                        Ok(handle) => {
                            let _ = started_tx.send(Ok((handle, current_tid())));
                            let _ = stop_rx.await;
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(e.into()));
                        }
                    }
                });
            })?;
        let (handle, tid) = started_rx.recv()??;
        let (rt, site) = world.parts()?;
        rt.block_on(site.wait_lock_ready(&lock, &handle))?;

        let phones = install_phones(world, &lock, &handle, issuer_key, lock_public, &air, phones)?;
        let stats = handle.stats_watch();
        let mut me = Self {
            handle: Some(handle),
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
            tid,
            lock_id: lock.lock_id,
            company_id,
            phones,
            next: 0,
            rng: ChaCha20Rng::seed_from_u64(0x6_0000),
            refreshed: Instant::now(),
            setup: Duration::ZERO,
            beacons: 0,
            busy: Duration::ZERO,
            lock_cpu: Some(Duration::ZERO),
            driver_cpu: Some(Duration::ZERO),
            lock_wait: Some(Duration::ZERO),
        };
        me.refresh()?;
        me.setup = t0.elapsed();
        Ok(me)
    }

    /// Every phone starts a new attempt and computes its current beacon.
    fn refresh(&mut self) -> Result<(), BoxError> {
        let now = latchkey_lock::now();
        for p in &mut self.phones {
            p.guest.start_unlock(now, self.lock_id, &mut self.rng)?;
            p.beacon = p
                .guest
                .advertisement(now)
                .ok_or("a phone has no beacon to advertise")?
                .to_vec();
        }
        self.refreshed = Instant::now();
        Ok(())
    }

    fn processed(&self) -> u64 {
        self.stats.borrow().adverts
    }

    /// Sends adverts round-robin from the phones until the lock has processed `iters` of
    /// them; the time from the first send to the lock's counter reaching `iters`.
    fn run(&mut self, iters: u64) -> Result<Duration, BoxError> {
        if self.refreshed.elapsed() >= REFRESH {
            self.refresh()?;
        }
        let base = self.processed();
        let mut sent = 0u64;
        let mut progress = (0u64, Instant::now());
        let cpu0 = thread_cpu(self.tid);
        let wait0 = thread_wait(self.tid);
        let me = current_tid();
        let driver0 = thread_cpu(me);
        let start = Instant::now();
        let elapsed = loop {
            let done = self.processed().saturating_sub(base);
            if done >= iters {
                break start.elapsed();
            }
            if done > progress.0 {
                progress = (done, Instant::now());
            } else if progress.1.elapsed() > STALL {
                return Err(
                    format!("the lock stalled at {done} of {iters} beacons ({sent} sent)").into(),
                );
            }
            let room = WINDOW
                .saturating_sub(sent.saturating_sub(done))
                .min(iters - sent)
                .min(CHUNK);
            if room == 0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            for _ in 0..room {
                let p = &self.phones[self.next];
                p.radio.advertise_once(self.company_id, &p.beacon)?;
                self.next = (self.next + 1) % self.phones.len();
            }
            sent += room;
            if self.refreshed.elapsed() >= REFRESH {
                self.refresh()?;
            }
        };
        let cpu = thread_cpu(self.tid)
            .zip(cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        self.lock_cpu = self.lock_cpu.zip(cpu).map(|(t, c)| t + c);
        let wait = thread_wait(self.tid)
            .zip(wait0)
            .map(|(b, a)| b.saturating_sub(a));
        self.lock_wait = self.lock_wait.zip(wait).map(|(t, c)| t + c);
        let driver = thread_cpu(me)
            .zip(driver0)
            .map(|(b, a)| b.saturating_sub(a));
        self.driver_cpu = self.driver_cpu.zip(driver).map(|(t, c)| t + c);
        self.beacons += iters;
        self.busy += elapsed;
        Ok(elapsed)
    }

    fn stop(mut self, world: &World) -> LockStats {
        let stats = *self.stats.borrow();
        if let Some(handle) = self.handle.take() {
            let _ = world.rt.block_on(handle.shutdown());
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        stats
    }
}

/// `n` phones with a live session at the lock: each is enrolled at an issuer core holding
/// the site's issuer key and asks it for a grant (RSA-PSS signed, session key RSA-OAEP
/// wrapped); the LockGrant is published on the lock's grants topic like the issuer daemon
/// does, and the GuestGrant given to the phone. Waits until the lock installed them all.
fn install_phones(
    world: &mut World,
    lock: &LockSetup,
    handle: &LockdHandle,
    issuer_key: latchkey::crypto::rsa::RsaPrivateKey,
    lock_public: latchkey::crypto::rsa::RsaPublicKey,
    air: &SimAir,
    n: usize,
) -> Result<Vec<Phone>, BoxError> {
    let mut issuer = Issuer::new(IssuerConfig::new(issuer_key))?;
    issuer.add_lock(lock.lock_id, lock_public);
    let (rt, site) = world.parts()?;
    let (client, _incoming) = rt.block_on(site.mqtt_client("issuer", "latchkey-bench-grants"))?;
    let topic = topics::lock_grants(topics::DEFAULT_PREFIX, &lock.lock_id);
    let before = handle.stats().grants_installed;
    let mut rng = ChaCha20Rng::seed_from_u64(0x6_0001);
    let mut phones = Vec::with_capacity(n);
    for i in 0..n {
        let now = latchkey_lock::now();
        let guest_id = GuestId::random(&mut rng);
        let key = EnrollmentKey::random(&mut rng);
        issuer.add_guest(guest_id, key.clone(), BTreeSet::from([lock.lock_id]));
        let mut cfg = GuestConfig::new(guest_id, key);
        cfg.company_id = latchkey::constants::DEFAULT_COMPANY_ID;
        let mut guest = Guest::new(cfg)?;
        let request = guest.request_grant(now, lock.lock_id, GRANT_VALIDITY_S, &mut rng);
        let issued = issuer.handle_request(now, guest_id, &request, &mut rng)?;
        guest.handle_grant(now, &issued.guest_grant)?;
        rt.block_on(client.publish(&topic, issued.lock_grant, QoS::AtLeastOnce, false))?;
        phones.push(Phone {
            guest,
            radio: air.radio(&format!("phone-{i}")),
            beacon: Vec::new(),
        });
    }
    let target = before + n as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while handle.stats().grants_installed < target {
        if Instant::now() > deadline {
            return Err(format!(
                "the lock installed {} of {n} grants",
                handle.stats().grants_installed - before
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.block_on(client.shutdown());
    Ok(phones)
}

fn beacon_throughput(
    c: &mut Criterion,
    world_slot: &mut Option<World>,
    report: &mut Report,
    quick: bool,
) {
    let phones = if quick { PHONES_QUICK } else { PHONES };
    let mut fixture: Option<Beacons> = None;
    let mut group = c.benchmark_group("lockd");
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    group.bench_function(format!("beacons_{phones}_phones"), |b| {
        let w = world(world_slot);
        if fixture.is_none() {
            fixture = Some(or_die("install the phones", Beacons::start(w, phones)));
        }
        let Some(fx) = fixture.as_mut() else {
            unreachable!("just set")
        };
        b.iter_custom(|iters| or_die("beacon run", fx.run(iters)));
    });
    group.finish();
    if let (Some(fx), Some(w)) = (fixture, world_slot.as_ref()) {
        report.phones = phones;
        report.setup = fx.setup;
        report.beacons = fx.beacons;
        report.busy = fx.busy;
        report.lock_cpu = fx.lock_cpu;
        report.driver_cpu = fx.driver_cpu;
        report.lock_wait = fx.lock_wait;
        report.lock = Some(fx.stop(w));
    }
}

// ------------------------------------------------------------------- unlock latency

/// A lock started from its `lock.toml` on the site's (default) air, and one guest daemon.
struct Unlocks {
    lock: LockSetup,
    lockd: Option<LockdHandle>,
    guest: Option<Guestd<SimRadio>>,
    runs: Vec<Run>,
}

/// One grant→unlock.
#[derive(Debug, Clone, Copy)]
struct Run {
    total: Duration,
    report: latchkey_guest::UnlockReport,
}

impl Unlocks {
    fn start(world: &mut World) -> Result<Self, BoxError> {
        let (rt, site) = world.parts()?;
        let lock = site.add_lock()?;
        let guest = site.enroll_guest(&[lock.lock_id])?;
        let site = &*site;
        let (lockd, guestd) = rt.block_on(async {
            let lockd = site.start_lock(&lock).await?;
            let guestd = site.guest(&guest).await?;
            Ok::<_, latchkey_demo::DemoError>((lockd, guestd))
        })?;
        Ok(Self {
            lock,
            lockd: Some(lockd),
            guest: Some(guestd),
            runs: Vec::new(),
        })
    }

    /// `iters` unlocks, each with a new grant (the held one is dropped first).
    fn run(&mut self, rt: &Runtime, iters: u64) -> Result<Duration, BoxError> {
        let guest = self.guest.as_mut().ok_or("the guest is gone")?;
        let lock_id = self.lock.lock_id;
        let mut sum = Duration::ZERO;
        for _ in 0..iters {
            guest.drop_grant(&lock_id);
            let t = Instant::now();
            let report = rt.block_on(guest.unlock(lock_id))?;
            let total = t.elapsed();
            if report.grant_reused {
                return Err("the guest reused a grant".into());
            }
            sum += total;
            self.runs.push(Run { total, report });
        }
        Ok(sum)
    }

    fn stop(mut self, rt: &Runtime) -> Vec<Run> {
        if let Some(g) = self.guest.take() {
            rt.block_on(g.shutdown());
        }
        if let Some(l) = self.lockd.take() {
            let _ = rt.block_on(l.shutdown());
        }
        self.runs
    }
}

fn unlock_latency(
    c: &mut Criterion,
    world_slot: &mut Option<World>,
    report: &mut Report,
    quick: bool,
) {
    let mut fixture: Option<Unlocks> = None;
    let mut group = c.benchmark_group("grant_to_unlock");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        // ~200 runs of ~160 ms.
        .measurement_time(Duration::from_secs(if quick { 1 } else { 32 }));
    group.bench_function("embedded_broker", |b| {
        let w = world(world_slot);
        if fixture.is_none() {
            fixture = Some(or_die("start the lock and the guest", Unlocks::start(w)));
        }
        let Some(fx) = fixture.as_mut() else {
            unreachable!("just set")
        };
        b.iter_custom(|iters| or_die("unlock", fx.run(&w.rt, iters)));
    });
    group.finish();
    if let (Some(fx), Some(w)) = (fixture, world_slot.as_ref()) {
        report.runs = fx.stop(&w.rt);
        report.air = Some(
            w.site
                .as_ref()
                .map_or_else(SimAirConfig::default, |s| s.air().config()),
        );
    }
}

// --------------------------------------------------------------------------- report

#[derive(Default)]
struct Report {
    phones: usize,
    setup: Duration,
    beacons: u64,
    busy: Duration,
    lock_cpu: Option<Duration>,
    driver_cpu: Option<Duration>,
    lock_wait: Option<Duration>,
    lock: Option<LockStats>,
    runs: Vec<Run>,
    air: Option<SimAirConfig>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    n: usize,
    p50: f64,
    p99: f64,
    min: f64,
    max: f64,
    mean: f64,
}

fn summarize(values: impl Iterator<Item = f64>) -> Summary {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Summary {
        n,
        p50: percentile(&v, 50.0),
        p99: percentile(&v, 99.0),
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
        mean: if n == 0 {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / n as f64
        },
    }
}

impl Report {
    fn beacons_per_sec(&self) -> f64 {
        self.beacons as f64 / self.busy.as_secs_f64()
    }

    /// Beacons per second of CPU time of the lock thread, and that thread's share of the
    /// wall time (below 100 %: it waited for adverts, or the OS ran something else).
    fn per_cpu_second(&self) -> Option<(f64, f64)> {
        let cpu = self.lock_cpu?.as_secs_f64();
        (cpu > 0.0).then(|| (self.beacons as f64 / cpu, cpu / self.busy.as_secs_f64()))
    }

    fn steps(&self) -> [(&'static str, Summary); 6] {
        let step = |f: fn(&Run) -> Duration| summarize(self.runs.iter().map(|r| ms(f(r))));
        [
            ("total", step(|r| r.total)),
            ("grant", step(|r| r.report.timings.grant)),
            ("connect", step(|r| r.report.timings.connect)),
            ("select", step(|r| r.report.timings.select)),
            ("challenge", step(|r| r.report.timings.challenge)),
            ("response", step(|r| r.report.timings.response)),
        ]
    }

    fn print(&self) {
        if let Some((rate, share)) = self.per_cpu_second() {
            println!(
                "lockd beacons: {rate:.0} beacons per CPU-second of the lock thread (busy {:.1} % of the wall time)",
                share * 100.0
            );
        }
        if let Some(w) = self.lock_wait {
            println!(
                "lockd beacons: the lock thread waited for a CPU (other processes ran) {:.1} % of the wall time",
                100.0 * w.as_secs_f64() / self.busy.as_secs_f64()
            );
        }
        if let Some(d) = self.driver_cpu {
            println!(
                "lockd beacons: the phones' thread (sending, on the other core) was busy {:.1} % of the wall time",
                100.0 * d.as_secs_f64() / self.busy.as_secs_f64()
            );
        }
        if let Some(s) = &self.lock {
            println!(
                "lockd beacons: {} phones, {:.0} beacons/s over all samples ({} beacons in {:.2} s; setup {:.1} s); \
                 lock counters: adverts {}, armed {}, rejected {}, grants {}, events published {} dropped {}",
                self.phones,
                self.beacons_per_sec(),
                self.beacons,
                self.busy.as_secs_f64(),
                self.setup.as_secs_f64(),
                s.adverts,
                s.beacons_armed,
                s.beacon_rejections,
                s.grants_installed,
                s.events_published,
                s.events_dropped,
            );
        }
        if !self.runs.is_empty() {
            let retried = self
                .runs
                .iter()
                .filter(|r| r.report.select_tries > 1)
                .count();
            for (name, s) in self.steps() {
                println!(
                    "grant→unlock {name:<9}: n={} p50={:.1} ms p99={:.1} ms (min {:.1}, mean {:.1}, max {:.1})",
                    s.n, s.p50, s.p99, s.min, s.mean, s.max
                );
            }
            println!(
                "grant→unlock: {retried} of {} runs needed more than one Select",
                self.runs.len()
            );
        }
    }

    fn save(&self) -> Result<PathBuf, BoxError> {
        let dir = criterion_home().join("daemon");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("daemon.json");
        let mut out = String::from("{\n");
        if let Some(s) = &self.lock {
            out += &format!(
                "  \"beacons\": {{\"phones\": {}, \"beacons_per_sec\": {:.0}, \"beacons_per_lock_cpu_sec\": {:.0}, \
                 \"lock_thread_busy\": {:.3}, \"beacons\": {}, \"seconds\": {:.3}, \"armed\": {}, \"rejected\": {}}},\n",
                self.phones,
                self.beacons_per_sec(),
                self.per_cpu_second().map_or(f64::NAN, |(r, _)| r),
                self.per_cpu_second().map_or(f64::NAN, |(_, s)| s),
                self.beacons,
                self.busy.as_secs_f64(),
                s.beacons_armed,
                s.beacon_rejections
            );
        }
        if let Some(air) = &self.air {
            out += &format!(
                "  \"sim_air\": {{\"default_rssi_dbm\": {}, \"advert_latency_ms\": {}, \"advert_interval_ms\": {}, \
                 \"gatt_latency_ms\": {}, \"mtu\": {}, \"loss\": {}}},\n",
                air.default_rssi,
                ms(air.advert_latency),
                ms(air.advert_interval),
                ms(air.gatt_latency),
                air.mtu,
                air.loss
            );
        }
        out += "  \"grant_to_unlock_ms\": {";
        let steps = self.steps();
        for (i, (name, s)) in steps.iter().enumerate() {
            out += &format!(
                "{}\n    \"{name}\": {{\"n\": {}, \"p50\": {:.2}, \"p99\": {:.2}, \"min\": {:.2}, \"mean\": {:.2}, \"max\": {:.2}}}",
                if i == 0 { "" } else { "," },
                s.n,
                s.p50,
                s.p99,
                s.min,
                s.mean,
                s.max
            );
        }
        out += "\n  }\n}\n";
        // NaN (no runs) is not JSON.
        let out = out.replace("NaN", "null");
        std::fs::write(&path, out)?;
        println!("daemon bench: figures written to {}", path.display());
        Ok(path)
    }
}

/// This thread's kernel id (Linux; `None` elsewhere).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time of thread `tid` of this process so far (`/proc/.../schedstat`, Linux).
fn thread_cpu(tid: Option<u32>) -> Option<Duration> {
    schedstat(tid, 0)
}

/// Time thread `tid` spent runnable but waiting for a CPU (other processes ran).
fn thread_wait(tid: Option<u32>) -> Option<Duration> {
    schedstat(tid, 1)
}

fn schedstat(tid: Option<u32>, field: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", tid?)).ok()?;
    let ns: u64 = stat.split_whitespace().nth(field)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Where criterion writes (its own rule, without asking cargo).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}
