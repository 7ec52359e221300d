//! Request and response bodies of the service endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, types::MaybeUndefined};

use crate::{
    core::ids::{ServiceId, UserId},
    db::enums::{PricingUnit, ServiceStatus},
    service::models::ServiceRow,
};

#[derive(Debug, Object)]
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
    pub rating_avg: Option<f64>,
    pub rating_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
        }
    }
}

#[derive(Debug, Object)]
pub struct NewService {
    /// 1 to 200 characters.
    pub title: String,
    /// 1 to 5000 characters.
    pub description: String,
    /// 1 to 50 characters, stored lower-case.
    pub category: String,
    pub price_cents: i64,
    pub pricing_unit: PricingUnit,
    pub city: String,
    /// 15 to 1440; 60 when absent.
    pub duration_minutes: Option<i32>,
}

/// Absent fields are kept; every field is required, so `null` is a 422.
#[derive(Debug, Object)]
pub struct ServicePatch {
    pub title: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub category: MaybeUndefined<String>,
    pub price_cents: MaybeUndefined<i64>,
    pub pricing_unit: MaybeUndefined<PricingUnit>,
    pub city: MaybeUndefined<String>,
    pub duration_minutes: MaybeUndefined<i32>,
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
}
