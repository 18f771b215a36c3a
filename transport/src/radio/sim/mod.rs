//! In-process simulated BLE air for demos and tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_transport::radio::*;
//! use std::time::Duration;
//!
//! let air = SimAir::default();
//! let (lock, guest) = (air.radio("lock"), air.radio("guest"));
//! let spec = GattServiceSpec {
//!     service: uuid::Uuid::from_u128(1),
//!     challenge_char: uuid::Uuid::from_u128(2),
//!     response_char: uuid::Uuid::from_u128(3),
//! };
//! let mut events = lock.start_lock(spec).await?;
//! guest.set_advertisement(0xFFFF, vec![1, 2, 3]).await?;
//! match events.recv().await {
//!     Some(LockRadioEvent::Advert(report)) => assert_eq!(report.data, [1, 2, 3]),
//!     other => panic!("{other:?}"),
//! }
//! let link = guest.connect(spec.service, Duration::from_secs(1)).await?;
//! # drop(link);
//! # Ok(()) }
//! ```

mod air;
mod config;
mod link;
mod radio;

pub use air::SimAir;
pub use config::SimAirConfig;
pub use link::SimGattLink;
pub use radio::SimRadio;
