//! The seven scenarios: what each boots and how it is judged.

use crate::facts::Facts;
use crate::judge;

/// RSSI btvirt reports for a close guest (dBm): above the lock's default threshold (-70).
pub const NEAR_DBM: i8 = -58;
/// RSSI of a guest too far away: below the threshold.
pub const FAR_DBM: i8 = -90;
/// RSSI of the replaying attacker's controller, distinct so its reports can be told apart
/// in the lock's log.
pub const ATTACKER_DBM: i8 = -61;
/// The lock's RSSI threshold in every scenario (the daemon's default).
pub const LOCK_THRESHOLD_DBM: i8 = -70;

/// One scenario.
#[derive(Debug)]
pub struct Scenario {
    /// Short name (`--only`).
    pub name: &'static str,
    /// One line saying what it shows.
    pub title: &'static str,
    /// The script run inside the UML machine after the stack is up (uml/lib.sh helpers).
    pub script: &'static str,
    /// Number of btvirt controllers: hci0 is the lock, hci1 (and hci2) guests or attacker.
    pub controllers: u8,
    /// RSSI each controller's advertisements are reported with, by hci index.
    pub rssi: &'static [i8],
    /// Judges the facts collected from the boot.
    pub judge: fn(&Facts) -> judge::Verdict,
}

/// Every scenario, in the order they run.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "unlock",
        title: "a guest unlocks over real BLE: beacon with RSSI, GATT Select, challenge, response",
        script: include_str!("../scenarios/unlock.sh"),
        controllers: 2,
        rssi: &[NEAR_DBM, NEAR_DBM],
        judge: judge::unlock,
    },
    Scenario {
        name: "rssi-too-low",
        title: "beacons below the lock's RSSI threshold: no unlock, rssi_too_low logged",
        script: include_str!("../scenarios/rssi-too-low.sh"),
        controllers: 2,
        rssi: &[NEAR_DBM, FAR_DBM],
        judge: judge::rssi_too_low,
    },
    Scenario {
        name: "revoked",
        title: "a revoked guest is refused at the lock and gets no new grant",
        script: include_str!("../scenarios/revoked.sh"),
        controllers: 2,
        rssi: &[NEAR_DBM, NEAR_DBM],
        judge: judge::revoked,
    },
    Scenario {
        name: "replay",
        title: "a third controller re-advertises recorded beacons after the guest left: no unlock",
        script: include_str!("../scenarios/replay.sh"),
        controllers: 3,
        rssi: &[NEAR_DBM, NEAR_DBM, ATTACKER_DBM],
        judge: judge::replay,
    },
    Scenario {
        name: "two-guests",
        title: "two guests at once: the lock serves both",
        script: include_str!("../scenarios/two-guests.sh"),
        controllers: 3,
        rssi: &[NEAR_DBM, NEAR_DBM, NEAR_DBM],
        judge: judge::two_guests,
    },
    Scenario {
        name: "advert-flags",
        title: "BlueZ accepts the beacon with its flags in a legacy advertisement (<= 31 bytes)",
        script: include_str!("../scenarios/advert-flags.sh"),
        controllers: 2,
        rssi: &[NEAR_DBM, NEAR_DBM],
        judge: judge::advert_flags,
    },
    Scenario {
        name: "lockout",
        title: "an attacker fails a guest's handshakes: the guest is locked out, then let in again",
        script: include_str!("../scenarios/lockout.sh"),
        controllers: 3,
        rssi: &[NEAR_DBM, NEAR_DBM, NEAR_DBM],
        judge: judge::lockout,
    },
];

/// The scenarios named in `only` (all when empty); an unknown name is an error.
pub fn select(only: &[String]) -> Result<Vec<&'static Scenario>, String> {
    if only.is_empty() {
        return Ok(ALL.iter().collect());
    }
    only.iter()
        .map(|name| {
            ALL.iter().find(|s| s.name == name).ok_or_else(|| {
                let names: Vec<_> = ALL.iter().map(|s| s.name).collect();
                format!("unknown scenario {name:?}; known: {}", names.join(", "))
            })
        })
        .collect()
}

/// btvirt's `BTVIRT_RSSI` value for a scenario (see btdev-rssi.patch).
pub fn btvirt_rssi(s: &Scenario) -> String {
    let v: Vec<String> = s.rssi.iter().map(i8::to_string).collect();
    v.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_an_rssi_per_controller_and_a_unique_name() {
        for s in ALL {
            assert_eq!(s.rssi.len(), usize::from(s.controllers), "{}", s.name);
            assert_eq!(ALL.iter().filter(|o| o.name == s.name).count(), 1);
            assert!(s.script.contains("start_lock"), "{}", s.name);
        }
        assert_eq!(ALL.len(), 7);
    }

    #[test]
    fn select_keeps_the_order_asked_and_rejects_unknown_names() {
        let picked = select(&["replay".into(), "unlock".into()]).expect("known");
        let names: Vec<_> = picked.iter().map(|s| s.name).collect();
        assert_eq!(names, ["replay", "unlock"]);
        let err = select(&["nope".into()]).expect_err("unknown");
        assert!(err.contains("known: unlock, rssi-too-low"), "{err}");
        assert_eq!(select(&[]).expect("all").len(), ALL.len());
    }

    #[test]
    fn rssi_list_is_comma_separated_by_hci_index() {
        let replay = select(&["replay".into()]).expect("known")[0];
        assert_eq!(btvirt_rssi(replay), "-58,-58,-61");
    }

    #[test]
    fn rssi_scenario_puts_the_guest_below_and_the_lock_above_the_threshold() {
        let s = select(&["rssi-too-low".into()]).expect("known")[0];
        assert!(s.rssi[1] < LOCK_THRESHOLD_DBM);
        const { assert!(NEAR_DBM >= LOCK_THRESHOLD_DBM && ATTACKER_DBM >= LOCK_THRESHOLD_DBM) };
    }
}
