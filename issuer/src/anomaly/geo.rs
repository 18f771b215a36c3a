//! Where a lock is: validated coordinates and the great-circle distance between two of them.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (IUGG), metres. The haversine formula on a sphere of this radius is
/// within 0.5 % of the ellipsoidal distance, far finer than the speed thresholds need.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on Earth in decimal degrees (WGS 84). Only valid values can be built.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCoordinates", into = "RawCoordinates")]
pub struct Coordinates {
    latitude: f64,
    longitude: f64,
}

/// Coordinates that are not a point on Earth.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CoordinatesError {
    /// Latitude outside −90..=90 degrees, or not a number.
    #[error(
        "latitude {0} is not in -90..=90 degrees: give decimal degrees, north positive (e.g. 52.52)"
    )]
    Latitude(f64),
    /// Longitude outside −180..=180 degrees, or not a number.
    #[error(
        "longitude {0} is not in -180..=180 degrees: give decimal degrees, east positive (e.g. 13.405)"
    )]
    Longitude(f64),
}

impl Coordinates {
    /// Coordinates from decimal degrees, north and east positive.
    pub fn new(latitude: f64, longitude: f64) -> Result<Self, CoordinatesError> {
        // `contains` is false for NaN, so a NaN is refused as well.
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(CoordinatesError::Latitude(latitude));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(CoordinatesError::Longitude(longitude));
        }
        Ok(Self {
            latitude,
            longitude,
        })
    }

    /// Latitude in decimal degrees, north positive.
    pub fn latitude(&self) -> f64 {
        self.latitude
    }

    /// Longitude in decimal degrees, east positive.
    pub fn longitude(&self) -> f64 {
        self.longitude
    }

    /// Great-circle distance in metres (haversine formula on a sphere of
    /// [`EARTH_RADIUS_M`]).
    pub fn distance_m(&self, other: &Coordinates) -> f64 {
        let (phi1, phi2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let d_phi = phi2 - phi1;
        let d_lambda = (other.longitude - self.longitude).to_radians();
        let h =
            (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
        // Rounding can push h a hair past 1 for antipodal points; asin would give NaN.
        2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
    }
}

#[derive(Serialize, Deserialize)]
struct RawCoordinates {
    latitude: f64,
    longitude: f64,
}

impl TryFrom<RawCoordinates> for Coordinates {
    type Error = CoordinatesError;
    fn try_from(raw: RawCoordinates) -> Result<Self, Self::Error> {
        Coordinates::new(raw.latitude, raw.longitude)
    }
}

impl From<Coordinates> for RawCoordinates {
    fn from(c: Coordinates) -> Self {
        RawCoordinates {
            latitude: c.latitude,
            longitude: c.longitude,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Coordinates {
        Coordinates::new(lat, lon).expect("test coordinates are valid")
    }

    #[test]
    fn haversine_distance_matches_known_city_pairs() {
        let berlin = at(52.5200, 13.4050);
        let lisbon = at(38.7223, -9.1393);
        let new_york = at(40.7128, -74.0060);
        // Reference great-circle distances (spherical, mean radius), within 0.5 %.
        let d = berlin.distance_m(&lisbon);
        assert!((d - 2_311_000.0).abs() < 12_000.0, "Berlin–Lisbon {d}");
        let d = berlin.distance_m(&new_york);
        assert!((d - 6_385_000.0).abs() < 32_000.0, "Berlin–New York {d}");
        assert_eq!(berlin.distance_m(&berlin), 0.0);
        assert_eq!(berlin.distance_m(&lisbon), lisbon.distance_m(&berlin));
    }

    #[test]
    fn antipodal_points_are_half_the_circumference_apart_not_nan() {
        let d = at(0.0, 0.0).distance_m(&at(0.0, 180.0));
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1.0);
        let d = at(90.0, 0.0).distance_m(&at(-90.0, 0.0));
        assert!(d.is_finite());
    }

    #[test]
    fn coordinates_off_the_globe_or_nan_are_refused() {
        assert_eq!(
            Coordinates::new(90.5, 0.0),
            Err(CoordinatesError::Latitude(90.5))
        );
        assert_eq!(
            Coordinates::new(0.0, -180.5),
            Err(CoordinatesError::Longitude(-180.5))
        );
        assert!(Coordinates::new(f64::NAN, 0.0).is_err());
        assert!(Coordinates::new(0.0, f64::INFINITY).is_err());
        let parsed: Result<Coordinates, _> =
            serde_json::from_str(r#"{"latitude": 91, "longitude": 0}"#);
        assert!(parsed.is_err());
    }
}
