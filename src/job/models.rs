//! Rows of `jobs` and `job_events`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    core::ids::{JobId, ServiceId, ThreadId, UserId},
    db::{
        enums::JobStatus,
        schema::{job_events, jobs},
    },
};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct JobRow {
    pub id: JobId,
    pub service_id: ServiceId,
    pub client_id: UserId,
    pub worker_id: UserId,
    pub status: JobStatus,
    pub price_cents: i64,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub address: String,
    pub notes: String,
    pub thread_id: ThreadId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = job_events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    pub id: i64,
    pub from_status: Option<JobStatus>,
    pub to_status: JobStatus,
    pub actor_id: Option<UserId>,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}
