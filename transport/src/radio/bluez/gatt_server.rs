//! The lock's GATT service as a BlueZ GATT application, written directly on D-Bus.
//!
//! Why not bluer's `gatt::local`: its callbacks can only return a fixed set of errors, all
//! of which BlueZ turns into ATT `0x80` at best; Latchkey needs `0x80..=0x9F` to reach the
//! guest. Here each `ReadValue` / `WriteValue` is answered with the D-Bus error from
//! [`att_to_dbus_error`](super::mapping::att_to_dbus_error).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dbus::arg::{PropMap, prop_cast};
use dbus::channel::MatchingReceiver as _;
use dbus::message::MatchRule;
use dbus::nonblock::{Proxy, SyncConnection};
use dbus::{MethodErr, Path};
use dbus_crossroads::{Crossroads, PropContext};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use uuid::Uuid;

use super::mapping::{att_to_dbus_error, characteristic_flags, device_address, read_at_offset};
use crate::radio::att::AttError;
use crate::radio::error::RadioError;
use crate::radio::types::{ConnId, GattServiceSpec, LockRadioEvent};

const GATT_MANAGER: &str = "org.bluez.GattManager1";
const SERVICE_IFACE: &str = "org.bluez.GattService1";
const CHAR_IFACE: &str = "org.bluez.GattCharacteristic1";
/// BlueZ gives up on a GATT application's reply after about 30 s; answer before that.
const DAEMON_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

static NEXT_APP: AtomicU64 = AtomicU64::new(0);

/// A registered GATT application; dropping it unregisters it and stops its tasks.
pub(crate) struct GattServer {
    conn: Arc<SyncConnection>,
    adapter_path: Path<'static>,
    app_path: Path<'static>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    // The receive handler holds the connection; stopping it breaks that cycle on drop.
    receive_token: dbus::channel::Token,
}

struct Shared {
    spec: GattServiceSpec,
    events: mpsc::Sender<LockRadioEvent>,
    adapter: bluer::Adapter,
    next_conn: AtomicU64,
    conns: Mutex<HashMap<String, Conn>>,
}

/// State of one GATT connection, keyed by BlueZ's device object path for its duration.
struct Conn {
    id: ConnId,
    /// Last value read per characteristic, so Read Blobs see one consistent value.
    read_cache: HashMap<Uuid, Vec<u8>>,
    watcher: JoinHandle<()>,
}

#[derive(Clone, Copy)]
struct CharData {
    uuid: Uuid,
}

impl GattServer {
    /// Publishes `spec` on `adapter`; GATT requests become events on `events`.
    pub(crate) async fn start(
        adapter: bluer::Adapter,
        spec: GattServiceSpec,
        events: mpsc::Sender<LockRadioEvent>,
    ) -> Result<Self, RadioError> {
        let (resource, conn) = dbus_tokio::connection::new_system_sync()?;
        let tasks = vec![tokio::spawn(async move {
            let err = resource.await;
            warn!(error = %err, "D-Bus connection of the GATT server lost");
        })];

        let shared = Arc::new(Shared {
            spec,
            events,
            adapter: adapter.clone(),
            next_conn: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });

        let n = NEXT_APP.fetch_add(1, Ordering::Relaxed);
        let app = format!("/org/latchkey/gatt{}/app{n}", std::process::id());
        let app_path = object_path(app.clone())?;
        let service_path = object_path(format!("{app}/service0"))?;
        let challenge_path = object_path(format!("{app}/service0/char0"))?;
        let response_path = object_path(format!("{app}/service0/char1"))?;

        let mut cr = Crossroads::new();
        cr.set_async_support(Some((
            conn.clone(),
            Box::new(|fut| {
                tokio::spawn(fut);
            }),
        )));
        cr.set_object_manager_support(Some(conn.clone()));
        let service_token = cr.register(SERVICE_IFACE, |b| {
            b.property("UUID")
                .get(|_, uuid: &mut Uuid| Ok(uuid.to_string()));
            b.property("Primary").get(|_, _| Ok(true));
        });
        let char_token = register_characteristic(&mut cr, &shared);
        let object_manager = cr.object_manager::<()>();
        cr.insert(app_path.clone(), &[object_manager], ());
        cr.insert(service_path, &[service_token], spec.service);
        cr.insert(
            challenge_path,
            &[char_token],
            CharData {
                uuid: spec.challenge_char,
            },
        );
        cr.insert(
            response_path,
            &[char_token],
            CharData {
                uuid: spec.response_char,
            },
        );

        // Route incoming method calls to crossroads; BlueZ calls GetManagedObjects on us
        // during RegisterApplication, so this must run before registering.
        let routed = conn.clone();
        let receive_token = conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg, _| {
                let _ = cr.handle_message(msg, &*routed);
                true
            }),
        );

        let adapter_path = object_path(format!("/org/bluez/{}", adapter.name()))?;
        let proxy = Proxy::new(
            "org.bluez",
            adapter_path.clone(),
            Duration::from_secs(30),
            conn.clone(),
        );
        let registered: Result<(), dbus::Error> = proxy
            .method_call(
                GATT_MANAGER,
                "RegisterApplication",
                (app_path.clone(), PropMap::new()),
            )
            .await;
        if let Err(e) = registered {
            let _ = conn.stop_receive(receive_token);
            for t in &tasks {
                t.abort();
            }
            return Err(e.into());
        }
        debug!(app = %app_path, service = %spec.service, "GATT application registered");
        Ok(Self {
            conn,
            adapter_path,
            app_path,
            shared,
            tasks,
            receive_token,
        })
    }
}

impl Drop for GattServer {
    fn drop(&mut self) {
        let conns: Vec<Conn> = lock(&self.shared.conns).drain().map(|(_, c)| c).collect();
        for c in conns {
            c.watcher.abort();
        }
        let conn = self.conn.clone();
        let adapter_path = self.adapter_path.clone();
        let app_path = self.app_path.clone();
        let io_task = self.tasks.drain(..).collect::<Vec<_>>();
        let token = self.receive_token;
        // Unregistering needs the connection alive; tear it down afterwards.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let proxy = Proxy::new(
                    "org.bluez",
                    adapter_path,
                    Duration::from_secs(5),
                    conn.clone(),
                );
                let _: Result<(), dbus::Error> = proxy
                    .method_call(GATT_MANAGER, "UnregisterApplication", (app_path,))
                    .await;
                let _ = conn.stop_receive(token);
                for t in io_task {
                    t.abort();
                }
            });
        } else {
            let _ = conn.stop_receive(token);
            for t in io_task {
                t.abort();
            }
        }
    }
}

fn object_path(path: String) -> Result<Path<'static>, RadioError> {
    Path::new(path).map_err(|e| RadioError::Dbus(dbus::Error::new_failed(&e)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dbus_err(err: AttError) -> MethodErr {
    MethodErr::from(att_to_dbus_error(err))
}

fn register_characteristic(
    cr: &mut Crossroads,
    shared: &Arc<Shared>,
) -> dbus_crossroads::IfaceToken<CharData> {
    let spec = shared.spec;
    let on_read = Arc::downgrade(shared);
    let on_write = Arc::downgrade(shared);
    cr.register(CHAR_IFACE, move |b| {
        b.property("UUID")
            .get(|_, c: &mut CharData| Ok(c.uuid.to_string()));
        b.property("Service").get(|ctx: &mut PropContext, _| {
            let path = ctx.path().to_string();
            let parent = path
                .rsplit_once('/')
                .map(|(p, _)| p.to_owned())
                .unwrap_or(path);
            Path::new(parent).map_err(|e| MethodErr::failed(&e))
        });
        b.property("Flags")
            .get(move |_, c: &mut CharData| Ok(characteristic_flags(spec.readable(c.uuid))));
        b.method_with_cr_async(
            "ReadValue",
            ("options",),
            ("value",),
            move |mut ctx, cr, (options,): (PropMap,)| {
                let uuid = cr.data_mut::<CharData>(ctx.path()).map(|c| c.uuid);
                let request = Request::parse(&options);
                let shared = on_read.clone();
                async move {
                    let result = match (shared.upgrade(), uuid, request) {
                        (Some(shared), Some(uuid), Some(request)) => shared
                            .read(uuid, request)
                            .await
                            .map(|v| (v,))
                            .map_err(dbus_err),
                        _ => Err(dbus_err(AttError::UnlikelyError)),
                    };
                    ctx.reply(result)
                }
            },
        );
        b.method_with_cr_async(
            "WriteValue",
            ("value", "options"),
            (),
            move |mut ctx, cr, (value, options): (Vec<u8>, PropMap)| {
                let uuid = cr.data_mut::<CharData>(ctx.path()).map(|c| c.uuid);
                let request = Request::parse(&options);
                let shared = on_write.clone();
                async move {
                    let result = match (shared.upgrade(), uuid, request) {
                        (Some(shared), Some(uuid), Some(request)) => {
                            shared.write(uuid, value, request).await.map_err(dbus_err)
                        }
                        _ => Err(dbus_err(AttError::UnlikelyError)),
                    };
                    ctx.reply(result)
                }
            },
        );
    })
}

/// The options of a ReadValue / WriteValue call that we use.
struct Request {
    device: String,
    offset: u16,
}

impl Request {
    fn parse(options: &PropMap) -> Option<Self> {
        let device = prop_cast::<Path>(options, "device")?.to_string();
        let offset = prop_cast::<u16>(options, "offset").copied().unwrap_or(0);
        Some(Self { device, offset })
    }
}

impl Shared {
    async fn read(
        self: Arc<Self>,
        characteristic: Uuid,
        req: Request,
    ) -> Result<Vec<u8>, AttError> {
        let conn = self.conn_for(&req.device);
        if req.offset > 0 {
            // Read Blob: serve the rest of the value the daemon gave for the first Read.
            let cached = lock(&self.conns)
                .get(&req.device)
                .and_then(|c| c.read_cache.get(&characteristic).cloned());
            if let Some(value) = cached {
                return read_at_offset(&value, req.offset);
            }
        }
        let (reply, answer) = oneshot::channel();
        let event = LockRadioEvent::GattRead {
            conn,
            characteristic,
            reply,
        };
        let value = self.ask(event, answer).await?;
        if let Some(c) = lock(&self.conns).get_mut(&req.device) {
            c.read_cache.insert(characteristic, value.clone());
        }
        read_at_offset(&value, req.offset)
    }

    async fn write(
        self: Arc<Self>,
        characteristic: Uuid,
        value: Vec<u8>,
        req: Request,
    ) -> Result<(), AttError> {
        let conn = self.conn_for(&req.device);
        if req.offset != 0 {
            // A prepared (long) write arrives in pieces with no end marker, so it cannot be
            // handed over as one value. Values must fit one Write Request (ATT_MTU - 3).
            debug!(%conn, offset = req.offset, "refusing prepared GATT write");
            return Err(AttError::InvalidOffset);
        }
        let (reply, answer) = oneshot::channel();
        let event = LockRadioEvent::GattWrite {
            conn,
            characteristic,
            value,
            reply,
        };
        self.ask(event, answer).await
    }

    async fn ask<T>(
        &self,
        event: LockRadioEvent,
        answer: oneshot::Receiver<Result<T, AttError>>,
    ) -> Result<T, AttError> {
        if self.events.send(event).await.is_err() {
            return Err(AttError::UnlikelyError);
        }
        match tokio::time::timeout(DAEMON_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AttError::UnlikelyError),
            Err(_) => {
                warn!("lock daemon did not answer a GATT request in time");
                Err(AttError::UnlikelyError)
            }
        }
    }

    /// The connection id for `device`, allocating one (and a disconnect watcher) on first use.
    fn conn_for(self: &Arc<Self>, device: &str) -> ConnId {
        let mut conns = lock(&self.conns);
        if let Some(c) = conns.get(device) {
            return c.id;
        }
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let watcher = tokio::spawn(watch_disconnect(
            Arc::downgrade(self),
            device.to_owned(),
            id,
        ));
        conns.insert(
            device.to_owned(),
            Conn {
                id,
                read_cache: HashMap::new(),
                watcher,
            },
        );
        debug!(conn = %id, "GATT connection seen");
        id
    }
}

/// Emits `Disconnected` when BlueZ reports the device's link down (or the device is gone).
async fn watch_disconnect(shared: Weak<Shared>, device: String, id: ConnId) {
    let adapter = match shared.upgrade() {
        Some(s) => s.adapter.clone(),
        None => return,
    };
    if let Some(addr) = device_address(&device)
        && let Ok(dev) = adapter.device(addr)
        && let Ok(mut changes) = dev.events().await
    {
        // Checked after subscribing, so a disconnect in between is not missed.
        if dev.is_connected().await.unwrap_or(false) {
            while let Some(bluer::DeviceEvent::PropertyChanged(prop)) = changes.next().await {
                if matches!(prop, bluer::DeviceProperty::Connected(false)) {
                    break;
                }
            }
        }
    }
    if let Some(shared) = shared.upgrade() {
        lock(&shared.conns).remove(&device);
        debug!(conn = %id, "GATT connection closed");
        let _ = shared
            .events
            .send(LockRadioEvent::Disconnected { conn: id })
            .await;
    }
}
