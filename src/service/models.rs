//! Rows of `services`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    core::ids::{ServiceId, UserId},
    db::{
        enums::{PricingUnit, ServiceStatus},
        schema::services,
    },
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
}
