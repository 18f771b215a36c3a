//! Listening as a bystander: every distinct manufacturer-data record of one company heard on
//! an adapter, in the order first heard. Shared by the attackers, which talk to BlueZ with
//! bluer directly (they are neither a lock nor a guest).

use std::collections::HashSet;
use std::time::Duration;

use bluer::{AdapterEvent, DiscoveryFilter, DiscoveryTransport};
use futures::StreamExt;
use tokio::sync::mpsc;

/// Known devices' data (a new beacon is a property change) is polled this often: cheap for
/// the few devices on an emulated radio.
const POLL: Duration = Duration::from_millis(50);

/// Starts an LE discovery with duplicate data on `adapter` and sends each manufacturer-data
/// record of `company_id` the first time it is heard. The scan stops once the receiver is
/// dropped.
pub async fn distinct_beacons(
    adapter: bluer::Adapter,
    company_id: u16,
) -> Result<mpsc::UnboundedReceiver<Vec<u8>>, bluer::Error> {
    adapter
        .set_discovery_filter(DiscoveryFilter {
            transport: DiscoveryTransport::Le,
            duplicate_data: true,
            ..Default::default()
        })
        .await?;
    let discovery = adapter.discover_devices_with_changes().await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut discovery = std::pin::pin!(discovery);
        let mut devices: HashSet<bluer::Address> = HashSet::new();
        let mut heard: HashSet<Vec<u8>> = HashSet::new();
        let mut tick = tokio::time::interval(POLL);
        while !tx.is_closed() {
            let addrs: Vec<bluer::Address> = tokio::select! {
                event = discovery.next() => match event {
                    Some(AdapterEvent::DeviceAdded(a)) => {
                        devices.insert(a);
                        vec![a]
                    }
                    Some(_) => continue,
                    None => break,
                },
                _ = tick.tick() => devices.iter().copied().collect(),
            };
            for addr in addrs {
                if let Some(data) = manufacturer_data(&adapter, addr, company_id).await
                    && heard.insert(data.clone())
                    && tx.send(data).is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

async fn manufacturer_data(
    adapter: &bluer::Adapter,
    addr: bluer::Address,
    company: u16,
) -> Option<Vec<u8>> {
    let device = adapter.device(addr).ok()?;
    let mut data = device.manufacturer_data().await.ok()??;
    data.remove(&company)
}
