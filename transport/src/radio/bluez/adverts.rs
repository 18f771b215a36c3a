//! The two advertisements: the guest's beacon and the lock's connectable service advert.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bluer::adv::{Advertisement, Type};
use uuid::Uuid;

/// Guest beacon interval (the protocol asks for about 100 ms during an attempt). BlueZ
/// applies it where the kernel supports per-set intervals and ignores it otherwise.
pub(crate) const BEACON_INTERVAL: Duration = Duration::from_millis(100);

/// Non-connectable advertisement with one manufacturer-data record.
pub(crate) fn beacon(company_id: u16, data: Vec<u8>) -> Advertisement {
    Advertisement {
        advertisement_type: Type::Broadcast,
        manufacturer_data: BTreeMap::from([(company_id, data)]),
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
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_is_non_connectable_manufacturer_data_only() {
        let adv = beacon(0xFFFF, vec![1, 2, 3]);
        assert_eq!(adv.advertisement_type, Type::Broadcast);
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
    }
}
