//! LE scanning with duplicate reports: every heard advert becomes an `Advert` event.

use std::collections::HashMap;

use bluer::{AdapterEvent, Address, DiscoveryFilter, DiscoveryTransport};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::mapping::DeviceAdverts;
use crate::radio::error::RadioError;
use crate::radio::types::LockRadioEvent;

/// Starts LE discovery with `duplicate_data` on (BlueZ otherwise suppresses repeated and
/// changed manufacturer data) and forwards reports until the task is aborted.
pub(crate) async fn start(
    adapter: bluer::Adapter,
    events: mpsc::Sender<LockRadioEvent>,
) -> Result<JoinHandle<()>, RadioError> {
    adapter
        .set_discovery_filter(DiscoveryFilter {
            transport: DiscoveryTransport::Le,
            duplicate_data: true,
            ..Default::default()
        })
        .await?;
    let discovery = adapter.discover_devices().await?;
    Ok(tokio::spawn(async move {
        let mut discovery = std::pin::pin!(discovery);
        let mut watchers: HashMap<Address, JoinHandle<()>> = HashMap::new();
        while let Some(event) = discovery.next().await {
            match event {
                AdapterEvent::DeviceAdded(addr) => {
                    watchers.retain(|_, w| !w.is_finished());
                    watchers.entry(addr).or_insert_with(|| {
                        tokio::spawn(watch(adapter.clone(), addr, events.clone()))
                    });
                }
                AdapterEvent::DeviceRemoved(addr) => {
                    if let Some(w) = watchers.remove(&addr) {
                        w.abort();
                    }
                }
                AdapterEvent::PropertyChanged(_) => {}
            }
        }
        warn!("BlueZ discovery ended");
        for (_, w) in watchers {
            w.abort();
        }
    }))
}

/// Reports one device's adverts from its RSSI / manufacturer-data property changes.
async fn watch(adapter: bluer::Adapter, addr: Address, events: mpsc::Sender<LockRadioEvent>) {
    let Ok(device) = adapter.device(addr) else {
        return;
    };
    let Ok(changes) = device.events().await else {
        return;
    };
    let mut changes = std::pin::pin!(changes);
    // Subscribed first, then read the current state, so nothing falls in between.
    let data = device.manufacturer_data().await.ok().flatten();
    let rssi = device.rssi().await.ok().flatten();
    let mut state = DeviceAdverts::new(data, rssi);
    for report in state.reports() {
        if send(&events, report).is_err() {
            return;
        }
    }
    while let Some(bluer::DeviceEvent::PropertyChanged(prop)) = changes.next().await {
        for report in state.apply(prop) {
            if send(&events, report).is_err() {
                return;
            }
        }
    }
}

fn send(
    events: &mpsc::Sender<LockRadioEvent>,
    report: crate::radio::AdvertReport,
) -> Result<(), ()> {
    match events.try_send(LockRadioEvent::Advert(report)) {
        Ok(()) => Ok(()),
        // A slow daemon loses adverts, as with a full controller queue; GATT events are
        // never dropped.
        Err(mpsc::error::TrySendError::Full(_)) => {
            debug!("lock event queue full; advert dropped");
            Ok(())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}
