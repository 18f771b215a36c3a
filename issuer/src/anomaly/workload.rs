//! A seeded synthetic audit trail with injected anomalies and ground truth, to measure the
//! detectors (see [`evaluation`](super::evaluation) and `docs/anomaly.md`).
//!
//! The model. Locks stand in four cities in four time zones (Berlin, Lisbon, New York,
//! Kolkata, the last with a half-hour offset) within 6 km of the centre; every fourth lock
//! of a city is the street door of the previous one (30–60 m away); every eighth lock
//! (street doors excepted) has no coordinates. Guests, each with their own habits in local time:
//! - residents (45 %): a home lock (and its street door, unlocked a minute before), 35 %
//!   also an office lock in the same city; weekday mornings and evenings at a personal
//!   hour with ±25 min jitter, 0–3 weekend unlocks between 09:00 and 22:00, and on 2 % of
//!   days a late return between 23:00 and 01:30;
//! - travellers (10 %): residents with a second home in another city, where they spend
//!   3–6 days every 2–4 weeks, arriving by plane (airport time plus flight at 220 m/s);
//! - cleaners (15 %): one weekday slot, visiting 1–3 locks of one city in turn;
//! - visitors (30 %): 3–6 random days with 1–4 unlocks between 09:00 and 23:00; one in
//!   ten is revoked after its stay and never comes back.
//!
//! Every unlock is preceded by a grant (issued, then installed) once per guest, lock and
//! day. Background noise: 4 % of unlocks follow a failed attempt (`clock_skew`,
//! `no_pending_auth`, `late_response`, rarely `bad_response_mac`); refused requests
//! (`outside_schedule` for early cleaners, `not_authorized`, `rate_limited`); a status per
//! lock every `status_interval_s` with `unknown_tag`, `replay` and rare `bad_beacon_mac`
//! counters. Lock clocks are off by up to ±2 s; events arrive 50 ms–1.5 s late, 1 % of
//! them up to 30 minutes late (a lock offline).
//!
//! Injected anomalies (`anomalies_per_detector` of each kind, labelled):
//! - unusual hour: a resident with two weeks of history unlocks home around 3 a.m.
//!   (02:30–03:59 local);
//! - failure burst, three flavours in turn: a guest failing handshakes until the lock
//!   locks it out (`lockout`, then `locked_out`, then `lockout_ended`); a storm of 25–40
//!   unattributed failed handshakes at one lock; 10–20 requests with a bad seal in the name
//!   of one guest;
//! - revoked guest: a guest revoked mid-month whose phone comes back 1–3 days later
//!   (2–6 `session_revoked` beacons, half the time a request refused `guest_revoked`);
//! - impossible travel: an unlock at a lock in another city 10–120 minutes after one of
//!   the guest's own unlocks (a cloned identity).

use std::collections::BTreeMap;

use jiff::SignedDuration;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use latchkey::{GrantId, GuestId, LockId};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::alert::Detector;
use super::config::{AnomalyConfigError, check_u64};
use super::geo::Coordinates;
use super::locks::{LockDirectory, LockInfo};
use super::record::{AuditRecord, RecordKind};
use crate::policy::time_zone;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Seed of the ChaCha20 generator: the same config gives the same workload.
    pub seed: u64,
    /// Length, in weeks (1..=520).
    pub weeks: u32,
    /// Number of locks (4..=10 000).
    pub locks: usize,
    /// Number of guests (10..=100 000).
    pub guests: usize,
    /// First day, Unix ms (taken to its UTC midnight). Default 2025-01-06, a Monday.
    pub start_ms: u64,
    /// Anomalies injected per detector (0..=10 000).
    pub anomalies_per_detector: usize,
    /// Interval between two statuses of a lock, seconds (60..=86 400).
    pub status_interval_s: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            weeks: 5,
            locks: 24,
            guests: 120,
            start_ms: 1_736_121_600_000,
            anomalies_per_detector: 12,
            status_interval_s: 4 * 3_600,
        }
    }
}

impl WorkloadConfig {
    /// Checks every value against its documented range (errors name `workload.<field>`).
    pub fn validate(&self) -> Result<(), AnomalyConfigError> {
        check_u64("workload.weeks", self.weeks.into(), 1, 520, "1..=520")?;
        check_u64("workload.locks", self.locks as u64, 4, 10_000, "4..=10000")?;
        check_u64(
            "workload.guests",
            self.guests as u64,
            10,
            100_000,
            "10..=100000",
        )?;
        check_u64(
            "workload.anomalies_per_detector",
            self.anomalies_per_detector as u64,
            0,
            10_000,
            "0..=10000",
        )?;
        check_u64(
            "workload.status_interval_s",
            self.status_interval_s,
            60,
            86_400,
            "60..=86400",
        )?;
        // 2200-01-01: leaves room for the weeks after it within jiff's calendar.
        check_u64(
            "workload.start_ms",
            self.start_ms,
            0,
            7_258_118_400_000,
            "a Unix ms time before the year 2200",
        )
    }
}

/// A city the locks stand in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// Its name.
    pub name: &'static str,
    /// Its IANA time zone.
    pub time_zone: &'static str,
    /// Centre, decimal degrees.
    pub latitude: f64,
    /// Centre, decimal degrees.
    pub longitude: f64,
}

/// The cities of the model.
pub const CITIES: [City; 4] = [
    City {
        name: "Berlin",
        time_zone: "Europe/Berlin",
        latitude: 52.5200,
        longitude: 13.4050,
    },
    City {
        name: "Lisbon",
        time_zone: "Europe/Lisbon",
        latitude: 38.7223,
        longitude: -9.1393,
    },
    City {
        name: "New York",
        time_zone: "America/New_York",
        latitude: 40.7128,
        longitude: -74.0060,
    },
    City {
        name: "Kolkata",
        time_zone: "Asia/Kolkata",
        latitude: 22.5726,
        longitude: 88.3639,
    },
];

/// One generated lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LockSite {
    /// Its id.
    pub lock_id: LockId,
    /// Index into [`CITIES`].
    pub city: usize,
    /// Where it is, if known.
    pub coordinates: Option<Coordinates>,
    /// For a street door: the index of the flat door it leads to.
    pub street_door_of: Option<usize>,
}

/// How a guest uses its locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuestRole {
    /// Weekday mornings and evenings, a few weekend visits.
    Resident,
    /// A resident with a second home in another city.
    Traveller,
    /// One weekday slot.
    Cleaner,
    /// A few random days.
    Visitor,
}

/// One generated guest.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestProfile {
    /// Its id.
    pub guest_id: GuestId,
    /// Its habits.
    pub role: GuestRole,
    /// Indices into the workload's locks; the first is home.
    pub locks: Vec<usize>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

/// One injected anomaly (the ground truth).
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedAnomaly {
    /// The detector meant to find it.
    pub detector: Detector,
    /// What was injected.
    pub scenario: &'static str,
    /// The guest, if one.
    pub guest_id: Option<GuestId>,
    /// The lock.
    pub lock_id: LockId,
    /// When it started (true time), Unix ms.
    pub at_ms: u64,
}

/// A record and, if it belongs to an injected anomaly, its index in
/// [`Workload::anomalies`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledRecord {
    /// The record.
    pub record: AuditRecord,
    /// The anomaly it belongs to; `None` for normal activity.
    pub anomaly: Option<usize>,
}

/// A generated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// What it was generated from.
    pub config: WorkloadConfig,
    /// The locks, as the engine sees them.
    pub directory: LockDirectory,
    /// The locks.
    pub locks: Vec<LockSite>,
    /// The guests.
    pub guests: Vec<GuestProfile>,
    /// Every record, in the order the issuer recorded them (`at_ms`).
    pub records: Vec<LabeledRecord>,
    /// The injected anomalies.
    pub anomalies: Vec<InjectedAnomaly>,
}

impl Workload {
    /// Records of normal activity.
    pub fn normal_records(&self) -> usize {
        self.records.iter().filter(|r| r.anomaly.is_none()).count()
    }

    /// Guests × weeks.
    pub fn guest_weeks(&self) -> f64 {
        self.guests.len() as f64 * f64::from(self.config.weeks)
    }
}

/// Generates the workload of `config`.
pub fn generate(config: &WorkloadConfig) -> Result<Workload, AnomalyConfigError> {
    config.validate()?;
    let mut rng = Draw(ChaCha20Rng::seed_from_u64(config.seed));
    let (locks, time_zones) = place_locks(config, &mut rng)?;
    let guests = cast_guests(config, &locks, &mut rng);
    let mut g = Generator {
        rng,
        config,
        days: i64::from(config.weeks) * 7,
        start: utc_date(config.start_ms),
        locks,
        time_zones,
        guests,
        clock_offsets_ms: Vec::new(),
        in_transit_until_ms: Vec::new(),
        day_grants: BTreeMap::new(),
        records: Vec::new(),
        anomalies: Vec::new(),
    };
    g.clock_offsets_ms = (0..g.locks.len())
        .map(|_| g.rng.range(0, 4_001) as i64 - 2_000)
        .collect();
    g.in_transit_until_ms = vec![0; g.guests.len()];
    let mut plan = g.plan_revocations();
    g.normal_activity();
    g.statuses();
    g.inject_revoked_guests(&plan);
    g.inject_unusual_hours(&mut plan);
    g.inject_failure_bursts(&mut plan);
    g.inject_impossible_travel(&mut plan);
    // Issuer order; the sort is stable, so equal times keep generation order.
    g.records.sort_by_key(|r| r.record.at_ms);
    let mut directory = LockDirectory::new();
    for (site, tz) in g.locks.iter().zip(&g.time_zones) {
        directory.insert(site.lock_id, LockInfo::new(tz.clone(), site.coordinates));
    }
    Ok(Workload {
        config: config.clone(),
        directory,
        locks: g.locks,
        guests: g.guests,
        records: g.records,
        anomalies: g.anomalies,
    })
}

/// The generator's random draws (ChaCha20, so every platform draws the same).
#[derive(Debug)]
struct Draw(ChaCha20Rng);

impl Draw {
    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi.saturating_sub(lo);
        if span == 0 {
            return lo;
        }
        // Multiply-shift: bias below 2⁻⁶⁴·span, irrelevant here.
        lo + ((u128::from(self.0.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// Uniform index into a non-empty length.
    fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Normal(mean, sd) by Box–Muller.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn id16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.0.fill_bytes(&mut b);
        b
    }
}

fn utc_date(ms: u64) -> Date {
    let days = (ms / DAY_MS) as i64;
    Date::new(1970, 1, 1)
        .ok()
        .and_then(|epoch| {
            epoch
                .checked_add(SignedDuration::from_hours(days * 24))
                .ok()
        })
        .unwrap_or(Date::MIN)
}

fn place_locks(
    config: &WorkloadConfig,
    rng: &mut Draw,
) -> Result<(Vec<LockSite>, Vec<TimeZone>), AnomalyConfigError> {
    let mut locks: Vec<LockSite> = Vec::with_capacity(config.locks);
    let mut time_zones = Vec::with_capacity(config.locks);
    let mut per_city = [0usize; CITIES.len()];
    for i in 0..config.locks {
        let city = i % CITIES.len();
        let c = CITIES[city];
        let tz = time_zone(c.time_zone).map_err(|e| AnomalyConfigError {
            field: "workload.cities",
            value: e.0,
            expected: "a time zone of the bundled database",
        })?;
        per_city[city] += 1;
        // Every fourth lock of a city is the street door of the city's previous lock.
        let street_door_of = i
            .checked_sub(CITIES.len())
            .filter(|_| per_city[city] % 4 == 0);
        let coordinates = match street_door_of {
            Some(flat) => locks[flat]
                .coordinates
                .map(|at| offset(rng, at, 30.0, 60.0)),
            // A lock installed without its coordinates.
            None if i % 8 == 5 => None,
            None => Coordinates::new(c.latitude, c.longitude)
                .ok()
                .map(|centre| offset(rng, centre, 0.0, 6_000.0)),
        };
        locks.push(LockSite {
            lock_id: LockId(rng.id16()),
            city,
            coordinates,
            street_door_of,
        });
        time_zones.push(tz);
    }
    Ok((locks, time_zones))
}

/// A point `min_m..max_m` metres from `at` in a random direction.
fn offset(rng: &mut Draw, at: Coordinates, min_m: f64, max_m: f64) -> Coordinates {
    let distance = min_m + (max_m - min_m) * rng.unit();
    let bearing = std::f64::consts::TAU * rng.unit();
    let dlat = distance * bearing.cos() / 111_320.0;
    let dlon = distance * bearing.sin() / (111_320.0 * at.latitude().to_radians().cos());
    Coordinates::new(at.latitude() + dlat, at.longitude() + dlon).unwrap_or(at)
}

fn cast_guests(config: &WorkloadConfig, locks: &[LockSite], rng: &mut Draw) -> Vec<GuestProfile> {
    // Doors a guest is enrolled at directly (street doors come with their flat).
    let doors: Vec<usize> = (0..locks.len())
        .filter(|&i| locks[i].street_door_of.is_none())
        .collect();
    let in_city = |city: usize| -> Vec<usize> {
        doors
            .iter()
            .copied()
            .filter(|&i| locks[i].city == city)
            .collect()
    };
    (0..config.guests)
        .map(|_| {
            let roll = rng.unit();
            let role = if roll < 0.45 {
                GuestRole::Resident
            } else if roll < 0.55 {
                GuestRole::Traveller
            } else if roll < 0.70 {
                GuestRole::Cleaner
            } else {
                GuestRole::Visitor
            };
            let home = doors[rng.index(doors.len())];
            let city = locks[home].city;
            let mut own = vec![home];
            match role {
                GuestRole::Resident if rng.chance(0.35) => {
                    let choices = in_city(city);
                    let office = choices[rng.index(choices.len())];
                    if office != home {
                        own.push(office);
                    }
                }
                GuestRole::Traveller => {
                    let other = (city + 1 + rng.index(CITIES.len() - 1)) % CITIES.len();
                    let choices = in_city(other);
                    if !choices.is_empty() {
                        own.push(choices[rng.index(choices.len())]);
                    }
                }
                GuestRole::Cleaner => {
                    let choices = in_city(city);
                    for _ in 0..rng.range(0, 3) {
                        let extra = choices[rng.index(choices.len())];
                        if !own.contains(&extra) {
                            own.push(extra);
                        }
                    }
                }
                _ => {}
            }
            GuestProfile {
                guest_id: GuestId(rng.id16()),
                role,
                locks: own,
                revoked_at_ms: None,
            }
        })
        .collect()
}

/// Who the injections use, chosen before normal activity so a revoked guest's activity
/// stops at its revocation.
#[derive(Debug, Default)]
struct InjectionPlan {
    /// (guest, revocation time).
    revoked: Vec<(usize, u64)>,
    /// Guests used by an injection already (each guest carries one anomaly at most, so
    /// the ground truth stays unambiguous).
    used: Vec<bool>,
}

struct Generator<'a> {
    rng: Draw,
    config: &'a WorkloadConfig,
    days: i64,
    start: Date,
    locks: Vec<LockSite>,
    time_zones: Vec<TimeZone>,
    guests: Vec<GuestProfile>,
    clock_offsets_ms: Vec<i64>,
    /// Per guest: in a plane until then (Unix ms), so no normal unlock before.
    in_transit_until_ms: Vec<u64>,
    /// (guest, lock, day) → the grant of that day.
    day_grants: BTreeMap<(usize, usize, u64), GrantId>,
    records: Vec<LabeledRecord>,
    anomalies: Vec<InjectedAnomaly>,
}

impl Generator<'_> {
    fn end_ms(&self) -> u64 {
        self.config.start_ms / DAY_MS * DAY_MS + self.days as u64 * DAY_MS
    }

    /// Unix ms of `minute` minutes after local midnight of day `day` at `lock` (minutes
    /// may run past midnight or be negative).
    fn local_ms(&self, lock: usize, day: i64, minute: f64) -> Option<u64> {
        let date = self
            .start
            .checked_add(SignedDuration::from_hours(day * 24))
            .ok()?;
        let local = date
            .at(0, 0, 0, 0)
            .checked_add(SignedDuration::from_secs((minute * 60.0) as i64))
            .ok()?;
        let ts = self.time_zones.get(lock)?.to_timestamp(local).ok()?;
        u64::try_from(ts.as_millisecond()).ok()
    }

    fn is_weekday(&self, day: i64) -> bool {
        self.start
            .checked_add(SignedDuration::from_hours(day * 24))
            .map(|d| d.weekday().to_monday_zero_offset() < 5)
            .unwrap_or(true)
    }

    fn push(&mut self, record: AuditRecord, anomaly: Option<usize>) {
        self.records.push(LabeledRecord { record, anomaly });
    }

    /// A lock event that happened at true time `t_ms`: stamped by the lock's clock,
    /// recorded by the issuer when it arrives.
    fn lock_event(&mut self, lock: usize, t_ms: u64, record: AuditRecord, anomaly: Option<usize>) {
        let offset = self.clock_offsets_ms.get(lock).copied().unwrap_or(0);
        let delay = if self.rng.chance(0.01) {
            self.rng.range(MINUTE_MS, 30 * MINUTE_MS)
        } else {
            self.rng.range(50, 1_500)
        };
        let mut record = record.with_lock_time(t_ms.saturating_add_signed(offset));
        record.at_ms = t_ms + delay;
        record.lock_id = Some(self.locks[lock].lock_id);
        self.push(record, anomaly);
    }

    /// The guest's grant for this lock today, issuing (and installing) one first if
    /// needed, or always when `fresh`.
    fn grant_for(
        &mut self,
        guest: usize,
        lock: usize,
        t_ms: u64,
        fresh: bool,
        anomaly: Option<usize>,
    ) -> GrantId {
        let key = (guest, lock, t_ms / DAY_MS);
        if !fresh && let Some(grant) = self.day_grants.get(&key) {
            return *grant;
        }
        let grant = GrantId(self.rng.id16());
        self.day_grants.insert(key, grant);
        let guest_id = self.guests[guest].guest_id;
        let issued_at = t_ms.saturating_sub(self.rng.range(30_000, 120_000));
        let issued = AuditRecord::new(issued_at, RecordKind::GrantIssued)
            .with_lock(self.locks[lock].lock_id)
            .with_guest(guest_id)
            .with_grant(grant);
        self.push(issued, anomaly);
        let installed_at = t_ms.saturating_sub(self.rng.range(5_000, 25_000));
        let installed = AuditRecord::new(0, RecordKind::GrantInstalled)
            .with_guest(guest_id)
            .with_grant(grant);
        self.lock_event(lock, installed_at, installed, anomaly);
        grant
    }

    /// A guest unlocks `lock` at `t_ms` (with its street door just before, if it has one).
    fn visit(&mut self, guest: usize, lock: usize, t_ms: u64, anomaly: Option<usize>) {
        if anomaly.is_none()
            && (t_ms >= self.end_ms()
                || t_ms < self.in_transit_until_ms[guest]
                || self.guests[guest]
                    .revoked_at_ms
                    .is_some_and(|revoked| t_ms >= revoked))
        {
            return;
        }
        if anomaly.is_none()
            && let Some(door) = self
                .locks
                .iter()
                .position(|l| l.street_door_of == Some(lock))
        {
            let before = t_ms.saturating_sub(self.rng.range(20_000, 90_000));
            self.unlock(guest, door, before, None);
        }
        self.unlock(guest, lock, t_ms, anomaly);
    }

    fn unlock(&mut self, guest: usize, lock: usize, t_ms: u64, anomaly: Option<usize>) {
        let grant = self.grant_for(guest, lock, t_ms, anomaly.is_some(), anomaly);
        let guest_id = self.guests[guest].guest_id;
        if anomaly.is_none() && self.rng.chance(0.04) {
            let roll = self.rng.unit();
            let reason = if roll < 0.35 {
                "clock_skew"
            } else if roll < 0.70 {
                "no_pending_auth"
            } else if roll < 0.95 {
                "late_response"
            } else {
                "bad_response_mac"
            };
            let failed = AuditRecord::new(0, RecordKind::Rejection)
                .with_guest(guest_id)
                .with_grant(grant)
                .with_reason(reason);
            let at = t_ms.saturating_sub(self.rng.range(5_000, 40_000));
            self.lock_event(lock, at, failed, None);
        }
        let unlock = AuditRecord::new(0, RecordKind::Unlock)
            .with_guest(guest_id)
            .with_grant(grant);
        self.lock_event(lock, t_ms, unlock, anomaly);
    }

    /// A request refused by the issuer at `t_ms`.
    fn refused(
        &mut self,
        guest_id: GuestId,
        lock: usize,
        t_ms: u64,
        reason: &str,
        anomaly: Option<usize>,
    ) {
        let record = AuditRecord::new(t_ms, RecordKind::RequestRefused)
            .with_lock(self.locks[lock].lock_id)
            .with_guest(guest_id)
            .with_reason(reason);
        self.push(record, anomaly);
    }

    fn plan_revocations(&mut self) -> InjectionPlan {
        let mut plan = InjectionPlan {
            revoked: Vec::new(),
            used: vec![false; self.guests.len()],
        };
        let candidates: Vec<usize> = (0..self.guests.len())
            .filter(|&g| {
                matches!(
                    self.guests[g].role,
                    GuestRole::Resident | GuestRole::Visitor
                )
            })
            .collect();
        for guest in self.pick(&candidates, self.config.anomalies_per_detector, &plan.used) {
            plan.used[guest] = true;
            let day = self.rng.range(7, (self.days - 4).max(8) as u64) as i64;
            let home = self.guests[guest].locks[0];
            let minute = self.rng.range(9 * 60, 18 * 60) as f64;
            if let Some(at) = self.local_ms(home, day, minute) {
                self.guests[guest].revoked_at_ms = Some(at);
                plan.revoked.push((guest, at));
            }
        }
        plan
    }

    /// Up to `n` distinct unused guests from `candidates`, in random order.
    fn pick(&mut self, candidates: &[usize], n: usize, used: &[bool]) -> Vec<usize> {
        let mut pool: Vec<usize> = candidates.iter().copied().filter(|&g| !used[g]).collect();
        let mut chosen = Vec::new();
        while chosen.len() < n && !pool.is_empty() {
            chosen.push(pool.swap_remove(self.rng.index(pool.len())));
        }
        chosen
    }

    fn normal_activity(&mut self) {
        for guest in 0..self.guests.len() {
            match self.guests[guest].role {
                GuestRole::Resident | GuestRole::Traveller => self.resident(guest),
                GuestRole::Cleaner => self.cleaner(guest),
                GuestRole::Visitor => self.visitor(guest),
            }
        }
    }

    fn resident(&mut self, guest: usize) {
        let morning = self.rng.range(6 * 60, 9 * 60) as f64;
        let evening = self.rng.range(17 * 60, 20 * 60 + 30) as f64;
        let home = self.guests[guest].locks[0];
        let office = match self.guests[guest].role {
            GuestRole::Resident => self.guests[guest].locks.get(1).copied(),
            _ => None,
        };
        let second_home = match self.guests[guest].role {
            GuestRole::Traveller => self.guests[guest].locks.get(1).copied(),
            _ => None,
        };
        // Travellers: the days of each stay away, as (departure day, return day).
        let mut trips = Vec::new();
        if second_home.is_some() {
            let mut day = self.rng.range(3, 12) as i64;
            while day < self.days {
                let stay = self.rng.range(3, 7) as i64;
                trips.push((day, day + stay));
                day += stay + self.rng.range(10, 21) as i64;
            }
        }
        let mut at = home;
        for day in 0..self.days {
            let departing = trips.iter().find(|t| t.0 == day).map(|_| second_home);
            let returning = trips.iter().find(|t| t.1 == day).map(|_| Some(home));
            let away = trips.iter().any(|t| t.0 < day && day < t.1);
            let here = if away {
                second_home.unwrap_or(home)
            } else {
                at
            };
            let travel = departing.or(returning).flatten();
            // A travel day has the morning only: the guest leaves after it.
            if self.is_weekday(day) || travel.is_some() {
                if self.rng.chance(0.85) {
                    let m = self.rng.normal(morning, 25.0);
                    if let Some(t) = self.local_ms(here, day, m) {
                        self.visit(guest, here, t, None);
                    }
                }
                if let Some(office) = office
                    && travel.is_none()
                    && self.rng.chance(0.8)
                {
                    let m = self.rng.normal(morning + 60.0, 15.0);
                    if let Some(t) = self.local_ms(office, day, m) {
                        self.visit(guest, office, t, None);
                    }
                }
            } else {
                for _ in 0..self.rng.range(0, 4) {
                    let m = self.rng.range(9 * 60, 22 * 60) as f64;
                    if let Some(t) = self.local_ms(here, day, m) {
                        self.visit(guest, here, t, None);
                    }
                }
            }
            if let Some(destination) = travel {
                // Leave two hours after the morning (so after its jitter), fly, unlock at
                // the other door on arrival.
                let after_morning = self.rng.range(120, 240) as f64;
                let leave = self.local_ms(here, day, morning + after_morning);
                if let Some(leave) = leave {
                    let distance = match (
                        self.locks[here].coordinates,
                        self.locks[destination].coordinates,
                    ) {
                        (Some(a), Some(b)) => a.distance_m(&b),
                        _ => 3_000_000.0,
                    };
                    let flight_ms = (distance / 220.0 * 1000.0) as u64;
                    let airports_ms = self.rng.range(3 * HOUR_MS, 4 * HOUR_MS + 30 * MINUTE_MS);
                    let arrival = leave + flight_ms + airports_ms;
                    self.in_transit_until_ms[guest] = arrival;
                    self.visit(guest, destination, arrival, None);
                }
                at = destination;
                continue;
            }
            if self.is_weekday(day) && self.rng.chance(0.9) {
                let m = self.rng.normal(evening, 25.0);
                if let Some(t) = self.local_ms(here, day, m) {
                    self.visit(guest, here, t, None);
                }
            }
            if self.rng.chance(0.02) {
                let m = self.rng.range(23 * 60, 25 * 60 + 30) as f64;
                if let Some(t) = self.local_ms(here, day, m) {
                    self.visit(guest, here, t, None);
                }
            }
        }
    }

    fn cleaner(&mut self, guest: usize) {
        let weekday = self.rng.range(0, 5) as i64;
        let slot = self.rng.range(9 * 60, 14 * 60) as f64;
        let first_day = (0..7).find(|&d| {
            self.start
                .checked_add(SignedDuration::from_hours(d * 24))
                .map(|date| i64::from(date.weekday().to_monday_zero_offset()) == weekday)
                .unwrap_or(false)
        });
        let Some(first_day) = first_day else { return };
        let locks = self.guests[guest].locks.clone();
        let guest_id = self.guests[guest].guest_id;
        let mut day = first_day;
        while day < self.days {
            if self.rng.chance(0.9) {
                let mut m = self.rng.normal(slot, 15.0);
                for (j, &lock) in locks.iter().enumerate() {
                    if j > 0 {
                        m += self.rng.range(90, 150) as f64;
                    }
                    let Some(t) = self.local_ms(lock, day, m) else {
                        continue;
                    };
                    if j == 0 && self.rng.chance(0.08) {
                        let early = t.saturating_sub(self.rng.range(5, 20) * MINUTE_MS);
                        self.refused(guest_id, lock, early, "outside_schedule", None);
                    }
                    self.visit(guest, lock, t, None);
                }
            }
            day += 7;
        }
    }

    fn visitor(&mut self, guest: usize) {
        let lock = self.guests[guest].locks[0];
        let guest_id = self.guests[guest].guest_id;
        let n_days = self.rng.range(3, 7);
        let mut last = None;
        for _ in 0..n_days {
            let day = self.rng.range(0, self.days as u64) as i64;
            last = last.max(Some(day));
            if self.rng.chance(0.03)
                && let Some(t) = self.local_ms(lock, day, 8.0 * 60.0)
            {
                self.refused(guest_id, lock, t, "not_authorized", None);
            }
            for _ in 0..self.rng.range(1, 5) {
                let m = self.rng.range(9 * 60, 23 * 60) as f64;
                if let Some(t) = self.local_ms(lock, day, m) {
                    self.visit(guest, lock, t, None);
                }
            }
        }
        // One visitor in ten is revoked after the stay (and never comes back).
        if self.guests[guest].revoked_at_ms.is_none()
            && self.rng.chance(0.1)
            && let Some(last) = last
            && let Some(t) = self.local_ms(lock, last + 1, 10.0 * 60.0)
            && t < self.end_ms()
        {
            self.guests[guest].revoked_at_ms = Some(t);
            let applied = AuditRecord::new(0, RecordKind::RevocationApplied).with_guest(guest_id);
            let applied_at = t + self.rng.range(1_000, 10_000);
            self.lock_event(lock, applied_at, applied, None);
        }
        // A rare app bug hammering the issuer.
        if self.rng.chance(0.05) {
            let day = self.rng.range(0, self.days as u64) as i64;
            if let Some(t) = self.local_ms(lock, day, 12.0 * 60.0) {
                for i in 0..self.rng.range(1, 4) {
                    self.refused(guest_id, lock, t + i * 2_000, "rate_limited", None);
                }
            }
        }
    }

    fn statuses(&mut self) {
        let interval_ms = self.config.status_interval_s * 1000;
        let start = self.config.start_ms / DAY_MS * DAY_MS;
        let end = self.end_ms();
        for lock in 0..self.locks.len() {
            let mut t = start + self.rng.range(0, interval_ms);
            while t < end {
                let mut status = AuditRecord::new(0, RecordKind::Status);
                for (reason, count) in [
                    ("unknown_tag", self.rng.range(0, 80)),
                    ("replay", self.rng.range(0, 6)),
                    (
                        "bad_beacon_mac",
                        if self.rng.chance(0.03) {
                            self.rng.range(1, 3)
                        } else {
                            0
                        },
                    ),
                ] {
                    if count > 0 {
                        status = status.with_counter(reason, count as u32);
                    }
                }
                self.lock_event(lock, t, status, None);
                t += interval_ms;
            }
        }
    }

    fn anomaly(
        &mut self,
        detector: Detector,
        scenario: &'static str,
        guest: Option<usize>,
        lock: usize,
        at_ms: u64,
    ) -> usize {
        self.anomalies.push(InjectedAnomaly {
            detector,
            scenario,
            guest_id: guest.map(|g| self.guests[g].guest_id),
            lock_id: self.locks[lock].lock_id,
            at_ms,
        });
        self.anomalies.len() - 1
    }

    fn inject_revoked_guests(&mut self, plan: &InjectionPlan) {
        for &(guest, revoked_at) in &plan.revoked {
            let guest_id = self.guests[guest].guest_id;
            let own = self.guests[guest].locks.clone();
            for &lock in &own {
                let applied =
                    AuditRecord::new(0, RecordKind::RevocationApplied).with_guest(guest_id);
                let applied_at = revoked_at + self.rng.range(1_000, 10_000);
                self.lock_event(lock, applied_at, applied, None);
            }
            let home = own[0];
            let back = revoked_at + self.rng.range(DAY_MS, 3 * DAY_MS);
            let id = self.anomaly(
                Detector::RevokedGuest,
                "revoked guest returns",
                Some(guest),
                home,
                back,
            );
            if self.rng.chance(0.5) {
                let asked = back.saturating_sub(self.rng.range(MINUTE_MS, 5 * MINUTE_MS));
                self.refused(guest_id, home, asked, "guest_revoked", Some(id));
            }
            // The revoked session's beacons (the lock keeps a tombstone, LK-REV-5).
            let grant = self
                .day_grants
                .iter()
                .filter(|((g, l, _), _)| *g == guest && *l == home)
                .max_by_key(|((_, _, day), _)| *day)
                .map(|(_, grant)| *grant)
                .unwrap_or(GrantId(self.rng.id16()));
            let mut t = back;
            for _ in 0..self.rng.range(2, 7) {
                let beacon = AuditRecord::new(0, RecordKind::Rejection)
                    .with_guest(guest_id)
                    .with_grant(grant)
                    .with_reason("session_revoked");
                self.lock_event(home, t, beacon, Some(id));
                t += self.rng.range(20_000, 120_000);
            }
        }
    }

    fn inject_unusual_hours(&mut self, plan: &mut InjectionPlan) {
        let residents: Vec<usize> = (0..self.guests.len())
            .filter(|&g| self.guests[g].role == GuestRole::Resident)
            .collect();
        let chosen = self.pick(&residents, self.config.anomalies_per_detector, &plan.used);
        for guest in chosen {
            plan.used[guest] = true;
            let home = self.guests[guest].locks[0];
            let day = self
                .rng
                .range(14.min(self.days as u64 - 1), self.days as u64) as i64;
            let minute = self.rng.range(2 * 60 + 30, 4 * 60) as f64;
            let Some(t) = self.local_ms(home, day, minute) else {
                continue;
            };
            let id = self.anomaly(
                Detector::UnusualHour,
                "3 a.m. unlock of a day person",
                Some(guest),
                home,
                t,
            );
            self.visit(guest, home, t, Some(id));
        }
    }

    fn inject_failure_bursts(&mut self, plan: &mut InjectionPlan) {
        let everyone: Vec<usize> = (0..self.guests.len()).collect();
        let chosen = self.pick(&everyone, self.config.anomalies_per_detector, &plan.used);
        for (n, guest) in chosen.into_iter().enumerate() {
            plan.used[guest] = true;
            let lock = self.guests[guest].locks[0];
            let day = self.rng.range(1, self.days as u64) as i64;
            let minute = self.rng.range(8 * 60, 22 * 60) as f64;
            let Some(mut t) = self.local_ms(lock, day, minute) else {
                continue;
            };
            let guest_id = self.guests[guest].guest_id;
            match n % 3 {
                0 => {
                    let id = self.anomaly(
                        Detector::FailureBurst,
                        "handshake failures until lockout",
                        Some(guest),
                        lock,
                        t,
                    );
                    let grant = self.grant_for(guest, lock, t, true, Some(id));
                    let attempts = self.rng.range(6, 13);
                    for attempt in 1..=attempts {
                        let reason = if attempt <= 5 {
                            "bad_response_mac"
                        } else {
                            "locked_out"
                        };
                        let failed = AuditRecord::new(0, RecordKind::Rejection)
                            .with_guest(guest_id)
                            .with_grant(grant)
                            .with_reason(reason);
                        self.lock_event(lock, t, failed, Some(id));
                        if attempt == 5 {
                            let lockout = AuditRecord::new(0, RecordKind::Lockout)
                                .with_guest(guest_id)
                                .with_grant(grant)
                                .with_reason("bad_response_mac");
                            self.lock_event(lock, t + 1, lockout, Some(id));
                            let ended = AuditRecord::new(0, RecordKind::LockoutEnded)
                                .with_guest(guest_id)
                                .with_grant(grant);
                            self.lock_event(lock, t + 900_000, ended, Some(id));
                        }
                        t += self.rng.range(10_000, 40_000);
                    }
                }
                1 => {
                    let id = self.anomaly(
                        Detector::FailureBurst,
                        "failed-handshake storm at a lock",
                        None,
                        lock,
                        t,
                    );
                    for _ in 0..self.rng.range(25, 41) {
                        let reason = if self.rng.chance(0.5) {
                            "bad_response_mac"
                        } else {
                            "step_mismatch"
                        };
                        let failed = AuditRecord::new(0, RecordKind::Rejection).with_reason(reason);
                        self.lock_event(lock, t, failed, Some(id));
                        t += self.rng.range(3_000, 15_000);
                    }
                }
                _ => {
                    let id = self.anomaly(
                        Detector::FailureBurst,
                        "requests with a bad seal",
                        Some(guest),
                        lock,
                        t,
                    );
                    for _ in 0..self.rng.range(10, 21) {
                        self.refused(guest_id, lock, t, "bad_seal", Some(id));
                        t += self.rng.range(5_000, 30_000);
                    }
                }
            }
        }
    }

    fn inject_impossible_travel(&mut self, plan: &mut InjectionPlan) {
        let half = self.config.start_ms + self.days as u64 * DAY_MS / 2;
        let candidates: Vec<usize> = (0..self.guests.len())
            .filter(|&g| {
                matches!(
                    self.guests[g].role,
                    GuestRole::Resident | GuestRole::Traveller
                ) && self.locks[self.guests[g].locks[0]].coordinates.is_some()
            })
            .collect();
        let chosen = self.pick(&candidates, self.config.anomalies_per_detector, &plan.used);
        for guest in chosen {
            plan.used[guest] = true;
            let guest_id = self.guests[guest].guest_id;
            // One of the guest's own unlocks in the second half, at a lock with coordinates.
            let own: Vec<(usize, u64)> = self
                .records
                .iter()
                .filter(|r| {
                    r.anomaly.is_none()
                        && r.record.kind == RecordKind::Unlock
                        && r.record.guest_id == Some(guest_id)
                        && r.record.event_time_ms() >= half
                })
                .filter_map(|r| {
                    let lock = self
                        .locks
                        .iter()
                        .position(|l| Some(l.lock_id) == r.record.lock_id)?;
                    self.locks[lock].coordinates?;
                    Some((lock, r.record.event_time_ms()))
                })
                .collect();
            if own.is_empty() {
                continue;
            }
            let (from, t) = own[self.rng.index(own.len())];
            let far: Vec<usize> = (0..self.locks.len())
                .filter(|&l| {
                    self.locks[l].city != self.locks[from].city
                        && self.locks[l].coordinates.is_some()
                })
                .collect();
            if far.is_empty() {
                continue;
            }
            let to = far[self.rng.index(far.len())];
            let at = t + self.rng.range(10 * MINUTE_MS, 120 * MINUTE_MS);
            let id = self.anomaly(
                Detector::ImpossibleTravel,
                "cloned identity in another city",
                Some(guest),
                to,
                at,
            );
            self.visit(guest, to, at, Some(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            weeks: 4,
            ..WorkloadConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_workload_and_another_seed_another() {
        let a = generate(&small(7)).unwrap();
        let b = generate(&small(7)).unwrap();
        let c = generate(&small(8)).unwrap();
        assert_eq!(a.records, b.records);
        assert_eq!(a.anomalies, b.anomalies);
        assert_ne!(a.records, c.records);
    }

    #[test]
    fn records_are_in_issuer_order_within_the_period() {
        let w = generate(&small(1)).unwrap();
        assert!(
            w.records
                .windows(2)
                .all(|p| p[0].record.at_ms <= p[1].record.at_ms)
        );
        let start = w.config.start_ms;
        let end = start + 5 * 7 * DAY_MS;
        assert!(
            w.records
                .iter()
                .all(|r| (start - DAY_MS..end).contains(&r.record.at_ms))
        );
    }

    #[test]
    fn every_detector_gets_its_anomalies_with_labelled_records() {
        let w = generate(&small(3)).unwrap();
        for detector in Detector::ALL {
            let injected: Vec<usize> = (0..w.anomalies.len())
                .filter(|&i| w.anomalies[i].detector == *detector)
                .collect();
            assert_eq!(
                injected.len(),
                w.config.anomalies_per_detector,
                "{detector}"
            );
            for i in injected {
                assert!(
                    w.records.iter().any(|r| r.anomaly == Some(i)),
                    "anomaly {i} ({detector}) has no record"
                );
            }
        }
    }

    #[test]
    fn the_model_has_every_role_time_zone_and_a_realistic_background() {
        let w = generate(&WorkloadConfig::default()).unwrap();
        for role in [
            GuestRole::Resident,
            GuestRole::Traveller,
            GuestRole::Cleaner,
            GuestRole::Visitor,
        ] {
            assert!(w.guests.iter().any(|g| g.role == role), "{role:?}");
        }
        let zones: std::collections::BTreeSet<_> = w
            .directory
            .iter()
            .map(|(_, info)| info.time_zone_name())
            .collect();
        assert_eq!(zones.len(), 4);
        assert!(w.locks.iter().any(|l| l.coordinates.is_none()));
        assert!(w.locks.iter().any(|l| l.street_door_of.is_some()));
        let normal = |kind: RecordKind, reason: Option<&str>| {
            w.records
                .iter()
                .filter(|r| {
                    r.anomaly.is_none()
                        && r.record.kind == kind
                        && (reason.is_none() || r.record.reason() == reason)
                })
                .count()
        };
        let unlocks = normal(RecordKind::Unlock, None);
        assert!(unlocks > 3_000, "{unlocks} unlocks");
        assert!(normal(RecordKind::Rejection, Some("clock_skew")) > 10);
        assert!(normal(RecordKind::Rejection, Some("no_pending_auth")) > 10);
        assert!(normal(RecordKind::Status, None) > 1_000);
        assert!(normal(RecordKind::RevocationApplied, None) > 0);
        // No normal record is evidence of a revoked guest.
        assert_eq!(normal(RecordKind::Rejection, Some("session_revoked")), 0);
    }

    #[test]
    fn a_revoked_guest_has_no_normal_activity_after_its_revocation() {
        let w = generate(&small(5)).unwrap();
        for g in w.guests.iter().filter(|g| g.revoked_at_ms.is_some()) {
            let revoked = g.revoked_at_ms.unwrap_or(u64::MAX);
            let after = w.records.iter().filter(|r| {
                r.anomaly.is_none()
                    && r.record.kind == RecordKind::Unlock
                    && r.record.guest_id == Some(g.guest_id)
                    && r.record.event_time_ms() > revoked + 60_000
            });
            assert_eq!(after.count(), 0);
        }
    }

    #[test]
    fn an_out_of_range_config_is_refused() {
        let err = generate(&WorkloadConfig {
            locks: 2,
            ..WorkloadConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.field, "workload.locks");
        let err = generate(&WorkloadConfig {
            weeks: 0,
            ..WorkloadConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.field, "workload.weeks");
    }
}
