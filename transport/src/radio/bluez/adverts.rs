//! The two advertisements: the guest's beacon and the lock's connectable service advert.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bluer::adv::{Advertisement, Type};
use uuid::Uuid;

/// Guest beacon interval (the protocol asks for about 100 ms during an attempt). BlueZ
/// applies it where the kernel supports per-set intervals and ignores it otherwise.
pub(crate) const BEACON_INTERVAL: Duration = Duration::from_millis(100);

/// Interval of the lock's connectable service advertisement: Apple's accessory guideline
/// value, so a guest finds the lock within a fraction of a second (BlueZ's default is
/// 1.28 s, seen in the real-BlueZ end-to-end traces).
pub(crate) const SERVICE_INTERVAL: Duration = Duration::from_micros(152_500);

/// Non-connectable advertisement with one manufacturer-data record; BlueZ sends it without
/// a Flags AD (and refuses Discoverable on a broadcast). With `flags`, it is a connectable,
/// discoverable advertisement instead, to which BlueZ adds the 3-byte Flags AD as phone
/// stacks do: the worst case of spec §5.2's size accounting, checked on a real stack by
/// the `advert-flags` end-to-end scenario. Production beacons stay non-connectable.
pub(crate) fn beacon(company_id: u16, data: Vec<u8>, flags: bool) -> Advertisement {
    Advertisement {
        advertisement_type: if flags {
            Type::Peripheral
        } else {
            Type::Broadcast
        },
        manufacturer_data: BTreeMap::from([(company_id, data)]),
        discoverable: flags.then_some(true),
        min_interval: Some(BEACON_INTERVAL),
        max_interval: Some(BEACON_INTERVAL),
        ..Default::default()
    }
}

/// Connectable advertisement of the lock's GATT service, so guests can find it.
pub(crate) fn service(service: Uuid) -> Advertisement {
    Advertisement {
        advertisement_type: Type::Peripheral,
        service_uuids: BTreeSet::from([service]),
        discoverable: Some(true),
        min_interval: Some(SERVICE_INTERVAL),
        max_interval: Some(SERVICE_INTERVAL),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_is_non_connectable_manufacturer_data_only() {
        let adv = beacon(0xFFFF, vec![1, 2, 3], false);
        assert_eq!(adv.advertisement_type, Type::Broadcast);
        assert_eq!(adv.discoverable, None);
        let flagged = beacon(0xFFFF, vec![1], true);
        assert_eq!(flagged.discoverable, Some(true));
        assert_eq!(flagged.advertisement_type, Type::Peripheral);
        assert_eq!(
            adv.manufacturer_data,
            BTreeMap::from([(0xFFFF, vec![1, 2, 3])])
        );
        assert!(adv.service_uuids.is_empty());
        assert!(adv.local_name.is_none());
        assert_eq!(adv.min_interval, Some(Duration::from_millis(100)));
    }

    #[test]
    fn service_advert_is_connectable_with_the_uuid() {
        let uuid = Uuid::from_u128(0x6c6b0001_4c4b_4c4b_8000_4c6174636b79);
        let adv = service(uuid);
        assert_eq!(adv.advertisement_type, Type::Peripheral);
        assert_eq!(adv.service_uuids, BTreeSet::from([uuid]));
        assert!(adv.manufacturer_data.is_empty());
        assert_eq!(adv.min_interval, Some(Duration::from_micros(152_500)));
        assert_eq!(adv.max_interval, adv.min_interval);
    }
}
