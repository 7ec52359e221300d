//! Request and response bodies of the service endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, types::MaybeUndefined};
use serde::Serialize;

use crate::{
    core::{
        ids::{ServiceId, UserId},
        json::rfc3339,
    },
    db::enums::{PricingUnit, ServiceStatus},
    service::models::{GeoPoint, ServiceRow},
    service::services::ListingChanges,
};

// Sent with serde through `JsonOut`; the `same_json` test below keeps both forms equal.
#[derive(Debug, Object, Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub worker_id: UserId,
    pub title: String,
    pub description: String,
    pub category: String,
    /// Minor units of the deployment's currency.
    pub price_cents: i64,
    pub pricing_unit: PricingUnit,
    pub city: String,
    /// How long one booking takes.
    pub duration_minutes: i32,
    pub status: ServiceStatus,
    #[oai(nullable)]
    pub rating_avg: Option<f64>,
    pub rating_count: i32,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// Where the service is offered, if the worker gave a place.
    #[oai(nullable)]
    pub location: Option<Location>,
    /// Great-circle distance from the search's `near` point; only in a search with `near`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

/// A point in degrees (WGS 84): latitude −90…90, longitude −180…180.
#[derive(Debug, Clone, Copy, PartialEq, Object, Serialize)]
pub struct Location {
    #[oai(validator(minimum(value = "-90"), maximum(value = "90")))]
    pub lat: f64,
    #[oai(validator(minimum(value = "-180"), maximum(value = "180")))]
    pub lng: f64,
}

impl From<GeoPoint> for Location {
    fn from(point: GeoPoint) -> Self {
        Self {
            lat: point.lat,
            lng: point.lng,
        }
    }
}

impl From<ServiceRow> for Service {
    fn from(row: ServiceRow) -> Self {
        Self {
            id: row.id,
            worker_id: row.worker_id,
            title: row.title,
            description: row.description,
            category: row.category,
            price_cents: row.price_cents,
            pricing_unit: row.pricing_unit,
            city: row.city,
            duration_minutes: row.duration_minutes,
            status: row.status,
            rating_avg: row.rating_avg,
            rating_count: row.rating_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
            location: row
                .location_lat
                .zip(row.location_lng)
                .map(|(lat, lng)| Location { lat, lng }),
            distance_km: None,
        }
    }
}

#[derive(Debug, Object)]
pub struct NewService {
    /// 1 to 200 characters.
    #[oai(validator(max_length = 200, pattern = r"\S"))]
    pub title: String,
    /// 1 to 5000 characters.
    #[oai(validator(max_length = 5000, pattern = r"\S"))]
    pub description: String,
    /// 1 to 50 characters, stored lower-case.
    #[oai(validator(max_length = 50, pattern = r"\S"))]
    pub category: String,
    #[oai(validator(minimum(value = "0"), maximum(value = "10000000000")))]
    pub price_cents: i64,
    pub pricing_unit: PricingUnit,
    #[oai(validator(max_length = 100, pattern = r"\S"))]
    pub city: String,
    /// 15 to 1440; 60 when absent.
    #[oai(nullable, validator(minimum(value = "15"), maximum(value = "1440")))]
    pub duration_minutes: Option<i32>,
    /// Where the service is offered; absent or null for none.
    #[oai(nullable)]
    pub location: Option<Location>,
}

/// Absent fields are kept; every field is required, so `null` is a 422.
#[derive(Debug, Object)]
pub struct ServicePatch {
    #[oai(validator(max_length = 200, pattern = r"\S"))]
    pub title: MaybeUndefined<String>,
    #[oai(validator(max_length = 5000, pattern = r"\S"))]
    pub description: MaybeUndefined<String>,
    #[oai(validator(max_length = 50, pattern = r"\S"))]
    pub category: MaybeUndefined<String>,
    #[oai(validator(minimum(value = "0"), maximum(value = "10000000000")))]
    pub price_cents: MaybeUndefined<i64>,
    pub pricing_unit: MaybeUndefined<PricingUnit>,
    #[oai(validator(max_length = 100, pattern = r"\S"))]
    pub city: MaybeUndefined<String>,
    #[oai(validator(minimum(value = "15"), maximum(value = "1440")))]
    pub duration_minutes: MaybeUndefined<i32>,
    /// `null` removes the location.
    #[oai(nullable)]
    pub location: MaybeUndefined<Location>,
}

impl From<ServicePatch> for ListingChanges {
    fn from(patch: ServicePatch) -> Self {
        Self {
            title: patch.title.into(),
            description: patch.description.into(),
            category: patch.category.into(),
            price_cents: patch.price_cents.into(),
            pricing_unit: patch.pricing_unit.into(),
            city: patch.city.into(),
            duration_minutes: patch.duration_minutes.into(),
            location: patch.location.into(),
        }
    }
}

/// Orders of the public search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SortOrder {
    Relevance,
    PriceAsc,
    PriceDesc,
    Rating,
    Newest,
    /// Nearest first; needs `near`.
    Distance,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::core::{json::assert_same_json, pagination::Page};

    fn service() -> impl Strategy<Value = Service> {
        (
            any::<String>(),
            any::<String>(),
            any::<bool>(),
            prop_oneof![
                Just(ServiceStatus::Active),
                Just(ServiceStatus::Hidden),
                Just(ServiceStatus::Deleted)
            ],
            proptest::option::of(1.0f64..=5.0),
            0i64..4_102_444_800,
            0u32..1_000_000_000,
        )
            .prop_map(
                |(title, description, hourly, status, rating_avg, secs, nanos)| {
                    let at = Utc.timestamp_opt(secs, nanos).single().expect("in range");
                    Service {
                        id: ServiceId::new(),
                        worker_id: UserId::new(),
                        title,
                        description,
                        category: "plumbing".into(),
                        price_cents: i64::from(nanos),
                        pricing_unit: if hourly {
                            PricingUnit::Hourly
                        } else {
                            PricingUnit::Fixed
                        },
                        city: "Lisbon".into(),
                        duration_minutes: 60,
                        status,
                        rating_avg,
                        rating_count: 3,
                        created_at: at,
                        updated_at: at,
                        location: hourly.then_some(Location {
                            lat: 38.7,
                            lng: -9.1,
                        }),
                        distance_km: rating_avg.map(|r| r * 3.3),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn same_json(items in proptest::collection::vec(service(), 0..3), next in proptest::option::of(any::<String>())) {
            for item in &items {
                assert_same_json(item);
            }
            assert_same_json(&Page { items, next_cursor: next });
        }
    }
}
