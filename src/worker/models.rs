//! Rows of `workers`, `availability_slots` and `kyc_submissions`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    core::ids::{KycId, UserId},
    db::{
        enums::{KycDecision, KycDocumentType, KycStatus},
        schema::{kyc_submissions, workers},
    },
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workers, check_for_backend(diesel::pg::Pg))]
pub struct WorkerRow {
    pub user_id: UserId,
    pub bio: String,
    /// PostgreSQL arrays have nullable elements; none are ever written.
    pub skills: Vec<Option<String>>,
    pub city: Option<String>,
    pub timezone: String,
    pub hourly_rate_cents: Option<i64>,
    pub kyc_status: KycStatus,
    pub rating_avg: Option<f64>,
    pub rating_count: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = kyc_submissions, check_for_backend(diesel::pg::Pg))]
pub struct KycRow {
    pub id: KycId,
    pub worker_id: UserId,
    pub document_type: KycDocumentType,
    pub status: KycDecision,
    pub reason: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
}
