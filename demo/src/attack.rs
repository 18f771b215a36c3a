//! The attacker's tools on the simulated air: a sniffer that records every beacon on air,
//! and a radio that re-advertises a recorded beacon and tries to Select it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use latchkey::Reason;
use latchkey::frame::{BeaconView, Select};
use latchkey_lock::gatt::{CHALLENGE_CHAR_UUID, SERVICE_UUID};
use latchkey_transport::radio::{
    AttError, GattLink, GattServiceSpec, GuestRadio, LockRadio, LockRadioEvent, RadioError, SimAir,
    SimRadio,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::DemoError;

/// A passive listener recording every distinct Latchkey beacon it hears.
#[derive(Debug)]
pub struct Sniffer {
    captured: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl Sniffer {
    /// Starts listening on `air` with a radio called `name`, keeping beacons advertised
    /// under `company_id`.
    pub async fn start(air: &SimAir, name: &str, company_id: u16) -> Result<Self, DemoError> {
        let radio = air.radio(name);
        // A scanner on the simulated air is a radio serving some GATT service; this one
        // serves a service no guest looks for.
        let decoy = GattServiceSpec {
            service: Uuid::from_u128(0x5afe_0001),
            challenge_char: Uuid::from_u128(0x5afe_0002),
            response_char: Uuid::from_u128(0x5afe_0003),
        };
        let mut events = radio.start_lock(decoy).await?;
        let captured = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let sink = captured.clone();
        let task = tokio::spawn(async move {
            let _radio = radio;
            while let Some(event) = events.recv().await {
                if let LockRadioEvent::Advert(report) = event
                    && report.company_id == company_id
                    && BeaconView::parse(&report.data).is_ok()
                {
                    let mut c = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    if !c.contains(&report.data) {
                        c.push(report.data);
                    }
                }
            }
        });
        Ok(Self { captured, task })
    }

    /// The distinct beacons heard so far, in the order first heard.
    pub fn beacons(&self) -> Vec<Vec<u8>> {
        self.captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops listening and returns what was captured.
    pub fn stop(self) -> Vec<Vec<u8>> {
        self.task.abort();
        self.beacons()
    }
}

/// A radio re-advertising a captured beacon.
#[derive(Debug)]
pub struct Replayer {
    radio: SimRadio,
    beacon: Vec<u8>,
}

impl Replayer {
    /// Starts advertising `beacon` under `company_id` from a radio called `name`.
    pub async fn start(
        air: &SimAir,
        name: &str,
        company_id: u16,
        beacon: Vec<u8>,
    ) -> Result<Self, DemoError> {
        let radio = air.radio(name);
        radio.set_advertisement(company_id, beacon.clone()).await?;
        Ok(Self { radio, beacon })
    }

    /// Connects to the lock and writes the Select naming the replayed beacon, as the phone
    /// that sent it would. Returns the lock's answer: `Ok` if it accepted the Select,
    /// else its refusal.
    pub async fn try_select(&self) -> Result<Result<(), Refusal>, DemoError> {
        let view = BeaconView::parse(&self.beacon)
            .map_err(|r| DemoError::Unexpected(format!("captured beacon does not parse: {r}")))?;
        let select = Select {
            tag: view.tag(),
            attempt: view.attempt(),
        }
        .to_bytes();
        let link = self
            .radio
            .connect(SERVICE_UUID, Duration::from_secs(5))
            .await?;
        let answer = link.write(CHALLENGE_CHAR_UUID, &select).await;
        let _ = link.disconnect().await;
        match answer {
            Ok(()) => Ok(Ok(())),
            Err(RadioError::Att(att)) => Ok(Err(Refusal::from_att(att))),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops advertising.
    pub async fn stop(self) -> Result<(), DemoError> {
        self.radio.stop_advertising().await?;
        Ok(())
    }
}

/// A lock's refusal as seen over GATT: the ATT error and the Latchkey reason it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The ATT error the lock answered.
    pub att: AttError,
    /// The reason with that application error code, if exactly one has it.
    pub reason: Option<Reason>,
}

impl Refusal {
    /// Decodes an ATT error.
    pub fn from_att(att: AttError) -> Self {
        Self {
            att,
            reason: reason_of_att(att.code()),
        }
    }
}

/// The one reason whose ATT application error code is `code`, if there is exactly one.
pub fn reason_of_att(code: u8) -> Option<Reason> {
    let mut found = Reason::ALL.iter().filter(|r| r.att_code() == code);
    match (found.next(), found.next()) {
        (Some(r), None) => Some(*r),
        _ => None,
    }
}
