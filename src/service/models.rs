//! Rows of `services`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    core::ids::{ServiceId, UserId},
    db::{
        enums::{PricingUnit, ServiceStatus},
        schema::services,
    },
    error::FieldError,
};

/// A listing as stored (without the generated search vector). Usable from the DSL
/// and from the hand-written search SQL alike.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = services, check_for_backend(diesel::pg::Pg))]
pub struct ServiceRow {
    pub id: ServiceId,
    pub worker_id: UserId,
    pub title: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub pricing_unit: PricingUnit,
    pub city: String,
    pub duration_minutes: i32,
    pub status: ServiceStatus,
    pub rating_avg: Option<f64>,
    pub rating_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub location_lat: Option<f64>,
    pub location_lng: Option<f64>,
}

/// A point on Earth in degrees, checked: latitude −90…90, longitude −180…180.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lng: f64,
}

impl GeoPoint {
    /// The point, or an error naming `field.lat` / `field.lng` (or `field` itself when
    /// `field` is a single query parameter such as `near`).
    pub fn new(lat: f64, lng: f64, field: &str, nested: bool) -> Result<Self, FieldError> {
        let name = |part: &str| {
            if nested {
                format!("{field}.{part}")
            } else {
                field.to_owned()
            }
        };
        if !(-90.0..=90.0).contains(&lat) {
            return Err(FieldError::new(name("lat"), "latitude must be -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(FieldError::new(
                name("lng"),
                "longitude must be -180 to 180",
            ));
        }
        Ok(Self { lat, lng })
    }

    /// `near=<lat>,<lng>` as a query parameter.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(field, "must be <lat>,<lng> in degrees, e.g. 38.72,-9.14");
        let (lat, lng) = raw.split_once(',').ok_or_else(bad)?;
        let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
        let lng: f64 = lng.trim().parse().map_err(|_| bad())?;
        Self::new(lat, lng, field, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_checked_and_parsed() {
        assert_eq!(
            GeoPoint::parse("near", " 38.72 , -9.14 "),
            Ok(GeoPoint {
                lat: 38.72,
                lng: -9.14
            })
        );
        for bad in [
            "", "38.72", "a,b", "91,0", "0,180.5", "NaN,0", "inf,0", "1,2,3",
        ] {
            assert_eq!(
                GeoPoint::parse("near", bad).map_err(|e| e.field),
                Err("near".to_owned()),
                "{bad}"
            );
        }
        assert_eq!(
            GeoPoint::new(0.0, -181.0, "location", true).map_err(|e| e.field),
            Err("location.lng".to_owned())
        );
        assert_eq!(
            GeoPoint::new(-90.5, 0.0, "location", true).map_err(|e| e.field),
            Err("location.lat".to_owned())
        );
        assert!(GeoPoint::new(-90.0, 180.0, "location", true).is_ok());
    }
}
