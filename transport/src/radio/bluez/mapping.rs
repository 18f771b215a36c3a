//! Pure translations between BlueZ's D-Bus world and ours (unit-tested without an adapter).

use std::collections::HashMap;

use crate::radio::att::AttError;
use crate::radio::error::RadioError;
use crate::radio::types::AdvertReport;

/// D-Bus error a GATT application returns so BlueZ answers with `err`.
///
/// BlueZ ≥ 5.66 turns `org.bluez.Error.Failed` with message `"0x85"` into ATT application
/// error 0x85; older versions turn every `Failed` into 0x80 (bluez/bluez#380). bluer's
/// callback API cannot set that message, which is why the GATT server is hand-written.
pub(crate) fn att_to_dbus_error(err: AttError) -> (&'static str, String) {
    match err {
        AttError::Application(code) => ("org.bluez.Error.Failed", format!("0x{code:02x}")),
        AttError::InvalidOffset => ("org.bluez.Error.InvalidOffset", "invalid offset".into()),
        AttError::InvalidAttributeValueLength => (
            "org.bluez.Error.InvalidValueLength",
            "invalid value length".into(),
        ),
        // BlueZ substitutes the read or write flavour of "not permitted" itself.
        AttError::ReadNotPermitted | AttError::WriteNotPermitted => {
            ("org.bluez.Error.NotPermitted", "not permitted".into())
        }
        AttError::InsufficientAuthorization => {
            ("org.bluez.Error.NotAuthorized", "not authorized".into())
        }
        AttError::RequestNotSupported => ("org.bluez.Error.NotSupported", "not supported".into()),
        // A name BlueZ does not recognise maps to "unlikely error" (0x0E); "Failed" would
        // become application error 0x80, which means something specific to the app.
        AttError::UnlikelyError | AttError::AttributeNotFound | AttError::Other(_) => (
            "org.freedesktop.DBus.Error.Failed",
            format!("ATT error 0x{:02x}", err.code()),
        ),
    }
}

/// Which GATT client operation failed (BlueZ reports "not permitted" without saying which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GattOp {
    Read,
    Write,
}

/// Translates an error from a remote characteristic read/write into ours.
///
/// BlueZ's client reports ATT errors as `org.bluez.Error.Failed` with the message
/// `"Operation failed with ATT error: 0x85"` (newer versions append a name in parentheses),
/// and a few codes as dedicated error names.
pub(crate) fn client_error(err: bluer::Error, op: GattOp) -> RadioError {
    use bluer::ErrorKind as K;
    let att = match &err.kind {
        K::Failed => {
            if let Some(code) = parse_att_code(&err.message) {
                Some(AttError::from_code(code))
            } else if err.message.contains("Not connected") {
                return RadioError::Disconnected;
            } else {
                None
            }
        }
        K::NotPermitted => Some(match op {
            GattOp::Read => AttError::ReadNotPermitted,
            GattOp::Write => AttError::WriteNotPermitted,
        }),
        K::NotAuthorized => Some(AttError::InsufficientAuthorization),
        K::NotSupported => Some(AttError::RequestNotSupported),
        K::InvalidOffset => Some(AttError::InvalidOffset),
        K::InvalidLength => Some(AttError::InvalidAttributeValueLength),
        K::NotFound | K::DoesNotExist | K::ServicesUnresolved => return RadioError::Disconnected,
        _ => None,
    };
    match att {
        Some(att) => RadioError::Att(att),
        None => RadioError::Bluez(err),
    }
}

/// Extracts `NN` from "... ATT error: 0xNN ...".
pub(crate) fn parse_att_code(message: &str) -> Option<u8> {
    let (_, rest) = message.split_once("ATT error: 0x")?;
    let hex: String = rest
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(2)
        .collect();
    u8::from_str_radix(&hex, 16).ok()
}

/// The part of a cached read value that a Read / Read Blob at `offset` returns.
///
/// An offset equal to the length returns an empty value (ATT allows it); beyond is
/// Invalid Offset.
pub(crate) fn read_at_offset(value: &[u8], offset: u16) -> Result<Vec<u8>, AttError> {
    value
        .get(usize::from(offset)..)
        .map(<[u8]>::to_vec)
        .ok_or(AttError::InvalidOffset)
}

/// GATT characteristic flags for BlueZ's `Flags` property.
pub(crate) fn characteristic_flags(readable: bool) -> Vec<String> {
    // Write Request only: no write-without-response, so every write has a result.
    let mut flags = vec!["write".to_owned()];
    if readable {
        flags.push("read".to_owned());
    }
    flags
}

/// What one device has advertised so far; turns BlueZ property changes into reports.
///
/// BlueZ reports RSSI and manufacturer data as separate property changes. With duplicate
/// data on, an RSSI update means an advert was heard, so it is reported with the last data;
/// a data update is reported with the last RSSI.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeviceAdverts {
    data: HashMap<u16, Vec<u8>>,
    rssi: Option<i16>,
}

impl DeviceAdverts {
    pub(crate) fn new(data: Option<HashMap<u16, Vec<u8>>>, rssi: Option<i16>) -> Self {
        Self {
            data: data.unwrap_or_default(),
            rssi,
        }
    }

    /// Reports for the state as it is now (nothing until both RSSI and data are known).
    pub(crate) fn reports(&self) -> Vec<AdvertReport> {
        let Some(rssi) = self.rssi else {
            return Vec::new();
        };
        let mut reports: Vec<AdvertReport> = self
            .data
            .iter()
            .map(|(company_id, data)| AdvertReport {
                company_id: *company_id,
                data: data.clone(),
                rssi,
            })
            .collect();
        reports.sort_by_key(|r| r.company_id);
        reports
    }

    /// Applies one property change and returns the reports it produces.
    pub(crate) fn apply(&mut self, change: bluer::DeviceProperty) -> Vec<AdvertReport> {
        match change {
            bluer::DeviceProperty::Rssi(rssi) => {
                self.rssi = Some(rssi);
                self.reports()
            }
            bluer::DeviceProperty::ManufacturerData(data) => {
                self.data = data;
                self.reports()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_errors_carry_their_code_in_the_failed_message() {
        assert_eq!(
            att_to_dbus_error(AttError::Application(0x85)),
            ("org.bluez.Error.Failed", "0x85".to_owned())
        );
        assert_eq!(
            att_to_dbus_error(AttError::Application(0x80)),
            ("org.bluez.Error.Failed", "0x80".to_owned())
        );
        assert_eq!(
            att_to_dbus_error(AttError::InvalidOffset).0,
            "org.bluez.Error.InvalidOffset"
        );
        assert_eq!(
            att_to_dbus_error(AttError::InvalidAttributeValueLength).0,
            "org.bluez.Error.InvalidValueLength"
        );
        assert_eq!(
            att_to_dbus_error(AttError::ReadNotPermitted).0,
            "org.bluez.Error.NotPermitted"
        );
        assert_eq!(
            att_to_dbus_error(AttError::RequestNotSupported).0,
            "org.bluez.Error.NotSupported"
        );
        // Never "Failed": that would read as application error 0x80.
        assert_ne!(
            att_to_dbus_error(AttError::UnlikelyError).0,
            "org.bluez.Error.Failed"
        );
        assert_ne!(
            att_to_dbus_error(AttError::Other(0x13)).0,
            "org.bluez.Error.Failed"
        );
    }

    fn bluez(kind: bluer::ErrorKind, message: &str) -> bluer::Error {
        bluer::Error {
            kind,
            message: message.to_owned(),
        }
    }

    #[test]
    fn client_errors_map_to_att_codes() {
        use bluer::ErrorKind as K;
        let cases = [
            (
                "Operation failed with ATT error: 0x85",
                AttError::Application(0x85),
            ),
            (
                "Operation failed with ATT error: 0x8a",
                AttError::Application(0x8A),
            ),
            (
                "Operation failed with ATT error: 0x13 (Value Not Allowed)",
                AttError::Other(0x13),
            ),
            (
                "Operation failed with ATT error: 0x0e",
                AttError::UnlikelyError,
            ),
        ];
        for (message, want) in cases {
            let got = client_error(bluez(K::Failed, message), GattOp::Write);
            assert_eq!(got.att(), Some(want), "{message}");
        }
        assert_eq!(
            client_error(bluez(K::NotPermitted, "Read not permitted"), GattOp::Read).att(),
            Some(AttError::ReadNotPermitted)
        );
        assert_eq!(
            client_error(bluez(K::NotPermitted, "Write not permitted"), GattOp::Write).att(),
            Some(AttError::WriteNotPermitted)
        );
        assert_eq!(
            client_error(bluez(K::InvalidOffset, ""), GattOp::Read).att(),
            Some(AttError::InvalidOffset)
        );
        assert!(matches!(
            client_error(bluez(K::Failed, "Not connected"), GattOp::Write),
            RadioError::Disconnected
        ));
        assert!(matches!(
            client_error(bluez(K::Failed, "Operation failed"), GattOp::Write),
            RadioError::Bluez(_)
        ));
    }

    #[test]
    fn att_code_parsing() {
        assert_eq!(
            parse_att_code("Operation failed with ATT error: 0x80"),
            Some(0x80)
        );
        assert_eq!(
            parse_att_code("Operation failed with ATT error: 0x9f (x)"),
            Some(0x9F)
        );
        assert_eq!(parse_att_code("Operation failed"), None);
        assert_eq!(parse_att_code("ATT error: 0x"), None);
    }

    #[test]
    fn long_reads_are_served_from_the_cached_value() {
        let challenge: Vec<u8> = (0..33).collect();
        assert_eq!(read_at_offset(&challenge, 0).unwrap(), challenge);
        assert_eq!(read_at_offset(&challenge, 22).unwrap(), challenge[22..]);
        assert_eq!(read_at_offset(&challenge, 33).unwrap(), Vec::<u8>::new());
        assert_eq!(read_at_offset(&challenge, 34), Err(AttError::InvalidOffset));
    }

    #[test]
    fn flags_offer_write_request_and_read_only_where_allowed() {
        assert_eq!(characteristic_flags(true), ["write", "read"]);
        assert_eq!(characteristic_flags(false), ["write"]);
    }

    #[test]
    fn device_property_changes_become_reports() {
        let mut dev = DeviceAdverts::new(None, None);
        // Data without RSSI is not reportable yet.
        let data = HashMap::from([(0xFFFF, vec![1, 2, 3])]);
        assert!(
            dev.apply(bluer::DeviceProperty::ManufacturerData(data))
                .is_empty()
        );
        let reports = dev.apply(bluer::DeviceProperty::Rssi(-70));
        assert_eq!(
            reports,
            [AdvertReport {
                company_id: 0xFFFF,
                data: vec![1, 2, 3],
                rssi: -70
            }]
        );
        // Every RSSI update is a heard advert: reported again with the same data.
        assert_eq!(dev.apply(bluer::DeviceProperty::Rssi(-65))[0].rssi, -65);
        // New data is reported with the last RSSI.
        let data = HashMap::from([(0xFFFF, vec![9]), (0x004C, vec![7])]);
        let reports = dev.apply(bluer::DeviceProperty::ManufacturerData(data));
        assert_eq!(
            reports,
            [
                AdvertReport {
                    company_id: 0x004C,
                    data: vec![7],
                    rssi: -65
                },
                AdvertReport {
                    company_id: 0xFFFF,
                    data: vec![9],
                    rssi: -65
                },
            ]
        );
        assert!(dev.apply(bluer::DeviceProperty::Connected(true)).is_empty());
    }
}

/// The device address inside a BlueZ device object path (`/org/bluez/hci0/dev_AA_BB_…`).
///
/// Used only to subscribe to that device's `Connected` property while the connection lasts;
/// it is never exposed (connections are identified by [`ConnId`](crate::radio::ConnId)).
pub(crate) fn device_address(path: &str) -> Option<bluer::Address> {
    let (_, dev) = path.rsplit_once("/dev_")?;
    dev.replace('_', ":").parse().ok()
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn device_path_to_address() {
        let addr = device_address("/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01").unwrap();
        assert_eq!(addr.to_string(), "AA:BB:CC:DD:EE:01");
        assert!(device_address("/org/bluez/hci0").is_none());
        assert!(device_address("/org/bluez/hci0/dev_XX").is_none());
    }
}
