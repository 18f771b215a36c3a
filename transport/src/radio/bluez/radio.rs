//! `BluerRadio`: one BlueZ adapter playing the lock or the guest role.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bluer::adv::AdvertisementHandle;
use bluer::{AdapterEvent, DiscoveryFilter, DiscoveryTransport};
use futures::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info};
use uuid::Uuid;

use super::adverts;
use super::gatt_server::GattServer;
use super::link::BluerGattLink;
use super::scanner;
use crate::radio::error::RadioError;
use crate::radio::types::{GattServiceSpec, LockEvents, MAX_LEGACY_MANUFACTURER_DATA};
use crate::radio::{GuestRadio, LockRadio};

/// Capacity of the lock event queue; adverts beyond it are dropped, GATT events wait.
const EVENT_CAPACITY: usize = 256;

/// A BlueZ adapter (e.g. `hci0`) as a Latchkey radio.
pub struct BluerRadio {
    _session: bluer::Session,
    adapter: bluer::Adapter,
    beacon: Mutex<Option<AdvertisementHandle>>,
    beacon_flags: bool,
    lock_started: Arc<AtomicBool>,
}

impl BluerRadio {
    /// Opens `adapter_name` (e.g. `"hci0"`), or BlueZ's default adapter for `None`, and
    /// powers it on.
    pub async fn new(adapter_name: Option<&str>) -> Result<Self, RadioError> {
        let session = bluer::Session::new().await?;
        let adapter = match adapter_name {
            Some(name) => session.adapter(name)?,
            None => session.default_adapter().await?,
        };
        // Touch the adapter so a wrong name fails here, with its name in the error.
        if let Err(e) = adapter.is_powered().await {
            return Err(match e.kind {
                bluer::ErrorKind::NotFound | bluer::ErrorKind::DoesNotExist => {
                    RadioError::AdapterNotFound(adapter.name().to_owned())
                }
                _ => e.into(),
            });
        }
        adapter.set_powered(true).await?;
        info!(adapter = adapter.name(), "Bluetooth adapter ready");
        Ok(Self {
            _session: session,
            adapter,
            beacon: Mutex::new(None),
            beacon_flags: false,
            lock_started: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Beacons carry the Flags AD, as phone stacks add it: BlueZ adds Flags only to a
    /// connectable, discoverable advertisement, so the beacon becomes one. Off by default:
    /// the spec wants beacons non-connectable; this shows the worst-case size fits.
    #[must_use]
    pub fn with_beacon_flags(mut self, flags: bool) -> Self {
        self.beacon_flags = flags;
        self
    }

    /// The adapter's name, e.g. `hci0`.
    pub fn adapter_name(&self) -> &str {
        self.adapter.name()
    }
}

impl fmt::Debug for BluerRadio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BluerRadio")
            .field("adapter", &self.adapter.name())
            .finish_non_exhaustive()
    }
}

/// Everything the lock side holds; dropping it stops scanning, advertising and the service.
struct LockSide {
    _server: GattServer,
    _advert: AdvertisementHandle,
    scan: JoinHandle<()>,
    started: Arc<AtomicBool>,
}

impl Drop for LockSide {
    fn drop(&mut self) {
        // Dropping the discovery stream inside the task ends BlueZ discovery.
        self.scan.abort();
        self.started.store(false, Ordering::Release);
    }
}

impl LockRadio for BluerRadio {
    async fn start_lock(&self, spec: GattServiceSpec) -> Result<LockEvents, RadioError> {
        if self.lock_started.swap(true, Ordering::AcqRel) {
            return Err(RadioError::AlreadyStarted);
        }
        let result = async {
            let (tx, rx) = mpsc::channel(EVENT_CAPACITY);
            let server = GattServer::start(self.adapter.clone(), spec, tx.clone()).await?;
            let advert = self
                .adapter
                .advertise(adverts::service(spec.service))
                .await?;
            let scan = scanner::start(self.adapter.clone(), tx).await?;
            info!(adapter = self.adapter.name(), service = %spec.service, "lock radio started");
            Ok(LockEvents::new(
                rx,
                Box::new(LockSide {
                    _server: server,
                    _advert: advert,
                    scan,
                    started: self.lock_started.clone(),
                }),
            ))
        }
        .await;
        if result.is_err() {
            self.lock_started.store(false, Ordering::Release);
        }
        result
    }
}

impl GuestRadio for BluerRadio {
    type Link = BluerGattLink;

    async fn set_advertisement(&self, company_id: u16, data: Vec<u8>) -> Result<(), RadioError> {
        if data.len() > MAX_LEGACY_MANUFACTURER_DATA {
            return Err(RadioError::AdvertTooLong {
                len: data.len(),
                max: MAX_LEGACY_MANUFACTURER_DATA,
            });
        }
        let mut beacon = self.beacon.lock().await;
        // Unregister the old set first: controllers have few advertising instances.
        drop(beacon.take());
        *beacon = Some(
            self.adapter
                .advertise(adverts::beacon(company_id, data, self.beacon_flags))
                .await?,
        );
        Ok(())
    }

    async fn stop_advertising(&self) -> Result<(), RadioError> {
        drop(self.beacon.lock().await.take());
        Ok(())
    }

    async fn connect(&self, service: Uuid, timeout: Duration) -> Result<BluerGattLink, RadioError> {
        match tokio::time::timeout(timeout, self.find_and_connect(service)).await {
            Ok(result) => result,
            Err(_) => Err(RadioError::NotFound { service, timeout }),
        }
    }
}

impl BluerRadio {
    async fn find_and_connect(&self, service: Uuid) -> Result<BluerGattLink, RadioError> {
        self.adapter
            .set_discovery_filter(DiscoveryFilter {
                transport: DiscoveryTransport::Le,
                uuids: [service].into_iter().collect(),
                ..Default::default()
            })
            .await?;
        let discovery = self.adapter.discover_devices_with_changes().await?;
        let mut discovery = std::pin::pin!(discovery);
        while let Some(event) = discovery.next().await {
            let AdapterEvent::DeviceAdded(addr) = event else {
                continue;
            };
            let device = self.adapter.device(addr)?;
            let advertises = device
                .uuids()
                .await
                .ok()
                .flatten()
                .is_some_and(|u| u.contains(&service));
            // No RSSI: known from the cache but not currently in range.
            let present = device.rssi().await.ok().flatten().is_some();
            if !(advertises && present) {
                continue;
            }
            match self.open_link(device, service).await {
                Ok(link) => return Ok(link),
                Err(e) => debug!(error = %e, "GATT connect attempt failed; still looking"),
            }
        }
        Err(RadioError::Disconnected)
    }

    async fn open_link(
        &self,
        device: bluer::Device,
        service: Uuid,
    ) -> Result<BluerGattLink, RadioError> {
        if !device.is_connected().await? {
            device.connect().await?;
        }
        for remote in device.services().await? {
            if remote.uuid().await? != service {
                continue;
            }
            let mut chars = HashMap::new();
            for c in remote.characteristics().await? {
                chars.insert(c.uuid().await?, c);
            }
            return Ok(BluerGattLink { device, chars });
        }
        let _ = device.disconnect().await;
        Err(RadioError::NotFound {
            service,
            timeout: Duration::ZERO,
        })
    }
}
